"""The prepared GPU script runs (on torch's CPU device here), so that its one run on a lent GPU machine
cannot fail on a typo: the torch evaluator gives the CPU kernels' numbers, and the UDHT step is timed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_script_smoke_run_on_torch_cpu():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "torch-cpu", "--quick"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "same numbers: yes" in out.stdout, out.stdout
    for ties in ("index", "random", "tie-aware"):
        assert f"ties={ties}: largest metric difference" in out.stdout
    assert "[2] UDHT end to end, 64 px" in out.stdout


def test_gpu_script_refuses_cuda_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        return
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py")], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode != 0 and "no CUDA device" in out.stderr
