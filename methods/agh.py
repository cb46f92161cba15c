"""AGH: anchor graph hashing, one and two layers (Liu, Wang, Kumar & Chang, ICML 2011)."""

from __future__ import annotations

import numpy as np
import scipy.sparse
from sklearn.cluster import KMeans

from hashbench import ConfigError, Hasher, register_method

from ._linear import BATCH_ROWS, squared_distances
from ._selected import record_defaults

# Eigenvalues at or below this are numerically zero (null space of M).
_NULL = 1e-10


class _AnchorGraph(Hasher):
    """What 1-AGH and 2-AGH share: the anchors, Z and the spectral embedding W.

    Liu, Wang, Kumar & Chang, *Hashing with graphs*, ICML 2011, and the first
    author's ``OneLayerAGH_Train.m`` / ``TwoLayerAGH_Train.m``:

    1. anchors: ``n_anchors = 300`` k-means centres of the training data
       (section 3.1; "m = 300" throughout the paper's experiments);
    2. ``Z`` (eq. 3): for each item, its ``s = 2`` nearest anchors get weights
       ``exp(-d^2 / sigma^2)``, normalised to sum to 1, every other anchor 0;
       ``sigma`` is the mean, over the training items, of the distance to
       their s-th nearest anchor (the code's default; pass ``sigma`` to fix it);
    3. with ``Lambda = diag(Z^T 1)``, ``M = Lambda^-1/2 Z^T Z Lambda^-1/2``
       (eq. 8); its eigenvector ``u = Lambda^1/2 1`` (normalised) has
       eigenvalue 1 and is the trivial one (every item gets the same sign): it
       is excluded, and the next ``v_k`` by decreasing eigenvalue ``sigma_k``
       give ``W = sqrt(n) Lambda^-1/2 V Sigma^-1/2`` (eq. 9; the ``sqrt(n)``
       scale, which the one-layer code omits, does not change a sign);
    4. out-of-sample (eq. 10): ``y(x) = Z(x) W``, with ``Z(x)`` built as in 2.

    Equation numbers are cited from the published paper as recalled, not
    re-read here (only abstracts are on file); each step was checked against
    the authors' MATLAB code.

    Departure from the authors' code, on purpose: the code drops every
    eigenvector with eigenvalue >= 1 - 1e-3 (meant for the trivial one). When
    the anchor graph falls into c disconnected pieces (well-separated clusters,
    s = 2), eigenvalue 1 has multiplicity c, and that filter throws away the
    c - 1 piece-indicator eigenvectors: the very zero-cut partitions spectral
    hashing is after, leaving only within-piece eigenvectors. We deflate
    exactly the trivial ``u`` (eigen-decompose ``M - u u^T``) and keep the
    rest. On a connected graph with no eigenvalue in [1 - 1e-3, 1), the usual
    case on CNN features, both give the same eigenvectors (tested).

    Departures that change no code: ``exp(-(d^2 - d_min^2) / sigma^2)`` is
    used before normalising (the same Z, without underflow to 0/0 for items
    far from every anchor); anchors that are no item's s-nearest (zero degree)
    are left out of M (the code would divide by zero); k-means is
    scikit-learn's (Lloyd, one run of ``kmeans_iter = 5`` iterations from
    random training points, like the ``litekmeans(..., 'MaxIter', 5)`` of the
    MATLAB wrappers the benchmarks use), seeded by ``seed``; ``n_anchors`` is
    capped at the number of training samples. ``eigenvalues_``,
    ``eigenvectors_`` (of M, zero rows for unused anchors) and
    ``trivial_eigenvector_`` are kept for inspection.
    """

    deep = False
    requires = frozenset({"features"})
    # model selection: anchors m and nearest anchors s around the paper's m = 300, s = 2
    search_space = {"n_anchors": [100, 300, 500], "n_nearest": [2, 3, 5]}
    _bits_per_eigenvector = 1

    def __init__(
        self,
        bits: int = 32,
        seed: int = 0,
        n_anchors: int = 300,
        n_nearest: int = 2,
        sigma: float | None = None,
        kmeans_iter: int = 5,
    ) -> None:
        super().__init__(bits=bits, seed=seed)
        self.n_anchors = n_anchors
        self.n_nearest = n_nearest
        self.sigma = sigma
        self.kmeans_iter = kmeans_iter

    def max_bits(self, n_samples: int, n_features: int) -> tuple[int | None, str]:
        try:
            m = min(int(self.n_anchors), n_samples)
        except (TypeError, ValueError):
            return None, ""
        return self._bits_per_eigenvector * max(m - 1, 0), (
            f"{m} anchors give at most {m - 1} non-trivial eigenvectors"
            + (", two bits each" if self._bits_per_eigenvector == 2 else "")
        )

    # ------------------------------------------------------------ the graph
    def anchor_weights(self, features: np.ndarray) -> scipy.sparse.csr_matrix:
        """``Z(x)``: the (n, n_anchors) sparse matrix of eq. 3 for new items (after fit)."""
        idx, near = self._nearest_anchors(features)
        return self._weights(idx, near, self.sigma_)

    def _nearest_anchors(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices (n, s) of each item's s nearest anchors, nearest first, and their squared distances."""
        s = int(self.n_nearest)
        idx_parts, near_parts = [], []
        for i in range(0, features.shape[0], BATCH_ROWS):
            x = np.asarray(features[i : i + BATCH_ROWS], dtype=np.float64)
            d2 = squared_distances(x, self.anchors_, self._anchor_sq)
            idx = np.argpartition(d2, s - 1, axis=1)[:, :s] if s < d2.shape[1] else np.tile(np.arange(s), (len(x), 1))
            near = np.take_along_axis(d2, idx, axis=1)
            order = np.argsort(near, axis=1, kind="stable")
            idx_parts.append(np.take_along_axis(idx, order, axis=1))
            near_parts.append(np.take_along_axis(near, order, axis=1))
        return np.concatenate(idx_parts), np.concatenate(near_parts)

    def _weights(self, idx: np.ndarray, near: np.ndarray, sigma: float) -> scipy.sparse.csr_matrix:
        # exp(-d^2 / sigma^2), shifted by the row's smallest d^2 (cancels in the normalisation)
        val = np.exp(-(near - near[:, :1]) / sigma**2)
        val /= val.sum(axis=1, keepdims=True)
        n, s = idx.shape
        return scipy.sparse.csr_matrix(
            (val.ravel(), idx.ravel(), np.arange(0, n * s + 1, s)), shape=(n, self.anchors_.shape[0])
        )

    def _check_params(self) -> None:
        for name in ("n_anchors", "n_nearest", "kmeans_iter"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"{self.name}: {name} must be a positive integer, got {v!r}")
        if self.sigma is not None and not float(self.sigma) > 0:
            raise ConfigError(f"{self.name}: sigma must be positive or None (estimated), got {self.sigma!r}")

    def _fit_graph(self, features: np.ndarray, n_eig: int) -> scipy.sparse.csr_matrix:
        n = features.shape[0]
        m = min(int(self.n_anchors), n)
        if self.n_nearest > m:
            raise ConfigError(f"{self.name}: n_nearest={self.n_nearest} exceeds the {m} anchors")
        km = KMeans(n_clusters=m, init="random", n_init=1, max_iter=int(self.kmeans_iter),
                    random_state=self.seed).fit(features)
        self.anchors_ = km.cluster_centers_.astype(np.float64)
        self._anchor_sq = np.einsum("ij,ij->i", self.anchors_, self.anchors_)
        idx, near = self._nearest_anchors(features)
        # the code's default sigma: the mean distance to the s-th nearest anchor
        self.sigma_ = float(self.sigma) if self.sigma is not None else float(np.sqrt(near[:, -1]).mean())
        if not self.sigma_ > 0:
            raise ConfigError(f"{self.name}: every training item sits on its anchors (sigma = 0); "
                              "pass sigma explicitly")
        z = self._weights(idx, near, self.sigma_)

        degree = np.asarray(z.sum(axis=0)).ravel()
        active = np.flatnonzero(degree > 0)
        zs = z[:, active]
        inv_sqrt = 1.0 / np.sqrt(degree[active])
        gram = (zs.T @ zs).toarray()
        mmat = inv_sqrt[:, None] * gram * inv_sqrt[None, :]
        # The trivial eigenvector u = Lambda^1/2 1 / ||.|| (M u = u, since Z's rows
        # sum to 1) is deflated away, and only it: see "departures" above.
        u = np.sqrt(degree[active])
        u /= np.linalg.norm(u)
        self.trivial_eigenvector_ = np.zeros(len(degree))
        self.trivial_eigenvector_[active] = u
        vals, vecs = np.linalg.eigh(mmat - np.outer(u, u))
        order = np.argsort(vals)[::-1]
        vals, vecs = vals[order], vecs[:, order]
        keep = np.flatnonzero(vals > _NULL)
        if keep.size < n_eig:
            raise ConfigError(
                f"{self.name}: the anchor graph has only {keep.size} usable eigenvectors, "
                f"{n_eig} needed for {self.bits} bits (use fewer bits or more anchors/training data)"
            )
        keep = keep[:n_eig]
        self.eigenvalues_ = vals[keep]
        self.eigenvectors_ = np.zeros((len(degree), n_eig))
        self.eigenvectors_[active] = vecs[:, keep]
        self.anchor_degree_ = degree
        w = np.zeros((len(degree), n_eig))
        w[active] = np.sqrt(n) * inv_sqrt[:, None] * vecs[:, keep] / np.sqrt(self.eigenvalues_)[None, :]
        self.projection_ = w  # (m, n_eig)
        self.history_ = {}
        return z

    def _embed(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(self.anchor_weights(features) @ self.projection_)


@register_method("agh")
@record_defaults("agh")
class AGH(_AnchorGraph):
    __doc__ = (
        """1-AGH: one bit per graph-Laplacian eigenfunction, ``[y_k(x) > 0]`` (eq. 10).

    """
        + (_AnchorGraph.__doc__ or "")
    )

    display_name = "AGH"
    summary = "anchor-graph Laplacian eigenfunctions, thresholded at zero (1-AGH)"
    paper = "Liu, Wang, Kumar & Chang, Hashing with graphs, ICML 2011"

    def _fit(self, features: np.ndarray) -> None:
        self._check_params()
        self._fit_graph(features, self.bits)

    def _encode(self, features: np.ndarray) -> np.ndarray:
        return (self._embed(features) > 0).astype(np.uint8)


@register_method("agh2")
@record_defaults("agh2")
class AGH2(_AnchorGraph):
    __doc__ = (
        """2-AGH: two bits per eigenfunction, so ``bits`` must be even (section 3.4).

    The first ``bits/2`` bits are ``[y_k(x) > 0]`` (as 1-AGH, on ``bits/2``
    eigenvectors); the second layer re-thresholds each eigenfunction inside
    each half: ``[y_k - b+_k > 0]`` where ``y_k > 0`` and ``[-y_k + b-_k > 0]``
    elsewhere, with ``b+``, ``b-`` the closed-form minimisers of eq. 12 over
    the training data, computed as in ``TwoLayerAGH_Train.m`` (where ``s2``, a
    non-negative denominator, is 0 the correction term is taken as 0).
    Codes are ordered [first-layer bits, second-layer bits], as in the code.

    """
        + (_AnchorGraph.__doc__ or "")
    )

    display_name = "2-AGH"
    summary = "anchor-graph Laplacian eigenfunctions with a second, hierarchical threshold (2-AGH)"
    paper = "Liu, Wang, Kumar & Chang, Hashing with graphs, ICML 2011"
    _bits_per_eigenvector = 2

    def _fit(self, features: np.ndarray) -> None:
        if self.bits % 2:
            raise ConfigError(
                f"agh2: bits must be even (2-AGH makes two bits per eigenfunction), got {self.bits}"
            )
        self._check_params()
        n = features.shape[0]
        z = self._fit_graph(features, self.bits // 2)
        y = np.asarray(z @ self.projection_)  # (n, h)
        pos = (y > 0).astype(np.float64)
        n1 = pos.sum(axis=0)
        n2 = n - n1
        lam = self.anchor_degree_
        inv_lam = np.divide(1.0, lam, out=np.zeros_like(lam), where=lam > 0)
        right = np.asarray(z.T @ np.abs(y)) * inv_lam[:, None]  # (m, h)
        left = np.asarray(z.T @ pos)  # (m, h): sum of Z over the positive items
        s1 = np.sum(left * right, axis=0)
        s2 = n1 - np.sum(left * left * inv_lam[:, None], axis=0)
        s3 = np.sum(y * pos, axis=0)
        ratio = np.divide(s3 - s1, s2, out=np.zeros_like(s2), where=s2 > 1e-12)
        self.thresholds_ = np.stack([(2 * s3 + n2 * ratio) / n, (n1 * ratio - 2 * s3) / n])  # (2, h)

    def _encode(self, features: np.ndarray) -> np.ndarray:
        y = self._embed(features)
        second = np.where(y > 0, y - self.thresholds_[0], -y + self.thresholds_[1])
        return np.concatenate([y > 0, second > 0], axis=1).astype(np.uint8)
