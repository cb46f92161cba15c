"""Shared linear-algebra helpers of the classical methods (not a method itself).

* :func:`top_principal_directions`: exact PCA through the smaller of the two
  Gram matrices (PCAH, ITQ and SH all start here);
* :func:`sign_flip`: a deterministic sign for eigenvectors, whose sign LAPACK
  leaves arbitrary;
* :func:`in_batches`: apply a row-wise function to a large array in float64
  chunks, so encoding a 100,000 x 4,096 float32 database never holds a float64
  copy of it all;
* :func:`squared_distances`: ||x - c||^2 for all pairs, by the dot-product
  expansion (one matrix product; no Python loop over items).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

# Rows per chunk when encoding: 4,096 rows x 4,096 float64 features is 128 MiB.
BATCH_ROWS = 4096


def sign_flip(vectors: np.ndarray) -> np.ndarray:
    """Flip each column so that its largest-magnitude entry is positive.

    Eigenvectors are defined up to sign; fixing it makes codes independent of
    the LAPACK build (the same convention as scikit-learn's ``svd_flip``).
    """
    idx = np.argmax(np.abs(vectors), axis=0)
    signs = np.sign(vectors[idx, np.arange(vectors.shape[1])])
    signs[signs == 0] = 1.0
    return vectors * signs


def _top_eigenpairs(a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenpairs of the symmetric matrix ``a`` (float64).

    Few of many (k <= dim / 8): ARPACK's Lanczos (``eigsh``, what MATLAB's
    ``eigs`` calls, as in the ITQ and SH authors' code) to full precision
    (``tol=0``), from a fixed start vector so the result never depends on a
    global random state. Otherwise LAPACK's ``syevr`` on the wanted subset.
    """
    dim = a.shape[0]
    if dim > 64 and k <= dim // 8:
        v0 = np.random.default_rng(0).standard_normal(dim)
        return scipy.sparse.linalg.eigsh(a, k=k, which="LA", v0=v0, tol=0)
    return scipy.linalg.eigh(a, subset_by_index=[dim - k, dim - 1], driver="evr")


def top_principal_directions(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mean, the top-``k`` principal directions and their variances.

    Returns ``(mean (d,), components (d, k), variances (k,))``, directions
    sorted by decreasing variance. Exact (no randomised SVD): when n >= d it
    takes the top eigenvectors of the d x d covariance, otherwise those of the
    n x n Gram matrix of the centred data, mapped back to feature space. The
    product ``X^T X`` is computed in the input's precision (float32 features
    stay float32 there, halving the dominant cost, as scikit-learn's PCA does);
    the mean and the eigen-decomposition are float64.
    """
    n, d = x.shape
    if not 1 <= k <= min(n, d):
        raise ValueError(f"cannot take {k} principal directions of a {n} x {d} array")
    dtype = np.float32 if x.dtype == np.float32 else np.float64
    mean = x.mean(axis=0, dtype=np.float64)
    xc = np.asarray(x, dtype=dtype) - mean.astype(dtype)
    if n >= d:
        cov = (xc.T @ xc).astype(np.float64) / max(n - 1, 1)
        vals, vecs = _top_eigenpairs(cov, k)
    else:
        gram = (xc @ xc.T).astype(np.float64) / max(n - 1, 1)
        vals, u = _top_eigenpairs(gram, k)
        vecs = (xc.T @ u.astype(dtype)).astype(np.float64)
        norms = np.linalg.norm(vecs, axis=0)
        # A zero-variance direction maps to the zero vector: keep it as such
        # rather than divide by zero (callers bound k by n - 1 anyway).
        vecs = vecs / np.where(norms > 0, norms, 1.0)
    order = np.argsort(vals)[::-1]
    return mean, sign_flip(vecs[:, order]), np.clip(vals[order], 0.0, None)


def in_batches(x: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], rows: int = BATCH_ROWS) -> np.ndarray:
    """``fn`` applied to float64 chunks of ``x``'s rows, results stacked."""
    if x.shape[0] <= rows:
        return fn(np.asarray(x, dtype=np.float64))
    return np.concatenate(
        [fn(np.asarray(x[i : i + rows], dtype=np.float64)) for i in range(0, x.shape[0], rows)], axis=0
    )


def squared_distances(x: np.ndarray, centres: np.ndarray, centre_sq_norms: np.ndarray | None = None) -> np.ndarray:
    """(n, m) squared Euclidean distances, clipped at 0 against round-off."""
    if centre_sq_norms is None:
        centre_sq_norms = np.einsum("ij,ij->i", centres, centres)
    d2 = np.einsum("ij,ij->i", x, x)[:, None] - 2.0 * (x @ centres.T) + centre_sq_norms[None, :]
    return np.maximum(d2, 0.0, out=d2)
