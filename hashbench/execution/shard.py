"""Deterministic shards of a task list, for array jobs (Slurm, PBS, SGE)."""

from __future__ import annotations

from typing import Sequence, TypeVar

from ..errors import ConfigError

T = TypeVar("T")


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n), with 0 <= i < n (i counts from 0, as ``$SLURM_ARRAY_TASK_ID``
    does with ``--array=0-(n-1)``)."""
    head, sep, tail = str(text).partition("/")
    try:
        i, n = int(head), int(tail)
    except ValueError:
        raise ConfigError(f"shard: expected i/n with integers 0 <= i < n (e.g. 0/4), got {text!r}") from None
    if not sep:
        raise ConfigError(f"shard: expected i/n (e.g. 0/4), got {text!r}")
    check_shard(i, n)
    return i, n


def check_shard(i: int, n: int) -> None:
    if n < 1:
        raise ConfigError(f"shard: the number of shards must be at least 1, got {n}")
    if not 0 <= i < n:
        raise ConfigError(f"shard: the index counts from 0 and must be below {n}, got {i}")


def select_shard(tasks: Sequence[T], index: int, count: int) -> list[T]:
    """Shard ``index`` of ``count``: every ``count``-th task starting at ``index``.

    The shards partition the list (each task lands in exactly one) whatever the
    grid, and their sizes differ by at most one; interleaving (rather than cutting
    the list in blocks) spreads each method's cells, slow deep methods included,
    over all shards. Every shard must see the same task list: the same command.
    """
    check_shard(index, count)
    return list(tasks[index::count])
