"""The runner: methods x bits x seeds on one dataset, each cell scored and stored.

For every cell the runner fits the method on the training role, encodes the
query and database roles, scores them with the shared evaluator and writes the
cell atomically as soon as it is done. A finished cell is never recomputed
unless ``force`` is set; a corrupt or half-written one is recomputed with a
warning; one computed under another configuration (another split, other
parameters, other conventions) or by an older hashbench is never overwritten
silently: the run stops with an error naming it before computing anything.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import store
from .datasets import HashingDataset, Split, get_dataset, relevant_pair_fraction
from .cell_job import CellJob, needs_features
from .codes import encode_packed
from .errors import ConfigError, DataError, ResultsError
from .execution import make_executor, select_shard
from .features import ImageInput, backbone_for, dataset_features, results_suffix
from .hasher import Hasher
from .provenance import now, provenance, thread_counts
from .registry import available_methods, get_method, resolve_method, split_variant
from .storage import atomic_write_json, json_digest
from .validation import check_bits

log = logging.getLogger("hashbench")


@dataclass
class RunConfig:
    """Everything that defines a run (the CLI builds one of these)."""

    dataset: str = "synthetic"
    data_root: Path | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    methods: list[str] = field(default_factory=lambda: ["all"])
    bits: list[int] = field(default_factory=lambda: [12, 24, 32, 48])
    seeds: list[int] = field(default_factory=lambda: [0])
    split_seed: int = 0
    split_file: Path | None = None
    results: Path = Path("results")
    cache: Path | None = None
    weights: str | None = None  # None: the dataset's default ("imagenet", or "random" for synthetic)
    backbone: str | None = None  # None: the dataset's default (AlexNet FC2); see hashbench.features.networks
    backbone_seed: int = 0
    device: str = "auto"
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)  # EvalConfig fields
    force: bool = False
    progress: bool = True
    command: str | None = None
    # the resolved experiment (hashbench.experiment), stored in the results folder and each cell's provenance
    experiment: dict[str, Any] | None = None
    jobs: int = 1  # cells in parallel on this machine (hashbench.execution)
    scheduler: str | None = None  # a dask.distributed scheduler's address: cells run on that cluster
    shard: tuple[int, int] | None = None  # (i, n): only part i of n of the grid (array jobs)
    workers: int = 0  # image-reading processes (torch DataLoader) for features and image-using methods
    # BLAS/OpenMP/torch/numba threads of each cell (None: all cores serially, cores // jobs with --jobs);
    # the same value makes serial and parallel runs agree bit for bit (torch's reductions depend on it)
    threads: int | None = None
    selected: str | None = None  # a criterion: use what `tune` stored for it (hashbench.selection)


@dataclass
class CellOutcome:
    method: str
    bits: int
    seed: int
    status: str  # "computed", "skipped" (already done)
    path: Path
    metrics: dict[str, float] = field(default_factory=dict)


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


def resolve_methods(names: list[str], dataset: HashingDataset) -> list[str]:
    """Expand ``all`` and check each method can run on ``dataset``.

    ``all`` leaves out methods whose inputs the dataset lacks (tag-using methods
    on an image-only dataset, image-using ones on a features-file dataset), with
    a notice; naming such a method explicitly is an error. It also leaves out
    supervised references (``"labels"`` in ``requires``; ask for ``supervised``)
    and methods with ``in_default_run = False`` (end-to-end modes too slow for
    the main job's CPU budget); those run when named.
    """
    known = available_methods()
    out: list[str] = []
    for name in names:
        if name == "supervised":  # the supervised references, which "all" leaves out
            out.extend(m for m in known if get_method(m).is_supervised())
            continue
        if name == "all":
            for m in known:
                if get_method(m).is_supervised():
                    continue  # "all" means the unsupervised methods; ask for "supervised" too
                if not get_method(m).in_default_run:  # the CPU-budget rule (Hasher.in_default_run)
                    log.info("not in 'all': %s (%s); name it to run it", m, get_method(m).not_in_default_run_because)
                    continue
                if "tags" in get_method(m).requires and not dataset.has_tags:
                    log.warning("skipping %s: it learns from tags and dataset %s has none", m, dataset.name)
                    continue
                if "images" in get_method(m).requires and not dataset.has_images:
                    log.warning("skipping %s: it learns from images and dataset %s has none", m, dataset.name)
                    continue
                out.append(m)
            continue
        cls, _ = resolve_method(name)  # unknown names or configurations: ConfigError listing the known ones
        if "tags" in cls.requires and not dataset.has_tags:
            raise ConfigError(
                f"method {name!r} learns from tags, but dataset {dataset.name!r} has no tags (image-only)"
            )
        if "images" in cls.requires and not dataset.has_images:
            raise ConfigError(
                f"method {name!r} learns from images, but dataset {dataset.name!r} has none "
                "(precomputed features only): run it on an image dataset, or use its features mode"
            )
        out.append(name)
    seen: set[str] = set()
    return [m for m in out if not (m in seen or seen.add(m))]


def _check_grid(bits: list[int], seeds: list[int]) -> None:
    if not bits:
        raise ConfigError("no bit lengths given")
    for b in bits:
        check_bits(b)  # each method checks its own maximum when it is built
    if not seeds:
        raise ConfigError("no seeds given")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ConfigError(f"seeds must be non-negative integers, got {s!r}")


class Runner:
    """Runs one :class:`RunConfig`. Build it, then call :meth:`run`."""

    def __init__(self, config: RunConfig, *, echo: Callable[[str], None] = print) -> None:
        self.config = config
        self.echo = echo
        _check_grid(config.bits, config.seeds)
        if isinstance(config.workers, bool) or not isinstance(config.workers, int) or config.workers < 0:
            raise ConfigError(f"workers must be a non-negative integer, got {config.workers!r}")
        from .evaluation import EvalConfig

        self.eval_config = EvalConfig(**config.evaluation)
        self.dataset = get_dataset(config.dataset, root=config.data_root, **config.dataset_options)
        self.methods = resolve_methods(config.methods, self.dataset)
        if not self.methods:
            raise ConfigError("no method to run")
        for m, params in config.method_params.items():
            if m not in self.methods:
                raise ConfigError(f"parameters given for {m!r}, which is not in this run ({', '.join(self.methods)})")
        self.split = self._load_split()
        # the backbone (or, for a features-file dataset, the file) the features come from
        self.backbone = backbone_for(self.dataset, config.backbone, config.weights, config.backbone_seed)
        self.dataset_key = self.dataset.results_key() + results_suffix(self.backbone, self.dataset.default_backbone)
        self.root = Path(config.results)
        self._features: dict[str, np.ndarray] | None = None
        self._features_info: dict[str, Any] | None = None

    # ------------------------------------------------------------- dataset
    def _load_split(self) -> Split:
        if self.config.split_file is not None:
            from .datasets.prepare import load_split

            return load_split(self.config.split_file, self.dataset)
        return self.dataset.make_split(self.config.split_seed)

    def _write_dataset_files(self) -> tuple[str, float]:
        split_json = self.split.to_json(self.dataset.ids)
        split_key = json_digest(split_json)
        folder = self.root / self.dataset_key
        split_path = folder / "splits" / f"{split_key}.json"
        if not split_path.is_file():
            atomic_write_json(split_path, split_json)
        chance = relevant_pair_fraction(self.dataset.labels[self.split.query], self.dataset.labels[self.split.database])
        atomic_write_json(
            folder / "dataset.json",
            {
                "fingerprint": self.dataset.fingerprint(),
                "summary": getattr(self.dataset, "summary", ""),
                "split_key": split_key,
                "split_file": str(split_path.relative_to(self.root)),
                "statistics": self.dataset.describe(self.split),
            },
        )
        return split_key, chance

    def _write_experiment_file(self) -> str | None:
        """The resolved experiment, rerunnable with ``run --config``, under ``<dataset>/experiments/``."""
        if self.config.experiment is None:
            return None
        digest = json_digest(self.config.experiment)
        path = self.root / self.dataset_key / "experiments" / f"{digest}.json"
        if not path.is_file():
            atomic_write_json(path, self.config.experiment)
        return str(path.relative_to(self.root))

    # ------------------------------------------------------------ features
    def _role_rows(self) -> dict[str, np.ndarray]:
        """Rows of each role inside the feature matrix of the union of roles."""
        union = np.unique(np.concatenate([self.split.query, self.split.database, self.split.train]))
        return {
            "union": union,
            **{r: np.searchsorted(union, getattr(self.split, r)) for r in ("query", "database", "train")},
        }

    def features(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Backbone features of each role (extracted once, then read from the cache), or the dataset's own."""
        if self._features is None:
            rows = self._role_rows()
            feats, info = dataset_features(
                self.dataset,
                rows["union"],
                self.backbone,
                cache=self.config.cache,
                device=self.config.device,
                progress=self.config.progress,
                workers=self.config.workers,
            )
            feats = np.asarray(feats)
            self._features = {r: feats[rows[r]] for r in ("query", "database", "train")}
            self._features_info = info
            if info.get("cache_hit"):
                self.echo(f"features: read from cache ({info['cache_key']})")
            else:
                self.echo(f"features: extracted in {info['extract_s']:.1f}s, cached as {info['cache_key']}")
        return self._features, self._features_info  # type: ignore[return-value]

    # --------------------------------------------------------------- cells
    def selection(self, method: str, bits: int) -> dict[str, Any] | None:
        """The stored selection this cell's parameters come from (``selected``), or None."""
        if not self.config.selected:
            return None
        from .selection import load_selection, selection_folder, summary

        split_key = json_digest(self.split.to_json(self.dataset.ids))
        record = load_selection(self.root, self.dataset_key, method, bits, self.config.selected, split_key)
        path = selection_folder(self.root, self.dataset_key, method, bits, self.config.selected) / "selection.json"
        return summary(record, str(path.relative_to(self.root)))

    def method_params(self, method: str, bits: int) -> dict[str, Any]:
        """A named configuration's values, then the selected ones, then the user's ``--param`` ones."""
        _, preset = resolve_method(method)  # "name@configuration": that named parameter set
        chosen = (self.selection(method, bits) or {}).get("chosen", {})
        return {**preset, **chosen, **self.config.method_params.get(method, {})}

    def cell_config(self, method: str, bits: int, seed: int, split_key: str) -> dict[str, Any]:
        """What determines a cell's result; its digest is the cell key."""
        params = self.method_params(method, bits)
        out = {
            "dataset": self.dataset.fingerprint(),
            "split": split_key,
            "method": method,
            "params": {**params, "bits": bits, "seed": seed},
            "backbone": self.backbone.to_dict(),
            "evaluation": self.eval_config.to_dict(),
        }
        sel = self.selection(method, bits)
        if sel is not None:
            out["selection"] = sel["key"]
        return out

    def make_hasher(self, method: str, bits: int, seed: int) -> Hasher:
        cls, _ = resolve_method(method)
        params = self.method_params(method, bits)
        try:
            return cls(bits=bits, seed=seed, **params)
        except TypeError as exc:
            raise ConfigError(
                f"{method}: bad parameters {sorted(params)} ({exc}); accepted: {', '.join(cls._param_names())}"
            ) from exc

    def run(self) -> RunSummary:
        cfg = self.config
        executor = make_executor(jobs=cfg.jobs, scheduler=cfg.scheduler, threads=cfg.threads)  # bad options fail first
        split_key, chance = self._write_dataset_files()
        self._write_experiment_file()
        grid = [(m, b, s) for m in self.methods for b in cfg.bits for s in cfg.seeds]
        if cfg.shard is not None:
            grid = select_shard(grid, *cfg.shard)
        plan = []
        problems = []
        for method, bits, seed in grid:
            path = store.cell_path(self.root, self.dataset_key, method, bits, seed)
            key = json_digest(self.cell_config(method, bits, seed, split_key))
            state, reason, _ = store.read_cell(path, key)
            if state in (store.CellState.STALE, store.CellState.OLD) and not cfg.force:
                problems.append(reason)
            plan.append((method, bits, seed, path, key))
        if problems:
            raise ResultsError(
                "these results would be overwritten: "
                + "; ".join(problems[:5])
                + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
                + ". Use another --results folder, or --force to recompute them."
            )
        self.echo(
            f"dataset {self.dataset_key}: {len(self.dataset)} items, split "
            f"{self.split.sizes()}, chance level {chance:.4f}"
        )
        self.echo(f"backbone: {self.backbone.describe()}")
        for method in self.methods:  # a method whose paper used another backbone says so (it runs on this one)
            preferred = getattr(resolve_method(method)[0], "preferred_backbone", None)
            if preferred and preferred != self.backbone.name:
                self.echo(f"  note: {method}'s paper uses {preferred}; this run uses {self.backbone.name} for every "
                          f"method (--backbone {preferred} for the paper's)")
        job = CellJob(self, split_key, chance)
        if not executor.in_process:
            if needs_features(self):
                self.features()  # extracted once here; workers read the cache
            plan = [(m, b, sd, p.absolute(), k) for m, b, sd, p, k in plan]  # workers may have another cwd
            self.echo(f"{len(plan)} cell(s) on {cfg.scheduler or f'{cfg.jobs} worker processes'}")
        done: dict[int, CellOutcome] = {}
        for i, (outcome, lines) in executor.run(job, plan):
            for line in lines:
                self.echo(line)
            done[i] = outcome
        outcomes = [done[i] for i in sorted(done)]
        return RunSummary(results=self.root, dataset_key=self.dataset_key, outcomes=outcomes)

    def _run_cell(
        self, method: str, bits: int, seed: int, path: Path, key: str, *, split_key: str, chance: float, blocking: bool
    ) -> CellOutcome | None:
        label = f"{method} {bits} bits seed {seed}"
        with store.cell_lock(path, blocking=blocking) as locked:
            if not locked:
                return None
            state, reason, cell = store.read_cell(path, key)
            if state == store.CellState.DONE and not self.config.force and cell is not None:
                self.echo(f"  {label}: done already, skipped")
                return CellOutcome(method, bits, seed, "skipped", path, cell.record.get("metrics", {}))
            if state == store.CellState.INVALID:
                warnings.warn(f"recomputing a corrupt results cell: {reason}", stacklevel=2)
                self.echo(f"  {label}: corrupt cell ({reason}), recomputing")
            record, arrays = self._compute_cell(method, bits, seed, key, split_key, chance)
            store.write_cell(path, record, **arrays)
            m = record["metrics"]
            shown = ", ".join(f"{k} {m[k]:.4f}" for k in ("mAP@5000", "mAP@all") if k in m)
            self.echo(f"  {label}: {shown} (fit {record['timings']['fit_s']:.1f}s)")
            return CellOutcome(method, bits, seed, "computed", path, m)

    def _images(self, role: str) -> ImageInput:
        from .features import resolve_device

        return ImageInput(self.dataset, getattr(self.split, role), self.backbone, cache=self.config.cache,
                          workers=self.config.workers,
                          pin_memory=self.config.workers > 0 and resolve_device(self.config.device).startswith("cuda"))

    def _evaluate_pieces(self, hasher: Hasher, feats: dict[str, np.ndarray] | None):
        from .evaluation.category import evaluate_category_aware

        if "features" in hasher.requires:
            q, db = hasher.encode_pieces(feats["query"]), hasher.encode_pieces(feats["database"])
        else:
            q, db = hasher.encode_pieces(images=self._images("query")), hasher.encode_pieces(images=self._images("database"))
        labels = self.dataset.labels
        if labels.ndim == 1:  # classes: category c is "is of class c"
            labels = np.eye(int(labels.max()) + 1, dtype=np.uint8)[labels]
        return evaluate_category_aware(q, db, labels[self.split.query], labels[self.split.database],
                                       self.eval_config, list(self.dataset.label_names))

    def _compute_cell(
        self, method: str, bits: int, seed: int, key: str, split_key: str, chance: float
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        from .evaluation import evaluate

        started = now()
        hasher = self.make_hasher(method, bits, seed)
        req = hasher.requires
        timings: dict[str, float | None] = {"features_s": None}
        feats = info = None
        if "features" in req:
            feats, info = self.features()
            timings["features_s"] = 0.0 if info.get("cache_hit") else info.get("extract_s")
        fit_inputs: dict[str, Any] = {}
        if "features" in req:
            fit_inputs["features"] = feats["train"]
        if "tags" in req:
            fit_inputs["tags"] = [self.dataset.tags[i] for i in self.split.train]  # type: ignore[index]
        if "images" in req:
            fit_inputs["images"] = self._images("train")
        if "labels" in req:  # supervised references: the training role's labels, never another role's
            fit_inputs["labels"] = self.dataset.labels[self.split.train]
        fit_threads = thread_counts()  # float results of multithreaded reductions can depend on them
        t0 = time.perf_counter()
        hasher.fit(**fit_inputs)
        timings["fit_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if "features" in req:
            q_codes = hasher.encode(feats["query"])
            db_codes = encode_packed(hasher.encode, feats["database"])  # chunk by chunk, packed
        else:
            q_codes = hasher.encode(images=self._images("query"))
            db_codes = hasher.encode(images=self._images("database"))
        timings["encode_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = evaluate(
            q_codes,
            db_codes,
            self.dataset.labels[self.split.query],
            self.dataset.labels[self.split.database],
            self.eval_config,
        )
        category_aware = None
        if callable(getattr(hasher, "encode_pieces", None)):
            # category-aware hashing (one code piece per category): its own retrieval mode and metric
            category_aware = self._evaluate_pieces(hasher, feats)
            result.metrics.update(category_aware.metrics)
        timings["evaluate_s"] = time.perf_counter() - t0
        record = {
            "cell_key": key,
            "hashbench_version": provenance()["code_version"],
            "dataset": {
                "key": self.dataset_key,
                "name": self.dataset.name,
                "fingerprint": self.dataset.fingerprint(),
                "summary": getattr(self.dataset, "summary", ""),
                "split": {
                    "protocol": self.split.protocol,
                    "seed": self.split.seed,
                    "sizes": self.split.sizes(),
                    "key": split_key,
                },
                "chance": chance,
            },
            "method": {**_method_info(method, hasher), "params": hasher.get_params(),
                       "selection": self.selection(method, bits)},
            "bits": bits,
            "seed": seed,
            "features": {
                "backbone": self.backbone.to_dict(),
                "description": self.backbone.describe(),
                "stage": getattr(self.backbone, "stage", None),
                "cache_key": (info or {}).get("cache_key"),
                "used": "features" in req,
            },
            "evaluation": result.config,
            "metrics": {k: float(v) for k, v in result.metrics.items()},
            "timings": timings,
            "history": hasher.training_history(),
            "fit_info": getattr(hasher, "fit_info_", {}) or {},
            **({"category_aware": {"per_category": category_aware.per_category, "config": category_aware.config}}
               if category_aware is not None else {}),
            "provenance": {**provenance(self.config.command), "started": started, "finished": now(),
                           "experiment": self.config.experiment, "threads": fit_threads},
        }
        arrays = {
            "query_codes": q_codes,
            "database_codes": db_codes,
            "curves": result.curves,
            "per_query": result.per_query,
        }
        return record, arrays


def _method_info(spec: str, hasher: Hasher) -> dict[str, Any]:
    """The method's registry info; a named configuration (``udht@paper``) is its own row."""
    info = type(hasher).info()
    _, variant = split_variant(spec)
    if variant is not None:
        info.update(name=spec, base=info["name"], configuration=variant,
                    display_name=f"{info['display_name']} @{variant}")
    return info


def run(config: RunConfig, *, echo: Callable[[str], None] = print) -> RunSummary:
    """Run a whole grid (see :class:`RunConfig`)."""
    return Runner(config, echo=echo).run()
