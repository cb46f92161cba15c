"""Fit and encode times of the eight classical methods, the three deep baselines, USDH/PLUDH and
GreedyHash/Bi-half on features, at the scale of the paper's experiments.

    python benchmarks/methods.py                 # 20,000 x 4,096 training set, 100,000-item database
    python benchmarks/methods.py --quick         # 5,000 x 1,024 and 20,000: a smoke run
    python benchmarks/methods.py --methods itq,agh --bits 64
    python benchmarks/methods.py --methods itq,usdh,pludh --n-train 5000 --n-db 6000   # a main-job cell

The data are random clustered float32 features passed through a ReLU, like
AlexNet FC2 features. Each method is fitted once on the training set and
encodes the database; the table gives wall-clock seconds.

Ratios against references run in this same process:

* ``itq``: our fit time against a straightforward numpy ITQ (``np.cov`` in
  float64 plus a full ``np.linalg.eigh`` of the d x d covariance, then the same
  50 iterations from the same seed), and the fraction of training bits on which
  the two agree (not 100%: our covariance product is float32 for float32 input);
* ``pcah``: our fit against scikit-learn's ``PCA(svd_solver="covariance_eigh")``;
* ``dsh``, ``agh``, ``agh2``: the share of the fit spent in scikit-learn's
  KMeans (the same call, timed alone): the issue expects k-means to dominate;
* ``dh``, ``uh-bdnn``, ``deepbit``, ``usdh``, ``pludh``, ``greedyhash``, ``bihalf`` (deep, features mode,
  default schedules, early-stopped: the epochs run are printed): their fit
  against ITQ's fit on the same data, the classical method they are compared
  with in the papers' tables; for PLUDH also the share of the fit spent on its
  pseudo labels (PCA + k-means). ``--embedded`` times every method on the
  embedded default instead (5,000 x 4,096 cached FC2 features of
  ``synthetic``, encoding its 6,000 query and database items): the cost of one
  cell of the main job.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads (see benchmarks/README.md)

import numpy as np  # noqa: E402

import hashbench  # noqa: E402
from hashbench_methods import (  # noqa: F401,E402  (register them)
    agh, bihalf, deepbit, dh, dsh, greedyhash, itq, lsh, pcah, pludh, sh, sph, uh_bdnn, usdh,
)

CLASSICAL = ["lsh", "pcah", "itq", "sh", "sph", "dsh", "agh", "agh2"]
DEEP = ["dh", "uh-bdnn", "deepbit", "usdh", "pludh", "greedyhash", "bihalf"]
ALL = CLASSICAL + DEEP


def make_features(n: int, d: int, n_clusters: int, seed: int) -> np.ndarray:
    """(n, d) float32: ReLU of Gaussian clusters, generated in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d), dtype=np.float32)
    out = np.empty((n, d), dtype=np.float32)
    for i in range(0, n, 10_000):
        m = min(10_000, n - i)
        labels = rng.integers(0, n_clusters, m)
        out[i : i + m] = centres[labels] + rng.standard_normal((m, d), dtype=np.float32)
    np.maximum(out, 0, out=out)
    return out


def reference_itq(x: np.ndarray, bits: int, seed: int, n_iter: int = 50) -> np.ndarray:
    """ITQ written the plain way (as the authors' MATLAB does), for timing and agreement."""
    x = x.astype(np.float64)
    mean = x.mean(axis=0)
    cov = np.cov(x - mean, rowvar=False)
    vals, vecs = np.linalg.eigh(cov)
    pc = vecs[:, np.argsort(vals)[::-1][:bits]]
    pc = pc * np.sign(pc[np.abs(pc).argmax(axis=0), np.arange(bits)])  # the same sign convention as ours
    v = (x - mean) @ pc
    r = np.linalg.svd(np.random.default_rng(seed).standard_normal((bits, bits)))[0]
    for _ in range(n_iter):
        b = np.where(v @ r >= 0, 1.0, -1.0)
        s, _, s_hat_t = np.linalg.svd(b.T @ v)
        r = s_hat_t.T @ s.T
    return (v @ r >= 0).astype(np.uint8)


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=20_000)
    ap.add_argument("--n-db", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--bits", type=int, default=32)
    ap.add_argument("--methods", default=",".join(ALL))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="5,000 x 1,024 training set, 20,000-item database")
    ap.add_argument("--no-reference", action="store_true", help="skip the reference timings")
    ap.add_argument("--embedded", action="store_true",
                    help="the embedded default's cached features (5,000 train; 6,000 to encode): one main-job cell")
    args = ap.parse_args(argv)
    if args.quick:
        args.n_train, args.n_db, args.dim = 5_000, 20_000, 1024
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(ALL))
    if unknown:
        ap.error(f"--methods: unknown {unknown}; choose from {','.join(ALL)}")

    if args.embedded:
        from hashbench.runner import RunConfig, Runner

        feats, _ = Runner(RunConfig(progress=False)).features()
        train, db = feats["train"], np.concatenate([feats["query"], feats["database"]])
        print(f"data: the embedded default (synthetic), train {train.shape}, encode {db.shape[0]}, {args.bits} bits, "
              f"{os.cpu_count()} cores")
    else:
        print(f"data: train {args.n_train} x {args.dim}, database {args.n_db}, {args.bits} bits, "
              f"{os.cpu_count()} cores, numpy {np.__version__}")
        train, t_gen = _timed(lambda: make_features(args.n_train, args.dim, 100, args.seed))
        db, t_db = _timed(lambda: make_features(args.n_db, args.dim, 100, args.seed + 1))
        print(f"generated in {t_gen + t_db:.1f} s\n")

    rows = []
    fitted = {}
    print(f"{'method':8s} {'fit s':>9s} {'encode s':>9s}")
    for name in methods:
        h = hashbench.create(name, bits=args.bits, seed=args.seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, t_fit = _timed(lambda: h.fit(train))
        _, t_enc = _timed(lambda: h.encode(db))
        note = ""
        if name == "sph":
            note = f"{h.n_iter_} iterations, converged={h.converged_}"
        if name in DEEP:
            conv = h.fit_info_["convergence"]
            note = f"{conv['epochs_run']} epochs (best {conv['best_epoch']}): {conv['stopped_because']}"
        for w in caught:
            note += f" [warning: {str(w.message)[:60]}...]"
        rows.append((name, t_fit, t_enc, note))
        fitted[name] = (h, t_fit)
        print(f"{name:8s} {t_fit:9.2f} {t_enc:9.2f}  {note}", flush=True)

    if "itq" in fitted and any(name in fitted for name in DEEP):
        print("\ndeep baselines against ITQ, fitted in this process on the same data:")
    if "itq" in fitted:
        _, t_itq = fitted["itq"]
        for name in DEEP:
            if name in fitted:
                print(f"  {name} fit: {fitted[name][1]:.2f} s = {fitted[name][1] / t_itq:.1f}x ITQ's fit ({t_itq:.2f} s)")
    if args.no_reference:
        return 0
    print("\nratios against references run in this process:")
    if "itq" in fitted:
        h, t_ours = fitted["itq"]
        ref_codes, t_ref = _timed(lambda: reference_itq(train, args.bits, args.seed))
        agree = float(np.mean(h.encode(train) == ref_codes))
        print(f"  itq fit: ours {t_ours:.2f} s, plain numpy reference {t_ref:.2f} s, "
              f"speed-up x{t_ref / t_ours:.1f}; {100 * agree:.2f}% of the training bits agree")
    if "pcah" in fitted:
        from sklearn.decomposition import PCA

        _, t_ours = fitted["pcah"]
        _, t_ref = _timed(lambda: PCA(n_components=args.bits, svd_solver="covariance_eigh").fit(train))
        print(f"  pcah fit: ours {t_ours:.2f} s, sklearn PCA(covariance_eigh) {t_ref:.2f} s, "
              f"ratio ours/sklearn {t_ours / t_ref:.2f}")
    from sklearn.cluster import KMeans

    for name, k, iters in (("dsh", int(np.floor(1.5 * args.bits + 0.5)), 3), ("agh", 300, 5), ("agh2", 300, 5)):
        if name in fitted:
            _, t_fit = fitted[name]
            _, t_km = _timed(lambda: KMeans(n_clusters=min(k, len(train)), init="random", n_init=1,
                                            max_iter=iters, random_state=args.seed).fit(train))
            print(f"  {name} fit: {t_fit:.2f} s, of which k-means ({k} groups, {iters} iterations) "
                  f"{t_km:.2f} s = {100 * t_km / t_fit:.0f}%")
    for name in ("usdh", "pludh"):
        if name in fitted and "itq" in fitted:
            _, t_fit = fitted[name]
            print(f"  {name} fit: {t_fit:.2f} s = x{t_fit / fitted['itq'][1]:.1f} ITQ's fit")
    if "pludh" in fitted:
        h, t_fit = fitted["pludh"]
        n_fit = h.fit_info_["heldout"]["n_fit"]
        probe = hashbench.create("pludh", bits=args.bits, seed=args.seed)
        probe.fit_info_ = {}
        _, t_pl = _timed(lambda: probe._prepare(train[:n_fit]))
        print(f"  pludh fit: {t_fit:.2f} s, of which pseudo labels (PCA + k-means, {probe.n_clusters_} clusters) "
              f"{t_pl:.2f} s = {100 * t_pl / t_fit:.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
