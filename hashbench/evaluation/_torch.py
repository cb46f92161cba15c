"""The torch path (GPU when available; also runs on torch's CPU device for testing).

It produces exactly the per-query summaries of the numba kernels (see ``_kernels``), so
the same finishing code turns them into metrics:

* distances by one matmul of +-1 codes: every product and partial sum is a small integer
  (|sum| <= b <= 2048), exact in any float format torch may use (fp32, TF32, fp16
  accumulation), so rounding the result gives the exact Hamming distance;
* relevance by a matmul of the 0/1 label matrices (counts <= L, exact) or class equality;
* per-distance counts by scatter_add;
* ranks by sorting each query's row on (distance, tie key): a stable sort on distance for
  ``index``; distance * N + position in the query's permutation for ``random`` (the
  permutation comes from the same generator as the CPU path, so results are identical).
  Then cumulative sums give ordinals, S_c and R_c, and searchsorted the PR-level ranks.

Queries go in chunks so that a chunk's (chunk, N) arrays stay within a fixed budget.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from hashbench.evaluation import _kernels
from hashbench.evaluation._inputs import Packed, unpack_bits

_ELEMS = 1 << 24   # elements per (chunk, N) array: bounds device memory (~8 arrays of this)


def summaries(p: Packed, cut: np.ndarray, levels: int, ties: str, seed: int,
              device: str) -> Dict[str, Any]:
    """Per-query summaries (hist, relhist, and for ranked ties s, r, pr_rank) via torch."""
    import torch

    dev = torch.device("cpu" if device == "torch-cpu" else device)
    nbits = p.bits
    nq, n = p.q_codes.shape[0], p.db_codes.shape[0]
    nd = nbits + 1
    # +-1 codes: <q, x> = b - 2 d, so d = (b - <q, x>) / 2
    dbc = torch.from_numpy(unpack_bits(p.db_codes, nbits)).to(dev, torch.float32) * 2 - 1
    qcc = torch.from_numpy(unpack_bits(p.q_codes, nbits)).to(dev, torch.float32) * 2 - 1
    if p.single:
        dbl = torch.from_numpy(p.db_labels[:, 0].view(np.int64)).to(dev)
        qll = torch.from_numpy(p.q_labels[:, 0].view(np.int64)).to(dev)
    else:
        width = p.db_labels.shape[1] * 64
        dbl = torch.from_numpy(unpack_bits(p.db_labels, width)).to(dev, torch.float32)
        qll = torch.from_numpy(unpack_bits(p.q_labels, width)).to(dev, torch.float32)
    ranked = ties != "tie-aware"
    hist = np.zeros((nq, nd), np.int64)
    relhist = np.zeros((nq, nd), np.int64)
    nc = len(cut)
    s_out = np.zeros((nq, nc))
    r_out = np.zeros((nq, nc), np.int64)
    pr_rank = np.zeros((nq, levels), np.int64)
    chunk = max(1, min(nq, _ELEMS // max(n, 1)))
    cut_t = torch.as_tensor(np.asarray(cut, np.int64), device=dev)
    ranks = torch.arange(1, n + 1, device=dev, dtype=torch.float64)
    for q0 in range(0, nq, chunk):
        q1 = min(nq, q0 + chunk)
        ip = qcc[q0:q1] @ dbc.T
        dist = torch.round((nbits - ip) * 0.5).to(torch.int64)
        del ip
        if p.single:
            rel = qll[q0:q1, None] == dbl[None, :]
        else:
            rel = (qll[q0:q1] @ dbl.T) > 0.5
        m = q1 - q0
        h = torch.zeros((m, nd), dtype=torch.int64, device=dev)
        h.scatter_add_(1, dist, torch.ones_like(dist))
        rh = torch.zeros((m, nd), dtype=torch.int64, device=dev)
        rh.scatter_add_(1, dist, rel.to(torch.int64))
        hist[q0:q1] = h.cpu().numpy()
        relhist[q0:q1] = rh.cpu().numpy()
        if not ranked:
            continue
        if ties == "index":
            order = torch.sort(dist, dim=1, stable=True).indices
        else:
            perm = np.empty((m, n), np.int64)
            _kernels.fill_permutations(np.uint64(seed), q0, perm)
            perm_t = torch.from_numpy(perm).to(dev)
            pos = torch.empty_like(perm_t)
            pos.scatter_(1, perm_t, torch.arange(n, device=dev).expand(m, n))
            order = torch.sort(dist * n + pos, dim=1).indices
            del perm_t, pos
        del dist
        rel_s = torch.gather(rel, 1, order).to(torch.int64)
        del order, rel
        cum = torch.cumsum(rel_s, dim=1)
        zero = torch.zeros((), dtype=torch.float64, device=dev)
        val = torch.where(rel_s > 0, cum.to(torch.float64) / ranks, zero)
        csum = torch.cumsum(val, dim=1)
        del val, rel_s
        pos_c = (cut_t - 1).clamp(min=0).expand(m, nc)
        zero_cut = (cut_t == 0).expand(m, nc)
        s_c = torch.where(zero_cut, 0.0, torch.gather(csum, 1, pos_c))
        r_c = torch.where(zero_cut, 0, torch.gather(cum, 1, pos_c))
        s_out[q0:q1] = s_c.cpu().numpy()
        r_out[q0:q1] = r_c.cpu().numpy()
        if levels > 0:
            rtot = cum[:, -1:]
            j = torch.arange(1, levels + 1, device=dev, dtype=torch.int64)
            mlev = (j[None, :] * rtot + levels - 1) // levels
            first = torch.searchsorted(cum.contiguous(), mlev.contiguous(), right=False) + 1
            pr_rank[q0:q1] = torch.where(rtot > 0, first, 0).cpu().numpy()
    return {"hist": hist, "relhist": relhist, "s": s_out, "r": r_out, "pr_rank": pr_rank}
