"""Input validation at the boundary (the scikit-learn way): check once, fail clearly."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ConfigError, DataError


def check_features(x: Any, *, name: str = "features", n_features: int | None = None) -> np.ndarray:
    """Return ``x`` as a C-contiguous 2-D float array, or raise :class:`DataError`.

    Rejects empty arrays, non-2-D input and NaN/inf values, naming the first bad row.
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise DataError(f"{name}: cannot be read as an array ({exc})") from exc
    if arr.ndim != 2:
        raise DataError(f"{name}: expected a 2-D (n_samples, n_features) array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{name}: empty array of shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise DataError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        kind = "NaN" if np.isnan(arr[bad_rows[0]]).any() else "inf"
        raise DataError(
            f"{name}: {bad_rows.size} row(s) contain NaN or inf values "
            f"(first: row {int(bad_rows[0])} has {kind})"
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise DataError(f"{name}: expected {n_features} features per row (as in fit), got {arr.shape[1]}")
    return np.ascontiguousarray(arr)


def check_bits(bits: Any, *, max_bits: int | None = None, method: str = "", reason: str = "") -> int:
    """Return ``bits`` as an int in ``[1, max_bits]`` or raise :class:`ConfigError`."""
    who = f"{method}: " if method else ""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise ConfigError(f"{who}bits must be a positive integer, got {bits!r}")
    bits = int(bits)
    if bits <= 0:
        raise ConfigError(f"{who}bits must be a positive integer, got {bits}")
    if max_bits is not None and bits > max_bits:
        why = f" ({reason})" if reason else ""
        raise ConfigError(f"{who}cannot produce {bits} bits: at most {max_bits}{why}")
    return bits


def check_codes(codes: Any, *, bits: int | None = None, name: str = "codes") -> np.ndarray:
    """Return binary codes as an (n, bits) uint8 array of 0/1, or raise :class:`DataError`."""
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise DataError(f"{name}: expected a 2-D (n, bits) array, got shape {arr.shape}")
    if bits is not None and arr.shape[1] != bits:
        raise DataError(f"{name}: expected {bits} bits per code, got {arr.shape[1]}")
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if not np.isin(arr, (0, 1)).all():
        raise DataError(f"{name}: codes must contain only 0 and 1")
    return arr.astype(np.uint8, copy=False)


def check_tags(tags: Any, n: int, *, name: str = "tags") -> list[list[str]]:
    """Return ``tags`` as a list of ``n`` lists of strings, or raise :class:`DataError`."""
    if tags is None:
        raise DataError(f"{name}: this method needs tags, but none were given")
    tags = list(tags)
    if len(tags) != n:
        raise DataError(f"{name}: {len(tags)} tag lists for {n} samples")
    out = []
    for i, t in enumerate(tags):
        if isinstance(t, str):
            raise DataError(f"{name}[{i}]: expected a list of tags, got the string {t!r}")
        out.append([str(s) for s in t])
    return out


def check_labels(labels: Any, n: int, *, name: str = "labels") -> np.ndarray:
    """Training labels for a supervised method: an (n, L) 0/1 matrix or an (n,) integer class vector."""
    if labels is None:
        raise DataError(f"{name}: this method is supervised and needs the training labels, but none were given")
    arr = np.asarray(labels)
    if arr.ndim not in (1, 2) or arr.shape[0] != n:
        raise DataError(f"{name}: expected {n} rows of labels, got an array of shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_):
        if not np.isfinite(arr).all() or not np.equal(np.round(arr), arr).all():
            raise DataError(f"{name}: labels must be integers (0/1 for multi-label), got non-integer values")
    if arr.ndim == 2 and not np.isin(arr, (0, 1)).all():
        raise DataError(f"{name}: a multi-label matrix must hold only 0 and 1")
    return arr.astype(np.uint8 if arr.ndim == 2 else np.int64)
