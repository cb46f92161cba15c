"""Where cells run: in this process, in parallel worker processes, or on a cluster.

The runner hands an executor a *job* and a list of *tasks* (its cells); the
executor knows nothing of methods, datasets or results. A job is a picklable
callable ``job(task, blocking) -> result | None``: with ``blocking=False`` it may
return None to say "another process holds this task, come back later".

* :class:`SerialExecutor` (``jobs=1``): one task after another in this process;
  tasks held elsewhere are deferred to the end, then waited for.
* :class:`JoblibExecutor` (``jobs=N``): N worker processes on this machine (joblib's
  loky backend), each limited to ``cores // N`` BLAS/OpenMP/torch/numba threads.
* :class:`DaskExecutor` (``scheduler=ADDRESS``): the tasks go to a running
  ``dask.distributed`` cluster; the workers must see the same results folder.

``threads``: the BLAS/OpenMP/torch/numba threads of every task, in place of those
defaults (a serial run otherwise keeps the libraries' own, all cores). Float results of
multithreaded reductions (torch's, for the deep methods) can depend on the thread count,
so a parallel run reproduces a serial one bit for bit when both use the same ``threads``.

``select_shard`` cuts a task list into n deterministic parts for array jobs
(Slurm ``--array``): run part i of n in each array task.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Protocol, Sequence

from ..errors import ConfigError
from .shard import parse_shard, select_shard
from .threads import limit_threads, threads_per_worker

Job = Callable[[Any, bool], Any]


class Executor(Protocol):
    #: True when tasks run in this very process (the job need not be picklable)
    in_process: bool

    def run(self, job: Job, tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Yield (task index, result) for every task, in the order they finish."""
        ...


def make_executor(jobs: int = 1, scheduler: str | None = None, threads: int | None = None) -> Executor:
    """The executor for ``--jobs`` / ``--scheduler`` / ``--threads`` (checked here, with clear errors)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be a positive integer, got {jobs!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be a positive integer (or unset), got {threads!r}")
    if scheduler:
        if jobs != 1:
            raise ConfigError("give either jobs (this machine) or a scheduler (a dask cluster), not both")
        from .distributed import DaskExecutor

        return DaskExecutor(scheduler, threads)
    if jobs == 1:
        from .local import SerialExecutor

        return SerialExecutor(threads)
    from .local import JoblibExecutor

    return JoblibExecutor(jobs, threads)


__all__ = ["Executor", "Job", "limit_threads", "make_executor", "parse_shard", "select_shard",
           "threads_per_worker"]
