"""Category-aware retrieval: one piece of code per category, compared category by category.

Category-aware hashing (Lai, Pan, Shu, Wei & Yan, *Instance-Aware Hashing for
Multi-Label Image Retrieval*, IEEE TIP 2016) encodes an item as C pieces of
``b`` bits, one per category. Its retrieval protocol is not reachable
(``shared/papers/iah.md``, section (e)); ours, stated here and used everywhere:

* **Query with category c.** A query item q asks for category c when c is
  among its labels (the "oracle category" reading: the user says which of
  the query's categories they mean). Only the c-th pieces are compared: the
  database is ranked by the Hamming distance between q's c-th piece and each
  database item's c-th piece.
* **Relevance.** A database item is relevant to (q, c) when it carries
  label c (not "shares any label with q": the question was about c).
* **Metric.** AP@K per (q, c) exactly as the shared evaluator defines it
  (ties, empty queries and K under the same :class:`EvalConfig`); mAP_c is the
  mean over the queries that carry c; the reported **category-aware mAP@K**
  is the mean of mAP_c over the categories that at least one query carries
  (each category weighs the same, so rare categories count).
  **category-aware chance** is the same mean of each category's frequency in
  the database: the mAP of a random ranking.

Each category is one call of :func:`~hashbench.evaluation.evaluate` on the
c-th pieces with single-column labels (the query's column is 1, so
"sharing a label" is "carrying c"): the exact, counting evaluator, with no
Python loop over items or pairs; the loop is over the C categories.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from ..errors import DataError
from .config import EvalConfig
from .core import evaluate

PREFIX = "category-aware "


@dataclass
class CategoryAwareResult:
    metrics: Dict[str, float]  # "category-aware mAP@K" and "category-aware chance": means over categories
    per_category: Dict[str, Dict[str, float]]  # category name -> {"mAP@K": ..., "queries": n}
    config: Dict[str, Any]


def _pieces(codes: Any, n_categories: int, name: str) -> np.ndarray:
    arr = np.asarray(codes)
    if arr.ndim != 3 or arr.shape[1] != n_categories:
        raise DataError(f"{name}: expected (n, {n_categories} categories, bits) pieces, got shape {arr.shape}")
    return arr


def evaluate_category_aware(query_pieces: Any, db_pieces: Any, query_labels: Any, db_labels: Any,
                            config: Optional[EvalConfig] = None,
                            category_names: Optional[list[str]] = None) -> CategoryAwareResult:
    """Category-aware mAP@K (see the module docstring).

    ``query_pieces``/``db_pieces``: (n, C, b) 0/1 arrays; ``query_labels``/``db_labels``:
    (n, C) 0/1 multi-label matrices (column c is category c).
    """
    cfg = config if config is not None else EvalConfig()
    ql, dl = np.asarray(query_labels), np.asarray(db_labels)
    if ql.ndim != 2 or dl.ndim != 2 or ql.shape[1] != dl.shape[1]:
        raise DataError(f"category-aware retrieval needs multi-label (n, C) matrices with the same C; "
                        f"got {ql.shape} and {dl.shape}")
    n_cat = ql.shape[1]
    qp = _pieces(query_pieces, n_cat, "query pieces")
    dp = _pieces(db_pieces, n_cat, "database pieces")
    if qp.shape[0] != ql.shape[0] or dp.shape[0] != dl.shape[0]:
        raise DataError(f"category-aware retrieval: {qp.shape[0]} query pieces for {ql.shape[0]} label rows, "
                        f"{dp.shape[0]} database pieces for {dl.shape[0]}")
    names = category_names or [str(c) for c in range(n_cat)]
    # only the mAP@K cut-offs matter here; the rest of the evaluator's outputs are not reported per category
    sub_cfg = EvalConfig(topk=cfg.topk, precision_at=(), radius=cfg.radius, ties=cfg.ties, empty=cfg.empty,
                         pr_levels=0, seed=cfg.seed, device=cfg.device, preset=cfg.preset)
    per_category: Dict[str, Dict[str, float]] = {}
    sums: Dict[str, float] = {}
    for c in range(n_cat):
        asking = np.flatnonzero(ql[:, c])
        if asking.size == 0:
            continue
        res = evaluate(qp[asking, c], dp[:, c], np.ones((asking.size, 1), np.uint8), dl[:, c:c + 1], sub_cfg)
        entry = {k: v for k, v in res.metrics.items() if k.startswith("mAP@") or k == "chance"}
        entry["queries"] = int(asking.size)
        per_category[names[c]] = entry
        for k, v in entry.items():
            if k != "queries":
                sums[k] = sums.get(k, 0.0) + v
    if not per_category:
        raise DataError("category-aware retrieval: no query carries any category")
    metrics = {PREFIX + k: v / len(per_category) for k, v in sums.items()}
    conf = {**sub_cfg.to_dict(), "mode": "category-aware", "categories_evaluated": len(per_category),
            "relevance": "database item carries the query's category c; queries ask for each of their labels"}
    return CategoryAwareResult(metrics, per_category, conf)
