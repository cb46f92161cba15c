"""The trial loop: fit on F, score on V, store every finished trial, resume where it stopped.

One selection = one method (``name`` or ``name@configuration``), one code
length, one criterion. Its folder in the results store is
``results/<dataset>/selection/<method>/<bits>bits/<criterion>/`` holding

* ``config.json``: what determines the trials (dataset fingerprint, split and
  validation-split keys, search space, budget, search seed, fixed parameters,
  backbone); its digest is the selection key;
* ``trials.jsonl``: one line per finished trial (its number in the plan, its
  parameters, score and timings), appended and synced as soon as it is done;
* ``selection.json``: the record: chosen values, criterion, every trial and
  its score, the validation split and the code version.

Resuming: a trial whose line is in ``trials.jsonl`` is never run again; a line
cut short by an interruption is ignored (that trial is run again). A folder
written under another configuration is refused (``force`` starts it afresh).

A failed trial is a result too: one whose fit or scoring raises, or whose
training losses, held-out objective or score are not finite, is stored with
its parameters and the reason (``"failed"``), ranked below every trial that
finished (:func:`rank_key`), and the search goes on. A selection in which every
trial failed chooses nothing (``"all_failed"``); :func:`all_failed` names such
selections for a command to report (``tune`` then exits non-zero).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError, ResultsError
from ..hasher import Hasher
from ..provenance import code_version, now
from ..registry import resolve_method, split_variant
from ..storage import atomic_write_json, json_digest
from . import criteria
from .space import check_search_space, grid_size, plan_trials
from .validation import ValidationSplit

SELECTION_DIR = "selection"


@dataclass
class TrainingData:
    """Everything selection may see: the training role, nothing else.

    ``ids``, ``features`` (FC2), ``tags`` and ``labels`` are rows of the
    training role in the same order; ``images(positions)`` builds the
    :class:`~hashbench.features.ImageInput` of some of those rows (for
    image-using methods). No query or database-only item is reachable from here.
    """

    ids: list[str]
    features: np.ndarray
    labels: np.ndarray
    tags: list[list[str]] | None = None
    images: Callable[[np.ndarray], Any] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def check_requires(self, requires: frozenset[str], who: str = "") -> None:
        """A configuration error when the data lacks an input kind that ``requires`` names."""
        at = f"{who}: " if who else ""
        if "tags" in requires and self.tags is None:
            raise ConfigError(f"{at}this method learns from tags, and the dataset has none")
        if "images" in requires and self.images is None:
            raise ConfigError(f"{at}this method learns from images, and none were given to selection")

    def inputs(self, requires: frozenset[str], positions: np.ndarray) -> dict[str, Any]:
        self.check_requires(requires)
        out: dict[str, Any] = {}
        if "features" in requires:
            out["features"] = np.asarray(self.features[positions])
        if "tags" in requires:
            out["tags"] = [self.tags[i] for i in positions]
        if "labels" in requires:  # a supervised reference learns from the training role's labels, as in a run
            out["labels"] = np.asarray(self.labels[positions])
        if "images" in requires:
            out["images"] = self.images(positions)
        return out


def selection_folder(root: str | Path, dataset_key: str, method: str, bits: int, criterion: str) -> Path:
    return Path(root) / dataset_key / SELECTION_DIR / method / f"{bits}bits" / criterion


def _encode(hasher: Hasher, data: TrainingData, positions: np.ndarray) -> np.ndarray:
    if "features" in hasher.requires:
        return hasher.encode(np.asarray(data.features[positions]))
    return hasher.encode(images=data.images(positions))  # type: ignore[misc]


def score_trial(
    hasher: Hasher, data: TrainingData, vsplit: ValidationSplit, criterion: str, *, topk: int | None,
    relevance: Callable[[], tuple[np.ndarray, np.ndarray]],
) -> dict[str, Any]:
    """Fit ``hasher`` on F and score it on V under ``criterion`` (higher is better)."""
    t0 = time.perf_counter()
    hasher.fit(**data.inputs(hasher.requires, vsplit.fit))
    out: dict[str, Any] = {"fit_s": round(time.perf_counter() - t0, 3)}
    t0 = time.perf_counter()
    if criterion == "labels":
        out["score"] = criteria.labels_score(_encode(hasher, data, vsplit.val), _encode(hasher, data, vsplit.fit),
                                             data.labels[vsplit.val], data.labels[vsplit.fit], topk)
        out["measure"] = f"validation mAP@{'all' if topk is None else topk}"
    else:
        try:
            objective = float(hasher.heldout_objective(**data.inputs(hasher.requires, vsplit.val)))
        except NotImplementedError:
            out["score"] = criteria.neighbour_score(_encode(hasher, data, vsplit.val),
                                                    _encode(hasher, data, vsplit.fit), relevance())
            out["measure"] = "Euclidean-neighbour agreement (generic)"
        else:
            out["objective"] = objective
            out["score"] = -objective  # a non-finite objective fails the trial (_nonfinite)
            out["measure"] = "minus the method's own held-out objective"
    conv = (getattr(hasher, "fit_info_", {}) or {}).get("convergence")
    if conv:
        out["convergence"] = conv
    out["score_s"] = round(time.perf_counter() - t0, 3)
    return out


def rank_key(trial: dict[str, Any]) -> tuple[bool, float, int]:
    """Sort key of a trial, higher is better: finished before failed, then the score, then the earlier trial.

    Among equal scores the earliest trial of the seeded plan wins; a failed trial
    (``"failed"`` holds its reason, its score is None) ranks below every finished one.
    """
    failed = bool(trial.get("failed"))
    return (not failed, -np.inf if failed else float(trial["score"]), -int(trial["trial"]))


def _nonfinite(hasher: Hasher, out: dict[str, Any]) -> str | None:
    """Why a finished trial still counts as failed: a training loss, the held-out objective or the score not finite."""
    for name, values in hasher.training_history().items():
        bad = [i for i, v in enumerate(values) if not np.isfinite(v)]
        if bad:
            return f"training loss {name!r} became {values[bad[0]]} at entry {bad[0] + 1} of {len(values)}"
    if "objective" in out and not np.isfinite(out["objective"]):
        return f"the held-out objective is {out['objective']}"
    if not np.isfinite(out["score"]):
        return f"the score ({out['measure']}) is {out['score']}"
    return None


def _run_trial(cls: type[Hasher], kwargs: dict[str, Any], data: TrainingData, vsplit: ValidationSplit,
               criterion: str, topk: int | None, relevance: Callable[[], tuple[np.ndarray, np.ndarray]]
               ) -> dict[str, Any]:
    """One trial's outcome; a trial that raises (anything but an interruption) or ends non-finite is failed."""
    t0 = time.perf_counter()
    try:
        hasher = cls(**kwargs)
        out = score_trial(hasher, data, vsplit, criterion, topk=topk, relevance=relevance)
    except Exception as exc:  # noqa: BLE001 - a trial's failure is a result to store; the search goes on
        return {"failed": f"{type(exc).__name__}: {exc}", "score": None, "fit_s": round(time.perf_counter() - t0, 3)}
    why = _nonfinite(hasher, out)
    if why is not None:
        out.update(failed=why, score=None)
    return out


def all_failed(records: list[dict[str, Any]]) -> list[str]:
    """One line per selection in ``records`` whose every trial failed (empty when none did)."""
    return [f"{r['method']} at {r['bits']} bits: all {r['n_trials_run']} trials failed, e.g. "
            f"{r['trials'][0]['params'] or '(defaults)'}: {r['trials'][0]['failed']}"
            for r in records if r.get("all_failed")]


def _read_trials(path: Path) -> dict[int, dict[str, Any]]:
    done: dict[int, dict[str, Any]] = {}
    if not path.is_file():
        return done
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            done[int(rec["trial"])] = rec
        except (ValueError, KeyError, TypeError):
            warnings.warn(f"{path} line {n}: unreadable trial (interrupted while writing?); it will be run again",
                          stacklevel=3)
    return done


def _append(path: Path, rec: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(rec, sort_keys=True, default=float) + "\n")
        f.flush()
        os.fsync(f.fileno())


def run_selection(
    method: str,
    bits: int,
    data: TrainingData,
    vsplit: ValidationSplit,
    *,
    criterion: str = "labels",
    n_trials: int = 8,
    search_seed: int = 0,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    space: dict[str, list[Any]] | None = None,
    topk: int | None = 5000,
    folder: str | Path | None = None,
    context: dict[str, Any] | None = None,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Select the hyper-parameters of ``method`` at ``bits`` on the validation split; returns the record.

    ``params`` are fixed parameters (the user's ``--param``); a tuned parameter
    may not also be fixed. ``context`` (dataset fingerprint, split key, backbone)
    goes into the selection key. With ``folder`` the trials are stored there and
    an interrupted selection resumes without repeating finished trials.
    """
    if criterion not in criteria.CRITERIA:
        raise ConfigError(f"unknown selection criterion {criterion!r}; choose one of {', '.join(criteria.CRITERIA)}")
    cls, preset = resolve_method(method)
    # inputs the data lacks are a configuration error, refused before any trial (not twelve failed trials)
    data.check_requires(cls.requires, method)
    space = check_search_space(cls, space, who=method)
    params = dict(params or {})
    both = sorted(set(space) & set(params))
    if both:
        raise ConfigError(f"{method}: {', '.join(both)} both fixed (--param) and in the search space; choose one")
    plan = plan_trials(space, n_trials, search_seed)
    config = {
        "method": method,
        "bits": int(bits),
        "seed": int(seed),
        "criterion": criterion,
        "topk": topk,
        "search_space": space,
        "budget": int(n_trials),
        "search_seed": int(search_seed),
        "fixed_params": {**preset, **params},
        "validation_split": {"seed": vsplit.seed, "key": vsplit.key(data.ids), "fit": int(vsplit.fit.size),
                             "validation": int(vsplit.val.size)},
        **(context or {}),
    }
    key = json_digest(config)
    trials_path = None
    done: dict[int, dict[str, Any]] = {}
    if folder is not None:
        folder = Path(folder)
        cfg_path, trials_path = folder / "config.json", folder / "trials.jsonl"
        if force and folder.exists():
            shutil.rmtree(folder)  # start this selection afresh
        elif cfg_path.is_file():
            try:
                old_key = json.loads(cfg_path.read_text()).get("key")
            except ValueError:
                old_key = None
            if old_key != key:
                raise ResultsError(
                    f"selection folder {folder} holds trials of another configuration (key {old_key}, now {key}): "
                    "use another --results folder, or --force to start this selection afresh"
                )
        atomic_write_json(cfg_path, {"key": key, **config})
        done = _read_trials(trials_path)
    relevance_cache: list[tuple[np.ndarray, np.ndarray]] = []

    def relevance() -> tuple[np.ndarray, np.ndarray]:
        if not relevance_cache:
            relevance_cache.append(criteria.neighbour_relevance(data.features[vsplit.val], data.features[vsplit.fit]))
        return relevance_cache[0]

    trials: list[dict[str, Any]] = []
    started = now()
    for i, point in enumerate(plan):
        rec = done.get(i)
        if rec is not None and rec.get("params") == point:
            trials.append(rec)
            echo(f"  {method} {bits} bits trial {i + 1}/{len(plan)} {point}: done already ({_outcome(rec)})")
            continue
        rec = {"trial": i, "params": point, **_run_trial(cls, {"bits": bits, "seed": seed, **preset, **params, **point},
                                                         data, vsplit, criterion, topk, relevance)}
        if trials_path is not None:
            _append(trials_path, rec)
        trials.append(rec)
        stop = (rec.get("convergence") or {}).get("best_epoch")
        echo(f"  {method} {bits} bits trial {i + 1}/{len(plan)} {point}: {_outcome(rec)}"
             f" (fit {rec['fit_s']:.1f}s" + (f", best epoch {stop}" if stop else "") + ")")
    # best score; among equal scores the earliest trial of the seeded plan; failed trials last
    best = max(trials, key=rank_key)
    failed = [t for t in trials if t.get("failed")]
    if best.get("failed"):
        best = {"trial": None, "params": None, "score": None}  # every trial failed: nothing is chosen
    record = {
        "key": key,
        **config,
        "base_method": split_variant(method)[0],
        "criterion_description": criteria.describe(criterion, topk),
        "grid_size": grid_size(space),
        "n_trials_run": len(trials),
        "trials": trials,
        "best_trial": best["trial"],
        "chosen": best["params"],
        "best_score": best["score"],
        "n_failed": len(failed),
        "all_failed": len(failed) == len(trials),
        "params": None if best["params"] is None else {**preset, **params, **best["params"]},
        "code_version": code_version(),
        "started": started,
        "finished": now(),
    }
    if folder is not None:
        atomic_write_json(Path(folder) / "selection.json", record)
    return record


def _outcome(rec: dict[str, Any]) -> str:
    return f"FAILED: {rec['failed']}" if rec.get("failed") else f"{rec['measure']} {rec['score']:.4f}"


def load_selection(root: str | Path, dataset_key: str, method: str, bits: int, criterion: str,
                   split_key: str | None = None) -> dict[str, Any]:
    """The stored selection of ``method`` at ``bits`` under ``criterion`` (for ``run --selected``).

    A missing one, or one made on another split, is a :class:`ConfigError`
    that says which ``tune`` command makes it.
    """
    path = selection_folder(root, dataset_key, method, bits, criterion) / "selection.json"
    if not path.is_file():
        raise ConfigError(
            f"no stored selection for {method} at {bits} bits (criterion {criterion}) in {path.parent}; run "
            f"`python -m hashbench tune --methods {method} --bits {bits} --criterion {criterion}` first"
        )
    try:
        record = json.loads(path.read_text())
    except ValueError as exc:
        raise ResultsError(f"selection record {path}: not valid JSON ({exc})") from None
    if record.get("all_failed"):
        raise ConfigError(
            f"selection record {path}: every trial of {method} at {bits} bits failed (e.g. "
            f"{record['trials'][0]['failed']}), so nothing was selected; change its search space and tune again"
        )
    if split_key is not None and record.get("split_key") not in (None, split_key):
        raise ConfigError(
            f"selection record {path} was made on split {record.get('split_key')}, this run uses {split_key}; "
            "tune again on this split"
        )
    return record


def summary(record: dict[str, Any], path: str | None = None) -> dict[str, Any]:
    """What a results cell records about the selection its parameters came from."""
    return {
        "criterion": record["criterion"],
        "criterion_description": record.get("criterion_description"),
        "chosen": record["chosen"],
        "best_score": record["best_score"],
        "n_trials_run": record["n_trials_run"],
        "failed": [{"params": t["params"], "failed": t["failed"]} for t in record["trials"] if t.get("failed")],
        "budget": record["budget"],
        "grid_size": record.get("grid_size"),
        "search_space": record["search_space"],
        "validation_split": record["validation_split"],
        "key": record["key"],
        "file": path,
    }
