"""The GPU checks, in one short script to run once on a machine with CUDA.

    python benchmarks/gpu.py                      # on the GPU machine (a few minutes)
    python benchmarks/gpu.py --device torch-cpu --quick   # a smoke run of the same code on a CPU

1. **Evaluator**: Q=2,000 queries against N=1,000,000 items at 64 bits (21 labels; the data of
   ``evaluator.py``), every default metric and each tie order, on the device (the torch path, database
   packed on the device, queries chunked within ``HASHBENCH_EVAL_DEVICE_BUDGET``) against the CPU's numba
   kernels in the same process: the metrics must be the same (printed: the largest difference), and the
   pairs per second and the device's peak memory are printed for each.
2. **UDHT end to end**: training steps per second at 224 px, batch 50 (``udht.py``'s measurement: a full
   UDHT step against a plain AlexNet forward and backward with a dummy loss, same batch and size).

Each figure is printed with the device's name; paste them into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))   # run from a checkout without installing
sys.path.insert(0, str(HERE))

from evaluator import make_data  # noqa: E402

from hashbench.evaluation import EvalConfig, evaluate  # noqa: E402


def evaluator_check(device: str, nq: int, n: int, bits: int) -> float:
    """Device against CPU for each tie order; returns the largest metric difference seen."""
    import torch

    qc, dc, ql, dl = make_data(nq, n, bits, 21, seed=1)
    pairs = nq * n
    cuda = device.startswith("cuda")
    worst = 0.0
    for ties in ("index", "random", "tie-aware"):
        runs = {}
        for dev in ("cpu", device):
            cfg = EvalConfig(device=dev, ties=ties)
            evaluate(qc[:4], dc[:2000], ql[:4], dl[:2000], cfg)   # compile / initialise first
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            res = evaluate(qc, dc, ql, dl, cfg)
            if cuda:
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            peak = f"; device peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda and dev != "cpu" else ""
            runs[dev] = res.metrics
            print(f"  ties={ties:9s} {dev:9s} {dt:7.2f} s = {pairs / dt / 1e9:6.2f} billion pairs/s "
                  f"(mAP@5000 {res.metrics['mAP@5000']:.6f}){peak}", flush=True)
        diff = max(abs(runs["cpu"][k] - runs[device][k]) for k in runs["cpu"])
        worst = max(worst, diff)
        print(f"  ties={ties}: largest metric difference device vs CPU {diff:.2e}", flush=True)
    return worst


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="Q=200, N=20,000; UDHT 2 steps at 64 px")
    p.add_argument("--skip-udht", action="store_true")
    args = p.parse_args()
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("benchmarks/gpu.py: torch sees no CUDA device; run it on the GPU machine "
                 "(or --device torch-cpu --quick for a smoke run)")
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "torch's CPU device"
    print(f"device {args.device} ({where}); torch {torch.__version__}; {os.cpu_count()} CPU cores; "
          f"HASHBENCH_EVAL_DEVICE_BUDGET={os.environ.get('HASHBENCH_EVAL_DEVICE_BUDGET', 'default 2 GiB')}")
    nq, n = (200, 20_000) if args.quick else (2000, 1_000_000)
    print(f"[1] evaluator, Q={nq} N={n} b=64, every default metric:", flush=True)
    worst = evaluator_check(args.device, nq, n, 64)
    print(f"    same numbers: {'yes' if worst <= 1e-9 else 'NO'} (largest difference {worst:.2e})")
    if args.skip_udht:
        return
    from udht import end_to_end

    dev = "cpu" if args.device == "torch-cpu" else args.device
    size, steps = (64, 2) if args.quick else (224, 50)
    ours, plain = end_to_end(50, size, steps, warmup=2, device=dev, seed=0)
    print(f"[2] UDHT end to end, {size} px, batch 50: {ours:.1f} img/s = {ours / 50:.2f} steps/s; plain AlexNet "
          f"fwd+bwd {plain:.1f} img/s; ratio {ours / plain:.2f} (target >= 0.80)")


if __name__ == "__main__":
    main()
