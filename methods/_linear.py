"""Shared linear-algebra helpers of the classical methods (not a method itself).

* :func:`top_principal_directions`: exact PCA through the smaller of the two
  Gram matrices, computed in float64 (PCAH, ITQ and SH all start here);
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


def top_principal_directions(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mean, the top-``k`` principal directions and their variances.

    Returns ``(mean (d,), components (d, k), variances (k,))``, directions
    sorted by decreasing variance. Exact (no randomised SVD): when n >= d it
    takes the top eigenvectors of the d x d covariance, otherwise those of the
    n x n Gram matrix of the centred data, mapped back to feature space. Only
    the ``k`` wanted eigenpairs are computed (LAPACK ``syevr`` subset).
    """
    n, d = x.shape
    if not 1 <= k <= min(n, d):
        raise ValueError(f"cannot take {k} principal directions of a {n} x {d} array")
    mean = x.mean(axis=0, dtype=np.float64)
    xc = np.asarray(x, dtype=np.float64) - mean
    if n >= d:
        cov = xc.T @ xc / max(n - 1, 1)
        vals, vecs = scipy.linalg.eigh(cov, subset_by_index=[d - k, d - 1])
    else:
        gram = xc @ xc.T / max(n - 1, 1)
        vals, u = scipy.linalg.eigh(gram, subset_by_index=[n - k, n - 1])
        vecs = xc.T @ u
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
