"""Thread limits inside a worker, so that workers x threads does not exceed the cores."""

from __future__ import annotations

import contextlib
from typing import Iterator


def available_cores() -> int:
    """Cores this process may use (CPU affinity and cgroup quotas, as joblib counts them)."""
    from joblib import cpu_count

    return max(1, int(cpu_count(only_physical_cores=False)))


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """max(1, cores // workers): BLAS/OpenMP/torch/numba threads each worker may use."""
    cores = available_cores() if cores is None else cores
    return max(1, cores // max(1, workers))


@contextlib.contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Limit BLAS and OpenMP (threadpoolctl), torch and numba to ``n`` threads for the block.

    threadpoolctl covers the native pools loaded so far (OpenBLAS, MKL, OpenMP of
    numpy, scipy, scikit-learn and torch); torch's intra-op pool and numba's
    parallel pool have their own setters. numba's setting is per calling thread,
    so this must run in the thread that runs the work (it does: the task itself).
    """
    from threadpoolctl import threadpool_limits

    import numba
    import torch  # imported now, so that its pool is limited before a cell first uses it

    torch_old = torch.get_num_threads()
    torch.set_num_threads(n)

    numba_old = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        numba.set_num_threads(numba_old)
        torch.set_num_threads(torch_old)
