"""Spectral hashing and spherical hashing against their defining properties."""

from __future__ import annotations

import numpy as np
import pytest

import hashbench
from hashbench_methods import sh, sph  # noqa: F401
from hashbench_methods.sph import spherical_hamming_distance

from .test_methods_common import clustered


def test_sh_keeps_exactly_the_b_smallest_modes():
    x, _ = clustered(seed=2, n=600, d=24, sub=6, sep=1.5)
    x = x.astype(np.float64)
    bits = 20
    h = hashbench.create("sh", bits=bits).fit(x)
    # brute force: numpy PCA, the box along each direction, every (direction, k) mode
    xc = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    proj = xc @ vt[:bits].T
    ranges = proj.max(axis=0) - proj.min(axis=0) + 2 * np.finfo(np.float64).eps
    omega = {(j, k): k * np.pi / ranges[j] for j in range(bits) for k in range(1, 3 * bits)}
    smallest = sorted(omega, key=omega.get)[:bits]
    assert {tuple(m) for m in h.modes_} == set(smallest)
    np.testing.assert_allclose(np.sort(h.omegas_), sorted(omega[m] for m in smallest), rtol=1e-9)
    assert np.all(np.diff(h.eigenvalues_) >= 0)
    assert np.any(np.bincount(h.modes_[:, 0]) > 1)  # one direction can give several bits
    assert np.all(h.modes_[:, 1] >= 1)  # the constant mode is never used


def test_sh_box_example_worked_by_hand():
    # a 2-D grid on [0, 3.5] x [0, 1]: principal directions are the axes, ranges 3.5 and 1.
    # omegas: k pi / 3.5 = 0.90, 1.80, 2.69, 3.59, ... and pi / 1 = 3.14: the 4 smallest
    # are (axis 0, k = 1, 2, 3) and (axis 1, k = 1).
    g0, g1 = np.meshgrid(np.linspace(0, 3.5, 36), np.linspace(0, 1, 11), indexing="ij")
    x = np.stack([g0.ravel(), g1.ravel()], axis=1)
    h = hashbench.create("sh", bits=4).fit(x)
    assert sorted(tuple(m) for m in h.modes_) == [(0, 1), (0, 2), (0, 3), (1, 1)]
    np.testing.assert_allclose(np.sort(h.omegas_), np.sort([np.pi / 3.5, 2 * np.pi / 3.5, 3 * np.pi / 3.5, np.pi]))
    # bit (axis 0, k=1) is [sin(pi/2 + pi (x - min) / 3.5) > 0]: the left half of the box
    axis0 = np.abs(h.components_[:, 0]).argmax()
    k1 = int(np.flatnonzero((h.modes_[:, 0] == 0) & (h.modes_[:, 1] == 1))[0])
    codes = h.encode(x)
    left = x[:, axis0] < 1.75 - 1e-9
    right = x[:, axis0] > 1.75 + 1e-9
    side = codes[:, k1]
    assert (np.all(side[left] == 1) and np.all(side[right] == 0)) or (
        np.all(side[left] == 0) and np.all(side[right] == 1)
    )


def test_sph_spheres_halve_the_data_and_overlap_by_a_quarter():
    x, _ = clustered(seed=5, n=800, d=32, sub=8, sep=1.0)
    n = len(x)
    h = hashbench.create("sph", bits=16, seed=2).fit(x)
    assert h.converged_ and h.n_iter_ <= h.max_iter
    codes = h.encode(x).astype(np.int64)
    # every sphere holds floor(n / 2) training points (continuous data: no ties)
    np.testing.assert_array_equal(codes.sum(axis=0), n // 2)
    overlaps = codes.T @ codes
    pair = overlaps[np.triu_indices(16, k=1)]
    assert np.mean(np.abs(pair - n / 4)) <= 0.10 * n / 4
    assert np.std(pair) <= 0.15 * n / 4
    # the codes are membership of the balls (centre, radius), by definition
    d = np.linalg.norm(x[:, None, :].astype(np.float64) - h.centers_[None], axis=-1)
    np.testing.assert_array_equal(codes, (d <= h.radii_ + 1e-9).astype(np.int64))
    # the force updates made the overlaps more balanced than at the random start
    assert h.history_["overlap_error_mean"][-1] < h.history_["overlap_error_mean"][0]


def test_sph_iteration_cap_warns_and_reports_not_converged():
    x, _ = clustered(seed=5, n=800, d=32, sub=8, sep=1.0)
    with pytest.warns(RuntimeWarning, match="max_iter=1"):
        h = hashbench.create("sph", bits=16, seed=2, max_iter=1).fit(x)
    assert not h.converged_ and h.n_iter_ == 1
    assert len(h.history_["overlap_error_mean"]) == 2  # the start and one iteration


def test_spherical_hamming_distance_by_hand_and_by_brute_force():
    a = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0]], dtype=np.uint8)
    b = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 1, 1]], dtype=np.uint8)
    d = spherical_hamming_distance(a, b)
    # a0 vs b0: xor = 2 (bits 1, 2), and = 1 (bit 0) -> 2; a0 vs b2: nothing in common -> inf
    assert d[0, 0] == 2.0 and d[0, 2] == np.inf
    assert d[1, 1] == 0.0  # identical codes
    assert d[2, 0] == 0.0 and d[2, 2] == 2.0  # 2 differing / 1 common
    rng = np.random.default_rng(0)
    p, q = rng.integers(0, 2, (30, 12)), rng.integers(0, 2, (25, 12))
    got = spherical_hamming_distance(p, q)
    for i in range(30):
        for j in range(25):
            xor, both = np.sum(p[i] != q[j]), np.sum(p[i] & q[j])
            want = xor / both if both else (0.0 if xor == 0 else np.inf)
            assert got[i, j] == want
    with pytest.raises(ValueError, match="equal width"):
        spherical_hamming_distance(p, q[:, :5])
