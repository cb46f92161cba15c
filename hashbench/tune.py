"""``python -m hashbench tune``: select hyper-parameters on the validation split of a dataset.

Beside the runner, like it composed from the plan (:mod:`hashbench.plan`: the same
dataset view, methods, bits and parameter check as a run), the features stage and the
selection library (:mod:`hashbench.selection`). It hands selection the training role
only (its features are extracted for the training items alone, so no query or
database-only image is even decoded), saves the validation split, and runs
:func:`~hashbench.selection.search.run_selection` for every method x bit length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import plan
from .errors import ConfigError
from .features import ImageInput, dataset_features
from .selection import SELECTION_DIR, TrainingData, run_selection, selection_folder, validation_split
from .selection import format_records  # noqa: F401  (re-exported: `tune` prints it)
from .storage import atomic_write_json


@dataclass
class TuneConfig:
    dataset: str = "synthetic"
    data_root: Path | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    methods: list[str] = field(default_factory=lambda: ["all"])
    bits: list[int] = field(default_factory=lambda: [32])
    criterion: str = "labels"
    trials: int = 8
    search_seed: int = 0
    seed: int = 0
    val_size: int | float = 0.2
    val_seed: int = 0
    topk: int | None = 5000
    split_seed: int = 0
    split_file: Path | None = None
    results: Path = Path("results")
    cache: Path | None = None
    weights: str | None = None
    backbone: str | None = None  # None: the dataset's default (as in a run)
    backbone_seed: int = 0
    device: str = "auto"
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    force: bool = False
    progress: bool = True


def tune(config: TuneConfig, *, echo: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run the selection of every method x bit length; returns the selection records."""
    plan.check_grid(config.bits, [config.seed])
    dataset = plan.open_dataset(config.dataset, config.data_root, config.dataset_options)
    methods = plan.resolve_methods(config.methods, dataset)  # "all" means what it means for a run
    plan.check_params(config.method_params, methods, where="being tuned")  # the run's own check
    view = plan.open_view(dataset, split_file=config.split_file, split_seed=config.split_seed,
                          backbone=config.backbone, weights=config.weights, backbone_seed=config.backbone_seed)
    split_key, backbone, dataset_key = view.split_key, view.backbone, view.key  # the run's results folder
    train = np.asarray(view.split.train)
    vsplit = validation_split(train.size, config.val_size, config.val_seed)
    ids = [dataset.ids[i] for i in train]
    folder = Path(config.results) / dataset_key / SELECTION_DIR
    vkey = vsplit.key(ids)
    vpath = folder / "validation" / f"{vkey}.json"
    if not vpath.is_file():
        atomic_write_json(vpath, {"split_key": split_key, **vsplit.to_json(ids)})
    echo(f"dataset {dataset_key}: training role {train.size} items -> fit on {vsplit.fit.size}, "
         f"{vsplit.val.size} validation queries (seed {vsplit.seed}, saved as {vpath})")
    feats, info = dataset_features(dataset, train, backbone, cache=config.cache, device=config.device,
                                   progress=config.progress)
    data = TrainingData(
        ids=ids,
        features=np.asarray(feats),
        labels=dataset.labels[train],
        tags=[dataset.tags[i] for i in train] if dataset.has_tags else None,  # type: ignore[index]
        images=lambda positions: ImageInput(dataset, train[np.asarray(positions)], backbone),
    )
    context = {
        "dataset": dataset.fingerprint(),
        "dataset_key": dataset_key,
        "split_key": split_key,
        "backbone": backbone.to_dict(),
        "features_cache_key": info.get("cache_key"),
    }
    records = []
    for method in methods:
        for bits in config.bits:
            records.append(run_selection(
                method, bits, data, vsplit,
                criterion=config.criterion, n_trials=config.trials, search_seed=config.search_seed,
                seed=config.seed, params=config.method_params.get(method), topk=config.topk,
                folder=selection_folder(config.results, dataset_key, method, bits, config.criterion),
                context={**context, "validation_split_file": str(vpath.relative_to(config.results))},
                force=config.force, echo=echo,
            ))
    write_records(records, methods, folder, config.criterion, echo)
    return records


def write_records(records: list[dict[str, Any]], methods: list[str], folder: Path, criterion: str,
                  echo: Callable[[str], None]) -> None:
    """The same kind of record as the shipped defaults (statuses included), one per bit length, beside the
    selections: ``<folder>/record-<criterion>-<bits>bits.json``. None where every trial of a method failed."""
    from .registry import available_methods, get_method
    from .selection.record import build_record, write_record

    twins = [m for m in available_methods() if get_method(m).inherits_defaults_from in methods and m not in methods]
    for bits in sorted({r["bits"] for r in records}):
        try:
            record = build_record([r for r in records if r["bits"] == bits], [*methods, *twins],
                                  what=f"selection by `tune` ({criterion}, {bits} bits)")
        except ConfigError as exc:
            echo(f"no record for {bits} bits: {exc}")
            continue
        path = write_record(record, folder / f"record-{criterion}-{bits}bits.json")
        echo(f"record of this selection ({bits} bits): {path}")
