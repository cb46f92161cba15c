"""The plan: a request turned into the grid, as data. Used by ``run`` and by ``tune``.

Below both commands and above the library (registry, datasets, features, selection
records), the plan says *what* is to be computed and nothing about how or where:

* :func:`resolve_methods` -- ``all``, ``supervised`` and ``name@configuration``, checked
  against what the dataset offers (tags, images);
* :func:`check_grid` -- bit lengths and seeds;
* :func:`check_params` -- the one parameter check (run, tune and experiment files):
  every ``--param`` names a method of the grid and a parameter that method takes;
* :func:`open_view` -- the dataset view: the dataset, its split, the features' backbone
  and the results folder they name;
* :func:`plan_cells` -- one frozen :class:`CellSpec` per cell, its
  parameters (named configuration, then the stored selection, then the user's)
  attached and its key (the digest of everything that decides its result) computed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .datasets import HashingDataset, Split, get_dataset, relevant_pair_fraction
from .errors import ConfigError
from .execution import select_shard
from .features import backbone_for, results_suffix
from .registry import available_methods, get_method, resolve_method
from .storage import json_digest
from .store import cell_path
from .validation import check_bits

log = logging.getLogger("hashbench")


# ------------------------------------------------------------------ methods, bits, seeds, parameters
def resolve_methods(names: Sequence[str], dataset: HashingDataset) -> list[str]:
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


def check_grid(bits: Sequence[int], seeds: Sequence[int]) -> None:
    """Bit lengths and method seeds: at least one of each, every one valid."""
    if not bits:
        raise ConfigError("no bit lengths given")
    for b in bits:
        check_bits(b)  # each method checks its own maximum when it is built
    if not seeds:
        raise ConfigError("no seeds given")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ConfigError(f"seeds must be non-negative integers, got {s!r}")


def check_method_params(method: str, params: Mapping[str, Any]) -> None:
    """Every name in ``params`` is a parameter of ``method`` (``bits`` and ``seed`` come from the grid)."""
    cls, _ = resolve_method(method)
    accepted = [p for p in cls._param_names() if p not in ("bits", "seed")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(f"unknown parameter {', '.join(repr(u) for u in unknown)}; "
                          f"known parameters of {method}: {', '.join(accepted) or '(none)'}")


def check_params(method_params: Mapping[str, Mapping[str, Any]], methods: Sequence[str], *,
                 where: str = "in this run") -> None:
    """The one parameter check of run and tune: each ``--param`` names a method of ``methods``
    (resolved, so ``all`` is spelled out) and a parameter that method takes."""
    for method, params in method_params.items():
        if method not in methods:
            raise ConfigError(f"parameters given for {method!r}, which is not {where} ({', '.join(methods)})")
        check_method_params(method, params)


def needs_features(methods: Sequence[str]) -> bool:
    """Whether any of ``methods`` reads the backbone features."""
    return any("features" in resolve_method(m)[0].requires for m in methods)


# ------------------------------------------------------------------ the dataset view
@dataclass(frozen=True)
class DataView:
    """A dataset, its split and the backbone of its features: what a run's cells (or a tune's
    trials) read. ``key`` names its results folder, ``split_key`` the split (a digest of its ids)."""

    dataset: HashingDataset
    split: Split
    backbone: Any  # a BackboneSpec, or a features-file dataset's ProvidedFeatures
    key: str
    split_key: str

    def chance(self) -> float:
        """The fraction of relevant query-database pairs (a random ranking's precision)."""
        labels = self.dataset.labels
        return relevant_pair_fraction(labels[self.split.query], labels[self.split.database])


def open_dataset(name: str, root: str | Path | None = None, options: Mapping[str, Any] | None = None
                 ) -> HashingDataset:
    return get_dataset(name, root=root, **dict(options or {}))


def open_view(dataset: HashingDataset, *, split_file: str | Path | None = None, split_seed: int = 0,
              backbone: str | None = None, weights: str | None = None, backbone_seed: int = 0) -> DataView:
    """The view of ``dataset``: a saved split (``split_file``) or a seeded one, and the backbone."""
    if split_file is not None:
        from .datasets.prepare import load_split

        split = load_split(split_file, dataset)
    else:
        split = dataset.make_split(split_seed)
    spec = backbone_for(dataset, backbone, weights, backbone_seed)
    return DataView(dataset=dataset, split=split, backbone=spec, key=dataset.results_key() + results_suffix(spec, dataset.default_backbone),
                    split_key=json_digest(split.to_json(dataset.ids)))


# ------------------------------------------------------------------ the cells
@dataclass(frozen=True)
class CellSpec:
    """One cell as a value: everything that decides its result, small and picklable.

    It names the inputs it reads (``view``, ``split_key``: the dataset view; ``backbone``:
    the features) and carries its method, hyper-parameters, bits, seed and evaluation
    conventions, its key and where it is stored. :func:`hashbench.cell.compute_cell` turns
    it and those inputs into a result; executors hand specs to workers, never the runner.
    """

    method: str  # a registered name, or name@configuration
    bits: int
    seed: int
    params: tuple[tuple[str, Any], ...]  # the hyper-parameters (sorted items; see :attr:`param_dict`)
    key: str  # the digest of everything that decides the result (stored in the cell)
    path: Path  # the cell's folder in the results store
    view: str  # the dataset view it reads: its results folder name (dataset, variant, backbone)
    split_key: str  # ... and its split
    backbone: Any  # the features it reads (a frozen BackboneSpec or ProvidedFeatures)
    evaluation: Any  # the evaluator's conventions (a frozen EvalConfig)
    selection_json: str | None = field(default=None, repr=False)  # the stored selection its values come from
    force: bool = False  # compute even if the store holds it finished

    @classmethod
    def make(cls, *, params: Mapping[str, Any], selection: Mapping[str, Any] | None = None, **fields: Any
             ) -> CellSpec:
        return cls(params=tuple(sorted(params.items())),
                   selection_json=None if selection is None else json.dumps(selection), **fields)

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def selection(self) -> dict[str, Any] | None:
        """What the cell records about the selection (``tune``) its parameters came from."""
        return None if self.selection_json is None else json.loads(self.selection_json)

    @property
    def label(self) -> str:
        return f"{self.method} {self.bits} bits seed {self.seed}"


def selection_summary(root: str | Path, view: DataView, method: str, bits: int, criterion: str | None
                      ) -> dict[str, Any] | None:
    """What ``tune --criterion CRITERION`` stored for this method and bit length (None: no criterion)."""
    if not criterion:
        return None
    from .selection import load_selection, selection_folder, summary

    record = load_selection(root, view.key, method, bits, criterion, view.split_key)
    path = selection_folder(root, view.key, method, bits, criterion) / "selection.json"
    return summary(record, str(path.relative_to(root)))


def plan_cells(view: DataView, methods: Sequence[str], bits: Sequence[int], seeds: Sequence[int], *,
               root: str | Path, evaluation: Any, method_params: Mapping[str, Mapping[str, Any]] | None = None,
               selected: str | None = None, force: bool = False,
               shard: tuple[int, int] | None = None) -> list[CellSpec]:
    """One frozen spec per cell of methods x bits x seeds (part ``i`` of ``n`` with ``shard=(i, n)``).

    A cell's parameters are its named configuration's (``name@configuration``), then the
    values ``tune`` stored for ``selected``, then the user's ``method_params``.
    """
    root = Path(root)
    user = method_params or {}
    grid = [(m, b, s) for m in methods for b in bits for s in seeds]
    if shard is not None:
        grid = select_shard(grid, *shard)
    selections: dict[tuple[str, int], dict[str, Any] | None] = {}
    fingerprint = view.dataset.fingerprint()
    specs = []
    for method, b, seed in grid:
        if (method, b) not in selections:
            selections[method, b] = selection_summary(root, view, method, b, selected)
        sel = selections[method, b]
        _, preset = resolve_method(method)  # "name@configuration": that named parameter set
        params = {**preset, **(sel or {}).get("chosen", {}), **user.get(method, {})}
        config = {
            "dataset": fingerprint,
            "split": view.split_key,
            "method": method,
            "params": {**params, "bits": b, "seed": seed},
            "backbone": view.backbone.to_dict(),
            "evaluation": evaluation.to_dict(),
        }
        if sel is not None:
            config["selection"] = sel["key"]
        specs.append(CellSpec.make(method=method, bits=b, seed=seed, params=params, key=json_digest(config),
                                   path=cell_path(root, view.key, method, b, seed), view=view.key,
                                   split_key=view.split_key, backbone=view.backbone, evaluation=evaluation,
                                   selection=sel, force=force))
    return specs
