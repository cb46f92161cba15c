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
    options = { label_set = "38" }        # -D key=value (--skip-corrupt: skip_corrupt = true)

    [features]
    backbone = "alexnet-fc2"              # --backbone
    weights = "imagenet"                  # --weights: imagenet, random or a .pth file
    seed = 0                              # --backbone-seed: seed of a random backbone
    cache = "~/.cache/hashbench"          # --cache-dir
    device = "auto"                       # --device

    [run]
    methods = ["itq", "udht@paper"]       # --methods; "all", or name@configuration
    bits = [12, 24, 32, 48]               # --bits
    seeds = [0]                           # --seeds
    force = false                         # --force
    selected = "labels"                   # --selected: what `tune` stored for this criterion

    [params."udht@paper"]                 # --param udht@paper.epochs=50
    epochs = 50

    [evaluation]                          # --ties, --empty, --topk (any EvalConfig field)
    ties = "index"
    empty = "zero"
    topk = [5000, 50000, "all"]

    [output]
    results = "results"                   # --results
    report = "reports"                    # --report ("" : no report)

    [execution]                           # where the cells run (never what they compute)
    jobs = 1                              # --jobs
    threads = 2                           # --threads
    scheduler = "tcp://host:8786"         # --scheduler
    shard = "0/4"                         # --shard
    workers = 0                           # --workers

Every key but ``description`` and ``plugins`` is an option of the run, declared once in
:mod:`hashbench.options` with its flag, default and check; :data:`SCHEMA` and
:data:`DEFAULTS` are made from that table. Paths are taken as the command line takes them:
relative to the working directory, ``~`` expanded. Command-line flags override the file
(:func:`load_experiment`'s ``overrides``, a dict in the file's own layout), and so do the
keywords of :func:`hashbench.run`. The resolved experiment, every default
filled in, travels with the :class:`~hashbench.options.RunConfig` (``config.experiment``):
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
from .options import OPTIONS, _eval_kwargs, get_path, is_shortcut, set_path, to_run_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: the back-port of the same parser
    import tomli as tomllib

__all__ = ["SCHEMA", "load_experiment", "read_experiment_file", "resolve_experiment", "report_folder"]

#: keys of a file that are not options of the run: a description, plugin files, where it was read from
_TOP = ("description", "plugins")


def _schema() -> dict[str, tuple[str, ...]]:
    top: list[str] = list(_TOP)
    sections: dict[str, list[str]] = {}
    for opt in OPTIONS:
        if is_shortcut(opt):
            continue  # a key inside another option's table (checked with it)
        if opt.file[0] not in top:
            top.append(opt.file[0])
        if len(opt.file) == 2:
            sections.setdefault(opt.file[0], []).append(opt.file[1])
    return {"": (*top, "source"), **{k: tuple(v) for k, v in sections.items()}}


def _defaults() -> dict[str, Any]:
    out: dict[str, Any] = {"description": "", "source": None, "plugins": []}
    for opt in OPTIONS:
        if not is_shortcut(opt):
            set_path(out, opt.file, copy.deepcopy(opt.default))
    return out


#: Every key a file may hold, per section (``params`` holds one table per method, ``evaluation``
#: any EvalConfig field), made from :data:`hashbench.options.OPTIONS`.
SCHEMA: dict[str, tuple[str, ...]] = _schema()

#: The command line's defaults: a file that says nothing is the main job.
DEFAULTS: dict[str, Any] = _defaults()


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
    from .plan import check_method_params
    from .registry import load_entry_points, resolve_method

    methods = doc["run"]["methods"]
    load_entry_points()
    for spec in methods:
        if spec in ("all", "supervised"):
            continue
        try:
            resolve_method(spec)
        except ConfigError as exc:
            raise ConfigError(f"{source}: run.methods: {exc}") from None
    in_run = set(methods)
    for spec, params in doc["params"].items():
        if not isinstance(params, Mapping):
            raise ConfigError(f"{source}: [params.{spec}] must be a table of parameter = value")
        if "all" in in_run or "supervised" in in_run:
            if "@" in spec and spec not in in_run:
                raise ConfigError(f"{source}: parameters given for {spec!r}, which is not in run.methods "
                                  f"({', '.join(methods)})")
        elif spec not in in_run:
            raise ConfigError(
                f"{source}: parameters given for {spec!r}, which is not in run.methods ({', '.join(methods)})"
            )
        try:
            check_method_params(spec, params)  # the run's and tune's own check (hashbench.plan)
        except ConfigError as exc:
            raise ConfigError(f"{source}: [params.{spec!r}]: {exc}") from None


def resolve_experiment(doc: Mapping[str, Any], overrides: Mapping[str, Any] | None = None, *,
                       source: str = "experiment") -> dict[str, Any]:
    """The defaults, then ``doc``, then ``overrides``: checked, every key filled in, JSON-able.

    ``source`` names where ``doc`` came from in error messages. Each option's value is checked
    by its kind (:mod:`hashbench.options`); then what spans keys: the dataset and its options,
    the methods and their parameters, the evaluation conventions.
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
    for opt in OPTIONS:
        value = get_path(merged, opt.file)
        if value is None and is_shortcut(opt):
            continue  # a key of a table, not given
        set_path(merged, opt.file, opt.kind.check(value, f"{source}: {opt.key}"))
    ds = merged["dataset"]
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
    try:
        EvalConfig(**_eval_kwargs(ev))
    except ConfigError as exc:
        raise ConfigError(f"{source}: [evaluation]: {exc}") from None
    return json.loads(json.dumps(merged))  # plain JSON types only: it is stored as it is


def _str_list(value: Any, key: str, source: str) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{source}: {key} must be a list of strings, got {value!r}")
    return list(value)


def load_experiment(path: str | Path | None, overrides: Mapping[str, Any] | None = None):
    """The :class:`~hashbench.options.RunConfig` of an experiment file, ``overrides`` on top.

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
    """The report folder a run asks for (None: no report)."""
    return getattr(config, "report", None)
