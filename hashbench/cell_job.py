"""The runner's cells as jobs for the executors (``hashbench.execution``).

An executor knows nothing of methods or results: it calls ``job(task, blocking)``. A
:class:`CellJob` is that job for one run: in this process it calls the runner's own
``_run_cell``; pickled for a worker process (joblib, dask) it carries the runner once, without
its features (the worker reads them from the feature cache, filled before dispatch), and the
plugin files to load.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from .registry import resolve_method

if TYPE_CHECKING:
    from .runner import CellOutcome, Runner


class CellJob:
    """One cell's work as a picklable callable, for the executors (hashbench.execution).

    In this process it runs the runner's own ``_run_cell``. Pickled for a worker
    process, it carries the runner without its features (the worker reads them from
    the feature cache, filled before dispatch), the plugin files to load, and it
    returns the lines the cell would have printed, for this process to print.
    """

    def __init__(self, runner: Runner, split_key: str, chance: float) -> None:
        self.runner, self.split_key, self.chance = runner, split_key, chance

    def __call__(self, item: tuple, blocking: bool) -> tuple[CellOutcome, list[str]] | None:
        lines: list[str] = []
        runner = self.runner
        if getattr(self, "_remote", False):
            if needs_features(runner):
                runner.features()  # once per worker process, kept on the shared runner
            runner = copy.copy(runner)  # a worker may run several cells at once: its own echo
            runner.echo = lines.append
        outcome = runner._run_cell(*item, split_key=self.split_key, chance=self.chance, blocking=blocking)
        return None if outcome is None else (outcome, lines)

    def __getstate__(self) -> dict[str, Any]:
        import pickle
        import uuid

        from .registry import loaded_plugin_files
        from .storage import cache_dir

        if getattr(self, "_blob", None) is None:
            # pickled once, then shipped as bytes with every task; a worker unpickles it once
            runner = object.__new__(type(self.runner))
            runner.__dict__.update(self.runner.__dict__, _features=None, _features_info=None, echo=_quiet,
                                   root=self.runner.root.absolute())
            self._token = uuid.uuid4().hex
            self._blob = pickle.dumps(runner, protocol=pickle.HIGHEST_PROTOCOL)
        return {"token": self._token, "blob": self._blob, "split_key": self.split_key, "chance": self.chance,
                "plugins": loaded_plugin_files(), "cache": str(cache_dir())}

    def __setstate__(self, state: dict[str, Any]) -> None:
        import os
        import pickle

        from .registry import _METHODS, load_plugin_file

        os.environ.setdefault("HASHBENCH_CACHE", state["cache"])  # the worker's own wins
        for path, names in state["plugins"].items():
            if not all(n in _METHODS for n in names):
                load_plugin_file(path)
        runner = _WORKER_RUNNERS.get(state["token"])
        if runner is None:
            # bytes this run's own parent process pickled (joblib and dask ship every task as a pickle
            # anyway): the transport of our own object between our processes, never a file from outside
            runner = pickle.loads(state["blob"])
            _WORKER_RUNNERS.clear()  # one run at a time per worker process
            _WORKER_RUNNERS[state["token"]] = runner
        self.runner, self.split_key, self.chance = runner, state["split_key"], state["chance"]
        self._remote = True
        self._blob = None


#: in a worker process: the runner of the run it works for (its features loaded once)
_WORKER_RUNNERS: dict[str, Runner] = {}


def _quiet(line: str) -> None:
    """A worker's runner prints nothing itself (each cell's lines go back to the caller)."""


def needs_features(runner: Runner) -> bool:
    return any("features" in resolve_method(m)[0].requires for m in runner.methods)
