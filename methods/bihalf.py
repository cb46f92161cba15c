"""Bi-half (Li & van Gemert, AAAI 2021): a parameter-free layer that makes every bit half +1, half -1."""

from __future__ import annotations

from typing import Any

import torch

from hashbench import register_method

from . import AFTER_UDHT

from ._cosine_head import CosineHead
from ._deep import check_number
from ._selected import record_defaults

PAPER = ("Li & van Gemert, Deep Unsupervised Image Hashing by Maximizing Bit Entropy, AAAI 2021 "
         "(arXiv:2012.12334)")


class _BiHalf(torch.autograd.Function):
    """The bi-half layer of the official code (``hash`` Function of ImageHashing/*.py)."""

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, gamma: float) -> torch.Tensor:
        # per bit (column), the top floor(N/2) values of the batch become +1, the rest -1
        _, index = u.sort(0, descending=True)
        n = u.shape[0]
        ranked = torch.cat((torch.ones(n // 2, u.shape[1], dtype=u.dtype, device=u.device),
                            -torch.ones(n - n // 2, u.shape[1], dtype=u.dtype, device=u.device)))
        b = torch.zeros_like(u).scatter_(0, index, ranked)
        ctx.save_for_backward(u, b)
        ctx.gamma = float(gamma)
        return b

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        u, b = ctx.saved_tensors
        return grad + ctx.gamma * (u - b) / b.numel(), None


def bihalf(u: torch.Tensor, gamma: float) -> torch.Tensor:
    """B = the bi-half codes of the batch U (N x K); backward: dL/dU = dL/dB + gamma (U - B) / (N K)."""
    return _BiHalf.apply(u, gamma)


@register_method("bihalf")
@record_defaults("bihalf")
class BiHalf(CosineHead):
    """Bi-half on frozen fc7-like features: a linear layer, then the bi-half layer, trained to keep the
    features' cosine similarities in the codes.

    Paper: Li & van Gemert, *Deep Unsupervised Image Hashing by Maximizing Bit Entropy*, AAAI 2021
    (arXiv:2012.12334). Its text was not read here beyond its abstract: the bit-entropy argument and the
    optimal-transport reading below are the abstract's and, in detail, *recalled*; no equation numbers
    are given for that reason. Official code: ``liyunqianggyn/Deep-Unsupervised-Image-Hashing``,
    ``ImageHashing/Flickr25k.py`` (the MIRFLICKR script; ``Cifar10_I.py``/``Cifar10_II.py``/``Mscoco.py``
    share its layer and loss), commit 1cd671a33fa010e24fdb36b625837dea9858301f (read and run in a
    scratch folder, never copied; checked against ours in ``tests/test_modern_fidelity.py`` on figures
    recorded from it, ``tests/data/fidelity_bihalf.json``).

    The method, as the code has it (batch of N features x, U = W x + c the layer's output, K bits):

    * the bi-half layer: per bit, the N values of the batch are ranked and the top floor(N/2) become +1,
      the others -1 (the abstract: an explicit half-half distribution, which maximises the bit's
      entropy; the assignment is the optimal transport from U's empirical distribution to the half-half
      one, recalled). Backward: dL/dU = dL/dB + gamma (U - B) / (N K), i.e. straight through plus the
      gradient of the penalty gamma ||U - B||^2 / (2 N K), with gamma = 6 (the code's value);
    * L = mean over the pairs (i, i + N/2) of (cos(B_i, B_{i+N/2}) - cos(x_i, x_{i+N/2}))^2 (the same
      similarity loss as GreedyHash's, :func:`~hashbench_methods._cosine_head.cosine_pair_loss`; no
      other term);
    * SGD on the layer (VGG-16 frozen below fc7): lr 1e-4, x 0.1 from epoch 60 (``adjust_learning_rate``
      with ``epoch_lr_decrease = 60``), momentum 0.9, weight decay 5e-4, batch 32; the layer initialised
      by ``nn.Linear`` (the code seeds it with ``torch.manual_seed(0)``; here the method's seed);
    * encoding: sign(U) (the code's ``compress``), not the bi-half layer, which needs a batch.

    The layer, the loss and the step follow the code term by term: the fidelity test compares the codes
    (an even batch of 32 and an odd one of 7), the loss, the gradients and three SGD steps.

    Departures, and why:

    * **features**: the run's cached backbone features, with the code's final ``Dropout(0.5)`` applied
      in training (``feature_dropout``); its fc6 dropout cannot be redone on cached features
      (``methods/_cosine_head.py``). No scaling, as in the code (centring: below);
    * **stopping**: the code runs a fixed 100 epochs over its 5,000 MIRFLICKR training images (no
      selection; it prints mAP@all on the test queries every 10 epochs) and the last epoch is the model.
      Here training stops on the held-out objective (L over all pairs of held-out training items, their
      codes from the bi-half layer over the held-out set, the training dropout with fixed masks), at
      most ``max_epochs`` = 100 epochs, lr decayed at epoch 60 as in the code; nothing is chosen on labels;
    * **defaults selected**: the shipped ``lr``, ``gamma`` and ``center`` are those of the shared selection
      run (``selected_defaults.json``); ``bihalf@authors-code`` is the code's own values (lr 1e-4, gamma 6,
      no centring), which the fidelity test checks;
    * **centring** (``center=True``; ``bihalf@authors-code`` turns it off): as GreedyHash's
      (``methods/_cosine_head.py``): with the code's raw features the embedded default's codes rank near
      chance;
    * **odd batches** (the code never meets one): the layer gives floor(N/2) +1s, exactly as the code;
      the similarity loss leaves the last row out.

    Search space: ``lr`` and ``gamma`` around the code's values, and ``center``.
    """

    display_name = "Bi-half"
    summary = ("Bi-half: a parameter-free layer making every bit half +1 / half -1 per batch (maximum bit "
               "entropy), feature cosine similarities kept in the codes, on frozen backbone features")
    paper = PAPER
    components = ("L_sim",)
    search_space = {"lr": [1e-4, 1e-3, 1e-2], "gamma": [1.0, 3.0, 6.0, 12.0], "center": [False, True]}
    configurations = {"authors-code": {"center": False, "lr": 1e-4, "gamma": 6.0}}  # the code's values
    row_group = AFTER_UDHT

    def __init__(
        self,
        bits: int = 32,
        seed: int = 0,
        gamma: float = 6.0,
        lr: float = 1e-4,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        batch_size: int = 32,
        feature_dropout: float = 0.5,
        center: bool = True,
        lr_decay_epochs: int | None = 60,
        max_epochs: int = 100,
        patience: int = 5,
        min_delta: float = 1e-5,
        val_fraction: float = 0.1,
        device: str = "auto",
    ) -> None:
        super().__init__(bits=bits, seed=seed)
        self.gamma = gamma
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
        check_number(who, "gamma", self.gamma)

    def _codes(self, h: torch.Tensor) -> torch.Tensor:
        return bihalf(h, float(self.gamma))
