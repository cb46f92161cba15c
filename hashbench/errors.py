"""Error types. Every error a user can cause names what is wrong and where."""

from __future__ import annotations


class HashbenchError(Exception):
    """Base class for every error hashbench raises on purpose."""


class ConfigError(HashbenchError, ValueError):
    """A bad argument: unknown name, bit length out of range, bad option."""


class DataError(HashbenchError, ValueError):
    """Bad input data: a missing or malformed file, NaN features, an undecodable image."""


class NotFittedError(HashbenchError, RuntimeError):
    """``encode`` was called before ``fit``."""


class PluginError(HashbenchError, ImportError):
    """A plugin failed to import, or two plugins claim the same name."""


class ResultsError(HashbenchError):
    """A results folder that cannot be read or trusted (older schema, corrupt cell)."""


class WeightsError(HashbenchError, FileNotFoundError):
    """Pretrained weights or word vectors are missing and cannot be downloaded."""
