"""The classical grid serially, with --jobs 2, and on a two-worker dask LocalCluster.

    python benchmarks/grid.py                # 8 classical methods x 12,24,32,48 bits, synthetic
    python benchmarks/grid.py --quick        # lsh,itq,pcah x 12,32 bits: a smoke run

Each way runs the same grid into its own fresh results folder (the feature cache is
filled first, so no way pays for feature extraction), checks that the stored metrics
and codes are identical to a serial run's with the same threads per cell (one: what each of
two workers gets on 2 cores), and prints wall times and the ratios serial / parallel. It
also says which cells of the default serial run (all cores per cell) differ from those:
the deep methods' float reductions in torch depend on the thread count. The cluster is started before the clock starts (as a user's running
cluster would be); its workers still import hashbench and torch on their first cell.
On a machine with 2 cores the best possible ratio is about 2; other processes on the
machine lower it (the load average is printed).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the command line does (see cli.main)

import numpy as np  # noqa: E402

from hashbench.runner import RunConfig, run  # noqa: E402
from hashbench.store import iter_cells  # noqa: E402

CLASSICAL = ["lsh", "pcah", "itq", "sh", "sph", "dsh", "agh", "agh2"]


def stored(root: Path) -> dict:
    out = {}
    for c in iter_cells(root):
        r = c.record
        out[(r["method"]["name"], r["bits"], r["seed"])] = (r["metrics"], *c.load_codes())
    return out


def differing(a: dict, b: dict) -> list:
    """The cells whose metrics or codes differ (all of them if the grids differ)."""
    if sorted(a) != sorted(b):
        return sorted(set(a) | set(b))
    return [k for k in sorted(a) if not (a[k][0] == b[k][0] and np.array_equal(a[k][1], b[k][1])
                                         and np.array_equal(a[k][2], b[k][2]))]


def same(a: dict, b: dict) -> bool:
    return not differing(a, b)


def timed(config: RunConfig) -> float:
    t0 = time.perf_counter()
    summary = run(config, echo=lambda s: None)
    dt = time.perf_counter() - t0
    assert len(summary.computed) == len(summary.outcomes), "a cell was not computed afresh"
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--methods", default=None)
    ap.add_argument("--bits", default=None)
    ap.add_argument("--skip-dask", action="store_true")
    args = ap.parse_args()
    methods = args.methods.split(",") if args.methods else (["lsh", "itq", "pcah"] if args.quick else CLASSICAL)
    bits = [int(b) for b in args.bits.split(",")] if args.bits else ([12, 32] if args.quick else [12, 24, 32, 48])
    work = Path(tempfile.mkdtemp(prefix="hashbench-grid-"))
    base = dict(methods=methods, bits=bits, progress=False)
    print(f"grid: {len(methods)} methods x {len(bits)} bit lengths = {len(methods) * len(bits)} cells "
          f"on synthetic; {os.cpu_count()} cores; results under {work}")
    run(RunConfig(methods=["lsh"], bits=[8], results=work / "warm", progress=False), echo=lambda s: None)

    load = os.getloadavg()[0]
    t_free = timed(RunConfig(**base, results=work / "serial-all-cores"))
    print(f"serial, all cores per cell: {t_free:7.1f} s   (load average before: {load:.1f})")
    load = os.getloadavg()[0]
    per_cell = max(1, (os.cpu_count() or 2) // 2)  # what each of 2 workers gets
    t_serial = timed(RunConfig(**base, results=work / "serial", threads=per_cell))
    ref = stored(work / "serial")
    diff = differing(ref, stored(work / "serial-all-cores"))
    print(f"serial, --threads {per_cell}: {t_serial:7.1f} s   (load average before: {load:.1f}); cells that differ "
          f"from the all-cores run: {', '.join(f'{m} {b}' for m, b, _ in diff) or 'none'}")

    load = os.getloadavg()[0]
    t_jobs = timed(RunConfig(**base, results=work / "jobs2", jobs=2))
    print(f"--jobs 2:    {t_jobs:7.1f} s   ratio serial (all cores)/jobs2 {t_free / t_jobs:.2f}, "
          f"serial (--threads {per_cell})/jobs2 {t_serial / t_jobs:.2f}   "
          f"identical to serial --threads {per_cell}: {same(ref, stored(work / 'jobs2'))}   "
          f"(load average before: {load:.1f})")

    if not args.skip_dask:
        from distributed import LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=logging.ERROR) as cluster:
            load = os.getloadavg()[0]
            t_dask = timed(RunConfig(**base, results=work / "dask", scheduler=cluster.scheduler_address))
        print(f"LocalCluster: {t_dask:6.1f} s   ratio serial (all cores)/cluster {t_free / t_dask:.2f}, "
              f"serial (--threads {per_cell})/cluster {t_serial / t_dask:.2f}   "
              f"identical to serial --threads {per_cell}: {same(ref, stored(work / 'dask'))}   "
              f"(load average before: {load:.1f})")


if __name__ == "__main__":
    sys.exit(main())
