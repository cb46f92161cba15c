"""Speed and memory of the shared evaluator (hashbench.evaluation).

Prints:
1. query-database pairs per second for mAP@5000 + mAP@all + the Hamming-radius PR curve
   computed together (Q = 2,000, N = 100,000, b = 48, 21 labels; target >= 0.5e9);
2. the time of a faithful re-implementation of DeepHash-pytorch's CalcTopMap loop (per-query
   np.argsort) on the same data, ours, and the ratio (target >= 30x);
3. the peak RSS of Q = 2,000 against N = 1,000,000 at 64 bits, measured in a fresh
   subprocess so that part 1 does not pollute it (target < 2 GiB);
4. the same against N = 10,000,000 at 64 bits, the database made, packed and streamed into
   the evaluator block by block (hashbench.codes.PackedBits), so that its unpacked codes
   (640 MB) and labels (210 MB) never exist; peak RSS in a fresh subprocess (target < 2 GiB).

Usage: python benchmarks/evaluator.py [--ref-queries 2000] [--skip-mem] ...
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from hashbench.evaluation import EvalConfig, evaluate  # noqa: E402


def make_data(nq: int, n: int, bits: int, n_labels: int, seed: int = 0
              ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Codes and NUS-WIDE-like labels whose codes carry label information.

    Labels: 21 with skewed popularity, at least one per item; chance level about 0.35,
    as the paper reports for NUS-WIDE.
    Codes: sign of (sum of the item's label prototypes + noise), so that mAP is far
    above chance and distances look like a trained hasher's. Made in blocks (low memory).
    """
    rng = np.random.default_rng(seed)
    pop = 0.37 * (np.arange(1, n_labels + 1) ** -0.6)
    proto = rng.standard_normal((n_labels, bits)).astype(np.float32)

    def block(m: int) -> Tuple[np.ndarray, np.ndarray]:
        lab = (rng.random((m, n_labels)) < pop).astype(np.uint8)
        none = lab.sum(1) == 0
        lab[none, rng.integers(0, n_labels, none.sum())] = 1
        z = lab.astype(np.float32) @ proto + 1.5 * rng.standard_normal((m, bits), dtype=np.float32)
        return (z > 0).astype(np.uint8), lab

    def many(m: int) -> Tuple[np.ndarray, np.ndarray]:
        codes = np.empty((m, bits), np.uint8)
        labs = np.empty((m, n_labels), np.uint8)
        for s in range(0, m, 100_000):
            c, lab = block(min(100_000, m - s))
            codes[s:s + len(c)], labs[s:s + len(c)] = c, lab
        return codes, labs

    qc, ql = many(nq)
    dc, dl = many(n)
    return qc, dc, ql, dl


def calc_top_map(rB: np.ndarray, qB: np.ndarray, retrievalL: np.ndarray, queryL: np.ndarray,
                 topk: int) -> float:
    """DeepHash-pytorch's CalcTopMap, re-implemented faithfully: +-1 float codes, Hamming
    distance from a dot product, a per-query np.argsort (default quicksort), AP over the top
    K, a query with nothing relevant adds 0, mean over all queries."""
    num_query = queryL.shape[0]
    q = rB.shape[1]
    total = 0.0
    for it in range(num_query):
        gnd = (queryL[it, :] @ retrievalL.T > 0).astype(np.float32)
        hamm = 0.5 * (q - qB[it, :] @ rB.T)
        gnd = gnd[np.argsort(hamm)][:topk]
        tsum = int(gnd.sum())
        if tsum == 0:
            continue
        count = np.linspace(1, tsum, tsum)
        tindex = np.asarray(np.where(gnd == 1)) + 1.0
        total += np.mean(count / tindex)
    return total / num_query


def best_time(fn, repeats: int) -> Tuple[float, object]:  # type: ignore[no-untyped-def]
    """Best wall time of ``repeats`` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def speed(args: argparse.Namespace) -> None:
    """Parts 1 and 2."""
    load0 = os.getloadavg()[0]
    qc, dc, ql, dl = make_data(args.queries, args.db, args.bits, args.labels)
    pairs = args.queries * args.db
    # ties named explicitly: the default tie order is "random" (see EvalConfig)
    cfg = EvalConfig(topk=(5000, None), precision_at=(), pr_levels=0, device="cpu", ties="index")
    evaluate(qc[:4], dc[:1000], ql[:4], dl[:1000], cfg)   # load/compile the kernels first
    cpu0 = time.process_time()
    t_ours, res = best_time(lambda: evaluate(qc, dc, ql, dl, cfg), args.repeats)
    cpu = (time.process_time() - cpu0) / args.repeats
    m = res.metrics
    print(f"data: Q={args.queries} N={args.db} b={args.bits} L={args.labels}; "
          f"chance={m['chance']:.3f} mAP@5000={m['mAP@5000']:.4f} mAP@all={m['mAP@all']:.4f} "
          f"P@r2={m['P@r2']:.4f}")
    print(f"[1] mAP@5000 + mAP@all + radius PR (ties=index, numba, "
          f"{os.cpu_count()} cores): {t_ours:.3f} s = {pairs / t_ours / 1e9:.2f} billion "
          f"pairs/s (target >= 1.5); CPU time {cpu:.3f} s per run; load average before "
          f"{load0:.2f} (other processes share these cores: the times include their share)")
    for ties in ("tie-aware", "random"):   # random: the default
        c2 = EvalConfig(topk=(5000, None), precision_at=(), pr_levels=0, device="cpu", ties=ties)
        evaluate(qc[:4], dc[:1000], ql[:4], dl[:1000], c2)
        t2, _ = best_time(lambda: evaluate(qc, dc, ql, dl, c2), 1)
        print(f"    same with ties={ties}: {t2:.3f} s = {pairs / t2 / 1e9:.2f} billion pairs/s")
    full = EvalConfig(device="cpu")
    evaluate(qc[:4], dc[:1000], ql[:4], dl[:1000], full)
    t_full, _ = best_time(lambda: evaluate(qc, dc, ql, dl, full), 1)
    print(f"    every default metric (mAP@5000/50000/all, P@N, radius, 1000-level PR): "
          f"{t_full:.3f} s = {pairs / t_full / 1e9:.2f} billion pairs/s")

    nref = min(args.ref_queries, args.queries)
    # As DeepHash-pytorch calls it: codes are torch.sign(...).numpy() (float32 +-1); labels
    # are the DataLoader's collated integer tensors, .numpy() (int64).
    rB = dc.astype(np.float32) * 2 - 1
    qB = qc[:nref].astype(np.float32) * 2 - 1
    t0 = time.perf_counter()
    ref = calc_top_map(rB, qB, dl.astype(np.int64), ql[:nref].astype(np.int64), 5000)
    t_ref = (time.perf_counter() - t0) * args.queries / nref
    note = "" if nref == args.queries else f" (timed on {nref} queries, scaled to {args.queries})"
    print(f"[2] CalcTopMap re-implementation (float32 codes, int64 labels), mAP@5000 only: "
          f"{t_ref:.2f} s{note}; "
          f"ours (mAP@5000 + mAP@all + radius PR): {t_ours:.3f} s; ratio {t_ref / t_ours:.0f}x "
          f"(target >= 30x)")
    ours_sub = evaluate(qc[:nref], dc, ql[:nref], dl, cfg).metrics["mAP@5000"]
    print(f"    mAP@5000 on those queries: CalcTopMap {ref:.6f}, ours (index ties) "
          f"{ours_sub:.6f} (they differ only through tie order)")


def make_packed(nq: int, n: int, bits: int, n_labels: int, seed: int = 0) -> tuple:
    """make_data's distribution (one set of label prototypes for queries and database),
    made in blocks and packed at once: (PackedBits x 4)."""
    from hashbench.codes import PackedBits

    pop = 0.37 * (np.arange(1, n_labels + 1) ** -0.6)
    proto = np.random.default_rng(seed).standard_normal((n_labels, bits)).astype(np.float32)

    def packed(m: int, stream: int) -> tuple:
        rng = np.random.default_rng([seed, stream])
        codes = np.empty((m, (bits + 7) // 8), np.uint8)
        labs = np.empty((m, (n_labels + 7) // 8), np.uint8)
        for start in range(0, m, 200_000):
            k = min(200_000, m - start)
            lab = (rng.random((k, n_labels)) < pop).astype(np.uint8)
            none = lab.sum(1) == 0
            lab[none, rng.integers(0, n_labels, none.sum())] = 1
            z = lab.astype(np.float32) @ proto + 1.5 * rng.standard_normal((k, bits), dtype=np.float32)
            codes[start:start + k] = np.packbits(z > 0, axis=1)
            labs[start:start + k] = np.packbits(lab, axis=1)
        return PackedBits(codes, bits), PackedBits(labs, n_labels)

    (qc, ql), (dc, dl) = packed(nq, 1), packed(n, 2)
    return qc, dc, ql, dl


def big_child(args: argparse.Namespace) -> None:
    """Part 4, in a fresh process: a 10-million-item database, packed and streamed."""
    t0 = time.perf_counter()
    qc, dc, ql, dl = make_packed(args.queries, args.big_db, args.mem_bits, args.labels, seed=2)
    made = time.perf_counter() - t0
    inputs = sum(a.packed.nbytes for a in (qc, dc, ql, dl))
    rss_inputs = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    cfg = EvalConfig(device="cpu")  # every default metric
    t0 = time.perf_counter()
    res = evaluate(qc, dc, ql, dl, cfg)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"[4] Q={args.queries} N={args.big_db} b={args.mem_bits}, packed database streamed in, every "
          f"default metric: {dt:.1f} s ({args.queries * args.big_db / dt / 1e9:.2f} billion pairs/s); "
          f"mAP@5000={res.metrics['mAP@5000']:.4f} mAP@all={res.metrics['mAP@all']:.4f}; packed inputs "
          f"{inputs / 2**20:.0f} MiB (made in {made:.0f} s, peak RSS then {rss_inputs / 2**30:.2f} GiB); "
          f"peak RSS {peak / 2**30:.2f} GiB (target < 2 GiB); load average {os.getloadavg()[0]:.1f}")


def memory_child(args: argparse.Namespace) -> None:
    """Part 3, run in a fresh process: evaluate, then print the peak RSS."""
    qc, dc, ql, dl = make_data(args.queries, args.mem_db, args.mem_bits, args.labels, seed=1)
    inputs = sum(a.nbytes for a in (qc, dc, ql, dl))
    cfg = EvalConfig(device="cpu")  # every default metric
    t0 = time.perf_counter()
    res = evaluate(qc, dc, ql, dl, cfg)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(f"[3] Q={args.queries} N={args.mem_db} b={args.mem_bits}, every default metric: "
          f"{dt:.2f} s ({args.queries * args.mem_db / dt / 1e9:.2f} billion pairs/s, includes "
          f"loading the compiled kernels); mAP@5000={res.metrics['mAP@5000']:.4f}; "
          f"inputs {inputs / 2**20:.0f} MiB; peak RSS {peak / 2**30:.2f} GiB (target < 2 GiB)")


def main() -> None:
    """Parse arguments and run the parts."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--db", type=int, default=100_000)
    ap.add_argument("--bits", type=int, default=48)
    ap.add_argument("--labels", type=int, default=21)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ref-queries", type=int, default=2000,
                    help="queries for the CalcTopMap timing (scaled up if fewer)")
    ap.add_argument("--mem-db", type=int, default=1_000_000)
    ap.add_argument("--mem-bits", type=int, default=64)
    ap.add_argument("--big-db", type=int, default=10_000_000)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-mem", action="store_true")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--big-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args)
        return
    if args.big_child:
        big_child(args)
        return
    if not args.skip_speed:
        speed(args)
    if not args.skip_mem:
        cmd = [sys.executable, __file__, "--memory-child", "--queries", str(args.queries),
               "--labels", str(args.labels), "--mem-db", str(args.mem_db),
               "--mem-bits", str(args.mem_bits)]
        subprocess.run(cmd, check=True)
    if not args.skip_big:
        cmd = [sys.executable, __file__, "--big-child", "--queries", str(args.queries),
               "--labels", str(args.labels), "--big-db", str(args.big_db), "--mem-bits", str(args.mem_bits)]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
