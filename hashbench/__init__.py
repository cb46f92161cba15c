"""hashbench: a benchmark suite for unsupervised image hashing.

The data flows one way: dataset -> features -> ``Hasher.fit``/``encode`` ->
codes -> evaluator -> results store -> reports.

>>> import hashbench
>>> hasher = hashbench.create("itq", bits=32, seed=0)      # doctest: +SKIP
>>> codes = hasher.fit(train_features).encode(features)    # doctest: +SKIP
>>> table = hashbench.run(methods=["itq", "lsh"], bits=[16, 32])   # a whole grid  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from .errors import (
    ConfigError,
    DataError,
    HashbenchError,
    NotFittedError,
    PluginError,
    ResultsError,
    WeightsError,
)
from ._version import __version__
from .api import run  # light: torch and the datasets load when a run starts
from .hasher import Hasher
from .registry import available_methods, create, get_method, load_plugin_file, register_method


def load_results(path: str = "results/", **kwargs: Any):
    """Every finished cell under ``path`` as one pandas DataFrame (one row per cell)."""
    from .store import load_results as _load

    return _load(path, **kwargs)


__all__ = [
    "ConfigError",
    "DataError",
    "HashbenchError",
    "Hasher",
    "NotFittedError",
    "PluginError",
    "ResultsError",
    "WeightsError",
    "__version__",
    "available_methods",
    "create",
    "get_method",
    "load_plugin_file",
    "load_results",
    "register_method",
    "run",
]
