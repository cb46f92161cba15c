"""Search spaces as data, and the trials drawn from them.

A method declares ``search_space = {param: [candidates]}`` (a grid; a plugin
does the same). :func:`check_search_space` validates it against the method's
constructor; :func:`plan_trials` draws the trials: every point of the grid in
a seeded random order, cut at the budget. So a grid no larger than the budget
is searched exhaustively, and a larger one by seeded random search without
replacement; the order is a pure function of (grid, seed), so an interrupted
search resumed later runs exactly the trials an uninterrupted one would have.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..hasher import Hasher

#: never tuned: the code length is what a run compares across, the seed is what repeats measure
UNTUNABLE = ("bits", "seed")


def check_search_space(cls: type[Hasher], space: Any = None, *, who: str | None = None) -> dict[str, list[Any]]:
    """The method's search space (``space`` when given, else ``cls.search_space``), validated.

    Raises :class:`ConfigError` naming an unknown parameter and the accepted ones,
    a parameter that may not be tuned, or a candidate list that is empty or not JSON.
    """
    who = who or cls.name or cls.__name__
    space = dict(cls.search_space if space is None else space)
    accepted = [p for p in cls._param_names() if p not in UNTUNABLE]
    unknown = sorted(p for p in space if p not in accepted and p not in UNTUNABLE)
    if unknown:
        raise ConfigError(
            f"{who}: search space names unknown parameter(s) {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(accepted) or '(none)'}"
        )
    fixed = sorted(p for p in space if p in UNTUNABLE)
    if fixed:
        raise ConfigError(f"{who}: search space may not tune {', '.join(fixed)} (set by the run, never selected)")
    out: dict[str, list[Any]] = {}
    for name in sorted(space):
        values = space[name]
        if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"{who}: search space of {name!r} must be a non-empty list of candidates, got {values!r}")
        try:
            json.dumps(list(values))
        except (TypeError, ValueError):
            raise ConfigError(f"{who}: search space of {name!r} holds a value that cannot be recorded as JSON") from None
        if len({json.dumps(v) for v in values}) != len(values):
            raise ConfigError(f"{who}: search space of {name!r} lists a candidate twice: {list(values)!r}")
        out[name] = list(values)
    return out


def grid_size(space: dict[str, list[Any]]) -> int:
    return math.prod(len(v) for v in space.values()) if space else 1


def plan_trials(space: dict[str, list[Any]], n_trials: int, seed: int) -> list[dict[str, Any]]:
    """The trials to run: ``min(n_trials, grid size)`` grid points in a seeded random order.

    An empty space is one trial with the method's defaults.
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
        raise ConfigError(f"selection: the number of trials must be a positive integer, got {n_trials!r}")
    names = sorted(space)
    points = [dict(zip(names, combo)) for combo in itertools.product(*(space[n] for n in names))]
    order = np.random.default_rng([int(seed), 0x7A1A15]).permutation(len(points))
    return [points[i] for i in order[: int(n_trials)]]
