"""What produced a result: code version, library versions, hardware, time."""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ._version import __version__

LIBRARIES = ("numpy", "scipy", "scikit-learn", "torch", "torchvision", "gensim", "pandas", "numba", "matplotlib")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """hashbench's version, plus the git commit (and whether the tree was modified) when run from a checkout."""
    here = Path(__file__).resolve().parent.parent
    commit, dirty = None, None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=10, check=True,
        ).stdout
        dirty = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    version = __version__ + (f"+g{commit[:10]}" if commit else "") + (".dirty" if dirty else "")
    return {"code_version": version, "git_commit": commit, "git_dirty": dirty}


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@functools.lru_cache(maxsize=1)
def hardware() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except Exception:  # torch missing or broken CUDA: report no GPU
        gpu = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "gpu": gpu,
        "machine": platform.machine(),
    }


def thread_counts() -> dict[str, int]:
    """The threads computation uses now: torch's intra-op pool, numba's, and the largest native
    (BLAS/OpenMP) pool threadpoolctl sees. Recorded with each cell: the deep methods' float results
    can depend on torch's (the order of its multithreaded reductions)."""
    import numba
    import torch
    from threadpoolctl import threadpool_info

    pools = [int(p.get("num_threads", 0)) for p in threadpool_info()]
    return {"torch": int(torch.get_num_threads()), "numba": int(numba.get_num_threads()),
            "native": max(pools, default=0)}


def provenance(command: str | None = None) -> dict[str, Any]:
    return {
        **code_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": library_versions(),
        "hardware": hardware(),
        "command": command if command is not None else " ".join(sys.argv),
    }
