"""numba kernels of the evaluator's CPU path.

Hamming distances are integers in 0..b, so nothing is sorted. Per query:

1. a counting pass over the database, in tie order (database index order, or the query's
   random permutation), keeps one packed counter per distance d (items, relevant items).
   Since items arrive in tie order, the counters after an item's update are its position
   p within its distance group and, if relevant, its ordinal o among the group's relevant
   items; p is written to slot o - 1 of the group's bucket (branch-free), so each bucket
   lists its group's relevant items' positions in increasing order;
2. prefix sums of the counts give, per group, the items and relevant items ranked before
   it (start, rstart): the k-th listed item of group d has rank start + p and ordinal
   rstart + k. A tight (vectorisable) loop per bucket sums ordinal/rank; a cut-off inside
   a group is a binary search in its bucket; the rank of the m-th relevant item (PR
   levels) is a direct lookup.

Everything is O(N) per query with no (Q, N) matrix. Queries run in parallel (numba prange
over query chunks). Per thread, the buckets reserve (b + 1) x 2**ceil(log2 N) uint32 of
address space, of which only the pages that relevant items reach are ever touched.

The tie-aware kernel needs only the per-distance counts: every expectation is closed form
(harmonic sums) or a short sum over a hypergeometric variable (see the package docstring).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

_TAIL = 1e-17         # log-concave pmf terms below this fraction of the mode's are not added
_MASK32 = np.uint64(0xFFFFFFFF)


@intrinsic
def _popcount(typingctx, x):  # type: ignore[no-untyped-def]
    """Population count of a uint64 (LLVM ctpop: one POPCNT instruction)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.ctpop(args[0])

    return sig, codegen


# --------------------------------------------------------------------------- random ties

@njit(inline="always", cache=True)
def _splitmix(state: np.uint64) -> tuple:
    """One splitmix64 step: (new state, 64 random bits)."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True)
def fill_permutation(seed: np.uint64, q: np.uint64, out: np.ndarray) -> None:
    """Write query q's tie-order permutation of 0..n-1 into ``out`` (int32 or int64).

    Fisher-Yates driven by splitmix64 seeded with mix(mix(seed) ^ q), with an unbiased
    bounded draw (Lemire's multiply-and-reject on 32 random bits); so the permutation is
    uniform and depends only on (seed, q, n): not on chunking, threads or device.
    """
    n = out.shape[0]
    _, s = _splitmix(seed)
    state, _ = _splitmix(s ^ q)
    for t in range(n):
        out[t] = t
    for t in range(n - 1, 0, -1):
        rng = np.uint64(t + 1)
        state, z = _splitmix(state)
        m = (z >> np.uint64(32)) * rng
        low = m & _MASK32
        if low < rng:
            thr = (np.uint64(0x100000000) - rng) % rng
            while low < thr:
                state, z = _splitmix(state)
                m = (z >> np.uint64(32)) * rng
                low = m & _MASK32
        j = int(m >> np.uint64(32))
        tmp = out[t]
        out[t] = out[j]
        out[j] = tmp


@njit(parallel=True, cache=True)
def fill_permutations(seed: np.uint64, q0: int, out: np.ndarray) -> None:
    """Row k of ``out`` gets query (q0 + k)'s permutation (see fill_permutation)."""
    for k in prange(out.shape[0]):
        fill_permutation(seed, np.uint64(q0 + k), out[k])


# --------------------------------------------------------------------------- ranked ties
#
# Per-distance counters pack two counts in one uint64: items in the low 32 bits, relevant
# items in the high 32 bits, so one add updates both (N < 2**32).

_HI = np.uint64(32)
_LO = np.uint64(0xFFFFFFFF)


@njit(inline="always", cache=True)
def _pass1_fast(qw: np.uint64, lw: np.uint64, dc1: np.ndarray, dl1: np.ndarray, store: bool,
                cnt: np.ndarray, bk: np.ndarray) -> None:
    """_pass1 for one-word codes and labels, in index order, on 1-D arrays (a tight loop).

    Here the high half of cnt[d] must start at d * 2**lg (see _reset): it then is directly
    the bucket slot past the group's last relevant item.
    """
    one = np.uint64(1)
    for i in range(dc1.shape[0]):
        d = _popcount(qw ^ dc1[i])
        r = np.uint64((lw & dl1[i]) != 0)
        c = cnt[d] + (one + (r << _HI))
        cnt[d] = c
        if store:
            bk[(c >> _HI) - r] = np.uint32(c & _LO)


@njit(inline="always", cache=True)
def _pass1_fast2(qw0: np.uint64, lw0: np.uint64, qw1: np.uint64, lw1: np.uint64, dc1: np.ndarray,
                 dl1: np.ndarray, cnt0: np.ndarray, cnt1: np.ndarray, bk0: np.ndarray,
                 bk1: np.ndarray) -> None:
    """_pass1_fast for two queries in one pass over the database: each item's words are
    read once, and the two queries' counter updates form independent dependency chains
    (a counter's load-add-store is the loop's critical path), so they overlap."""
    one = np.uint64(1)
    for i in range(dc1.shape[0]):
        c = dc1[i]
        lab = dl1[i]
        d0 = _popcount(qw0 ^ c)
        d1 = _popcount(qw1 ^ c)
        r0 = np.uint64((lw0 & lab) != 0)
        r1 = np.uint64((lw1 & lab) != 0)
        c0 = cnt0[d0] + (one + (r0 << _HI))
        c1 = cnt1[d1] + (one + (r1 << _HI))
        cnt0[d0] = c0
        cnt1[d1] = c1
        bk0[(c0 >> _HI) - r0] = np.uint32(c0 & _LO)
        bk1[(c1 >> _HI) - r1] = np.uint32(c1 & _LO)


@njit(inline="always", cache=True)
def _reset(cnt: np.ndarray, lg: np.uint64, offset: bool) -> None:
    """Zero the counters; with ``offset``, start group d's relevant count at d * 2**lg."""
    for d in range(cnt.shape[0]):
        cnt[d] = (np.uint64(d) << lg) << _HI if offset else np.uint64(0)


@njit(inline="always", cache=True)
def _distance_relevance(qc: np.ndarray, dc: np.ndarray, ql: np.ndarray, dl: np.ndarray, q: int, i: int,
                        single: bool) -> tuple:
    """(Hamming distance, relevance 0/1) of database item i to query q, as uint64s (any number of
    words; relevance: a shared label, or the same class when ``single``)."""
    d = np.uint64(0)
    for k in range(qc.shape[1]):
        d += _popcount(qc[q, k] ^ dc[i, k])
    if single:
        rb = ql[q, 0] == dl[i, 0]
    else:
        rb = False
        for k in range(ql.shape[1]):
            rb |= (ql[q, k] & dl[i, k]) != 0
    return d, np.uint64(rb)


@njit(inline="always", cache=True)
def _pass1(qc: np.ndarray, dc: np.ndarray, ql: np.ndarray, dl: np.ndarray, q: int,
           single: bool, store: bool, cnt: np.ndarray, bk: np.ndarray, lg: np.uint64) -> None:
    """Counting pass for query q in index order (random ties: _keys, then _pass1_keyed).

    After an item's add to cnt[d], the two counts are, because items arrive in tie order,
    its position p within its distance group and, for a relevant item, its ordinal o among
    the group's relevant items. If ``store``, p is written to slot o - 1 of group d's
    bucket, bk[d * 2**lg + o - 1]: the group's relevant items in tie order. The write is
    branch-free: a non-relevant item writes slot o (the next free one), which the group's
    next relevant item overwrites, or which lies past the group's last one.
    """
    one = np.uint64(1)
    for i in range(dc.shape[0]):
        d, r = _distance_relevance(qc, dc, ql, dl, q, i, single)
        c = cnt[d] + (one + (r << _HI))
        cnt[d] = c
        if store:
            bk[(d << lg) + (c >> _HI) - r] = np.uint32(c & _LO)


@njit(inline="always", cache=True)
def _keys(qc: np.ndarray, dc: np.ndarray, ql: np.ndarray, dl: np.ndarray, q: int, single: bool,
          dc1: np.ndarray, dl1: np.ndarray, key: np.ndarray) -> None:
    """key[i] = 2 d + r for every item in index order (d: Hamming distance to query q, r:
    relevance; d <= 2048, so a uint16 holds it). Sequential reads of the database, so the
    random-order pass that follows gathers 2 bytes an item instead of its code and labels."""
    if dc1.shape[0] > 0:
        qw = qc[q, 0]
        lw = ql[q, 0]
        for i in range(dc1.shape[0]):
            key[i] = np.uint16((_popcount(qw ^ dc1[i]) << np.uint64(1))
                               | np.uint64((lw & dl1[i]) != 0))
        return
    for i in range(dc.shape[0]):
        d, r = _distance_relevance(qc, dc, ql, dl, q, i, single)
        key[i] = np.uint16((d << np.uint64(1)) | r)


@njit(inline="always", cache=True)
def _pass1_keyed(key: np.ndarray, perm: np.ndarray, cnt: np.ndarray, bk: np.ndarray) -> None:
    """_pass1 in the order ``perm`` from precomputed keys (see _keys); counters offset as in
    _pass1_fast, so cnt's high half is directly the bucket slot."""
    one = np.uint64(1)
    for t in range(perm.shape[0]):
        k = np.uint64(key[perm[t]])
        d = k >> one
        r = k & one
        c = cnt[d] + (one + (r << _HI))
        cnt[d] = c
        bk[(c >> _HI) - r] = np.uint32(c & _LO)


@njit(fastmath={"reassoc", "contract"}, cache=True)
def _segment_sum(bk: np.ndarray, k0: int, k1: int, start: int, ord0: int,
                 inv: np.ndarray) -> float:
    """sum over k in k0..k1-1 of (ord0 + k + 1) / (start + bk[k]): ordinal / rank of a
    group's relevant items (reassociation lets it vectorise; error ~1e-16 relative)."""
    s = 0.0
    for k in range(k0, k1):
        s += (ord0 + k + 1) * inv[start + bk[k]]
    return s


@njit(cache=True)
def _count_le(bk: np.ndarray, lo: int, hi: int, x: int) -> int:
    """Number of entries <= x in the increasing run bk[lo:hi] (binary search)."""
    a, b = lo, hi
    while a < b:
        m = (a + b) >> 1
        if bk[m] <= x:
            a = m + 1
        else:
            b = m
    return a - lo


def bucket_bits(n: int) -> int:
    """log2 of a group bucket's capacity: the smallest power of two >= n."""
    return max(0, (n - 1).bit_length())


def fits(nbits: int, n: int) -> bool:
    """Whether rank_kernel can take a database of n items at nbits bits: the per-thread
    bucket reservation (b + 1) 2**lg <= 2**31 entries (8 GiB of address space, of which
    only ~4 bytes per relevant item are touched; counts then stay below 2**32)."""
    return (nbits + 1) << bucket_bits(n) <= (1 << 31)


@njit(cache=True)
def _finish_query(q: int, cnt: np.ndarray, bk: np.ndarray, fast: bool, cap: int, cut: np.ndarray,
                  levels: int, inv: np.ndarray, nitems: np.ndarray, nrel: np.ndarray,
                  start: np.ndarray, rstart: np.ndarray, gsum: np.ndarray, hist: np.ndarray,
                  relhist: np.ndarray, s_out: np.ndarray, r_out: np.ndarray,
                  pr_rank: np.ndarray) -> None:
    """Query q's summaries from its counters and buckets after the counting pass."""
    nd = cnt.shape[0]
    nc = cut.shape[0]
    a = 0
    ra = 0
    for d in range(nd):
        nitems[d] = np.int64(cnt[d] & _LO)
        nrel[d] = np.int64(cnt[d] >> _HI) - (d * cap if fast else 0)
        start[d] = a
        rstart[d] = ra
        a += nitems[d]
        ra += nrel[d]
        # every relevant item of group d: rank start + p, ordinal rstart + k + 1
        gsum[d] = _segment_sum(bk, d * cap, d * cap + nrel[d], start[d],
                               rstart[d] - d * cap, inv)
        hist[q, d] = nitems[d]
        relhist[q, d] = nrel[d]
    rtot = ra
    # cut-offs: whole groups before the cut, then the split group's first items
    g = 0
    s = 0.0
    for ci in range(nc):
        c = cut[ci]
        while g < nd and start[g] + nitems[g] <= c:
            s += gsum[g]
            g += 1
        s_c = s
        r_c = rstart[g] if g < nd else rtot
        if g < nd and start[g] < c:
            # a bucket holds its group's in-group positions in increasing order
            k = _count_le(bk, g * cap, g * cap + nrel[g], c - start[g])
            s_c += _segment_sum(bk, g * cap, g * cap + k, start[g],
                                rstart[g] - g * cap, inv)
            r_c += k
        s_out[q, ci] = s_c
        r_out[q, ci] = r_c
    # PR levels: the m-th relevant item is item m - rstart[d] of its group's bucket
    if rtot > 0:
        d = 0
        for lv in range(levels):
            m = ((lv + 1) * rtot + levels - 1) // levels
            while rstart[d] + nrel[d] < m:
                d += 1
            pr_rank[q, lv] = start[d] + bk[d * cap + m - rstart[d] - 1]


@njit(parallel=True, cache=True)
def rank_kernel(qc: np.ndarray, dc: np.ndarray, ql: np.ndarray, dl: np.ndarray, single: bool,
                dc1: np.ndarray, dl1: np.ndarray, nbits: int, cut: np.ndarray, levels: int,
                random: bool, seed: np.uint64, q_offset: int, inv: np.ndarray,
                hist: np.ndarray, relhist: np.ndarray, s_out: np.ndarray, r_out: np.ndarray,
                pr_rank: np.ndarray, nslots: int) -> None:
    """Per-query summaries under a total tie order (index, or seeded random).

    Outputs (row q): hist[q, d] items and relhist[q, d] relevant items at distance d;
    s_out[q, c] = sum of ordinal/rank and r_out[q, c] = count over relevant items with
    rank <= cut[c] (cut ascending, each in 0..N); pr_rank[q, j] = rank of the m_j-th
    relevant item, m_j = ceil((j + 1) R / levels) (0 where R = 0). inv[k] = 1/k, k <= N
    (a multiplication by it replaces a division per relevant item: error <= 1 ulp).
    dc1, dl1: when non-empty, the one-word codes and label masks of the database as 1-D
    arrays (the fast path; index ties, multi-label only). nslots: numba.get_num_threads()
    of the caller (scratch is kept per thread; calling it in here would stop caching).

    Memory: per thread a bucket array of (b + 1) * 2**lg uint32 is reserved (2**lg >= N),
    but only pages that relevant items reach are touched (~4 bytes per relevant item).
    """
    nq = qc.shape[0]
    n = dc.shape[0]
    nd = nbits + 1
    nc = cut.shape[0]
    lgi = 0
    while (1 << lgi) < n:
        lgi += 1
    lg = np.uint64(lgi)
    cap = 1 << lgi
    fast = dc1.shape[0] > 0 and not random
    nchunks = min(nq, 64)
    # Scratch per thread, not per chunk: a fresh bucket reservation per chunk costs a page
    # fault for every page its relevant items touch again (about 20% of an evaluation).
    bks = [np.empty(nd * cap, np.uint32) for _ in range(nslots)]
    bks2 = [np.empty(nd * cap if fast and nq > 1 else 0, np.uint32) for _ in range(nslots)]
    perms = [np.empty(n if random else 0, np.int32) for _ in range(nslots)]   # n < 2**31
    keys = [np.empty(n if random else 0, np.uint16) for _ in range(nslots)]
    for ch in prange(nchunks):
        tid = numba.get_thread_id()
        bk = bks[tid]
        perm = perms[tid]
        key = keys[tid]
        cnt = np.zeros(nd, np.uint64)
        nitems = np.zeros(nd, np.int64)
        nrel = np.zeros(nd, np.int64)
        start = np.zeros(nd, np.int64)
        rstart = np.zeros(nd, np.int64)
        gsum = np.zeros(nd)
        q0 = ch * nq // nchunks
        q1 = (ch + 1) * nq // nchunks
        if fast:
            # two queries per pass over the database (see _pass1_fast2), the odd one alone
            bk2 = bks2[tid]
            cnt2 = np.zeros(nd, np.uint64)
            q = q0
            while q < q1:
                _reset(cnt, lg, True)
                if q + 1 < q1:
                    _reset(cnt2, lg, True)
                    _pass1_fast2(qc[q, 0], ql[q, 0], qc[q + 1, 0], ql[q + 1, 0], dc1, dl1,
                                 cnt, cnt2, bk, bk2)
                    _finish_query(q, cnt, bk, True, cap, cut, levels, inv, nitems, nrel, start,
                                  rstart, gsum, hist, relhist, s_out, r_out, pr_rank)
                    _finish_query(q + 1, cnt2, bk2, True, cap, cut, levels, inv, nitems, nrel,
                                  start, rstart, gsum, hist, relhist, s_out, r_out, pr_rank)
                    q += 2
                else:
                    _pass1_fast(qc[q, 0], ql[q, 0], dc1, dl1, True, cnt, bk)
                    _finish_query(q, cnt, bk, True, cap, cut, levels, inv, nitems, nrel, start,
                                  rstart, gsum, hist, relhist, s_out, r_out, pr_rank)
                    q += 1
        elif random:
            for q in range(q0, q1):
                _reset(cnt, lg, True)
                fill_permutation(seed, np.uint64(q_offset + q), perm)
                _keys(qc, dc, ql, dl, q, single, dc1, dl1, key)
                _pass1_keyed(key, perm, cnt, bk)
                _finish_query(q, cnt, bk, True, cap, cut, levels, inv, nitems, nrel, start,
                              rstart, gsum, hist, relhist, s_out, r_out, pr_rank)
        else:
            for q in range(q0, q1):
                _reset(cnt, lg, False)
                _pass1(qc, dc, ql, dl, q, single, True, cnt, bk, lg)
                _finish_query(q, cnt, bk, False, cap, cut, levels, inv, nitems, nrel, start,
                              rstart, gsum, hist, relhist, s_out, r_out, pr_rank)
@njit(parallel=True, cache=True)
def hist_kernel(qc: np.ndarray, dc: np.ndarray, ql: np.ndarray, dl: np.ndarray, single: bool,
                dc1: np.ndarray, dl1: np.ndarray, hist: np.ndarray, relhist: np.ndarray) -> None:
    """Only the per-distance counts (all that tie-aware metrics need)."""
    nq = qc.shape[0]
    nd = hist.shape[1]
    nchunks = min(nq, 64)
    fast = dc1.shape[0] > 0
    for ch in prange(nchunks):
        cnt = np.zeros(nd, np.uint64)
        bk = np.empty(0, np.uint32)
        for q in range(ch * nq // nchunks, (ch + 1) * nq // nchunks):
            cnt[:] = 0
            if fast:
                _pass1_fast(qc[q, 0], ql[q, 0], dc1, dl1, False, cnt, bk)
            else:
                _pass1(qc, dc, ql, dl, q, single, False, cnt, bk, np.uint64(0))
            for d in range(nd):
                hist[q, d] = np.int64(cnt[d] & _LO)
                relhist[q, d] = np.int64(cnt[d] >> _HI)


# --------------------------------------------------------------------------- tie-aware

@njit(cache=True)
def harmonic_table(n: int) -> tuple:
    """H_k = sum_{t<=k} 1/t for k = 0..n as a double-double (hi, lo) pair.

    Differences H_a - H_b of nearby large a, b are then accurate to full double precision
    (a plain double table loses about log10(b) digits to cancellation).
    """
    hi = np.zeros(n + 1)
    lo = np.zeros(n + 1)
    s = 0.0
    e = 0.0
    for k in range(1, n + 1):
        x = 1.0 / k
        # TwoSum of s and x, then the rounding error of 1/k itself (fma-free Dekker split
        # is not needed: the error of 1/k is ~1e-16 relative, below what we need)
        t = s + x
        bv = t - s
        err = (s - (t - bv)) + (x - bv)
        s = t
        e += err
        hi[k] = s
        lo[k] = e
    return hi, lo


@njit(inline="always", cache=True)
def _hdiff(hi: np.ndarray, lo: np.ndarray, a: int, b: int) -> float:
    """sum_{t=b+1}^{a} 1/t for a >= b."""
    if a - b <= 16:
        s = 0.0
        for t in range(b + 1, a + 1):
            s += 1.0 / t
        return s
    return (hi[a] - hi[b]) + (lo[a] - lo[b])


@njit(cache=True)
def _group_sum(hi: np.ndarray, lo: np.ndarray, nb: int, rb: int, k: int, x: float) -> float:
    """E[sum of ordinal/rank over relevant items in the first k slots of a group].

    The group starts after nb items (rb of them relevant); x relevant items are placed
    uniformly at random among its first k slots. Slot t (rank nb + t) is relevant with
    probability x/k; given that, the expected number of relevant items in the t - 1 slots
    before it is (t - 1)(x - 1)/(k - 1). Summing (x/k)(rb + 1 + (t-1)(x-1)/(k-1))/(nb + t)
    over t gives (x/k)((rb + 1) g1 + (x - 1)/(k - 1) g2) with g1 = H_{nb+k} - H_nb and
    g2 = sum (t-1)/(nb+t) = k - (nb + 1) g1.
    """
    if x <= 0.0 or k <= 0:
        return 0.0
    g1 = _hdiff(hi, lo, nb + k, nb)
    if k == 1:
        return x * (rb + 1.0) * g1
    if k <= 64:
        g2 = 0.0
        for t in range(2, k + 1):
            g2 += (t - 1.0) / (nb + t)
    else:
        g2 = k - (nb + 1.0) * g1
    return (x / k) * ((rb + 1.0) * g1 + (x - 1.0) / (k - 1.0) * g2)


@njit(cache=True)
def _straddle(hi: np.ndarray, lo: np.ndarray, a_sum: float, nb: int, rb: int, n: int, r: int,
              k: int) -> tuple:
    """(E[AP_K * 1{R_K > 0}], P(R_K > 0)) when the cut-off keeps k of a group of n items.

    X, the number of the group's r relevant items among its k kept slots, is
    hypergeometric(n, r, k); R_K = rb + X. Conditioning on X = x:
    AP = (a_sum + E[group sum | x]) / (rb + x) (a_sum: expected sum over earlier groups,
    independent of this group's order). The pmf is summed outward from its mode.
    """
    xlo = max(0, k - (n - r))
    xhi = min(k, r)
    mode = ((k + 1) * (r + 1)) // (n + 2)
    mode = min(max(mode, xlo), xhi)
    tot_w = 0.0
    tot_v = 0.0
    w0 = 0.0
    # upward from the mode (weight 1 at the mode; weights fall monotonically away from it)
    w = 1.0
    x = mode
    while True:
        den = rb + x
        v = 0.0 if den == 0 else (a_sum + _group_sum(hi, lo, nb, rb, k, float(x))) / den
        tot_w += w
        tot_v += w * v
        if x == 0:
            w0 = w
        if x >= xhi:
            break
        w *= ((r - x) * (k - x)) / ((x + 1.0) * (n - r - k + x + 1.0))
        x += 1
        if w < _TAIL:
            break
    w = 1.0
    x = mode
    while x > xlo:
        w *= (x * (n - r - k + x)) / ((r - x + 1.0) * (k - x + 1.0))
        x -= 1
        if w < _TAIL:
            break
        den = rb + x
        v = 0.0 if den == 0 else (a_sum + _group_sum(hi, lo, nb, rb, k, float(x))) / den
        tot_w += w
        tot_v += w * v
        if x == 0:
            w0 = w
    ppos = 1.0 if rb > 0 else 1.0 - w0 / tot_w
    return tot_v / tot_w, ppos


@njit(cache=True)
def _level_precision(hi: np.ndarray, lo: np.ndarray, mrel: int, nb: int, rb: int, n: int,
                     r: int) -> float:
    """E[m / rank of the m-th relevant item] when it lies in a group (nb, rb, n, r).

    It is the i-th (i = m - rb) of the group's r relevant items; its slot T has
    P(T = t) = C(t-1, i-1) C(n-t, r-i) / C(n, r), t = i..n-r+i, summed outward from the mode.
    """
    i = mrel - rb
    if r == n:
        return mrel / (nb + i)
    if r == 1:
        return mrel * _hdiff(hi, lo, nb + n, nb) / n   # uniform slot
    tlo = i
    thi = n - r + i
    # P(t+1)/P(t) = t (n - t - r + i) / ((t - i + 1)(n - t)) >= 1 iff t <= n (i-1)/(r-1)
    mode = (n * (i - 1)) // (r - 1) + 1
    mode = min(max(mode, tlo), thi)
    tot_w = 0.0
    tot_v = 0.0
    w = 1.0
    t = mode
    while True:
        tot_w += w
        tot_v += w / (nb + t)
        if t >= thi:
            break
        w *= (t * (n - t - r + i)) / ((t - i + 1.0) * (n - t))
        t += 1
        if w < _TAIL:
            break
    w = 1.0
    t = mode
    while t > tlo:
        t -= 1
        w /= (t * (n - t - r + i)) / ((t - i + 1.0) * (n - t))
        if w < _TAIL:
            break
        tot_w += w
        tot_v += w / (nb + t)
    return mrel * tot_v / tot_w


@njit(parallel=True, cache=True)
def tie_aware_kernel(hist: np.ndarray, relhist: np.ndarray, cut: np.ndarray, levels: int,
                     hi: np.ndarray, lo: np.ndarray, eap: np.ndarray, ppos: np.ndarray,
                     erc: np.ndarray, prprec: np.ndarray) -> None:
    """Expectations over all tie orders, per query, from the per-distance counts.

    eap[q, c] = E[AP@cut[c] * 1{R_c > 0}]; ppos[q, c] = P(R_c > 0); erc[q, c] = E[R_c];
    prprec[q, j] = E[m_j / rank of the m_j-th relevant item] (0 where R = 0).
    """
    nq, nd = hist.shape
    nc = cut.shape[0]
    for q in prange(nq):
        fullc = np.zeros(nd)      # expected group sums when a group is wholly kept
        start = np.zeros(nd, np.int64)
        rstart = np.zeros(nd, np.int64)
        a = 0
        ra = 0
        for d in range(nd):
            start[d] = a
            rstart[d] = ra
            fullc[d] = _group_sum(hi, lo, a, ra, hist[q, d], float(relhist[q, d]))
            a += hist[q, d]
            ra += relhist[q, d]
        rtot = ra
        g = 0
        a_sum = 0.0
        for ci in range(nc):
            c = cut[ci]
            while g < nd and start[g] + hist[q, g] <= c:
                a_sum += fullc[g]
                g += 1
            if g < nd and start[g] < c:
                n = hist[q, g]
                r = relhist[q, g]
                k = c - start[g]
                if rstart[g] == 0 and r == 0:
                    eap[q, ci] = 0.0
                    ppos[q, ci] = 0.0
                else:
                    e, p = _straddle(hi, lo, a_sum, start[g], rstart[g], n, r, k)
                    eap[q, ci] = e
                    ppos[q, ci] = p
                erc[q, ci] = rstart[g] + k * r / n
            else:
                rc = rstart[g] if g < nd else rtot
                eap[q, ci] = a_sum / rc if rc > 0 else 0.0
                ppos[q, ci] = 1.0 if rc > 0 else 0.0
                erc[q, ci] = rc
        if rtot > 0:
            d = 0
            for lv in range(levels):
                mrel = ((lv + 1) * rtot + levels - 1) // levels
                while rstart[d] + relhist[q, d] < mrel:
                    d += 1
                prprec[q, lv] = _level_precision(hi, lo, mrel, start[d], rstart[d],
                                                 hist[q, d], relhist[q, d])


def reciprocals(n: int) -> np.ndarray:
    """inv[k] = 1/k for k = 1..n (inv[0] = 0), correctly rounded."""
    inv = np.zeros(n + 1)
    inv[1:] = 1.0 / np.arange(1, n + 1, dtype=np.float64)
    return inv
