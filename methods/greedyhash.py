"""GreedyHash (Su, Zhang, Han & Tian, NeurIPS 2018), unsupervised, on frozen-backbone features."""

from __future__ import annotations

from typing import Any

import torch

from hashbench import register_method

from . import AFTER_UDHT

from ._cosine_head import CosineHead, sign_ste
from ._deep import check_number
from ._selected import record_defaults

PAPER = ("Su, Zhang, Han & Tian, Greedy Hash: Towards Fast Optimization for Accurate Hash Coding in CNN, "
         "NeurIPS 2018")
OFFICIAL = ("ssppp/GreedyHash, unsupervised_vgg.py, commit e5089b2354b8f283d662bb0584f1b006faf2c2db "
            "(2018-11-13)")


def cubic_penalty(h: torch.Tensor) -> torch.Tensor:
    """mean over items and bits of |(|h| - 1)^3|: the official ``loss2``, 0 when every |h| = 1."""
    return (h.abs() - 1.0).pow(3).abs().mean()


@register_method("greedyhash")
@record_defaults("greedyhash")
class GreedyHash(CosineHead):
    """GreedyHash's unsupervised setting: a hash layer on frozen fc7-like features, codes b = sign(h)
    with the gradient passed straight through, trained to keep the features' cosine similarities.

    Paper: Su, Zhang, Han & Tian, *Greedy Hash: Towards Fast Optimization for Accurate Hash Coding in
    CNN*, NeurIPS 2018. Its text was not read here: the equations below are the official code's, and the
    paper's, where named, are *recalled* (no equation numbers are given for that reason). Official code:
    ``ssppp/GreedyHash``, ``unsupervised_vgg.py``, commit e5089b2354b8f283d662bb0584f1b006faf2c2db (read
    and run in a scratch folder, never copied; its training step is checked against ours in
    ``tests/test_modern_fidelity.py`` on figures recorded from it, ``tests/data/fidelity_greedyhash.json``).

    The method, as the code has it (batch of B features x, h = W x + c the hash layer, K bits):

    * hash layer: b = sign(h) forward; backward passes dL/db to h unchanged (``hash`` Function). The
      paper's greedy principle -- update towards the sign, straight through -- (recalled);
    * L_sim = mean over the pairs (i, i + B/2) of (cos(b_i, b_{i+B/2}) - cos(x_i, x_{i+B/2}))^2
      (``loss1``; shared with Bi-half, :func:`~hashbench_methods._cosine_head.cosine_pair_loss`);
    * L_q = mean over items and bits of |(|h| - 1)^3| (``loss2``), which pulls h towards +-1 (the paper's
      cubic penalty, recalled);
    * L = L_sim + ``alpha`` L_q with ``alpha`` = 0.1 (the code's constant);
    * SGD on the layer only (the VGG-16 below fc7 frozen): lr 1e-4, momentum 0.9, weight decay 5e-4,
      batch 32 (the code's values, our defaults; so are alpha and the dropout).

    Each term follows the code: the fidelity test runs ours on the seeded batch the official step was run
    on and compares L_sim, L_q, L, the codes, the gradients of h, W and c, and the parameters after three
    SGD steps.

    Departures, and why:

    * **features**: the run's cached backbone features (VGG-16 fc7 with ``--backbone vgg16``, the code's
      own; otherwise whatever backbone the run uses), not VGG-16 computed inside the training loop. The
      code's network is frozen below the layer, so its only image-side effect in training is dropout: the
      final ``Dropout(0.5)`` of its truncated classifier is applied here to the cached features
      (``feature_dropout``); the fc6 dropout before it changes fc7 itself and cannot be redone on cached
      features. No scaling, as in the code (centring: below);
    * **stopping and selection**: the script trains 60 epochs (300 at 16 bits) over CIFAR-10's 50,000
      training images, evaluates mAP@1000 on the *test queries* every 5 epochs and keeps the best epoch
      (``temp.pkl``): its printed numbers are selected on the test queries. Here nothing is chosen on
      labels: training stops on the held-out objective (``methods/_cosine_head.py``), at most
      ``max_epochs`` = 100 epochs of ~140 steps on the embedded default's 4,500 fitting items;
    * **pairs in the held-out objective**: all pairs of held-out items instead of the (i, i + B/2) pairs
      of random batches (the same expectation, without its sampling noise);
    * **defaults selected**: the shipped ``lr``, ``alpha`` and ``center`` are those of the shared selection
      run (``selected_defaults.json``); ``greedyhash@authors-code`` is the code's own values (lr 1e-4,
      alpha 0.1, no centring), which the fidelity test checks;
    * **centring** (``center=True``; ``greedyhash@authors-code`` turns it off): the fitting items' feature
      mean is subtracted before the layer and from the cosine target. On features whose raw cosines are
      bunched (the embedded default's: 0.97 +- 0.01) the code's target carries almost no contrast and its
      codes rank at chance (``methods/_cosine_head.py`` has the figures);
    * **odd batches**: the code's ``b[:B/2]``, ``b[B/2:]`` (Python 2 division) only works for even B; an
      odd batch's last row is left out of L_sim here (L_q still counts it).

    Search space (for model selection on the training role, the same budget as every method): ``lr`` and
    ``alpha`` around the code's values, and ``center``.
    """

    display_name = "GreedyHash"
    summary = ("GreedyHash (unsupervised): sign hash layer with a straight-through gradient on frozen backbone "
               "features, feature cosine similarities kept in the codes, cubic |h| = 1 penalty")
    paper = PAPER
    components = ("L_sim", "L_q")
    search_space = {"lr": [1e-4, 1e-3, 1e-2], "alpha": [0.01, 0.1, 1.0], "center": [False, True]}
    configurations = {"authors-code": {"center": False, "lr": 1e-4, "alpha": 0.1}}  # the code's values
    #: published after the UDHT paper (arXiv:1806.05804, June 2018): a row group of its own in the tables
    row_group = AFTER_UDHT

    def __init__(
        self,
        bits: int = 32,
        seed: int = 0,
        alpha: float = 0.1,
        lr: float = 1e-4,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        batch_size: int = 32,
        feature_dropout: float = 0.5,
        center: bool = True,
        lr_decay_epochs: int | None = None,
        max_epochs: int = 100,
        patience: int = 5,
        min_delta: float = 1e-5,
        val_fraction: float = 0.1,
        device: str = "auto",
    ) -> None:
        super().__init__(bits=bits, seed=seed)
        self.alpha = alpha
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.feature_dropout = feature_dropout
        self.center = center
        self.lr_decay_epochs = lr_decay_epochs
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_delta = min_delta
        self.val_fraction = val_fraction
        self.device = device

    def _check_method_params(self, who: str) -> None:
        check_number(who, "alpha", self.alpha)

    def _codes(self, h: torch.Tensor) -> torch.Tensor:
        return sign_ste(h)

    def _extra_loss(self, h: torch.Tensor) -> tuple[Any, dict[str, float]]:
        l_q = cubic_penalty(h)
        return float(self.alpha) * l_q, {"L_q": l_q.item()}
