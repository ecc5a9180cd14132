#!/usr/bin/env bash
# Builds deploy/Dockerfile's image and runs the third-party protocol clients (tritonclient and
# the kserve SDK, bench/serve_clients.py) against the container. Needs docker (or podman via
# DOCKER=podman) with access to Docker Hub for the base images, and bench/python-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKER="${DOCKER:-docker}"
PY="${WGCNN_SERVE_VENV:-target/serve-venv}/bin/python"
[ -x "$PY" ] || { echo "test-image: run bench/python-venv first" >&2; exit 1; }
"$DOCKER" build -f deploy/Dockerfile -t wgcnn-serve:test .
cid=$("$DOCKER" run -d -p 127.0.0.1:18080:8080 -p 127.0.0.1:18081:8081 wgcnn-serve:test)
trap '"$DOCKER" rm -f "$cid" >/dev/null' EXIT
for _ in $(seq 300); do
  curl -sf http://127.0.0.1:18080/v2/health/ready >/dev/null && break
  sleep 1
done
for clients in tritonclient kserve; do
  "$PY" bench/serve_clients.py --clients "$clients" --http 127.0.0.1:18080 --grpc 127.0.0.1:18081
done
# SIGTERM drains and exits 0.
"$DOCKER" stop -t 30 "$cid" >/dev/null
test "$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$cid")" = 0
echo "test-image: ok"
