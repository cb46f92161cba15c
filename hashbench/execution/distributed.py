"""Cells on a running dask.distributed cluster (``run --scheduler ADDRESS``).

Start a cluster the usual way, e.g. ``dask scheduler`` on one host and
``dask worker tcp://HOST:8786 --nworkers 4 --nthreads 1`` on each machine (or
``dask_jobqueue`` on Slurm/PBS), with the results folder (and, to share the
feature cache, ``$HASHBENCH_CACHE``) on a file system all of them see. Cells are
locked with lock files that work on network file systems
(:mod:`hashbench.lockfile`), so several runs, clusters or shards may share one
results folder. A worker that dies mid-cell leaves no half cell (cells are
written to a temporary folder and renamed into place); the scheduler gives its
task to another worker, which takes over the dead worker's lock and computes
the cell again.

Each task runs with ``cores // task slots on its host`` BLAS/OpenMP/torch/numba
threads (task slots: the threads of every worker the scheduler knows on that host
when the run starts), so workers x threads does not exceed a host's cores; or with
``threads`` (``run --threads``) when given. Workers
with one thread each (``--nthreads 1``) suit cells best: a cell is a whole
fit/encode/evaluate and uses its threads itself.
"""

from __future__ import annotations

import uuid
from typing import Any, Iterator, Sequence

from ..errors import ConfigError
from .threads import limit_threads, threads_per_worker


def _call_on_worker(task: Any, job: Any, index: int, host_threads: dict[str, int],
                    threads: int | None = None) -> tuple[int, Any]:
    from distributed import get_worker

    worker = get_worker()
    # every task slot of every worker on this host shares its cores
    slots = host_threads.get(worker.address.rsplit(":", 1)[0]) or int(worker.state.nthreads)
    with limit_threads(threads if threads is not None else threads_per_worker(slots)):
        return index, job(task, True)


def _threads_by_host(info: dict[str, Any]) -> dict[str, int]:
    """Task slots (worker threads) per host, from the scheduler's view of its workers."""
    out: dict[str, int] = {}
    for address, w in info.get("workers", {}).items():
        host = address.rsplit(":", 1)[0]
        out[host] = out.get(host, 0) + int(w.get("nthreads", 1))
    return out


class DaskExecutor:
    in_process = False

    def __init__(self, address: str, threads: int | None = None) -> None:
        try:
            import distributed  # noqa: F401
        except ImportError as exc:  # a declared dependency, but say what to do if it is missing
            raise ConfigError('--scheduler needs dask.distributed: pip install "dask[distributed]"') from exc
        self.address = address
        self.threads = threads  # None: cores // task slots on each host

    def _client(self):
        from distributed import Client

        try:
            return Client(self.address, timeout="30s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"no dask scheduler answered at {self.address!r}: {exc}") from exc

    def run(self, job: Any, tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        run_id = uuid.uuid4().hex[:12]
        with self._client() as client:
            # sent once to every worker, not once per task
            shared = client.scatter(job, broadcast=True, hash=False)
            host_threads = _threads_by_host(client.scheduler_info())
            futures = [
                client.submit(_call_on_worker, task, shared, i, host_threads, self.threads, pure=False,
                              key=f"hashbench-cell-{run_id}-{i}")
                for i, task in enumerate(tasks)
            ]
            try:
                for fut in as_completed(futures, loop=client.loop):
                    yield fut.result()
            finally:
                client.cancel(futures)
