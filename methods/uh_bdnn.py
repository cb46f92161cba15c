"""UH-BDNN: unsupervised hashing with a binary deep neural network (Do, Doan & Cheung, ECCV 2016)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg
import torch
from torch import nn

from hashbench import ConfigError, Hasher, register_method
from hashbench.features import resolve_device
from hashbench.validation import check_features

from ._convergence import EarlyStopping, holdout_split
from ._deep import check_common, check_hidden, check_int, check_number, seeded, train_early_stopped
from ._selected import record_defaults
from .itq import ITQ

PAPER = ("Do, Doan & Cheung, Learning to hash with binary deep neural network, ECCV 2016 "
         "(UH-BDNN, the unsupervised network, section 3)")

# The authors' runHash.m: (layer-2, layer-3) sizes for 8, 16, 24 and 32 bits.
_CODE_HIDDEN = {8: (90, 20), 16: (90, 30), 24: (100, 40), 32: (120, 50)}


def default_hidden(bits: int) -> tuple[int, int]:
    """The authors' hidden sizes for ``bits`` in {8, 16, 24, 32}; linear in between and, beyond
    32 bits, along the 24 -> 32 slope (their code refuses other lengths: this rule is ours)."""
    ks = sorted(_CODE_HIDDEN)
    h1 = [float(_CODE_HIDDEN[k][0]) for k in ks]
    h2 = [float(_CODE_HIDDEN[k][1]) for k in ks]
    if bits <= ks[-1]:
        return int(round(np.interp(bits, ks, h1))), int(round(np.interp(bits, ks, h2)))
    s1 = (h1[-1] - h1[-2]) / (ks[-1] - ks[-2])
    s2 = (h2[-1] - h2[-2]) / (ks[-1] - ks[-2])
    return int(round(h1[-1] + s1 * (bits - ks[-1]))), int(round(h2[-1] + s2 * (bits - ks[-1])))


def top_eigenvectors(x: np.ndarray, k: int) -> np.ndarray:
    """(d, k): the top-k eigenvectors of the *uncentred* second moment (1/m) X^T X, largest first.

    As the authors' ``initializeParameters.m`` (``eig`` of ``(1/m) X X'``), with
    a deterministic sign (largest entry positive). Exact (LAPACK, the wanted
    subset); with fewer items than dimensions, through the m x m Gram matrix
    (X^T u / ||X^T u|| for its eigenvectors u: the same vectors, cheaper).
    ``k`` must not exceed min(m, d).
    """
    m, d = x.shape
    x = np.asarray(x, dtype=np.float64)
    if m >= d:
        c = (x.T @ x) / m
        _, vecs = scipy.linalg.eigh(c, subset_by_index=[d - k, d - 1], driver="evr")
    else:
        g = (x @ x.T) / m
        _, u = scipy.linalg.eigh(g, subset_by_index=[m - k, m - 1], driver="evr")
        vecs = x.T @ u
        vecs /= np.maximum(np.linalg.norm(vecs, axis=0), 1e-300)
    vecs = vecs[:, ::-1]
    signs = np.sign(vecs[np.abs(vecs).argmax(0), np.arange(k)])
    return vecs * np.where(signs == 0, 1.0, signs)


def top_subspace(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """(d, k) float32: the top-k right singular vectors of X (= eigenvectors of the uncentred X^T X), largest first.

    Randomised SVD (scikit-learn's ``randomized_svd``, seeded, 2 power
    iterations): matrix products only, where an exact eigen-solver of the
    4,096 x 4,096 second moment takes minutes on two busy cores. Signs as in
    :func:`top_eigenvectors`.
    """
    from sklearn.utils.extmath import randomized_svd

    _, _, vt = randomized_svd(x, n_components=k, n_oversamples=10, n_iter=2, random_state=seed)
    v = vt.T
    signs = np.sign(v[np.abs(v).argmax(0), np.arange(k)])
    return (v * np.where(signs == 0, 1.0, signs)).astype(np.float32)


def update_codes(y: np.ndarray, w4: np.ndarray, h: np.ndarray, lambda2: float, sweeps: int = 10) -> np.ndarray:
    """The B-step: min_B 1/(2m)||Y - B W4^T||^2 + lambda2/(2m)||H - B||^2 over B in {-1, 1}^(m x L).

    Discrete cyclic coordinate descent, one bit (column) at a time in closed
    form, all items at once, as the authors' ``learn_B.m``: with
    Q = lambda2 H + Y W4 and G = W4^T W4, bit k is
    sgn(Q_k - sum_{j != k} B_j G_jk); B starts at 0, ``sweeps`` = 10 passes.
    ``y`` = X - c4 (m x D), ``w4`` (D x L), ``h`` (m x L). sgn(0) = +1 (the
    code's MATLAB ``sign`` gives 0 there, which is not a code).
    """
    q = lambda2 * h + y @ w4
    g = w4.T @ w4
    b = np.zeros_like(q)
    for _ in range(sweeps):
        for k in range(q.shape[1]):
            r = q[:, k] - b @ g[:, k] + b[:, k] * g[k, k]
            b[:, k] = np.where(r >= 0, 1.0, -1.0)
    return b


def fit_decoder(x: np.ndarray, b: np.ndarray, lambda1: float) -> tuple[np.ndarray, np.ndarray]:
    """min over (W4, c4) of 1/(2m)||X - B W4^T - 1 c4^T||^2 + lambda1/2 ||W4||^2, in closed form.

    Ridge regression of the input on the codes with an unpenalised intercept
    (the authors' cost does not decay biases): W4^T = (Bc^T Bc / m + lambda1
    I)^-1 Bc^T Xc / m, c4 = mean(X) - W4 mean(B), Bc and Xc centred. The
    objective's only (W4, c4) terms are these two, so this is the exact
    minimiser the authors' L-BFGS approaches. Returns (W4 (D x L), c4 (D,)).
    """
    m = b.shape[0]
    b_mean = b.mean(0)
    x_mean = x.mean(0, dtype=np.float64)
    bc = b - b_mean
    lhs = bc.T @ bc / m + lambda1 * np.eye(b.shape[1])
    rhs = (bc.T.astype(x.dtype) @ x).astype(np.float64) / m  # Bc^T X = Bc^T Xc, since Bc's columns sum to 0
    w4 = np.linalg.solve(lhs, rhs).T
    return w4, x_mean - w4 @ b_mean


class Encoder(nn.Module):
    """Layers 1-4 of the network: z -> sigmoid -> sigmoid -> identity = H (the code layer).

    Layer 1 acts on z = x~ P, x~ the input rescaled to [0, 1] and P the top
    ``input_pca`` eigenvectors (``W1 = A P^T``; see the class doc).
    """

    def __init__(self, p: int, h1: int, h2: int, bits: int) -> None:
        super().__init__()
        self.l1 = nn.Linear(p, h1)
        self.l2 = nn.Linear(h1, h2)
        self.l3 = nn.Linear(h2, bits)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.l3(torch.sigmoid(self.l2(torch.sigmoid(self.l1(z)))))

    def weights(self) -> list[torch.Tensor]:
        return [self.l1.weight, self.l2.weight, self.l3.weight]


@register_method("uh-bdnn")
@record_defaults("uh-bdnn")
class UHBDNN(Hasher):
    """UH-BDNN: an auto-encoder whose code layer is constrained to be binary, independent and balanced.

    Do, Doan & Cheung, *Learning to hash with binary deep neural network*,
    ECCV 2016, section 3 (the unsupervised UH-BDNN; the supervised SH-BDNN is
    not implemented). A 5-layer network: input x (D), two sigmoid layers,
    layer 4 with identity activation whose output H (L = ``bits`` units) is
    the code, and layer 5 reconstructing x from the *binary* B. With B an
    auxiliary binary matrix, the relaxed problem (eq. 2-3, numbers recalled)
    is, as the authors' ``deepNNCost.m`` computes it::

        min J = 1/(2m) ||X - W4 B - c4 1^T||^2             J1 reconstruction through the binary layer
              + lambda1/2 sum_l ||W_l||^2                   J2 weight decay (weights, not biases)
              + lambda2/(2m) ||H - B||^2                    J3 H close to the binary B
              + lambda3/2 ||(1/m) H H^T - I||^2              J4 independent bits
              + lambda4/(2m) ||H 1||^2                      J5 balanced bits
        s.t. B in {-1, +1}^(L x m)

    solved by alternating optimisation (section 3.2, recalled): with B fixed, (W, c) by
    L-BFGS; with (W, c) fixed, B bit by bit in closed form
    (:func:`update_codes`). Codes of new items: sgn(H) (H >= 0 -> 1). The
    authors' code's values (``runHash.m``; that the paper prints the same ones
    is recalled, not re-read): lambda1 = 1e-5, lambda2 = 5e-2,
    lambda3 = 1e-2, lambda4 = 0.5e-6; hidden sizes per bit length
    (:func:`default_hidden`); B initialised by ITQ; layers 1-3 initialised
    with the top eigenvectors of their inputs' second moments, W4 = I; inputs
    rescaled to [0, 1] (``rescale_0_1.m``: minus each dimension's minimum,
    divided by the largest range).

    Sources: the objective and the alternating scheme are cited from the
    paper as recalled (equation and section numbers recalled, not re-read: the
    text is not on file here); every detail above (the lambdas, the initialisations, identity
    code layer, the B-step, the preprocessing, the stopping rule) was checked
    against the authors' public MATLAB code (github.com/dzungdoan6/uh-bdnn,
    ``DeepNN_HASH/*.m``, ``runHash.m``), read, not copied.

    ``history_``: per epoch (one B-step + one (W, c)-step), J1..J5 and their
    sum on the fitted items, and the held-out objective;
    ``fit_info_["convergence"]`` where and why training stopped.

    Departures from the authors' code, and why:

    * (W4, c4) are solved in closed form (:func:`fit_decoder`, the exact
      minimiser of the only terms they appear in) and L-BFGS runs on layers
      1-3 only: the same problem, cheaper;
    * ``input_pca`` = 256: layer 1 is restricted to the span of the top-256
      eigenvectors of the rescaled inputs' second moment (W1 = A P^T, A
      learned, starting at the code's own initialisation, the top-h1 of
      them), found by a seeded randomised SVD (:func:`top_subspace`). On 4,096-d FC2 features each L-BFGS iteration is then 16x
      cheaper (the CPU budget of the default run); ``None`` gives the full
      layer (the authors' inputs were 320-d GIST);
    * ``lbfgs_iter`` = 15 L-BFGS iterations per epoch (the code: 400) and at
      most ``max_epochs`` = 4 alternations (the code: 20), for the CPU budget
      of the default run (about 5 s per bit length); raise both on a GPU.
      torch's L-BFGS with a strong-Wolfe line search, float32 (the code:
      minFunc, float64);
    * stopping: the code keeps alternating while the mAP of a validation set
      (1,000 training items, Euclidean neighbours as ground truth) improves;
      here the objective J on held-out training items (``val_fraction`` =
      0.1, ``patience`` = 2), with B = sgn(H) for those items, as at test time;
    * ITQ (hashbench's ``itq``, ``seed``) initialises B from the projected
      inputs z, not the full ones (one PCA instead of two);
    * hidden sizes beyond the code's table (12, 48 bits): :func:`default_hidden`.
    """

    display_name = "UH-BDNN"
    summary = "binary deep auto-encoder: reconstruction through a binary code layer, independence and balance"
    paper = PAPER
    deep = True
    requires = frozenset({"features"})
    search_space = {
        "lambda2": [5e-3, 5e-2, 5e-1],
        "lambda3": [1e-3, 1e-2, 1e-1],
        "lbfgs_iter": [15, 100],
    }
    #: ``uh-bdnn@authors-code``: the authors' schedule (400 L-BFGS iterations x up to 20 alternations,
    #: stop at the first epoch without improvement) on the full input layer; hours on a CPU at 4,096-d
    configurations = {"authors-code": {"lbfgs_iter": 400, "max_epochs": 20, "patience": 1, "input_pca": None}}

    def __init__(self, bits: int = 32, seed: int = 0, hidden: tuple[int, int] | None = None, lambda1: float = 1e-5,
                 lambda2: float = 5e-2, lambda3: float = 1e-2, lambda4: float = 0.5e-6, lbfgs_iter: int = 15,
                 max_epochs: int = 4, patience: int = 2, min_delta: float = 1e-4, val_fraction: float = 0.1,
                 input_pca: int | None = 256, device: str = "auto") -> None:
        super().__init__(bits=bits, seed=seed)
        self.hidden = hidden
        self.lambda1 = lambda1
        self.lambda2 = lambda2
        self.lambda3 = lambda3
        self.lambda4 = lambda4
        self.lbfgs_iter = lbfgs_iter
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_delta = min_delta
        self.val_fraction = val_fraction
        self.input_pca = input_pca
        self.device = device

    def max_bits(self, n_samples: int, n_features: int) -> tuple[int | None, str]:
        return min(n_samples - 1, n_features), (
            f"ITQ initialises the codes: at most min(n_samples - 1, n_features) of {n_samples} x {n_features}")

    # ---------------------------------------------------------------- fit
    def _check(self) -> tuple[int, int]:
        who = self.name or type(self).__name__
        hidden = default_hidden(self.bits) if self.hidden is None else check_hidden(who, self.hidden, 2)
        for name in ("lambda1", "lambda2", "lambda3", "lambda4"):
            check_number(who, name, getattr(self, name))
        check_int(who, "lbfgs_iter", self.lbfgs_iter)
        if self.input_pca is not None:
            check_int(who, "input_pca", self.input_pca)
        check_common(who, self)
        return hidden  # type: ignore[return-value]

    def _fit(self, features: np.ndarray) -> None:
        h1, h2 = self._check()
        self.device_ = resolve_device(self.device)
        dev = torch.device(self.device_)
        with seeded(self.seed, dev):
            self._fit_seeded(np.asarray(features, dtype=np.float32), h1, h2, dev)

    def _rescale(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float32) - self.min_) / self.range_).astype(np.float32)

    def _project(self, xr: np.ndarray) -> np.ndarray:
        """z = x~ P, the input of layer 1 (``input_pca``); x~ itself without a projection."""
        return np.ascontiguousarray(xr if self.proj_ is None else xr @ self.proj_)

    def _fit_seeded(self, x: np.ndarray, h1: int, h2: int, dev: torch.device) -> None:
        fit_rows, val_rows = holdout_split(x.shape[0], float(self.val_fraction), int(self.seed))
        # rescale_0_1.m: per-dimension minimum, one range (the largest) for all dimensions
        self.min_ = x[fit_rows].min(0)
        self.range_ = np.float32(max(float((x[fit_rows].max(0) - self.min_).max()), np.finfo(np.float32).eps))
        xf = self._rescale(x[fit_rows])
        xv = self._rescale(x[val_rows]) if val_rows.size else xf
        d = x.shape[1]
        p = d if self.input_pca is None else min(int(self.input_pca), d, xf.shape[0])
        if not (self.bits <= h2 <= h1 <= p):  # each layer starts as top eigenvectors of its input
            raise ConfigError(
                f"{self.name}: layer sizes must shrink, bits <= hidden[1] <= hidden[0] <= input dimension "
                f"(after input_pca): got {self.bits} <= {h2} <= {h1} <= {p}; pass hidden=(h1, h2)")
        self.proj_ = top_subspace(xf, p, int(self.seed)) if p < d else None  # (D, p); None: the full input
        zf, zv = self._project(xf), self._project(xv)

        # initialisation (learn_all.m / learnDeepNN.m): B by ITQ; layers 1-3 by top eigenvectors
        b = ITQ(bits=self.bits, seed=int(self.seed)).fit(zf).encode(zf).astype(np.float64) * 2 - 1
        enc = Encoder(p, h1, h2, self.bits).to(dev)
        with torch.no_grad():
            zt = torch.from_numpy(zf).to(dev)
            w1 = np.zeros((h1, p))
            w1[np.arange(h1), np.arange(h1)] = 1.0  # A = [I 0]: W1 = the top-h1 eigenvectors
            enc.l1.weight.copy_(torch.from_numpy(w1).float())
            a2 = torch.sigmoid(enc.l1.bias.zero_() + zt @ enc.l1.weight.T)
            enc.l2.weight.copy_(torch.from_numpy(top_eigenvectors(a2.cpu().numpy(), h2).T.copy()).float())
            enc.l2.bias.zero_()
            a3 = torch.sigmoid(enc.l2(a2))
            enc.l3.weight.copy_(torch.from_numpy(top_eigenvectors(a3.cpu().numpy(), self.bits).T.copy()).float())
            enc.l3.bias.zero_()
        self.encoder_ = enc
        zv_t = torch.from_numpy(zv).to(dev)
        lam = (float(self.lambda1), float(self.lambda2), float(self.lambda3), float(self.lambda4))

        def w_step(b: np.ndarray) -> None:
            self.w4_, self.c4_ = fit_decoder(xf, b, lam[0])
            bt = torch.from_numpy(b).float().to(dev)
            opt = torch.optim.LBFGS(enc.parameters(), lr=1.0, max_iter=int(self.lbfgs_iter), history_size=100,
                                    line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)

            def closure() -> torch.Tensor:
                opt.zero_grad(set_to_none=True)
                loss = self._encoder_terms(enc(zt), bt)[0]
                loss.backward()
                return loss

            opt.step(closure)

        w_step(b)  # the code's "pre-training": (W, c) learned once for the ITQ codes
        self.codes_ = b
        self.history_: dict[str, list[float]] = {}

        def epoch(e: int) -> dict[str, float]:
            with torch.no_grad():
                h = enc(zt).cpu().numpy()
            self.codes_ = update_codes(xf - self.c4_.astype(np.float32), self.w4_, h, lam[1])
            w_step(self.codes_)
            with torch.no_grad():
                return self._terms(xf, enc(zt), self.codes_)

        def get_state() -> dict[str, Any]:
            return {"enc": {k: v.clone() for k, v in enc.state_dict().items()}, "w4": self.w4_.copy(),
                    "c4": self.c4_.copy(), "codes": self.codes_.copy()}

        def set_state(s: dict[str, Any]) -> None:
            enc.load_state_dict(s["enc"])
            self.w4_, self.c4_, self.codes_ = s["w4"], s["c4"], s["codes"]

        stopper = EarlyStopping(int(self.max_epochs), int(self.patience), float(self.min_delta))
        with torch.no_grad():
            self.initial_terms_ = self._terms(xf, enc(zt), self.codes_)
        train_early_stopped(stopper, epoch, lambda: self._objective_z(xv, zv_t), get_state, set_state, self.history_)
        enc.eval()
        self.fit_info_ = {"device": self.device_, "hidden": [h1, h2], "input_dim": p, "n_fit": int(xf.shape[0]),
                          "n_heldout": int(val_rows.size), "initial_objective": self.initial_terms_,
                          "convergence": stopper.summary()}

    # ------------------------------------------------------------ objective
    def _encoder_terms(self, h: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """J2 (layers 1-3 and the decoder's W4), J3, J4, J5 of the objective, with the network's H (m x L)."""
        m = h.shape[0]
        l1, l2, l3, l4 = float(self.lambda1), float(self.lambda2), float(self.lambda3), float(self.lambda4)
        j2 = 0.5 * l1 * (sum(w.pow(2).sum() for w in self.encoder_.weights()) + float((self.w4_ ** 2).sum()))
        j3 = 0.5 * l2 / m * (h - b).pow(2).sum()
        j4 = 0.5 * l3 * (h.T @ h / m - torch.eye(h.shape[1], dtype=h.dtype, device=h.device)).pow(2).sum()
        j5 = 0.5 * l4 / m * h.sum(0).pow(2).sum()
        return j2 + j3 + j4 + j5, {"weight_decay": j2, "binary_gap": j3, "independence": j4, "balance": j5}

    def _terms(self, x: np.ndarray, h: torch.Tensor, b: np.ndarray) -> dict[str, float]:
        """Every term of J (weighted) and their sum, for rescaled inputs ``x``, their H and codes B."""
        recon = x - (b @ self.w4_.T + self.c4_).astype(np.float32)
        j1 = 0.5 * float(np.einsum("ij,ij->", recon, recon, dtype=np.float64)) / x.shape[0]
        rest, parts = self._encoder_terms(h, torch.from_numpy(b).to(h))
        out = {"reconstruction": j1, **{k: float(v) for k, v in parts.items()}}
        out["total"] = j1 + float(rest)
        return out

    @torch.no_grad()
    def _objective_z(self, x: np.ndarray, z: torch.Tensor) -> float:
        h = self.encoder_(z)
        b = np.where(h.cpu().numpy() >= 0, 1.0, -1.0)  # held-out items get the codes encode gives them
        return self._terms(x, h, b)["total"]

    def heldout_objective(self, features: Any = None, tags: Any = None, images: Any = None) -> float:
        """J (lower is better) on these items, their B being sgn(H) as at test time."""
        x = check_features(features, name=f"{self.name}: held-out features", n_features=self.n_features_in_)
        xr = self._rescale(x)
        z = torch.from_numpy(self._project(xr)).to(torch.device(self.device_))
        return self._objective_z(xr, z)

    # -------------------------------------------------------------- encode
    @torch.no_grad()
    def _encode(self, features: np.ndarray) -> np.ndarray:
        dev = torch.device(self.device_)
        out = []
        for s in range(0, features.shape[0], 8192):
            z = torch.from_numpy(self._project(self._rescale(features[s: s + 8192]))).to(dev)
            out.append((self.encoder_(z) >= 0).cpu().numpy())
        return np.concatenate(out).astype(np.uint8)
