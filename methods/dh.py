"""DH: unsupervised Deep Hashing (Liong, Lu, Wang, Moulin & Zhou, CVPR 2015)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from hashbench import Hasher, register_method
from hashbench.features import resolve_device

from ._convergence import EarlyStopping, holdout_split
from ._deep import check_common, check_hidden, check_int, check_number, minibatch_epoch, seeded, train_early_stopped

PAPER = ("Liong, Lu, Wang, Moulin & Zhou, Deep hashing for compact binary codes learning, CVPR 2015 "
         "(the unsupervised DH, section 3)")


def orthogonality_gap(w: torch.Tensor) -> torch.Tensor:
    """||W W^T - I||_F^2 for a (out, in) weight with out <= in, else ||W^T W - I||_F^2.

    The paper's independence term asks for orthonormal projections (rows of
    W); a layer wider than its input cannot have orthonormal rows, so there
    the columns are asked to be orthonormal, the closest it can come.
    """
    g = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    return (g - torch.eye(g.shape[0], dtype=w.dtype, device=w.device)).pow(2).sum()


class DHNet(nn.Module):
    """x -> tanh(W^1 x~ + c^1) -> ... -> tanh(W^M h^{M-1} + c^M) = h^M (eq. 1-2).

    x~ = (x - mean) * scale: the inputs standardised, a constant layer set at fit time.
    """

    def __init__(self, in_dim: int, hidden: tuple[int, ...], bits: int, mean: np.ndarray, scale: float) -> None:
        super().__init__()
        self.register_buffer("input_mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("input_scale", torch.tensor(float(scale), dtype=torch.float32))
        sizes = (in_dim, *hidden, bits)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        for layer in self.layers:
            nn.init.orthogonal_(layer.weight)  # starts where the independence term J3 is zero
            nn.init.zeros_(layer.bias)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) * self.input_scale

    def forward(self, x: torch.Tensor, transformed: bool = False) -> torch.Tensor:
        h = x if transformed else self.transform(x)
        for layer in self.layers:
            h = torch.tanh(layer(h))
        return h


def dh_objective(net: DHNet, h: torch.Tensor, n_train: int, lambda1: float, lambda2: float, lambda3: float
                 ) -> tuple[torch.Tensor, dict[str, float]]:
    """The paper's J (eq. 4-5) divided by the training-set size N (the same minimiser), on a batch of items.

    J = J1 - lambda1 J2 + lambda2 J3 + lambda3 J4 with J1 = 1/2 ||B - H^M||_F^2
    (a sum over the N items), B = sgn(H^M) held fixed (piecewise constant: no
    gradient flows through it, as in the paper's Algorithm 1, which computes B
    and then the gradient); J2 = 1/(2N) tr((H^M - mean)(H^M - mean)^T), the
    variance of the bits ("balanced bits"); J3 = 1/2 sum_m ||W^m W^m^T - I||_F^2 (independent
    projections, see :func:`orthogonality_gap`); J4 = 1/2 sum_m (||W^m||_F^2 +
    ||c^m||_2^2). Divided by N, the two data terms are means over the items,
    which a mini-batch estimates without bias: the returned value is
    mean(1/2 ||b - h||^2) - (lambda1 / N) mean(1/2 ||h||^2) + (lambda2 / N) J3
    + (lambda3 / N) J4; the recorded J1 and J2 are the two means.
    """
    b = torch.where(h.detach() >= 0, 1.0, -1.0)
    k = h.shape[0]
    j1 = 0.5 * (b - h).pow(2).sum() / k
    j2 = 0.5 * (h - h.mean(0)).pow(2).sum() / k
    j3 = 0.5 * sum(orthogonality_gap(layer.weight) for layer in net.layers)
    j4 = 0.5 * sum(layer.weight.pow(2).sum() + layer.bias.pow(2).sum() for layer in net.layers)
    total = j1 + (-lambda1 * j2 + lambda2 * j3 + lambda3 * j4) / float(n_train)
    return total, {"J1": j1.item(), "J2": j2.item(), "J3": j3.item(), "J4": j4.item(), "total": total.item()}


@register_method("dh")
class DH(Hasher):
    """DH: a multi-layer tanh network whose top-layer signs are the codes, trained without labels.

    Liong, Lu, Wang, Moulin & Zhou, *Deep hashing for compact binary codes
    learning*, CVPR 2015, section 3 (the unsupervised DH; SDH, its supervised
    extension, is not implemented). The network (eq. 1-2): h^m =
    tanh(W^m h^{m-1} + c^m), m = 1..M, codes b = sgn(h^M) (eq. 3). The
    objective (eq. 4-5)::

        min J = J1 - lambda1 J2 + lambda2 J3 + lambda3 J4
        J1 = 1/2 ||B - H^M||^2                     quantisation loss
        J2 = 1/(2N) tr(H^M H^M^T)                  "variance" of the bits (balanced bits)
        J3 = 1/2 sum_m ||W^m W^m^T - I||^2          independent (orthogonal) projections
        J4 = 1/2 sum_m (||W^m||^2 + ||c^m||^2)     weight regularisation

    with the paper's lambda1 = 100, lambda2 = 0.001, lambda3 = 0.001 and its
    network of M = 3 layers [60 -> 30 -> bits] (``hidden`` = (60, 30)).
    ``history_`` holds the per-epoch training means of J1..J4 and the total,
    and the held-out objective; ``fit_info_["convergence"]`` where and why
    training stopped.

    Sources. The paper's text is not on file here: the objective, the layer
    sizes and the lambdas are cited from the published paper as recalled
    (equation numbers included), not re-read; the authors released no code.
    A third-party TensorFlow re-implementation (read, not copied) uses the
    same four terms, J2 normalised by the batch size.

    Departures from the paper, and why:

    * J2 is the variance about each bit's mean, tr((H - mean)(H - mean)^T)/(2N):
      the paper calls J2 the variance and uses it to balance the bits, but
      tr(H H^T) of near-binary +-1 outputs is about N*K whatever the balance;
      centred, it is largest for bits that split the items in half;
    * the objective is the paper's J divided by N (the same minimiser), so
      that a mini-batch estimates it without bias (:func:`dh_objective`);
      optimisation by mini-batch SGD with momentum (``lr`` = 1e-2,
      ``momentum`` = 0.9, ``batch_size`` = 128) instead of the paper's
      full-batch gradient descent, for up to ``max_epochs`` = 10 epochs,
      stopped by the held-out objective (``methods/_convergence.py``:
      ``val_fraction`` = 0.1 of the training items held out, ``patience`` =
      3): the CPU budget of the default run is ~5 s per bit length (the
      paper gives no stopping rule);
    * inputs standardised (training mean removed, divided by the root mean
      square of the centred values, one scalar): the paper used GIST vectors;
      a tanh network needs centred inputs of unit scale, and FC2 features are
      ReLU outputs (non-negative);
    * weights start orthonormal (``torch.nn.init.orthogonal_``), biases at 0
      (the paper does not say; there J3 is zero);
    * J3 for a layer wider than its input (e.g. 30 -> 48 bits) asks for
      orthonormal columns (rows cannot be: see :func:`orthogonality_gap`).

    What to expect: with these weights J1 (a sum over N items) outweighs J2
    and J3 by far, and nothing but the orthonormal start keeps the bits apart.
    On features whose variance sits in one direction (the synthetic set's
    FC2: 62% in the first principal component), gradient steps pull every
    unit towards it and the bits become strongly correlated; on data without
    such a direction they stay balanced and nearly decorrelated (tested).
    """

    display_name = "DH"
    summary = "Deep Hashing: tanh network, quantisation + bit-variance + orthogonality + weight decay, on features"
    paper = PAPER
    deep = True
    requires = frozenset({"features"})
    search_space = {
        "lr": [1e-4, 1e-3, 1e-2],
        "lambda1": [1.0, 10.0, 100.0],
        "lambda2": [1e-4, 1e-3, 1e-2],
        "hidden": [(60, 30), (120, 60)],
    }

    def __init__(self, bits: int = 32, seed: int = 0, hidden: tuple[int, ...] = (60, 30), lambda1: float = 100.0,
                 lambda2: float = 1e-3, lambda3: float = 1e-3, lr: float = 1e-2, momentum: float = 0.9,
                 batch_size: int = 128, max_epochs: int = 10, patience: int = 3, min_delta: float = 1e-4,
                 val_fraction: float = 0.1, device: str = "auto") -> None:
        super().__init__(bits=bits, seed=seed)
        self.hidden = hidden
        self.lambda1 = lambda1
        self.lambda2 = lambda2
        self.lambda3 = lambda3
        self.lr = lr
        self.momentum = momentum
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_delta = min_delta
        self.val_fraction = val_fraction
        self.device = device

    def _check(self) -> tuple[int, ...]:
        who = self.name or type(self).__name__
        hidden = check_hidden(who, self.hidden)
        for name in ("lambda1", "lambda2", "lambda3"):
            check_number(who, name, getattr(self, name))
        check_number(who, "lr", self.lr, zero_ok=False)
        check_number(who, "momentum", self.momentum, below=1.0)
        check_int(who, "batch_size", self.batch_size, minimum=2)
        check_common(who, self)
        return hidden

    def _fit(self, features: np.ndarray) -> None:
        hidden = self._check()
        self.device_ = resolve_device(self.device)
        dev = torch.device(self.device_)
        with seeded(self.seed, dev):
            self._fit_seeded(np.asarray(features, dtype=np.float32), hidden, dev)

    def _fit_seeded(self, x: np.ndarray, hidden: tuple[int, ...], dev: torch.device) -> None:
        fit_rows, val_rows = holdout_split(x.shape[0], float(self.val_fraction), int(self.seed))
        xf = x[fit_rows]
        mean = xf.mean(0, dtype=np.float64)
        rms = float(np.sqrt(((xf - mean.astype(np.float32)) ** 2).mean(dtype=np.float64)))
        self.net_ = DHNet(x.shape[1], hidden, self.bits, mean, 1.0 / rms if rms > 0 else 1.0).to(dev)
        with torch.no_grad():  # the constant input layer, applied once
            x_fit = self.net_.transform(torch.from_numpy(x[fit_rows]).to(dev))
            x_val = self.net_.transform(torch.from_numpy(x[val_rows]).to(dev)) if val_rows.size else x_fit
        opt = torch.optim.SGD(self.net_.parameters(), lr=float(self.lr), momentum=float(self.momentum))
        rng = np.random.default_rng(self.seed)
        lams = (float(self.lambda1), float(self.lambda2), float(self.lambda3))
        n = x_fit.shape[0]
        self.n_train_ = int(n)  # the N of J2 and of the objective's scale

        def epoch(e: int) -> dict[str, float]:
            self.net_.train()
            order = torch.from_numpy(rng.permutation(n)).to(dev)
            bs = int(self.batch_size)
            return minibatch_epoch(  # a trailing single item has no spread to learn from: skipped
                (order[s: s + bs] for s in range(0, n, bs)),
                lambda idx: dh_objective(self.net_, self.net_(x_fit[idx], transformed=True), self.n_train_, *lams),
                opt, failure=f"{self.name}: the objective became {{}} at epoch {e + 1}")

        stopper = EarlyStopping(int(self.max_epochs), int(self.patience), float(self.min_delta))
        self.history_: dict[str, list[float]] = {}
        train_early_stopped(stopper, epoch, lambda: self._objective(x_val, transformed=True),
                            lambda: self.net_.state_dict(), self.net_.load_state_dict, self.history_)
        self.net_.eval()
        self.fit_info_ = {"device": self.device_, "hidden": list(hidden), "n_fit": int(n),
                          "n_heldout": int(val_rows.size), "input_rms": rms, "convergence": stopper.summary()}

    @torch.no_grad()
    def _objective(self, x: torch.Tensor, transformed: bool = False) -> float:
        self.net_.eval()
        return dh_objective(self.net_, self.net_(x, transformed), self.n_train_, float(self.lambda1), float(self.lambda2),
                            float(self.lambda3))[0].item()

    def heldout_objective(self, features: Any = None, tags: Any = None, images: Any = None) -> float:
        """J (lower is better) on these items, with the fitted network."""
        from hashbench.validation import check_features

        x = check_features(features, name=f"{self.name}: held-out features", n_features=self.n_features_in_)
        return self._objective(torch.from_numpy(np.asarray(x, dtype=np.float32)).to(torch.device(self.device_)))

    @torch.no_grad()
    def _encode(self, features: np.ndarray) -> np.ndarray:
        self.net_.eval()
        dev = torch.device(self.device_)
        out = []
        for s in range(0, features.shape[0], 8192):
            x = torch.from_numpy(np.asarray(features[s: s + 8192], dtype=np.float32)).to(dev)
            out.append((self.net_(x) >= 0).cpu().numpy())
        return np.concatenate(out).astype(np.uint8)

