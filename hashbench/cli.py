"""Command line: ``python -m hashbench {run,tune,list,report,prepare,cache}``."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError, HashbenchError
from .options import add_flags, by_name, flag_value, overrides_from_flags, parse_topk

EPILOG_RUN = """examples:
  python -m hashbench run --methods all --bits 12,24,32,48
  python -m hashbench run --config configs/default.toml              (the same run, as a file)
  python -m hashbench run --config configs/udht-paper-mirflickr.toml --data-root ~/data/mirflickr --bits 32
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


#: the flags `run`, `tune` and `prepare` share: which data, which features (hashbench.options)
DATA_FLAGS = ("dataset_options", "protocol", "skip_corrupt", "weights", "backbone", "cache_dir", "device")


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", dest="quiet_sub", action="store_true", help="no progress bars")
    add_flags(p, DATA_FLAGS, defaults={})


def _dataset_options(args: argparse.Namespace) -> dict[str, Any]:
    """-D, --protocol and --skip-corrupt as the dataset's options (for `tune` and `prepare`)."""
    opts = flag_value(args, "dataset_options") or {}
    for name in ("protocol", "skip_corrupt"):
        if getattr(args, name, None):
            opts[name] = flag_value(args, name)
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
    # Made from the option table (hashbench.options). Defaults are None here: a flag that is not
    # given leaves an experiment file's value (or the default shown in the help) in place.
    run.add_argument("--config", type=Path, metavar="FILE.toml",
                     help="an experiment file (configs/*.toml); the flags below override it")
    run.add_argument("-q", "--quiet", dest="quiet_sub", action="store_true", help="no progress bars")
    add_flags(run)

    tune = sub.add_parser("tune", help="select hyper-parameters on a validation split of the training role",
                          epilog=EPILOG_TUNE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(tune, ("methods", "bits", "dataset", "data_root", "split_seed", "split_file", "results", "force"),
              defaults={"methods": ["all"], "bits": [32], "dataset": "synthetic", "split_seed": 0,
                        "results": Path("results"), "force": False},
              helps={"force": "discard stored trials and start afresh"})
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
    tune.add_argument("--param", action="append", default=[], metavar="METHOD.NAME=VALUE",
                      help="fix a hyper-parameter of a method (not tuned; repeatable)")
    _add_data_flags(tune)

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
    _add_data_flags(prep)

    cache = sub.add_parser("cache", help="list the feature and word-vector cache; remove stale or all entries")
    cache.add_argument("--cache-dir", type=Path, help="the cache folder (default: $HASHBENCH_CACHE or ~/.cache/hashbench)")
    what = cache.add_mutually_exclusive_group()
    what.add_argument("--clear-stale", action="store_true", help="remove the entries no current version can use")
    what.add_argument("--clear", action="store_true", help="remove every entry (asks first, unless --yes)")
    cache.add_argument("--yes", action="store_true", help="with --clear: do not ask")
    return parser


def run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given on the command line, in an experiment file's layout (they override the file)."""
    return overrides_from_flags(args)


def cmd_run(args: argparse.Namespace) -> int:
    """The experiment file and the flags become a checked RunConfig, run as :func:`hashbench.run` runs one."""
    from .api import run_config
    from .experiment import load_experiment

    config = load_experiment(args.config, overrides_from_flags(args))
    if config.cache:
        os.environ["HASHBENCH_CACHE"] = str(config.cache)
    config.progress = not args.quiet
    config.command = "python -m hashbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.config is not None:
        print(f"experiment {args.config}" + (f": {config.experiment['description']}"
                                             if config.experiment.get("description") else ""))
    run_config(config, report=config.report)  # --no-report: none
    return 0


def _report(results: Path, out: Path) -> None:
    from .api import write_report

    write_report(results, out)


def cmd_report(args: argparse.Namespace) -> int:
    if not Path(args.results).is_dir():
        raise ConfigError(f"results folder {args.results}: no such folder (run `python -m hashbench run` first)")
    _report(args.results, args.out)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .datasets import available_datasets
    from .features import ALIASES, BACKBONES
    from .registry import available_methods, get_method

    if args.what in (None, "methods"):
        print("methods (`--methods all` runs the unsupervised ones; `supervised` adds the supervised references):")
        for name in available_methods():
            cls = get_method(name)
            kind = ("deep" if cls.deep else "non-deep") + (", supervised: not in all" if cls.is_supervised() else "")
            needs = "+".join(sorted(cls.requires))
            default = "" if cls.in_default_run else f"; not in 'all': {cls.not_in_default_run_because}"
            pref = getattr(cls, "preferred_backbone", None)
            pref = f"; paper's backbone {pref}" if pref else ""
            print(f"  {name:<15} {cls.summary} [{kind}; needs {needs}{pref}{default}] -- {cls.paper}")
    if args.what in (None, "datasets"):
        print("datasets:")
        for name, summary in available_datasets().items():
            print(f"  {name:<15} {summary}")
    if args.what in (None, "backbones"):
        print("backbones:")
        short = {full: alias for alias, full in ALIASES.items()}
        for name, bb in BACKBONES.items():
            print(f"  {name:<15} {bb.summary} [--backbone {short.get(name, name)}]")
            print(f"  {'':<15}   {bb.provenance()}")
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
    if args.backbone and not args.no_features:  # another network: the full spec, the dataset's preprocessing
        backbone = {"name": args.backbone, "weights": args.weights}
    report = prepare_dataset(
        args.dataset,
        args.root,
        options=_dataset_options(args),
        split_seed=args.split_seed,
        backbone=backbone,
        cache=args.cache_dir,
        device=args.device or "auto",
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


def cmd_cache(args: argparse.Namespace) -> int:
    from .cache import STALE, format_cache, human_size, remove_entries, scan_cache

    contents = scan_cache(args.cache_dir)
    print(format_cache(contents))
    if args.clear_stale or args.clear:
        doomed = contents.by_status(STALE) if args.clear_stale else [e for e in contents.entries if e.kind != "other"]
        size = human_size(sum(e.size for e in doomed))
        if args.clear and doomed and not args.yes:
            print(f"remove all {len(doomed)} cache entries ({size}) from {contents.root}? [y/N] ", end="", flush=True)
            answer = sys.stdin.readline().strip().lower()
            if answer not in ("y", "yes"):
                print("nothing removed")
                return 1
        freed = remove_entries(doomed)
        print(f"removed {len(doomed)} entr{'y' if len(doomed) == 1 else 'ies'}, {human_size(freed)} freed")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from .selection import all_failed, format_records
    from .tune import TuneConfig, tune

    if args.cache_dir:
        os.environ["HASHBENCH_CACHE"] = str(args.cache_dir)
    topk = parse_topk(args.val_topk, "--val-topk")
    if len(topk) != 1:
        raise ConfigError(f"--val-topk: expected one K (or all), got {args.val_topk!r}")
    val_size = int(args.val_size) if args.val_size >= 1 else args.val_size
    config = TuneConfig(
        dataset=args.dataset, data_root=args.data_root, dataset_options=_dataset_options(args),
        methods=args.methods, bits=args.bits, criterion=args.criterion, trials=args.trials,
        search_seed=args.search_seed, seed=args.seed, val_size=val_size, val_seed=args.val_seed,
        topk=topk[0], split_seed=args.split_seed, split_file=args.split_file, results=args.results,
        cache=args.cache_dir, weights=args.weights, backbone=args.backbone, device=args.device or "auto",
        method_params=by_name("params").kind.from_flag(args.param, "--param"), force=args.force,
        progress=not args.quiet,
    )
    records = tune(config)
    print("\n" + format_records(records))
    failed = all_failed(records)  # a failed trial is a result; a selection with nothing but failures is an error
    if failed:
        print("hashbench: error: every trial failed, nothing was selected for\n  " + "\n  ".join(failed),
              file=sys.stderr)
        return 1
    print(f"\nstored under {Path(args.results).resolve()}/<dataset>/selection; "
          f"use them with `python -m hashbench run ... --selected {args.criterion}`")
    return 0


COMMANDS = {"run": cmd_run, "tune": cmd_tune, "list": cmd_list, "report": cmd_report, "prepare": cmd_prepare,
            "cache": cmd_cache}


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
