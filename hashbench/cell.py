"""One cell: fit a method on the training role, encode query and database, score, store.

* :func:`compute_cell` ``(spec, inputs) -> CellResult`` -- the computation, a plain
  function: a :class:`~hashbench.plan.CellSpec` says what (method, parameters, bits,
  seed, evaluation conventions, and which inputs it reads), :class:`CellInputs` hold
  those inputs (the dataset view and its features). It knows no runner and no store.
* :func:`run_cell` -- one cell against the results store: take its lock, skip it when
  it is done already, otherwise compute and write it atomically.
* :class:`CellJob` -- :func:`run_cell` as the picklable job the executors
  (:mod:`hashbench.execution`) call with each spec: pickled for worker processes
  (joblib, dask) it carries the inputs once, without their features (a worker reads
  those from the feature cache, filled before dispatch), and the plugin files to load.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import store
from .codes import encode_packed
from .features import ImageInput, dataset_features
from .hasher import Hasher
from .plan import CellSpec, DataView
from .provenance import now, provenance, thread_counts
from .registry import resolve_method, split_variant


@dataclass
class CellOutcome:
    method: str
    bits: int
    seed: int
    status: str  # "computed", "skipped" (already done)
    path: Path
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class CellResult:
    """A computed cell: its record (``cell.json``) and its arrays (codes, curves, per-query scores)."""

    record: dict[str, Any]
    arrays: dict[str, Any]


def _quiet(line: str) -> None:
    """Prints nothing (a worker's lines go back to the caller)."""


class CellInputs:
    """What the cells of one dataset view read: the dataset, its split, the backbone's
    features of each role (extracted or read from the cache once, on first use), and the
    run's provenance that every cell records (``command``, ``experiment``).

    ``cache``, ``device``, ``workers`` and ``progress`` say how features are obtained and
    images read; ``echo`` where the features line goes.
    """

    def __init__(self, view: DataView, *, cache: str | Path | None = None, device: str = "auto",
                 workers: int = 0, progress: bool = True, command: str | None = None,
                 experiment: dict[str, Any] | None = None, echo: Callable[[str], None] = _quiet) -> None:
        self.view = view
        self._chance: float | None = None
        self.cache, self.device, self.workers, self.progress = cache, device, workers, progress
        self.command, self.experiment = command, experiment
        self.echo = echo
        self._features: dict[str, np.ndarray] | None = None
        self._features_info: dict[str, Any] | None = None

    @property
    def chance(self) -> float:
        """The fraction of relevant query-database pairs (computed once)."""
        if self._chance is None:
            self._chance = self.view.chance()
        return self._chance

    @property
    def dataset(self):
        return self.view.dataset

    @property
    def split(self):
        return self.view.split

    def role_rows(self) -> dict[str, np.ndarray]:
        """Rows of each role inside the feature matrix of the union of roles."""
        split = self.split
        union = np.unique(np.concatenate([split.query, split.database, split.train]))
        return {"union": union, **{r: np.searchsorted(union, getattr(split, r)) for r in ("query", "database", "train")}}

    def features(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Backbone features of each role (extracted once, then read from the cache), or the dataset's own."""
        if self._features is None:
            rows = self.role_rows()
            feats, info = dataset_features(self.dataset, rows["union"], self.view.backbone, cache=self.cache,
                                           device=self.device, progress=self.progress, workers=self.workers)
            feats = np.asarray(feats)
            self._features = {r: feats[rows[r]] for r in ("query", "database", "train")}
            self._features_info = info
            if info.get("cache_hit"):
                self.echo(f"features: read from cache ({info['cache_key']})")
            else:
                self.echo(f"features: extracted in {info['extract_s']:.1f}s, cached as {info['cache_key']}")
        return self._features, self._features_info  # type: ignore[return-value]

    def images(self, role: str) -> ImageInput:
        from .features import resolve_device

        return ImageInput(self.dataset, getattr(self.split, role), self.view.backbone, cache=self.cache,
                          workers=self.workers,
                          pin_memory=self.workers > 0 and resolve_device(self.device).startswith("cuda"))

    def __getstate__(self) -> dict[str, Any]:
        # a worker reads the features from the cache (filled before dispatch) and prints nothing itself
        return {**self.__dict__, "_features": None, "_features_info": None, "echo": _quiet}


# ------------------------------------------------------------------ the computation
def make_hasher(spec: CellSpec) -> Hasher:
    from .errors import ConfigError

    cls, _ = resolve_method(spec.method)
    params = spec.param_dict
    try:
        return cls(bits=spec.bits, seed=spec.seed, **params)
    except TypeError as exc:
        raise ConfigError(
            f"{spec.method}: bad parameters {sorted(params)} ({exc}); accepted: {', '.join(cls._param_names())}"
        ) from exc


def compute_cell(spec: CellSpec, inputs: CellInputs) -> CellResult:
    """Fit ``spec``'s method on the training role, encode the query and database roles, score them."""
    from .evaluation import evaluate

    view = inputs.view
    if (spec.view, spec.split_key, spec.backbone) != (view.key, view.split_key, view.backbone):
        raise ValueError(f"cell {spec.label} reads {spec.view} (split {spec.split_key}), "
                         f"not the inputs given ({view.key}, split {view.split_key})")
    dataset, split = view.dataset, view.split
    started = now()
    hasher = make_hasher(spec)
    req = hasher.requires
    timings: dict[str, float | None] = {"features_s": None}
    feats = info = None
    if "features" in req:
        feats, info = inputs.features()
        timings["features_s"] = 0.0 if info.get("cache_hit") else info.get("extract_s")
    fit_inputs: dict[str, Any] = {}
    if "features" in req:
        fit_inputs["features"] = feats["train"]
    if "tags" in req:
        fit_inputs["tags"] = [dataset.tags[i] for i in split.train]  # type: ignore[index]
    if "images" in req:
        fit_inputs["images"] = inputs.images("train")
    if "labels" in req:  # supervised references: the training role's labels, never another role's
        fit_inputs["labels"] = dataset.labels[split.train]
    fit_threads = thread_counts()  # float results of multithreaded reductions can depend on them
    t0 = time.perf_counter()
    hasher.fit(**fit_inputs)
    timings["fit_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if "features" in req:
        q_codes = hasher.encode(feats["query"])
        db_codes = encode_packed(hasher.encode, feats["database"])  # chunk by chunk, packed
    else:
        q_codes = hasher.encode(images=inputs.images("query"))
        db_codes = hasher.encode(images=inputs.images("database"))
    timings["encode_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = evaluate(q_codes, db_codes, dataset.labels[split.query], dataset.labels[split.database], spec.evaluation)
    category_aware = None
    if callable(getattr(hasher, "encode_pieces", None)):
        # category-aware hashing (one code piece per category): its own retrieval mode and metric
        category_aware = _evaluate_pieces(hasher, feats, inputs, spec.evaluation)
        result.metrics.update(category_aware.metrics)
    timings["evaluate_s"] = time.perf_counter() - t0
    record = {
        "cell_key": spec.key,
        "hashbench_version": provenance()["code_version"],
        "dataset": {
            "key": view.key,
            "name": dataset.name,
            "fingerprint": dataset.fingerprint(),
            "summary": getattr(dataset, "summary", ""),
            "split": {"protocol": split.protocol, "seed": split.seed, "sizes": split.sizes(), "key": view.split_key},
            "chance": inputs.chance,
        },
        "method": {**_method_info(spec.method, hasher), "params": hasher.get_params(), "selection": spec.selection},
        "bits": spec.bits,
        "seed": spec.seed,
        "features": {
            "backbone": view.backbone.to_dict(),
            "description": view.backbone.describe(),
            "stage": getattr(view.backbone, "stage", None),
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
        "provenance": {**provenance(inputs.command), "started": started, "finished": now(),
                       "experiment": inputs.experiment, "threads": fit_threads},
    }
    arrays = {"query_codes": q_codes, "database_codes": db_codes, "curves": result.curves,
              "per_query": result.per_query}
    return CellResult(record, arrays)


def _evaluate_pieces(hasher: Hasher, feats: dict[str, np.ndarray] | None, inputs: CellInputs, config: Any):
    from .evaluation.category import evaluate_category_aware

    if "features" in hasher.requires:
        q, db = hasher.encode_pieces(feats["query"]), hasher.encode_pieces(feats["database"])
    else:
        q, db = hasher.encode_pieces(images=inputs.images("query")), hasher.encode_pieces(images=inputs.images("database"))
    dataset, split = inputs.dataset, inputs.split
    labels = dataset.labels
    if labels.ndim == 1:  # classes: category c is "is of class c"
        labels = np.eye(int(labels.max()) + 1, dtype=np.uint8)[labels]
    return evaluate_category_aware(q, db, labels[split.query], labels[split.database], config,
                                   list(dataset.label_names))


def _method_info(spec: str, hasher: Hasher) -> dict[str, Any]:
    """The method's registry info; a named configuration (``udht@paper``) is its own row."""
    info = type(hasher).info()
    _, variant = split_variant(spec)
    if variant is not None:
        info.update(name=spec, base=info["name"], configuration=variant,
                    display_name=f"{info['display_name']} @{variant}")
    return info


# ------------------------------------------------------------------ the cell against the store
def run_cell(spec: CellSpec, inputs: CellInputs, *, blocking: bool = True,
             echo: Callable[[str], None] = print) -> CellOutcome | None:
    """Compute and store the cell of ``spec`` unless the store holds it finished (or ``spec.force``).

    Under the cell's lock: with ``blocking=False`` it returns None at once when another
    process holds it. A corrupt cell is recomputed with a warning.
    """
    path = spec.path
    with store.cell_lock(path, blocking=blocking) as locked:
        if not locked:
            return None
        state, reason, cell = store.read_cell(path, spec.key)
        if state == store.CellState.DONE and not spec.force and cell is not None:
            echo(f"  {spec.label}: done already, skipped")
            return CellOutcome(spec.method, spec.bits, spec.seed, "skipped", path, cell.record.get("metrics", {}))
        if state == store.CellState.INVALID:
            warnings.warn(f"recomputing a corrupt results cell: {reason}", stacklevel=2)
            echo(f"  {spec.label}: corrupt cell ({reason}), recomputing")
        result = compute_cell(spec, inputs)
        store.write_cell(path, result.record, **result.arrays)
        m = result.record["metrics"]
        shown = ", ".join(f"{k} {m[k]:.4f}" for k in ("mAP@5000", "mAP@all") if k in m)
        echo(f"  {spec.label}: {shown} (fit {result.record['timings']['fit_s']:.1f}s)")
        return CellOutcome(spec.method, spec.bits, spec.seed, "computed", path, m)


class CellJob:
    """:func:`run_cell` for the executors: ``job(spec, blocking) -> (outcome, lines) | None``.

    In this process it prints each cell's lines through ``echo`` as they come. Pickled for a
    worker process it carries the inputs once (as bytes, unpickled once per worker and kept
    there with their features) and the plugin files to load; it returns the lines the cell
    would have printed, for this process to print.
    """

    def __init__(self, inputs: CellInputs, echo: Callable[[str], None] = print) -> None:
        self.inputs, self.echo = inputs, echo
        self._remote = False

    def __call__(self, spec: CellSpec, blocking: bool) -> tuple[CellOutcome, list[str]] | None:
        lines: list[str] = []
        # a worker may run several cells at once: each collects its own lines
        outcome = run_cell(spec, self.inputs, blocking=blocking, echo=lines.append if self._remote else self.echo)
        return None if outcome is None else (outcome, lines)

    def __getstate__(self) -> dict[str, Any]:
        import pickle
        import uuid

        from .registry import loaded_plugin_files
        from .storage import cache_dir

        if getattr(self, "_blob", None) is None:
            # pickled once, then shipped as bytes with every task; a worker unpickles it once
            self._token = uuid.uuid4().hex
            self._blob = pickle.dumps(self.inputs, protocol=pickle.HIGHEST_PROTOCOL)
        return {"token": self._token, "blob": self._blob, "plugins": loaded_plugin_files(), "cache": str(cache_dir())}

    def __setstate__(self, state: dict[str, Any]) -> None:
        import os
        import pickle

        from .registry import _METHODS, load_plugin_file

        os.environ.setdefault("HASHBENCH_CACHE", state["cache"])  # the worker's own wins
        for path, names in state["plugins"].items():
            if not all(n in _METHODS for n in names):
                load_plugin_file(path)
        inputs = _WORKER_INPUTS.get(state["token"])
        if inputs is None:
            # bytes this run's own parent process pickled (joblib and dask ship every task as a pickle
            # anyway): the transport of our own object between our processes, never a file from outside
            inputs = pickle.loads(state["blob"])
            _WORKER_INPUTS.clear()  # one run at a time per worker process
            _WORKER_INPUTS[state["token"]] = inputs
        self.inputs, self.echo, self._remote, self._blob = inputs, _quiet, True, None


#: in a worker process: the inputs of the run it works for (their features loaded once)
_WORKER_INPUTS: dict[str, CellInputs] = {}
