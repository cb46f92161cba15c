"""What GreedyHash and Bi-half share: a linear hash layer on frozen-backbone features, trained so that
the codes of two items are as cosine-similar as their features; not a method itself.

Both official scripts (ssppp/GreedyHash ``unsupervised_vgg.py``; liyunqianggyn/Deep-Unsupervised-Image-
Hashing ``ImageHashing/*.py``) freeze VGG-16 up to fc7 and train one ``nn.Linear(4096, K)`` (``fc_encode``)
by SGD, batch 32, with the same similarity term on the pairs (i, i + B/2) of each batch::

    target_b = cos(b[:B/2], b[B/2:]);  target_x = cos(x[:B/2], x[B/2:]);  loss = mse(target_b, target_x)

where x are the fc7 outputs and b the batch's codes. They differ in how h = fc_encode(x) becomes b in
training (GreedyHash: sign with the gradient passed straight through; Bi-half: the bi-half layer) and in
GreedyHash's extra term on h. At test time both encode b = sign(h) (the bit is [h > 0]).

Here the hash layer reads the cached features of the run's backbone (whichever it is: nothing assumes
4,096 dimensions); :class:`CosineHead` is the training loop both methods share:

* the features as the official scripts see them, unscaled (their network feeds fc7 to the layer
  directly; centred here by default, see below) and, in training, through the dropout that ends their truncated VGG
  classifier (``vgg.classifier.children()[:6]`` ends with ``Dropout(0.5)``, active under ``cnn.train()``);
  ``feature_dropout`` is that rate (0.5). Their fc6 dropout, which changes fc7 itself, cannot be redone on
  cached features: a departure;
* SGD with momentum 0.9 and weight decay 5e-4 on the layer, ``lr`` 1e-4 (both scripts' values), the
  layer initialised as ``nn.Linear`` is (PyTorch's default), under the method's seed;
* convergence (``methods/_convergence.py``), where the scripts differ from ours: GreedyHash's script
  trains 60 epochs (300 at 16 bits) and keeps the epoch with the best mAP@1000 on the *test queries*;
  Bi-half's runs a fixed 100 epochs (lr x 0.1 from epoch 60). Here ``val_fraction`` of the training
  items is held out from the gradient steps, the method's objective is measured on them after every
  epoch, training stops when it has not improved by ``min_delta`` for ``patience`` epochs (at most
  ``max_epochs``) and the best epoch's layer is restored. No label is read.

Centring (ours, ``center=True`` by default; the scripts' features are raw, ``center=False``, the
``authors-code`` configuration). The similarity target is the cosine of the features. Non-negative
features far from sparse have cosines bunched near one value (the embedded default's random-AlexNet FC2:
0.97 +- 0.01 over pairs; 0.48 +- 0.02 after the dropout), and a target that is nearly the same for every
pair carries almost nothing to learn: on that default at 32 bits the code's recipe gives codes that rank
near chance (mAP@5000 GreedyHash 0.548, Bi-half 0.568; chance 0.541). Subtracting the fitting items'
feature mean from what the layer sees and from the target, before the dropout, spreads the cosines
(-0.6..0.6) and gives 0.606 and 0.602 (ITQ: 0.599), as USDH's centred target and DeepBit's and UDHT's
standardised inputs do here. (After the dropout instead, the dropout's noise on the large common component swamps the
centred signal: the similarity term stopped learning and GreedyHash fell to 0.563.) It is the one change
to the code's recipe in the defaults; ``center`` is also in both methods' ``search_space``.

The held-out objective is the training objective on the held-out items: the similarity term over *all*
their pairs (and, for GreedyHash, its penalty on h) -- a batch's pairs (i, i + B/2) under a random
permutation are uniform random pairs, so this is the same expectation without the sampling noise -- with
the training codes (sign for GreedyHash, the bi-half layer over the held-out set for Bi-half) and the
training dropout, its masks fixed by the seed. The dropout matters: the cosine of two dropped-out vectors
is about half their clean cosine, so training fits the codes to halved cosines, and a clean target would
call every epoch worse than the first.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hashbench import ConfigError, Hasher, NotFittedError
from hashbench.features import resolve_device

from ._convergence import EarlyStopping, holdout_split
from ._deep import check_common, check_int, check_number, minibatch_epoch, seeded, train_early_stopped


class _SignSTE(torch.autograd.Function):
    """sign(h) forward; the incoming gradient passed back unchanged (GreedyHash's ``hash`` Function)."""

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor) -> torch.Tensor:
        return torch.sign(h)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad


def sign_ste(h: torch.Tensor) -> torch.Tensor:
    """b = sign(h), with db/dh taken as the identity (the straight-through estimator)."""
    return _SignSTE.apply(h)


def cosine_pair_loss(codes: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """mean_i (cos(b_i, b_{i+m}) - cos(x_i, x_{i+m}))^2 over the m = B // 2 pairs (i, i + m) of a batch.

    The official line is ``F.mse_loss(F.cosine_similarity(b[:B/2], b[B/2:]), ...)``; with an odd B the
    last row has no partner and is left out (the scripts only ever see even batches).
    """
    m = codes.shape[0] // 2
    return F.mse_loss(F.cosine_similarity(codes[:m], codes[m: 2 * m]), F.cosine_similarity(x[:m], x[m: 2 * m]))


def fixed_dropout(x: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    """:func:`dropout` with masks drawn from a generator seeded by ``seed``: the held-out objective then sees
    features as training does, the same ones every epoch."""
    return dropout(x, p, torch.Generator().manual_seed(int(seed) * 1000 + 13))


def _unit_rows(t: torch.Tensor) -> torch.Tensor:
    return t / t.norm(dim=1, keepdim=True).clamp_min(1e-8)  # F.cosine_similarity's eps


def cosine_matrix(x: torch.Tensor) -> torch.Tensor:
    """The n x n cosine similarities of the rows of ``x`` (float64)."""
    unit = _unit_rows(x.double())
    return unit @ unit.T


def cosine_all_pairs_loss(codes: torch.Tensor, x: torch.Tensor | None = None, block: int = 1024,
                          target: torch.Tensor | None = None) -> float:
    """The mean over all pairs i != j of (cos(b_i, b_j) - cos(x_i, x_j))^2, in row blocks (no n x n matrix of
    differences); ``target``: the features' cosine matrix when it is already known (held-out items, every epoch)."""
    n = codes.shape[0]
    if n < 2:
        return float("nan")
    cb = _unit_rows(codes.double())
    cx = _unit_rows(x.double()) if target is None else None
    total = 0.0
    for s in range(0, n, block):
        t = target[s: s + block].double() if target is not None else cx[s: s + block] @ cx.T
        d = cb[s: s + block] @ cb.T - t
        rows = torch.arange(s, min(s + block, n), device=d.device)
        d[rows - s, rows] = 0.0  # the pair (i, i) is no pair
        total += float(d.pow(2).sum())
    return total / (n * (n - 1))


def dropout(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Inverted dropout (``F.dropout`` in training: keep with probability 1 - p, scale by 1 / (1 - p)), its
    mask from ``torch.rand`` (twice as fast as ``F.dropout`` on the CPU for a batch of features)."""
    if p <= 0:
        return x
    keep = torch.rand(x.shape, generator=generator, dtype=torch.float32) >= p
    return x * keep.to(device=x.device, dtype=x.dtype) / (1.0 - p)


class CosineHead(Hasher):
    """Base of GreedyHash and Bi-half (see the module docstring). A subclass sets ``components`` and
    implements ``_codes(h)`` (the training-time codes) and ``_extra_loss(h)`` (terms besides the similarity
    term, with their values; none by default)."""

    deep = True
    requires = frozenset({"features"})
    components: ClassVar[tuple[str, ...]] = ("L_sim",)

    # ---------------------------------------------------------------- hooks
    def _codes(self, h: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _extra_loss(self, h: torch.Tensor) -> tuple[torch.Tensor | float, dict[str, float]]:
        return 0.0, {}

    def _check_method_params(self, who: str) -> None:
        pass

    # ---------------------------------------------------------------- checks
    def _check(self) -> None:
        who = self.name or type(self).__name__
        check_number(who, "lr", self.lr, zero_ok=False)
        check_number(who, "momentum", self.momentum, below=1.0)
        check_number(who, "weight_decay", self.weight_decay)
        check_number(who, "feature_dropout", self.feature_dropout, below=1.0)
        if not isinstance(self.center, (bool, np.bool_)):
            raise ConfigError(f"{who}: center must be true or false, got {self.center!r}")
        check_int(who, "batch_size", self.batch_size, minimum=2)
        if self.lr_decay_epochs is not None:
            check_int(who, "lr_decay_epochs", self.lr_decay_epochs, minimum=1)
        check_common(who, self)
        self._check_method_params(who)

    # ------------------------------------------------------------- training
    def loss(self, h: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss of one batch: the similarity term on the training codes, plus the extra terms.

        ``h`` = fc_encode(x) for the batch's features ``x`` (as the layer saw them: after dropout)."""
        l_sim = cosine_pair_loss(self._codes(h), x)
        extra, parts = self._extra_loss(h)
        total = l_sim + extra
        return total, {"L_sim": l_sim.item(), **parts, "total": total.item()}

    def optimizer(self, params: Any) -> torch.optim.Optimizer:
        """The scripts' optimiser on the layer's parameters: SGD with momentum and weight decay."""
        return torch.optim.SGD(params, lr=float(self.lr), momentum=float(self.momentum),
                               weight_decay=float(self.weight_decay))

    def _fit(self, features: np.ndarray | None, **inputs: Any) -> None:
        self._check()
        self.device_ = resolve_device(self.device)
        dev = torch.device(self.device_)
        f = np.asarray(features, dtype=np.float32)
        fit_rows, val_rows = holdout_split(f.shape[0], float(self.val_fraction), int(self.seed))
        self.fit_info_ = {"device": self.device_, "heldout": {"fraction": float(self.val_fraction),
                                                               "n_fit": int(fit_rows.size),
                                                               "n_heldout": int(val_rows.size)}}
        self.history_: dict[str, list[float]] = {}
        x_fit = torch.from_numpy(f[fit_rows]).to(dev)
        x_val = torch.from_numpy(f[val_rows]).to(dev) if val_rows.size else None
        # ``center`` (ours; the scripts' features are raw): the fitting items' mean leaves x before the dropout
        self.mean_ = (x_fit.double().mean(0).float() if self.center else torch.zeros(f.shape[1])).to(dev)
        self.fit_info_["centred"] = bool(self.center)
        rng = np.random.default_rng([int(self.seed), 11])
        with seeded(int(self.seed), dev):
            self.layer_ = nn.Linear(f.shape[1], int(self.bits)).to(dev)  # PyTorch's default init, as fc_encode
            opt = self.optimizer(self.layer_.parameters())
            bs, n = int(self.batch_size), x_fit.shape[0]
            p = float(self.feature_dropout)

            def step(rows: np.ndarray) -> tuple[torch.Tensor, dict[str, float]]:
                x = dropout(x_fit[torch.from_numpy(rows).to(dev)] - self.mean_, p)
                return self.loss(self.layer_(x), x)

            last: dict[str, float] = {}

            def epoch(e: int) -> dict[str, float]:
                # the scripts' adjust_learning_rate: lr x 0.1 ** (epoch // lr_decay_epochs)
                decay = 0 if self.lr_decay_epochs is None else e // int(self.lr_decay_epochs)
                for group in opt.param_groups:
                    group["lr"] = float(self.lr) * 0.1 ** decay
                self.layer_.train()
                order = rng.permutation(n)
                last.update(minibatch_epoch((order[s: s + bs] for s in range(0, n, bs)), step, opt,
                                            failure=f"{self.name}: the loss became {{}} in epoch {e + 1}"))
                return dict(last)

            target = self._target(x_val) if x_val is not None else None

            def heldout() -> float:
                if x_val is None:  # val_fraction = 0: the epoch's training objective stands in (recorded as such)
                    return last.get("total", float("inf"))
                return self._objective(x_val, target)

            stopper = EarlyStopping(int(self.max_epochs), int(self.patience), float(self.min_delta))
            train_early_stopped(stopper, epoch, heldout, self.layer_.state_dict, self.layer_.load_state_dict,
                                self.history_)
        self.layer_.eval()
        conv = stopper.summary()
        conv["criterion"] = "held-out objective" if x_val is not None else "training objective (val_fraction=0)"
        self.fit_info_["convergence"] = conv

    # ------------------------------------------------------------ objective
    @torch.no_grad()
    def _target(self, x: torch.Tensor) -> torch.Tensor | None:
        """The held-out items' feature cosines as the objective sees them, kept for every epoch (up to 4,096
        items: 64 MiB; beyond, recomputed in blocks each time)."""
        if x.shape[0] > 4096:
            return None
        return cosine_matrix(fixed_dropout(x - self.mean_, float(self.feature_dropout), int(self.seed))).float()

    @torch.no_grad()
    def _objective(self, x: torch.Tensor, target: torch.Tensor | None = None) -> float:
        """The held-out objective (module docstring): all pairs, the training codes, the training dropout with
        masks fixed by the seed (the same items give the same value in every epoch)."""
        self.layer_.eval()
        x = fixed_dropout(x - self.mean_, float(self.feature_dropout), int(self.seed))
        h = self.layer_(x)
        value = cosine_all_pairs_loss(self._codes(h), x, target=target)
        extra, _ = self._extra_loss(h)
        return value + float(extra)

    def heldout_objective(self, features: Any = None, tags: Any = None, images: Any = None) -> float:
        """The method's objective (lower is better) on items the fit did not see (model selection's label-free
        criterion): see the module docstring."""
        if not self.is_fitted:
            raise NotFittedError(f"{self.name}: heldout_objective before fit")
        dev = next(self.layer_.parameters()).device
        return self._objective(torch.from_numpy(np.array(features, dtype=np.float32)).to(dev))

    # -------------------------------------------------------------- encoding
    @torch.no_grad()
    def _encode(self, features: np.ndarray | None, **inputs: Any) -> np.ndarray:
        """b = sign(h), stored as [h > 0] (the scripts' ``compress``: sign of fc_encode's output)."""
        self.layer_.eval()
        dev = next(self.layer_.parameters()).device
        out = []
        for s in range(0, features.shape[0], 8192):
            x = torch.from_numpy(np.array(features[s: s + 8192], dtype=np.float32)).to(dev)
            out.append((self.layer_(x - self.mean_) > 0).cpu().numpy())
        return np.concatenate(out).astype(np.uint8)
