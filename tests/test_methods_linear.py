"""LSH, PCAH and ITQ against their definitions, computed independently with numpy."""

from __future__ import annotations

import numpy as np
import pytest

import hashbench
from hashbench_methods import itq, lsh, pcah  # noqa: F401

from .test_methods_common import clustered


def _numpy_pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and top-k principal directions (columns) from numpy's SVD of the centred data."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:k].T


def test_lsh_hyperplanes_pass_through_the_training_mean():
    x, _ = clustered(seed=1, n=400, d=30)
    h = hashbench.create("lsh", bits=64, seed=5).fit(x)
    mean = x.astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(h.mean_, mean)
    # a hyperplane through the mean puts mean + delta and mean - delta on opposite sides
    delta = np.random.default_rng(0).standard_normal((20, 30))
    plus, minus = h.encode(mean + delta), h.encode(mean - delta)
    np.testing.assert_array_equal(plus ^ minus, np.ones_like(plus))
    # a bit is [w . (x - mean) > 0], w standard Gaussian
    np.testing.assert_array_equal(h.encode(x), ((x - mean) @ h.projections_ > 0).astype(np.uint8))
    w = h.projections_
    assert w.shape == (30, 64)
    assert abs(w.mean()) < 0.08 and abs(w.std() - 1) < 0.08


@pytest.mark.parametrize("n, d", [(300, 20), (15, 40)])  # covariance path and Gram path
def test_pcah_codes_are_signs_on_the_top_principal_directions(n, d):
    x = np.random.default_rng(2).standard_normal((n, d)) * np.linspace(3, 0.5, d)
    bits = min(8, n - 1)
    h = hashbench.create("pcah", bits=bits).fit(x)
    mean, dirs = _numpy_pca(x, bits)
    # the same directions, up to each one's sign
    np.testing.assert_allclose(np.abs(np.sum(h.components_ * dirs, axis=0)), 1.0, atol=1e-8)
    ref = ((x - mean) @ dirs > 0).astype(np.uint8)
    codes = h.encode(x)
    for k in range(bits):
        assert np.array_equal(codes[:, k], ref[:, k]) or np.array_equal(codes[:, k], 1 - ref[:, k])
    # variances in decreasing order, matching the singular values
    s = np.linalg.svd(x - mean, compute_uv=False)[:bits]
    np.testing.assert_allclose(h.explained_variance_, s**2 / (n - 1), rtol=1e-8)


def test_pcah_uses_n_minus_1_directions_at_most():
    x = np.random.default_rng(0).standard_normal((6, 40))
    h = hashbench.create("pcah", bits=5).fit(x)  # 5 = n - 1 works
    assert h.encode(x).shape == (6, 5)
    with pytest.raises(hashbench.ConfigError, match="at most 5"):
        hashbench.create("pcah", bits=6).fit(x)


def test_itq_loss_non_increasing_rotation_orthogonal_and_codes_defined_by_it():
    x, _ = clustered(seed=4, n=500, d=40, sub=10, sep=1.0)
    x = x.astype(np.float64)  # float64 all through, to compare with numpy to 1e-8
    h = hashbench.create("itq", bits=16, seed=3, n_iter=50).fit(x)
    loss = np.array(h.history_["quantization_loss"])
    assert loss.shape == (50,)
    assert np.all(np.diff(loss) <= 1e-9 * loss[0])
    assert loss[-1] < loss[0]
    r = h.rotation_
    np.testing.assert_allclose(r @ r.T, np.eye(16), atol=1e-10)
    # PCA subspace: the same as numpy's, whatever the basis
    mean, dirs = _numpy_pca(x, 16)
    np.testing.assert_allclose(h.components_ @ h.components_.T, dirs @ dirs.T, atol=1e-8)
    v = (x.astype(np.float64) - mean) @ h.components_
    np.testing.assert_array_equal(h.encode(x), (v @ r >= 0).astype(np.uint8))
    # the recorded loss is Q(B, R) = ||B - V R||_F^2 of the paper's eq. 2 at the last step
    b_last = np.where(v @ _previous_rotation(h, x) >= 0, 1.0, -1.0)
    np.testing.assert_allclose(loss[-1], np.sum((b_last - v @ r) ** 2), rtol=1e-8)
    # ITQ's rotation quantises better than the PCA axes it started from
    pca_loss = np.sum((np.where(v >= 0, 1.0, -1.0) - v) ** 2)
    assert loss[-1] < pca_loss


def _previous_rotation(h, x):
    """The rotation after n_iter - 1 iterations (same seed), from which the last B was taken."""
    return hashbench.create("itq", bits=h.bits, seed=h.seed, n_iter=h.n_iter - 1).fit(x).rotation_


def test_itq_history_length_follows_n_iter_and_rejects_bad_values():
    x = np.random.default_rng(0).standard_normal((100, 10))
    assert len(hashbench.create("itq", bits=4, n_iter=7).fit(x).history_["quantization_loss"]) == 7
    with pytest.raises(hashbench.ConfigError, match="n_iter"):
        hashbench.create("itq", bits=4, n_iter=-1).fit(x)


def test_float32_features_give_the_float64_subspace_to_single_precision():
    x, _ = clustered(seed=4, n=3000, d=200, sub=10, sep=1.0)  # d > 64: the Lanczos path
    h32 = hashbench.create("pcah", bits=12).fit(x)
    h64 = hashbench.create("pcah", bits=12).fit(x.astype(np.float64))
    _, dirs = _numpy_pca(x, 12)
    for h in (h32, h64):
        np.testing.assert_allclose(np.abs(np.sum(h.components_ * dirs, axis=0)), 1.0, atol=1e-4)
    np.testing.assert_allclose(np.abs(np.sum(h64.components_ * dirs, axis=0)), 1.0, atol=1e-9)
