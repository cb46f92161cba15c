"""An example hashbench plugin: PCA followed by a random rotation (PCA-RR).

Use it without editing hashbench:

    python -m hashbench run --plugin examples/pca_rr.py --methods pca-rr,itq --bits 32
"""

import numpy as np

import hashbench


@hashbench.register_method("pca-rr")
class PCARandomRotation(hashbench.Hasher):
    """PCA to ``bits`` dimensions, then a seeded random orthogonal rotation, then sign.

    Jégou, Douze, Schmid and Pérez, "Aggregating local descriptors into a compact
    image representation", CVPR 2010 (the random rotation balances the variance
    across bits); used as a baseline by Gong et al., TPAMI 2013.
    """

    display_name = "PCA-RR"
    summary = "PCA, then a random orthogonal rotation, then sign"
    paper = "Jegou et al., CVPR 2010"
    deep = False
    requires = frozenset({"features"})

    def __init__(self, bits: int = 32, seed: int = 0) -> None:
        super().__init__(bits=bits, seed=seed)

    def max_bits(self, n_samples, n_features):
        return min(n_samples, n_features), "PCA gives at most min(n_samples, n_features) directions"

    def _fit(self, features):
        self.mean_ = features.mean(axis=0)
        _, _, vt = np.linalg.svd(features - self.mean_, full_matrices=False)
        rotation, _ = np.linalg.qr(np.random.default_rng(self.seed).standard_normal((self.bits, self.bits)))
        self.projection_ = vt[: self.bits].T @ rotation

    def _encode(self, features):
        return ((features - self.mean_) @ self.projection_ > 0).astype(np.uint8)
