"""The defaults every method runs with come from the shipped selection record.

``selected_defaults.json`` (``hashbench_methods/selected_defaults.json`` once
installed; written by ``python benchmarks/select_defaults.py``, format in
:mod:`hashbench.selection.record`) says for every built-in method how its
defaults were chosen: ``selected`` (one selection run, one budget for every
method), ``nothing to select`` (an empty search space) or ``inherited`` (an
end-to-end twin takes its frozen twin's values). Each method class carries the
decorator :func:`record_defaults`, which

* replaces the constructor defaults of the parameters the record selected (or
  inherited) with the record's values: the literal defaults in a method's
  signature are the hand-set values, used only where the record selects
  nothing; ``inspect.signature`` and ``get_params`` show what a run uses;
* sets ``defaults_chosen_by`` (status, values, one sentence), which every
  result records and the report's hyper-parameter table shows.

So a new record changes what ``run`` uses without editing a method file.
"""

from __future__ import annotations

import functools
import inspect
import json
from functools import lru_cache
from importlib.resources import files
from typing import Any, Callable, TypeVar

from hashbench.selection.record import HAND_SET, INHERITED, SELECTED, check_record, describe

RECORD_NAME = "selected_defaults.json"
WHERE = f"hashbench_methods/{RECORD_NAME}"
C = TypeVar("C", bound=type)


@lru_cache(maxsize=1)
def shipped_record() -> dict[str, Any]:
    return check_record(json.loads(files("hashbench_methods").joinpath(RECORD_NAME).read_text()), WHERE)


def recorded_values(method: str) -> dict[str, Any]:
    """The parameter values the shipped record gives ``method`` (selected or inherited); {} otherwise."""
    entry = shipped_record()["methods"].get(method) or {"status": HAND_SET}
    return dict(entry["defaults"]) if entry["status"] in (SELECTED, INHERITED) else {}


def chosen_by(method: str) -> dict[str, Any]:
    """How ``method``'s defaults were chosen: status, values and one sentence (``Hasher.defaults_chosen_by``)."""
    return describe(shipped_record(), method, WHERE)


def record_defaults(method: str) -> Callable[[C], C]:
    """Class decorator: ``method``'s constructor defaults and ``defaults_chosen_by`` from the shipped record."""

    def decorate(cls: C) -> C:
        cls.defaults_chosen_by = chosen_by(method)  # type: ignore[attr-defined]
        values = recorded_values(method)
        if not values:
            return cls
        base = cls.__init__  # type: ignore[misc]
        sig = inspect.signature(base)
        unknown = sorted(set(values) - set(sig.parameters))
        if unknown:
            raise RuntimeError(f"{WHERE}: {method}'s recorded defaults name {unknown}, which its constructor does "
                               "not take; regenerate the record (benchmarks/select_defaults.py)")
        new_sig = sig.replace(parameters=[p.replace(default=values[p.name]) if p.name in values else p
                                          for p in sig.parameters.values()])

        @functools.wraps(base)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            bound = new_sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            base(*bound.args, **bound.kwargs)

        __init__.__signature__ = new_sig  # type: ignore[attr-defined]
        cls.__init__ = __init__  # type: ignore[misc]
        return cls

    return decorate
