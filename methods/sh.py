"""SH: spectral hashing (Weiss, Torralba & Fergus, NIPS 2008)."""

from __future__ import annotations

import numpy as np

from hashbench import Hasher, register_method

from ._linear import in_batches, top_principal_directions
from ._selected import record_defaults


@register_method("sh")
@record_defaults("sh")
class SH(Hasher):
    """Spectral Hashing: thresholded analytical eigenfunctions of a box along the principal directions.

    Weiss, Torralba & Fergus, *Spectral hashing*, NIPS 2008 (the authors'
    ``trainSH.m`` / ``compressSH.m``), section 3.1 and eqs. 6-7:

    1. PCA to ``p = min(b, d)`` directions (the top principal directions of the
       training data);
    2. fit a box ``[min_j, max_j]`` along each direction j (the code widens it
       by the machine epsilon on each side: ``mn = min - eps``, ``mx = max + eps``);
    3. the 1-D Laplacian eigenfunctions of a uniform density on ``[a, b]`` are
       ``Phi_k(x) = sin(pi/2 + k pi (x - a) / (b - a))`` with eigenvalue
       ``lambda_k = 1 - exp(-eps^2/2 |k pi / (b - a)|^2)`` (eq. 7), increasing in
       ``omega = k pi / (b - a)``. All (direction, k) modes are sorted by
       ``omega^2``; the constant mode (k = 0) is dropped and the ``b``
       smallest are kept, so a direction with a wide range can give several
       bits and a narrow one none;
    4. bit i is ``[sin(pi/2 + omega_i (x_j(i) - mn_j(i))) > 0]``.

    Equation numbers are cited from the published paper as recalled, not
    re-read here (only abstracts are on file); each step was checked against
    the authors' MATLAB code.

    Only single-direction modes are used, exactly as in the authors' code
    (the paper's section 3.1 also notes that outer-product eigenfunctions are
    never among the smallest for these box sizes). The code enumerates
    ``k = 1 .. ceil((b + 1) R_j / R_max) - 1`` per direction; we enumerate
    ``k = 1 .. b`` per direction, a superset that contains the same ``b``
    smallest modes, sorted stably in the same (direction, k) order, so ties
    break the same way.

    ``eigenvalues_`` holds ``omega^2`` of the kept modes (the sort key; the
    paper's lambda is a monotone function of it, whose ``eps`` does not change
    the order). No random choice: ``seed`` has no effect.

    Departure: none in the algorithm. PCA is exact (float64) and sign-fixed;
    a sign flip of a direction only mirrors its box, which complements or keeps
    each of its bits for every item alike. The number of PCA directions is also
    capped at ``n_samples - 1`` (a centred training set has no more).
    """

    display_name = "SH"
    summary = "thresholded analytical Laplacian eigenfunctions along the principal directions"
    paper = "Weiss, Torralba & Fergus, Spectral hashing, NIPS 2008"
    deep = False
    requires = frozenset({"features"})
    search_space: dict = {}  # nothing to tune: the paper's SH has no free parameter beyond the code length

    def __init__(self, bits: int = 32, seed: int = 0) -> None:
        super().__init__(bits=bits, seed=seed)

    def max_bits(self, n_samples: int, n_features: int) -> tuple[int | None, str]:
        if n_samples < 2:
            return 0, "spectral hashing needs at least 2 training samples for PCA"
        return None, ""

    def _fit(self, features: np.ndarray) -> None:
        n, d = features.shape
        n_pca = min(self.bits, d, n - 1)
        self.mean_, self.components_, _ = top_principal_directions(features, n_pca)
        proj = in_batches(features, lambda x: (x - self.mean_) @ self.components_)
        eps = np.finfo(np.float64).eps
        self.box_min_ = proj.min(axis=0) - eps
        self.box_max_ = proj.max(axis=0) + eps
        ranges = self.box_max_ - self.box_min_
        # Every single-direction mode (j, k), k = 1..b, in (direction, k) order.
        ks = np.arange(1, self.bits + 1, dtype=np.float64)
        omegas = (ks[None, :] * np.pi / ranges[:, None]).ravel()  # direction-major
        order = np.argsort(omegas**2, kind="stable")[: self.bits]
        self.modes_ = np.stack([order // self.bits, order % self.bits + 1], axis=1)  # (direction, k)
        self.omegas_ = omegas[order]
        self.eigenvalues_ = self.omegas_**2
        self.history_ = {}

    def _encode(self, features: np.ndarray) -> np.ndarray:
        dirs = self.modes_[:, 0]

        def encode(x: np.ndarray) -> np.ndarray:
            proj = (x - self.mean_) @ self.components_
            u = np.sin(np.pi / 2 + (proj[:, dirs] - self.box_min_[dirs]) * self.omegas_)
            return (u > 0).astype(np.uint8)

        return in_batches(features, encode)
