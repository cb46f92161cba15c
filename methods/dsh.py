"""DSH: density sensitive hashing (Jin, Li, Lin & Cai, IEEE Trans. Cybernetics 2014)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans

from hashbench import ConfigError, Hasher, register_method

from ._linear import in_batches
from ._selected import record_defaults


def _round_half_up(x: float) -> int:
    # MATLAB's round (the authors' code), not Python's round-half-to-even
    return int(np.floor(x + 0.5))


@register_method("dsh")
@record_defaults("dsh")
class DSH(Hasher):
    """Density Sensitive Hashing: balanced bisector planes between neighbouring k-means groups.

    Jin, Li, Lin & Cai, *Density sensitive hashing*, IEEE Trans. Cybernetics
    44(8) 2014, section III (and the authors' ``DSH_learn.m``):

    1. quantise the training data with k-means into ``k = round(alpha * b)``
       groups (``alpha = 1.5``), with only ``kmeans_iter = 3`` iterations
       ("a few", Algorithm 1; the code's ``litekmeans(..., 'MaxIter', 3)``),
       starting from ``k`` random training points as the code does;
    2. for every centre ``mu_i`` and each of its ``r = 3`` nearest centres
       ``mu_j`` (the "r-nearest neighbour pairs", Definition 1), the candidate
       projection is the perpendicular bisector plane: ``w = mu_i - mu_j``,
       intercept ``t = w . (mu_i + mu_j) / 2`` (eq. 4); pairs found from both
       ends count once;
    3. each candidate is scored by how evenly it splits the data, a group
       counting on the side its centre falls, weighted by the group's share of
       the training points: with ``P`` that share on the positive side, the
       code's score is ``min(P, 1 - P) / max(P, 1 - P)`` (the paper's entropy
       ``-P log P - (1 - P) log(1 - P)``, eq. 6, orders candidates the same
       way); the ``b`` best-scoring candidates are kept, ties going to the
       closer pair, as in the code.

    Equation numbers are cited from the published paper as recalled, not
    re-read here (only abstracts are on file); each step was checked against
    the authors' MATLAB code.

    A bit is ``[w . x > t]``. ``candidate_pairs_``, ``candidate_scores_`` and
    ``selected_`` record the candidates (closest pairs first), their scores and
    the indices kept.

    Departures from the authors' code: k-means is scikit-learn's (Lloyd, one
    run, ``init="random"`` like litekmeans' default start, seeded by ``seed``)
    instead of litekmeans; the code keys candidates by their distance value
    (so two pairs at exactly the same distance would collapse into one); we key
    them by the pair of centres.
    """

    display_name = "DSH"
    summary = "balanced perpendicular-bisector planes between neighbouring k-means groups"
    paper = "Jin, Li, Lin & Cai, Density sensitive hashing, IEEE Trans. Cybernetics 2014"
    deep = False
    requires = frozenset({"features"})
    # model selection: groups per bit and neighbour pairs around the paper's alpha = 1.5, r = 3
    search_space = {"alpha": [1.0, 1.5, 2.0], "r": [2, 3, 5]}

    def __init__(self, bits: int = 32, seed: int = 0, alpha: float = 1.5, r: int = 3, kmeans_iter: int = 3) -> None:
        super().__init__(bits=bits, seed=seed)
        self.alpha = alpha
        self.r = r
        self.kmeans_iter = kmeans_iter

    def max_bits(self, n_samples: int, n_features: int) -> tuple[int | None, str]:
        try:
            alpha = float(self.alpha)
        except (TypeError, ValueError):
            return None, ""
        if not alpha >= 1:
            return None, ""  # reported by _fit
        b = int(np.floor((n_samples + 0.5) / alpha)) + 1
        while b > 0 and _round_half_up(alpha * b) > n_samples:
            b -= 1
        return b, f"DSH needs round({alpha:g} * bits) k-means groups, at most one per training sample ({n_samples})"

    def _fit(self, features: np.ndarray) -> None:
        if not float(self.alpha) >= 1:
            raise ConfigError(f"dsh: alpha must be >= 1 (groups per bit), got {self.alpha!r}")
        for name in ("r", "kmeans_iter"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"dsh: {name} must be a positive integer, got {v!r}")
        n = features.shape[0]
        k = _round_half_up(float(self.alpha) * self.bits)
        km = KMeans(n_clusters=k, init="random", n_init=1, max_iter=int(self.kmeans_iter),
                    random_state=self.seed).fit(features)
        centres = km.cluster_centers_.astype(np.float64)
        mass = np.bincount(km.labels_, minlength=k) / n

        # r nearest centres of every centre; each unordered pair once, closest first
        dist = cdist(centres, centres)
        np.fill_diagonal(dist, np.inf)
        r = min(int(self.r), k - 1)
        if r >= 1:
            nearest = np.argsort(dist, axis=1, kind="stable")[:, :r]
            pairs = np.stack([np.repeat(np.arange(k), r), nearest.ravel()], axis=1)
            pairs = np.unique(np.sort(pairs, axis=1), axis=0)
            pairs = pairs[np.argsort(dist[pairs[:, 0], pairs[:, 1]], kind="stable")]
        else:
            pairs = np.empty((0, 2), dtype=int)
        if len(pairs) < self.bits:
            raise ConfigError(
                f"dsh: only {len(pairs)} candidate planes for {self.bits} bits "
                f"(alpha={self.alpha}, r={self.r}): raise alpha or r"
            )
        w = centres[pairs[:, 0]] - centres[pairs[:, 1]]  # (c, d)
        t = np.einsum("ij,ij->i", w, (centres[pairs[:, 0]] + centres[pairs[:, 1]]) / 2)
        positive = (centres @ w.T) > t[None, :]  # (k, c): which side each group's centre is on
        p = mass @ positive
        hi = np.maximum(p, 1 - p)
        scores = np.minimum(p, 1 - p) / np.where(hi > 0, hi, 1.0)
        selected = np.argsort(-scores, kind="stable")[: self.bits]

        self.cluster_centers_ = centres
        self.cluster_mass_ = mass
        self.candidate_pairs_ = pairs
        self.candidate_scores_ = scores
        self.selected_ = selected
        self.projections_ = w[selected].T  # (d, b)
        self.intercepts_ = t[selected]
        self.history_ = {}

    def _encode(self, features: np.ndarray) -> np.ndarray:
        return in_batches(features, lambda x: (x @ self.projections_ > self.intercepts_).astype(np.uint8))
