"""The tag methods' held-out objectives, on binary codes (the convergence and label-free criteria).

UDHT's L1 and the tag-binary baseline's L4 (Gattupalli & Li, sections 3.4.1 and 3.5),
evaluated on the 0/1 codes of held-out training items over all their ordered pairs i != j,
block by block (O(block x m) memory, never an m x m x b tensor). Codes rather than the
relaxed sigmoid outputs: retrieval ranks by the codes, and their loss does not depend on how
saturated the outputs are, so runs with different loss weights are compared on one scale.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch

from hashbench import DataError


#: the margin of the held-out L4, whatever the training margin: D of binary codes is at most 1,
#: so every dissimilar pair counts until its codes are complementary, and trials with different
#: training margins are scored on one scale
HELDOUT_L4_MARGIN = 1.0


def _code_blocks(codes: torch.Tensor, block: int = 1024) -> Iterator[tuple[int, torch.Tensor]]:
    """(start, D[start:start+block, :]) with D_ij = Hamming(c_i, c_j) / b, exact for 0/1 codes,
    and the diagonal set to NaN (pairs i != j only): O(block x m) memory, never m x m x b."""
    c = codes.to(torch.float64)
    ones = c.sum(1)
    m, b = c.shape
    for s in range(0, m, block):
        d = (ones[s: s + block, None] + ones[None, :] - 2.0 * c[s: s + block] @ c.T) / b
        r = torch.arange(d.shape[0])
        d[r, r + s] = float("nan")
        yield s, d


def heldout_l1(codes: torch.Tensor, w: torch.Tensor, valid: torch.Tensor, target_scale: float = 0.5) -> float:
    """UDHT's L1 on binary codes: mean over ordered pairs i != j of items with a tag vector of
    [Hamming(b_i, b_j)/b - target_scale (1 - cos(w_i, w_j))]^2 (the relaxed h1 replaced by the 0/1 code)."""
    keep = valid.to(torch.bool)
    c, w = codes[keep], w[keep].to(torch.float64)
    m = c.shape[0]
    if m < 2:
        raise DataError(f"the held-out L1 needs at least 2 held-out items with a tag vector, got {m}")
    wn = w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)
    total = 0.0
    for s, d in _code_blocks(c):
        err = (d - float(target_scale) * (1.0 - wn[s: s + d.shape[0]] @ wn.T)).pow(2)
        total += float(torch.nansum(err))
    return total / (m * (m - 1))


def heldout_l4(codes: torch.Tensor, tag_matrix: Any, valid: np.ndarray, margin: float = HELDOUT_L4_MARGIN) -> float:
    """The baseline's L4 on binary codes, over all ordered pairs i != j of tagged items (beta is
    their fraction of tag-sharing pairs), divided by the number of pairs (the ``mean`` reduction)."""
    keep = np.asarray(valid, dtype=bool)
    c, t = codes[torch.from_numpy(keep)], tag_matrix[np.flatnonzero(keep)]
    m = c.shape[0]
    if m < 2:
        raise DataError(f"the held-out L4 needs at least 2 held-out items with tags, got {m}")
    sum_sim, sum_dis, n_sim = 0.0, 0.0, 0.0
    for s, d in _code_blocks(c):
        sim = torch.from_numpy((t[s: s + d.shape[0]] @ t.T).toarray() > 0)
        off = ~torch.isnan(d)
        sim &= off
        n_sim += float(sim.sum())
        sum_sim += float(d[sim].sum())
        sum_dis += float(torch.relu(margin - d[~sim & off]).pow(2).sum())
    n_pairs = m * (m - 1)
    beta = n_sim / n_pairs
    return ((1.0 - beta) * sum_sim + beta * sum_dis) / n_pairs
