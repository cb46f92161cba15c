"""The shared evaluator: exact retrieval metrics for binary codes, with explicit conventions.

Usage::

    from hashbench.evaluation import evaluate, EvalConfig, mean_average_precision
    res = evaluate(query_codes, db_codes, query_labels, db_labels, EvalConfig())
    res.metrics["mAP@5000"], res.per_query["AP@5000"], res.config["ties"]

Inputs
------
Codes are (n, b) arrays of 0/1 (any numeric or bool dtype; +-1 codes are rejected with a
hint), or :class:`hashbench.codes.PackedBits` (``np.packbits`` rows, e.g. a stored cell's
codes memory-mapped by ``Cell.load_packed_codes``): these are read block by block, so a
database whose unpacked codes would not fit in memory is evaluated all the same (the
kernels hold b/8 + L/8 bytes per item, rounded up to 8). Multi-label matrices may be
PackedBits too. The results are exactly those of the unpacked arrays. Labels are (n, L) 0/1 multi-label matrices, where a database item is *relevant* to
a query when they share at least one label, or 1-D integer class vectors (relevant = same
class). Items are ranked by Hamming distance to the query, nearest first. N is the size of
the database, R (per query) its number of relevant items, rank i runs from 1 to N.

Metrics (names as in ``EvaluationResult.metrics``)
---------------------------------------------------
``mAP@K`` (K in ``topk``; ``None`` gives "mAP@all", K = N). With rel_i = 1 when the item at
rank i is relevant, P@i = (1/i) sum_{j<=i} rel_j and R_K = sum_{i<=K} rel_i,
AP@K = (1/R_K) sum_{i<=K} rel_i P@i (the field's standard definition); mAP@K is its mean
over queries. K > N means K = N (the whole database, no penalty for the missing items).
A query with R_K = 0 is governed by ``empty`` (below).

``P@N`` (N in ``precision_at``): relevant items among the top min(N, N_db), divided by
min(N, N_db) (a database smaller than N is not penalised); mean over queries.
``curves["precision_at_n"]`` lists them in the order of ``curves["precision_at_n_n"]``.

Hamming radius: for r = 0..b, the ball of radius r holds every item at distance <= r
(whole tie groups, so no tie convention applies). Precision(r) = relevant in the ball /
items in the ball, and **an empty ball counts as precision 0**; recall(r) = relevant in
the ball / R. ``curves["radius_precision"]``, ``curves["radius_recall"]`` (length b + 1)
are their means over queries; ``P@r{radius}``, ``R@r{radius}`` (default radius 2, so
"P@r2", "R@r2") are the values at ``radius`` (at b if radius > b).

Precision-recall curve at ``pr_levels`` (default 1,000) evenly spaced recall levels:
levels l_j = j / pr_levels for j = 1..pr_levels (so 0.001, 0.002, ..., 1.0; level 0 is not
included). For a query, the precision at level l_j is the precision at the first rank
where recall >= l_j, i.e. at the rank of the m_j-th relevant item, m_j = ceil(j R /
pr_levels) (computed in integers), and equals m_j / rank(m_j) (no interpolation).
``curves["pr_recall"]`` holds the levels, ``curves["pr_precision"]`` the mean over queries.

``chance``: the fraction of relevant query-database pairs, sum_q R_q / (Q N): the expected
precision of a random ranking, reported beside the methods. Also ``chance_level()``.

Conventions (each an ``EvalConfig`` field, recorded in ``result.config``)
------------------------------------------------------------------------
``ties`` -- the order of items at equal Hamming distance:

* ``"index"``: by database index (a stable sort on distance). Splits store the database
  in item order, so this follows the dataset's file order (NUS-WIDE groups its images by
  concept): not the default. The peer presets use it, as their evaluators do.
* ``"random"`` (default): each query q has its own uniformly random permutation of the database
  indices, ordering items within a tie group; it comes from a Fisher-Yates shuffle driven
  by splitmix64 seeded with (``seed``, q) (``_kernels.fill_permutation``), so the result
  depends on ``seed`` only: not on chunking, threads or device.
* ``"tie-aware"``: the exact expectation of each per-query metric over all orderings of
  the tied items (every tie group permuted uniformly and independently) (McSherry &
  Najork, ECIR 2008; He et al., CVPR 2018). Per metric:

  - AP@K when K cuts no tie group (also K = N): R_K is fixed, and by linearity each group
    of n items after n_b items (r_b relevant), with r relevant, contributes
    (r/n)[(r_b + 1) g1 + (r - 1)/(n - 1) g2] to the numerator, g1 = H(n_b + n) - H(n_b),
    g2 = sum_{t=1..n} (t - 1)/(n_b + t) = n - (n_b + 1) g1 (H: harmonic numbers, tabled in
    double-double so differences keep full precision).
  - AP@K when K keeps only k < n items of a group: R_K = r_b + X with X hypergeometric
    (population n, r successes, k draws), so AP is a ratio of dependent random variables.
    We take its exact expectation by conditioning on X = x:
    E[AP] = sum_x P(X = x) (A + E[S | x]) / (r_b + x), where A is the expected numerator
    from the earlier groups (independent of this group's order), and E[S | x] is the
    formula above with (n, r) replaced by (k, x) (x relevant items uniformly among the k
    kept slots); terms with r_b + x = 0 are 0.
  - P@N: E[relevant in the top N] = r_b + k r / n (linear, exact).
  - PR level j: E[m_j / rank(m_j)]; the m_j-th relevant item is the i-th relevant of its
    group, and its slot T has P(T = t) = C(t - 1, i - 1) C(n - t, r - i) / C(n, r); the sum
    over t is taken directly (a closed form exists only when r = 1 or r = n).
  - Radius metrics and chance do not depend on the tie order.

  The sums over a hypergeometric variable (AP@K's straddling group, PR levels) start at the
  pmf's mode and stop where a term falls below 1e-17 of the mode's term: both pmfs are
  log-concave, so the terms left out weigh less than n * 1e-17 of the total (n <= N), far
  below the 1e-9 to which results are checked. Cost: O(b) per query per K plus, per PR
  level, a few standard deviations of the slot distribution: typically far cheaper than
  the pass over the database, but it grows with the tie groups' sizes (12-bit codes on
  large databases make the PR curve's tie-aware form the most expensive part).

``empty`` -- a query with no relevant item in the top K:

* ``"zero"`` (default; DeepHash-pytorch's CalcTopMap): AP@K = 0, and the mean is over all
  queries.
* ``"drop"`` (thuml/DeepHash's get_mAPs): the query is left out of mAP@K (its per-query
  AP is NaN); mAP is the mean over the remaining queries (NaN if none remains).
  Under tie-aware ties, R_K > 0 may hold in some orderings only: the query's value is then
  E[AP@K | R_K > 0] = E[AP@K] / P(R_K > 0), and it is dropped only when P(R_K > 0) = 0.

``empty`` also decides what a query with no relevant item in the whole database (R = 0)
contributes to the recall-based quantities (radius recall, "R@r2", the PR curve): 0 at
every level/radius under "zero", left out (NaN per query) under "drop". Radius precision
and P@N always average over all queries (an empty ball is precision 0 in both modes).

``preset``:

* ``"deephash-pytorch"``: ties "index", empty "zero"; reproduces swuxyj/DeepHash-pytorch
  ``CalcTopMap(rB, qB, retrievalL, queryL, topk)`` exactly on inputs without ties (it
  ranks with the unstable ``np.argsort``, so with ties no order is reproducible). Its
  ``topk = -1`` slices ``gnd[0:-1]``, i.e. it drops the last ranked item; this preset
  accepts ``topk=-1`` with that meaning (metric "mAP@-1"). ``topk=None`` is the full
  database.
* ``"thuml"``: ties "index", empty "drop"; reproduces thuml/DeepHash ``get_mAPs`` (mean of
  AP@R over the queries with at least one relevant item in the top R) exactly on inputs
  without ties (it also sorts with unstable sorts).

``device``: "auto" (CUDA through torch when available, else "cpu"), "cpu" (the numba
kernels), "cuda"/"cuda:N", or "torch-cpu" (the torch code on torch's CPU device; used to
test the GPU code without a GPU). All give the same results to 1e-9; ``config["device"]``
records the one used. On a device the database stays packed (16 bytes an item at 64 bits
and <= 64 labels) and queries go in chunks whose working arrays stay within
``HASHBENCH_EVAL_DEVICE_BUDGET`` bytes (default 2 GiB; about 64 bytes per query-item pair).

Speed and memory: no sort and no (Q, N) matrix on the CPU path; per query, one counting
pass over the database and one pass over its relevant items (see ``_kernels``); memory is
the packed codes and labels (b/8 + L/8 bytes per item, rounded up to 8), per thread about
4 bytes per relevant item, and O(b + pr_levels) per query. ``ties="random"`` also
shuffles N indices per query and reads the database in that order (several times slower
than "index"). ``benchmarks/evaluator.py`` measures speed and memory. With "index" or
"random" ties, one evaluation takes databases with (b + 1) * 2**ceil(log2 N) <= 2**31
(16.7 million items at 64 bits, 33.5 million at 48 bits, 2**31 / (b + 1) in general);
beyond that a DataError says so ("tie-aware" has no such limit).
"""

from __future__ import annotations

from hashbench.evaluation.config import EMPTY, PRESETS, TIES, EvalConfig
from hashbench.evaluation.core import (
    EvaluationResult,
    chance_level,
    evaluate,
    mean_average_precision,
)

__all__ = [
    "EMPTY",
    "PRESETS",
    "TIES",
    "EvalConfig",
    "EvaluationResult",
    "chance_level",
    "evaluate",
    "mean_average_precision",
]
