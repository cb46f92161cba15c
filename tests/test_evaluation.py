"""The evaluator against brute-force implementations of each metric's definition.

Brute force = an explicit tie-breaking sort, then a Python loop over the ranked items; for
tie-aware ties, an exact average over every ordering of the tied items (enumerated as the
distinct placements of each tie group's relevant items, which are equally likely).
"""

from __future__ import annotations

import itertools
import json
import math

import numba
import numpy as np
import pytest

from hashbench.errors import ConfigError, DataError
from hashbench.evaluation import (
    EvalConfig,
    EvaluationResult,
    chance_level,
    evaluate,
    mean_average_precision,
)
from hashbench.evaluation import _kernels, core

TOL = 1e-9


# ----------------------------------------------------------------------------- brute force

def bf_relevance(ql: np.ndarray, dl: np.ndarray) -> np.ndarray:
    """(Q, N) bool: shares a label (multi-label) or same class (1-D)."""
    if ql.ndim == 1:
        return ql[:, None] == dl[None, :]
    return (ql.astype(int) @ dl.astype(int).T) > 0


def bf_distance(qc: np.ndarray, dc: np.ndarray) -> np.ndarray:
    """(Q, N) Hamming distances by explicit comparison of bits."""
    return (qc[:, None, :] != dc[None, :, :]).sum(-1)


def eff(k, n_db: int) -> int:
    """Items kept by a cut-off."""
    if k is None:
        return n_db
    if k == -1:
        return n_db - 1
    return min(k, n_db)


def bf_ranked_metrics(rel: list, cfg: EvalConfig) -> dict:
    """Metrics of one ranked relevance list (rank order); None marks 'no relevant item'."""
    n = len(rel)
    out = {}
    for k in cfg.topk:
        kk = eff(k, n)
        hits, s = 0, 0.0
        for i in range(kk):
            if rel[i]:
                hits += 1
                s += hits / (i + 1)
        out[("AP", k)] = s / hits if hits else None
    for k in cfg.precision_at:
        c = eff(k, n)
        out[("P", k)] = sum(rel[:c]) / c
    rtot = sum(rel)
    levels = cfg.pr_levels
    for j in range(1, levels + 1):
        if rtot == 0:
            out[("PR", j)] = None
            continue
        hits = 0
        for i in range(n):
            hits += rel[i]
            if hits * levels >= j * rtot:   # recall >= j / levels, in integers
                out[("PR", j)] = hits / (i + 1)
                break
    return out


def bf_radius(d: np.ndarray, rel: np.ndarray, bits: int) -> tuple:
    """Per-radius precision (empty ball: 0) and recall (None if nothing is relevant)."""
    p, r = [], []
    rtot = rel.sum()
    for rad in range(bits + 1):
        ball = d <= rad
        nb = ball.sum()
        hit = (rel & ball).sum()
        p.append(hit / nb if nb else 0.0)
        r.append(hit / rtot if rtot else None)
    return p, r


def tie_patterns(d: np.ndarray, rel: np.ndarray):
    """Every distinct relevance list in rank order over all tie orders (equally likely)."""
    groups = []
    for dist in sorted(set(d.tolist())):
        members = rel[d == dist]
        n, r = len(members), int(members.sum())
        groups.append([tuple(1 if t in pos else 0 for t in range(n))
                       for pos in itertools.combinations(range(n), r)])
    for combo in itertools.product(*groups):
        yield [x for g in combo for x in g]


def n_patterns(d: np.ndarray, rel: np.ndarray) -> int:
    """How many patterns tie_patterns yields."""
    tot = 1
    for dist in set(d.tolist()):
        members = rel[d == dist]
        tot *= math.comb(len(members), int(members.sum()))
    return tot


def brute_force(qc, dc, ql, dl, cfg: EvalConfig) -> dict:
    """Metrics, curves and per-query values straight from the definitions."""
    qc, dc, ql, dl = map(np.asarray, (qc, dc, ql, dl))
    dist = bf_distance(qc, dc)
    relm = bf_relevance(ql, dl)
    nq, n = dist.shape
    bits = qc.shape[1]
    drop = cfg.empty == "drop"
    perq: dict = {}
    for q in range(nq):
        d, rel = dist[q], relm[q]
        if cfg.ties == "tie-aware":
            vals: dict = {}
            for pat in tie_patterns(d, rel):
                for key, v in bf_ranked_metrics(pat, cfg).items():
                    vals.setdefault(key, []).append(v)
            res = {}
            for key, vs in vals.items():
                if key[0] == "AP" and drop:
                    kept = [v for v in vs if v is not None]
                    res[key] = float(np.mean(kept)) if kept else None
                else:
                    res[key] = float(np.mean([0.0 if v is None else v for v in vs])) \
                        if any(v is not None for v in vs) else None
        else:
            if cfg.ties == "index":
                order = sorted(range(n), key=lambda i: (d[i], i))
            else:
                perm = np.empty(n, np.int64)
                _kernels.fill_permutation(np.uint64(cfg.seed), np.uint64(q), perm)
                pos = np.empty(n, np.int64)
                pos[perm] = np.arange(n)
                order = sorted(range(n), key=lambda i: (d[i], pos[i]))
            res = bf_ranked_metrics([int(rel[i]) for i in order], cfg)
        rp, rr = bf_radius(d, rel, bits)
        for rad in range(bits + 1):
            res[("RP", rad)] = rp[rad]
            res[("RR", rad)] = rr[rad]
        res[("chance",)] = rel.sum() / n
        for key, v in res.items():
            perq.setdefault(key, []).append(v)

    def agg(key) -> tuple:
        vs = perq[key]
        if drop and key[0] in ("AP", "PR", "RR"):
            arr = np.array([np.nan if v is None else v for v in vs], float)
        else:
            arr = np.array([0.0 if v is None else v for v in vs], float)
        keep = ~np.isnan(arr)
        return arr, (float(arr[keep].mean()) if keep.any() else float("nan"))

    out = {"metrics": {}, "per_query": {}, "curves": {}}
    for k in cfg.topk:
        arr, m = agg(("AP", k))
        name = "all" if k is None else str(k)
        out["metrics"][f"mAP@{name}"] = m
        out["per_query"][f"AP@{name}"] = arr
    for k in cfg.precision_at:
        arr, m = agg(("P", k))
        out["metrics"][f"P@{k}"] = m
        out["per_query"][f"P@{k}"] = arr
    rad = min(cfg.radius, bits)
    rp = [agg(("RP", r)) for r in range(bits + 1)]
    rr = [agg(("RR", r)) for r in range(bits + 1)]
    out["curves"]["radius_precision"] = np.array([m for _, m in rp])
    out["curves"]["radius_recall"] = np.array([m for _, m in rr])
    out["metrics"][f"P@r{cfg.radius}"] = rp[rad][1]
    out["metrics"][f"R@r{cfg.radius}"] = rr[rad][1]
    out["per_query"][f"P@r{cfg.radius}"] = rp[rad][0]
    out["per_query"][f"R@r{cfg.radius}"] = rr[rad][0]
    if cfg.pr_levels:
        out["curves"]["pr_precision"] = np.array(
            [agg(("PR", j))[1] for j in range(1, cfg.pr_levels + 1)])
        out["curves"]["pr_recall"] = np.arange(1, cfg.pr_levels + 1) / cfg.pr_levels
    arr, m = agg(("chance",))
    out["metrics"]["chance"] = m
    out["per_query"]["chance"] = arr
    out["curves"]["precision_at_n"] = np.array(
        [out["metrics"][f"P@{k}"] for k in cfg.precision_at])
    return out


def assert_close(got, want, what: str) -> None:
    """Equal within TOL, NaN matching NaN."""
    got = np.asarray(got, float)
    want = np.asarray(want, float)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{what}: NaN {got} vs {want}"
    ok = ~np.isnan(want)
    assert np.all(np.abs(got[ok] - want[ok]) <= TOL), f"{what}: {got} vs {want}"


def compare(res: EvaluationResult, bf: dict, label: str) -> None:
    """Every metric, curve and per-query array of res against the brute force."""
    assert set(res.metrics) == set(bf["metrics"]), label
    for k, v in bf["metrics"].items():
        assert_close(res.metrics[k], v, f"{label} metric {k}")
    for k, v in bf["per_query"].items():
        assert_close(res.per_query[k], v, f"{label} per-query {k}")
    for k, v in bf["curves"].items():
        assert_close(res.curves[k], v, f"{label} curve {k}")


# ----------------------------------------------------------------------------- random cases

def random_case(rng: np.random.Generator, max_n: int, single: bool = False) -> tuple:
    """A small case built for heavy ties, queries without relevant items, K > N, b = 1, N = 1."""
    bits = int(rng.choice([1, 1, 2, 3, 4, 6]))
    n = int(rng.choice([1, 2] + list(range(3, max_n + 1))))
    nq = int(rng.integers(1, 5))
    qc = rng.integers(0, 2, (nq, bits), dtype=np.uint8)
    dc = rng.integers(0, 2, (n, bits), dtype=np.uint8)
    if single:
        ncls = int(rng.integers(1, 5))
        ql = rng.integers(0, ncls + 1, nq)      # class ncls may be absent from the database
        dl = rng.integers(0, ncls, n)
    else:
        nl = int(rng.integers(1, 4))
        dens = float(rng.choice([0.15, 0.4, 0.7]))
        ql = (rng.random((nq, nl)) < dens).astype(np.uint8)
        dl = (rng.random((n, nl)) < dens).astype(np.uint8)
    return qc, dc, ql, dl


def random_config(rng: np.random.Generator, n: int, ties: str, empty: str) -> EvalConfig:
    """Cut-offs below, at and above N; a few PR levels; any radius."""
    topk = sorted({1, 2, 3, n, n + 3}) + [None]
    pat = sorted({1, 2, n + 2})
    return EvalConfig(topk=tuple(topk), precision_at=tuple(pat), radius=int(rng.integers(0, 5)),
                      ties=ties, empty=empty, pr_levels=int(rng.choice([1, 2, 3, 7, 10])),
                      seed=int(rng.integers(0, 1000)), device="cpu")


@pytest.mark.parametrize("ties, fast", [("index", True), ("index", False), ("random", True),
                                        ("random", False)])
@pytest.mark.parametrize("empty", ["zero", "drop"])
def test_ranked_ties_match_brute_force(ties: str, fast: bool, empty: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # fast=False: the general counting loop instead of the one-word one
    monkeypatch.setattr(core, "_FAST_PATH", fast)
    rng = np.random.default_rng(10 + len(ties) + len(empty) + fast)
    for case in range(120):
        single = case % 4 == 3
        qc, dc, ql, dl = random_case(rng, 14, single)
        cfg = random_config(rng, len(dc), ties, empty)
        compare(evaluate(qc, dc, ql, dl, cfg), brute_force(qc, dc, ql, dl, cfg),
                f"{ties}/{empty} case {case}")


@pytest.mark.parametrize("empty", ["zero", "drop"])
def test_tie_aware_matches_enumeration(empty: str) -> None:
    rng = np.random.default_rng(7 if empty == "zero" else 8)
    done = 0
    while done < 120:
        single = done % 4 == 3
        qc, dc, ql, dl = random_case(rng, 12, single)
        dist = bf_distance(qc, dc)
        relm = bf_relevance(ql, dl)
        if max(n_patterns(dist[q], relm[q]) for q in range(len(qc))) > 400:
            continue
        cfg = random_config(rng, len(dc), "tie-aware", empty)
        compare(evaluate(qc, dc, ql, dl, cfg), brute_force(qc, dc, ql, dl, cfg),
                f"tie-aware/{empty} case {done}")
        done += 1


def test_tie_aware_large_groups_match_enumeration() -> None:
    """Groups of up to 16 items, so the hypergeometric sums have many terms."""
    rng = np.random.default_rng(3)
    for case in range(6):
        n = 18
        qc = np.zeros((1, 2), np.uint8)
        dc = np.zeros((n, 2), np.uint8)
        dc[: int(rng.integers(0, 3)), 0] = 1          # one small group, one large
        ql = np.ones((1, 1), np.uint8)
        dl = (rng.random((n, 1)) < rng.choice([0.2, 0.5])).astype(np.uint8)
        if n_patterns(bf_distance(qc, dc)[0], bf_relevance(ql, dl)[0]) > 20000:
            continue
        for empty in ("zero", "drop"):
            cfg = EvalConfig(topk=(1, 4, 9, 17, None), precision_at=(5, 11), ties="tie-aware",
                             empty=empty, pr_levels=6, device="cpu")
            compare(evaluate(qc, dc, ql, dl, cfg), brute_force(qc, dc, ql, dl, cfg),
                    f"large group case {case}/{empty}")


def test_random_ties_average_to_tie_aware() -> None:
    """Monte-Carlo sanity check only (the exact test is the enumeration above)."""
    rng = np.random.default_rng(5)
    qc = rng.integers(0, 2, (30, 3), dtype=np.uint8)
    dc = rng.integers(0, 2, (200, 3), dtype=np.uint8)
    ql = (rng.random((30, 4)) < 0.3).astype(np.uint8)
    dl = (rng.random((200, 4)) < 0.3).astype(np.uint8)
    exact = mean_average_precision(qc, dc, ql, dl, topk=20, ties="tie-aware", device="cpu")
    draws = [mean_average_precision(qc, dc, ql, dl, topk=20, ties="random", seed=s, device="cpu")
             for s in range(200)]
    assert abs(np.mean(draws) - exact) < 4 * np.std(draws) / np.sqrt(len(draws)) + 1e-12
    assert np.std(draws) > 0   # heavy ties: the order matters


# ----------------------------------------------------------------------------- by hand

def test_hand_worked_single_query() -> None:
    """Query 00; items 01, 10, 00, 11 at distances 1, 1, 0, 2; items 0 and 3 relevant.

    Index order: item2 (d0, no), item0 (d1, yes), item1 (d1, no), item3 (d2, yes):
    AP@all = (1/2 + 2/4) / 2 = 1/2, AP@2 = (1/2) / 1 = 1/2.
    Tie-aware: items 0 and 1 swap with probability 1/2; then AP@all = (1/3 + 2/4) / 2 = 5/12,
    so E = 11/24; AP@2 is 1/2 or (nothing relevant) 0: E = 1/4 (zero), 1/2 (drop).
    """
    qc = np.array([[0, 0]], np.uint8)
    dc = np.array([[0, 1], [1, 0], [0, 0], [1, 1]], np.uint8)
    ql = np.array([[1, 0]], np.uint8)
    dl = np.array([[1, 0], [0, 1], [0, 0], [1, 1]], np.uint8)
    m = lambda **kw: mean_average_precision(qc, dc, ql, dl, device="cpu", **{"ties": "index", **kw})  # noqa: E731
    assert m(topk=None) == pytest.approx(0.5, abs=1e-15)
    assert m(topk=2) == pytest.approx(0.5, abs=1e-15)
    assert m(topk=None, ties="tie-aware") == pytest.approx(11 / 24, abs=1e-15)
    assert m(topk=2, ties="tie-aware") == pytest.approx(0.25, abs=1e-15)
    assert m(topk=2, ties="tie-aware", empty="drop") == pytest.approx(0.5, abs=1e-15)
    assert m(topk=1) == 0.0
    assert math.isnan(m(topk=1, empty="drop"))
    res = evaluate(qc, dc, ql, dl, EvalConfig(topk=(None,), precision_at=(1, 3), radius=1,
                                              pr_levels=2, device="cpu"))
    assert res.metrics["P@r1"] == pytest.approx(1 / 3)     # ball: items 2, 0, 1
    assert res.metrics["R@r1"] == pytest.approx(1 / 2)
    assert res.curves["radius_precision"].tolist() == pytest.approx([0.0, 1 / 3, 1 / 2])
    assert res.curves["pr_recall"].tolist() == [0.5, 1.0]
    assert res.curves["pr_precision"].tolist() == pytest.approx([1 / 2, 2 / 4])
    assert res.metrics["P@1"] == 0.0 and res.metrics["P@3"] == pytest.approx(1 / 3)
    assert res.metrics["chance"] == 0.5


def test_empty_ball_counts_as_precision_zero() -> None:
    qc = np.array([[1, 1, 1]], np.uint8)
    dc = np.zeros((3, 3), np.uint8)            # every item at distance 3
    labels = np.array([0])
    res = evaluate(qc, dc, labels, np.array([0, 0, 1]), EvalConfig(radius=2, device="cpu"))
    assert res.metrics["P@r2"] == 0.0 and res.metrics["R@r2"] == 0.0
    assert res.curves["radius_precision"].tolist() == pytest.approx([0, 0, 0, 2 / 3])


def test_k_larger_than_database_and_single_item() -> None:
    qc = np.array([[1]], np.uint8)
    dc = np.array([[0]], np.uint8)
    res = evaluate(qc, dc, np.array([3]), np.array([3]), EvalConfig(device="cpu"))
    assert res.metrics["mAP@5000"] == 1.0 and res.metrics["mAP@all"] == 1.0
    assert res.metrics["P@100"] == 1.0        # precision over min(N, N_db) items
    assert res.config["topk_effective"] == [1, 1, 1]


# ----------------------------------------------------------------------------- presets

def calc_top_map_reference(rB, qB, retrievalL, queryL, topk) -> float:
    """DeepHash-pytorch's CalcTopMap, re-implemented (+-1 codes, per-query np.argsort)."""
    total = 0.0
    for it in range(queryL.shape[0]):
        gnd = (queryL[it] @ retrievalL.T > 0).astype(np.float32)
        hamm = 0.5 * (rB.shape[1] - qB[it] @ rB.T)
        tgnd = gnd[np.argsort(hamm)][0:topk]
        tsum = int(np.sum(tgnd))
        if tsum == 0:
            continue
        count = np.linspace(1, tsum, tsum)
        tindex = np.asarray(np.where(tgnd == 1)) + 1.0
        total += np.mean(count / tindex)
    return total / queryL.shape[0]


def get_maps_reference(q_output, q_labels, db_output, db_labels, Rs) -> float:
    """thuml/DeepHash's get_mAPs, re-implemented (inner-product distance, argpartition)."""
    dist = -np.inner(q_output, db_output)
    unsorted = np.argpartition(dist, Rs - 1)[:, :Rs]
    aps = []
    for i in range(dist.shape[0]):
        label = q_labels[i].copy()
        label[label == 0] = -1
        idx = unsorted[i][np.argsort(dist[i][unsorted[i]])]
        imatch = np.sum(np.equal(db_labels[idx[:Rs]], label), 1) > 0
        rel = np.sum(imatch)
        px = np.cumsum(imatch).astype(float) / np.arange(1, Rs + 1)
        if rel != 0:
            aps.append(np.sum(px * imatch) / rel)
    return float(np.mean(np.array(aps)))


def tie_free_case(rng: np.random.Generator, nq: int, n: int, bits: int) -> tuple:
    """Queries sharing one code and database items at pairwise distinct distances."""
    q = rng.integers(0, 2, bits, dtype=np.uint8)
    dists = rng.choice(bits + 1, n, replace=False)
    dc = np.empty((n, bits), np.uint8)
    for i, k in enumerate(dists):
        flip = np.zeros(bits, bool)
        flip[rng.choice(bits, k, replace=False)] = True
        dc[i] = q ^ flip
    ql = (rng.random((nq, 4)) < 0.35).astype(np.uint8)
    dl = (rng.random((n, 4)) < 0.35).astype(np.uint8)
    return np.tile(q, (nq, 1)), dc, ql, dl


def test_presets_reproduce_public_evaluators_without_ties() -> None:
    rng = np.random.default_rng(11)
    for case in range(40):
        n = int(rng.integers(2, 17))
        qc, dc, ql, dl = tie_free_case(rng, int(rng.integers(1, 5)), n, 16)
        pm = lambda c: c.astype(np.float32) * 2 - 1  # noqa: E731
        for k in (1, 3, n, n + 4, -1):
            ref = calc_top_map_reference(pm(dc), pm(qc), dl.astype(np.float32),
                                         ql.astype(np.float32), k)
            got = mean_average_precision(qc, dc, ql, dl, topk=k, preset="deephash-pytorch",
                                         device="cpu")
            assert abs(got - ref) <= TOL, (case, k, got, ref)
        for k in (1, 2, n):
            if (bf_relevance(ql, dl)[:, np.argsort(bf_distance(qc, dc)[0])[:k]].any(1)).any():
                ref = get_maps_reference(pm(qc), ql.astype(int), pm(dc), dl.astype(int), k)
                got = mean_average_precision(qc, dc, ql, dl, topk=k, preset="thuml",
                                             device="cpu")
                assert abs(got - ref) <= TOL, (case, k, got, ref)


def test_preset_fixes_conventions() -> None:
    assert EvalConfig(preset="thuml").empty == "drop"
    assert EvalConfig(preset="deephash-pytorch").empty == "zero"
    with pytest.raises(ConfigError, match="fixes ties"):
        EvalConfig(preset="thuml", ties="tie-aware")
    with pytest.raises(ConfigError, match="topk"):
        EvalConfig(topk=(-1,))          # -1 only means something under deephash-pytorch


# ----------------------------------------------------------------------------- torch path

@pytest.mark.parametrize("ties", ["index", "random", "tie-aware"])
def test_torch_path_matches_numba(ties: str) -> None:
    pytest.importorskip("torch")
    rng = np.random.default_rng(21)
    for bits, nl, single in ((8, 5, False), (70, 3, False), (12, 70, False), (5, 0, True)):
        qc = rng.integers(0, 2, (9, bits), dtype=np.uint8)
        dc = rng.integers(0, 2, (300, bits), dtype=np.uint8)
        if single:
            ql, dl = rng.integers(0, 6, 9), rng.integers(0, 5, 300)
        else:
            ql = (rng.random((9, nl)) < 0.1).astype(np.uint8)
            dl = (rng.random((300, nl)) < 0.1).astype(np.uint8)
        for empty in ("zero", "drop"):
            kw = dict(topk=(1, 17, 250, 400, None), precision_at=(3, 299, 1000), ties=ties,
                      empty=empty, pr_levels=50, seed=4)
            a = evaluate(qc, dc, ql, dl, EvalConfig(device="cpu", **kw))
            b = evaluate(qc, dc, ql, dl, EvalConfig(device="torch-cpu", **kw))
            assert b.config["device"] == "torch-cpu"
            for part in ("metrics", "curves", "per_query"):
                for key, v in getattr(a, part).items():
                    assert_close(getattr(b, part)[key], v, f"{bits}/{nl}/{ties}/{empty} {key}")


# ----------------------------------------------------------------------------- API, errors

def test_result_structure_and_config_round_trip() -> None:
    rng = np.random.default_rng(1)
    qc = rng.integers(0, 2, (5, 16), dtype=np.uint8)
    dc = rng.integers(0, 2, (50, 16), dtype=np.uint8)
    ql = (rng.random((5, 3)) < 0.5).astype(np.uint8)
    dl = (rng.random((50, 3)) < 0.5).astype(np.uint8)
    cfg = EvalConfig()
    assert cfg.topk == (5000, 50000, None) and cfg.precision_at == (100, 500, 1000, 5000)
    assert (cfg.radius, cfg.ties, cfg.empty, cfg.pr_levels, cfg.seed, cfg.device) == \
        (2, "random", "zero", 1000, 0, "auto")
    res = evaluate(qc, dc, ql, dl, EvalConfig(device="cpu"))
    assert set(res.metrics) == {"mAP@5000", "mAP@50000", "mAP@all", "P@100", "P@500",
                                "P@1000", "P@5000", "P@r2", "R@r2", "chance"}
    assert res.curves["radius_precision"].shape == (17,)
    assert res.curves["pr_precision"].shape == (1000,) and res.curves["pr_recall"][-1] == 1.0
    assert res.curves["precision_at_n_n"].tolist() == [100, 500, 1000, 5000]
    assert res.per_query["AP@5000"].shape == (5,) and res.per_query["AP@5000"].dtype == np.float64
    for key in ("ties", "empty", "seed", "device", "topk", "radius", "pr_levels", "preset"):
        assert key in res.config
    assert res.config["distance"] == "hamming" and res.config["device"] == "cpu"
    json.dumps(res.to_dict(per_query=True))
    for c in (EvalConfig(), EvalConfig(topk=(10, None), ties="tie-aware", empty="drop", seed=3),
              EvalConfig(preset="deephash-pytorch", topk=(-1, 5))):
        d = json.loads(json.dumps(c.to_dict()))
        assert EvalConfig.from_dict(d) == c
    with pytest.raises(ConfigError):
        EvalConfig.from_dict({"tiez": "index"})


def test_mean_average_precision_and_chance_level_agree_with_evaluate() -> None:
    rng = np.random.default_rng(2)
    qc = rng.integers(0, 2, (6, 4), dtype=np.uint8)
    dc = rng.integers(0, 2, (40, 4), dtype=np.uint8)
    ql = (rng.random((6, 3)) < 0.4).astype(np.uint8)
    dl = (rng.random((40, 3)) < 0.4).astype(np.uint8)
    res = evaluate(qc, dc, ql, dl, EvalConfig(topk=(7, None), device="cpu"))
    assert mean_average_precision(qc, dc, ql, dl, topk=7, device="cpu") == res.metrics["mAP@7"]
    assert mean_average_precision(qc, dc, ql, dl, topk=None, device="cpu") == \
        res.metrics["mAP@all"]
    assert chance_level(ql, dl) == pytest.approx(bf_relevance(ql, dl).mean(), abs=1e-15)
    assert chance_level(np.array([1, 2]), np.array([1, 1, 2, 3])) == pytest.approx(3 / 8)


@pytest.mark.parametrize("bad, match", [
    (dict(query_codes=np.zeros((0, 4))), "empty"),
    (dict(query_codes=np.zeros(4)), "shape"),
    (dict(db_codes=np.full((5, 4), 2)), "0 or 1"),
    (dict(db_codes=-np.ones((5, 4))), r"\+-1"),
    (dict(db_codes=np.full((5, 4), np.nan)), "NaN"),
    (dict(db_codes=np.zeros((5, 3))), "bits"),
    (dict(db_labels=np.zeros((5, 2))), "columns"),
    (dict(db_labels=np.zeros((4, 3))), "rows"),
    (dict(db_labels=np.zeros(5)), "both"),
    (dict(query_labels=np.full((2, 3), np.nan)), "NaN"),
])
def test_bad_inputs_raise_data_error(bad: dict, match: str) -> None:
    args = dict(query_codes=np.zeros((2, 4)), db_codes=np.zeros((5, 4)),
                query_labels=np.zeros((2, 3)), db_labels=np.zeros((5, 3)))
    args.update(bad)
    with pytest.raises(DataError, match=match):
        evaluate(args["query_codes"], args["db_codes"], args["query_labels"],
                 args["db_labels"], EvalConfig(device="cpu"))


def test_bad_options_raise_config_error_listing_choices() -> None:
    with pytest.raises(ConfigError, match="index, tie-aware, random"):
        EvalConfig(ties="stable")
    with pytest.raises(ConfigError, match="zero, drop"):
        EvalConfig(empty="skip")
    with pytest.raises(ConfigError, match="deephash-pytorch"):
        EvalConfig(preset="hashnet")
    with pytest.raises(ConfigError):
        EvalConfig(topk=(0,))
    with pytest.raises(ConfigError):
        EvalConfig(device="tpu")


@pytest.mark.parametrize("ties", ["index", "random", "tie-aware"])
def test_thread_count_does_not_change_results(ties: str) -> None:
    # The kernels keep scratch per thread and hand out query chunks dynamically: with more
    # chunks than threads, multi-word codes and both label kinds, 1 and 2 threads must agree
    # bit for bit.
    rng = np.random.default_rng(31)
    qc = rng.integers(0, 2, (150, 70), dtype=np.uint8)
    dc = rng.integers(0, 2, (900, 70), dtype=np.uint8)
    dc[::3] = dc[1::3][: len(dc[::3])]          # exact duplicates: ties at every distance
    for ql, dl in [((rng.random((150, 5)) < 0.3).astype(np.uint8),
                    (rng.random((900, 5)) < 0.3).astype(np.uint8)),
                   (rng.integers(0, 6, 150), rng.integers(0, 6, 900))]:
        cfg = EvalConfig(ties=ties, device="cpu", seed=5)
        old = numba.get_num_threads()
        try:
            numba.set_num_threads(1)
            one = evaluate(qc, dc, ql, dl, cfg)
            numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
            two = evaluate(qc, dc, ql, dl, cfg)
        finally:
            numba.set_num_threads(old)
        assert one.metrics == two.metrics
        for k in one.per_query:
            np.testing.assert_array_equal(one.per_query[k], two.per_query[k])


def test_random_ties_depend_on_seed_only() -> None:
    rng = np.random.default_rng(4)
    qc = rng.integers(0, 2, (8, 2), dtype=np.uint8)
    dc = rng.integers(0, 2, (60, 2), dtype=np.uint8)
    ql = (rng.random((8, 3)) < 0.4).astype(np.uint8)
    dl = (rng.random((60, 3)) < 0.4).astype(np.uint8)
    a = mean_average_precision(qc, dc, ql, dl, topk=10, ties="random", seed=1, device="cpu")
    b = mean_average_precision(qc, dc, ql, dl, topk=10, ties="random", seed=1, device="cpu")
    c = mean_average_precision(qc, dc, ql, dl, topk=10, ties="random", seed=2, device="cpu")
    assert a == b and a != c
    perm = np.empty(1000, np.int64)
    _kernels.fill_permutation(np.uint64(9), np.uint64(3), perm)
    assert sorted(perm.tolist()) == list(range(1000))


def test_database_too_large_for_ranked_ties_is_a_clear_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert _kernels.fits(64, 1 << 24) and not _kernels.fits(64, (1 << 24) + 1)
    monkeypatch.setattr(_kernels, "fits", lambda bits, n: False)
    args = (np.zeros((1, 4)), np.zeros((3, 4)), np.zeros(1), np.zeros(3))
    with pytest.raises(DataError, match="too large"):
        evaluate(*args, EvalConfig(device="cpu"))
    evaluate(*args, EvalConfig(device="cpu", ties="tie-aware"))   # no such limit
