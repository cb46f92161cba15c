"""How the tag methods' defaults were chosen: the selection run, repeatable.

``python -m hashbench.tune_defaults --out methods/selected_defaults.json``
(:mod:`hashbench.tune_defaults`; before the tune command left this library it was
``python -m hashbench.selection.defaults``) runs :func:`~hashbench.tune.tune` on the embedded default dataset
(``synthetic``, split seed 0) for the frozen tag methods at one code length,
with one trial budget per method and the ``labels`` criterion (validation mAP on
the validation split of the training role; the queries are never seen), and
writes the record that ships with the methods: every trial and its score, the
chosen values, the criterion, the split seeds and the code version.

The end-to-end twins (``udht``, ``tag-binary-e2e``) are not searched here (on a
2-core CPU one end-to-end trial costs minutes); they take the head
hyper-parameters chosen for their frozen twin (``TWINS``), which train the same
FC3/H1(/H2) layers with the same losses.
"""

from __future__ import annotations

from typing import Any

from ..provenance import code_version, now
from ..registry import get_method

SELECTED = ("udht-frozen", "tag-binary")
TWINS = {"udht": "udht-frozen", "tag-binary-e2e": "tag-binary"}
BITS = 32
TRIALS = 12  # both tag grids (4 x 3) exhaustively


def inherited(record: dict[str, Any], twin: str) -> dict[str, Any]:
    """The values an end-to-end method takes from its frozen twin's selection (the parameters both have)."""
    names = set(get_method(twin)._param_names())
    return {k: v for k, v in record["chosen"].items() if k in names}


def build_record(records: list[dict[str, Any]], *, criterion: str, extra: list[dict[str, Any]] | None = None
                 ) -> dict[str, Any]:
    by_method = {r["method"]: r for r in records}
    out: dict[str, Any] = {
        "what": "selection of the defaults of the tag methods (python -m hashbench.tune_defaults)",
        "dataset": "synthetic (embedded default), split seed 0; selection on the validation split of its "
                   "training role only, never its queries",
        "criterion": criterion,
        "bits": sorted({r["bits"] for r in records}),
        "budget": sorted({r["budget"] for r in records}),
        "code_version": code_version(),
        "created": now(),
        "methods": {},
    }
    for m, r in by_method.items():
        out["methods"][m] = {
            "defaults": r["chosen"],
            "how": "selected",
            "search_space": r["search_space"],
            "grid_size": r["grid_size"],
            "validation_split": r["validation_split"],
            "search_seed": r["search_seed"],
            "seed": r["seed"],
            "fixed_params": r["fixed_params"],
            "best_trial": r["best_trial"],
            "best_score": r["best_score"],
            "trials": [{k: t.get(k) for k in ("trial", "params", "score", "measure", "fit_s", "convergence")}
                       for t in r["trials"]],
        }
    for twin, frozen in TWINS.items():
        if frozen in by_method:
            out["methods"][twin] = {
                "defaults": inherited(by_method[frozen], twin),
                "how": f"inherited: the head hyper-parameters selected for {frozen} (end-to-end trials not run)",
            }
    if extra:
        out["also_measured"] = extra
    return out
