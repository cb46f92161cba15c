"""Shared machinery of USDH and PLUDH: a tanh hash layer on backbone features, trained by
mini-batch SGD with early stopping on held-out training items, on cached features or end to end.

Both methods put one fully connected hash layer u = tanh(W x + c) in (-1, 1)^K
on the backbone's feature layer (AlexNet FC2, VGG fc7, ...), code b = [u > 0]
(the sign of u, as 0/1). They differ only in their losses and in what they
derive from the frozen features first (USDH: feature-space similarities;
PLUDH: pseudo labels); a subclass supplies those (``_prepare``, ``_targets``,
``_loss``).

Two modes of one class, as UDHT's:

* features mode (``end_to_end = False``): the hash layer learns on the
  cached features every other method sees (fast and fair);
* end to end (``end_to_end = True``): on a seeded subset of
  ``max_train_images`` training images, (1) the frozen backbone's features
  give the targets and the hash layer is trained on them exactly as in
  features mode (a warm-up), then (2) the backbone's top (``finetune="top"``:
  AlexNet FC1-FC2, VGG fc6-fc7, ResNet layer4; the convolutional trunk frozen,
  as the USDH stand-in design in ``shared/papers/usdh.md`` says) or all of it
  (``"all"``) is fine-tuned with the hash layer for up to
  ``finetune_epochs`` epochs, the targets staying those of the frozen
  features. A subclass may add terms that need images (USDH's rotation term).

Convergence (``methods/_convergence.py``): ``val_fraction`` of the training
items (of the image subset, end to end) is held out from the gradient steps;
after every epoch the method's whole objective is measured on them, training
stops when it has not improved by ``min_delta`` for ``patience`` epochs or at
``max_epochs``, and the best epoch's weights are restored.
``fit_info_["convergence"]`` says where and why it stopped (one entry per
phase end to end), ``history_`` holds each loss term's epoch mean and the
held-out value per epoch. With ``val_fraction=0`` the training objective's
epoch mean stands in for the held-out one (recorded as such).

Input scaling (ours, as UDHT's ``feature_norm="standardize"``): the layer
sees (x - mean) / rms, the training features' mean and the root mean square of
the centred values (one scalar), a constant fixed at fit time: tanh and the
initialisation assume centred inputs of about unit scale, and ReLU features
are neither.

Optimisation (ours; neither paper's schedule is known): SGD with momentum
0.9, no weight decay by default, batch 64 (USDH, both modes; PLUDH end to end,
``pludh-e2e``, where a batch of images costs memory and time) or 256 (PLUDH on
cached features, whose mutual-information term needs per-class batch
statistics: at 64 the per-class estimates of ``pludh-e2e`` rest on fewer
items), ``lr`` 0.05 on the hash layer (and
the PLUDH classifier), ``backbone_lr`` 1e-4 on the fine-tuned backbone layers
(the 10x-or-more gap of the usdh.md stand-in and of UDHT). ``lr`` = 0.05 is
ours, set before any result was seen and never compared on labels: the
stand-in's 1e-3 goes with its quantisation and entropy terms summed over the
K bits (K times ours); model selection may tune it (USDH's ``search_space``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, ClassVar

import numpy as np
import torch
from torch import nn

from hashbench import ConfigError, Hasher
from hashbench.features import resolve_device

from ._convergence import EarlyStopping, check_convergence_params, holdout_split
from ._deep import minibatch_epoch

FINETUNE = ("top", "all")


def quantization_gap(u: torch.Tensor) -> torch.Tensor:
    """Mean over items and bits of (u - sign(u))^2: 0 for binary outputs, 1 for u = 0."""
    return (u - torch.sign(u).detach()).pow(2).mean()


def bit_balance_loss(u: torch.Tensor) -> torch.Tensor:
    """Mean over bits of (mean over the batch of u_k)^2: 0 when every bit is +1 for half the items.

    With u in {-1, +1} a bit's mean is 2P(+1) - 1, so this is 0 exactly at
    P(+1) = 1/2, the maximum of the bit's entropy (DeepBit's EvenDistLoss in the
    +-1 form).
    """
    return u.mean(0).pow(2).mean()


class CodeLearner(Hasher):
    """Base of USDH and PLUDH (see the module docstring). Subclasses set ``components`` and implement
    ``_prepare(f_fit)``, ``_targets(f)`` and ``_loss(u, targets, **extra)``."""

    deep = True
    end_to_end: ClassVar[bool] = False
    #: the loss terms recorded per epoch in ``history_``
    components: ClassVar[tuple[str, ...]] = ()
    #: False keeps a method out of ``--methods all`` (the end-to-end modes: see their docstrings)

    # ---------------------------------------------------------------- checks
    def _check_params(self) -> None:
        who = self.name or type(self).__name__

        def number(name: str, *, positive: bool = False, below_one: bool = False) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v) \
                    or v < 0 or (positive and v == 0) or (below_one and v >= 1):
                kind = "positive" if positive else "non-negative"
                raise ConfigError(f"{who}: {name} must be a {kind} number{' below 1' if below_one else ''}, got {v!r}")

        def integer(name: str, low: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ConfigError(f"{who}: {name} must be an integer >= {low}, got {v!r}")

        integer("batch_size", 2)
        number("lr", positive=True)
        number("momentum", below_one=True)
        number("weight_decay")
        check_convergence_params(who, self.max_epochs, self.patience, self.min_delta)
        if isinstance(self.val_fraction, bool) or not isinstance(self.val_fraction, (int, float)) \
                or not 0 <= self.val_fraction < 1:
            raise ConfigError(f"{who}: val_fraction must be in [0, 1), got {self.val_fraction!r}")
        if not isinstance(self.device, str):
            raise ConfigError(f"{who}: device must be a string ('auto', 'cpu', 'cuda', ...), got {self.device!r}")
        if self.end_to_end:
            number("backbone_lr")
            integer("finetune_epochs", 0)
            if self.max_train_images is not None:
                integer("max_train_images", 4)
            if self.finetune not in FINETUNE:
                raise ConfigError(f"{who}: finetune must be one of {FINETUNE}, got {self.finetune!r}")
        self._check_method_params()

    def _check_method_params(self) -> None:  # pragma: no cover - overridden
        pass

    # -------------------------------------------------------- subclass hooks
    def _prepare(self, f_fit: np.ndarray) -> None:  # pragma: no cover - abstract
        """Learn what the targets need from the frozen features of the fit rows (k-means, means...)."""
        raise NotImplementedError

    def _targets(self, f: np.ndarray) -> Any:  # pragma: no cover - abstract
        """Per-item targets (a tensor indexed by row) for frozen features ``f``."""
        raise NotImplementedError

    def _loss(self, u: torch.Tensor, targets: Any, **extra: Any) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError  # pragma: no cover

    def _extra_modules(self, bits: int) -> dict[str, nn.Module]:
        """Learned modules besides the hash layer (PLUDH's pseudo-label classifier)."""
        return {}

    # ----------------------------------------------------------------- model
    def _build(self, in_dim: int, f_fit: np.ndarray) -> None:
        torch.manual_seed(int(self.seed))
        head = nn.Linear(in_dim, int(self.bits))
        nn.init.xavier_normal_(head.weight)
        nn.init.zeros_(head.bias)
        mods = {"hash": head, **self._extra_modules(int(self.bits))}
        self.net_ = nn.ModuleDict(mods).to(self._dev)
        x = torch.from_numpy(np.asarray(f_fit[:20000], dtype=np.float64))
        mean = x.mean(0)
        rms = float((x - mean).pow(2).mean().sqrt())
        self._in_mean = mean.float().to(self._dev)
        self._in_scale = 1.0 / rms if rms > 0 else 1.0
        self.fit_info_["input_scaling"] = {"rms": rms, "mean_norm": float(mean.norm())}

    def _u(self, x: torch.Tensor) -> torch.Tensor:
        """The relaxed code tanh(W x' + c) of (un-standardised) features x."""
        return torch.tanh(self._logits(x))

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net_["hash"]((x - self._in_mean) * self._in_scale)

    # -------------------------------------------------------------- training
    def _fit(self, features: np.ndarray | None, **inputs: Any) -> None:
        self._check_params()
        self.device_ = resolve_device(self.device)
        self._dev = torch.device(self.device_)
        with torch.random.fork_rng(devices=[self._dev] if self._dev.type == "cuda" else []):
            torch.manual_seed(int(self.seed))
            self.fit_info_ = {"device": self.device_}
            self.history_ = {}
            if self.end_to_end:
                self._fit_images(inputs["images"])
            else:
                self._fit_features(np.asarray(features, dtype=np.float32))

    def _split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        fit_rows, val_rows = holdout_split(n, float(self.val_fraction), int(self.seed))
        self.fit_info_["heldout"] = {"fraction": float(self.val_fraction), "n_fit": int(fit_rows.size),
                                     "n_heldout": int(val_rows.size)}
        return fit_rows, val_rows

    def _fit_features(self, f: np.ndarray) -> None:
        fit_rows, val_rows = self._split(f.shape[0])
        self._train_head(f[fit_rows], f[val_rows] if val_rows.size else None)

    def _train_head(self, f_fit: np.ndarray, f_val: np.ndarray | None, phase: str = "train") -> None:
        """The hash layer (and extra modules) on frozen features: targets, then SGD with early stopping."""
        self._prepare(f_fit)
        self._build(f_fit.shape[1], f_fit)
        x_fit = torch.from_numpy(f_fit).to(self._dev)
        t_fit = self._targets(f_fit)
        if f_val is not None:
            x_val, t_val = torch.from_numpy(f_val).to(self._dev), self._targets(f_val)

            def heldout() -> float:
                return self._objective(lambda rows, _: self._u(x_val[rows]), t_val, len(x_val))
        else:
            heldout = None

        def step_u(rows: np.ndarray, _: Any) -> tuple[torch.Tensor, dict[str, Any]]:
            return self._u(x_fit[torch.from_numpy(rows)]), {}

        self._sgd(step_u, t_fit, f_fit.shape[0], heldout, list(self.net_.parameters()), [],
                  int(self.max_epochs), phase, lambda: {})

    @staticmethod
    def _batches(order: np.ndarray, bs: int) -> list[np.ndarray]:
        """Consecutive batches of ``order``; a trailing single item is left out (it has no pair / batch statistic)."""
        return [order[s: s + bs] for s in range(0, order.size, bs) if min(bs, order.size - s) >= 2]

    @torch.no_grad()
    def _objective(self, u_of: Callable[[np.ndarray, Any], torch.Tensor], targets: Any, n: int,
                   extra_of: Callable[[np.ndarray, Any], dict[str, Any]] | None = None,
                   read: Reader | None = None) -> float:
        """The whole objective on ``n`` items in batches of ``batch_size`` (no gradient), item-weighted.
        ``read`` gives each batch's input (end to end: its images), passed to ``u_of`` and ``extra_of``."""
        self.net_.eval()
        total, count = 0.0, 0
        batches = self._batches(np.arange(n), int(self.batch_size))
        for rows, x in zip(batches, read(batches) if read is not None else [None] * len(batches)):
            extra = extra_of(rows, x) if extra_of is not None else {}
            loss, _ = self._loss(u_of(rows, x), self._take(targets, rows), **extra)
            total += float(loss) * rows.size
            count += rows.size
        self.net_.train()
        return total / max(count, 1)

    @staticmethod
    def _take(targets: Any, rows: np.ndarray) -> Any:
        idx = torch.from_numpy(np.asarray(rows))
        if isinstance(targets, tuple):
            return tuple(t[idx.to(t.device)] for t in targets)
        return targets[idx.to(targets.device)]

    def _sgd(self, forward: Callable[[np.ndarray, Any], tuple[torch.Tensor, dict[str, Any]]], targets: Any, n: int,
             heldout: Callable[[], float] | None, head_params: list, backbone_params: list, max_epochs: int,
             phase: str, backbone_state: Callable[[], dict[str, torch.Tensor]], read: Reader | None = None) -> None:
        """Mini-batch SGD over ``n`` fit rows with early stopping on ``heldout`` (see the module docstring).
        ``forward(rows, x)`` gets each batch's input from ``read`` (end to end: the images, which DataLoader
        workers decode ahead with --workers), or None."""
        groups = [{"params": head_params, "lr": float(self.lr)}]
        if backbone_params:
            groups.append({"params": backbone_params, "lr": float(self.backbone_lr)})
        opt = torch.optim.SGD(groups, lr=float(self.lr), momentum=float(self.momentum),
                              weight_decay=float(self.weight_decay))
        stopper = EarlyStopping(max_epochs=max(1, max_epochs), patience=int(self.patience),
                                min_delta=float(self.min_delta))
        rng = np.random.default_rng([int(self.seed), {"train": 0, "warmup": 0, "finetune": 1}[phase]])
        bs = int(self.batch_size)

        def state() -> dict[str, Any]:  # views: EarlyStopping deep-copies the best one (one copy, not two)
            return {"net": {k: v.detach() for k, v in self.net_.state_dict().items()}, "backbone": backbone_state()}

        def step(batch: tuple[np.ndarray, Any]) -> tuple[torch.Tensor, dict[str, float]]:
            rows, x = batch
            u, extra = forward(rows, x)
            loss, parts = self._loss(u, self._take(targets, rows), **extra)
            return loss, {"total": loss.item(), **parts}

        self.net_.train()
        for epoch in range(max_epochs):
            batches = self._batches(rng.permutation(n), bs)
            inputs = read(batches) if read is not None else [None] * len(batches)
            failure = (f"{self.name}: the loss became {{}} at epoch {epoch + 1} ({phase})"
                       + ("; lower backbone_lr" if backbone_params else ""))
            got = minibatch_epoch(zip(batches, inputs), step, opt, failure=failure, min_size=0)  # pairs: pre-filtered
            means = {k: got.get(k, 0.0) for k in ("total", *self.components)}
            value = heldout() if heldout is not None else means["total"]
            for k, v in means.items():
                self.history_.setdefault(k, []).append(v)
            self.history_.setdefault("heldout", []).append(value)
            if self.end_to_end:  # which epochs fine-tuned the backbone (1) or trained the hash layer alone (0)
                self.history_.setdefault("end_to_end", []).append(0.0 if phase == "warmup" else 1.0)
            if stopper.update(value, state()):
                break
        if stopper.best_state is not None:
            self.net_.load_state_dict(stopper.best_state["net"])
            if stopper.best_state["backbone"]:
                self._restore_backbone(stopper.best_state["backbone"])
        self.net_.eval()
        summary = stopper.summary()
        summary["criterion"] = "held-out objective" if heldout is not None else "training objective (val_fraction=0)"
        if self.end_to_end:
            self.fit_info_.setdefault("convergence_phases", {})[phase] = summary
        self.fit_info_["convergence"] = summary

    def _restore_backbone(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            params = dict(self.backbone_.named_parameters())
            for k, v in state.items():
                params[k].copy_(v)

    # ------------------------------------------------------------ end to end
    def _fit_images(self, images: Any) -> None:
        n_all = len(images)
        rng = np.random.default_rng(int(self.seed))
        subset = np.arange(n_all)
        if self.max_train_images is not None and self.max_train_images < n_all:
            subset = np.sort(rng.choice(n_all, size=int(self.max_train_images), replace=False))
        self.fit_info_["train_images_used"] = int(subset.size)
        self.fit_info_["train_images_given"] = int(n_all)
        fit_rows, val_rows = self._split(subset.size)
        fit_pos, val_pos = subset[fit_rows], subset[val_rows]
        backbone = images.build_backbone().to(self._dev)
        self.backbone_ = backbone
        # the frozen (initial) backbone's features: the targets' source, and the warm-up's input
        f_fit = self._frozen_features(backbone, images, fit_pos)
        f_val = self._frozen_features(backbone, images, val_pos) if val_pos.size else None
        self._train_head(f_fit, f_val, phase="warmup")
        self.fit_info_["warmup_convergence"] = self.fit_info_["convergence"]
        if not self.finetune_epochs:
            backbone.eval()
            return
        t_fit = self._targets(f_fit)
        t_val = self._targets(f_val) if f_val is not None else None
        trainable = list(backbone.top_parameters()) if self.finetune == "top" else list(backbone.parameters())
        train_ids = {id(p) for p in trainable}
        for p in backbone.parameters():
            p.requires_grad_(id(p) in train_ids)
        names = [k for k, p in backbone.named_parameters() if id(p) in train_ids]
        self.fit_info_["finetuned_parameters"] = int(sum(p.numel() for p in trainable))
        backbone.eval()  # dropout off (as UDHT's default); ResNet batch norm keeps its statistics

        def u_images(x: torch.Tensor) -> torch.Tensor:
            return self._u(backbone(x.to(self._dev, non_blocking=True)))

        def forward(rows: np.ndarray, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
            return u_images(x), self._image_extra(backbone, x, rows, train=True)

        heldout = None
        if t_val is not None:
            def heldout() -> float:
                return self._objective(lambda rows, x: u_images(x), t_val, val_pos.size,
                                       lambda rows, x: self._image_extra(backbone, x, rows, train=False),
                                       read=_image_reader(images, val_pos))

        def backbone_state() -> dict[str, torch.Tensor]:
            params = dict(backbone.named_parameters())
            return {k: params[k].detach() for k in names}

        self._sgd(forward, t_fit, fit_pos.size, heldout, list(self.net_.parameters()), trainable,
                  int(self.finetune_epochs), "finetune", backbone_state, read=_image_reader(images, fit_pos))
        for p in backbone.parameters():
            p.requires_grad_(False)
        backbone.eval()

    def _image_extra(self, backbone: nn.Module, x: torch.Tensor, rows: np.ndarray, train: bool) -> dict[str, Any]:
        """Extra loss inputs that need the batch's images ``x`` themselves (USDH: rotated copies); ``rows``
        index the batch within its fit or held-out set. None by default."""
        return {}

    @torch.no_grad()
    def _frozen_features(self, backbone: nn.Module, images: Any, positions: np.ndarray) -> np.ndarray:
        backbone.eval()
        out = np.empty((positions.size, int(getattr(backbone, "out_dim", 4096))), dtype=np.float32)
        bs = max(int(self.batch_size), 64)
        starts = range(0, positions.size, bs)
        for s, (_, x) in zip(starts, images.loader([positions[s: s + bs] for s in starts])):
            out[s: s + bs] = backbone(x.to(self._dev, non_blocking=True)).float().cpu().numpy()
        return out

    # -------------------------------------------------------------- encoding
    @torch.no_grad()
    def _encode(self, features: np.ndarray | None, **inputs: Any) -> np.ndarray:
        """b = [u > 0], computed on the logits (the same, without tanh's rounding)."""
        self.net_.eval()
        if not self.end_to_end:
            out = []
            for s in range(0, features.shape[0], 4096):
                x = torch.from_numpy(np.asarray(features[s: s + 4096], dtype=np.float32)).to(self._dev)
                out.append((self._logits(x) > 0).cpu().numpy())
            return np.concatenate(out).astype(np.uint8)
        images = inputs["images"]
        self.backbone_.eval()
        codes = np.empty((len(images), int(self.bits)), dtype=np.uint8)
        for pos, x in images.batches(max(int(self.batch_size), 64)):
            codes[pos] = (self._logits(self.backbone_(x.to(self._dev))) > 0).cpu().numpy()
        return codes

    # ------------------------------------------------------------ selection
    def heldout_objective(self, features: Any = None, tags: Any = None, images: Any = None) -> float:
        """The method's whole objective (lower is better) on items the fit did not see, targets from their
        frozen features (features mode: ``features``; end to end: ``images`` through the fitted network,
        targets from the initial backbone's features of those images)."""
        if not self.is_fitted:
            from hashbench import NotFittedError

            raise NotFittedError(f"{self.name}: heldout_objective before fit")
        if not self.end_to_end:
            f = np.asarray(features, dtype=np.float32)
            x = torch.from_numpy(f).to(self._dev)
            return self._objective(lambda rows, _: self._u(x[rows]), self._targets(f), f.shape[0])
        pos = np.arange(len(images))
        fresh = images.build_backbone().to(self._dev)  # the initial weights give the targets, as in fit
        t = self._targets(self._frozen_features(fresh, images, pos))
        del fresh
        return self._objective(lambda rows, x: self._u(self.backbone_(x.to(self._dev, non_blocking=True))), t,
                               pos.size, lambda rows, x: self._image_extra(self.backbone_, x, rows, train=False),
                               read=_image_reader(images, pos))


#: Maps a list of row batches to each batch's input, in order.
Reader = Callable[[list], Any]


def _image_reader(images: Any, positions: np.ndarray) -> Reader:
    """Row batches (indices into ``positions``) -> their preprocessed images, read through the ImageInput's
    loader (DataLoader workers with --workers, pinned on CUDA), the same tensors as reading in-process."""
    return lambda batches: (x for _, x in images.loader([positions[rows] for rows in batches]))
