"""LSH: random hyperplanes (Charikar, STOC 2002)."""

from __future__ import annotations

import numpy as np

from hashbench import Hasher, register_method

from ._linear import in_batches
from ._selected import record_defaults


@register_method("lsh")
@record_defaults("lsh")
class LSH(Hasher):
    """Sign random projections: locality-sensitive hashing for the angle.

    Charikar, *Similarity estimation techniques from rounding algorithms*, STOC
    2002, section 3: for a random vector ``r`` drawn from the spherical
    Gaussian, ``h_r(x) = [r . x >= 0]`` collides with probability
    ``1 - theta(x, y) / pi``. Each of the ``bits`` bits uses an independent
    ``r ~ N(0, I_d)``.

    Departure, shared with every hashing benchmark and the MATLAB baselines the
    UDHT paper ran: the hyperplanes pass through the *training mean* (features
    are centred by the training mean before projecting) instead of the origin.
    AlexNet FC2 features are non-negative (after ReLU), so hyperplanes through
    the origin would put almost every item on the same side of most of them.
    A bit is 1 where the projection is strictly positive.

    The only random choice, the Gaussian matrix, is drawn from
    ``numpy.random.default_rng(seed)``.
    """

    display_name = "LSH"
    summary = "random Gaussian hyperplanes through the training mean"
    paper = "Charikar, Similarity estimation techniques from rounding algorithms, STOC 2002"
    deep = False
    requires = frozenset({"features"})
    search_space: dict = {}  # nothing to tune: random projections

    def __init__(self, bits: int = 32, seed: int = 0) -> None:
        super().__init__(bits=bits, seed=seed)

    def _fit(self, features: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        self.mean_ = features.mean(axis=0, dtype=np.float64)
        self.projections_ = rng.standard_normal((features.shape[1], self.bits))
        self.history_ = {}

    def _encode(self, features: np.ndarray) -> np.ndarray:
        return in_batches(features, lambda x: ((x - self.mean_) @ self.projections_ > 0).astype(np.uint8))
