"""The trials of a selection as a plain-text table (what ``tune`` prints)."""

from __future__ import annotations

from typing import Any

from .search import rank_key


def format_records(records: list[dict[str, Any]]) -> str:
    """A plain-text table of every trial, the chosen one marked."""
    lines = []
    for r in records:
        chosen = "nothing: every trial failed" if r.get("all_failed") else (r["chosen"] or "(defaults)")
        failed = f", {r['n_failed']} failed" if r.get("n_failed") else ""
        lines.append(f"{r['method']} {r['bits']} bits, criterion {r['criterion']} ({r['n_trials_run']} of "
                     f"{r['grid_size']} grid points, budget {r['budget']}{failed}): chosen {chosen}")
        for t in sorted(r["trials"], key=rank_key, reverse=True):
            mark = "*" if t["trial"] == r["best_trial"] else " "
            stop = (t.get("convergence") or {}).get("best_epoch")
            score = "FAILED" if t.get("failed") else f"{t['score']:.4f}"
            lines.append(f"  {mark} {score}  {t['params'] or '(defaults)'}"
                         + (f"  best epoch {stop}" if stop else "") + (f"  ({t['failed']})" if t.get("failed") else ""))
    return "\n".join(lines)
