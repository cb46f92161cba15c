"""What each method ran with: its hyper-parameters, how they were chosen, and where deep methods stopped.

Read from the cells only (``record["method"]["params"]``, ``["method"]["selection"]``
and ``record["fit_info"]["convergence"]``): one row per dataset x method, the
values that differ between code lengths given per bit length.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from .collect import ReportData, methods_in_order

#: plumbing, not hyper-parameters
_HIDDEN = ("bits", "seed", "device")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return json.dumps(v) if not isinstance(v, str) else v


def _per_bits(values: dict[int, Any]) -> str:
    """'x' when every bit length agrees, else 'x (12), y (24, 32)'."""
    groups: dict[str, list[int]] = {}
    for b in sorted(values):
        groups.setdefault(_fmt(values[b]), []).append(b)
    if len(groups) == 1:
        return next(iter(groups))
    return ", ".join(f"{v} ({', '.join(map(str, bs))} bits)" for v, bs in groups.items())


def _overridden(records: dict[int, dict[str, Any]], defaults: dict[str, Any]) -> dict[str, Any]:
    """The recorded defaults a cell ran with other values of (the user's ``--param``), by name."""
    out = {}
    for r in records.values():
        params = (r.get("method") or {}).get("params") or {}
        out.update({k: params[k] for k, v in defaults.items() if k in params and params[k] != v})
    return out


def defaults_status(records: dict[int, dict[str, Any]]) -> str:
    """Which applies to a row: the shipped record's status (selected, nothing to select, inherited; hand-set
    for a method it does not cover yet), this run's own `tune` selection, or a named configuration."""
    methods = [r.get("method") or {} for r in records.values()]
    if any(m.get("selection") for m in methods):
        return "selected by this run's tune"
    if any(m.get("configuration") for m in methods):
        return "named configuration"
    shipped = next((m["defaults_chosen_by"] for m in methods if m.get("defaults_chosen_by")), None)
    if isinstance(shipped, dict):
        over = _overridden(records, shipped.get("defaults") or {})
        return shipped["status"] + (" (overridden)" if over else "")
    return "not recorded"  # a plugin without a record, or a result older than the record's format


def _how_chosen(records: dict[int, dict[str, Any]], method: str) -> str:
    sels = {b: (r.get("method") or {}).get("selection") for b, r in records.items()}
    config = next((r["method"].get("configuration") for r in records.values() if r["method"].get("configuration")), None)
    if not any(sels.values()):
        if config:
            return f"named configuration @{config} (its values as the configuration states them; not selected here)"
        shipped = next((r["method"].get("defaults_chosen_by") for r in records.values()
                        if r["method"].get("defaults_chosen_by")), None)
        if isinstance(shipped, dict):  # the shipped defaults record: status, values, how
            over = _overridden(records, shipped.get("defaults") or {})
            note = f" (this run set {_params_text(over)} instead)" if over else ""
            return f"the method's defaults, {shipped['text']}{note}"
        if shipped:  # a result stored before the record gave every method a status
            return f"the method's defaults, {shipped}"
        return "the method's defaults (no `tune` selection used by this run; the README says how the defaults were chosen)"
    s = next(v for v in sels.values() if v)
    crit = s.get("criterion")
    label = ("criterion `labels`: validation mAP with training-role labels (the field's usual practice)"
             if crit == "labels" else "criterion `label-free`: no labels read")
    trials = ", ".join(f"{b}: {v['n_trials_run']} of {v.get('grid_size')} grid points, best {v['best_score']:.4f}"
                       for b, v in sorted(sels.items()) if v)
    missing = [b for b, v in sels.items() if not v]
    text = (f"selected on a validation split of the training role (seed {s['validation_split'].get('seed')}, "
            f"{s['validation_split'].get('validation')} validation queries), {label}; budget {s.get('budget')} "
            f"trials ({trials})")
    failures = failed_trials_text({b: v for b, v in sels.items() if v})
    if failures:
        text += f"; {failures}"
    if missing:
        text += f"; not selected at {', '.join(map(str, sorted(missing)))} bits"
    return text


def _params_text(params: dict[str, Any] | None) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in sorted((params or {}).items())) or "(defaults)"


def failed_trials_text(selections: dict[int, dict[str, Any]]) -> str:
    """'2 of 12 trials failed at 32 bits (lr=0.01: reason; ...)' for the selections (by bit length) that had failures."""
    parts = []
    for b, sel in sorted(selections.items()):
        failed = sel.get("failed") or []
        if failed:
            why = "; ".join(f"{_params_text(f['params'])}: {f['failed']}" for f in failed)
            parts.append(f"{len(failed)} of {sel.get('n_trials_run')} trials failed at {b} bits ({why})")
    return ", ".join(parts)


def _stopping(records: dict[int, dict[str, Any]]) -> str:
    stops = {}
    for b, r in records.items():
        conv = (r.get("fit_info") or {}).get("convergence")
        if conv:
            text = f"{conv.get('best_epoch')} of {conv.get('epochs_run')} (max {conv.get('max_epochs')})"
            warm = conv.get("warmup")
            if isinstance(warm, dict):  # end-to-end: the head's warm-up phase stopped on its own
                text = (f"{conv.get('phase', 'training')} {text}, warm-up {warm.get('best_epoch')} of "
                        f"{warm.get('epochs_run')} (max {warm.get('max_epochs')})")
            stops[b] = text
    if not stops:
        return "not recorded (a fixed schedule, or a method without early stopping)"
    return _per_bits(stops) if len(stops) == len(records) else \
        _per_bits(stops) + f"; not recorded at {', '.join(str(b) for b in sorted(set(records) - set(stops)))} bits"


def hyperparameter_rows(data: ReportData) -> list[dict[str, str]]:
    """One row per dataset (protocol) x method: parameters, how chosen, stopping epoch."""
    rows = []
    frame = data.frame
    for pid in sorted(frame["protocol"].unique()):
        sub = frame[frame["protocol"] == pid]
        for method, display, deep in methods_in_order(sub):
            cells = sub[sub["method"] == method]
            # one record per bit length (the first seed: parameters do not depend on the seed)
            records = {int(b): c.record for b, c in zip(cells["bits"], cells["cell"])}
            params = {b: (r.get("method") or {}).get("params") or {} for b, r in records.items()}
            names = sorted({k for p in params.values() for k in p if k not in _HIDDEN})
            shown = "; ".join(f"{k}={_per_bits({b: p.get(k) for b, p in params.items()})}" for k in names)
            rows.append({
                "dataset": data.protocols[pid].label,
                "method": display,
                "hyper-parameters": shown or "(none)",
                "defaults": defaults_status(records),
                "how chosen": _how_chosen(records, method),
                "stopping epoch (best of run)": _stopping(records) if deep else "",
            })
    return rows


def to_markdown(rows: list[dict[str, str]]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join(":--" for _ in cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(r[c]).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(out)


def write_hyperparameters(data: ReportData, folder: Path) -> list[Path]:
    """``hyperparameters.md`` and ``.csv`` in ``folder``; returns their paths."""
    rows = hyperparameter_rows(data)
    folder.mkdir(parents=True, exist_ok=True)
    md, csv_path = folder / "hyperparameters.md", folder / "hyperparameters.csv"
    md.write_text(to_markdown(rows) + "\n")
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    csv_path.write_text(buf.getvalue())
    return [md, csv_path]


def index_lines(data: ReportData) -> list[str]:
    """The index's section: how every method's hyper-parameters were set."""
    rows = hyperparameter_rows(data)
    if not rows:
        return []
    return [
        "## Hyper-parameters and model selection",
        "",
        "The values each method ran with, and how they were chosen. \"Selected\" means chosen by "
        "`python -m hashbench tune` on a validation split carved from the training role (query and "
        "database-only items never seen), by the same procedure and trial budget for every method; the "
        "*defaults* column says which applies: the shipped record's `selected`, `nothing to select` (empty "
        "search space) or `inherited` (an end-to-end twin takes its frozen twin's values), `hand-set` for a method "
        "that record does not cover yet, or this run's own `tune` selection; "
        "deep methods stop when their held-out objective stops improving (best epoch of the epochs run). "
        "Files: [Markdown](tables/hyperparameters.md) · [CSV](tables/hyperparameters.csv)",
        "",
        to_markdown(rows),
        "",
    ]
