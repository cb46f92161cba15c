"""evaluate(): every metric of a run in one pass; mean_average_precision(); chance_level().

The conventions are documented in the package docstring (``hashbench.evaluation``).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, Optional

import numba
import numpy as np

from hashbench.errors import ConfigError, DataError
from hashbench.evaluation import _kernels
from hashbench.evaluation._inputs import Packed, pack_inputs
from hashbench.evaluation.config import DEFAULT_TIES, EvalConfig, topk_key

EVALUATOR_VERSION = 1


@dataclass
class EvaluationResult:
    """Everything one evaluation computed.

    metrics: scalar metrics ("mAP@5000", "mAP@all", "P@100", "P@r2", "R@r2", "chance", ...).
    curves: "radius_precision", "radius_recall" (b + 1,), "pr_recall", "pr_precision"
        (pr_levels,), "precision_at_n_n" (the N list) and "precision_at_n".
    per_query: (Q,) float64 arrays: "AP@K" for each K (NaN where a query is dropped),
        "P@N", "P@r2", "R@r2" (NaN where dropped), "chance"; for paired tests.
    config: the conventions used and the data's shape (recorded in every result).
    """

    metrics: Dict[str, float]
    curves: Dict[str, np.ndarray]
    per_query: Dict[str, np.ndarray]
    config: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self, per_query: bool = False) -> Dict[str, Any]:
        """A JSON-able dict (arrays as lists; NaN stays float('nan'))."""
        out: Dict[str, Any] = {
            "metrics": dict(self.metrics),
            "curves": {k: v.tolist() for k, v in self.curves.items()},
            "config": dict(self.config),
        }
        if per_query:
            out["per_query"] = {k: v.tolist() for k, v in self.per_query.items()}
        return out


def _resolve_device(device: str) -> str:
    """"auto" -> "cuda:0" when torch sees a GPU, else "cpu" (the numba path)."""
    if device == "auto":
        try:
            import torch
        except ImportError:  # torch is optional for evaluation
            return "cpu"
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but torch sees no CUDA device")
        return device if ":" in device else "cuda:0"
    return device


def _cutoffs(cfg: EvalConfig, n_db: int) -> tuple:
    """Effective cut-offs (items kept) of each K and N, and the sorted unique cut list."""
    def eff(k: Optional[int]) -> int:
        if k is None:
            return n_db
        if k == -1:   # deephash-pytorch's topK = -1: gnd[0:-1], all but the last item
            return n_db - 1
        return min(k, n_db)
    k_eff = [eff(k) for k in cfg.topk]
    n_eff = [eff(k) for k in cfg.precision_at]
    cut = np.array(sorted(set(k_eff) | set(n_eff)), dtype=np.int64)
    return k_eff, n_eff, cut


@contextmanager
def _dynamic_schedule() -> Iterator[None]:
    """Let numba threads take query chunks one at a time (not a fixed half each), so a
    thread slowed by other load on the machine does not leave the others idle at the end."""
    old = numba.set_parallel_chunksize(1)
    try:
        yield
    finally:
        numba.set_parallel_chunksize(old)


#: Use the 1-D one-word loop when codes and label masks fit one word (tests turn it off to
#: check the general loop against the same brute force).
_FAST_PATH = True


def _fast_arrays(p: Packed) -> tuple:
    """1-D copies of the database's code and label words when each fits one uint64 (the
    kernels' tight loop), else empty arrays (the general loop)."""
    if _FAST_PATH and p.db_codes.shape[1] == 1 and p.db_labels.shape[1] == 1 and not p.single:
        return np.ascontiguousarray(p.db_codes[:, 0]), np.ascontiguousarray(p.db_labels[:, 0])
    return np.zeros(0, np.uint64), np.zeros(0, np.uint64)


def _summaries(p: Packed, cfg: EvalConfig, cut: np.ndarray, device: str) -> Dict[str, Any]:
    """Per-query summaries from the numba kernels or the torch path."""
    with _dynamic_schedule():
        return _summaries_inner(p, cfg, cut, device)


def _summaries_inner(p: Packed, cfg: EvalConfig, cut: np.ndarray, device: str
                     ) -> Dict[str, Any]:
    """See _summaries."""
    levels = cfg.pr_levels
    seed = np.uint64(cfg.seed & 0xFFFFFFFFFFFFFFFF)
    if device != "cpu":
        from hashbench.evaluation import _torch
        out = _torch.summaries(p, cut, levels, cfg.ties, int(seed), device)
    else:
        nq, nd = p.q_codes.shape[0], p.bits + 1
        hist = np.zeros((nq, nd), np.int64)
        relhist = np.zeros((nq, nd), np.int64)
        if cfg.ties == "tie-aware":
            _kernels.hist_kernel(p.q_codes, p.db_codes, p.q_labels, p.db_labels, p.single,
                                 *_fast_arrays(p), hist, relhist)
            out = {"hist": hist, "relhist": relhist}
        else:
            n_db = p.db_codes.shape[0]
            if not _kernels.fits(p.bits, n_db):
                raise DataError(
                    f"a database of {n_db} items at {p.bits} bits is too large for one "
                    f"evaluation with ranked ties ((b + 1) * 2**ceil(log2 N) <= 2**31 is "
                    f"needed); use ties='tie-aware' or evaluate against parts of the database")
            s = np.zeros((nq, len(cut)))
            r = np.zeros((nq, len(cut)), np.int64)
            pr_rank = np.zeros((nq, levels), np.int64)
            _kernels.rank_kernel(p.q_codes, p.db_codes, p.q_labels, p.db_labels, p.single,
                                 *_fast_arrays(p), p.bits, cut, levels,
                                 cfg.ties == "random", seed, 0,
                                 _kernels.reciprocals(n_db), hist, relhist, s, r, pr_rank,
                                 numba.get_num_threads())
            out = {"hist": hist, "relhist": relhist, "s": s, "r": r, "pr_rank": pr_rank}
    if cfg.ties == "tie-aware":
        nq = out["hist"].shape[0]
        n_db = p.db_codes.shape[0]
        hi, lo = _kernels.harmonic_table(n_db)
        eap = np.zeros((nq, len(cut)))
        ppos = np.zeros((nq, len(cut)))
        erc = np.zeros((nq, len(cut)))
        prprec = np.zeros((nq, levels))
        _kernels.tie_aware_kernel(out["hist"], out["relhist"], cut, levels, hi, lo,
                                  eap, ppos, erc, prprec)
        out.update(eap=eap, ppos=ppos, erc=erc, prprec=prprec)
    return out


def _mean(x: np.ndarray, empty: str) -> float:
    """Mean over queries; under "drop" over the non-NaN ones (NaN if none is left)."""
    if empty == "drop":
        keep = ~np.isnan(x)
        return float(x[keep].mean()) if keep.any() else float("nan")
    return float(x.mean())


def _col_mean(x: np.ndarray, empty: str) -> np.ndarray:
    """Column means over queries (rows); NaN rows skipped under "drop"."""
    if empty == "drop":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(x, axis=0) if len(x) else np.full(x.shape[1], np.nan)
    return x.mean(axis=0)


def evaluate(query_codes: Any, db_codes: Any, query_labels: Any, db_labels: Any,
             config: Optional[EvalConfig] = None) -> EvaluationResult:
    """Compute every metric of ``config`` in one pass over the data.

    Args:
        query_codes, db_codes: (n, b) 0/1 arrays (any numeric or bool dtype).
        query_labels, db_labels: (n, L) 0/1 multi-label matrices (relevant = sharing a
            label) or 1-D integer class vectors (relevant = same class).
        config: an :class:`EvalConfig` (defaults if None).

    Raises:
        DataError: malformed inputs (shape, values, NaN, mismatched widths, empty sets).
        ConfigError: bad options, or a CUDA device that is not there.
    """
    cfg = config if config is not None else EvalConfig()
    if not isinstance(cfg, EvalConfig):
        raise ConfigError(f"config must be an EvalConfig; got {type(cfg).__name__}")
    p = pack_inputs(query_codes, db_codes, query_labels, db_labels)
    device = _resolve_device(cfg.device)
    n_db = p.db_codes.shape[0]
    nq = p.q_codes.shape[0]
    k_eff, n_eff, cut = _cutoffs(cfg, n_db)
    col = {int(c): i for i, c in enumerate(cut)}
    sm = _summaries(p, cfg, cut, device)
    hist, relhist = sm["hist"], sm["relhist"]
    rtot = relhist.sum(axis=1)
    has_rel = rtot > 0
    drop = cfg.empty == "drop"
    tie_aware = cfg.ties == "tie-aware"
    metrics: Dict[str, float] = {}
    curves: Dict[str, np.ndarray] = {}
    per_query: Dict[str, np.ndarray] = {}

    # mAP@K
    for k, c in zip(cfg.topk, k_eff):
        ci = col[c]
        if tie_aware:
            eap, ppos = sm["eap"][:, ci], sm["ppos"][:, ci]
            with np.errstate(invalid="ignore", divide="ignore"):
                ap = np.where(ppos > 0, eap / np.where(ppos > 0, ppos, 1.0), np.nan) if drop \
                    else eap.copy()
        else:
            s, r = sm["s"][:, ci], sm["r"][:, ci]
            ap = np.where(r > 0, s / np.maximum(r, 1), np.nan if drop else 0.0)
        key = topk_key(k)
        per_query["AP" + key[3:]] = ap
        metrics[key] = _mean(ap, cfg.empty)

    # precision@N
    pn = []
    for k, c in zip(cfg.precision_at, n_eff):
        ci = col[c]
        hits = sm["erc"][:, ci] if tie_aware else sm["r"][:, ci].astype(np.float64)
        prec = hits / c
        per_query[f"P@{k}"] = prec
        metrics[f"P@{k}"] = float(prec.mean())
        pn.append(metrics[f"P@{k}"])
    curves["precision_at_n_n"] = np.array(cfg.precision_at, dtype=np.int64)
    curves["precision_at_n"] = np.array(pn, dtype=np.float64)

    # Hamming-radius precision and recall (independent of the tie order)
    cumn = np.cumsum(hist, axis=1)
    cumr = np.cumsum(relhist, axis=1)
    rad_p = np.where(cumn > 0, cumr / np.maximum(cumn, 1), 0.0)      # empty ball: 0
    rad_r = np.where(has_rel[:, None], cumr / np.maximum(rtot, 1)[:, None],
                     np.nan if drop else 0.0)
    curves["radius_precision"] = rad_p.mean(axis=0)
    curves["radius_recall"] = _col_mean(rad_r, cfg.empty)
    rad = min(cfg.radius, p.bits)
    per_query[f"P@r{cfg.radius}"] = rad_p[:, rad].copy()
    per_query[f"R@r{cfg.radius}"] = rad_r[:, rad].copy()
    metrics[f"P@r{cfg.radius}"] = float(curves["radius_precision"][rad])
    metrics[f"R@r{cfg.radius}"] = float(curves["radius_recall"][rad])

    # precision at evenly spaced recall levels
    if cfg.pr_levels > 0:
        lv = cfg.pr_levels
        if tie_aware:
            prp = sm["prprec"]
        else:
            j = np.arange(1, lv + 1, dtype=np.int64)
            mlev = (j[None, :] * rtot[:, None] + lv - 1) // lv
            prp = mlev / np.maximum(sm["pr_rank"], 1)
        prp = np.where(has_rel[:, None], prp, np.nan if drop else 0.0)
        curves["pr_recall"] = np.arange(1, lv + 1, dtype=np.float64) / lv
        curves["pr_precision"] = _col_mean(prp, cfg.empty)
    else:
        curves["pr_recall"] = np.zeros(0)
        curves["pr_precision"] = np.zeros(0)

    chance = rtot / n_db
    per_query["chance"] = chance
    metrics["chance"] = float(chance.mean())

    conf = cfg.to_dict()
    conf.update(device=device, distance="hamming", evaluator_version=EVALUATOR_VERSION,
                n_query=nq, n_db=n_db, bits=p.bits,
                labels="single" if p.single else "multi",
                topk_effective=k_eff, precision_at_effective=n_eff)
    return EvaluationResult(metrics, curves, per_query, conf)


def mean_average_precision(query_codes: Any, db_codes: Any, query_labels: Any, db_labels: Any,
                           topk: Optional[int] = 5000, ties: str = DEFAULT_TIES,
                           empty: str = "zero", *, preset: Optional[str] = None,
                           seed: int = 0, device: str = "auto") -> float:
    """mAP@topk (topk=None: the whole database) under the given conventions."""
    cfg = EvalConfig(topk=(topk,), precision_at=(), ties=ties, empty=empty, pr_levels=0,
                     seed=seed, device=device, preset=preset)
    return evaluate(query_codes, db_codes, query_labels, db_labels, cfg).metrics[topk_key(topk)]


def chance_level(query_labels: Any, db_labels: Any) -> float:
    """The fraction of relevant query-database pairs: the mAP-scale floor of a query set."""
    ql = np.asarray(query_labels)
    dl = np.asarray(db_labels)
    # Constant 1-bit codes: every item is at distance 0, so the counts are just relevance.
    p = pack_inputs(np.zeros((ql.shape[0] if ql.ndim else 0, 1), np.uint8),
                    np.zeros((dl.shape[0] if dl.ndim else 0, 1), np.uint8), ql, dl)
    hist = np.zeros((p.q_codes.shape[0], 2), np.int64)
    relhist = np.zeros_like(hist)
    with _dynamic_schedule():
        _kernels.hist_kernel(p.q_codes, p.db_codes, p.q_labels, p.db_labels, p.single,
                             *_fast_arrays(p), hist, relhist)
    return float(relhist.sum() / (hist.sum()))
