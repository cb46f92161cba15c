"""DeepBit (Lin, Lu, Chen & Zhou, CVPR 2016): compact binary descriptors learned without labels.

* ``deepbit`` -- :class:`DeepBit`, the hash layer on the cached backbone features (AlexNet FC2 on real data, the paper's; EfficientNet-Lite0 on the embedded default);
* ``deepbit-e2e`` -- :class:`DeepBitEndToEnd`, from images, with rotated copies of the training images.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from hashbench import ConfigError, DataError, Hasher, register_method
from hashbench.features import resolve_device
from hashbench.validation import check_features

from ._convergence import EarlyStopping, holdout_split
from ._deep import check_common, check_int, check_number, minibatch_epoch, seeded, train_early_stopped
from ._selected import record_defaults

PAPER = ("Lin, Lu, Chen & Zhou, Learning compact binary descriptors with unsupervised deep neural networks, "
         "CVPR 2016")

#: the official code's rotations (aug_img.m): 5 (aug - 3) degrees, aug = 1..5
ANGLES = (-10.0, -5.0, 0.0, 5.0, 10.0)


def rotation_weight(angle: float) -> float:
    """exp(-(theta / 5)^2 / 2): 1 at 0 degrees, 0.61 at +-5, 0.14 at +-10 (aug_img.m's weight)."""
    return math.exp(-((angle / 5.0) ** 2) / 2.0)


# ------------------------------------------------------------------ losses
def binarize(h: torch.Tensor) -> torch.Tensor:
    """b = 1[h > 0.5] (eq. 1; the code's threshold), a constant for autograd."""
    return (h.detach() > 0.5).to(h.dtype)


def quantization_loss(h: torch.Tensor) -> torch.Tensor:
    """L_q = 1/(2N) sum_n ||b_n - h_n||^2 (K2 MinQuantizeLoss). b is piecewise constant in h,
    so the true gradient is (h - b)/N: the code's backward instead gives every element one constant."""
    return (binarize(h) - h).pow(2).sum() / (2 * h.shape[0])


def even_distribution_loss(h: torch.Tensor, relaxed: bool = True) -> torch.Tensor:
    """L_e = 1/(2N) sum_k (mu_k - 1/2)^2 (K1 EvenDistLoss), mu_k the share of items whose bit k is 1.

    On the binary b (``relaxed=False``, the code's forward value) its true
    gradient is zero almost everywhere; the code back-propagates a constant.
    ``relaxed=True`` (what we train with) takes mu_k as the mean of h_k in
    (0, 1): the same value where h is binary, and a gradient that moves each
    bit's mean towards 1/2.
    """
    mu = h.mean(0) if relaxed else binarize(h).mean(0)
    return (mu - 0.5).pow(2).sum() / (2 * h.shape[0])


def rotation_loss(h: torch.Tensor, h_rot: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """L_r = 1/(2N) sum_n w_n ||h(x_n) - h(R_n x_n)||^2 (K3 TransformLoss; w_n = rotation_weight)."""
    return (weights * (h - h_rot).pow(2).sum(1)).sum() / (2 * h.shape[0])


class DeepBitHead(nn.Module):
    """The K-unit hash layer (the code's fc8_kevin) on top of FC2/fc7 features; N(0, 0.01) weights, zero bias."""

    def __init__(self, in_dim: int, bits: int, activation: str) -> None:
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(in_dim))
        self.register_buffer("input_scale", torch.ones(()))
        self.fc = nn.Linear(in_dim, bits)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.fc((x - self.input_mean) * self.input_scale)
        return torch.sigmoid(z) if self.activation == "sigmoid" else torch.relu(z)


_DOC = """
    Lin, Lu, Chen & Zhou, *Learning compact binary descriptors with
    unsupervised deep neural networks*, CVPR 2016. A K-unit hash layer on top
    of a pre-trained CNN's last hidden layer (VGG-16 fc7 in the paper; here
    the cached backbone features every method of this suite sees); the codes are
    b = 1[h > 0.5] (eq. 1, number recalled). Three criteria (eq. 2-5, numbers
    recalled): minimal quantisation loss, evenly distributed bits, invariance
    to rotation.

    The losses, weights and schedule are those of the official Caffe code
    (kevinlin311tw/cvpr16-deepbit, ``K1_even_dist_loss_layer.cpp``,
    ``K2_min_quantize_loss_layer.cpp``, ``K3_transform_loss_layer.cpp``,
    ``examples/deepbit-cifar10-32/*.prototxt``, ``aug_img.m``; read, not
    copied), written down in the team's notes; the paper's equation numbers
    are cited as recalled (its text is not on file here):

    * L_q = 1/(2N) sum_n ||b_n - h_n||^2 (:func:`quantization_loss`);
    * L_e = 1/(2N) sum_k (mu_k - 1/2)^2 (:func:`even_distribution_loss`);
    * L_r = 1/(2N) sum_n w_n ||h(x_n) - h(R_theta x_n)||^2 with theta in
      {-10, -5, 0, 5, 10} degrees and w = exp(-(theta/5)^2/2)
      (:func:`rotation_loss`);
    * stage 1: L_q + L_e on the original images, SGD with momentum 0.9,
      weight decay 5e-4 (weights only), learning rate ``lr`` = 1e-3 (biases
      2x), batch 32; stage 2: L_e + L_q on each of the two branches
      (original, rotated) + 0.001 L_r, ``stage2_lr`` = 1e-4, 30 pairs a batch;
    * the CNN stays frozen in both stages (lr_mult 0 in the code): only the
      hash layer learns, N(0, 0.01) weights, zero bias.

    All gradients come from autograd on these formulas: the code's hand-
    written backward passes are not their derivatives (K1 and K2 give every
    element one constant; K3 drops the rotation weight; and with the same
    blob given as both bottoms of K1 and K2, their two constant diffs cancel).

    Departures from the code, and why:

    * L_e is trained in its relaxed form, mu_k = mean of h_k (the value on
      binary b is recorded as ``L_e_binary``): on b its derivative is zero
      almost everywhere, so autograd on the exact formula would never balance
      a bit;
    * ``activation`` = "sigmoid" (hand-set default, and a departure from the
      official code, whose deploy and training files use a ReLU hash layer,
      then 1[h > 0.5] as well; available as "relu"): a sigmoid hash layer is
      the paper's as *recalled* only, not re-read. Both are in the search
      space, so the shared selection decides. With the ReLU layer a large
      ``lr`` can make the stage-1 loss infinite: that trial fails and is
      recorded, the search goes on;
    * ``feature_norm`` = "standardize": the hash layer sees (x - mean) / rms of
      the training features (one scalar), fixed at fit time (as ``udht``):
      FC2 outputs are non-negative and their common mean would otherwise push
      every unit the same way; "none" feeds them raw, as the code does;
    * schedules: the code runs 50,000 + 5,000 iterations with step decays;
      here each stage runs up to ``max_epochs`` epochs without decay and stops
      when its objective on held-out training items (``val_fraction`` = 0.1)
      has not improved for ``patience`` epochs (``methods/_convergence.py``),
      for the CPU budget of the default run.
"""


class _DeepBitBase(Hasher):
    deep = True
    search_space = {"lr": [1e-3, 1e-2], "activation": ["sigmoid", "relu"]}

    # ---------------------------------------------------------------- checks
    def _check(self) -> None:
        who = self.name or type(self).__name__
        stage2 = isinstance(self, DeepBitEndToEnd)
        for name in ("lr", "stage2_lr") if stage2 else ("lr",):
            check_number(who, name, getattr(self, name), zero_ok=False)
        for name in ("weight_decay", "rotation_weight") if stage2 else ("weight_decay",):
            check_number(who, name, getattr(self, name))
        check_number(who, "momentum", self.momentum, below=1.0)
        for name in ("batch_size", "stage2_batch_size") if stage2 else ("batch_size",):
            check_int(who, name, getattr(self, name), minimum=2)
        if self.activation not in ("sigmoid", "relu"):
            raise ConfigError(f"{who}: activation must be 'sigmoid' or 'relu', got {self.activation!r}")
        if self.feature_norm not in ("standardize", "none"):
            raise ConfigError(f"{who}: feature_norm must be 'standardize' or 'none', got {self.feature_norm!r}")
        check_common(who, self)

    # ------------------------------------------------------------- training
    def _build(self, feats: torch.Tensor, dev: torch.device) -> None:
        self.head_ = DeepBitHead(feats.shape[1], self.bits, self.activation).to(dev)
        if self.feature_norm == "standardize":
            x = feats[:20000].double()
            mean = x.mean(0)
            rms = float((x - mean).pow(2).mean().sqrt())
            self.head_.input_mean.copy_(mean.float())
            self.head_.input_scale.fill_(1.0 / rms if rms > 0 else 1.0)

    def _optimizer(self, lr: float) -> torch.optim.Optimizer:
        # the code: weights lr_mult 1 / decay_mult 1, bias lr_mult 2 / decay_mult 0
        return torch.optim.SGD([
            {"params": [self.head_.fc.weight], "lr": lr, "weight_decay": float(self.weight_decay)},
            {"params": [self.head_.fc.bias], "lr": 2 * lr, "weight_decay": 0.0},
        ], lr=lr, momentum=float(self.momentum))

    def _stage1_loss(self, h: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        lq, le = quantization_loss(h), even_distribution_loss(h)
        total = lq + le
        return total, {"L_q": lq.item(), "L_e": le.item(), "L_e_binary": even_distribution_loss(h, False).item(),
                       "L_r": 0.0, "total": total.item()}

    def _stage2_loss(self, h: torch.Tensor, h_rot: torch.Tensor, w: torch.Tensor
                     ) -> tuple[torch.Tensor, dict[str, float]]:
        lq = quantization_loss(h) + quantization_loss(h_rot)
        le = even_distribution_loss(h) + even_distribution_loss(h_rot)
        lr = rotation_loss(h, h_rot, w)
        total = lq + le + float(self.rotation_weight) * lr
        return total, {"L_q": lq.item(), "L_e": le.item(),
                       "L_e_binary": (even_distribution_loss(h, False) + even_distribution_loss(h_rot, False)).item(),
                       "L_r": lr.item(), "total": total.item()}

    def _run_stage(self, stage: int, n: int, batch: int, lr: float, loss_of_rows, heldout, rng) -> dict[str, Any]:
        """One stage: SGD epochs over ``n`` rows, early-stopped on ``heldout()``; returns the stopper's summary."""
        opt = self._optimizer(lr)
        head = self.head_

        def epoch(e: int) -> dict[str, float]:
            head.train()
            order = rng.permutation(n)
            out = minibatch_epoch((order[s: s + batch] for s in range(0, n, batch)),
                                  lambda rows: loss_of_rows(torch.from_numpy(rows)), opt,
                                  failure=f"{self.name}: the loss became {{}} in stage {stage}")
            out["stage"] = float(stage)
            return out

        stopper = EarlyStopping(int(self.max_epochs), int(self.patience), float(self.min_delta))
        train_early_stopped(stopper, epoch, heldout, lambda: head.state_dict(), head.load_state_dict, self.history_)
        head.eval()
        return stopper.summary()

    @torch.no_grad()
    def _stage1_objective(self, x: torch.Tensor) -> float:
        self.head_.eval()
        return self._stage1_loss(self.head_(x))[0].item()

    def _fit_stage1(self, feats: torch.Tensor, val: torch.Tensor, rng: np.random.Generator) -> dict[str, Any]:
        return self._run_stage(1, feats.shape[0], int(self.batch_size), float(self.lr),
                               lambda rows: self._stage1_loss(self.head_(feats[rows.to(feats.device)])),
                               lambda: self._stage1_objective(val), rng)


@register_method("deepbit")
@record_defaults("deepbit")
class DeepBit(_DeepBitBase):
    __doc__ = (
        """DeepBit on the cached backbone features: the hash layer trained with stage 1's L_q + L_e.
"""
        + _DOC
        + """
    On cached features there are no rotated images, so only stage 1 runs
    (L_q + L_e): a departure from the paper, whose third criterion needs the
    images (``deepbit-e2e``). The CNN is frozen in the official code anyway,
    so this is DeepBit's first stage exactly, on the features every method
    here sees. ``history_``: per epoch L_q, L_e (relaxed), L_e_binary, L_r
    (0), the total, the held-out objective and the stage (1).
"""
    )

    display_name = "DeepBit"
    summary = "DeepBit's hash layer (quantisation + even-distribution losses, stage 1) on cached backbone features"
    paper = PAPER
    requires = frozenset({"features"})

    def __init__(self, bits: int = 32, seed: int = 0, activation: str = "sigmoid", feature_norm: str = "standardize",
                 lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 5e-4, batch_size: int = 32,
                 max_epochs: int = 10, patience: int = 3, min_delta: float = 1e-5, val_fraction: float = 0.1,
                 device: str = "auto") -> None:
        super().__init__(bits=bits, seed=seed)
        self.activation = activation
        self.feature_norm = feature_norm
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_delta = min_delta
        self.val_fraction = val_fraction
        self.device = device

    def _fit(self, features: np.ndarray) -> None:
        self._check()
        self.device_ = resolve_device(self.device)
        dev = torch.device(self.device_)
        x = np.asarray(features, dtype=np.float32)
        fit_rows, val_rows = holdout_split(x.shape[0], float(self.val_fraction), int(self.seed))
        with seeded(self.seed, dev):
            feats = torch.from_numpy(x[fit_rows]).to(dev)
            val = torch.from_numpy(x[val_rows]).to(dev) if val_rows.size else feats
            self._build(feats, dev)
            self.history_: dict[str, list[float]] = {}
            summary = self._fit_stage1(feats, val, np.random.default_rng(self.seed))
        self.fit_info_ = {"device": self.device_, "n_fit": int(fit_rows.size), "n_heldout": int(val_rows.size),
                          "stages_run": [1], "convergence": summary}

    def heldout_objective(self, features: Any = None, tags: Any = None, images: Any = None) -> float:
        """Stage 1's L_q + L_e (lower is better) on these items."""
        x = check_features(features, name=f"{self.name}: held-out features", n_features=self.n_features_in_)
        return self._stage1_objective(torch.from_numpy(np.asarray(x, dtype=np.float32)).to(self.device_))

    @torch.no_grad()
    def _encode(self, features: np.ndarray) -> np.ndarray:
        self.head_.eval()
        out = []
        for s in range(0, features.shape[0], 8192):
            x = torch.from_numpy(np.asarray(features[s: s + 8192], dtype=np.float32)).to(self.device_)
            out.append((self.head_(x) > 0.5).cpu().numpy())
        return np.concatenate(out).astype(np.uint8)


def rotate_batch(x: torch.Tensor, angle: float, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Normalised (n, 3, S, S) images rotated by ``angle`` degrees about their centre, same size, corners black.

    As the code's ``aug_img.m`` (``imrotate`` on the canvas it enlarges with
    black, then a centre crop of the original size); black is normalised black
    here, with the backbone's own input statistics (``mean``, ``std``: ImageNet's
    for the torchvision networks, 127/128 for EfficientNet-Lite), since the
    tensors come normalised.
    """
    from torchvision.transforms.functional import InterpolationMode, rotate

    if angle == 0:
        return x
    black = [-m / s for m, s in zip(mean, std)]
    return rotate(x, angle, interpolation=InterpolationMode.BILINEAR, fill=black)


@register_method("deepbit-e2e")
@record_defaults("deepbit-e2e")
class DeepBitEndToEnd(_DeepBitBase):
    __doc__ = (
        """DeepBit from images: both stages, stage 2 on rotated copies of the training images.
"""
        + _DOC
        + """
    From images: the backbone is the one the cached features come from
    (``ImageInput.build_backbone()``), frozen as in the official code, so its
    FC2 outputs of the training images and of their rotated copies (4 angles
    besides 0, :func:`rotate_batch`) are computed once; stage 1 trains on the
    originals, stage 2 on (original, rotated) pairs, each pair weighted by
    :func:`rotation_weight`. ``max_train_images`` = 500: a seeded subset of the
    training images (None: all), the CPU budget (5 backbone passes per image);
    ``fit_info_`` records how many were used. ``history_`` has both stages'
    epochs, ``stage`` saying which; ``fit_info_["convergence"]`` is stage 2's,
    ``fit_info_["convergence_stage1"]`` stage 1's.

    Not in ``--methods all`` (see ``hashbench list``): it needs the backbone
    on every image, 5 times per training image and once per database and
    query image for each bit length, too slow for the default run's CPU
    budget. Run it by name.
"""
    )

    search_space = {**_DeepBitBase.search_space, "rotation_weight": [1e-3, 1e-2, 1e-1]}
    inherits_defaults_from = "deepbit"
    inherits_defaults_because = (
        "end-to-end training costs minutes per trial on a 2-core CPU; its stage 1 is deepbit's, whose lr and hash-layer activation it takes (rotation_weight, its own, keeps its hand-set value)"
    )
    display_name = "DeepBit (end to end)"
    summary = "DeepBit from images: hash layer on the frozen backbone, stage 2 with rotated copies (rotation invariance)"
    paper = PAPER
    requires = frozenset({"images"})
    in_default_run = False
    not_in_default_run_because = "backbone passes over 5 rotations of every training image: too slow for the CPU budget"

    def __init__(self, bits: int = 32, seed: int = 0, activation: str = "sigmoid", feature_norm: str = "standardize",
                 lr: float = 1e-3, stage2_lr: float = 1e-4, momentum: float = 0.9, weight_decay: float = 5e-4,
                 rotation_weight: float = 1e-3, batch_size: int = 32, stage2_batch_size: int = 30,
                 max_epochs: int = 10, patience: int = 3, min_delta: float = 1e-5, val_fraction: float = 0.1,
                 max_train_images: int | None = 500, device: str = "auto") -> None:
        super().__init__(bits=bits, seed=seed)
        self.activation = activation
        self.feature_norm = feature_norm
        self.lr = lr
        self.stage2_lr = stage2_lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.rotation_weight = rotation_weight
        self.batch_size = batch_size
        self.stage2_batch_size = stage2_batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_delta = min_delta
        self.val_fraction = val_fraction
        self.max_train_images = max_train_images
        self.device = device

    @torch.no_grad()
    def _backbone_features(self, images: Any, positions: np.ndarray, dev: torch.device) -> torch.Tensor:
        """(angles, n, D) backbone features of each image under each of ANGLES: every batch is read once
        (through the ImageInput's loader: DataLoader workers with --workers) and rotated here."""
        out: list[list[torch.Tensor]] = [[] for _ in ANGLES]
        batches = [positions[s: s + 64] for s in range(0, len(positions), 64)]
        d = images.spec.definition
        for _, x in images.loader(batches):
            for k, angle in enumerate(ANGLES):
                out[k].append(self.backbone_(rotate_batch(x, angle, d.mean, d.std).to(dev)))
        return torch.stack([torch.cat(o) for o in out])

    def _fit(self, features: np.ndarray | None, **inputs: Any) -> None:
        self._check()
        if self.max_train_images is not None:
            check_int(self.name or type(self).__name__, "max_train_images", self.max_train_images)
        self.device_ = resolve_device(self.device)
        dev = torch.device(self.device_)
        images = inputs["images"]
        rng = np.random.default_rng(self.seed)
        n_all = len(images)
        subset = np.arange(n_all)
        if self.max_train_images is not None and self.max_train_images < n_all:
            subset = np.sort(rng.choice(n_all, size=int(self.max_train_images), replace=False))
        fit_rows, val_rows = holdout_split(subset.size, float(self.val_fraction), int(self.seed))
        with seeded(self.seed, dev):
            self.backbone_ = images.build_backbone().to(dev).eval()
            for p in self.backbone_.parameters():
                p.requires_grad_(False)  # frozen, as in the code (lr_mult 0)
            # FC2 of every training image under every angle: (angles, n, 4096)
            feats = self._backbone_features(images, subset, dev)
            orig = feats[ANGLES.index(0.0)]
            fit_t = torch.from_numpy(fit_rows).to(dev)
            val_t = torch.from_numpy(val_rows).to(dev) if val_rows.size else fit_t
            self._build(orig[fit_t], dev)
            self.history_: dict[str, list[float]] = {}
            s1 = self._fit_stage1(orig[fit_t], orig[val_t], rng)
            # stage 2: every (item, angle) pair once per epoch
            weights = torch.tensor([rotation_weight(a) for a in ANGLES], device=dev)
            n_angles = len(ANGLES)

            def pairs(rows_items: torch.Tensor, pair_ids: torch.Tensor):
                item, angle = pair_ids // n_angles, pair_ids % n_angles
                idx = rows_items[item]
                return feats[ANGLES.index(0.0), idx], feats[angle, idx], weights[angle]

            def loss_of_rows(pair_ids: torch.Tensor):
                x, xr, w = pairs(fit_t, pair_ids.to(dev))
                return self._stage2_loss(self.head_(x), self.head_(xr), w)

            @torch.no_grad()
            def heldout() -> float:
                self.head_.eval()
                ids = torch.arange(val_t.numel() * n_angles, device=dev)
                x, xr, w = pairs(val_t, ids)
                return self._stage2_loss(self.head_(x), self.head_(xr), w)[0].item()

            s2 = self._run_stage(2, fit_rows.size * n_angles, int(self.stage2_batch_size), float(self.stage2_lr),
                                 loss_of_rows, heldout, rng)
        self.fit_info_ = {"device": self.device_, "train_images_used": int(subset.size),
                          "train_images_given": int(n_all), "n_fit": int(fit_rows.size),
                          "n_heldout": int(val_rows.size), "angles": list(ANGLES), "stages_run": [1, 2],
                          "convergence_stage1": s1, "convergence": s2}

    @torch.no_grad()
    def heldout_objective(self, features: Any = None, tags: Any = None, images: Any = None) -> float:
        """Stage 2's objective (lower is better) on these images and their rotated copies, every angle."""
        if images is None or len(images) == 0:
            raise DataError(f"{self.name}: heldout_objective needs images")
        dev = torch.device(self.device_)
        pos = np.arange(len(images))
        feats = list(self._backbone_features(images, pos, dev))
        orig = torch.cat([feats[ANGLES.index(0.0)]] * len(ANGLES))
        rot = torch.cat(feats)
        w = torch.tensor([rotation_weight(a) for a in ANGLES], device=dev).repeat_interleave(len(images))
        self.head_.eval()
        return self._stage2_loss(self.head_(orig), self.head_(rot), w)[0].item()

    @torch.no_grad()
    def _encode(self, features: np.ndarray | None, **inputs: Any) -> np.ndarray:
        images = inputs["images"]
        dev = torch.device(self.device_)
        self.head_.eval()
        codes = np.empty((len(images), self.bits), dtype=np.uint8)
        for pos, x in images.batches(64):
            codes[pos] = (self.head_(self.backbone_(x.to(dev))) > 0.5).cpu().numpy()
        return codes
