"""Regenerate the shipped defaults record: one selection, one budget, every method.

    python benchmarks/select_defaults.py --out methods/selected_defaults.json

runs ``tune`` (:func:`hashbench.tune.tune`, built on the selection library) on the
embedded default dataset for every method that has a search space, with the
same criterion, number of trials, bit length and validation split for each,
and writes the record every run then uses by default
(:mod:`hashbench.selection.record`): per method ``selected``, ``nothing to
select`` (empty search space) or ``inherited`` (end-to-end twins, with the
reason), every trial kept (failed ones with their reason), and the whole
configuration (criterion, trials, bits, validation split, stage, code
version, cost, hardware, threads). The selection is stored under
``--results`` and resumes where it stopped; it refuses to write a record when
every trial of some method failed.

``--estimate`` runs one trial of every method instead (into its own results
folder) and prints the estimated cost of the whole selection: per method the
time of that trial times the trials its budget runs (min(trials, grid size)).
Trials differ in cost (learning rates change epochs run), so it is an estimate;
the record of a full run holds the measured cost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

# before torch loads OpenMP (as the command line does): idle threads sleep, not spin, on a shared machine
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from hashbench.errors import ConfigError  # noqa: E402
from hashbench.provenance import hardware, thread_counts  # noqa: E402
from hashbench.registry import available_methods, get_method  # noqa: E402
from hashbench.selection import format_records, grid_size  # noqa: E402
from hashbench.tune import TuneConfig, tune  # noqa: E402
from hashbench.selection.record import build_record, write_record  # noqa: E402

CRITERION, TRIALS, BITS, VAL_SIZE = "labels", 12, 32, 0.2


def covered_methods(dataset: Any) -> list[str]:
    """Every registered method the dataset can run (its inputs are there), in the registry's order."""
    have = {"features", "labels", *(["tags"] if dataset.has_tags else []), *(["images"] if dataset.has_images else [])}
    return [m for m in available_methods() if set(get_method(m).requires) <= have]


def to_select(methods: list[str]) -> list[str]:
    """The methods whose search spaces the run searches: not the twins, not the empty spaces."""
    return [m for m in methods if get_method(m).search_space and not get_method(m).inherits_defaults_from]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/select_defaults.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="where to write the record (JSON); required unless --estimate")
    p.add_argument("--results", type=Path, default=Path("results-defaults"), help="selection store (resumable)")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--methods", default="", help="comma-separated subset to select (default: every method the "
                                                 "dataset can run that has a search space)")
    p.add_argument("--bits", type=int, default=BITS)
    p.add_argument("--trials", type=int, default=TRIALS)
    p.add_argument("--criterion", default=CRITERION)
    p.add_argument("--val-size", type=float, default=VAL_SIZE)
    p.add_argument("--backbone", default=None, help="the dataset's default stage unless given")
    p.add_argument("--estimate", action="store_true", help="one trial per method; print the estimated cost")
    p.add_argument("--leave-out", action="append", default=[], metavar="METHOD=REASON",
                   help="a method not to search (recorded as hand-set, with the reason); repeatable")
    p.add_argument("--note", default="", help="a sentence stored in the record's configuration")
    p.add_argument("-D", dest="options", action="append", default=[], metavar="KEY=VALUE",
                   help="dataset option (for a small trial of this script; the shipped record uses none)")
    args = p.parse_args(argv)
    if args.out is None and not args.estimate:
        p.error("--out is required (or --estimate)")
    from hashbench.datasets import get_dataset

    options = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.options)}
    dataset = get_dataset(args.dataset, **options)
    covered = covered_methods(dataset)
    left_out = dict(o.split("=", 1) for o in args.leave_out)
    unknown = sorted(set(left_out) - set(covered))
    if unknown:
        p.error(f"--leave-out names {', '.join(unknown)}, which this dataset's record would not cover")
    selected = [m for m in args.methods.split(",") if m] or [m for m in to_select(covered) if m not in left_out]
    if args.methods:  # a subset (a trial of this script): the record speaks for it, its twins, the empty spaces
        covered = [m for m in covered if m in selected or m in left_out or not get_method(m).search_space
                   or get_method(m).inherits_defaults_from in selected]
    val_size = int(args.val_size) if args.val_size >= 1 else args.val_size
    trials = 1 if args.estimate else args.trials
    results = args.results / "estimate" if args.estimate else args.results
    config = TuneConfig(dataset=args.dataset, dataset_options=options, methods=selected, bits=[args.bits],
                        criterion=args.criterion, trials=trials, val_size=val_size, results=results,
                        backbone=args.backbone, progress=False)
    threads = thread_counts()
    t0 = time.perf_counter()
    records = tune(config)
    wall = time.perf_counter() - t0
    print(format_records(records))
    per_method = {r["method"]: round(sum((t.get("fit_s") or 0) + (t.get("score_s") or 0) for t in r["trials"]), 1)
                  for r in records}
    if args.estimate:
        print(f"\nestimated cost of `--trials {args.trials}` ({len(records)} methods selected, "
              f"{threads['torch']} torch threads, {hardware()['cores']} cores):")
        total = 0.0
        for r in records:
            n = min(args.trials, grid_size(r["search_space"]))
            est = per_method[r["method"]] * n
            total += est
            print(f"  {r['method']:<16} 1 trial {per_method[r['method']]:8.1f} s x {n:>3} trials = {est / 60:7.1f} min")
        print(f"  {'total':<16} {total / 60:.1f} min (+ feature extraction; this estimate's wall time {wall:.0f} s)")
        return 0
    command = "python benchmarks/select_defaults.py " + " ".join(argv if argv is not None else sys.argv[1:])
    cost = {"wall_s": round(wall, 1), "per_method_s": per_method, "threads": threads, "hardware": hardware(),
            "note": "trials already stored under --results (a resumed run) count their stored times"}
    bb = records[0].get("backbone") or {}
    stage = (f"{records[0].get('dataset_key')} (dataset {args.dataset}{f' {options}' if options else ''}), "
             f"features {bb.get('name')} with {bb.get('weights')} weights")
    try:
        record = build_record(records, covered, what="how every built-in method's defaults were chosen: one "
                              "selection run, the same criterion, trials, bits and validation split for every method",
                              extra_config={"command": command, "stage": stage, "val_size": val_size, "cost": cost,
                                            **({"note": args.note} if args.note else {})},
                              left_out=left_out)
    except ConfigError as exc:  # e.g. every trial of a method failed: no record rather than a false one
        print(f"select_defaults: error: {exc}", file=sys.stderr)
        return 1
    write_record(record, args.out)
    print(f"\nwrote {args.out}: " + ", ".join(f"{m} {e['status']}" for m, e in record["methods"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
