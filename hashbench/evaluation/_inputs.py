"""Validation of codes and labels, and packing into 64-bit words.

Validation and packing go in row blocks so that no temporary grows with the database
beyond one block (the packed arrays themselves are b/8 and L/8 bytes per item).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hashbench.codes import PackedBits
from hashbench.errors import DataError

_BLOCK = 1 << 16  # rows per validation/packing block


@dataclass
class Packed:
    """Codes and labels packed for the kernels.

    codes: (n, wc) uint64, bit j of the code in word j // 64 (zero padding is identical
    for all items, so popcount(x ^ y) is the Hamming distance).
    labels: (n, wl) uint64: a bitmask of labels (multi-label), or (n, 1) class ids.
    """

    q_codes: np.ndarray
    db_codes: np.ndarray
    q_labels: np.ndarray
    db_labels: np.ndarray
    bits: int
    single: bool


def _as_array(x: object, what: str) -> np.ndarray:
    """np.asarray that accepts torch tensors (on any device) and names the input on failure."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is a data error
        raise DataError(f"{what}: cannot be read as an array ({exc})") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise DataError(f"{what}: must be numeric; got dtype {a.dtype}")
    return a


def _pack01(a: np.ndarray, what: str) -> np.ndarray:
    """Check that a 2-D array holds only 0/1 and pack each row into uint64 words."""
    if isinstance(a, PackedBits):
        return _repack(a, what)
    n, width = a.shape
    words = (width + 63) // 64
    out = np.zeros((n, words * 8), dtype=np.uint8)
    for s in range(0, n, _BLOCK):
        blk = a[s:s + _BLOCK]
        if blk.dtype != np.bool_:
            if np.issubdtype(blk.dtype, np.floating) and np.isnan(blk).any():
                raise DataError(f"{what}: contains NaN")
            bad = (blk != 0) & (blk != 1)
            if bad.any():
                r, c = np.argwhere(bad)[0]
                hint = " (for +-1 codes pass (codes > 0))" if blk[r, c] == -1 else ""
                raise DataError(
                    f"{what}: values must be 0 or 1; found {blk[r, c]!r} at row {s + r}, "
                    f"column {c}{hint}")
            blk = blk.astype(np.uint8, copy=False)
        packed = np.packbits(blk, axis=1, bitorder="little")
        out[s:s + len(blk), :packed.shape[1]] = packed
    return out.view(np.uint64)


# bit reversal within a byte: np.packbits' default (big) bit order -> the kernels' little order
_REVERSE = np.array([int(f"{i:08b}"[::-1], 2) for i in range(256)], dtype=np.uint8)


def _repack(p: PackedBits, what: str) -> np.ndarray:
    """np.packbits rows (a PackedBits, maybe memory-mapped) -> uint64 words, block by block.

    Padding bits past the width are cleared (they are zero in np.packbits output, but a
    file could say otherwise), so popcounts stay exact.
    """
    n, nbytes = p.packed.shape
    words = (p.width + 63) // 64
    out = np.zeros((n, words * 8), dtype=np.uint8)
    tail = p.width % 8
    for s, blk in p.blocks(_BLOCK):
        blk = _REVERSE[blk]
        if tail:
            blk[:, -1] &= np.uint8((1 << tail) - 1)
        out[s:s + len(blk), :nbytes] = blk
    return out.view(np.uint64)


def _check_codes(x: object, what: str) -> np.ndarray:
    """Validate an (n, b) 0/1 code matrix."""
    if isinstance(x, PackedBits):
        if len(x) == 0:
            raise DataError(f"{what}: is empty (no items)")
        return x  # type: ignore[return-value]
    a = _as_array(x, what)
    if a.ndim != 2:
        raise DataError(f"{what}: expected an (n, b) array of 0/1 bits; got shape {a.shape}")
    if a.shape[0] == 0:
        raise DataError(f"{what}: is empty (no items)")
    if a.shape[1] == 0:
        raise DataError(f"{what}: has zero bits")
    return a


def _class_ids(a: np.ndarray, what: str) -> np.ndarray:
    """Validate a 1-D integer class vector."""
    if np.issubdtype(a.dtype, np.floating):
        if np.isnan(a).any():
            raise DataError(f"{what}: contains NaN")
        if (a != np.round(a)).any():
            raise DataError(f"{what}: single-label class ids must be integers")
    return a.astype(np.int64)


def pack_inputs(query_codes: object, db_codes: object, query_labels: object,
                db_labels: object) -> Packed:
    """Validate the four inputs together and pack them (see :class:`Packed`)."""
    qc = _check_codes(query_codes, "query_codes")
    dc = _check_codes(db_codes, "db_codes")
    if qc.shape[1] != dc.shape[1]:
        raise DataError(f"query codes have {qc.shape[1]} bits but database codes {dc.shape[1]}")
    bits = qc.shape[1]
    if bits > 2048:
        raise DataError(f"codes of {bits} bits: at most 2048 are supported")
    ql = query_labels if isinstance(query_labels, PackedBits) else _as_array(query_labels, "query_labels")
    dl = db_labels if isinstance(db_labels, PackedBits) else _as_array(db_labels, "db_labels")
    if ql.ndim != dl.ndim or ql.ndim not in (1, 2):
        raise DataError(
            f"labels must both be (n, L) 0/1 matrices or both 1-D class vectors; got shapes "
            f"{ql.shape} and {dl.shape}")
    if ql.shape[0] != qc.shape[0]:
        raise DataError(f"query_labels has {ql.shape[0]} rows but query_codes {qc.shape[0]}")
    if dl.shape[0] != dc.shape[0]:
        raise DataError(f"db_labels has {dl.shape[0]} rows but db_codes {dc.shape[0]}")
    single = ql.ndim == 1
    if single:
        qlp = _class_ids(ql, "query_labels").reshape(-1, 1).view(np.uint64)
        dlp = _class_ids(dl, "db_labels").reshape(-1, 1).view(np.uint64)
    else:
        if ql.shape[1] != dl.shape[1]:
            raise DataError(f"query labels have {ql.shape[1]} columns but database labels "
                            f"{dl.shape[1]}")
        if ql.shape[1] == 0:
            raise DataError("labels have zero columns")
        qlp = _pack01(ql, "query_labels")
        dlp = _pack01(dl, "db_labels")
    return Packed(np.ascontiguousarray(_pack01(qc, "query_codes")),
                  np.ascontiguousarray(_pack01(dc, "db_codes")),
                  np.ascontiguousarray(qlp), np.ascontiguousarray(dlp), bits, single)


def unpack_bits(packed: np.ndarray, width: int) -> np.ndarray:
    """Inverse of the packing: (n, words) uint64 -> (n, width) uint8 0/1."""
    return np.unpackbits(packed.view(np.uint8), axis=1, bitorder="little")[:, :width]
