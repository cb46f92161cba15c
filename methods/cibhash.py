"""CIBHash (Qiu, Su, Ou, Yu & Chen, IJCAI 2021): contrastive hashing of two augmented views."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hashbench import ConfigError, DataError, Hasher, NotFittedError, register_method
from hashbench.features import resolve_device

from . import AFTER_UDHT
from ._convergence import EarlyStopping, holdout_split
from ._cosine_head import dropout, fixed_dropout, sign_ste
from ._deep import check_common, check_int, check_number, seeded, train_early_stopped
from ._views import augment, denormalise, normalise
from ._selected import record_defaults

PAPER = ("Qiu, Su, Ou, Yu & Chen, Unsupervised Hashing with Contrastive Information Bottleneck, IJCAI 2021 "
         "(arXiv:2105.06138)")


def nt_xent(z_i: torch.Tensor, z_j: torch.Tensor, temperature: float) -> torch.Tensor:
    """The official ``NtXentLoss``: for each of the 2N codes, cross-entropy of its view partner against the
    other 2N - 2 codes of the batch, on cosine similarity / temperature; summed, then divided by 2N.

    The code builds [positive, negatives] logits with target 0; here the same cross-entropy is taken
    over every other code with the partner as target (the same value)."""
    n = z_i.shape[0]
    z = torch.cat((z_i, z_j), dim=0)
    unit = z / z.norm(dim=1, keepdim=True).clamp_min(1e-8)
    sim = unit @ unit.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat((torch.arange(n, 2 * n), torch.arange(0, n))).to(z.device)
    return F.cross_entropy(sim, target, reduction="sum") / (2 * n)


def bernoulli_kl(prob: torch.Tensor, prob_v: torch.Tensor) -> torch.Tensor:
    """The official ``compute_kl``: KL(Bern(prob) || Bern(prob_v)) summed over bits, averaged over items, with
    ``prob_v`` detached (a fixed target) and 1e-8 inside the logs."""
    prob_v = prob_v.detach()
    kl = prob * (torch.log(prob + 1e-8) - torch.log(prob_v + 1e-8)) \
        + (1 - prob) * (torch.log(1 - prob + 1e-8) - torch.log(1 - prob_v + 1e-8))
    return kl.sum(dim=1).mean()


def cibhash_loss(logits_i: torch.Tensor, logits_j: torch.Tensor, temperature: float, weight: float
                 ) -> tuple[torch.Tensor, dict[str, float]]:
    """CIBHash's loss on the encoder outputs of two views: NT-Xent on the straight-through codes
    z = sign(sigmoid(logits) - 0.5), plus ``weight`` x the symmetric Bernoulli KL of the bit probabilities."""
    prob_i, prob_j = torch.sigmoid(logits_i), torch.sigmoid(logits_j)
    z_i, z_j = sign_ste(prob_i - 0.5), sign_ste(prob_j - 0.5)
    kl = (bernoulli_kl(prob_i, prob_j) + bernoulli_kl(prob_j, prob_i)) / 2
    contra = nt_xent(z_i, z_j, temperature)
    loss = contra + weight * kl
    return loss, {"contra_loss": contra.item(), "kl_loss": kl.item(), "total": loss.item()}


@register_method("cibhash")
@record_defaults("cibhash")
class CIBHash(Hasher):
    """CIBHash: two augmented views of each training image through the frozen backbone, an MLP encoder to
    bit probabilities, and a contrastive loss on the views' binary codes.

    Paper: Qiu, Su, Ou, Yu & Chen, *Unsupervised Hashing with Contrastive Information Bottleneck*, IJCAI
    2021 (arXiv:2105.06138). Its text was not read here beyond its abstract: the information-bottleneck
    reading below is the abstract's; no equation numbers are given. Official code: ``zexuanqiu/CIBHash``,
    ``model/CIBHash.py`` (with ``model/base_model.py`` and ``utils/data.py``), commit
    4c896ee1bab8e8a6060b7343aad06d483658ff78 (read and run in a scratch folder, never copied; the training
    step is checked against ours in ``tests/test_modern_fidelity.py`` on figures recorded from it,
    ``tests/data/fidelity_cibhash.json``).

    The method, as the code has it (N images a batch, two views v, v' of each, f(.) the frozen backbone
    with the code's final dropout, K bits):

    * encoder: p = sigmoid(W2 ReLU(W1 f(v) + c1) + c2), 4096 -> 1024 -> K in the code (here the backbone's
      dimension -> ``hidden`` = 1024 -> K);
    * codes z = sign(p - 0.5), the gradient passed straight through (the code's ``hash`` Function; the
      paper's probabilistic binary layer is trained with this estimator, recalled);
    * L_contra: NT-Xent over the 2N codes of the batch, cosine similarity, ``temperature`` 0.3
      (:func:`nt_xent`);
    * L_kl: (KL(p || p'.detach()) + KL(p' || p.detach())) / 2, Bernoulli KLs summed over bits, averaged
      over items (:func:`bernoulli_kl`; the abstract's I(B, V) term);
    * L = L_contra + ``weight`` L_kl, ``weight`` = 0.001;
    * Adam on the encoder only, ``lr`` 1e-3, batch 64 (the argparser's defaults);
    * encoding: z = sign(p - 0.5) of the un-augmented image, i.e. [logit > 0] of its backbone features:
      the cached features (the same backbone, weights and preprocessing), so ``encode`` reads features.

    Each term follows the code: the fidelity test runs ours on the seeded pair of view features the
    official ``forward`` was run on and compares L_contra, L_kl, L, the codes, the gradients of the four
    encoder tensors and their changes after three Adam steps.

    Augmentations (``methods/_views.py``): the code's training transform -- RandomResizedCrop(scale 0.5-1),
    flip, colour jitter (0.4, 0.4, 0.4, 0.1) with p 0.7, grayscale p 0.2, 3 x 3 Gaussian blur with p 0.5
    -- on the backbone's input side S instead of 224: crops from the preprocessed S x S image rather than
    the original photograph, the blur's sigma scaled by S / 224, no 8-bit rounding between steps, each
    image its own draws from a seeded generator.

    Departures, and why:

    * **backbone**: the run's (VGG-16 fc7 with ``--backbone vgg16``, the code's); frozen and in eval mode
      (batch norm of other backbones must not learn), with the code's last ``Dropout(0.5)`` (active under
      ``self.train()``) applied to the views' features (``feature_dropout``); the fc6 dropout before it is
      not redone;
    * **centring** (``center=True``; the code feeds raw fc7): the fitting images' mean feature (of their
      cached, un-augmented features) is subtracted from every encoder input (before the dropout), views
      and encoding alike.
      For the encoder alone this is a re-parametrisation of its first bias, but not for the optimiser: on
      the embedded default's features (pairwise cosines 0.97 +- 0.01) the raw recipe collapsed every image
      to one code within two epochs (held-out loss log(2N - 1), the value for identical codes), the
      centred one reached mAP@5000 0.634 at 32 bits after three;
    * **training images**: a seeded subset of ``max_train_images`` = 1,000 training images (None: all,
      the code's setting; ``cibhash@authors-code`` has both): every epoch passes two views of each
      through the backbone, the whole cost of this method on a CPU;
    * **stopping and selection**: the code trains up to 60 epochs (at least 80 at 16 bits), measures mAP@1000
      every 20 epochs on a *labelled* validation split (5,000 CIFAR-10 test images against the
      database), keeps the best and stops after 6 bad validations; it also draws random hyper-parameters
      from its grid when ``num_runs`` > 1, chosen on the same validation mAP. Here nothing is chosen on
      labels: ``val_fraction`` of the images is held out, each gets two fixed seeded views once (and fixed
      dropout masks), and the loss on them after every epoch stops training (``patience`` epochs without a ``min_delta`` gain, at
      most ``max_epochs`` = 60) and picks the epoch kept. The code's grid is our ``search_space``, for the
      same selection budget as every method.

    Cost: not in ``--methods all`` (``in_default_run = False``): every epoch runs the backbone on two
    views of every training image; measured on the embedded default (loaded 2-core machine; see
    ``docs/methods/cibhash.md``), far beyond the main job's budget. Name it to run it.
    """

    display_name = "CIBHash"
    summary = ("CIBHash: NT-Xent on the binary codes of two augmented views through the frozen backbone, plus a "
               "KL term between the views' bit probabilities")
    paper = PAPER
    deep = True
    requires = frozenset({"features", "images"})
    in_default_run = False
    not_in_default_run_because = ("two augmented views of every training image through the backbone each epoch: "
                                  "5-11 minutes per cell on 2 CPU cores, beyond the main job's budget")
    # the code's own grid (model/base_model.py get_general_hparams_grid, model/CIBHash.py get_hparams_grid),
    # and our centring
    search_space = {"temperature": [0.2, 0.3, 0.4], "weight": [0.001, 0.005, 0.0005, 0.0001, 0.00005, 0.00001],
                    "lr": [0.003, 0.001, 0.0003, 0.0001], "batch_size": [64, 128, 256], "center": [False, True]}
    # the code's defaults (the shipped ones come from the shared selection, over the code's own grid)
    configurations = {"authors-code": {"max_train_images": None, "center": False, "temperature": 0.3,
                                       "weight": 0.001, "lr": 1e-3, "batch_size": 64}}
    row_group = AFTER_UDHT

    def __init__(
        self,
        bits: int = 32,
        seed: int = 0,
        temperature: float = 0.3,
        weight: float = 0.001,
        lr: float = 1e-3,
        batch_size: int = 64,
        hidden: int = 1024,
        feature_dropout: float = 0.5,
        center: bool = True,
        max_train_images: int | None = 1000,
        max_epochs: int = 60,
        patience: int = 5,
        min_delta: float = 1e-4,
        val_fraction: float = 0.1,
        device: str = "auto",
    ) -> None:
        super().__init__(bits=bits, seed=seed)
        self.temperature = temperature
        self.weight = weight
        self.lr = lr
        self.batch_size = batch_size
        self.hidden = hidden
        self.feature_dropout = feature_dropout
        self.center = center
        self.max_train_images = max_train_images
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_delta = min_delta
        self.val_fraction = val_fraction
        self.device = device

    # ---------------------------------------------------------------- checks
    def _check(self) -> None:
        who = self.name or type(self).__name__
        check_number(who, "temperature", self.temperature, zero_ok=False)
        check_number(who, "weight", self.weight)
        check_number(who, "lr", self.lr, zero_ok=False)
        check_number(who, "feature_dropout", self.feature_dropout, below=1.0)
        check_int(who, "batch_size", self.batch_size, minimum=2)
        check_int(who, "hidden", self.hidden, minimum=1)
        if not isinstance(self.center, (bool, np.bool_)):
            raise ConfigError(f"{who}: center must be true or false, got {self.center!r}")
        if self.max_train_images is not None:
            check_int(who, "max_train_images", self.max_train_images, minimum=4)
        check_common(who, self)

    # ----------------------------------------------------------------- model
    def _build(self, in_dim: int, dev: torch.device) -> None:
        self.encoder_ = nn.Sequential(nn.Linear(in_dim, int(self.hidden)), nn.ReLU(),
                                      nn.Linear(int(self.hidden), int(self.bits))).to(dev)

    def optimizer(self, params: Any) -> torch.optim.Optimizer:
        """The code's ``configure_optimizers``: Adam on the encoder, ``lr``."""
        return torch.optim.Adam(params, lr=float(self.lr))

    def loss(self, f_i: torch.Tensor, f_j: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of a batch from the two views' backbone features (as the encoder sees them)."""
        return cibhash_loss(self.encoder_(f_i), self.encoder_(f_j), float(self.temperature), float(self.weight))

    # ------------------------------------------------------------- training
    @torch.no_grad()
    def _read(self, images: Any, positions: np.ndarray) -> torch.Tensor:
        """The preprocessed images at ``positions`` as RGB uint8 tensors in memory (read once per fit)."""
        bs = 64
        out = []
        for _, x in images.loader([positions[s: s + bs] for s in range(0, positions.size, bs)]):
            out.append(torch.round(denormalise(x.float(), self._stats(images)) * 255).to(torch.uint8))
        return torch.cat(out)

    @staticmethod
    def _stats(images: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The backbone's input normalisation (mean, std), which the images come in and the views go out in."""
        d = images.spec.definition
        return tuple(d.mean), tuple(d.std)

    @torch.no_grad()
    def _view_features(self, backbone: nn.Module, rgb8: torch.Tensor, g: torch.Generator, dev: torch.device,
                       stats: tuple[tuple[float, ...], tuple[float, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Backbone features of two augmented views of each image (one forward pass for both)."""
        rgb = rgb8.float() / 255.0
        views = normalise(torch.cat((augment(rgb, g), augment(rgb, g))), stats).to(dev)
        f = backbone(views).float()
        return f[: rgb.shape[0]], f[rgb.shape[0]:]

    def _fit(self, features: np.ndarray | None, **inputs: Any) -> None:
        self._check()
        images = inputs["images"]
        self.device_ = resolve_device(self.device)
        dev = torch.device(self.device_)
        n_all = len(images)
        rng = np.random.default_rng([int(self.seed), 21])
        subset = np.arange(n_all)
        if self.max_train_images is not None and self.max_train_images < n_all:
            subset = np.sort(rng.choice(n_all, size=int(self.max_train_images), replace=False))
        fit_rows, val_rows = holdout_split(subset.size, float(self.val_fraction), int(self.seed))
        self.fit_info_ = {"device": self.device_, "train_images_used": int(subset.size),
                          "train_images_given": int(n_all),
                          "heldout": {"fraction": float(self.val_fraction), "n_fit": int(fit_rows.size),
                                      "n_heldout": int(val_rows.size)}}
        self.history_: dict[str, list[float]] = {}
        backbone = images.build_backbone().to(dev).eval()
        for p in backbone.parameters():
            p.requires_grad_(False)
        rgb_fit = self._read(images, subset[fit_rows]).to(dev)
        dim = int(np.asarray(features).shape[1]) if features is not None else int(getattr(backbone, "out_dim"))
        # ``center`` (ours; the code's inputs are raw): the fitting images' mean feature leaves every input
        fit_feats = np.asarray(features, dtype=np.float64)[subset[fit_rows]] if self.center else None
        self.mean_ = (torch.from_numpy(fit_feats.mean(0)).float() if self.center else torch.zeros(dim)).to(dev)
        self.fit_info_["centred"] = bool(self.center)
        g_val = torch.Generator().manual_seed(int(self.seed) * 1000 + 7)
        stats = self._stats(images)
        val = self._view_features(backbone, self._read(images, subset[val_rows]), g_val, dev, stats) \
            if val_rows.size else None
        g = torch.Generator().manual_seed(int(self.seed) * 1000 + 1)
        bs, n = int(self.batch_size), int(fit_rows.size)
        p = float(self.feature_dropout)
        with seeded(int(self.seed), dev):
            self._build(dim, dev)
            opt = self.optimizer(self.encoder_.parameters())
            last: dict[str, float] = {}

            def epoch(e: int) -> dict[str, float]:
                self.encoder_.train()
                order = rng.permutation(n)
                sums: dict[str, float] = {}
                steps = 0
                for s in range(0, n, bs):
                    rows = order[s: s + bs]
                    if rows.size < 2:
                        continue
                    f_i, f_j = self._view_features(backbone, rgb_fit[torch.from_numpy(rows).to(dev)], g, dev, stats)
                    f_i, f_j = dropout(f_i - self.mean_, p), dropout(f_j - self.mean_, p)
                    loss, parts = self.loss(f_i, f_j)
                    if not torch.isfinite(loss):
                        raise DataError(f"{self.name}: the loss became {loss.item()} in epoch {e + 1}; lower lr")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    for k, v in parts.items():
                        sums[k] = sums.get(k, 0.0) + v
                    steps += 1
                last.clear()
                last.update({k: v / max(steps, 1) for k, v in sums.items()})
                return dict(last)

            def heldout() -> float:
                if val is None:  # val_fraction = 0: the epoch's training loss stands in (recorded as such)
                    return last.get("total", float("inf"))
                return self._objective(*val)

            stopper = EarlyStopping(int(self.max_epochs), int(self.patience), float(self.min_delta))
            train_early_stopped(stopper, epoch, heldout, self.encoder_.state_dict, self.encoder_.load_state_dict,
                                self.history_)
        self.encoder_.eval()
        conv = stopper.summary()
        conv["criterion"] = "held-out objective" if val is not None else "training objective (val_fraction=0)"
        self.fit_info_["convergence"] = conv

    @torch.no_grad()
    def _objective(self, f_i: torch.Tensor, f_j: torch.Tensor) -> float:
        """The loss on fixed views, in batches of ``batch_size`` in a fixed order, item-weighted, with the training
        dropout (its masks fixed by the seed, as the views are)."""
        self.encoder_.eval()
        p = float(self.feature_dropout)
        f_i = fixed_dropout(f_i - self.mean_, p, int(self.seed))
        f_j = fixed_dropout(f_j - self.mean_, p, int(self.seed) + 1)
        total, count = 0.0, 0
        n, bs = f_i.shape[0], int(self.batch_size)
        for s in range(0, n, bs):
            if min(bs, n - s) < 2:
                continue
            loss, _ = self.loss(f_i[s: s + bs], f_j[s: s + bs])
            total += float(loss) * min(bs, n - s)
            count += min(bs, n - s)
        return total / count if count else float("nan")

    def heldout_objective(self, features: Any = None, tags: Any = None, images: Any = None) -> float:
        """The loss on two fixed seeded views of each held-out image (lower is better): model selection's
        label-free criterion."""
        if not self.is_fitted:
            raise NotFittedError(f"{self.name}: heldout_objective before fit")
        dev = next(self.encoder_.parameters()).device
        backbone = images.build_backbone().to(dev).eval()
        g = torch.Generator().manual_seed(int(self.seed) * 1000 + 7)
        return self._objective(*self._view_features(backbone, self._read(images, np.arange(len(images))), g, dev,
                                                        self._stats(images)))

    # -------------------------------------------------------------- encoding
    @torch.no_grad()
    def _encode(self, features: np.ndarray | None, **inputs: Any) -> np.ndarray:
        """z = sign(sigmoid(logit) - 0.5) of the un-augmented image's features, stored as [logit > 0]."""
        self.encoder_.eval()
        dev = next(self.encoder_.parameters()).device
        out = []
        for s in range(0, features.shape[0], 8192):
            x = torch.from_numpy(np.array(features[s: s + 8192], dtype=np.float32)).to(dev)
            out.append((self.encoder_(x - self.mean_) > 0).cpu().numpy())
        return np.concatenate(out).astype(np.uint8)
