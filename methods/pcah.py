"""PCAH: signs of the top principal components."""

from __future__ import annotations

import numpy as np

from hashbench import Hasher, register_method

from ._linear import in_batches, top_principal_directions
from ._selected import record_defaults


@register_method("pcah")
@record_defaults("pcah")
class PCAH(Hasher):
    """PCA hashing: bit k is the sign of the projection on the k-th principal direction.

    The baseline of Wang, Kumar & Chang, *Semi-supervised hashing for large-scale
    search*, TPAMI 34(12) 2012 (the UDHT paper's reference [30]), section 5:
    ``h_k(x) = sgn(w_k^T (x - mu))`` with ``w_1..w_b`` the eigenvectors of the
    training covariance with the largest eigenvalues (the b-bit case of their
    eq. 9 without the supervised term).

    Deterministic: there is no random choice, so ``seed`` has no effect. A bit
    is 1 where the projection is strictly positive.

    Departures from the usual MATLAB baseline (``eigs(cov(X), b)``): none that
    changes a Hamming distance. The PCA is exact, in float64; an eigenvector's
    sign is arbitrary, and we fix it so that its largest-magnitude entry is
    positive (a flip only complements one bit for every item alike). ``bits``
    may not exceed ``min(n_samples - 1, n_features)``: the centred training
    data has no more non-degenerate directions (``eigs`` would return an
    arbitrary null-space direction, whose signs are round-off noise).
    """

    display_name = "PCAH"
    summary = "signs of the projections on the top principal directions"
    paper = "Wang, Kumar & Chang, Semi-supervised hashing for large-scale search, TPAMI 2012"
    deep = False
    requires = frozenset({"features"})
    search_space: dict = {}  # nothing to tune: the top principal directions

    def __init__(self, bits: int = 32, seed: int = 0) -> None:
        super().__init__(bits=bits, seed=seed)

    def max_bits(self, n_samples: int, n_features: int) -> tuple[int | None, str]:
        return min(n_samples - 1, n_features), (
            f"PCA of {n_samples} centred samples in {n_features} dimensions has at most "
            "min(n_samples - 1, n_features) directions"
        )

    def _fit(self, features: np.ndarray) -> None:
        self.mean_, self.components_, self.explained_variance_ = top_principal_directions(features, self.bits)
        self.history_ = {}

    def _encode(self, features: np.ndarray) -> np.ndarray:
        return in_batches(features, lambda x: ((x - self.mean_) @ self.components_ > 0).astype(np.uint8))
