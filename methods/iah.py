"""IAH: instance-aware hashing for multi-label images -- a *supervised* reference.

Lai, Pan, Shu, Wei & Yan, *Instance-Aware Hashing for Multi-Label Image
Retrieval*, IEEE Transactions on Image Processing 25(6), 2016
(arXiv:1603.03234). The full text is not available to us
(``shared/papers/iah.md``); no formula below is quoted from the paper, so no
equation numbers can be cited. Piece by piece, where each part comes from:

================================  ==============================================================
piece                             source
================================  ==============================================================
supervised, multi-label           the paper (arXiv abstract: "deep-networks-based hashing for
                                  multi-label images"; supervised: our reading of its baselines)
representation in C groups,       the paper (arXiv abstract, verbatim: "instance-aware image
one per category                  representations ... which are organized in multiple groups,
                                  with each group containing the features for one category")
semantic hashing: one code per    the paper (arXiv abstract: "each image is represented by one
image                             piece of hash code, which is referred to as semantic hashing")
category-aware hashing: one       the paper (arXiv abstract, verbatim: "an image is represented
piece of code per category        by multiple pieces of hash codes and each piece of code
                                  corresponds to a category")
explicit object proposals         a third party (a ConceptHash review contrasts it with IAH's
                                  "explicitly generating object proposals")
the proposal generator            ours: a fixed multi-scale grid, :mod:`hashbench.features.regions`
                                  (whole image + grid x grid cells; why: deterministic, offline)
per-proposal features             ours: the run's backbone FC2 on each crop (frozen, cached),
                                  then a shared learned layer (D -> ``hidden``, ReLU)
label probabilities p_m =         ours (iah.md's labelled design, HCP-style): sigmoid per
sigmoid(A g_m + a), image-level   proposal, max over proposals, binary cross-entropy L_cls
P = max_m p_m, L_cls = BCE(P, y)
groups z_c = sum_m p_mc g_m /     ours (iah.md's design; the DMIRH abstract suggests a fixed,
(sum_m p_mc + eps)                probability-weighted pooling)
pieces h_c = sigmoid(U z_c + e),  ours (U shared over categories, as iah.md allows)
b bits each
semantic code h = sigmoid(V       ours (iah.md's design)
[P_1 z_1; ...; P_C z_C] + f)
triplet hinge losses              the ancestor DNNH (Lai et al., CVPR 2015) as re-implemented in
max(0, m + D(x,x+) - D(x,x-))     HYPJUDY/caffe-dnnh; that IAH reuses it is unverified
semantic triplets: x shares more  ours
labels with x+ than with x-
category triplets: c in x, x+;    ours (iah.md's design)
c not in x-
margin m = 1/4 of the bits        ours (iah.md: "scale m with q, e.g. q/4"); we divide squared
(D normalised by bits: m=0.25)    distances by the bit count and use m = 0.25, the same thing
quantisation lambda_q             ours (iah.md's design, lambda_q = 0.01, mean instead of sum)
||h - round(h)||^2
codes 1[h > 0.5]                  ours
optimiser, schedule               ours: Adam (lr 1e-3) on the new layers, the backbone frozen;
                                  early stopping on the loss of held-out *training* items
================================  ==============================================================

Departures: the backbone is frozen (its region features come from the
feature cache) so that a CPU run is possible; the paper trains a deep
network (end to end, by the DNNH lineage: unknown). Triplets are mined
inside each mini-batch, every valid one used (no sampling).

Retrieval: semantic codes go through the shared evaluator unchanged;
:meth:`IAH.encode_pieces` gives the (n, C, bits) pieces, which the runner
scores with :func:`hashbench.evaluation.category.evaluate_category_aware`
(querying with category c compares only the c-th pieces; the metric is
defined there).

CPU budget: the region features cost (M - 1) more passes of the backbone over
the run's items, once, cached on disk (M = 5 by default: about four times the
features stage of a run; on the embedded default about 3-5 minutes on 2
cores); training then takes seconds to a minute per bit length. IAH is
supervised, so ``--methods all`` leaves it out (ask for ``iah`` or
``supervised``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from hashbench import ConfigError, DataError, Hasher, register_method
from hashbench.features import resolve_device
from hashbench.features.regions import grid_proposals

from ._convergence import EarlyStopping, check_convergence_params, holdout_split
from ._deep import minibatch_epoch
from ._selected import record_defaults

# the journal, year, DOI and arXiv number are from the paper's records (shared/papers/iah.md); volume 25,
# issue 6, pages 2469-2479 are recalled, not seen (only a running header of p. 2471 was)
PAPER = ("Lai, Pan, Shu, Wei & Yan, Instance-Aware Hashing for Multi-Label Image Retrieval, "
         "IEEE Transactions on Image Processing, 2016, doi:10.1109/TIP.2016.2545300 (arXiv:1603.03234)")


class _IAHNet(nn.Module):
    def __init__(self, in_dim: int, hidden: int, n_cat: int, bits: int) -> None:
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(in_dim))
        self.register_buffer("input_scale", torch.ones(()))
        self.embed = nn.Linear(in_dim, hidden)
        self.classify = nn.Linear(hidden, n_cat)
        self.piece = nn.Linear(hidden, bits)  # U, shared over categories
        self.semantic = nn.Linear(n_cat * hidden, bits)  # V
        for layer in (self.embed, self.classify, self.piece, self.semantic):
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, regions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """regions (n, M, D) -> (image-level P (n, C), pieces (n, C, b), semantic (n, b), their logits)."""
        g = torch.relu(self.embed((regions - self.input_mean) * self.input_scale))  # (n, M, H)
        p = torch.sigmoid(self.classify(g))  # (n, M, C): label probabilities per proposal
        big_p = p.max(dim=1).values  # (n, C)
        z = torch.einsum("nmc,nmh->nch", p, g) / (p.sum(dim=1)[..., None] + 1e-6)  # (n, C, H)
        pieces = torch.sigmoid(self.piece(z))  # (n, C, b)
        sem_logits = self.semantic((big_p[..., None] * z).flatten(1))
        return big_p, pieces, torch.sigmoid(sem_logits), sem_logits


def _sq_dist(h: torch.Tensor) -> torch.Tensor:
    """Squared distances divided by the bit count, over the last axis, between every pair of rows."""
    diff = h[..., :, None, :] - h[..., None, :, :]
    return diff.pow(2).sum(-1) / h.shape[-1]


def semantic_triplet_loss(h: torch.Tensor, y: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean hinge over triplets (a, p, n), a != p, a != n, where a shares more labels with p than with n."""
    d = _sq_dist(h)  # (k, k)
    shared = y @ y.T  # (k, k) shared-label counts
    k = h.shape[0]
    off = ~torch.eye(k, dtype=torch.bool, device=h.device)
    valid = (shared[:, :, None] > shared[:, None, :]) & off[:, :, None] & off[:, None, :]
    terms = torch.relu(margin + d[:, :, None] - d[:, None, :])
    return (terms * valid).sum() / valid.sum().clamp_min(1)


def category_triplet_loss(pieces: torch.Tensor, y: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean hinge over (c, a, p, n): c in labels(a) and labels(p), a != p, c not in labels(n); c-th pieces only."""
    d = _sq_dist(pieces.transpose(0, 1))  # (C, k, k)
    yc = y.T.bool()  # (C, k)
    k = y.shape[0]
    off = ~torch.eye(k, dtype=torch.bool, device=y.device)
    pos = yc[:, :, None] & yc[:, None, :] & off  # (C, a, p)
    valid = pos[:, :, :, None] & ~yc[:, None, None, :]  # (C, a, p, n)
    terms = torch.relu(margin + d[:, :, :, None] - d[:, :, None, :])
    return (terms * valid).sum() / valid.sum().clamp_min(1)


@register_method("iah")
@record_defaults("iah")
class IAH(Hasher):
    __doc__ = __doc__

    display_name = "IAH"
    summary = ("IAH (supervised reference): region proposals, per-category instance-aware groups, "
               "semantic and category-aware codes, trained on the training role's labels")
    paper = PAPER
    deep = True
    requires = frozenset({"images", "labels"})
    search_space = {"lr": [3e-4, 1e-3, 3e-3], "hidden": [128, 256], "quantization_weight": [0.0, 0.01, 0.1]}

    def __init__(self, bits: int = 32, seed: int = 0, proposal_grid: int = 2, hidden: int = 256,
                 margin: float = 0.25, quantization_weight: float = 0.01, lr: float = 1e-3,
                 batch_size: int = 50, max_epochs: int = 30, patience: int = 3, min_delta: float = 1e-4,
                 val_fraction: float = 0.1, device: str = "auto") -> None:
        super().__init__(bits=bits, seed=seed)
        self.proposal_grid = proposal_grid
        self.hidden = hidden
        self.margin = margin
        self.quantization_weight = quantization_weight
        self.lr = lr
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_delta = min_delta
        self.val_fraction = val_fraction
        self.device = device

    # ----------------------------------------------------------------- checks
    def _check_params(self) -> None:
        who = self.name or type(self).__name__
        for name in ("hidden", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 2:
                raise ConfigError(f"{who}: {name} must be an integer >= 2, got {v!r}")
        for name in ("margin", "quantization_weight", "lr"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 \
                    or (name == "lr" and v == 0):
                raise ConfigError(f"{who}: {name} must be a {'positive' if name == 'lr' else 'non-negative'} "
                                  f"number, got {v!r}")
        check_convergence_params(who, self.max_epochs, self.patience, self.min_delta)
        grid_proposals(self.proposal_grid)  # its own check

    # ------------------------------------------------------------------ input
    def _regions(self, images: Any) -> torch.Tensor:
        feats = images.region_features(grid_proposals(int(self.proposal_grid)), device=self.device)
        return torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32))

    @staticmethod
    def _label_matrix(labels: np.ndarray) -> np.ndarray:
        if labels.ndim == 1:  # single-label classes: one category per class
            return np.eye(int(labels.max()) + 1, dtype=np.float32)[labels]
        return labels.astype(np.float32)

    def _loss(self, regions: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        big_p, pieces, sem, _ = self.net_(regions)
        l_cls = nn.functional.binary_cross_entropy(big_p.clamp(1e-6, 1 - 1e-6), y)
        l_sem = semantic_triplet_loss(sem, y, float(self.margin))
        l_cat = category_triplet_loss(pieces, y, float(self.margin))
        quant = (sem - sem.round()).pow(2).mean() + (pieces - pieces.round()).pow(2).mean()
        total = l_cls + l_sem + l_cat + float(self.quantization_weight) * quant
        return total, {"total": total.item(), "L_cls": l_cls.item(), "L_sem": l_sem.item(), "L_cat": l_cat.item(),
                       "quant": quant.item()}

    # -------------------------------------------------------------------- fit
    def _fit(self, features: np.ndarray | None, **inputs: Any) -> None:
        self._check_params()
        images, labels = inputs["images"], inputs["labels"]
        y_all = self._label_matrix(labels)
        if y_all.sum() == 0:
            raise DataError(f"{self.name}: the training labels are all zero; a supervised method needs labels")
        self.n_categories_ = int(y_all.shape[1])
        self.device_ = resolve_device(self.device)
        dev = torch.device(self.device_)
        regions = self._regions(images)
        fit_rows, val_rows = holdout_split(len(regions), float(self.val_fraction), int(self.seed))
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(int(self.seed))
            self.net_ = _IAHNet(regions.shape[2], int(self.hidden), self.n_categories_, int(self.bits)).to(dev)
        x_fit = regions[torch.from_numpy(fit_rows)]
        mean = x_fit.double().mean(dim=(0, 1))
        rms = float((x_fit.double() - mean).pow(2).mean().sqrt())
        self.net_.input_mean.copy_(mean.float())
        self.net_.input_scale.fill_(1.0 / rms if rms > 0 else 1.0)
        y = torch.from_numpy(y_all)
        opt = torch.optim.Adam(self.net_.parameters(), lr=float(self.lr))
        stopper = EarlyStopping(int(self.max_epochs), int(self.patience), float(self.min_delta))
        rng = np.random.default_rng(self.seed)
        self.history_ = {}
        bs = int(self.batch_size)
        for _ in range(int(self.max_epochs)):
            self.net_.train()
            order = fit_rows[rng.permutation(fit_rows.size)]
            means = minibatch_epoch((torch.from_numpy(order[s:s + bs]) for s in range(0, order.size, bs)),
                                    lambda rows: self._loss(regions[rows].to(dev), y[rows].to(dev)), opt,
                                    failure=f"{self.name}: the loss became {{}}", min_size=3)  # a triplet: 3 items
            for k_, v in means.items():
                self.history_.setdefault(k_, []).append(v)
            held = self._heldout_loss(regions, y, val_rows if val_rows.size else fit_rows, dev)
            self.history_.setdefault("heldout", []).append(held)
            if stopper.update(held, self.net_.state_dict()):
                break
        if stopper.best_state is not None:
            self.net_.load_state_dict(stopper.best_state)
        self.net_.eval()
        self.fit_info_ = {"device": self.device_, "proposals": grid_proposals(int(self.proposal_grid)),
                          "categories": self.n_categories_, "convergence": stopper.summary(),
                          "held_out_items": int(val_rows.size)}

    @torch.no_grad()
    def _heldout_loss(self, regions: torch.Tensor, y: torch.Tensor, rows: np.ndarray, dev: torch.device) -> float:
        """Mean loss over fixed batches of held-out training items (the method's own objective)."""
        self.net_.eval()
        bs = int(self.batch_size)
        vals = [self._loss(regions[torch.from_numpy(rows[s:s + bs])].to(dev), y[torch.from_numpy(rows[s:s + bs])]
                           .to(dev))[0].item() for s in range(0, rows.size, bs) if rows[s:s + bs].size >= 3]
        return float(np.mean(vals)) if vals else math.inf

    def heldout_objective(self, features: Any = None, tags: Any = None, images: Any = None,
                          labels: Any = None) -> float:
        if labels is None or images is None:
            raise DataError(f"{self.name}: the held-out objective needs the held-out items' images and labels")
        y = torch.from_numpy(self._label_matrix(np.asarray(labels)))
        regions = self._regions(images)
        return self._heldout_loss(regions, y, np.arange(len(regions)), torch.device(self.device_))

    # ----------------------------------------------------------------- encode
    @torch.no_grad()
    def _outputs(self, images: Any) -> tuple[torch.Tensor, torch.Tensor]:
        regions = self._regions(images)
        dev = torch.device(self.device_)
        sems, pieces = [], []
        for s in range(0, len(regions), 1024):
            _, pc, _, logits = self.net_(regions[s:s + 1024].to(dev))
            sems.append(logits.cpu())
            pieces.append(pc.cpu())
        return torch.cat(sems), torch.cat(pieces)

    def _encode(self, features: np.ndarray | None, **inputs: Any) -> np.ndarray:
        """Semantic hashing: one code per image, 1[h > 0.5] (= logit > 0)."""
        return (self._outputs(inputs["images"])[0] > 0).numpy().astype(np.uint8)

    def encode_pieces(self, features: Any = None, images: Any = None) -> np.ndarray:
        """Category-aware hashing: (n, C, bits) pieces, 1[h_c > 0.5]."""
        if not self.is_fitted:
            from hashbench import NotFittedError

            raise NotFittedError(f"{self.name}: encode_pieces was called before fit")
        if images is None:
            raise DataError(f"{self.name}: encode_pieces needs images")
        return (self._outputs(images)[1] > 0.5).numpy().astype(np.uint8)
