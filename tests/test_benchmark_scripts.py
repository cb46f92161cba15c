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


def test_mutation_groups_name_existing_modules_and_test_files():
    """benchmarks/mutation.py is not run in CI; its table of groups must not rot silently."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mutation_script", ROOT / "benchmarks" / "mutation.py")
    mutation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mutation)
    assert set(mutation.GROUPS) == {"evaluation", "selection", "codes", "feature-file", "published"}
    for group, (modules, tests) in mutation.GROUPS.items():
        for pattern in modules:
            assert list(ROOT.glob(pattern)), f"{group}: no module matches {pattern}"
        for t in tests:
            if t.startswith("tests/"):
                path, _, name = t.partition("::")
                assert (ROOT / path).is_file(), f"{group}: no test file {path}"
                assert not name or f"def {name}(" in (ROOT / path).read_text(), f"{group}: no test {t}"
        text = mutation._pyproject(modules, tests)
        assert "[tool.mutmut]" in text and all(m in text for m in modules)
    assert mutation.score({"killed": 6, "timeout": 2, "survived": 1, "no_tests": 1}) == 0.8
