"""The UDHT paper's tag-binary baseline (Gattupalli & Li, 2018, section 3.5).

* ``tag-binary`` -- :class:`TagBinary`, on the cached backbone features (frozen backbone);
* ``tag-binary-e2e`` -- :class:`TagBinaryEndToEnd`, the backbone fine-tuned from images, as the paper
  trains it (its top by default: ``finetune``; its shipped defaults are not the paper's values).
"""

from __future__ import annotations

import numpy as np
import torch

from hashbench import ConfigError, DataError, register_method
from hashbench.tags import binary_tag_matrix

from ._heldout import HELDOUT_L4_MARGIN, heldout_l4
from ._udht_net import TagHashingBase, contrastive_loss, quantization_loss
from ._selected import record_defaults
from .udht import PAPER

#: Section 3.5 and 4.2 as printed; the margin is not given (ours stays), 50 epochs as for UDHT
_PAPER = {
    "reduction": "sum", "feature_norm": "none",
    "lambda3": 1.0, "lambda4": 1.0,  # sec. 4.2
    "l4_similar_power": 1,  # sec. 3.5: S (1 - beta) D
    "lr": 1e-3, "momentum": 0.9,
    "max_epochs": 50, "val_fraction": 0.0,
}
#: The authors' code has no script for the baseline; its ``contrastive`` loss
#: (customLossFunctions.py: margin m = 3.0, D^2 for similar pairs, averaged by Keras) and the
#: UDHT script's schedule and optimiser (12bits_NUS.py) are the closest.
_AUTHORS = {
    "reduction": "mean", "feature_norm": "none",
    "lambda3": 1.0, "lambda4": 1.0,
    "margin": 3.0, "l4_similar_power": 2,
    "lr": 1e-3, "momentum": 0.9, "batch_size": 50,
    "max_epochs": 50, "val_fraction": 0.0,
}
_E2E = {"backbone_lr": 1e-4, "max_train_images": None, "warmup_epochs": 0, "finetune": "all"}

_DOC = """
    Gattupalli & Li, *Unsupervised Deep Image Hashing through Tag Embeddings*,
    section 3.5: the UDHT network with H2 removed, trained from *binary* tag
    vectors instead of word vectors, to show what the word vectors add.

    * Two training images are similar (S = 1) when they share at least one
      (normalised) tag, dissimilar (S = 0) otherwise.
    * L4, the contrastive loss: sum_ij S (1 - beta) D + (1 - S) beta
      max(0, margin - D)^2 with D = (1/b)||h1_i - h1_j||^2 and beta the
      fraction of similar pairs in the mini-batch (computed on its valid
      ordered pairs i != j), so that the rare similar pairs are not swamped.
    * L3, the quantisation loss of UDHT (negative, as printed; see ``udht``).
    * L = lambda4 L4 + lambda3 L3, lambda4 = lambda3 = 1 in the paper (section 4.2).
    * FC2 -> FC3 (256, ReLU) -> H1 (``bits``, sigmoid), glorot-normal init;
      codes b = [h1 > 0.5]; SGD with momentum 0.9, ``lr`` = 1e-3 in the paper.
    * The defaults of ``lr`` and ``lambda3`` are not the paper's: they come
      from the shipped selection record
      (``hashbench_methods/selected_defaults.json``; ``defaults_chosen_by``
      says how), selected on a validation split of the embedded default's
      training role by validation mAP with training-role labels, never its
      queries; the literal values in the signature are the hand-set fallback.
      ``tag-binary-e2e`` inherits the head values selected for
      ``tag-binary``; ``@paper`` keeps 1e-3 and 1. Under the default
      ``reduction="mean"`` L3 weighs about k - 1 = 49 times more against L4
      than in the paper's sums at the batch of 50 (see ``_udht_net``).

    Choices where the paper is silent (all parameters):

    * ``margin`` = 1.0: D lies in [0, 1] (for binary outputs it is the
      Hamming distance over b), so with margin 1 every dissimilar pair keeps
      being pushed apart until its codes are complementary -- the hinge is
      always active, as with the m = 3 of the authors' public Keras code of
      WDHT. (0.5, half of the bits, the analogue of DSH's 2b margin for +-1
      codes, learned markedly less in our tests: mAP 0.46 against 0.71 on
      the test clusters with the same schedule.)
    * L4 as printed: D, not D^2, for similar pairs (the authors' Keras code squares it).
    * images without any tag are masked out of L4: an empty tag set says
      nothing about similarity; treating it as "dissimilar to everything" would
      push those images away from all others;
    * ``reduction`` = "mean" (terms divided by their count), ``batch_size`` = 50,
      ``feature_norm`` = "standardize" (FC2 features centred and scaled before
      FC3), as for UDHT (see ``udht-frozen``).

    * ``l4_similar_power`` = 1: D for similar pairs, as printed (2: D^2, as the
      authors' Keras ``contrastive``).

    Convergence: as for ``udht`` (see there), with the baseline's own
    objective held out: L4 on the binary codes of the held-out training
    items, over all their ordered pairs (beta = their share of tag-sharing
    pairs), at margin 1 whatever the training margin (D of binary codes is at
    most 1; one scale for every trial), divided by the number of pairs.
    ``history_["heldout"]`` has it per epoch; ``fit_info_["convergence"]`` says
    where and why training stopped; ``heldout_objective`` computes it for any
    held-out items (model selection's label-free criterion).

    ``history_`` has per-epoch means of L3, L4, the total and beta;
    ``fit_info_`` the tag vocabulary size and the number of tag-less images.
"""


class _TagBinaryMixin:
    components = ("L3", "L4", "beta")
    uses_h2 = False

    def _prepare_targets(self, tags: list[list[str]], fit_rows: np.ndarray | None = None) -> None:
        """Binary tag vectors of every training item (S_ij only ever compares two items' own tags,
        so nothing is learned here from held-out items)."""
        who = self.name or type(self).__name__
        for name in ("lambda3", "lambda4", "margin"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v) or v < 0:
                raise ConfigError(f"{who}: {name} must be a non-negative number, got {v!r}")
        if self.l4_similar_power not in (1, 2) or isinstance(self.l4_similar_power, bool):
            raise ConfigError(f"{who}: l4_similar_power must be 1 (D, as printed) or 2 (D^2, the authors' code), "
                              f"got {self.l4_similar_power!r}")
        mat, vocab = binary_tag_matrix(tags)
        valid = np.diff(mat.indptr) > 0
        n_fit_valid = int(valid.sum() if fit_rows is None else valid[fit_rows].sum())
        if n_fit_valid < 2:
            raise DataError(f"{who}: only {n_fit_valid} training images have tags; the baseline needs tags")
        self._tag_matrix = mat
        self._valid = torch.from_numpy(valid)
        self.fit_info_["tags"] = {
            "vocabulary_size": len(vocab),
            "n_images": int(mat.shape[0]),
            "n_images_without_tags": int((~valid).sum()),
            "similar_pair_fraction_estimate": _similar_fraction(mat, valid, int(self.seed)),
        }

    heldout_description = ("the baseline's L4 (sec. 3.5) on the binary codes of held-out training items: all their "
                           f"ordered pairs, beta their share of tag-sharing pairs, margin {HELDOUT_L4_MARGIN:g} "
                           "whatever the training margin, divided by the number of pairs")

    def _targets_at(self, rows):
        rows = np.asarray(rows)
        return self._tag_matrix[rows], self._valid.numpy()[rows]

    def _targets_for(self, tags):
        mat, _ = binary_tag_matrix(tags)
        return mat, np.diff(mat.indptr) > 0

    def _objective(self, codes, targets):
        mat, valid = targets
        return heldout_l4(codes, mat, valid)

    def _batch_loss(self, h1, h2, positions):
        pos = np.asarray(positions)
        t = self._tag_matrix[pos]
        similar = torch.from_numpy((t @ t.T).toarray() > 0).to(h1.device)  # share >= 1 tag
        valid = self._valid[torch.from_numpy(pos)].to(h1.device)
        l4, beta = contrastive_loss(h1, similar, valid, float(self.margin), self.reduction, int(self.l4_similar_power))
        l3 = quantization_loss(h1, self.reduction)
        total = float(self.lambda4) * l4 + float(self.lambda3) * l3
        return total, {"L3": l3.item(), "L4": l4.item(), "beta": beta}


def _similar_fraction(mat, valid: np.ndarray, seed: int, n: int = 2000) -> float:
    """Share of tag-sharing pairs among (up to) n random tagged images: how imbalanced L4 is."""
    idx = np.flatnonzero(valid)
    idx = np.random.default_rng(seed).choice(idx, size=min(n, idx.size), replace=False)
    t = mat[idx]
    s = (t @ t.T).toarray() > 0
    k = idx.size
    return float((s.sum() - k) / max(k * (k - 1), 1))


def _init_common(self, *, lambda3, lambda4, margin, l4_similar_power, reduction, feature_norm, max_epochs, patience,
                 min_delta, val_fraction, batch_size, lr, momentum, weight_decay, device) -> None:
    self.lambda3 = lambda3
    self.lambda4 = lambda4
    self.margin = margin
    self.l4_similar_power = l4_similar_power
    self.reduction = reduction
    self.feature_norm = feature_norm
    self.max_epochs = max_epochs
    self.patience = patience
    self.min_delta = min_delta
    self.val_fraction = val_fraction
    self.batch_size = batch_size
    self.lr = lr
    self.momentum = momentum
    self.weight_decay = weight_decay
    self.device = device


@register_method("tag-binary")
@record_defaults("tag-binary")
class TagBinary(_TagBinaryMixin, TagHashingBase):
    __doc__ = (
        """The paper's tag-binary baseline on a frozen AlexNet: H1 trained on the cached FC2 features.
"""
        + _DOC
        + """
    Frozen backbone: a departure from the paper (which fine-tunes AlexNet), and
    the like-for-like comparison with ``udht-frozen`` (same features, same head,
    same schedule: at most ``max_epochs`` = 30, ``patience`` = 5,
    ``val_fraction`` = 0.1) and with the classical baselines. The paper's
    end-to-end version is ``tag-binary-e2e``.
"""
    )

    display_name = "Tag-binary baseline (frozen backbone)"
    #: 12 points: the learning rate, and the quantisation weight lambda3 against lambda4 = 1
    #: (the baseline's only loss-weight ratio; the paper grid-searched its weights over 0.01-100)
    search_space = {"lr": [1e-3, 3e-3, 1e-2, 3e-2], "lambda3": [0.1, 1.0, 10.0]}
    configurations = {"paper": dict(_PAPER), "authors-code": dict(_AUTHORS)}
    summary = "UDHT paper's baseline: H1 with a contrastive loss on shared binary tags, on cached backbone features"
    paper = PAPER
    requires = frozenset({"features", "tags"})
    end_to_end = False

    def __init__(self, bits: int = 32, seed: int = 0, lambda3: float = 0.1, lambda4: float = 1.0,
                 margin: float = 1.0, l4_similar_power: int = 1, reduction: str = "mean",
                 feature_norm: str = "standardize", max_epochs: int = 30, patience: int = 5, min_delta: float = 1e-4,
                 val_fraction: float = 0.1, batch_size: int = 50, lr: float = 3e-2, momentum: float = 0.9,
                 weight_decay: float = 0.0, device: str = "auto") -> None:
        super().__init__(bits=bits, seed=seed)
        _init_common(self, lambda3=lambda3, lambda4=lambda4, margin=margin, l4_similar_power=l4_similar_power,
                     reduction=reduction, feature_norm=feature_norm, max_epochs=max_epochs, patience=patience,
                     min_delta=min_delta, val_fraction=val_fraction, batch_size=batch_size, lr=lr, momentum=momentum,
                     weight_decay=weight_decay, device=device)


@register_method("tag-binary-e2e")
@record_defaults("tag-binary-e2e")
class TagBinaryEndToEnd(_TagBinaryMixin, TagHashingBase):
    __doc__ = (
        """The paper's tag-binary baseline end to end: AlexNet fine-tuned with H1, from images.
"""
        + _DOC
        + """
    End to end as the paper trains it, with UDHT's schedule and its departures (see
    ``udht``): only the backbone's top fine-tuned, on the frozen trunk's cached
    outputs (``finetune`` = "top"; "all" in ``tag-binary-e2e@paper``), a seeded
    subset of ``max_train_images`` = 500 training images,
    ``warmup_epochs`` = 50 epochs (at most) of the head alone on the initial
    backbone's FC2 outputs, then ``max_epochs`` = 4 (at most, ``patience`` =
    2) of joint fine-tuning with ``backbone_lr`` = 1e-4 for the pre-trained
    layers, AlexNet's dropout off (``dropout``); ``val_fraction`` = 0.2 of the
    images used are held out for the stopping criterion.
"""
    )

    display_name = "Tag-binary baseline"
    #: ``tag-binary``'s grid, so that the values it inherits from there are candidates of its own ``tune``
    search_space = {"lr": [1e-3, 3e-3, 1e-2, 3e-2], "lambda3": [0.1, 1.0, 10.0]}
    inherits_defaults_from = "tag-binary"
    inherits_defaults_because = (
        "end-to-end training costs minutes per trial on a 2-core CPU; it trains the same head with the same losses as tag-binary, whose values it takes"
    )
    configurations = {"paper": {**_PAPER, **_E2E}, "authors-code": {**_AUTHORS, **_E2E}}
    summary = ("UDHT paper's baseline: the backbone (its top by default) fine-tuned with H1 and a contrastive loss "
               "on shared binary tags")
    paper = PAPER
    requires = frozenset({"images", "tags"})
    end_to_end = True

    def __init__(self, bits: int = 32, seed: int = 0, lambda3: float = 0.1, lambda4: float = 1.0,
                 margin: float = 1.0, l4_similar_power: int = 1, reduction: str = "mean",
                 feature_norm: str = "standardize", max_epochs: int = 4, patience: int = 2, min_delta: float = 1e-4,
                 val_fraction: float = 0.2, warmup_epochs: int = 50, max_train_images: int | None = 500,
                 finetune: str = "top", dropout: bool = False, batch_size: int = 50, lr: float = 3e-2,
                 backbone_lr: float = 1e-4,
                 momentum: float = 0.9, weight_decay: float = 0.0, device: str = "auto") -> None:
        super().__init__(bits=bits, seed=seed)
        _init_common(self, lambda3=lambda3, lambda4=lambda4, margin=margin, l4_similar_power=l4_similar_power,
                     reduction=reduction, feature_norm=feature_norm, max_epochs=max_epochs, patience=patience,
                     min_delta=min_delta, val_fraction=val_fraction, batch_size=batch_size, lr=lr, momentum=momentum,
                     weight_decay=weight_decay, device=device)
        self.warmup_epochs = warmup_epochs
        self.max_train_images = max_train_images
        self.finetune = finetune
        self.dropout = dropout
        self.backbone_lr = backbone_lr
