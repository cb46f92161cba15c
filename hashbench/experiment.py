"""Experiment files: a whole run written down as TOML, rerunnable by anyone.

``python -m hashbench run --config configs/default.toml`` reads a file like this one
(every key is optional; what is left out takes the command line's default)::

    description = "the main job"
    plugins = []                          # Python files that register extra methods

    [dataset]
    name = "synthetic"                    # --dataset
    root = "~/data/mirflickr"             # --data-root (real datasets)
    protocol = "paper"                    # --protocol
    split_seed = 0                        # --split-seed
    split = "results/x/splits/abc.json"   # --split (a saved split)
    options = { label_set = "38" }        # -D key=value

    [features]
    weights = "imagenet"                  # --weights: imagenet, random or a .pth file
    seed = 0                              # seed of a random backbone
    cache = "~/.cache/hashbench"          # --cache-dir
    device = "auto"                       # --device

    [run]
    methods = ["itq", "udht@paper"]       # --methods; "all", or name@configuration
    bits = [12, 24, 32, 48]               # --bits
    seeds = [0]                           # --seeds
    force = false                         # --force

    [params."udht@paper"]                 # --param udht@paper.epochs=50
    epochs = 50

    [evaluation]                          # --ties, --empty, --topk (any EvalConfig field)
    ties = "index"
    empty = "zero"
    topk = [5000, 50000, "all"]

    [output]
    results = "results"                   # --results
    report = "reports"                    # --report ("" : no report)

Paths are taken as the command line takes them: relative to the working directory,
``~`` expanded. Command-line flags override the file (:func:`load_experiment`'s
``overrides``, a dict in the file's own layout). The resolved experiment, every default
filled in, travels with the :class:`~hashbench.runner.RunConfig` (``config.experiment``):
the runner stores it in the results folder (``<dataset>/experiments/<digest>.json``, which
``--config`` reads back) and in each cell's provenance.

Errors name the file: a TOML syntax error its line and column; an unknown key, method,
configuration or parameter the key and the known ones (:class:`~hashbench.errors.ConfigError`).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: the back-port of the same parser
    import tomli as tomllib

__all__ = ["SCHEMA", "load_experiment", "read_experiment_file", "resolve_experiment", "report_folder"]

#: Every key a file may hold, per section (``params`` holds one table per method).
SCHEMA: dict[str, tuple[str, ...]] = {
    # "source": where a stored experiment was read from (informational, ignored)
    "": ("description", "plugins", "dataset", "features", "run", "params", "evaluation", "output", "source",
         "execution"),
    "dataset": ("name", "root", "protocol", "split_seed", "split", "options"),
    "features": ("backbone", "weights", "seed", "cache", "device"),
    "run": ("methods", "bits", "seeds", "force", "selected"),
    "output": ("results", "report"),
    # where the cells run (hashbench.execution): never part of what a cell computes
    "execution": ("jobs", "scheduler", "shard", "workers", "threads"),
}

#: The command line's defaults: a file that says nothing is the main job.
DEFAULTS: dict[str, Any] = {
    "description": "",
    "source": None,
    "plugins": [],
    "dataset": {"name": "synthetic", "root": None, "protocol": None, "split_seed": 0, "split": None, "options": {}},
    "features": {"backbone": None, "weights": None, "seed": 0, "cache": None, "device": "auto"},
    "run": {"methods": ["all"], "bits": [12, 24, 32, 48], "seeds": [0], "force": False, "selected": None},
    "params": {},
    "evaluation": {},
    "output": {"results": "results", "report": "reports"},
    "execution": {"jobs": 1, "scheduler": None, "shard": None, "workers": 0, "threads": None},
}


# --------------------------------------------------------------------------- reading
def read_experiment_file(path: str | Path) -> dict[str, Any]:
    """The raw document of a ``.toml`` file (or a ``.json`` one the runner stored), unchecked.

    Raises :class:`ConfigError` naming the file: missing, unreadable, or a syntax error
    with its line and column.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"experiment file {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"experiment file {path}: cannot be read ({exc})") from None
    if path.suffix.lower() == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"experiment file {path}: JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        if not isinstance(doc, dict):
            raise ConfigError(f"experiment file {path}: expected a JSON object at the top")
        return doc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib (3.11-3.13) says where only in its message: "... (at line L, column C)" or
        # "(at end of document)"; 3.14 has the fields too
        line, col = getattr(exc, "lineno", None), getattr(exc, "colno", None)
        msg = str(exc)
        found = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", msg)
        if found:
            line, col, msg = int(found.group(1)), int(found.group(2)), msg[: found.start()]
        elif msg.endswith("(at end of document)"):
            lines = text.split("\n")
            line, col, msg = len(lines), len(lines[-1]) + 1, msg[: -len("(at end of document)")].strip() + " at the end"
        where = f"line {line}, column {col}: {msg}" if line else msg
        raise ConfigError(f"experiment file {path}: TOML syntax error at {where}") from None


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, table by table (lists and values replace)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_keys(doc: Mapping[str, Any], source: str) -> None:
    for section, known in SCHEMA.items():
        table = doc if section == "" else doc.get(section, {})
        if table is None:
            continue
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table, got {type(table).__name__}")
        unknown = sorted(set(table) - set(known))
        if unknown:
            where = "at the top level" if section == "" else f"in [{section}]"
            raise ConfigError(
                f"{source}: unknown key {', '.join(repr(k) for k in unknown)} {where}; known keys: {', '.join(known)}"
            )
    for section in ("params", "evaluation"):
        if not isinstance(doc.get(section, {}), Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table")
    opts = (doc.get("dataset") or {}).get("options", {})
    if not isinstance(opts, Mapping):
        raise ConfigError(f"{source}: dataset.options must be a table, got {type(opts).__name__}")


def _int_list(value: Any, key: str, source: str) -> list[int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"{source}: {key} must be a list of integers, got {value!r}")
    return list(value)


def _str_list(value: Any, key: str, source: str) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: {key} must be a list of strings, got {value!r}")
    return list(value)


def _path(value: Any, key: str, source: str) -> Path | None:
    if value in (None, "", False):
        return None
    if not isinstance(value, (str, Path)):
        raise ConfigError(f"{source}: {key} must be a path (a string), got {value!r}")
    return Path(value).expanduser()


def _topk(value: Any, source: str) -> tuple[int | None, ...]:
    if isinstance(value, (str, int)):
        value = str(value).split(",")
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{source}: evaluation.topk must be a list of integers or 'all', got {value!r}")
    out: list[int | None] = []
    for v in value:
        if v is None or (isinstance(v, str) and v.strip().lower() in ("all", "none")):
            out.append(None)
            continue
        try:
            k = int(v)
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: evaluation.topk: expected integers or 'all', got {v!r}") from None
        if k <= 0:
            raise ConfigError(f"{source}: evaluation.topk: K must be positive, got {k}")
        out.append(k)
    return tuple(out)


def _dataset_option_names(name: str) -> list[str] | None:
    """The options a registered dataset's constructor takes (None when it cannot be told)."""
    from .datasets.base import _DATASETS

    factory = _DATASETS.get(name)
    if factory is None:
        return None
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin or odd callable
        return None
    return [p.name for p in params.values()
            if p.name not in ("self", "root") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _check_methods(doc: dict[str, Any], source: str) -> None:
    """Every method, named configuration and parameter exists (the error lists the known ones)."""
    from .registry import load_entry_points, resolve_method

    methods = doc["run"]["methods"]
    load_entry_points()
    for spec in methods:
        if spec == "all":
            continue
        try:
            resolve_method(spec)
        except ConfigError as exc:
            raise ConfigError(f"{source}: run.methods: {exc}") from None
    in_run = set(methods)
    for spec, params in doc["params"].items():
        if not isinstance(params, Mapping):
            raise ConfigError(f"{source}: [params.{spec}] must be a table of parameter = value")
        try:
            cls, _ = resolve_method(spec)
        except ConfigError as exc:
            raise ConfigError(f"{source}: [params.{spec!r}]: {exc}") from None
        if "all" in in_run:
            if "@" in spec and spec not in in_run:
                raise ConfigError(f"{source}: parameters given for {spec!r}, which is not in run.methods "
                                  f"({', '.join(methods)})")
        elif spec not in in_run:
            raise ConfigError(
                f"{source}: parameters given for {spec!r}, which is not in run.methods ({', '.join(methods)})"
            )
        accepted = [p for p in cls._param_names() if p not in ("bits", "seed")]
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise ConfigError(
                f"{source}: [params.{spec!r}]: unknown parameter {', '.join(repr(u) for u in unknown)}; "
                f"known parameters of {spec}: {', '.join(accepted)}"
            )


def resolve_experiment(doc: Mapping[str, Any], overrides: Mapping[str, Any] | None = None, *,
                       source: str = "experiment") -> dict[str, Any]:
    """The defaults, then ``doc``, then ``overrides``: checked, every key filled in, JSON-able.

    ``source`` names where ``doc`` came from in error messages.
    """
    _check_keys(doc, source)
    if overrides:
        _check_keys(overrides, "command line")
    merged = _merge(DEFAULTS, doc)
    if overrides:
        over = dict(overrides)
        # methods named on the command line: parameters of the file's other methods do not apply
        methods_over = (over.get("run") or {}).get("methods")
        if methods_over is not None and "all" not in methods_over:
            merged["params"] = {m: p for m, p in merged["params"].items() if m in methods_over}
        merged = _merge(merged, over)
    ds, feats, run, out = merged["dataset"], merged["features"], merged["run"], merged["output"]
    if not isinstance(ds.get("name"), str) or not ds["name"]:
        raise ConfigError(f"{source}: dataset.name must be a dataset name, got {ds.get('name')!r}")
    from .datasets import available_datasets

    if ds["name"] not in available_datasets():
        raise ConfigError(
            f"{source}: dataset.name: unknown dataset {ds['name']!r}; known datasets: {', '.join(available_datasets())}"
        )
    known_opts = _dataset_option_names(ds["name"])
    if known_opts is not None:
        bad = sorted(set(ds["options"]) - set(known_opts))
        if bad:
            raise ConfigError(
                f"{source}: dataset.options: unknown option {', '.join(repr(b) for b in bad)} of dataset "
                f"{ds['name']}; known options: {', '.join(known_opts)}"
            )
    if "protocol" in ds["options"]:
        if ds["protocol"] not in (None, ds["options"]["protocol"]):
            raise ConfigError(f"{source}: dataset.protocol and dataset.options.protocol disagree")
        ds["protocol"] = ds["options"].pop("protocol")
    run["methods"] = _str_list(run["methods"], "run.methods", source)
    run["bits"] = _int_list(run["bits"], "run.bits", source)
    run["seeds"] = _int_list(run["seeds"], "run.seeds", source)
    if not isinstance(run["force"], bool):
        raise ConfigError(f"{source}: run.force must be true or false, got {run['force']!r}")
    if run["selected"] not in (None, "labels", "label-free"):
        raise ConfigError(f"{source}: run.selected must be a selection criterion (labels, label-free), "
                          f"got {run['selected']!r}")
    ex = merged["execution"]
    for key in ("jobs", "workers"):
        if isinstance(ex[key], bool) or not isinstance(ex[key], int) or ex[key] < (1 if key == "jobs" else 0):
            raise ConfigError(f"{source}: execution.{key} must be {'a positive' if key == 'jobs' else 'a non-negative'} "
                              f"integer, got {ex[key]!r}")
    if ex["threads"] is not None and (isinstance(ex["threads"], bool) or not isinstance(ex["threads"], int)
                                      or ex["threads"] < 1):
        raise ConfigError(f"{source}: execution.threads must be a positive integer, got {ex['threads']!r}")
    if ex["shard"] is not None:
        from .execution import parse_shard

        try:
            parse_shard(str(ex["shard"]))
        except ConfigError as exc:
            raise ConfigError(f"{source}: execution.shard: {exc}") from None
    if isinstance(ds["split_seed"], bool) or not isinstance(ds["split_seed"], int):
        raise ConfigError(f"{source}: dataset.split_seed must be an integer, got {ds['split_seed']!r}")
    if isinstance(feats["seed"], bool) or not isinstance(feats["seed"], int):
        raise ConfigError(f"{source}: features.seed must be an integer, got {feats['seed']!r}")
    merged["plugins"] = _str_list(merged["plugins"], "plugins", source)
    from .registry import load_plugin_file

    for plugin in merged["plugins"]:
        load_plugin_file(plugin)
    _check_methods(merged, source)
    from .evaluation import EvalConfig

    ev = dict(merged["evaluation"])
    names = [f.name for f in dataclasses.fields(EvalConfig)]
    bad = sorted(set(ev) - set(names))
    if bad:
        raise ConfigError(f"{source}: [evaluation]: unknown key {', '.join(repr(b) for b in bad)}; known keys: "
                          f"{', '.join(names)}")
    if "topk" in ev:
        ev["topk"] = ["all" if k is None else k for k in _topk(ev["topk"], source)]
    try:
        EvalConfig(**_eval_kwargs(ev, source))
    except ConfigError as exc:
        raise ConfigError(f"{source}: [evaluation]: {exc}") from None
    merged["evaluation"] = ev
    if _path(out["results"], "output.results", source) is None:
        raise ConfigError(f"{source}: output.results must name a folder")
    for section, key in (("dataset", "root"), ("dataset", "split"), ("features", "cache"), ("output", "report")):
        value = _path(merged[section][key], f"{section}.{key}", source)
        merged[section][key] = None if value is None else str(value)
    out["results"] = str(_path(out["results"], "output.results", source))
    return json.loads(json.dumps(merged))  # plain JSON types only: it is stored as it is


def _eval_kwargs(ev: Mapping[str, Any], source: str) -> dict[str, Any]:
    kw = dict(ev)
    if "topk" in kw:
        kw["topk"] = _topk(kw["topk"], source)
    if "precision_at" in kw and isinstance(kw["precision_at"], list):
        kw["precision_at"] = tuple(kw["precision_at"])
    return kw


def to_run_config(resolved: Mapping[str, Any]):
    """The :class:`~hashbench.runner.RunConfig` of a resolved experiment (it carries the experiment)."""
    from .execution import parse_shard
    from .options import RunConfig

    ds, feats, run = resolved["dataset"], resolved["features"], resolved["run"]
    options = dict(ds["options"])
    if ds["protocol"] is not None:
        options["protocol"] = ds["protocol"]
    return RunConfig(
        dataset=ds["name"],
        data_root=_path(ds["root"], "dataset.root", "experiment"),
        dataset_options=options,
        methods=list(run["methods"]),
        bits=list(run["bits"]),
        seeds=list(run["seeds"]),
        split_seed=ds["split_seed"],
        split_file=_path(ds["split"], "dataset.split", "experiment"),
        results=Path(resolved["output"]["results"]),
        cache=_path(feats["cache"], "features.cache", "experiment"),
        weights=feats["weights"],
        backbone=feats["backbone"],
        backbone_seed=feats["seed"],
        device=feats["device"],
        method_params={m: dict(p) for m, p in resolved["params"].items()},
        evaluation=_eval_kwargs(resolved["evaluation"], "experiment"),
        force=run["force"],
        selected=run["selected"],
        jobs=resolved["execution"]["jobs"],
        scheduler=resolved["execution"]["scheduler"],
        shard=parse_shard(str(resolved["execution"]["shard"])) if resolved["execution"]["shard"] is not None else None,
        workers=resolved["execution"]["workers"],
        threads=resolved["execution"].get("threads"),
        experiment=copy.deepcopy(dict(resolved)),
    )


def load_experiment(path: str | Path | None, overrides: Mapping[str, Any] | None = None):
    """The :class:`~hashbench.runner.RunConfig` of an experiment file, ``overrides`` on top.

    Args:
        path: a ``.toml`` experiment file (or the ``.json`` one a run stored in its results
            folder); None: no file, the command line's defaults (the main job).
        overrides: keys in the file's own layout that replace the file's, e.g.
            ``{"run": {"bits": [32]}, "params": {"itq": {"n_iter": 100}}}`` (what the
            command line's flags become).

    Raises:
        ConfigError: naming the file and the key (a syntax error with line and column; an
            unknown key, dataset option, method, configuration or parameter with the known ones).
    """
    if path is None:
        doc: dict[str, Any] = {}
        source = "command line"
    else:
        doc = read_experiment_file(path)
        source = f"experiment file {path}"
    resolved = resolve_experiment(doc, overrides, source=source)
    resolved["source"] = None if path is None else str(path)
    return to_run_config(resolved)


def report_folder(config) -> Path | None:
    """The report folder an experiment asks for (None: no report)."""
    exp = getattr(config, "experiment", None) or {}
    report = (exp.get("output") or {}).get("report", "reports")
    return None if report in (None, "", False) else Path(report)
