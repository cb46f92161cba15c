"""EfficientNet-Lite0 on the CPU: the runtime and input size of the embedded default's feature extraction.

For each input side, images/s and CPU ms per image of the backbone (ImageNet weights, the 1,280-d pool) on
random inputs, batch 64, with torch's default (NCHW) memory format (the reference), channels-last (what
hashbench uses for timm networks), and onnxruntime when it is installed (not a dependency: measured to
see whether it is needed); all in one process, interleaved, best of ``--reps``. Also the random AlexNet
FC2 at 64 px (the former stage) and the trunk alone (what ``ImageInput.frozen_trunk`` caches).

    .venv/bin/python benchmarks/backbone.py [--sides 64,96,128,160,224] [--threads 2] [--reps 3]
"""

from __future__ import annotations

import argparse
import copy
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command line sets it: no spinning on a shared machine
import torch  # noqa: E402

from hashbench.features import BackboneSpec, build_backbone  # noqa: E402


def timed(f, n: int, reps: int) -> tuple[float, float]:
    """(images/s, CPU ms per image), the best of ``reps`` runs after one warm-up."""
    f()
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(reps):
        w, c = time.perf_counter(), time.process_time()
        f()
        best_wall, best_cpu = min(best_wall, time.perf_counter() - w), min(best_cpu, time.process_time() - c)
    return n / best_wall, best_cpu / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sides", default="64,96,128,160,224")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    n = args.batch
    with torch.inference_mode():
        alex = build_backbone(BackboneSpec(weights="random", resize=64, crop=64)).eval()
        x = torch.randn(n, 3, 64, 64)
        r, c = timed(lambda: alex(x), n, args.reps)
        print(f"random AlexNet FC2, 64 px: {r:7.0f} img/s, {c:5.1f} CPU ms/img (the former stage)")
    for side in (int(s) for s in args.sides.split(",")):
        net = build_backbone(BackboneSpec(name="lite0", weights="imagenet", resize=side, crop=side)).eval()
        cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
        x = torch.randn(n, 3, side, side)
        xc = x.contiguous(memory_format=torch.channels_last)
        runs = {"torch NCHW": lambda: net(x), "channels-last": lambda: cl(xc),
                "channels-last, trunk only": lambda: cl.trunk(xc)}
        if ort is not None:
            path = f"/tmp/hashbench-bench-lite0-{side}.onnx"
            torch.onnx.export(net, x[:2], path, dynamo=False, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "n"}})
            so = ort.SessionOptions()
            so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            xn = x.numpy()
            runs["onnxruntime"] = lambda: sess.run(None, {"x": xn})
        with torch.inference_mode():
            res = {k: timed(f, n, args.reps) for k, f in runs.items()}
        ref = res["torch NCHW"][0]
        print(f"EfficientNet-Lite0, {side} px:")
        for k, (r, c) in res.items():
            print(f"  {k:<26} {r:7.0f} img/s ({r / ref:4.1f}x NCHW), {c:5.1f} CPU ms/img, "
                  f"6,000 images in {6000 / r:5.0f} s")


if __name__ == "__main__":
    main()
