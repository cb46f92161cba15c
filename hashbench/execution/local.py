"""Executors on this machine: serial, and joblib worker processes."""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from .threads import limit_threads, threads_per_worker


class SerialExecutor:
    """One task after another in this process.

    A task another process holds (the job returns None when not blocking) is
    deferred and waited for at the end, so two runs sharing a results folder work
    through different cells instead of queueing behind each other.
    """

    in_process = True

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads  # None: the libraries' own thread counts

    def run(self, job: Any, tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        deferred = []
        for i, task in enumerate(tasks):
            result = _call_limited(job, task, self.threads, blocking=False)
            if result is None:
                deferred.append(i)
            else:
                yield i, result
        for i in deferred:
            yield i, _call_limited(job, tasks[i], self.threads)


def _call_limited(job: Any, task: Any, threads: int | None, blocking: bool = True) -> Any:
    """``job(task, blocking)`` with ``threads`` threads (None: the libraries' own)."""
    if threads is None:
        return job(task, blocking)
    with limit_threads(threads):
        return job(task, blocking)


class JoblibExecutor:
    """``jobs`` worker processes (joblib's loky backend), one task at a time each.

    Each worker gets ``cores // jobs`` threads (or ``threads``) for BLAS, OpenMP, torch and numba:
    through the environment when loky starts it (``inner_max_num_threads``, read by
    the libraries as they load) and again around every task (:func:`limit_threads`).
    Workers wait for a task another process holds (blocking), since the pool has
    other tasks to get on with meanwhile.
    """

    in_process = False

    def __init__(self, jobs: int, threads: int | None = None) -> None:
        self.jobs = jobs
        self.threads = threads if threads is not None else threads_per_worker(jobs)

    def run(self, job: Any, tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from joblib import Parallel, delayed, parallel_config

        with parallel_config(backend="loky", inner_max_num_threads=self.threads):
            results = Parallel(n_jobs=self.jobs, batch_size=1, return_as="generator_unordered")(
                delayed(_indexed)(i, job, task, self.threads) for i, task in enumerate(tasks)
            )
            yield from results


def _indexed(i: int, job: Any, task: Any, threads: int) -> tuple[int, Any]:
    return i, _call_limited(job, task, threads)
