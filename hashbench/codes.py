"""Binary codes kept packed: 8 bits a byte, as the results store writes them.

A database of ten million 64-bit codes is 640 MB as a (n, b) uint8 array of 0/1 but
80 MB packed. :class:`PackedBits` wraps ``np.packbits(x, axis=1)`` rows (a plain
array or a memory-mapped ``.npy``) with their width; :func:`encode_packed` encodes
features chunk by chunk and packs each chunk, so the unpacked codes of a large
database never exist at once. The store writes a :class:`PackedBits` as it is, and
the evaluator reads one block by block (``hashbench.evaluation``): codes and 0/1
label matrices alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .errors import DataError

#: rows per encode call in :func:`encode_packed`; databases up to this size are encoded in
#: one call, exactly as before chunking existed
ENCODE_CHUNK = 1 << 18


@dataclass(frozen=True)
class PackedBits:
    """(n, width) 0/1 rows stored as ``np.packbits(rows, axis=1)``: (n, ceil(width / 8)) uint8."""

    packed: np.ndarray
    width: int

    def __post_init__(self) -> None:
        p = self.packed
        if not isinstance(p, np.ndarray) or p.dtype != np.uint8 or p.ndim != 2:
            raise DataError(f"packed bits must be a 2-D uint8 array (np.packbits rows); got "
                            f"{getattr(p, 'dtype', type(p).__name__)} {getattr(p, 'shape', '')}")
        if self.width < 1 or p.shape[1] != (self.width + 7) // 8:
            raise DataError(f"packed bits: {p.shape[1]} bytes per row cannot hold {self.width} bits "
                            f"({(self.width + 7) // 8} needed)")

    @classmethod
    def pack(cls, rows: Any) -> "PackedBits":
        rows = np.asarray(rows)
        if rows.ndim != 2:
            raise DataError(f"expected an (n, b) array of 0/1 to pack; got shape {rows.shape}")
        return cls(np.packbits(rows.astype(np.uint8, copy=False), axis=1), rows.shape[1])

    @classmethod
    def load(cls, path: str | Path, width: int, *, mmap: bool = True) -> "PackedBits":
        """A store ``.npy`` of packed rows, memory-mapped by default (read as it is used)."""
        return cls(np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False), width)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.packed.shape[0], self.width)

    ndim = 2

    def __len__(self) -> int:
        return self.packed.shape[0]

    def blocks(self, rows: int = 1 << 16) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, packed block) in order; a memory-mapped file is read block by block."""
        for s in range(0, len(self), rows):
            yield s, np.asarray(self.packed[s:s + rows])

    def unpack(self) -> np.ndarray:
        """The (n, width) uint8 0/1 array (the whole of it: for small sets)."""
        return np.unpackbits(np.asarray(self.packed), axis=1, count=self.width)


def encode_packed(encode: Callable[[np.ndarray], np.ndarray], features: np.ndarray,
                  chunk: int = ENCODE_CHUNK) -> PackedBits:
    """``encode`` over ``features`` in row chunks, each chunk packed as soon as it is encoded.

    Memory: one chunk's features and codes plus the packed result (b/8 bytes per row).
    """
    n = features.shape[0]
    if n == 0:
        raise DataError("no items to encode")
    parts: list[np.ndarray] = []
    width = None
    for s in range(0, n, chunk):
        codes = np.asarray(encode(features[s:s + chunk]))
        if codes.ndim != 2 or codes.shape[0] != min(chunk, n - s):
            raise DataError(f"encode returned shape {codes.shape} for {min(chunk, n - s)} items")
        if not (codes.dtype == np.bool_ or np.isin(codes, (0, 1)).all()):
            raise DataError(f"encode returned values other than 0/1 for rows {s}..{s + len(codes) - 1}")
        if width is None:
            width = codes.shape[1]
        elif codes.shape[1] != width:
            raise DataError(f"encode returned {codes.shape[1]} bits for rows {s}.., {width} before")
        parts.append(np.packbits(codes.astype(np.uint8, copy=False), axis=1))
    packed = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return PackedBits(packed, int(width))  # type: ignore[arg-type]
