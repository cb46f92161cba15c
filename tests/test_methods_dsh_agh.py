"""DSH and 1-/2-AGH against their defining properties, recomputed by brute force."""

from __future__ import annotations

import numpy as np
import pytest

import hashbench
from hashbench import ConfigError
from hashbench_methods import agh, dsh  # noqa: F401

from .test_methods_common import clustered


def test_dsh_keeps_the_best_balanced_bisector_planes():
    x, _ = clustered(seed=6, n=700, d=16, sub=6, sep=1.5)
    bits = 10
    h = hashbench.create("dsh", bits=bits, seed=1, alpha=1.5, r=3).fit(x)  # the paper's values (the shipped ones are selected)
    c = h.cluster_centers_
    k = len(c)
    assert k == 15  # round(1.5 * 10)
    # cluster masses: the share of training points nearest each centre
    nearest = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(h.cluster_mass_, np.bincount(nearest, minlength=k) / len(x))
    # candidates: every centre with each of its 3 nearest centres, once per pair
    dist = np.linalg.norm(c[:, None] - c[None], axis=-1)
    want = set()
    for i in range(k):
        for j in [j for j in np.argsort(dist[i]) if j != i][:3]:
            want.add((min(i, j), max(i, j)))
    got = [tuple(p) for p in h.candidate_pairs_]
    assert set(got) == want and len(got) == len(want)
    # each candidate's balance, from the cluster masses on each side, by loops
    scores = []
    for i, j in got:
        w, mid = c[i] - c[j], (c[i] + c[j]) / 2
        p = sum(h.cluster_mass_[g] for g in range(k) if c[g] @ w > mid @ w)
        scores.append(min(p, 1 - p) / max(p, 1 - p))
    scores = np.array(scores)
    np.testing.assert_allclose(h.candidate_scores_, scores)
    chosen = np.zeros(len(got), bool)
    chosen[h.selected_] = True
    assert chosen.sum() == bits
    assert scores[chosen].min() >= scores[~chosen].max()
    # a bit is [w . x > t] with w = mu_i - mu_j and t at the midpoint
    i, j = got[h.selected_[0]]
    w = c[i] - c[j]
    np.testing.assert_array_equal(h.encode(x)[:, 0], (x @ w > (c[i] + c[j]) / 2 @ w).astype(np.uint8))


@pytest.fixture(scope="module")
def agh_data():
    x, labels = clustered(seed=7, n=900, d=24, sub=8, sep=0.6, noise=0.5)
    return x, labels


def test_agh_anchor_weights_are_s_sparse_rows_summing_to_one(agh_data):
    x, _ = agh_data
    h = hashbench.create("agh", bits=12, seed=0, n_anchors=100, n_nearest=3).fit(x)
    z = h.anchor_weights(x[:200]).toarray()
    assert z.shape == (200, 100)
    np.testing.assert_array_equal((z > 0).sum(axis=1), 3)
    np.testing.assert_allclose(z.sum(axis=1), 1.0)
    # the non-zeros are the 3 nearest anchors, weighted exp(-d^2 / sigma^2)
    d2 = ((x[:200, None, :].astype(np.float64) - h.anchors_[None]) ** 2).sum(-1)
    near = np.argsort(d2, axis=1)[:, :3]
    assert all(set(np.flatnonzero(z[r])) == set(near[r]) for r in range(200))
    kern = np.exp(-np.take_along_axis(d2, near, 1) / h.sigma_**2)
    np.testing.assert_allclose(np.take_along_axis(z, near, 1), kern / kern.sum(1, keepdims=True), rtol=1e-9)
    # sigma: the mean training distance to the s-th nearest anchor
    d2_all = ((x[:, None, :].astype(np.float64) - h.anchors_[None]) ** 2).sum(-1)
    np.testing.assert_allclose(h.sigma_, np.sqrt(np.sort(d2_all, axis=1)[:, 2]).mean(), rtol=1e-9)


def test_agh_excludes_the_trivial_eigenvector_and_matches_the_authors_filter(agh_data):
    x, _ = agh_data
    h = hashbench.create("agh", bits=16, seed=0).fit(x)
    z = h.anchor_weights(x).toarray()
    lam = z.sum(axis=0)
    act = lam > 0
    m = (z[:, act].T @ z[:, act]) / np.sqrt(np.outer(lam[act], lam[act]))
    vals = np.sort(np.linalg.eigvalsh(m))[::-1]
    assert np.isclose(vals[0], 1.0)  # the trivial eigenvalue
    # connected graph: the authors' filter (0 < eigenvalue < 1 - 1e-3) keeps the same ones
    authors = vals[(vals > 0) & (vals < 1 - 1e-3)][:16]
    assert vals[1] < 1 - 1e-3
    np.testing.assert_allclose(h.eigenvalues_, authors, rtol=1e-8)
    # the kept eigenvectors are orthogonal to the trivial one, Lambda^1/2 1
    u = np.sqrt(lam) / np.linalg.norm(np.sqrt(lam))
    np.testing.assert_allclose(h.trivial_eigenvector_, u, atol=1e-12)
    np.testing.assert_allclose(u @ h.eigenvectors_, 0.0, atol=1e-8)
    # out of sample: y(x) = Z(x) W; no bit is constant on the training data
    codes = h.encode(x)
    np.testing.assert_array_equal(codes, (z @ h.projection_ > 0).astype(np.uint8))
    assert np.all(codes.std(axis=0) > 0)


def test_agh_on_a_disconnected_graph_keeps_the_cut_between_pieces():
    # two far blobs: the anchor graph has two pieces, and the first bit is the piece
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal((200, 5)), rng.standard_normal((200, 5)) + 50])
    h = hashbench.create("agh", bits=4, seed=0, n_anchors=40).fit(x)
    assert np.isclose(h.eigenvalues_[0], 1.0)
    first = h.encode(x)[:, 0]
    assert len(set(first[:200])) == 1 and len(set(first[200:])) == 1 and first[0] != first[-1]


def test_agh2_refuses_odd_bits_and_its_first_layer_is_agh(agh_data):
    x, _ = agh_data
    with pytest.raises(ConfigError, match="even"):
        hashbench.create("agh2", bits=7).fit(x)
    h2 = hashbench.create("agh2", bits=16, seed=0).fit(x)
    h1 = hashbench.create("agh", bits=8, seed=0).fit(x)
    codes = h2.encode(x)
    np.testing.assert_array_equal(codes[:, :8], h1.encode(x))
    assert h2.thresholds_.shape == (2, 8) and np.all(np.isfinite(h2.thresholds_))
    # the second layer re-splits each half of every eigenfunction
    y = np.asarray(h2.anchor_weights(x) @ h2.projection_)
    pos = y > 0
    second = codes[:, 8:].astype(bool)
    np.testing.assert_array_equal(second[pos], (y - h2.thresholds_[0])[pos] > 0)
    np.testing.assert_array_equal(second[~pos], (-y + h2.thresholds_[1])[~pos] > 0)
    assert np.all(second.std(axis=0) > 0)
