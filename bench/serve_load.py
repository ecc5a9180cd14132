#!/usr/bin/env python3
"""Load generator for `wgcnn serve` (tritonclient over HTTP, binary tensors): C concurrent
clients each send R requests classifying one image; prints one JSON line with throughput,
latency percentiles and the batch sizes the server formed (from the /metrics delta).
Driven by bench/serve_load; usable alone against any running server:
  target/serve-venv/bin/python bench/serve_load.py --url 127.0.0.1:8080 -c 8 -r 50
"""
import argparse
import json
import re
import threading
import time
import urllib.request

import numpy as np
import tritonclient.http as th


def scrape(url, model):
    text = urllib.request.urlopen(f"http://{url}/metrics").read().decode()
    buckets, values = {}, {}
    for line in text.splitlines():
        m = re.match(r'wgcnn_inference_batch_size_bucket\{model="%s",version="1",le="([^"]+)"\} (\d+)' % re.escape(model), line)
        if m:
            buckets[m.group(1)] = int(m.group(2))
        m = re.match(r'(nv_inference_\w+)\{model="%s",version="1"\} (\d+)' % re.escape(model), line)
        if m:
            values[m.group(1)] = int(m.group(2))
    return buckets, values


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", default="127.0.0.1:8080")
    p.add_argument("--model", default="tf_efficientnet_lite0")
    p.add_argument("--image", default="assets/chelsea.png")
    p.add_argument("-c", "--concurrency", type=int, default=8)
    p.add_argument("-r", "--requests", type=int, default=50, help="requests per client")
    args = p.parse_args()
    with open(args.image, "rb") as f:
        data = np.array([f.read()], dtype=np.object_)
    b0, v0 = scrape(args.url, args.model)
    latencies, errors = [], []
    lock = threading.Lock()

    def client():
        c = th.InferenceServerClient(args.url, connection_timeout=300, network_timeout=300)
        inp = th.InferInput("image", [1], "BYTES")
        inp.set_data_from_numpy(data)
        out = th.InferRequestedOutput("probabilities", class_count=5)
        mine = []
        for _ in range(args.requests):
            t = time.perf_counter()
            try:
                c.infer(args.model, [inp], outputs=[out])
                mine.append(time.perf_counter() - t)
            except Exception as e:  # counted, reported; the bench goes on
                with lock:
                    errors.append(str(e)[:200])
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(args.concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    b1, v1 = scrape(args.url, args.model)
    # Batch sizes formed: the per-bucket delta of the cumulative histogram.
    sizes, prev = {}, 0
    for le in ["1", "2", "4", "8", "16", "32", "64", "128"]:
        n = b1.get(le, 0) - b0.get(le, 0)
        if n - prev:
            sizes[f"<={le}"] = n - prev
        prev = n
    execs = v1.get("nv_inference_exec_count", 0) - v0.get("nv_inference_exec_count", 0)
    images = v1.get("nv_inference_count", 0) - v0.get("nv_inference_count", 0)
    lat = np.array(latencies) * 1e3 if latencies else np.array([0.0])
    print(json.dumps({
        "concurrency": args.concurrency, "requests": len(latencies), "errors": len(errors),
        "first_error": errors[0] if errors else None, "seconds": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 1), "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "mean_batch": round(images / execs, 2) if execs else None, "batch_sizes": sizes,
    }), flush=True)


if __name__ == "__main__":
    main()
