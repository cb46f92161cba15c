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
import inspect
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from .errors import ConfigError
from .options import OPTIONS, RunConfig, document_from_config, overrides_from_keywords, parse_topk

if TYPE_CHECKING:  # the heavy parts (torch, the datasets) load only when a run starts
    import pandas as pd

__all__ = ["make_config", "parse_topk", "run", "run_config", "write_report"]

#: positional, in this order; every other option is a keyword
_POSITIONAL = ("methods", "bits", "seeds")


def run(*args: Any, config: RunConfig | str | Path | None = None, plugins: Sequence[str | Path] = (),
        quiet: bool | None = None, echo: Callable[[str], None] | None = print, **options: Any) -> pd.DataFrame:
    """Run methods x bits x seeds on a dataset, score and store every cell; return the table.

    Every option left at ``None`` takes its value from ``config`` when one is given (an
    experiment file, as ``run --config`` reads it, or a :class:`~hashbench.options.RunConfig`),
    else the command line's default; so ``run(config=cfg, force=True)`` is ``cfg`` with
    ``force`` switched on. The options are the command line's (:mod:`hashbench.options`), checked
    the same way; ``methods``, ``bits`` and ``seeds`` may also be given by position, as a list or
    a comma-separated string.

    Args:
{options}
        config: an experiment file (``configs/default.toml``: its settings, the other
            arguments on top, as on the command line) or a ``RunConfig`` to start from.
        plugins: Python files that register extra methods (``--plugin``).
        quiet: no progress bars (``-q``).
        echo: where the per-cell lines go (``print``); None prints nothing.

    Returns:
        One row per cell of the grid, computed now or read back, with the columns of
        :func:`hashbench.load_results` plus ``status`` (``"computed"`` or ``"skipped"``).
        ``frame.attrs`` says where things are: ``"results"`` (the dataset's results folder),
        ``"results_root"``, ``"dataset_key"``, ``"report"`` (the report's index, or None),
        ``"computed"`` and ``"skipped"`` (cell counts). pandas keeps ``attrs`` through
        most operations but not all (e.g. ``merge``): read them off the returned frame.
    """
    from .registry import load_plugin_file

    for plugin in plugins:
        load_plugin_file(plugin)
    if len(args) > len(_POSITIONAL):
        raise ConfigError(f"hashbench.run: at most {len(_POSITIONAL)} positional arguments "
                          f"({', '.join(_POSITIONAL)}), got {len(args)}")
    twice = sorted(set(_POSITIONAL[: len(args)]) & set(options))
    if twice:
        raise ConfigError(f"hashbench.run: {', '.join(twice)} given both by position and by name")
    given = {**dict(zip(_POSITIONAL, args)), **options}
    cfg = make_config(config, given, quiet=quiet)
    # the report is written only when asked for here (the command line: reports/ unless --no-report)
    return run_config(cfg, report=cfg.report if given.get("report") else None, echo=echo)


def run_config(cfg: RunConfig, *, report: str | Path | None = None,
               echo: Callable[[str], None] | None = print) -> pd.DataFrame:
    """Run a checked :class:`RunConfig` (what :func:`run` and the command line make); return the table."""
    from . import store
    from .errors import ResultsError
    from .progress import quiet as quiet_progress
    from .runner import Runner

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


def make_config(config: RunConfig | str | Path | None = None, given: dict[str, Any] | None = None, *,
                quiet: bool | None = None) -> RunConfig:
    """The :class:`RunConfig` of ``hashbench.run(config=config, **given)``, checked as the command line's is.

    The keywords become a document in an experiment file's layout (None: not given), laid over
    ``config`` (a file, a RunConfig, or the defaults) and checked as a whole
    (:func:`hashbench.experiment.resolve_experiment`). A RunConfig given alone is run as it is.
    """
    from .experiment import load_experiment, read_experiment_file, resolve_experiment
    from .options import to_run_config

    given = dict(given or {})
    overrides = overrides_from_keywords(given)
    if config is not None and not isinstance(config, (RunConfig, str, Path)):
        raise ConfigError(f"config: expected a hashbench.runner.RunConfig, an experiment file or None, "
                          f"got {type(config).__name__}")
    if isinstance(config, RunConfig) and not overrides:
        cfg = dataclasses.replace(config)
    elif isinstance(config, RunConfig):
        doc = document_from_config(config)
        kept = {k: v for k, v in (config.experiment or {}).items() if k in ("description", "plugins")}
        resolved = resolve_experiment({**kept, **doc}, overrides, source="hashbench.run")
        resolved["source"] = (config.experiment or {}).get("source")
        cfg = to_run_config(resolved)
        cfg.progress, cfg.command = config.progress, config.command
    else:
        cfg = load_experiment(config, overrides) if config is not None else \
            to_run_config({**resolve_experiment({}, overrides, source="hashbench.run"), "source": None})
    if quiet is not None:
        cfg.progress = not quiet
    if cfg.command is None:
        cfg.command = _call_text(given, quiet)
    return cfg


def _doc_options() -> str:
    """The Args lines of :func:`run`, one per option (made from :data:`hashbench.options.OPTIONS`)."""
    lines = []
    for opt in OPTIONS:
        flag = f" ({opt.flag[-1]})" if opt.flag else ""
        lines.append(f"        {opt.name}{flag}: {opt.help}.")
    return "\n".join(lines)


run.__doc__ = (run.__doc__ or "").replace("{options}", _doc_options())
run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  (help() and IDEs show every option)
    [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for n in _POSITIONAL]
    + [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=None)
       for o in OPTIONS if o.name not in _POSITIONAL]
    + [inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None),
       inspect.Parameter("plugins", inspect.Parameter.KEYWORD_ONLY, default=()),
       inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=None),
       inspect.Parameter("echo", inspect.Parameter.KEYWORD_ONLY, default=print)],
    return_annotation="pd.DataFrame")


def write_report(results: str | Path, out: str | Path, *, echo: Callable[[str], None] = print) -> Path:
    """Regenerate the report from the results store; returns its index (or the folder)."""
    from .reports import generate_reports

    paths = generate_reports(results, out)
    index = paths.get("index") if isinstance(paths, dict) else getattr(paths, "index", None)
    echo(f"report in {Path(out).resolve()}" + (f" (start at {index})" if index else ""))
    return Path(index) if index else Path(out).resolve()


# ------------------------------------------------------------------ helpers
def _call_text(given: dict[str, Any], quiet: bool | None) -> str:
    """How the run was asked for, recorded with every cell (as the command line records its command)."""
    args = {k: v for k, v in given.items() if v is not None}
    if quiet is not None:
        args["quiet"] = quiet
    return "hashbench.run(" + ", ".join(f"{k}={_plain(v)!r}" for k, v in args.items()) + ")"


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "tolist"):  # NumPy arrays and integers
        return value.tolist()
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
