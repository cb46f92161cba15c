"""The runner: methods x bits x seeds on one dataset, each cell scored and stored.

It plans (:mod:`hashbench.plan`: the grid as frozen cell specs), refuses to overwrite
results of another configuration, hands the specs to an executor
(:mod:`hashbench.execution`: serial, joblib, dask) with the inputs they read, and
summarises. Each cell (:mod:`hashbench.cell`) fits the method on the training role,
encodes the query and database roles, scores them with the shared evaluator and is
written atomically as soon as it is done. A finished cell is never recomputed unless
``force`` is set; a corrupt or half-written one is recomputed with a warning; one
computed under another configuration (another split, other parameters, other
conventions) or by an older hashbench is never overwritten silently: the run stops
with an error naming it before computing anything.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import plan, store
from .cell import CellInputs, CellJob, CellOutcome
from .errors import ConfigError, ResultsError
from .execution import make_executor
from .options import RunConfig
from .plan import resolve_methods  # noqa: F401  (re-exported: it lived here)
from .registry import resolve_method

__all__ = ["CellOutcome", "RunConfig", "RunSummary", "Runner", "resolve_methods", "run"]


@dataclass
class RunSummary:
    results: Path
    dataset_key: str
    outcomes: list[CellOutcome]

    @property
    def computed(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.status == "computed"]

    @property
    def skipped(self) -> list[CellOutcome]:
        return [o for o in self.outcomes if o.status == "skipped"]


class Runner:
    """Runs one :class:`RunConfig`. Build it, then call :meth:`run`."""

    def __init__(self, config: RunConfig, *, echo: Callable[[str], None] = print) -> None:
        self.config = config
        self.echo = echo
        plan.check_grid(config.bits, config.seeds)
        if isinstance(config.workers, bool) or not isinstance(config.workers, int) or config.workers < 0:
            raise ConfigError(f"workers must be a non-negative integer, got {config.workers!r}")
        from .evaluation import EvalConfig

        self.eval_config = EvalConfig(**config.evaluation)
        dataset = plan.open_dataset(config.dataset, config.data_root, config.dataset_options)
        self.methods = plan.resolve_methods(config.methods, dataset)
        if not self.methods:
            raise ConfigError("no method to run")
        plan.check_params(config.method_params, self.methods)
        self.view = plan.open_view(dataset, split_file=config.split_file, split_seed=config.split_seed,
                                   backbone=config.backbone, weights=config.weights, backbone_seed=config.backbone_seed)
        self.dataset, self.split, self.backbone, self.dataset_key = dataset, self.view.split, self.view.backbone, self.view.key
        self.root = Path(config.results)
        self.inputs = CellInputs(self.view, cache=config.cache, device=config.device,
                                 workers=config.workers, progress=config.progress, command=config.command,
                                 experiment=config.experiment, echo=echo)

    def features(self):
        """Backbone features of each role (extracted once, then read from the cache), and their info."""
        return self.inputs.features()

    def cells(self) -> list[plan.CellSpec]:
        """The grid (or this shard of it) as frozen cell specs."""
        cfg = self.config
        return plan.plan_cells(self.view, self.methods, cfg.bits, cfg.seeds, root=self.root,
                               evaluation=self.eval_config, method_params=cfg.method_params,
                               selected=cfg.selected, force=cfg.force, shard=cfg.shard)

    def run(self) -> RunSummary:
        cfg, view = self.config, self.view
        executor = make_executor(jobs=cfg.jobs, scheduler=cfg.scheduler, threads=cfg.threads)  # bad options fail first
        store.write_dataset_record(self.root, view.key, split=view.split.to_json(view.dataset.ids),
                                   split_key=view.split_key, fingerprint=view.dataset.fingerprint(),
                                   summary=getattr(view.dataset, "summary", ""),
                                   statistics=view.dataset.describe(view.split))
        if cfg.experiment is not None:
            store.write_experiment(self.root, view.key, cfg.experiment)
        specs = self.cells()
        problems = []
        for spec in specs:
            state, reason, _ = store.read_cell(spec.path, spec.key)
            if state in (store.CellState.STALE, store.CellState.OLD) and not cfg.force:
                problems.append(reason)
        if problems:
            raise ResultsError(
                "these results would be overwritten: " + "; ".join(problems[:5])
                + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
                + ". Use another --results folder, or --force to recompute them."
            )
        self.echo(f"dataset {view.key}: {len(view.dataset)} items, split {view.split.sizes()}, "
                  f"chance level {self.inputs.chance:.4f}")
        self.echo(f"backbone: {view.backbone.describe()}")
        for method in self.methods:  # a method whose paper used another backbone says so (it runs on this one)
            preferred = getattr(resolve_method(method)[0], "preferred_backbone", None)
            if preferred and preferred != view.backbone.name:
                self.echo(f"  note: {method}'s paper uses {preferred}; this run uses {view.backbone.name} for every "
                          f"method (--backbone {preferred} for the paper's)")
        if not executor.in_process:
            if plan.needs_features(self.methods):
                self.features()  # extracted once here; workers read the cache
            specs = [dataclasses.replace(s, path=s.path.absolute()) for s in specs]  # workers may have another cwd
            self.echo(f"{len(specs)} cell(s) on {cfg.scheduler or f'{cfg.jobs} worker processes'}")
        done: dict[int, CellOutcome] = {}
        for i, (outcome, lines) in executor.run(CellJob(self.inputs, self.echo), specs):
            for line in lines:
                self.echo(line)
            done[i] = outcome
        return RunSummary(results=self.root, dataset_key=view.key, outcomes=[done[i] for i in sorted(done)])


def run(config: RunConfig, *, echo: Callable[[str], None] = print) -> RunSummary:
    """Run a whole grid (see :class:`RunConfig`)."""
    return Runner(config, echo=echo).run()
