"""The two named selection criteria. Both score a fitted hasher; higher is better.

``labels``
    mAP@K of the validation queries V ranked against the fit items F by Hamming
    distance, relevance from the *training-role* labels of V and F (share a
    label). This is the field's usual practice (select on a labelled validation
    split); the report says so. Ties at equal Hamming distance are scored
    tie-aware (their exact expectation over all orders), so no item order can
    decide a selection.

``label-free``
    No label is read. The method's own objective on held-out training items,
    ``hasher.heldout_objective(...)`` evaluated on V (lower is better, so the
    score is its negative). A method without one (it raises
    ``NotImplementedError``) is scored by the generic criterion,
    *Euclidean-neighbour agreement*: for each V item, its ``neighbour_fraction``
    (2%) nearest fit items in the FC2 feature space are its "relevant" items, and
    the score is the mAP (all ranks, tie-aware) of the Hamming ranking of F
    against that relevance. It asks how well the codes keep the feature-space
    neighbourhoods, the usual label-free ground truth of the hashing literature
    (Euclidean nearest neighbours); the 2% is our choice. The scores of
    different methods under ``label-free`` are not comparable (each method is
    selected against itself only).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..evaluation import mean_average_precision

CRITERIA = ("labels", "label-free")
DESCRIPTIONS = {
    "labels": "mAP@{topk} of validation queries against the fit items, with training-role labels "
              "(tie-aware); the field's usual practice",
    "label-free": "no labels: the method's own held-out objective (negated), or, when it has none, "
                  "Euclidean-neighbour agreement (mAP of the Hamming ranking against the 2% nearest fit items "
                  "in feature space, tie-aware)",
}


def labels_score(val_codes: np.ndarray, fit_codes: np.ndarray, val_labels: np.ndarray, fit_labels: np.ndarray,
                 topk: int | None) -> float:
    return float(mean_average_precision(val_codes, fit_codes, val_labels, fit_labels, topk=topk,
                                        ties="tie-aware", device="cpu"))


def neighbour_relevance(val_features: np.ndarray, fit_features: np.ndarray, fraction: float = 0.02,
                        chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Label matrices that encode "is among the query's k nearest fit items" for the evaluator.

    Query q gets the one label q; fit item f carries label q when it is one of
    q's k = max(1, round(fraction * |F|)) Euclidean nearest neighbours, so
    "shares a label" means exactly "is a neighbour". Returns (val_labels, fit_labels).
    """
    v = np.asarray(val_features, dtype=np.float32)
    f = np.asarray(fit_features, dtype=np.float32)
    k = max(1, int(round(fraction * f.shape[0])))
    f_sq = np.einsum("ij,ij->i", f, f)
    fit_labels = np.zeros((f.shape[0], v.shape[0]), dtype=np.uint8)
    for s in range(0, v.shape[0], chunk):
        block = v[s : s + chunk]
        # squared distances up to the per-row constant |v|^2, which does not change the order
        d = f_sq[None, :] - 2.0 * (block @ f.T)
        nearest = np.argpartition(d, k - 1, axis=1)[:, :k]
        fit_labels[nearest, (s + np.arange(block.shape[0]))[:, None]] = 1
    return np.eye(v.shape[0], dtype=np.uint8), fit_labels


def neighbour_score(val_codes: np.ndarray, fit_codes: np.ndarray, relevance: tuple[np.ndarray, np.ndarray]) -> float:
    val_labels, fit_labels = relevance
    return float(mean_average_precision(val_codes, fit_codes, val_labels, fit_labels, topk=None,
                                        ties="tie-aware", device="cpu"))


def describe(criterion: str, topk: Any) -> str:
    return DESCRIPTIONS[criterion].format(topk="all" if topk is None else topk)
