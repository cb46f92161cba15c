"""mAP@all of score rankings (hashbench.evaluation.ranking): against brute force and the Hamming evaluator."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from hashbench.errors import ConfigError, DataError
from hashbench.evaluation import EvalConfig, evaluate
from hashbench.evaluation.ranking import score_average_precision, score_map


def brute_force_tie_aware_ap(scores: np.ndarray, relevant: np.ndarray) -> float:
    """AP@all averaged over every order of the tied items (every permutation, then mean)."""
    aps = []
    for perm in itertools.permutations(range(scores.size)):
        perm = np.array(perm)
        # a permutation is a tie order when the scores it visits never increase
        if np.any(np.diff(scores[perm]) > 0):
            continue
        rel = relevant[perm].astype(float)
        if rel.sum() == 0:
            aps.append(0.0)
            continue
        prec = np.cumsum(rel) / np.arange(1, rel.size + 1)
        aps.append(float((prec * rel).sum() / rel.sum()))
    return float(np.mean(aps))


def test_tie_aware_ap_matches_every_order_of_the_ties():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = 7
        db = rng.integers(0, 3, size=(n, 1)).astype(float)  # few distinct scores: many ties
        q = np.ones((1, 1))
        ql = rng.integers(0, 2, size=(1, 3))
        dl = rng.integers(0, 2, size=(n, 3))
        relevant = (dl @ ql.T).ravel() > 0
        got = score_average_precision(q, db, ql, dl, "dot")[0]
        assert got == pytest.approx(brute_force_tie_aware_ap(db.ravel(), relevant), abs=1e-12)


def test_hand_computed_values_without_ties():
    # query 0 ranks r, r, x -> AP 1; query 1 ranks x, r, x, r -> (1/2 + 2/4) / 2 = 0.5
    q = np.eye(2)
    db = np.array([[3.0, 1.0], [2.0, 4.0], [1.0, 2.0], [0.0, 1.0]])
    ql = np.array([0, 1])
    dl = np.array([0, 0, 1, 1])
    ap0 = score_average_precision(q[:1], db[:3], ql[:1], dl[:3], "dot")
    assert ap0[0] == pytest.approx(1.0)
    # scores of query 1: 1, 4, 2, 1 -> order 1, 2, then the tie {0, 3}; relevant: 2, 3
    ap1 = score_average_precision(q[1:], db, ql[1:], dl, "dot")[0]
    # ranks: item1 (x), item2 (r, P=1/2), then items 0 and 3 in either order: r at 3 (P=2/3) or at 4 (P=2/4)
    assert ap1 == pytest.approx(((1 / 2 + 2 / 3) / 2 + (1 / 2 + 2 / 4) / 2) / 2)


@pytest.mark.parametrize("single", [False, True])
def test_ranking_binary_codes_by_distance_is_the_evaluators_tie_aware_map(single):
    rng = np.random.default_rng(0)
    qc, dc = rng.integers(0, 2, (60, 10)), rng.integers(0, 2, (500, 10))
    if single:
        ql, dl = rng.integers(0, 4, 60), rng.integers(0, 4, 500)
    else:
        ql, dl = rng.integers(0, 2, (60, 5)), rng.integers(0, 2, (500, 5))
    cfg = EvalConfig(topk=(None,), precision_at=(), ties="tie-aware", pr_levels=0, device="cpu")
    res = evaluate(qc, dc, ql, dl, cfg)
    # squared Euclidean distance of 0/1 vectors is their Hamming distance
    ap = score_average_precision(qc, dc, ql, dl, "euclidean")
    np.testing.assert_allclose(ap, res.per_query["AP@all"], atol=1e-12)
    assert score_map(qc, dc, ql, dl, "euclidean") == pytest.approx(res.metrics["mAP@all"], abs=1e-12)


def test_sparse_and_dense_inputs_agree_and_cosine_is_scale_free():
    rng = np.random.default_rng(2)
    q = (rng.random((30, 40)) < 0.1).astype(float)
    d = (rng.random((200, 40)) < 0.1).astype(float)
    ql, dl = rng.integers(0, 2, (30, 4)), rng.integers(0, 2, (200, 4))
    dense = score_map(q, d, ql, dl, "dot")
    assert score_map(sp.csr_matrix(q), sp.csr_matrix(d), ql, dl, "dot") == pytest.approx(dense, abs=1e-12)
    x, y = rng.normal(size=(30, 8)), rng.normal(size=(200, 8))
    scaled = y * rng.uniform(0.1, 10, size=(200, 1))
    assert score_map(x, y, ql, dl, "cosine") == pytest.approx(score_map(x, scaled, ql, dl, "cosine"), abs=1e-12)
    assert score_map(x, y, ql, dl, "dot") != pytest.approx(score_map(x, scaled, ql, dl, "dot"), abs=1e-6)


def test_a_zero_vector_scores_zero_under_cosine():
    # the database item without tags (zero vector) ranks between positive and negative cosines
    q = np.array([[1.0, 0.0]])
    d = np.array([[0.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    ql, dl = np.array([0]), np.array([1, 0, 1])
    # order: item 1 (relevant), item 0 (not), item 2 (not): AP = 1
    assert score_map(q, d, ql, dl, "cosine") == pytest.approx(1.0)
    ql2, dl2 = np.array([0]), np.array([0, 1, 1])  # only the zero vector is relevant: rank 2
    assert score_map(q, d, ql2, dl2, "cosine") == pytest.approx(0.5)


def test_bad_inputs_are_refused():
    x = np.zeros((3, 2))
    with pytest.raises(ConfigError, match="metric"):
        score_map(x, x, np.zeros(3, int), np.zeros(3, int), "manhattan")
    with pytest.raises(DataError, match="NaN"):
        score_map(np.full((3, 2), np.nan), x, np.zeros(3, int), np.zeros(3, int))
    with pytest.raises(DataError, match="label rows"):
        score_map(x, x, np.zeros(2, int), np.zeros(3, int))
