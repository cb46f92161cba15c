"""The options of a run, each declared once.

Every option is one :class:`Option` in :data:`OPTIONS`: its name (the keyword of
:func:`hashbench.run`), where an experiment file holds it (``file``), where the
:class:`RunConfig` holds it (``field``), its default, its help text, its command-line
flag and its kind (how a flag's text is parsed, and how a file's or Python's value is
checked and turned into the configuration's). Everything else is made from this table:

* the ``run`` command's flags (:func:`add_flags`) and the file layout of what they say
  (:func:`overrides_from_flags`);
* the experiment-file schema, its defaults and its per-key checks
  (:mod:`hashbench.experiment`: :data:`~hashbench.experiment.SCHEMA`,
  :data:`~hashbench.experiment.DEFAULTS`, :func:`check_document`);
* :class:`RunConfig` itself and :func:`to_run_config` (a checked file -> a configuration);
* the keywords of :func:`hashbench.run` (its signature and the arguments of its docstring,
  :func:`overrides_from_keywords`).

All three doors meet in one document in the file's layout: the command line and
``hashbench.run()`` turn what they are given into such a document, laid over the
experiment file (or the defaults), and :func:`hashbench.experiment.resolve_experiment`
checks the whole. ``None`` always means "not given" (a falsy value such as ``0`` or
``false`` is given, and overrides the file).

Adding an option: one ``Option(...)`` entry below (its kind, file key, flag, default,
help), then read ``config.<field>`` where the run uses it. The flag, the file key, the
``hashbench.run()`` keyword, the defaults and the checks follow; ``tests/test_options.py``
walks every option through every door.

Not run options: ``-q`` (progress bars, a session setting), ``--plugin`` (loads methods
for every command), ``--config`` (the file itself) and ``description``/``plugins`` keys
of a file (:mod:`hashbench.experiment`).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .errors import ConfigError

__all__ = ["OPTIONS", "Option", "RunConfig", "add_flags", "by_name", "overrides_from_flags",
           "overrides_from_keywords", "to_run_config", "document_from_config", "parse_topk"]


# ------------------------------------------------------------------ kinds of value
class Kind:
    """How one kind of value is read from a flag, checked from a file or Python, and configured.

    ``check(value, where)`` returns the value as the experiment document holds it (plain
    JSON), raising :class:`ConfigError` that names ``where``; ``to_config`` turns that into
    the :class:`RunConfig`'s value; ``from_flag`` reads what argparse gave.
    """

    type_name = "Any"

    def flag_kwargs(self) -> dict[str, Any]:
        return {}

    def from_flag(self, value: Any, where: str) -> Any:
        return self.check(value, where)

    def check(self, value: Any, where: str) -> Any:  # pragma: no cover - every kind defines it
        raise NotImplementedError

    def to_config(self, value: Any) -> Any:
        return copy.deepcopy(value)

    def show(self, value: Any) -> str:
        return str(value)


class Text(Kind):
    def __init__(self, *, optional: bool = True, choices: Sequence[str] | None = None, what: str = "a string") -> None:
        self.optional, self.choices, self.what = optional, tuple(choices or ()), what
        self.type_name = "str | None" if optional else "str"

    def flag_kwargs(self) -> dict[str, Any]:
        return {"choices": list(self.choices)} if self.choices else {}

    def check(self, value: Any, where: str) -> Any:
        if value is None and self.optional:
            return None
        if self.choices and value not in self.choices:
            raise ConfigError(f"{where} must be one of {', '.join(self.choices)}, got {value!r}")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where} must be {self.what}, got {value!r}")
        return value


class Integer(Kind):
    def __init__(self, *, minimum: int | None = None, optional: bool = False) -> None:
        self.minimum, self.optional = minimum, optional
        self.type_name = "int | None" if optional else "int"

    def flag_kwargs(self) -> dict[str, Any]:
        return {"type": int}

    def check(self, value: Any, where: str) -> Any:
        if value is None and self.optional:
            return None
        what = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
            self.minimum, f"an integer >= {self.minimum}")
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (
                self.minimum is not None and value < self.minimum):
            raise ConfigError(f"{where} must be {what}, got {value!r}")
        return int(value)


class IntList(Kind):
    type_name = "list[int]"

    def flag_kwargs(self) -> dict[str, Any]:
        return {"type": _flag_type(self, "comma-separated integers")}

    def check(self, value: Any, where: str) -> Any:
        if isinstance(value, str):
            try:
                value = [int(v) for v in value.split(",") if v.strip()]
            except ValueError:
                raise ConfigError(f"{where} must be a list of integers (or comma-separated integers), "
                                  f"got {value!r}") from None
        elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = [value]
        elif not isinstance(value, (str, bytes, Mapping)) and hasattr(value, "__iter__"):
            value = list(value)  # lists, tuples, NumPy arrays
        if not isinstance(value, list) or not all(
                isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{where} must be a list of integers, got {value!r}")
        return [int(v) for v in value]  # NumPy integers become ints: the cell keys are the command line's

    def to_config(self, value: Any) -> Any:
        return list(value)

    def show(self, value: Any) -> str:
        return ",".join(map(str, value))


class NameList(Kind):
    type_name = "list[str]"

    def flag_kwargs(self) -> dict[str, Any]:
        return {"type": _flag_type(self, "comma-separated names")}

    def check(self, value: Any, where: str) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        elif isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of names, got {value!r}")
        out = [v.strip() for v in value if v.strip()]
        if not out:
            raise ConfigError(f"{where}: expected at least one name, got {value!r}")
        return out

    def to_config(self, value: Any) -> Any:
        return list(value)

    def show(self, value: Any) -> str:
        return ",".join(value)


class Switch(Kind):
    type_name = "bool"

    def flag_kwargs(self) -> dict[str, Any]:
        return {"action": "store_true"}

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value


class Folder(Kind):
    """A path, ``~`` expanded; ``None`` or ``""`` is none (unless ``required``)."""

    def __init__(self, *, required: bool = False) -> None:
        self.required = required
        self.type_name = "Path" if required else "Path | None"

    def flag_kwargs(self) -> dict[str, Any]:
        return {"type": Path}

    def check(self, value: Any, where: str) -> Any:
        if value in (None, "", False):
            if self.required:
                raise ConfigError(f"{where} must name a folder")
            return None
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{where} must be a path (a string), got {value!r}")
        return str(Path(value).expanduser())

    def to_config(self, value: Any) -> Any:
        return None if value is None else Path(value)


class Shard(Kind):
    """``"i/n"``: part i of n of the grid (array jobs); the configuration holds ``(i, n)``."""

    type_name = "tuple[int, int] | None"

    def check(self, value: Any, where: str) -> Any:
        from .execution import parse_shard

        if value is None:
            return None
        if isinstance(value, (tuple, list)) and len(value) == 2:
            value = f"{value[0]}/{value[1]}"
        try:
            i, n = parse_shard(str(value))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        return f"{i}/{n}"

    def to_config(self, value: Any) -> Any:
        from .execution import parse_shard

        return None if value is None else parse_shard(value)


class TopK(Kind):
    """The K of each mAP@K: ``"5000,50000,all"`` or ``(5000, 50000, None)``; files hold ``"all"`` for None."""

    type_name = "tuple[int | None, ...] | None"

    def flag_kwargs(self) -> dict[str, Any]:
        return {"type": _flag_type(self, "integers or 'all'")}

    def check(self, value: Any, where: str) -> Any:
        if value is None:
            return None
        return ["all" if k is None else k for k in parse_topk(value, where)]

    def to_config(self, value: Any) -> Any:
        return None if value is None else parse_topk(value)

    def show(self, value: Any) -> str:
        return ",".join(str(v) for v in value)


class Table(Kind):
    """A table of names and values (a file's ``[section]``)."""

    type_name = "dict[str, Any]"

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a table, got {type(value).__name__}")
        return {str(k): v for k, v in value.items()}


class KeyValues(Table):
    """``KEY=VALUE`` flags (repeatable; values read as JSON when they are JSON), or a table."""

    def flag_kwargs(self) -> dict[str, Any]:
        return {"action": "append", "metavar": "KEY=VALUE"}

    def from_flag(self, value: Any, where: str) -> Any:
        return key_values(value, where)


class MethodParams(Kind):
    """Per-method hyper-parameters: ``--param METHOD.NAME=VALUE`` (repeatable), a file's
    ``[params.METHOD]`` tables, or ``{"itq": {"n_iter": 100}}`` / ``{"itq.n_iter": 100}`` from Python."""

    type_name = "dict[str, dict[str, Any]]"

    def flag_kwargs(self) -> dict[str, Any]:
        return {"action": "append", "metavar": "METHOD.NAME=VALUE"}

    def from_flag(self, value: Any, where: str) -> Any:
        out: dict[str, dict[str, Any]] = {}
        for key, v in key_values(value, where).items():
            method, dot, name = key.rpartition(".")
            if not dot or not method:
                raise ConfigError(f"{where}: expected method.name=value, got {key!r}")
            out.setdefault(method, {})[name] = v
        return out

    def check(self, value: Any, where: str) -> Any:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a table, got {type(value).__name__}")
        out: dict[str, dict[str, Any]] = {}
        for key, v in value.items():
            if isinstance(v, Mapping):
                out.setdefault(str(key), {}).update(v)
                continue
            method, dot, name = str(key).rpartition(".")
            if not dot or not method:
                raise ConfigError(f"{where}: expected {{method: {{name: value}}}} or 'method.name', got {key!r}")
            out.setdefault(method, {})[name] = v
        return out


def _flag_type(kind: Kind, expected: str) -> Callable[[str], Any]:
    """argparse's ``type=``: a flag's text checked by ``kind`` (argparse reports the error)."""

    def parse(text: str) -> Any:
        try:
            return kind.check(text, "value")
        except ConfigError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None

    parse.__name__ = type(kind).__name__
    return parse


def _json_value(text: str) -> Any:
    """A flag's value as JSON when it is JSON (numbers, true, lists), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def key_values(items: Sequence[str], what: str) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{"k": v}`` (values read as JSON when they are JSON)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key:
            raise ConfigError(f"{what}: expected key=value, got {item!r}")
        out[key.strip()] = _json_value(value)
    return out


def parse_topk(value: Any, where: str = "--topk") -> tuple[int | None, ...]:
    """``"5000,50000,all"`` or ``(5000, 50000, None)`` -> the evaluator's top-K tuple (None: all)."""
    items = value.split(",") if isinstance(value, str) else [value] if isinstance(value, numbers.Integral) \
        else list(value) if isinstance(value, (list, tuple)) else None
    if items is None:
        raise ConfigError(f"{where}: expected integers or 'all', got {value!r}")
    out: list[int | None] = []
    for v in items:
        text = v.strip().lower() if isinstance(v, str) else v
        if text is None or text in ("all", "none"):
            out.append(None)
        elif text != "":
            try:
                k = int(text)
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: expected integers or 'all', got {v!r}") from None
            if isinstance(v, bool) or k <= 0 or (not isinstance(v, str) and k != v):
                raise ConfigError(f"{where}: K must be a positive integer, got {v!r}")
            out.append(k)
    return tuple(out)


# ------------------------------------------------------------------ the options
@dataclass(frozen=True)
class Option:
    """One option of a run (see the module's docstring)."""

    name: str  # the keyword of hashbench.run(); the flag's dest
    file: tuple[str, ...]  # where an experiment file holds it: (section, key[, subkey])
    kind: Kind
    default: Any  # as the file holds it (None: not set)
    help: str
    flag: tuple[str, ...] = ()  # the command line's flag(s); () for none
    field: tuple[str, ...] | None = None  # where RunConfig holds it; None: (name,)
    metavar: str | None = None
    off_flag: str | None = None  # a flag that sets it to none (--no-report)

    @property
    def where(self) -> tuple[str, ...]:
        return self.field or (self.name,)

    @property
    def key(self) -> str:
        return ".".join(self.file)


_TOPK_HELP = "the K of mAP@K"
OPTIONS: tuple[Option, ...] = (
    # [dataset]
    Option("dataset", ("dataset", "name"), Text(optional=False, what="a dataset name"), "synthetic",
           "the dataset (synthetic: embedded, offline)", ("--dataset",)),
    Option("data_root", ("dataset", "root"), Folder(), None,
           "folder of a real dataset, in its publisher's layout", ("--data-root",)),
    Option("protocol", ("dataset", "protocol"), Text(), None,
           "the dataset's named protocol (e.g. paper, cleaned, tc21)", ("--protocol",),
           field=("dataset_options", "protocol")),
    Option("split_seed", ("dataset", "split_seed"), Integer(), 0, "seed of the query/database split",
           ("--split-seed",)),
    Option("split_file", ("dataset", "split"), Folder(), None,
           "load a saved split (results/<dataset>/splits/*.json)", ("--split",)),
    Option("dataset_options", ("dataset", "options"), KeyValues(), {},
           "dataset options, e.g. -D label_set=38 or -D n_items=3000 (repeatable)", ("-D", "--dataset-option")),
    Option("skip_corrupt", ("dataset", "options", "skip_corrupt"), Switch(), None,
           "skip (and report) images that do not decode instead of stopping", ("--skip-corrupt",),
           field=("dataset_options", "skip_corrupt")),
    # [features]
    Option("backbone", ("features", "backbone"), Text(), None,
           "feature network: the dataset's default (synthetic: efficientnet-lite0-pool; real data: alexnet-fc2), "
           "vgg16-fc7, vgg19-fc7, resnet50-pool (short: alexnet, vgg16, vgg19, resnet50, lite0); see "
           "`list backbones`", ("--backbone",)),
    Option("weights", ("features", "weights"), Text(), None,
           "backbone weights: imagenet, random, or a .pth file (default: the dataset's: imagenet; "
           "`--backbone alexnet --weights random` is the synthetic set's fast random stage)", ("--weights",)),
    Option("backbone_seed", ("features", "seed"), Integer(), 0, "seed of a random backbone",
           ("--backbone-seed",)),
    Option("cache_dir", ("features", "cache"), Folder(), None,
           "feature and word-vector cache (default: $HASHBENCH_CACHE or ~/.cache/hashbench)", ("--cache-dir",),
           field=("cache",)),
    Option("device", ("features", "device"), Text(), "auto", "auto (a GPU when present), cpu or cuda",
           ("--device",)),
    # [run]
    Option("methods", ("run", "methods"), NameList(), ["all"],
           "comma-separated method names (name@configuration for a named parameter set), all (every "
           "unsupervised method) and/or supervised (the supervised references, e.g. all,supervised)",
           ("--methods",)),
    Option("bits", ("run", "bits"), IntList(), [12, 24, 32, 48], "code lengths", ("--bits",)),
    Option("seeds", ("run", "seeds"), IntList(), [0], "method seeds", ("--seeds",)),
    Option("force", ("run", "force"), Switch(), False, "recompute cells that are already done", ("--force",)),
    Option("selected", ("run", "selected"), Text(choices=("labels", "label-free")), None,
           "use the hyper-parameters that `tune --criterion CRITERION` stored in the results folder "
           "(per method and bit length; recorded in each cell)", ("--selected",), metavar="CRITERION"),
    # [params]
    Option("params", ("params",), MethodParams(), {},
           "a method hyper-parameter, e.g. --param itq.n_iter=100 (repeatable)", ("--param",),
           field=("method_params",)),
    # [evaluation]
    Option("evaluation", ("evaluation",), KeyValues(), {},
           "an evaluation convention: any EvalConfig field, e.g. -E radius=3 or -E precision_at=[100,1000] "
           "(repeatable; --ties, --empty and --topk are three of them)", ("-E", "--evaluation")),
    Option("ties", ("evaluation", "ties"), Text(), None,
           "tie order among equal distances: random (the default: seeded, per query, never the dataset's "
           "file order), index, tie-aware", ("--ties",), field=("evaluation", "ties")),
    Option("empty", ("evaluation", "empty"), Text(), None,
           "queries with no relevant item in the top K: zero (count 0, the default) or drop", ("--empty",),
           field=("evaluation", "empty")),
    Option("topk", ("evaluation", "topk"), TopK(), None,
           "the K of mAP@K (the default: 5000,50000,all)", ("--topk",), field=("evaluation", "topk")),
    # [output]
    Option("results", ("output", "results"), Folder(required=True), "results", "results folder", ("--results",)),
    Option("report", ("output", "report"), Folder(), "reports",
           "report folder, regenerated at the end of `run` (hashbench.run(): only when given)", ("--report",),
           off_flag="--no-report"),
    # [execution]: where the cells run, never part of what a cell computes
    Option("jobs", ("execution", "jobs"), Integer(minimum=1), 1,
           "cells in parallel on this machine, each with cores/jobs threads", ("--jobs",)),
    Option("threads", ("execution", "threads"), Integer(minimum=1, optional=True), None,
           "BLAS/OpenMP/torch threads of each cell (default: all cores serially, cores/jobs with --jobs); give "
           "the same value to make serial and parallel runs agree bit for bit", ("--threads",)),
    Option("scheduler", ("execution", "scheduler"), Text(), None,
           "run the cells on a running dask.distributed cluster (e.g. tcp://host:8786); its workers must see "
           "the results folder", ("--scheduler",), metavar="ADDRESS"),
    Option("shard", ("execution", "shard"), Shard(), None,
           "run only part I of N of the grid (I from 0), e.g. --shard $SLURM_ARRAY_TASK_ID/4", ("--shard",),
           metavar="I/N"),
    Option("workers", ("execution", "workers"), Integer(minimum=0), 0,
           "image-reading processes for feature extraction and image-using methods (torch DataLoader; "
           "0: read in the main process)", ("--workers",)),
)


def by_name(name: str) -> Option:
    for opt in OPTIONS:
        if opt.name == name:
            return opt
    raise KeyError(name)


def is_shortcut(opt: Option) -> bool:
    """An option that names one key inside another option's table (``ties`` in ``evaluation``)."""
    return any(other is not opt and opt.file[: len(other.file)] == other.file for other in OPTIONS)


def get_path(doc: Mapping[str, Any], path: Sequence[str], missing: Any = None) -> Any:
    for key in path:
        if not isinstance(doc, Mapping) or key not in doc:
            return missing
        doc = doc[key]
    return doc


def set_path(doc: dict[str, Any], path: Sequence[str], value: Any) -> None:
    for key in path[:-1]:
        doc = doc.setdefault(key, {})
    doc[path[-1]] = value


# ------------------------------------------------------------------ RunConfig, made from the table
def _config_fields() -> list[tuple[str, Any, dataclasses.Field]]:
    fields = []
    for opt in OPTIONS:
        if len(opt.where) != 1:
            continue  # lives inside another field (protocol in dataset_options, ties in evaluation)
        value = None if opt.default is None else opt.kind.to_config(copy.deepcopy(opt.default))
        fields.append((opt.where[0], opt.kind.type_name,
                       dataclasses.field(default_factory=lambda v=value: copy.deepcopy(v))
                       if isinstance(value, (list, dict)) else dataclasses.field(default=value)))
    return fields + [
        ("progress", "bool", dataclasses.field(default=True)),  # progress bars (-q: off)
        ("command", "str | None", dataclasses.field(default=None)),  # how the run was asked for (provenance)
        # the resolved experiment (hashbench.experiment), stored in the results folder and each cell's provenance
        ("experiment", "dict[str, Any] | None", dataclasses.field(default=None)),
    ]


RunConfig = dataclasses.make_dataclass("RunConfig", _config_fields())
RunConfig.__module__ = __name__
RunConfig.__doc__ = "Everything that defines a run, one field per option (made from :data:`OPTIONS`):\n\n" + "\n".join(
    f"* ``{opt.where[0]}``: {opt.help}" for opt in OPTIONS if len(opt.where) == 1) + (
    "\n* ``progress``, ``command``, ``experiment``: progress bars, how the run was asked for, "
    "and the resolved experiment (provenance).")


def to_run_config(resolved: Mapping[str, Any]) -> Any:
    """The :class:`RunConfig` of a resolved experiment document (it carries the document)."""
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        if len(opt.where) == 1:
            value = get_path(resolved, opt.file)
            values[opt.where[0]] = None if value is None else opt.kind.to_config(value)
    for opt in OPTIONS:  # then the keys inside another field (protocol in dataset_options), when given
        value = get_path(resolved, opt.file)
        if len(opt.where) == 2 and value is not None:
            values.setdefault(opt.where[0], {})[opt.where[1]] = opt.kind.to_config(value)
    values["evaluation"] = _eval_kwargs(values.get("evaluation") or {})
    values["dataset_options"] = values.get("dataset_options") or {}
    values["method_params"] = {m: dict(p) for m, p in (values.get("method_params") or {}).items()}
    return RunConfig(**values, experiment=copy.deepcopy(dict(resolved)))


def _eval_kwargs(ev: Mapping[str, Any]) -> dict[str, Any]:
    kw = dict(ev)
    if "topk" in kw and kw["topk"] is not None:
        kw["topk"] = parse_topk(kw["topk"])
    if "precision_at" in kw and isinstance(kw["precision_at"], list):
        kw["precision_at"] = tuple(kw["precision_at"])
    return kw


def document_from_config(config: Any) -> dict[str, Any]:
    """A :class:`RunConfig` in the file's layout (to lay other values over it and check the whole)."""
    doc: dict[str, Any] = {}
    for opt in OPTIONS:
        if is_shortcut(opt) or len(opt.where) != 1:
            continue
        value = getattr(config, opt.where[0])
        if opt.name == "shard" and value is not None:
            value = f"{value[0]}/{value[1]}"
        elif isinstance(value, Path):
            value = str(value)
        elif opt.name == "evaluation":
            value = {k: (["all" if x is None else x for x in v] if k == "topk" and v is not None else
                         list(v) if isinstance(v, tuple) else v) for k, v in value.items()}
        set_path(doc, opt.file, copy.deepcopy(value))
    return doc


# ------------------------------------------------------------------ the doors
def add_flags(parser: argparse.ArgumentParser, names: Sequence[str] | None = None, *,
              defaults: Mapping[str, Any] | None = None, helps: Mapping[str, str] | None = None) -> None:
    """Add the flags of these options (all with a flag when None) to ``parser``.

    Left out, a flag is None ("not given": the file's value, or the default, stays) unless
    ``defaults`` gives it a value (commands other than ``run`` that read the flags directly,
    with ``helps`` where the flag means something else there).
    """
    defaults, helps = defaults or {}, helps or {}
    for opt in OPTIONS:
        if not opt.flag or (names is not None and opt.name not in names):
            continue
        kwargs = {"dest": opt.name, "default": defaults.get(opt.name), **opt.kind.flag_kwargs()}
        if opt.metavar:
            kwargs["metavar"] = opt.metavar
        shown = defaults.get(opt.name, opt.default)
        kwargs["help"] = helps.get(opt.name, opt.help) + (
            "" if shown is None or shown is False or shown == {} else f" (default: {opt.kind.show(shown)})")
        if kwargs.get("action") == "store_true" and opt.name in defaults:
            kwargs["default"] = defaults[opt.name]
        parser.add_argument(*opt.flag, **kwargs)
        if opt.off_flag:
            parser.add_argument(opt.off_flag, dest=f"no_{opt.name}", action="store_true",
                                help=f"no {opt.name} (overrides {opt.flag[0]} and the file)")


def flag_value(args: argparse.Namespace, name: str) -> Any:
    """The value a flag gave, in the file's layout (None: not given)."""
    opt = by_name(name)
    value = getattr(args, opt.name, None)
    if opt.off_flag and getattr(args, f"no_{opt.name}", False):
        return ""
    if value is None:
        return None
    return opt.kind.from_flag(value, opt.flag[-1])


def overrides_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The flags given on the command line, as a document in the file's layout (they override the file)."""
    out: dict[str, Any] = {}
    for opt in OPTIONS:
        if opt.flag:
            value = flag_value(args, opt.name)
            if value is not None:
                if isinstance(value, dict) and isinstance(get_path(out, opt.file), dict):
                    value = {**get_path(out, opt.file), **value}
                set_path(out, opt.file, value)
    return out


def overrides_from_keywords(given: Mapping[str, Any], who: str = "hashbench.run") -> dict[str, Any]:
    """``hashbench.run()``'s keywords (None: not given), checked, as a document in the file's layout."""
    names = [o.name for o in OPTIONS]
    for key in given:
        if key not in names:
            raise ConfigError(f"{who}: unknown option {key!r}; options: {', '.join(names)}")
    out: dict[str, Any] = {}
    for opt in OPTIONS:
        value = given.get(opt.name)
        if value is None:
            continue
        value = opt.kind.check(value, f"{who}: {opt.name}")
        if isinstance(value, dict) and isinstance(get_path(out, opt.file), dict):
            value = {**value, **get_path(out, opt.file)}  # the shortcut given apart wins over the table
        set_path(out, opt.file, value)
    return out


def options_table() -> str:
    """The options as a Markdown table (docs/user-guide.md holds it; a test keeps the two the same)."""
    rows = ["| `hashbench.run()` keyword | flag | file key | default |", "|---|---|---|---|"]
    for opt in OPTIONS:
        flag = ", ".join(f"`{f}`" for f in (*opt.flag, *([opt.off_flag] if opt.off_flag else [])))
        key = f"`[{opt.file[0]}]`" + (f" `{'.'.join(opt.file[1:])}`" if len(opt.file) > 1 else "")
        shown = "" if opt.default is None or opt.default is False or opt.default == {} else \
            f"`{opt.kind.show(opt.default)}`"
        rows.append(f"| `{opt.name}` | {flag} | {key} | {shown} |")
    return "\n".join(rows) + "\n"
