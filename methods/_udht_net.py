"""The network, the losses and the training loop shared by UDHT and the tag-binary baseline.

Gattupalli & Li, *Unsupervised Deep Image Hashing through Tag Embeddings*
(UDHT). Section 3.3: AlexNet to FC2, then FC3 (256 units), and on top of it two
lateral heads, H1 (b units, sigmoid: the hash) and H2 (d units, tanh: the
tag-vector regressor), new layers glorot-normal initialised. Section 3.4: the
losses L1 (pairwise similarity), L2 (mini-batch hinge), L3 (quantisation);
section 3.5: L4 (contrastive, for the tag-binary baseline). Section 4.2: SGD
with momentum 0.9, learning rate 1e-3 for FC3/H1/H2 and 1e-4 for the
pre-trained layers.

Every pairwise loss is computed on the whole k x k mini-batch at once
(O(k^2 b) or O(k^2 d) memory and time), never in a Python loop.

``reduction`` (the paper writes plain sums; the authors' public Keras code of
the follow-up WDHT averages, Keras' default): ``"mean"`` divides each loss by
its number of terms -- L1, L2 and L4 by the number of valid ordered pairs
i != j, L3 by the batch size -- so that the learning rates do not depend on
the batch size; ``"sum"`` is the paper's formula as printed. The diagonal
i = j, which the paper's double sums include, adds exactly zero to L1 and L4
(D_ii = 0 and cos(w_i, w_i) = 1) and is excluded from L2 by its j != n.

The two reductions do not weigh the losses alike. The pairwise sums (L1, L2,
L4) have k(k - 1) terms, the quantisation sum (L3) k, so dividing each by its
count moves L3 up against the others by a factor of about k - 1 relative to
the printed sums: at the default batch of k = 50, L3 weighs about 49 times
more under ``"mean"`` than under the paper's ``"sum"`` at the same lambdas.
The shipped defaults (``reduction="mean"``, lambda1 = lambda3 = 1 and the
selected lambda2) are therefore not the paper's weighting, whatever the
lambdas; ``udht@paper`` (``reduction="sum"``) is.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import torch
from torch import nn

from hashbench import ConfigError, DataError, Hasher
from hashbench.features import resolve_device
from hashbench.validation import check_tags

from ._convergence import EarlyStopping, check_convergence_params, holdout_split

REDUCTIONS = ("mean", "sum")
#: what the end-to-end modes fine-tune: the backbone's top on its frozen trunk's cached outputs, or all of it
FINETUNE = ("top", "all")


# ------------------------------------------------------------------------ network
class HashHead(nn.Module):
    """FC3 -> (H1: sigmoid hash, H2: tanh tag-vector regressor) on top of FC2 (section 3.3).

    FC3 is followed by a ReLU: the paper does not say, the authors' public
    code (WDHT, Keras) has one, and a linear FC3 would make FC3-H1 a single
    linear map. ``h2_dim=None`` drops H2 (the tag-binary baseline, section 3.5).
    All three layers: glorot-normal weights (``xavier_normal_``), zero biases.
    """

    def __init__(self, in_dim: int, bits: int, h2_dim: int | None, hidden: int = 256) -> None:
        super().__init__()
        # constant (not learned) standardisation of the FC2 input, set at fit time (``feature_norm``)
        self.register_buffer("input_mean", torch.zeros(in_dim))
        self.register_buffer("input_scale", torch.ones(()))
        self.fc3 = nn.Linear(in_dim, hidden)
        self.h1 = nn.Linear(hidden, bits)
        self.h2 = nn.Linear(hidden, h2_dim) if h2_dim else None
        for layer in (self.fc3, self.h1, self.h2):
            if layer is not None:
                nn.init.xavier_normal_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(h1 in (0, 1), h2 in (-1, 1) or None, the H1 logits)."""
        z = torch.relu(self.fc3((x - self.input_mean) * self.input_scale))
        logits = self.h1(z)
        h2 = torch.tanh(self.h2(z)) if self.h2 is not None else None
        return torch.sigmoid(logits), h2, logits


# ------------------------------------------------------------------------- losses
def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ConfigError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _pair_mask(valid: torch.Tensor) -> torch.Tensor:
    """Ordered pairs (i, j), i != j, of items that both have a tag vector."""
    k = valid.shape[0]
    eye = torch.eye(k, dtype=torch.bool, device=valid.device)
    return valid[:, None] & valid[None, :] & ~eye


def _reduce(terms: torch.Tensor, mask: torch.Tensor, reduction: str) -> torch.Tensor:
    total = (terms * mask).sum()
    if reduction == "sum":
        return total
    return total / mask.sum().clamp_min(1)  # no valid pair: 0, never NaN


def normalized_sq_distances(h: torch.Tensor) -> torch.Tensor:
    """D_ij = (1/b) (h_i - h_j)^T (h_i - h_j) for every pair of rows (exact, differentiable at 0)."""
    diff = h[:, None, :] - h[None, :, :]
    return diff.pow(2).sum(-1) / h.shape[1]


def pairwise_similarity_loss(h1: torch.Tensor, w: torch.Tensor, valid: torch.Tensor,
                             reduction: str = "mean", target_scale: float = 0.5) -> torch.Tensor:
    """L1 (section 3.4.1): sum_ij [ D_ij - 1/2 (1 - cos(w_i, w_j)) ]^2, pairs without w masked out.

    ``target_scale`` is the 1/2 of the printed formula; the authors' Keras code
    regresses D on the plain cosine distance 1 - cos (scipy's ``cdist(..., 'cosine')``), i.e. 1.
    """
    _check_reduction(reduction)
    d = normalized_sq_distances(h1)
    wn = w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)
    target = float(target_scale) * (1.0 - wn @ wn.T)
    return _reduce((d - target).pow(2), _pair_mask(valid), reduction)


def hinge_loss(h2: torch.Tensor, w: torch.Tensor, valid: torch.Tensor, margin: float,
               reduction: str = "mean") -> torch.Tensor:
    """L2 (section 3.4.2): sum_n sum_{j != n} max(0, margin + w_j . h2_n - w_n . h2_n).

    Items without a tag vector take part neither as anchor n nor as negative j.
    """
    _check_reduction(reduction)
    s = h2 @ w.T  # s[n, j] = w_j . h2_n
    terms = torch.relu(margin + s - s.diagonal()[:, None])
    return _reduce(terms, _pair_mask(valid), reduction)


def quantization_loss(h1: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """L3 (section 3.4.3): -sum_n (1/b) (h_n - 0.5)^T (h_n - 0.5). Negative: minimising it pushes h away from 0.5."""
    _check_reduction(reduction)
    per_item = (h1 - 0.5).pow(2).sum(1) / h1.shape[1]
    return -(per_item.sum() if reduction == "sum" else per_item.mean())


def contrastive_loss(h1: torch.Tensor, similar: torch.Tensor, valid: torch.Tensor, margin: float,
                     reduction: str = "mean", similar_power: int = 1) -> tuple[torch.Tensor, float]:
    """L4 (section 3.5): sum_ij S (1 - beta) D + (1 - S) beta max(0, margin - D)^2, and beta.

    beta is the fraction of similar pairs among the mini-batch's valid ordered
    pairs i != j (a constant of the batch, no gradient). Pairs involving an
    item without tags are masked out (no tag says nothing about similarity).
    ``similar_power``: D as printed (1), or D^2 as in the authors' Keras
    ``contrastive`` (customLossFunctions.py of Vijetha1/WDHT) (2).
    """
    _check_reduction(reduction)
    mask = _pair_mask(valid)
    s = similar.to(h1.dtype)
    n_pairs = mask.sum()
    beta = float((s * mask).sum() / n_pairs) if n_pairs > 0 else 0.0
    d = normalized_sq_distances(h1)
    terms = s * (1.0 - beta) * d.pow(int(similar_power)) + (1.0 - s) * beta * torch.relu(margin - d).pow(2)
    return _reduce(terms, mask, reduction), beta


# ----------------------------------------------------------------- the estimator
class TagHashingBase(Hasher):
    """Common machinery: parameter checks, the seeded SGD loop, history, encoding.

    Subclasses set ``end_to_end`` and ``uses_h2``, and implement
    ``_prepare_targets(tags)`` (returns what ``_batch_loss`` needs) and
    ``_batch_loss(h1, h2, positions)`` (returns the total loss and a dict of
    its components as floats).
    """

    deep = True
    end_to_end: ClassVar[bool] = False
    uses_h2: ClassVar[bool] = True
    #: the loss components recorded per epoch (history_) and shown in the progress bar
    components: ClassVar[tuple[str, ...]] = ()

    # ---------------------------------------------------------------- checks
    def _check_params(self) -> None:
        who = self.name or type(self).__name__

        def pos_int(name: str, zero_ok: bool = False) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if zero_ok else 1):
                raise ConfigError(f"{who}: {name} must be a {'non-negative' if zero_ok else 'positive'} integer, got {v!r}")

        def pos_float(name: str, zero_ok: bool = False) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v) \
                    or v < 0 or (v == 0 and not zero_ok):
                raise ConfigError(f"{who}: {name} must be a {'non-negative' if zero_ok else 'positive'} number, got {v!r}")

        check_convergence_params(who, self.max_epochs, self.patience, self.min_delta)
        v = self.val_fraction
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not 0 <= v < 1:
            raise ConfigError(f"{who}: val_fraction must be in [0, 1), got {v!r}")
        pos_int("batch_size")
        if self.batch_size < 2:
            raise ConfigError(f"{who}: batch_size must be at least 2 (the losses compare pairs), got {self.batch_size}")
        for name in ("lr", "momentum", "weight_decay"):
            pos_float(name, zero_ok=name != "lr")
        if self.momentum >= 1:
            raise ConfigError(f"{who}: momentum must be in [0, 1), got {self.momentum}")
        if self.end_to_end:
            pos_float("backbone_lr", zero_ok=True)
            pos_int("warmup_epochs", zero_ok=True)
            if self.max_train_images is not None:
                pos_int("max_train_images")
            if self.finetune not in FINETUNE:
                raise ConfigError(f"{who}: finetune must be one of {FINETUNE}, got {self.finetune!r}")
        if self.feature_norm not in ("standardize", "none"):
            raise ConfigError(f"{who}: feature_norm must be 'standardize' or 'none', got {self.feature_norm!r}")
        if self.reduction not in REDUCTIONS:
            raise ConfigError(f"{who}: reduction must be one of {REDUCTIONS}, got {self.reduction!r}")
        if not isinstance(self.device, str):
            raise ConfigError(f"{who}: device must be a string ('auto', 'cpu', 'cuda', ...), got {self.device!r}")

    # -------------------------------------------------------------- training
    def _prepare_targets(self, tags: list[list[str]]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _batch_loss(self, h1: torch.Tensor, h2: torch.Tensor | None,
                    positions: np.ndarray) -> tuple[torch.Tensor, dict[str, float]]:  # pragma: no cover
        raise NotImplementedError

    def _h2_dim(self) -> int | None:
        return None

    def _build(self, in_dim: int) -> None:
        """The new layers, initialised from ``seed`` (the same start for frozen and end-to-end)."""
        torch.manual_seed(int(self.seed))
        self.head_ = HashHead(in_dim, self.bits, self._h2_dim() if self.uses_h2 else None)

    def _set_feature_norm(self, feats: torch.Tensor | np.ndarray) -> None:
        """``feature_norm="standardize"``: FC3 sees (x - mean) / rms, the training FC2
        features' mean and the root mean square of the centred values (one scalar),
        both from (up to 20,000 of) the training items; ``"none"``: x as it is."""
        if self.feature_norm == "none":
            self.fit_info_["feature_norm"] = {"kind": "none"}
            return
        x = torch.as_tensor(np.asarray(feats[:20000]) if isinstance(feats, np.ndarray) else feats[:20000]).double()
        mean = x.mean(0)
        rms = float((x - mean).pow(2).mean().sqrt())
        scale = 1.0 / rms if rms > 0 else 1.0
        self.head_.input_mean.copy_(mean.to(self.head_.input_mean))
        self.head_.input_scale.fill_(scale)
        self.fit_info_["feature_norm"] = {"kind": "standardize", "rms": rms, "mean_norm": float(mean.norm())}

    def _optimizer(self, backbone: nn.Module | None) -> torch.optim.Optimizer:
        """SGD with momentum; two parameter groups: new layers at ``lr``, pre-trained ones at ``backbone_lr``."""
        groups = [{"params": list(self.head_.parameters()), "lr": float(self.lr), "name": "new"}]
        if backbone is not None:
            groups.append({"params": [p for p in backbone.parameters() if p.requires_grad],
                           "lr": float(self.backbone_lr), "name": "pretrained"})
        return torch.optim.SGD(groups, lr=float(self.lr), momentum=float(self.momentum),
                               weight_decay=float(self.weight_decay))

    def _epochs(self, n: int, max_epochs: int, forward: Callable[[torch.Tensor, int], tuple[torch.Tensor, ...]],
                batches: Callable[[int, np.random.Generator], Iterator[tuple[np.ndarray, Any]]],
                optimizer: torch.optim.Optimizer, rng: np.random.Generator, phase: str,
                evaluate: Callable[[], float] | None, state: Callable[[], Any],
                initial: float | None = None) -> EarlyStopping:
        """Up to ``max_epochs`` epochs of mini-batch SGD over ``n`` items, stopped early on the held-out objective.

        After every epoch: each loss component's epoch mean goes to ``history_``
        and, when there are held-out items (``evaluate``), the held-out objective
        too (``history_["heldout"]``); training stops when it has not improved by
        more than ``min_delta`` for ``patience`` epochs, and the best epoch's
        ``state()`` is restored by the caller. ``initial``: the held-out value
        before the first epoch, which then counts as epoch 0 (the fine-tuning
        phase starts from a trained head: if no epoch beats it, it is kept).
        """
        from hashbench.progress import progress_bar

        stopper = EarlyStopping(int(max_epochs), int(self.patience), float(self.min_delta))
        if initial is not None and math.isfinite(initial):
            stopper.best_value, stopper.best_state = float(initial), copy.deepcopy(state())
        steps_per_epoch = math.ceil(n / self.batch_size)
        bar = progress_bar(max_epochs * steps_per_epoch, f"{self.name or type(self).__name__} {self.bits} bits {phase}",
                           "batch", leave=False)
        try:
            for epoch in range(int(max_epochs)):
                sums = dict.fromkeys(("total", *self.components), 0.0)
                count = 0
                for pos, x in batches(epoch, rng):
                    bar.update(1)
                    if len(pos) < 2:  # a trailing single item has no pair to learn from
                        continue
                    h1, h2 = forward(x, epoch)[:2]
                    loss, parts = self._batch_loss(h1, h2, pos)
                    if not torch.isfinite(loss):
                        raise DataError(f"{self.name}: the loss became {float(loss)} at epoch {epoch + 1} ({phase}); "
                                        "lower lr / backbone_lr")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    sums["total"] += loss.item()
                    for k, v in parts.items():
                        sums[k] += v
                    count += 1
                    bar.set_postfix({k: f"{v / count:.4f}" for k, v in sums.items()}, refresh=False)
                for k, v in sums.items():
                    self.history_.setdefault(k, []).append(v / max(count, 1))
                if self.end_to_end:  # which epochs fine-tuned the backbone (1) or only warmed the head up (0)
                    self.history_.setdefault("end_to_end", []).append(0.0 if phase == "warmup" else 1.0)
                if evaluate is None:
                    stopper.epochs_run += 1
                    continue
                value = evaluate()
                self.history_.setdefault("heldout", []).append(value)
                if stopper.update(value, state()):
                    break
        finally:
            bar.close()
        if evaluate is None:
            stopper.best_epoch = stopper.epochs_run
            stopper.reason = (f"val_fraction=0: no held-out items, no early stopping; "
                              f"ran max_epochs={int(max_epochs)}")
        elif stopper.epochs_run == 0:
            stopper.reason = "max_epochs=0: no training"
        elif initial is not None and stopper.best_epoch == 0 and stopper.best_state is not None:
            stopper.reason += "; no epoch beat the starting point, which is kept"
        return stopper

    def _convergence_info(self, stopper: EarlyStopping, phase: str, offset: int, n_heldout: int) -> dict[str, Any]:
        """``stopper.summary()`` plus where the phase sits in ``history_`` and what was measured."""
        return {**stopper.summary(), "phase": phase, "history_offset": int(offset),
                "heldout_items": int(n_heldout), "heldout_objective": self.heldout_description}

    # ----------------------------------------------------- held-out objective
    #: what ``heldout_objective`` measures (recorded with the convergence summary)
    heldout_description: ClassVar[str] = ""

    def _targets_at(self, rows: np.ndarray) -> Any:  # pragma: no cover - abstract
        """The held-out targets of the training items at ``rows`` (prepared at fit time)."""
        raise NotImplementedError

    def _targets_for(self, tags: list[list[str]]) -> Any:  # pragma: no cover - abstract
        """The held-out targets of new items' tags, with what the fit learned (word vectors, idf)."""
        raise NotImplementedError

    def _objective(self, codes: torch.Tensor, targets: Any) -> float:  # pragma: no cover - abstract
        """The label-free objective of binary ``codes`` (m, b) against ``targets`` (lower is better)."""
        raise NotImplementedError

    def heldout_objective(self, features: Any = None, tags: Any = None, images: Any = None) -> float:
        """The method's own objective on held-out training items, on their binary codes (lower is better).

        See ``heldout_description``. ``tags`` are the held-out items' tags (used
        here only, never by ``encode``); features or images as for ``encode``.
        """
        codes = self.encode(features=features, images=images)
        tags = check_tags(tags, codes.shape[0], name=f"{self.name}: held-out tags")
        return self._objective(torch.from_numpy(codes), self._targets_for(tags))

    def _state(self, backbone: nn.Module | None = None) -> dict[str, Any]:
        st = {"head": self.head_.state_dict()}
        if backbone is not None:
            st["backbone"] = backbone.state_dict()
        return st

    def _fit(self, features: np.ndarray | None, **inputs: Any) -> None:
        self._check_params()
        self.device_ = resolve_device(self.device)
        dev = torch.device(self.device_)
        # Every torch random draw (initialisation, dropout) comes from ``seed``,
        # in a forked generator so that the caller's random state is untouched.
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(int(self.seed))
            self._fit_seeded(features, dev, **inputs)

    def _split(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(fit rows, held-out rows) of ``rows``: a seeded ``val_fraction`` of the training items given to fit."""
        a, b = holdout_split(len(rows), float(self.val_fraction), int(self.seed))
        self.fit_info_["heldout"] = {"val_fraction": float(self.val_fraction), "n_fit": int(a.size),
                                     "n_heldout": int(b.size)}
        return rows[a], rows[b]

    def _heldout_targets(self, held: np.ndarray) -> Any:
        """The held-out items' targets, refused up front when fewer than 2 can be scored."""
        if not held.size:
            return None
        targets = self._targets_at(held)
        k = int(np.asarray(targets[1]).sum())
        if k < 2:
            raise DataError(
                f"{self.name or type(self).__name__}: only {k} of the {held.size} held-out training items "
                f"(val_fraction={self.val_fraction}) have tags the objective can use; raise val_fraction, "
                "or set it to 0 (no early stopping)"
            )
        return targets

    def _fit_seeded(self, features: np.ndarray | None, dev: torch.device, **inputs: Any) -> None:
        tags: list[list[str]] = inputs["tags"]
        images = inputs.get("images")
        self.fit_info_ = {"device": self.device_}
        self.history_ = {}
        rng = np.random.default_rng(self.seed)
        if not self.end_to_end:
            feats = np.asarray(features, dtype=np.float32)
            fit_rows, held = self._split(np.arange(feats.shape[0]))
            # targets for every item, learned (word vectors, idf) from the fit rows only
            self._prepare_targets(tags, fit_rows)
            self._build(feats.shape[1])
            self._set_feature_norm(feats[fit_rows])
            self.head_.to(dev).train()
            opt = self._optimizer(None)
            n = fit_rows.size
            held_x = torch.from_numpy(feats[held]).to(dev)
            held_t = self._heldout_targets(held)

            def batches(epoch, rng):
                order = fit_rows[rng.permutation(n)]
                for s in range(0, n, self.batch_size):
                    pos = order[s: s + self.batch_size]
                    yield pos, torch.from_numpy(feats[pos]).to(dev)

            evaluate = (lambda: self._eval_head(held_x, held_t)) if held.size else None
            stopper = self._epochs(n, int(self.max_epochs), lambda x, e: self.head_(x), batches, opt, rng, "train",
                                   evaluate, self._state)
            self._restore(stopper, None)
            self.fit_info_["convergence"] = self._convergence_info(stopper, "train", 0, held.size)
            self.head_.eval()
            return
        # --- end to end: the backbone the cached features came from, fine-tuned (its top alone on the
        # frozen trunk's cached outputs, finetune="top"; or all of it, from the images)
        images = self._image_input(images)
        n_all = len(images)
        subset = np.arange(n_all)
        if self.max_train_images is not None and self.max_train_images < n_all:
            subset = np.sort(rng.choice(n_all, size=int(self.max_train_images), replace=False))
        self.fit_info_["train_images_given"] = int(n_all)
        # the held-out items come out of the images the fit may touch (max_train_images caps both)
        fit_rows, held = self._split(subset)
        n = fit_rows.size
        self.fit_info_["train_images_used"] = int(n)
        self._prepare_targets(tags, fit_rows)
        held_t = self._heldout_targets(held)
        backbone = images.build_backbone()
        self.fit_info_["finetune"] = self.finetune
        self.fit_info_["finetuned_parameters"] = int(sum(p.numel() for p in backbone.parameters()))
        self._build(int(getattr(backbone, "out_dim", 4096)))
        backbone.to(dev)
        self.head_.to(dev)
        # the initial backbone's FC2 outputs: for the feature standardisation and the head's warm-up
        feats = self._backbone_features(backbone, images, fit_rows if self.warmup_epochs else fit_rows[:512], dev)
        self._set_feature_norm(feats)
        warm = None
        if self.warmup_epochs:
            # FC3/H1/H2 first learn alone on these features, so that fine-tuning
            # starts from a working head (see the class doc).
            self.head_.train()
            opt = self._optimizer(None)
            held_f = self._backbone_features(backbone, images, held, dev) if held.size else None

            def warm_batches(epoch, rng):
                order = rng.permutation(n)
                for s in range(0, n, self.batch_size):
                    rows = order[s: s + self.batch_size]
                    yield fit_rows[rows], feats[torch.from_numpy(rows)]

            warm = self._epochs(n, int(self.warmup_epochs), lambda x, e: self.head_(x), warm_batches, opt, rng,
                                "warmup", (lambda: self._eval_head(held_f, held_t)) if held.size else None, self._state)
            self._restore(warm, None)
            del held_f
        del feats
        offset = len(self.history_.get("total", []))
        # AlexNet has no batch norm: train mode only switches on the dropout before FC1 and FC2
        self.head_.train()
        opt = self._optimizer(backbone)

        def image_batches(epoch, rng):
            order = fit_rows[rng.permutation(n)]
            # through the ImageInput's loader: DataLoader workers decode the next batches meanwhile (--workers)
            yield from images.loader([order[s: s + self.batch_size] for s in range(0, n, self.batch_size)])

        def evaluate() -> float:
            value = self._eval_images(backbone, images, held, held_t, dev)
            backbone.train(bool(self.dropout))
            self.head_.train()
            return value

        state = lambda: self._state(backbone)  # noqa: E731
        initial = evaluate() if held.size and self.max_epochs else None
        backbone.train(bool(self.dropout))
        stopper = self._epochs(n, int(self.max_epochs), lambda x, e: self.head_(backbone(x.to(dev))), image_batches,
                               opt, rng, "fine-tuning", evaluate if held.size else None, state, initial=initial)
        self._restore(stopper, backbone)
        info = self._convergence_info(stopper, "fine-tuning", offset, held.size)
        if initial is not None:
            info["initial_heldout"] = float(initial)
        if warm is not None:
            info["warmup"] = self._convergence_info(warm, "warmup", 0, held.size)
        self.fit_info_["convergence"] = info
        self.backbone_ = backbone.eval()
        self.head_.eval()

    def _image_input(self, images: Any) -> Any:
        """``images``, or with ``finetune="top"`` their frozen-trunk view (the trunk's cached outputs, and the
        top as the backbone to fine-tune: :meth:`hashbench.features.ImageInput.frozen_trunk`)."""
        if self.finetune == "all":
            return images
        if not hasattr(images, "frozen_trunk"):
            raise ConfigError(f"{self.name}: finetune='top' needs an ImageInput (it reads the frozen trunk's "
                              f"cached outputs), got {type(images).__name__}; or set finetune='all'")
        return images.frozen_trunk(device=self.device_)

    def _restore(self, stopper: EarlyStopping, backbone: nn.Module | None) -> None:
        """Back to the best epoch's weights (when there was a held-out objective and a best epoch)."""
        st = stopper.best_state
        if st is None:
            return
        self.head_.load_state_dict(st["head"])
        if backbone is not None and "backbone" in st:
            backbone.load_state_dict(st["backbone"])

    @torch.no_grad()
    def _eval_head(self, x: torch.Tensor, targets: Any) -> float:
        """The held-out objective of the head's binary codes for FC2 features ``x``."""
        was = self.head_.training
        self.head_.eval()
        codes = torch.cat([self.head_(x[s: s + 4096])[2] > 0 for s in range(0, x.shape[0], 4096)])
        self.head_.train(was)
        return self._objective(codes.cpu(), targets)

    @torch.no_grad()
    def _eval_images(self, backbone: nn.Module, images: Any, rows: np.ndarray, targets: Any,
                     dev: torch.device) -> float:
        """The held-out objective of the binary codes of the training images at ``rows`` (eval mode)."""
        self.head_.eval()
        feats = self._backbone_features(backbone, images, rows, dev)
        return self._eval_head(feats, targets)

    @torch.no_grad()
    def _backbone_features(self, backbone: nn.Module, images: Any, positions: np.ndarray,
                           dev: torch.device) -> torch.Tensor:
        """FC2 outputs (eval mode) of the training images at ``positions``."""
        backbone.eval()
        out = torch.empty((len(positions), int(getattr(backbone, "out_dim", 4096))), device=dev)
        bs = max(self.batch_size, 64)
        batches = [positions[s: s + bs] for s in range(0, len(positions), bs)]
        for s, (_, x) in zip(range(0, len(positions), bs), images.loader(batches)):
            out[s: s + bs] = backbone(x.to(dev))
        return out
    # -------------------------------------------------------------- encoding
    @torch.no_grad()
    def _encode(self, features: np.ndarray | None, **inputs: Any) -> np.ndarray:
        """b = (sgn(h1 - 0.5) + 1) / 2, computed as [H1 logit > 0] (the same, without sigmoid rounding)."""
        dev = torch.device(self.device_)
        self.head_.eval()
        if not self.end_to_end:
            out = []
            for s in range(0, features.shape[0], 4096):
                x = torch.from_numpy(np.asarray(features[s: s + 4096], dtype=np.float32)).to(dev)
                out.append((self.head_(x)[2] > 0).cpu().numpy())
            return np.concatenate(out).astype(np.uint8)
        images = self._image_input(inputs["images"])
        self.backbone_.eval()
        codes = np.empty((len(images), self.bits), dtype=np.uint8)
        for pos, x in images.batches(max(self.batch_size, 64)):
            codes[pos] = (self.head_(self.backbone_(x.to(dev)))[2] > 0).cpu().numpy()
        return codes
