"""numba kernels of the evaluator's CPU path.

Hamming distances are integers in 0..b, so nothing is sorted: per query, a first pass
over the database counts items and relevant items per distance; prefix sums give where
each distance group starts in the ranking; a second pass, in tie order (database index
order, or a per-query random permutation), keeps a running counter per distance, which
gives every relevant item its exact rank and its ordinal among relevant items. From
these the kernel accumulates, for each cut-off c, S_c = sum over relevant items ranked
<= c of ordinal / rank and R_c = their number, and the rank of the m-th relevant item for
the m of each precision-recall level. Queries are processed in blocks so that one read of
a database item serves several queries (the database streams through cache once per block).

The tie-aware kernel needs only the per-distance counts: every expectation is closed form
(harmonic sums) or a short sum over a hypergeometric variable (see the package docstring).
"""

from __future__ import annotations

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

@njit(inline="always", cache=True)
def _pass1(qc: np.ndarray, dc: np.ndarray, ql: np.ndarray, dl: np.ndarray, q: int,
           single: bool, perm: np.ndarray, store: bool, cnt: np.ndarray, lst: np.ndarray,
           sp: int, w: int) -> int:
    """Counting pass for query q, in tie order (``perm`` if non-empty, else index order).

    cnt[d] packs two counters of distance group d: items (low w bits) and relevant items
    (from bit w up), so one add updates both. Because items arrive in tie order, after
    the add they are the item's position p within its group and, for a relevant item, its
    ordinal o among the group's relevant items. If ``store``, every relevant item is
    appended to ``lst`` as d | cnt[d] << sp (branch-free compaction: the slot is always
    written and the length advances by rel). Returns the list length.
    """
    n = dc.shape[0]
    nr = 0
    one = np.uint64(1)
    ush = np.uint64(w)
    usp = np.uint64(sp)
    if perm.shape[0] == 0 and qc.shape[1] == 1 and not single and ql.shape[1] == 1:
        # the common case (b <= 64, L <= 64), written out so that it compiles to a tight loop
        qw = qc[q, 0]
        lw = ql[q, 0]
        for i in range(n):
            d = _popcount(qw ^ dc[i, 0])
            r = np.uint64((lw & dl[i, 0]) != 0)
            c = cnt[d] + (one + (r << ush))
            cnt[d] = c
            if store:
                lst[nr] = d | (c << usp)
                nr += int(r)
        return nr
    for t in range(n):
        i = perm[t] if perm.shape[0] > 0 else t
        d = np.uint64(0)
        for k in range(qc.shape[1]):
            d += _popcount(qc[q, k] ^ dc[i, k])
        if single:
            rb = ql[q, 0] == dl[i, 0]
        else:
            rb = False
            for k in range(ql.shape[1]):
                rb |= (ql[q, k] & dl[i, k]) != 0
        r = np.uint64(rb)
        c = cnt[d] + (one + (r << ush))
        cnt[d] = c
        if store:
            lst[nr] = d | (c << usp)
            nr += int(r)
    return nr


def max_db_items(nbits: int) -> int:
    """rank_kernel packs (distance, position, ordinal) into 64 bits: N must stay below this."""
    sp = max(1, (nbits + 1).bit_length())
    return 1 << ((64 - sp) // 2)


@njit(cache=True)
def _layout(nd: int) -> tuple:
    """Bit layout of the packed entries: d in bits 0..sp-1, p in the next w, o above."""
    sp = 1
    while (1 << sp) <= nd:
        sp += 1
    return sp, (64 - sp) // 2


@njit(parallel=True, cache=True)
def rank_kernel(qc: np.ndarray, dc: np.ndarray, ql: np.ndarray, dl: np.ndarray, single: bool,
                nbits: int, cut: np.ndarray, levels: int, random: bool, seed: np.uint64,
                q_offset: int, inv: np.ndarray, hist: np.ndarray, relhist: np.ndarray,
                s_out: np.ndarray, r_out: np.ndarray, pr_rank: np.ndarray) -> None:
    """Per-query summaries under a total tie order (index, or seeded random).

    Outputs (row q): hist[q, d] items and relhist[q, d] relevant items at distance d;
    s_out[q, c] = sum of ordinal/rank and r_out[q, c] = count over relevant items with
    rank <= cut[c] (cut ascending, each in 0..N); pr_rank[q, j] = rank of the m_j-th
    relevant item, m_j = ceil((j + 1) R / levels) (0 where R = 0). inv[k] = 1/k, k <= N
    (a multiplication by it replaces a division per relevant item: error <= 1 ulp).
    """
    nq = qc.shape[0]
    n = dc.shape[0]
    nd = nbits + 1
    nc = cut.shape[0]
    sp, w = _layout(nd)
    pmask = np.uint64((1 << w) - 1)
    dmask = np.uint64((1 << sp) - 1)
    usp = np.uint64(sp)
    uw = np.uint64(w)
    nchunks = min(nq, 64)
    for ch in prange(nchunks):
        lst = np.empty(n, np.uint64)
        side = np.empty(n, np.int64)
        perm = np.empty(n if random else 0, np.int64)
        cnt = np.zeros(nd, np.uint64)
        nitems = np.zeros(nd, np.int64)
        nrel = np.zeros(nd, np.int64)
        base = np.zeros(nd, np.uint64)      # start | rstart << w: items / relevant before d
        start = np.zeros(nd, np.int64)
        rstart = np.zeros(nd, np.int64)
        # sums of ordinal/rank over group d's relevant items, in 4 interleaved copies so that
        # consecutive items of one group do not wait on each other's store
        gsum = np.zeros((4, nd))
        strad = np.zeros(nd, np.int64)      # 1 if some cut-off falls inside group d
        slo = np.zeros(nd, np.int64)        # cut-offs slo[d]..shi[d]-1 fall inside group d
        shi = np.zeros(nd, np.int64)
        full = np.zeros(nc, np.int64)       # groups 0..full-1 lie wholly within the cut
        lptr = np.zeros(nd, np.int64)       # next PR level whose item lies in group d
        lnext = np.zeros(nd, np.int64)      # its in-group ordinal (-1: none)
        mlev = np.zeros(levels + 1, np.int64)
        ps = np.zeros(nc)
        pc = np.zeros(nc, np.int64)
        for q in range(ch * nq // nchunks, (ch + 1) * nq // nchunks):
            if random:
                fill_permutation(seed, np.uint64(q_offset + q), perm)
            cnt[:] = 0
            nr = _pass1(qc, dc, ql, dl, q, single, perm, True, cnt, lst, sp, w)
            a = 0
            ra = 0
            for d in range(nd):
                nitems[d] = int(cnt[d] & pmask)
                nrel[d] = int(cnt[d] >> uw)
                start[d] = a
                rstart[d] = ra
                base[d] = np.uint64(a) | (np.uint64(ra) << uw)
                a += nitems[d]
                ra += nrel[d]
                for u in range(4):
                    gsum[u, d] = 0.0
                strad[d] = 0
                shi[d] = 0
                slo[d] = 0
            rtot = ra
            g = 0
            for ci in range(nc):
                c = cut[ci]
                while g < nd and start[g] + nitems[g] <= c:
                    g += 1
                full[ci] = g
                if g < nd and start[g] < c:
                    if strad[g] == 0:
                        slo[g] = ci
                    strad[g] = 1
                    shi[g] = ci + 1
                ps[ci] = 0.0
                pc[ci] = 0
            # PR levels: m_j = ceil(j R / levels); lnext[d] = in-group ordinal of the next
            # level whose m_j-th relevant item lies in group d
            lp = 0
            for lv in range(levels):
                mlev[lv] = ((lv + 1) * rtot + levels - 1) // levels
            mlev[levels] = rtot + 1
            for d in range(nd):
                while lp < levels and mlev[lp] <= rstart[d]:
                    lp += 1
                lptr[d] = lp
                lnext[d] = mlev[lp] - rstart[d] if (
                    lp < levels and mlev[lp] <= rstart[d] + nrel[d]) else -1
            # pass 2, over relevant items only: (p, o) + base[d] = (rank, ordinal) at once
            ns = 0
            for t in range(nr):
                e = lst[t]
                d = int(e & dmask)
                x = (e >> usp) + base[d]
                rank = int(x & pmask)
                ordn = int(x >> uw)
                gsum[t & 3, d] += ordn * inv[rank]
                side[ns] = t
                ns += strad[d]
                if lnext[d] == ordn - rstart[d]:   # rare: this item sits at PR levels
                    lv = lptr[d]
                    while lv < levels and mlev[lv] == ordn:
                        pr_rank[q, lv] = rank
                        lv += 1
                    lptr[d] = lv
                    lnext[d] = mlev[lv] - rstart[d] if (
                        lv < levels and mlev[lv] <= rstart[d] + nrel[d]) else -1
            # items of groups that a cut-off splits: compare their rank with each such cut
            for u in range(ns):
                e = lst[side[u]]
                d = int(e & dmask)
                x = (e >> usp) + base[d]
                rank = int(x & pmask)
                val = int(x >> uw) * inv[rank]
                for ci in range(slo[d], shi[d]):
                    if rank <= cut[ci]:
                        ps[ci] += val
                        pc[ci] += 1
            for d in range(nd):
                hist[q, d] = nitems[d]
                relhist[q, d] = nrel[d]
            for ci in range(nc):
                s = ps[ci]
                rc = pc[ci]
                for d in range(full[ci]):
                    s += (gsum[0, d] + gsum[1, d]) + (gsum[2, d] + gsum[3, d])
                    rc += nrel[d]
                s_out[q, ci] = s
                r_out[q, ci] = rc


@njit(parallel=True, cache=True)
def hist_kernel(qc: np.ndarray, dc: np.ndarray, ql: np.ndarray, dl: np.ndarray, single: bool,
                hist: np.ndarray, relhist: np.ndarray) -> None:
    """Only the per-distance counts (all that tie-aware metrics need)."""
    nq = qc.shape[0]
    nd = hist.shape[1]
    w = 32
    pmask = np.uint64((1 << w) - 1)
    nchunks = min(nq, 64)
    for ch in prange(nchunks):
        cnt = np.zeros(nd, np.uint64)
        lst = np.empty(0, np.uint64)
        perm = np.empty(0, np.int64)
        for q in range(ch * nq // nchunks, (ch + 1) * nq // nchunks):
            cnt[:] = 0
            _pass1(qc, dc, ql, dl, q, single, perm, False, cnt, lst, 1, w)
            for d in range(nd):
                hist[q, d] = int(cnt[d] & pmask)
                relhist[q, d] = int(cnt[d] >> np.uint64(w))


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
