"""A defaults record: how every method's defaults were chosen, by one selection with one budget.

The record ships with the methods (``hashbench_methods/selected_defaults.json``,
the defaults every run uses) and a user's ``tune`` writes the same kind for
their data. It holds one configuration for the whole selection (dataset and
stage, split and validation split, criterion, number of trials, bit length,
seeds, code version, cost) and, per method, one of three statuses:

``selected``
    the method's search space was searched with that budget; ``defaults`` are
    the best trial's values (every trial kept, failed ones with their reason);
``nothing to select``
    its search space is empty (LSH, PCAH, SH): its defaults are all there is;
``inherited``
    an end-to-end twin (``Hasher.inherits_defaults_from``) takes the values
    selected for its frozen twin (the parameters both have), for the reason
    the class states (``inherits_defaults_because``).

A fourth status, ``hand-set``, marks a method the selection run did not search:
one a record does not cover yet, or one the run was told to leave out, with the
reason (``build_record(left_out=...)``: e.g. a method outside the main job whose
trials cost hours on 2 cores). Its defaults are its hand-set values, and the
report says so.

This module reads and writes records; it runs nothing (the selection is
:func:`~hashbench.selection.search.run_selection`, the command that makes the
shipped record is ``benchmarks/select_defaults.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ResultsError
from ..storage import atomic_write_json, json_digest

FORMAT = 2
SELECTED, NOTHING, INHERITED, HAND_SET = "selected", "nothing to select", "inherited", "hand-set"
#: what a selection run writes; HAND_SET only marks a method a record does not cover yet
STATUSES = (SELECTED, NOTHING, INHERITED)

#: what must be the same in every selection of one record: one budget, one split, one stage
SHARED = ("criterion", "budget", "bits", "seed", "search_seed", "topk", "validation_split", "dataset",
          "dataset_key", "split_key", "backbone")


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else json.dumps(v) if not isinstance(v, str) else v


def values_text(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(values.items()))


def _trial(t: dict[str, Any]) -> dict[str, Any]:
    keep = ("trial", "params", "score", "measure", "fit_s", "score_s", "convergence", "failed")
    return {k: t[k] for k in keep if k in t}


def build_record(selections: list[dict[str, Any]], methods: list[str], *, what: str,
                 extra_config: dict[str, Any] | None = None,
                 left_out: dict[str, str] | None = None) -> dict[str, Any]:
    """The record of one selection run over ``methods`` (registry names), from ``run_selection``'s records.

    Every method gets a status: ``inherited`` when its class names a twin to
    inherit from and it was not searched itself (the twin must be selected
    here), ``nothing to select`` when its search space is empty, else
    ``selected`` (its selection must be in ``selections``). Raises :class:`ConfigError` when the selections do not share
    one budget, split and stage, when a method has no selection, or when every
    trial of a method failed (nothing was selected: the record would be a lie).
    ``left_out`` ({method: reason}) are methods the run did not search on purpose: ``hand-set``, with the reason.
    """
    from ..provenance import code_version, now
    from ..registry import get_method

    by_method = {r["method"]: r for r in selections}
    if len(by_method) != len(selections):
        raise ConfigError("defaults record: one selection per method (one bit length), got duplicates")
    shared: dict[str, Any] = {}
    for r in selections:
        for k in SHARED:
            if k in shared and shared[k] != r.get(k):
                raise ConfigError(f"defaults record: {r['method']}'s selection has another {k} ({r.get(k)!r}) than "
                                  f"the others ({shared[k]!r}); one record is one budget on one split and stage")
            shared.setdefault(k, r.get(k))
    failed = [m for m, r in by_method.items() if r.get("all_failed")]
    if failed:
        raise ConfigError(f"defaults record: every trial failed for {', '.join(failed)}: nothing was selected")
    entries: dict[str, dict[str, Any]] = {}
    left_out = dict(left_out or {})
    searched = sorted(set(left_out) & set(by_method))
    if searched:
        raise ConfigError(f"defaults record: {', '.join(searched)} both searched and left out")
    for m in methods:
        cls = get_method(m)
        if m in left_out:
            entries[m] = {"status": HAND_SET, "why": left_out[m]}
            continue
        twin = "" if (m in by_method and cls.search_space) else getattr(cls, "inherits_defaults_from", "")
        if twin:  # a twin searched in its own right (a user's tune) is selected, not inherited
            if twin not in by_method:
                raise ConfigError(f"defaults record: {m} inherits from {twin}, which was not selected in this run")
            names = set(cls._param_names())
            entries[m] = {"status": INHERITED, "from": twin,
                          "defaults": {k: v for k, v in by_method[twin]["chosen"].items() if k in names},
                          "why": getattr(cls, "inherits_defaults_because", "") or "an end-to-end twin"}
        elif not cls.search_space:
            entries[m] = {"status": NOTHING, "why": "its search space is empty: no hyper-parameter to select"}
        elif m not in by_method:
            raise ConfigError(f"defaults record: no selection for {m}, which has a search space")
        else:
            r = by_method[m]
            entries[m] = {"status": SELECTED, "defaults": r["chosen"], "search_space": r["search_space"],
                          "grid_size": r["grid_size"], "fixed_params": r["fixed_params"],
                          "best_trial": r["best_trial"], "best_score": r["best_score"],
                          "n_trials_run": r["n_trials_run"], "n_failed": r.get("n_failed", 0),
                          "selection_key": r["key"], "trials": [_trial(t) for t in r["trials"]]}
    config = {**shared, "measure": next((t.get("measure") for r in selections for t in r["trials"]
                                         if t.get("measure")), None),
              "criterion_description": next((r.get("criterion_description") for r in selections), None),
              "code_version": code_version(), "created": now(), **(extra_config or {})}
    record = {"format": FORMAT, "what": what, "config": config, "methods": entries}
    record["key"] = json_digest({"config": {k: config.get(k) for k in SHARED}, "methods": entries})
    return record


def check_record(record: Any, source: str = "defaults record") -> dict[str, Any]:
    """``record`` if it is a well-formed defaults record, else a :class:`ResultsError` naming what is wrong."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ResultsError(f"{source}: not a defaults record of format {FORMAT} "
                           f"(format {record.get('format') if isinstance(record, dict) else None!r})")
    for key in ("config", "methods"):
        if not isinstance(record.get(key), dict):
            raise ResultsError(f"{source}: '{key}' is missing or not an object")
    for m, e in record["methods"].items():
        status = e.get("status") if isinstance(e, dict) else None
        if status not in (*STATUSES, HAND_SET):
            raise ResultsError(f"{source}: {m} has status {status!r}; expected one of {', '.join(STATUSES)}")
        if status in (SELECTED, INHERITED) and not isinstance(e.get("defaults"), dict):
            raise ResultsError(f"{source}: {m} is {status} but has no 'defaults' object")
        if status == INHERITED and e.get("from") not in record["methods"]:
            raise ResultsError(f"{source}: {m} inherits from {e.get('from')!r}, which the record does not cover")
    return record


def load_record(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return check_record(json.loads(path.read_text()), str(path))
    except FileNotFoundError:
        raise ConfigError(f"defaults record {path}: no such file") from None
    except ValueError as exc:
        raise ResultsError(f"defaults record {path}: not valid JSON ({exc})") from None


def write_record(record: dict[str, Any], path: str | Path) -> Path:
    check_record(record, str(path))
    atomic_write_json(Path(path), record)
    return Path(path)


def config_text(config: dict[str, Any]) -> str:
    """'criterion labels, 12 trials, 32 bits, validation split seed 0 (1,000 of 5,000 items), on <dataset>'."""
    vs = config.get("validation_split") or {}
    sizes = f" ({vs['validation']:,} of {vs['validation'] + vs['fit']:,} training items)" \
        if isinstance(vs.get("validation"), int) and isinstance(vs.get("fit"), int) else ""
    stage = config.get("stage") or config.get("dataset_key") or "?"
    return (f"criterion {config.get('criterion')}, {config.get('budget')} trials, {config.get('bits')} bits, "
            f"validation split seed {vs.get('seed')}{sizes}, on {stage}")


def describe(record: dict[str, Any], method: str, where: str) -> dict[str, Any]:
    """What a result records about how ``method``'s defaults were chosen (``Hasher.defaults_chosen_by``).

    ``{"status", "defaults", "text", "record", "record_key"}``; ``text`` is one
    sentence for reports. A method the record does not cover is ``hand-set``.
    """
    entry = record["methods"].get(method) or {"status": HAND_SET, "why": "the record does not cover it"}
    status, config = entry["status"], record["config"]
    tail = f"record: {where}"
    if status == SELECTED:
        failed = f"; {entry['n_failed']} of {entry['n_trials_run']} trials failed" if entry.get("n_failed") else ""
        text = (f"{values_text(entry['defaults'])}: selected by `tune` ({config_text(config)}; best of "
                f"{entry['n_trials_run']} of {entry['grid_size']} grid points{failed}); {tail}")
    elif status == INHERITED:
        twin = record["methods"].get(entry["from"], {})
        how = "selected" if twin.get("status") == SELECTED else twin.get("status", "?")
        text = (f"{values_text(entry['defaults'])}: inherited from {entry['from']} ({how} there"
                + (f" by `tune`, {config_text(config)}" if how == SELECTED else "") + f"): {entry['why']}; {tail}")
    elif status == NOTHING:
        text = f"nothing to select: {entry['why']}; {tail}"
    else:
        text = f"hand-set, not selected by the shared selection run ({entry.get('why', '')}); {tail}"
    return {"status": status, "defaults": dict(entry.get("defaults") or {}), "text": text, "record": where,
            "record_key": record.get("key")}
