"""The torch path (GPU when available; also runs on torch's CPU device for testing).

It produces exactly the per-query summaries of the numba kernels (see ``_kernels``), so
the same finishing code turns them into metrics:

* the database stays packed on the device, 64 bits a word (codes and label masks: 16 bytes
  an item at 64 bits and <= 64 labels, 160 MB for ten million items), never as +-1 floats;
* distances by XOR and a SWAR popcount of the words (exact integer arithmetic);
* relevance by AND of the label masks (multi-label) or class equality;
* per-distance counts by scatter_add;
* ranks by sorting each query's row on (distance, tie key): a stable sort on distance for
  ``index``; distance * N + position in the query's permutation for ``random`` (the
  permutation comes from the same generator as the CPU path, so results are identical).
  Then cumulative sums give ordinals, S_c and R_c, and searchsorted the PR-level ranks.

Queries go in chunks so that a chunk's (chunk, N) working arrays stay within a device
memory budget: ``HASHBENCH_EVAL_DEVICE_BUDGET`` bytes (default 2 GiB) beyond the packed
database, at about ``_ROW_BYTES`` bytes per query-database pair (the sort's keys and order,
the sorted relevance, cumulative counts and sums). At N = 10 million one query row needs
~0.6 GB, so the default runs 3 queries at a time; a larger budget runs more.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from hashbench.evaluation import _kernels
from hashbench.evaluation._inputs import Packed

_ROW_BYTES = 64    # device bytes per (query, database item) pair of a chunk, about (see above)
_DEFAULT_BUDGET = 2 << 30


def device_budget() -> int:
    """Bytes the working arrays of one query chunk may take on the device."""
    import os

    text = os.environ.get("HASHBENCH_EVAL_DEVICE_BUDGET")
    if not text:
        return _DEFAULT_BUDGET
    try:
        value = int(float(text))
    except ValueError:
        from hashbench.errors import ConfigError

        raise ConfigError(f"HASHBENCH_EVAL_DEVICE_BUDGET must be a number of bytes, got {text!r}") from None
    return max(value, 1)


def _popcount64(x):  # type: ignore[no-untyped-def]
    """Bits set in each int64 (SWAR; arithmetic shifts are harmless under the masks, and the
    final multiply wraps modulo 2**64 as the method needs)."""
    m1, m2, m4 = 0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F
    x = x - ((x >> 1) & m1)
    x = (x & m2) + ((x >> 2) & m2)
    x = (x + (x >> 4)) & m4
    return (x * 0x0101010101010101) >> 56


def _as_i64(words: np.ndarray):  # type: ignore[no-untyped-def]
    import torch

    return torch.from_numpy(np.ascontiguousarray(words).view(np.int64))


def summaries(p: Packed, cut: np.ndarray, levels: int, ties: str, seed: int,
              device: str) -> Dict[str, Any]:
    """Per-query summaries (hist, relhist, and for ranked ties s, r, pr_rank) via torch."""
    import torch

    dev = torch.device("cpu" if device == "torch-cpu" else device)
    nbits = p.bits
    nq, n = p.q_codes.shape[0], p.db_codes.shape[0]
    nd = nbits + 1
    pin = dev.type == "cuda"
    # packed words, copied once (pinned, non-blocking on CUDA)
    def put(words: np.ndarray):  # type: ignore[no-untyped-def]
        t = _as_i64(words)
        return (t.pin_memory() if pin else t).to(dev, non_blocking=pin)
    dbc, qcc = put(p.db_codes), put(p.q_codes)
    if p.single:
        dbl = put(p.db_labels)[:, 0]
        qll = put(p.q_labels)[:, 0]
    else:
        dbl, qll = put(p.db_labels), put(p.q_labels)
    ranked = ties != "tie-aware"
    hist = np.zeros((nq, nd), np.int64)
    relhist = np.zeros((nq, nd), np.int64)
    nc = len(cut)
    s_out = np.zeros((nq, nc))
    r_out = np.zeros((nq, nc), np.int64)
    pr_rank = np.zeros((nq, levels), np.int64)
    chunk = max(1, min(nq, device_budget() // (_ROW_BYTES * max(n, 1))))
    cut_t = torch.as_tensor(np.asarray(cut, np.int64), device=dev)
    ranks = torch.arange(1, n + 1, device=dev, dtype=torch.float64)
    for q0 in range(0, nq, chunk):
        q1 = min(nq, q0 + chunk)
        dist = _distances(qcc[q0:q1], dbc)
        if p.single:
            rel = qll[q0:q1, None] == dbl[None, :]
        else:
            rel = _shares_a_label(qll[q0:q1], dbl)
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


def _distances(q, db):  # type: ignore[no-untyped-def]
    """(m, N) int64 Hamming distances from packed words, one word at a time."""
    dist = _popcount64(q[:, None, 0] ^ db[None, :, 0])
    for k in range(1, db.shape[1]):
        dist += _popcount64(q[:, None, k] ^ db[None, :, k])
    return dist


def _shares_a_label(q, db):  # type: ignore[no-untyped-def]
    """(m, N) bool: query and item share a label (label masks ANDed, one word at a time)."""
    rel = (q[:, None, 0] & db[None, :, 0]) != 0
    for k in range(1, db.shape[1]):
        rel |= (q[:, None, k] & db[None, :, k]) != 0
    return rel
