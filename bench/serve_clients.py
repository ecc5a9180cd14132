#!/usr/bin/env python3
"""Classify an image on a running `wgcnn serve` with third-party Open Inference Protocol clients:
tritonclient (HTTP and gRPC) and the kserve SDK's V2 clients (REST and gRPC).

Prints one JSON line per client: {"client": ..., "top5": [[index, score, label], ...]}.
Used by crates/wgcnn-serve/tests/python_clients.rs; run by hand as
  target/serve-venv/bin/python bench/serve_clients.py --clients tritonclient \\
      --http 127.0.0.1:8080 --grpc 127.0.0.1:8081
"""
import argparse
import asyncio
import json
import sys

import numpy as np


def parse(items):
    out = []
    for s in items:
        s = s.decode() if isinstance(s, bytes) else str(s)
        score, index, *label = s.split(":", 2)
        out.append([int(index), float(score), label[0] if label else ""])
    return out


def image_tensor(path):
    with open(path, "rb") as f:
        return np.array([f.read()], dtype=np.object_)


def triton_http(args, data):
    import tritonclient.http as th

    c = th.InferenceServerClient(args.http)
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready(args.model)
    c.get_model_metadata(args.model)
    c.get_model_config(args.model)
    inp = th.InferInput("image", [1], "BYTES")
    inp.set_data_from_numpy(data)  # binary tensor extension by default
    out = th.InferRequestedOutput("probabilities", class_count=5)
    r = c.infer(args.model, [inp], outputs=[out], request_id="py-http")
    assert r.get_response()["id"] == "py-http"
    return parse(r.as_numpy("probabilities")[0])


def triton_grpc(args, data):
    import tritonclient.grpc as tg

    c = tg.InferenceServerClient(args.grpc)
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready(args.model)
    c.get_model_metadata(args.model)
    inp = tg.InferInput("image", [1], "BYTES")
    inp.set_data_from_numpy(data)
    out = tg.InferRequestedOutput("probabilities", class_count=5)
    r = c.infer(args.model, [inp], outputs=[out])
    return parse(r.as_numpy("probabilities")[0])


def kserve_rest(args, data):
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
    from kserve.protocol.infer_type import RequestedOutput

    async def run():
        client = InferenceRESTClient(RESTConfig(protocol="v2"))
        try:
            assert await client.is_server_live(f"http://{args.http}")
            inp = InferInput("image", [1], "BYTES")
            inp.set_data_from_numpy(data, binary_data=True)
            req = InferRequest(args.model, [inp], request_outputs=[
                RequestedOutput("probabilities", parameters={"classification": 5, "binary_data": False})])
            r = await client.infer(f"http://{args.http}", req, model_name=args.model)
            return parse(r.outputs[0].data)
        finally:
            await client.close()

    return asyncio.run(run())


def kserve_grpc(args, data):
    from kserve import InferenceGRPCClient, InferInput, InferRequest
    from kserve.protocol.infer_type import RequestedOutput

    async def run():
        client = InferenceGRPCClient(args.grpc)
        try:
            assert await client.is_server_ready()
            inp = InferInput("image", [1], "BYTES")
            inp.set_data_from_numpy(data, binary_data=True)
            req = InferRequest(args.model, [inp], request_outputs=[
                RequestedOutput("probabilities", parameters={"classification": 5})])
            r = await client.infer(req)
            return parse(r.outputs[0].as_numpy().reshape(-1))
        finally:
            await client.close()

    return asyncio.run(run())


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--http", required=True)
    p.add_argument("--grpc", required=True)
    p.add_argument("--model", default="tf_efficientnet_lite0")
    p.add_argument("--image", default="assets/chelsea.png")
    # tritonclient and kserve each register protobuf package `inference`: one per process.
    p.add_argument("--clients", choices=["tritonclient", "kserve"], required=True)
    args = p.parse_args()
    # kserve parses sys.argv with its own server flags when imported: hide ours from it.
    sys.argv = sys.argv[:1]
    data = image_tensor(args.image)
    clients = {
        "tritonclient": [("tritonclient.http", triton_http), ("tritonclient.grpc", triton_grpc)],
        "kserve": [("kserve.rest", kserve_rest), ("kserve.grpc", kserve_grpc)],
    }[args.clients]
    for name, fn in clients:
        print(json.dumps({"client": name, "top5": fn(args, data)}), flush=True)


if __name__ == "__main__":
    main()
