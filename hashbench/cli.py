"""Command line: ``python -m hashbench {run,tune,list,report,prepare}``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError, HashbenchError

EPILOG_RUN = """examples:
  python -m hashbench run --methods all --bits 12,24,32,48
  python -m hashbench run --methods lsh,itq --bits 16,32 --dataset synthetic --seeds 0,1,2 --results results/
  python -m hashbench run --methods udht-frozen --bits 32 --param udht-frozen.lr=0.01
  python -m hashbench run --plugin my_hasher.py --methods all --bits 32
  python -m hashbench run --dataset mirflickr25k --data-root ~/data/mirflickr --weights ~/alexnet-owt-7be5be79.pth
"""


EPILOG_TUNE = """examples:
  python -m hashbench tune --methods itq,agh --bits 32 --criterion labels --trials 8
  python -m hashbench tune --methods udht-frozen --bits 32 --criterion label-free --trials 8
  python -m hashbench run --methods itq,agh --bits 32 --selected labels
An interrupted tune resumes where it stopped: re-run the same command.
"""


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("expected at least one integer")
    return values


def _name_list(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected at least one name")
    return values


def _value(text: str) -> Any:
    """Parse an option value as JSON when it is JSON (numbers, true, lists), else keep the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _key_values(items: Sequence[str], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what}: expected key=value, got {item!r}")
        out[key.strip()] = _value(value)
    return out


def _method_params(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in _key_values(items, "--param").items():
        method, dot, name = key.rpartition(".")
        if not dot or not method:
            raise ConfigError(f"--param: expected method.name=value, got {key!r}")
        out.setdefault(method, {})[name] = value
    return out


def _add_dataset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", dest="quiet_sub", action="store_true", help="no progress bars")
    p.add_argument("-D", "--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a dataset option, e.g. -D label_set=38 or -D n_items=3000 (repeatable)")
    p.add_argument("--protocol", help="the dataset's named protocol (e.g. paper, cleaned, tc21)")
    p.add_argument("--skip-corrupt", action="store_true",
                   help="skip (and report) images that do not decode instead of stopping")
    p.add_argument("--weights", help="backbone weights: imagenet, random, or a .pth file "
                   "(default: the dataset's; synthetic uses a seeded random AlexNet)")
    p.add_argument("--cache-dir", type=Path, help="feature and word-vector cache (default: $HASHBENCH_CACHE "
                   "or ~/.cache/hashbench)")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")


def _dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    opts = _key_values(args.dataset_option, "--dataset-option")
    if args.protocol:
        opts["protocol"] = args.protocol
    if args.skip_corrupt:
        opts["skip_corrupt"] = True
    return opts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hashbench",
        description="hashbench: a benchmark suite for unsupervised image hashing.",
    )
    parser.add_argument("--plugin", action="append", default=[], type=Path, metavar="FILE",
                        help="a Python file that registers extra methods (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run methods x bits x seeds on a dataset, score and store every cell",
                         epilog=EPILOG_RUN, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--methods", type=_name_list, default=["all"],
                     help="comma-separated method names, or all (default: all)")
    run.add_argument("--bits", type=_int_list, default=[12, 24, 32, 48], help="default: 12,24,32,48")
    run.add_argument("--seeds", type=_int_list, default=[0], help="method seeds (default: 0)")
    run.add_argument("--dataset", default="synthetic", help="default: synthetic (embedded, offline)")
    run.add_argument("--data-root", type=Path, help="folder of a real dataset, in its publisher's layout")
    run.add_argument("--split-seed", type=int, default=0, help="seed of the query/database split (default: 0)")
    run.add_argument("--split", type=Path, dest="split_file", help="load a saved split (results/<dataset>/splits/*.json)")
    run.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: results/)")
    run.add_argument("--report", type=Path, default=Path("reports"), help="report folder (default: reports/)")
    run.add_argument("--no-report", action="store_true", help="do not regenerate the report at the end")
    run.add_argument("--param", action="append", default=[], metavar="METHOD.NAME=VALUE",
                     help="a method hyper-parameter, e.g. --param itq.n_iter=100 (repeatable)")
    run.add_argument("--ties", default="random",
                     help="tie order among equal distances: random (default: seeded, per query, never the "
                          "dataset's file order), index, tie-aware")
    run.add_argument("--empty", default="zero",
                     help="queries with no relevant item in the top K: zero (count 0) or drop")
    run.add_argument("--topk", default="5000,50000,all", help="the K of mAP@K (default: 5000,50000,all)")
    run.add_argument("--force", action="store_true", help="recompute cells that are already done")
    run.add_argument("--selected", choices=["labels", "label-free"], metavar="CRITERION",
                     help="use the hyper-parameters that `tune --criterion CRITERION` stored in the results folder "
                          "(per method and bit length; recorded in each cell)")
    _add_dataset_args(run)

    tune = sub.add_parser("tune", help="select hyper-parameters on a validation split of the training role",
                          epilog=EPILOG_TUNE, formatter_class=argparse.RawDescriptionHelpFormatter)
    tune.add_argument("--methods", type=_name_list, default=["all"], help="comma-separated method names, or all")
    tune.add_argument("--bits", type=_int_list, default=[32], help="default: 32")
    tune.add_argument("--criterion", choices=["labels", "label-free"], default="labels",
                      help="labels: validation mAP with training-role labels (the field's usual practice); "
                           "label-free: the method's own held-out objective, or Euclidean-neighbour agreement")
    tune.add_argument("--trials", type=int, default=8, help="budget: trials per method and bit length (default 8)")
    tune.add_argument("--search-seed", type=int, default=0, help="seed of the order in which the grid is tried")
    tune.add_argument("--seed", type=int, default=0, help="method seed of every trial (default 0)")
    tune.add_argument("--val-size", type=float, default=0.2,
                      help="validation queries: a fraction of the training role (<1) or a count (default 0.2)")
    tune.add_argument("--val-seed", type=int, default=0, help="seed of the validation split (default 0)")
    tune.add_argument("--val-topk", default="5000", help="K of the labels criterion's validation mAP@K (or all)")
    tune.add_argument("--dataset", default="synthetic")
    tune.add_argument("--data-root", type=Path)
    tune.add_argument("--split-seed", type=int, default=0)
    tune.add_argument("--split", type=Path, dest="split_file")
    tune.add_argument("--results", type=Path, default=Path("results"))
    tune.add_argument("--param", action="append", default=[], metavar="METHOD.NAME=VALUE",
                      help="fix a hyper-parameter of a method (not tuned)")
    tune.add_argument("--force", action="store_true", help="discard stored trials and start afresh")
    _add_dataset_args(tune)

    lst = sub.add_parser("list", help="list methods, datasets and backbones")
    lst.add_argument("what", nargs="?", choices=["methods", "datasets", "backbones"], help="only this section")

    rep = sub.add_parser("report", help="regenerate tables and plots from stored results (runs nothing)")
    rep.add_argument("--results", type=Path, default=Path("results"))
    rep.add_argument("--out", type=Path, default=Path("reports"))

    prep = sub.add_parser("prepare", help="verify a dataset's files, print its statistics and realism report, "
                                           "cache its features")
    prep.add_argument("dataset")
    prep.add_argument("--root", type=Path, help="the dataset's folder (not for the embedded synthetic set)")
    prep.add_argument("--split-seed", type=int, default=0)
    prep.add_argument("--archives", type=Path, help="folder with the official archives, to verify their checksums")
    prep.add_argument("--no-features", action="store_true", help="do not build the feature cache")
    _add_dataset_args(prep)
    return parser


def _topk(text: str) -> tuple[int | None, ...]:
    out: list[int | None] = []
    for v in text.split(","):
        v = v.strip().lower()
        if v in ("all", "none"):
            out.append(None)
        elif v:
            try:
                k = int(v)
            except ValueError:
                raise ConfigError(f"--topk: expected integers or 'all', got {v!r}") from None
            if k <= 0:
                raise ConfigError(f"--topk: K must be positive, got {k}")
            out.append(k)
    return tuple(out)


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import RunConfig, run

    if args.cache_dir:
        os.environ["HASHBENCH_CACHE"] = str(args.cache_dir)
    config = RunConfig(
        dataset=args.dataset,
        data_root=args.data_root,
        dataset_options=_dataset_options(args),
        methods=args.methods,
        bits=args.bits,
        seeds=args.seeds,
        split_seed=args.split_seed,
        split_file=args.split_file,
        results=args.results,
        cache=args.cache_dir,
        weights=args.weights,
        device=args.device,
        method_params=_method_params(args.param),
        evaluation={"ties": args.ties, "empty": args.empty, "topk": _topk(args.topk)},
        force=args.force,
        progress=not args.quiet,
        command="python -m hashbench " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        selected=args.selected,
    )
    summary = run(config)
    print(
        f"\n{len(summary.computed)} cell(s) computed, {len(summary.skipped)} already done; "
        f"results in {summary.results.resolve() / summary.dataset_key}"
    )
    if not args.no_report:
        _report(args.results, args.report)
    return 0


def _report(results: Path, out: Path) -> None:
    from .reports import generate_reports

    paths = generate_reports(results, out)
    index = paths.get("index") if isinstance(paths, dict) else getattr(paths, "index", None)
    print(f"report in {Path(out).resolve()}" + (f" (start at {index})" if index else ""))


def cmd_report(args: argparse.Namespace) -> int:
    if not Path(args.results).is_dir():
        raise ConfigError(f"results folder {args.results}: no such folder (run `python -m hashbench run` first)")
    _report(args.results, args.out)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .datasets import available_datasets
    from .features import BACKBONES
    from .registry import available_methods, get_method

    if args.what in (None, "methods"):
        print("methods:")
        for name in available_methods():
            cls = get_method(name)
            kind = "deep" if cls.deep else "non-deep"
            needs = "+".join(sorted(cls.requires))
            print(f"  {name:<15} {cls.summary} [{kind}; needs {needs}] -- {cls.paper}")
    if args.what in (None, "datasets"):
        print("datasets:")
        for name, summary in available_datasets().items():
            print(f"  {name:<15} {summary}")
    if args.what in (None, "backbones"):
        print("backbones:")
        for name, summary in BACKBONES.items():
            print(f"  {name:<15} {summary}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from .datasets.prepare import format_prepare_report, prepare_dataset
    from .realism import format_realism, prepare_realism

    if args.root is None and args.dataset != "synthetic":
        raise ConfigError(f"prepare {args.dataset}: --root is needed (the folder of the dataset's files)")
    if args.cache_dir:
        os.environ["HASHBENCH_CACHE"] = str(args.cache_dir)
    # weights only: prepare builds the spec from the dataset's own preprocessing
    backbone = None if args.no_features else (args.weights or "default")
    report = prepare_dataset(
        args.dataset,
        args.root,
        options=_dataset_options(args),
        split_seed=args.split_seed,
        backbone=backbone,
        cache=args.cache_dir,
        device=args.device,
        archives=args.archives,
        extra={"realism": prepare_realism},
    )
    print(format_prepare_report(report))
    realism = report.get("realism")
    if realism and realism.get("report"):
        print(format_realism(realism["report"], realism["reference"]))
    elif realism:
        print(f"realism report: not computed: {realism['error']}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from .selection import TuneConfig, format_records, tune

    if args.cache_dir:
        os.environ["HASHBENCH_CACHE"] = str(args.cache_dir)
    topk = _topk(args.val_topk)
    if len(topk) != 1:
        raise ConfigError(f"--val-topk: expected one K (or all), got {args.val_topk!r}")
    val_size = int(args.val_size) if args.val_size >= 1 else args.val_size
    config = TuneConfig(
        dataset=args.dataset, data_root=args.data_root, dataset_options=_dataset_options(args),
        methods=args.methods, bits=args.bits, criterion=args.criterion, trials=args.trials,
        search_seed=args.search_seed, seed=args.seed, val_size=val_size, val_seed=args.val_seed,
        topk=topk[0], split_seed=args.split_seed, split_file=args.split_file, results=args.results,
        cache=args.cache_dir, weights=args.weights, device=args.device,
        method_params=_method_params(args.param), force=args.force, progress=not args.quiet,
    )
    records = tune(config)
    print("\n" + format_records(records))
    print(f"\nstored under {Path(args.results).resolve()}/<dataset>/selection; "
          f"use them with `python -m hashbench run ... --selected {args.criterion}`")
    return 0


COMMANDS = {"run": cmd_run, "tune": cmd_tune, "list": cmd_list, "report": cmd_report, "prepare": cmd_prepare}


def main(argv: Sequence[str] | None = None) -> int:
    # Before torch loads its OpenMP runtime (nothing above imports it): idle OpenMP threads
    # sleep instead of spinning. Spinning threads take the cores from every other process
    # and slowed small-batch training 2-40x on a shared 2-core machine; on a quiet one
    # sleeping costs nothing measurable (benchmarks/README.md). A value the user set is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.quiet or getattr(args, "quiet_sub", False):
        args.quiet = True
        os.environ["TQDM_DISABLE"] = "1"
    try:
        from .registry import load_plugin_file

        for plugin in args.plugin:
            names = load_plugin_file(plugin)
            print(f"plugin {plugin}: registered {', '.join(names)}")
        return COMMANDS[args.command](args)
    except HashbenchError as exc:
        print(f"hashbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hashbench: interrupted; finished cells are saved, re-run the same command to resume",
              file=sys.stderr)
        return 130
