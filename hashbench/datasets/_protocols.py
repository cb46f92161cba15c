"""Split helpers shared by the real datasets' protocols (the random one is ``base.random_split``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from .base import Split, random_split


def per_class_split(
    labels: np.ndarray,
    n_query_per_class: int,
    n_train_per_class: int,
    *,
    seed: int,
    protocol: str,
    class_names: list[str] | None = None,
) -> Split:
    """Queries and training items drawn class by class; the database is every non-query item.

    The protocol of DPSH-style CIFAR-10 and NUS-WIDE-TC21 benchmarks: for each
    class in turn, ``n_query_per_class`` queries are drawn at random among the
    items that have the class and are not drawn yet; then, from the database
    (all items but the queries), ``n_train_per_class`` training items per class
    the same way. For multi-label data an item drawn for one class is not drawn
    again for a later one, so the roles hold exactly ``L * n`` distinct items; the
    classes are visited in column order (the order is part of the protocol, and
    recorded through the seed and protocol name).
    """
    lab = np.asarray(labels)
    if lab.ndim == 1:
        n_classes = int(lab.max()) + 1 if lab.size else 0
        member = lambda c: lab == c  # noqa: E731
    else:
        n_classes = lab.shape[1]
        member = lambda c: lab[:, c].astype(bool)  # noqa: E731
    for name, value in (("n_query_per_class", n_query_per_class), ("n_train_per_class", n_train_per_class)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ConfigError(f"split: {name} must be a positive integer, got {value!r}")
    rng = np.random.default_rng(seed)
    names = class_names or [str(c) for c in range(n_classes)]

    def draw(allowed: np.ndarray, k: int, role: str) -> np.ndarray:
        taken = np.zeros(lab.shape[0], dtype=bool)
        for c in range(n_classes):
            pool = np.flatnonzero(member(c) & allowed & ~taken)
            if pool.size < k:
                raise DataError(
                    f"split ({protocol}): class {names[c]!r} has {pool.size} eligible items left for the "
                    f"{role} role, {k} needed"
                )
            taken[rng.choice(pool, size=k, replace=False)] = True
        return np.flatnonzero(taken)

    everything = np.ones(lab.shape[0], dtype=bool)
    query = draw(everything, n_query_per_class, "query")
    in_db = everything.copy()
    in_db[query] = False
    database = np.flatnonzero(in_db)
    train = draw(in_db, n_train_per_class, "train")
    return Split(query=query, database=database, train=train, protocol=protocol, seed=seed)


def check_count(dataset: str, name: str, value: Any, low: int = 1, *, optional: bool = False) -> int | None:
    """An integer option >= ``low`` (None allowed when ``optional``), else a ConfigError naming it."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{dataset} dataset: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_choice(dataset: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    value = str(value)
    if value not in choices:
        raise ConfigError(f"{dataset} dataset: {name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_unknown(dataset: str, unknown: dict[str, Any], known: list[str]) -> None:
    if unknown:
        raise ConfigError(
            f"{dataset} dataset: unknown option(s) {', '.join(sorted(unknown))}; known options: {', '.join(known)}"
        )


def as_bool(dataset: str, name: str, value: Any) -> bool:
    """Booleans from the CLI's ``-D key=value`` arrive parsed from JSON; accept strings too."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.lower() in ("true", "yes", "1")
    raise ConfigError(f"{dataset} dataset: {name} must be true or false, got {value!r}")


def sized_random_split(
    dataset: str, n_items: int, n_query: int, n_database: int | None, n_train: int | None, *, seed: int,
    protocol: str,
) -> Split:
    """``base.random_split``, with an error that names the options when the kept items are too few."""
    need = n_query + (n_database if n_database is not None else 1)
    if n_items < need:
        raise DataError(
            f"{dataset} ({protocol}): {n_items} items are kept, too few for n_query={n_query}"
            + (f" and n_database={n_database}" if n_database is not None else " and a database")
            + "; pass smaller sizes (-D n_query=N, -D n_database=N or -D n_database=null for all the rest)"
        )
    if n_train is not None and n_train > (n_database if n_database is not None else n_items - n_query):
        raise DataError(f"{dataset} ({protocol}): n_train={n_train} exceeds the database size; pass -D n_train=N")
    return random_split(n_items, n_query, seed=seed, protocol=protocol, n_database=n_database, n_train=n_train)
