"""``hashbench.run``: a whole grid (methods x bits x seeds on a dataset) from Python.

The command line's ``run`` is a thin layer over :func:`run`: the same
configuration, the same resume and skip rules (a finished cell is read back,
not recomputed; a cell of another configuration stops the run before anything
is computed unless ``force``), the same results store.

>>> import hashbench
>>> table = hashbench.run(methods=["itq", "lsh"], bits=[16, 32])   # doctest: +SKIP
>>> table.pivot_table(index="display_name", columns="bits", values="mAP@all")   # doctest: +SKIP
>>> table.attrs["results"]        # where the cells were written            # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from .errors import ConfigError

if TYPE_CHECKING:  # the heavy parts (torch, the datasets) load only when a run starts
    import pandas as pd

    from .options import RunConfig

#: keyword -> RunConfig field, for the keywords whose names differ
_RENAMED = {"cache_dir": "cache", "params": "method_params"}


def run(
    methods: str | Sequence[str] | None = None,
    bits: int | str | Sequence[int] | None = None,
    seeds: int | str | Sequence[int] | None = None,
    *,
    dataset: str | None = None,
    data_root: str | Path | None = None,
    dataset_options: Mapping[str, Any] | None = None,
    protocol: str | None = None,
    skip_corrupt: bool | None = None,
    split_seed: int | None = None,
    split_file: str | Path | None = None,
    results: str | Path | None = None,
    report: str | Path | None = None,
    params: Mapping[str, Any] | None = None,
    ties: str | None = None,
    empty: str | None = None,
    topk: str | Sequence[int | str | None] | None = None,
    weights: str | Path | None = None,
    cache_dir: str | Path | None = None,
    device: str | None = None,
    force: bool | None = None,
    quiet: bool | None = None,
    plugins: Sequence[str | Path] = (),
    config: RunConfig | str | Path | None = None,
    echo: Callable[[str], None] | None = print,
    **options: Any,
) -> pd.DataFrame:
    """Run methods x bits x seeds on a dataset, score and store every cell; return the table.

    Every argument left at ``None`` takes its value from ``config`` when one is
    given (a :class:`~hashbench.runner.RunConfig`, e.g. built from an
    experiment file), else the command line's default. So
    ``run(config=cfg, force=True)`` is ``cfg`` with ``force`` switched on.

    Args:
        methods: names (``["itq", "lsh"]``, ``"itq,lsh"``, ``"udht@paper"``) or ``"all"`` (default).
        bits: code lengths (default 12, 24, 32, 48). ``seeds``: method seeds (default 0).
        dataset, data_root: the dataset (default ``"synthetic"``, embedded) and a real dataset's folder.
        dataset_options: the command line's ``-D`` options (``{"label_set": 38}``);
            ``protocol`` and ``skip_corrupt`` are two of them, given apart as on the command line.
        split_seed, split_file: the query/database split's seed, or a saved split to reload.
        results: the results folder (default ``results/``). A finished cell there is read back, not
            recomputed (unless ``force``); a cell of another configuration stops the run with a
            :class:`~hashbench.errors.ResultsError` before anything runs.
        report: a folder to regenerate the report into at the end; None (default): no report
            (the command line writes ``reports/`` unless ``--no-report``).
        params: method hyper-parameters, ``{"itq": {"n_iter": 100}}`` or ``{"itq.n_iter": 100}``.
        ties, empty, topk: the evaluation conventions (``--ties``, ``--empty``, ``--topk``;
            ``topk`` as ``(5000, 50000, None)`` or ``"5000,50000,all"``).
        weights, cache_dir, device: backbone weights (``imagenet``, ``random``, a ``.pth`` file),
            the feature and word-vector cache, and ``auto``/``cpu``/``cuda``.
        force: recompute finished cells. ``quiet``: no progress bars or stage lines (``-q``).
        plugins: Python files that register extra methods (``--plugin``).
        config: an experiment file (``configs/default.toml``: its settings, the other
            arguments on top, as on the command line) or a ``RunConfig`` to start from.
        echo: where the per-cell lines go (``print``); None prints nothing.
        options: any other ``RunConfig`` field (``backbone_seed=1``).

    Returns:
        One row per cell of the grid, computed now or read back, with the columns of
        :func:`hashbench.load_results` plus ``status`` (``"computed"`` or ``"skipped"``).
        ``frame.attrs`` says where things are: ``"results"`` (the dataset's results folder),
        ``"results_root"``, ``"dataset_key"``, ``"report"`` (the report's index, or None),
        ``"computed"`` and ``"skipped"`` (cell counts). pandas keeps ``attrs`` through
        most operations but not all (e.g. ``merge``): read them off the returned frame.
    """
    from . import store
    from .errors import ResultsError
    from .progress import quiet as quiet_progress
    from .registry import load_plugin_file
    from .runner import Runner

    for plugin in plugins:
        load_plugin_file(plugin)
    if isinstance(config, (str, Path)):
        from .experiment import load_experiment

        config = load_experiment(config)
    given = dict(
        methods=_names(methods, "methods"), bits=_ints(bits, "bits"), seeds=_ints(seeds, "seeds"),
        dataset=dataset, data_root=_path(data_root), split_file=_path(split_file),
        split_seed=None if split_seed is None else _ints(split_seed, "split_seed")[0],
        results=_path(results), cache_dir=_path(cache_dir), weights=None if weights is None else str(weights),
        device=device, force=force, **options,
    )
    cfg = _config(config, given, dataset_options, protocol, skip_corrupt, params, ties, empty, topk, quiet)
    say = echo if echo is not None else (lambda _line: None)

    with _cache_env(cfg.cache), (quiet_progress() if not cfg.progress else contextlib.nullcontext()):
        summary = Runner(cfg, echo=say).run()
    folder = summary.results.resolve() / summary.dataset_key
    say(f"\n{len(summary.computed)} cell(s) computed, {len(summary.skipped)} already done; results in {folder}")
    cells = []
    for outcome in summary.outcomes:
        state, reason, cell = store.read_cell(outcome.path)
        if state != store.CellState.DONE or cell is None:  # another process replaced it meanwhile
            raise ResultsError(f"results cell {outcome.path} cannot be read back: {reason}")
        cells.append(cell)
    frame = store.results_frame(cells)
    status = {str(o.path): o.status for o in summary.outcomes}
    if not frame.empty:
        frame["status"] = frame["path"].map(status)
    index = write_report(summary.results, report, echo=say) if report is not None else None
    frame.attrs.update(results=folder, results_root=summary.results.resolve(), dataset_key=summary.dataset_key,
                       report=index, computed=len(summary.computed), skipped=len(summary.skipped))
    return frame


def write_report(results: str | Path, out: str | Path, *, echo: Callable[[str], None] = print) -> Path:
    """Regenerate the report from the results store; returns its index (or the folder)."""
    from .reports import generate_reports

    paths = generate_reports(results, out)
    index = paths.get("index") if isinstance(paths, dict) else getattr(paths, "index", None)
    echo(f"report in {Path(out).resolve()}" + (f" (start at {index})" if index else ""))
    return Path(index) if index else Path(out).resolve()


# ------------------------------------------------------------------ helpers
def _config(
    base: RunConfig | None,
    given: dict[str, Any],
    dataset_options: Mapping[str, Any] | None,
    protocol: str | None,
    skip_corrupt: bool | None,
    params: Mapping[str, Any] | None,
    ties: str | None,
    empty: str | None,
    topk: Any,
    quiet: bool | None,
) -> RunConfig:
    """``base`` (or the defaults) updated by every argument that was given."""
    from .options import RunConfig

    if base is not None and not isinstance(base, RunConfig):
        raise ConfigError(f"config: expected a hashbench.runner.RunConfig or None, got {type(base).__name__}")
    cfg = dataclasses.replace(base) if base is not None else RunConfig()
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    changes: dict[str, Any] = {}
    for key, value in given.items():
        name = _RENAMED.get(key, key)
        if name not in fields:
            raise ConfigError(f"hashbench.run: unknown option {key!r}; RunConfig fields: {', '.join(sorted(fields))}")
        if value is not None:
            changes[name] = value
    opts = {**cfg.dataset_options, **(dataset_options or {})}
    if protocol is not None:
        opts["protocol"] = protocol
    if skip_corrupt is not None:
        opts["skip_corrupt"] = bool(skip_corrupt)
    changes["dataset_options"] = opts
    method_params = {m: dict(p) for m, p in cfg.method_params.items()}
    for key, value in (params or {}).items():
        if isinstance(value, Mapping):
            method_params.setdefault(key, {}).update(value)
        else:
            method, dot, name = str(key).rpartition(".")
            if not dot or not method:
                raise ConfigError(f"params: expected {{method: {{name: value}}}} or 'method.name', got {key!r}")
            method_params.setdefault(method, {})[name] = value
    changes["method_params"] = method_params
    evaluation = dict(cfg.evaluation)
    for key, value in (("ties", ties), ("empty", empty), ("topk", None if topk is None else parse_topk(topk))):
        if value is not None:
            evaluation[key] = value
    changes["evaluation"] = evaluation
    if quiet is not None:
        changes["progress"] = not quiet
    cfg = dataclasses.replace(cfg, **changes)
    if cfg.command is None:
        cfg.command = _call_text(given, dataset_options, protocol, skip_corrupt, params, ties, empty, topk, quiet)
    return cfg


def _call_text(given: dict[str, Any], *rest: Any) -> str:
    """How the run was asked for, recorded with every cell (as the command line records its command)."""
    names = ("dataset_options", "protocol", "skip_corrupt", "params", "ties", "empty", "topk", "quiet")
    args = {**{k: v for k, v in given.items() if v is not None},
            **{k: v for k, v in zip(names, rest) if v is not None}}
    return "hashbench.run(" + ", ".join(f"{k}={_plain(v)!r}" for k, v in args.items()) + ")"


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


@contextlib.contextmanager
def _cache_env(cache: Path | None) -> Iterator[None]:
    """The cache folder for the whole run: features get it as an argument, word vectors read the environment."""
    if cache is None:
        yield
        return
    old = os.environ.get("HASHBENCH_CACHE")
    os.environ["HASHBENCH_CACHE"] = str(cache)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HASHBENCH_CACHE", None)
        else:
            os.environ["HASHBENCH_CACHE"] = old


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value).expanduser()


def _names(value: str | Sequence[str] | None, what: str) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    out = [str(v).strip() for v in items if str(v).strip()]
    if not out:
        raise ConfigError(f"{what}: expected at least one name, got {value!r}")
    return out


def _ints(value: int | str | Sequence[int] | None, what: str) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return [int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"{what}: expected comma-separated integers, got {value!r}") from None
    values = [value] if isinstance(value, numbers.Integral) else list(value)
    # NumPy integers become ints, so that the cell keys are the command line's; the rest is checked by the runner
    return [int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v for v in values]


def parse_topk(value: str | Sequence[int | str | None]) -> tuple[int | None, ...]:
    """``"5000,50000,all"`` or ``(5000, 50000, None)`` -> the evaluator's top-K tuple (None: all)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[int | None] = []
    for v in items:
        text = v.strip().lower() if isinstance(v, str) else v
        if text is None or text in ("all", "none"):
            out.append(None)
        elif text != "":
            try:
                k = int(text)
            except (TypeError, ValueError):
                raise ConfigError(f"--topk: expected integers or 'all', got {v!r}") from None
            if isinstance(v, bool) or k <= 0 or (not isinstance(v, str) and k != v):
                raise ConfigError(f"--topk: K must be a positive integer, got {v!r}")
            out.append(k)
    return tuple(out)
