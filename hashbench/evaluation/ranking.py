"""mAP@all of a database ranked by a real-valued score (a similarity, or minus a distance).

The evaluator proper ranks by the Hamming distance of binary codes. Statistics
of a dataset (how much signal its tags or raw features carry) rank by other
scores: the count of shared tags, a cosine, a Euclidean distance. This module
computes their mAP@all with the evaluator's own definitions and its exact
tie-aware kernel: per query, the database is grouped into tie groups of equal
score (highest score first) and AP is the expectation over all orders within
each group (McSherry & Najork, ECIR 2008), exactly what
``evaluate(..., EvalConfig(ties="tie-aware"))`` gives for codes. A query
without a relevant item has AP 0 (the evaluator's default ``empty="zero"``).
Ranking binary codes by minus their Hamming distance gives the evaluator's
tie-aware mAP@all to rounding (tested).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from hashbench.errors import ConfigError, DataError
from hashbench.evaluation import _kernels

#: queries per chunk: two (chunk, n_db) int64 histograms and the scores stay a few hundred MiB at n_db = 20,000
CHUNK = 256
METRICS = ("dot", "cosine", "euclidean")


def _relevance(ql: np.ndarray, dl: np.ndarray) -> np.ndarray:
    if ql.ndim == 1:
        return ql[:, None] == dl[None, :]
    return (ql.astype(np.float32) @ dl.astype(np.float32).T) > 0


def _as_dense(x: Any) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x)


def _scorer(query: Any, database: Any, metric: str) -> Callable[[slice], np.ndarray]:
    """score(rows) -> (len(rows), n_db) float64 similarities of those queries to every database item."""
    if metric not in METRICS:
        raise ConfigError(f"ranking metric must be one of {', '.join(METRICS)}, got {metric!r}")
    sparse = hasattr(query, "tocsr") and hasattr(database, "tocsr")
    if sparse:
        q, d = query.tocsr().astype(np.float64), database.tocsr().astype(np.float64)
    else:
        q, d = np.asarray(query, dtype=np.float64), np.asarray(database, dtype=np.float64)
        if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
            raise DataError(f"ranking: query {q.shape} and database {d.shape} must be 2-D with the same width")
        if not (np.isfinite(q).all() and np.isfinite(d).all()):
            raise DataError("ranking: the query or database vectors contain NaN or inf")
    if metric == "cosine":
        # a zero vector (an item without tags) has cosine 0 with everything
        def unit(x):
            n = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel()) if sparse else np.linalg.norm(x, axis=1)
            s = np.where(n > 0, 1.0 / np.where(n > 0, n, 1.0), 0.0)
            return x.multiply(s[:, None]).tocsr() if sparse else x * s[:, None]
        q, d = unit(q), unit(d)
    dt = d.T.tocsr() if sparse else d.T
    d_sq = (np.asarray(d.multiply(d).sum(axis=1)).ravel() if sparse else (d * d).sum(axis=1)) \
        if metric == "euclidean" else None

    def score(rows: slice) -> np.ndarray:
        s = _as_dense(q[rows] @ dt).astype(np.float64)
        if metric == "euclidean":  # minus the squared distance; |q|^2 is constant per query and left out
            s = 2.0 * s - d_sq[None, :]
        return s
    return score


def score_average_precision(query: Any, database: Any, query_labels: Any, db_labels: Any,
                            metric: str = "dot") -> np.ndarray:
    """Per-query tie-aware AP@all of the database ranked by ``metric`` (highest similarity first).

    ``query``, ``database``: (n, d) arrays or scipy sparse matrices (e.g. binary tag
    vectors). ``metric``: ``"dot"`` (q . x, e.g. the count of shared binary tags),
    ``"cosine"`` (zero vectors score 0), ``"euclidean"`` (nearest first). Labels as in
    :func:`~hashbench.evaluation.evaluate`: (n, L) multi-label (relevant = sharing a
    label) or 1-D class ids.
    """
    ql, dl = np.asarray(query_labels), np.asarray(db_labels)
    nq, n_db = ql.shape[0], dl.shape[0]
    if query.shape[0] != nq or database.shape[0] != n_db:
        raise DataError(f"ranking: {query.shape[0]} queries with {nq} label rows, "
                        f"{database.shape[0]} database items with {n_db} label rows")
    if n_db == 0 or nq == 0:
        raise DataError("ranking: empty query or database set")
    score = _scorer(query, database, metric)
    hi, lo = _kernels.harmonic_table(n_db)
    cut = np.array([n_db], dtype=np.int64)
    ap = np.zeros(nq)
    for s0 in range(0, nq, CHUNK):
        rows = slice(s0, min(s0 + CHUNK, nq))
        s = score(rows)
        c = s.shape[0]
        order = np.argsort(-s, axis=1, kind="stable")
        ss = np.take_along_axis(s, order, axis=1)
        rel = np.take_along_axis(_relevance(ql[rows], dl), order, axis=1)
        new = np.ones_like(ss, dtype=bool)
        new[:, 1:] = ss[:, 1:] != ss[:, :-1]
        group = np.cumsum(new, axis=1) - 1  # tie group of each ranked item, 0 = highest score
        flat = (group + (np.arange(c) * n_db)[:, None]).ravel()
        hist = np.bincount(flat, minlength=c * n_db).reshape(c, n_db).astype(np.int64)
        relhist = np.bincount(flat, weights=rel.ravel().astype(np.float64),
                              minlength=c * n_db).reshape(c, n_db).astype(np.int64)
        eap, ppos, erc = np.zeros((c, 1)), np.zeros((c, 1)), np.zeros((c, 1))
        _kernels.tie_aware_kernel(hist, relhist, cut, 0, hi, lo, eap, ppos, erc, np.zeros((c, 0)))
        ap[rows] = eap[:, 0]
    return ap


def score_map(query: Any, database: Any, query_labels: Any, db_labels: Any, metric: str = "dot") -> float:
    """Tie-aware mAP@all of the database ranked by ``metric``: the mean of :func:`score_average_precision`."""
    return float(score_average_precision(query, database, query_labels, db_labels, metric).mean())
