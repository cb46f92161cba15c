"""Command line: ``python -m hashbench {run,tune,list,report,prepare,cache}``."""

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
    p.add_argument("--backbone", help="feature network: alexnet-fc2 (default), vgg16-fc7, vgg19-fc7, resnet50-pool "
                   "(short: alexnet, vgg16, vgg19, resnet50); see `list backbones`")
    p.add_argument("--cache-dir", type=Path, help="feature and word-vector cache (default: $HASHBENCH_CACHE "
                   "or ~/.cache/hashbench)")
    p.add_argument("--device", help="auto (GPU when present, the default), cpu or cuda")


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
    # Defaults are None here: a flag that is not given leaves an experiment file's value
    # (or the default shown in the help) in place (hashbench.experiment).
    run.add_argument("--config", type=Path, metavar="FILE.toml",
                     help="an experiment file (configs/*.toml); the flags below override it")
    run.add_argument("--methods", type=_name_list,
                     help="comma-separated method names (name@configuration for a named parameter set), "
                     "all (every unsupervised method; the default) and/or supervised (the supervised "
                     "references, e.g. all,supervised)")
    run.add_argument("--bits", type=_int_list, help="default: 12,24,32,48")
    run.add_argument("--seeds", type=_int_list, help="method seeds (default: 0)")
    run.add_argument("--dataset", help="default: synthetic (embedded, offline)")
    run.add_argument("--data-root", type=Path, help="folder of a real dataset, in its publisher's layout")
    run.add_argument("--split-seed", type=int, help="seed of the query/database split (default: 0)")
    run.add_argument("--split", type=Path, dest="split_file", help="load a saved split (results/<dataset>/splits/*.json)")
    run.add_argument("--results", type=Path, help="results folder (default: results/)")
    run.add_argument("--report", type=Path, help="report folder (default: reports/)")
    run.add_argument("--no-report", action="store_true", help="do not regenerate the report at the end")
    run.add_argument("--param", action="append", default=[], metavar="METHOD.NAME=VALUE",
                     help="a method hyper-parameter, e.g. --param itq.n_iter=100 (repeatable)")
    run.add_argument("--ties", help="tie order among equal distances: random (the default: seeded, per query, "
                                    "never the dataset's file order), index, tie-aware")
    run.add_argument("--empty",
                     help="queries with no relevant item in the top K: zero (count 0, default) or drop")
    run.add_argument("--topk", help="the K of mAP@K (default: 5000,50000,all)")
    run.add_argument("--force", action="store_true", default=None, help="recompute cells that are already done")
    run.add_argument("--jobs", type=int,
                     help="cells in parallel on this machine, each with cores/jobs threads (default: 1)")
    run.add_argument("--threads", type=int,
                     help="BLAS/OpenMP/torch threads of each cell (default: all cores serially, cores/jobs with "
                     "--jobs); give the same value to make serial and parallel runs agree bit for bit")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="run the cells on a running dask.distributed cluster (e.g. tcp://host:8786); "
                     "its workers must see the results folder")
    run.add_argument("--workers", type=int,
                     help="image-reading processes for feature extraction and image-using methods "
                     "(torch DataLoader; default 0: read in the main process)")
    run.add_argument("--shard", metavar="I/N",
                     help="run only part I of N of the grid (I from 0), e.g. --shard $SLURM_ARRAY_TASK_ID/4")
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

    cache = sub.add_parser("cache", help="list the feature and word-vector cache; remove stale or all entries")
    cache.add_argument("--cache-dir", type=Path, help="the cache folder (default: $HASHBENCH_CACHE or ~/.cache/hashbench)")
    what = cache.add_mutually_exclusive_group()
    what.add_argument("--clear-stale", action="store_true", help="remove the entries no current version can use")
    what.add_argument("--clear", action="store_true", help="remove every entry (asks first, unless --yes)")
    cache.add_argument("--yes", action="store_true", help="with --clear: do not ask")
    return parser


def _topk(text: str) -> tuple[int | None, ...]:
    from .api import parse_topk

    return parse_topk(text)


def run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given on the command line, in an experiment file's layout (they override the file)."""
    given = {
        ("dataset", "name"): args.dataset,
        ("dataset", "root"): args.data_root,
        ("dataset", "protocol"): args.protocol,
        ("dataset", "split_seed"): args.split_seed,
        ("dataset", "split"): args.split_file,
        ("features", "weights"): args.weights,
        ("features", "backbone"): args.backbone,
        ("features", "cache"): args.cache_dir,
        ("features", "device"): args.device,
        ("run", "methods"): args.methods,
        ("run", "bits"): args.bits,
        ("run", "seeds"): args.seeds,
        ("run", "force"): args.force,
        ("run", "selected"): args.selected,
        ("evaluation", "ties"): args.ties,
        ("evaluation", "empty"): args.empty,
        ("evaluation", "topk"): None if args.topk is None else [
            "all" if k is None else k for k in _topk(args.topk)],
        ("output", "results"): args.results,
        ("output", "report"): args.report,
        ("execution", "jobs"): args.jobs,
        ("execution", "scheduler"): args.scheduler,
        ("execution", "shard"): args.shard,
        ("execution", "workers"): args.workers,
        ("execution", "threads"): args.threads,
    }
    out: dict[str, Any] = {}
    for (section, key), value in given.items():
        if value is not None:
            out.setdefault(section, {})[key] = str(value) if isinstance(value, Path) else value
    options = _key_values(args.dataset_option, "--dataset-option")
    if args.skip_corrupt:
        options["skip_corrupt"] = True
    if options:
        out.setdefault("dataset", {})["options"] = options
    if args.param:
        out["params"] = _method_params(args.param)
    return out


def cmd_run(args: argparse.Namespace) -> int:
    """A thin layer over :func:`hashbench.run`: the experiment file and the flags become a RunConfig."""
    from .api import run
    from .experiment import load_experiment, report_folder

    config = load_experiment(args.config, run_overrides(args))
    if config.cache:
        os.environ["HASHBENCH_CACHE"] = str(config.cache)
    config.progress = not args.quiet
    config.command = "python -m hashbench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.config is not None:
        print(f"experiment {args.config}" + (f": {config.experiment['description']}"
                                             if config.experiment.get("description") else ""))
    report = report_folder(config)
    run(config=config, report=None if args.no_report else report)
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
    from .tune import TuneConfig, format_records, tune

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
        cache=args.cache_dir, weights=args.weights, backbone=args.backbone, device=args.device or "auto",
        method_params=_method_params(args.param), force=args.force, progress=not args.quiet,
    )
    records = tune(config)
    print("\n" + format_records(records))
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
