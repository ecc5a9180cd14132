#!/usr/bin/env python3
"""torchvision's detector on the CPU: the baseline `bench/compare` sets beside `wgcnn bench` for
detection models.

    target/torch-venv/bin/python bench/torch_detect.py fasterrcnn_resnet50_fpn \\
        [--size 427x640] [--threads 2] [--runs 5] [--warmup 1] [--json]

Builds `torchvision.models.detection.NAME(weights=None, weights_backbone=None)` (random weights:
timing does not depend on the values, and nothing is downloaded), in eval mode, at torchvision's
default transform sizes (min_size 800, max_size 1333: a 427x640 image becomes an 800x1199 network
input, padded to 800x1216), under `torch.inference_mode()` with `torch.set_num_threads(THREADS)`.
The image is uniform noise in [0, 1), as `wgcnn bench` feeds its rule image.

What a run costs depends on the data in two places, so they are reported beside the times:
- the RPN keeps up to `rpn_post_nms_top_n_test` = 1000 proposals after NMS, and the box head runs
  on every kept one (as wgcnn's does on its kept rows). With random weights NMS keeps the full
  1000 here (wgcnn's rule weights keep almost none at this size).
- postprocessing keeps boxes scoring over `box_score_thresh` (0.05); with random weights
  torchvision's class scores are near 1/91 and almost none pass. `--score-thresh` sets it.
Stage times (transform, backbone body, FPN, RPN, RoI heads, postprocess) come from forward hooks
and are medians over the timed runs; `to_proposals_ms` is the time from the image to the RPN's
proposals (transform, backbone, FPN, RPN head and proposal filtering): the part of the run that
does not depend on how many proposals survive, for comparing with an engine whose box head
runs on fewer kept proposals than torchvision's (wgcnn's rule weights keep few at this size).
"""
import argparse
import json
import statistics
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", nargs="?", default="fasterrcnn_resnet50_fpn")
    p.add_argument("--size", default="427x640", help="image HxW before the model's transform")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--runs", type=int, default=5, help="timed runs (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    p.add_argument("--score-thresh", type=float, help="box_score_thresh (default torchvision's 0.05)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    a = p.parse_args()

    import torch
    import torchvision
    from torchvision.models import detection

    torch.set_num_threads(a.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    h, w = (int(v) for v in a.size.lower().split("x"))
    builder = getattr(detection, a.model, None)
    if builder is None:
        print(f"torch_detect: torchvision.models.detection has no {a.model}", file=sys.stderr)
        return 2
    kwargs = {"weights": None, "weights_backbone": None}
    if a.score_thresh is not None:
        kwargs["box_score_thresh"] = a.score_thresh
    torch.manual_seed(0)
    model = builder(**kwargs).eval()
    image = torch.rand(3, h, w, generator=torch.Generator().manual_seed(1))

    stamps = {}
    counts = {}

    def pre(name):
        def hook(module, inputs):
            stamps[name + ".start"] = time.perf_counter()
        return hook

    def post(name):
        def hook(module, inputs, output):
            stamps[name + ".end"] = time.perf_counter()
            if name == "rpn":
                counts["proposals"] = int(output[0][0].shape[0])
            if name == "transform":
                counts["network_input"] = list(output[0].tensors.shape[-2:])
                counts["image_size"] = list(output[0].image_sizes[0])
        return hook

    parts = {"transform": model.transform, "backbone.body": model.backbone.body,
             "backbone.fpn": model.backbone.fpn, "rpn": model.rpn, "roi_heads": model.roi_heads}
    for name, module in parts.items():
        module.register_forward_pre_hook(pre(name))
        module.register_forward_hook(post(name))

    def run():
        stamps.clear()
        t = time.perf_counter()
        with torch.inference_mode():
            out = model([image])
        end = time.perf_counter()
        stages = {n: (stamps[n + ".end"] - stamps[n + ".start"]) * 1e3 for n in parts}
        # What follows the RoI heads: transform.postprocess (boxes back to the image frame).
        stages["postprocess"] = (end - stamps["roi_heads.end"]) * 1e3
        counts["detections"] = int(out[0]["boxes"].shape[0])
        stages["to_proposals"] = (stamps["rpn.end"] - t) * 1e3
        return (end - t) * 1e3, stages

    for _ in range(a.warmup):
        run()
    samples, stage_samples = [], []
    for _ in range(a.runs):
        ms, stages = run()
        samples.append(ms)
        stage_samples.append(stages)
    result = {
        "model": a.model,
        "runtime": f"torch {torch.__version__}, torchvision {torchvision.__version__}",
        "threads": a.threads,
        "image": [h, w],
        "network_input": counts.get("image_size"),
        "padded_input": counts.get("network_input"),
        "proposals": counts.get("proposals"),
        "detections": counts.get("detections"),
        "box_score_thresh": model.roi_heads.score_thresh,
        "median_ms": statistics.median(samples),
        "min_ms": min(samples),
        "samples_ms": samples,
        "to_proposals_ms": statistics.median(s["to_proposals"] for s in stage_samples),
        "stages_ms": {n: statistics.median(s[n] for s in stage_samples) for n in stage_samples[0]
                      if n != "to_proposals"},
    }
    if a.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{a.model} {h}x{w} -> {result['network_input']} ({result['runtime']}, {a.threads} threads): "
              f"median {result['median_ms']:.1f} ms, min {result['min_ms']:.1f} ms; "
              f"{result['proposals']} proposals, {result['detections']} detections")
        for n, v in result["stages_ms"].items():
            print(f"  {n:<14} {v:9.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
