"""Reading the publishers' text files, and compact per-item tag lists.

Every reader streams (line by line, or fixed-size byte blocks for the big 0/1
matrices) and every error names the file and, for a malformed line, the line
number, so that a user can open the file at the right place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload

import numpy as np

from ..errors import DataError

#: bytes read per block by :func:`iter_binary_rows` (16 MiB)
BLOCK_BYTES = 1 << 24

_ZERO, _ONE = ord("0"), ord("1")
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[ord(" "), ord("\t"), ord("\r"), ord("\n")]] = True


def require_file(path: Path, what: str = "file") -> Path:
    """``path`` if it is a file, else a DataError that names it."""
    if not path.is_file():
        hint = " (it is a folder)" if path.is_dir() else ""
        raise DataError(f"{path}: {what} not found{hint}")
    return path


def require_dir(path: Path, what: str = "folder") -> Path:
    if not path.is_dir():
        raise DataError(f"{path}: {what} not found")
    return path


def decode(raw: bytes) -> str:
    """Text of a metadata file: UTF-8, else Latin-1 (old Flickr dumps mix both; Latin-1 never fails)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def iter_lines(path: Path, what: str = "file") -> Iterator[tuple[int, str]]:
    """(line number from 1, line without its end-of-line) for each line of a text file, streamed."""
    require_file(path, what)
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            yield number, decode(raw).rstrip("\r\n")


def read_word_list(path: Path, what: str = "file") -> list[str]:
    """One entry per non-empty line (TagList1k.txt, Concepts81.txt), stripped."""
    return [line.strip() for _, line in iter_lines(path, what) if line.strip()]


def iter_binary_rows(
    path: Path, width: int, *, block_bytes: int = BLOCK_BYTES, what: str = "0/1 matrix"
) -> Iterator[tuple[int, np.ndarray]]:
    """Stream a text matrix of 0/1 values, ``width`` per line, as uint8 blocks.

    Yields ``(first_row, block)`` with ``block`` of shape (rows, width). Values
    are single digits separated by any whitespace (NUS-WIDE's files use tabs or
    spaces, some with a trailing separator or CRLF ends). Blank lines are
    malformed (except at the very end of the file). The parse is vectorised over each byte block: a mask of digit
    bytes, their count per line (a cumulative sum read at the newlines), and a
    reshape; a line with another width, a value other than 0/1 or a stray
    character raises a DataError naming the file and the line.
    """
    require_file(path, what)
    first_row = 0
    carry = b""
    with open(path, "rb") as f:
        chunk = f.read(block_bytes)
        while chunk:
            following = f.read(block_bytes)
            data = carry + chunk
            if not following:
                # the last block: blank lines at the very end are harmless; a last
                # line without an end-of-line is complete
                body, carry = (data.rstrip() + b"\n" if data.strip() else b""), b""
            else:
                cut = data.rfind(b"\n") + 1
                body, carry = data[:cut], data[cut:]
            if body:
                block = _parse_block(body, width, path, first_row)
                yield first_row, block
                first_row += block.shape[0]
            chunk = following


def _parse_block(body: bytes, width: int, path: Path, first_row: int) -> np.ndarray:
    buf = np.frombuffer(body, dtype=np.uint8)
    fast = _parse_regular(buf, width)
    return fast if fast is not None else _parse_general(buf, width, path, first_row)


def _parse_regular(buf: np.ndarray, width: int) -> np.ndarray | None:
    """Fast path: every line has the byte layout of the first one (the publishers' files do).

    The block is then a (rows, line length) byte matrix whose digit columns are
    those of the first line; one gather reads all values. None when the layout
    varies or a value is not 0/1: the general parse then finds and names the line.
    """
    first_end = int(np.argmax(buf == ord("\n")))
    length = first_end + 1
    if buf.size % length:
        return None
    first = buf[:length]
    digit_cols = np.flatnonzero((first == _ZERO) | (first == _ONE))
    if digit_cols.size != width:
        return None
    grid = buf.reshape(-1, length)
    start, last = int(digit_cols[0]), int(digit_cols[-1])
    step = (last - start) // (width - 1) if width > 1 else 1
    if width > 1 and not np.array_equal(digit_cols, start + step * np.arange(width)):
        return None  # values not evenly spaced: left to the general parse
    # strided views, no copies: the columns between values, before the first and after the last
    fixed = [np.s_[:, :start], np.s_[:, last + 1 :]]
    fixed += [np.s_[:, start + o : last : step] for o in range(1, step)]
    for cols in fixed:
        if not (grid[cols] == first[cols[1]]).all():
            return None
    values = grid[:, start : last + 1 : step] - np.uint8(_ZERO)  # wraps below '0': > 1 flags non 0/1
    if (values > 1).any():
        return None
    return values


def _parse_general(buf: np.ndarray, width: int, path: Path, first_row: int) -> np.ndarray:
    digit = (buf == _ZERO) | (buf == _ONE)
    newlines = np.flatnonzero(buf == ord("\n"))

    def line_of(pos: int) -> int:
        return first_row + int(np.searchsorted(newlines, pos)) + 1

    bad = ~(digit | _WHITESPACE[buf])
    if bad.any():
        pos = int(np.argmax(bad))
        raise DataError(
            f"{path}: line {line_of(pos)}: unexpected character {chr(buf[pos])!r} (expected 0/1 values)"
        )
    glued = digit[:-1] & digit[1:]
    if glued.any():
        pos = int(np.argmax(glued))
        raise DataError(f"{path}: line {line_of(pos)}: a value with several digits (expected 0 or 1)")
    counts = np.diff(np.concatenate([[0], np.cumsum(digit, dtype=np.int64)[newlines]]))
    wrong = counts != width
    if wrong.any():
        k = int(np.argmax(wrong))
        raise DataError(f"{path}: line {first_row + k + 1}: {int(counts[k])} values, expected {width}")
    return (buf[digit] - np.uint8(_ZERO)).reshape(-1, width)


def read_binary_column(path: Path, *, what: str = "0/1 label file") -> np.ndarray:
    """A file of one 0/1 value per line (NUS-WIDE's Labels_<concept>.txt) as a bool vector."""
    parts = [block[:, 0].astype(bool) for _, block in iter_binary_rows(path, 1, what=what)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def normalise_tag(tag: str) -> str:
    """Tags are compared lower-cased and stripped (MIRFLICKR's clean tags already are)."""
    return tag.strip().lower()


def unique_in_order(items: Iterable[str]) -> list[str]:
    """Drop empty strings and repeats, keeping first occurrences (a tag counts once per image)."""
    seen: set[str] = set()
    return [t for t in items if t and not (t in seen or seen.add(t))]


class TagLists(Sequence):
    """Per-item tag lists stored compactly (CSR: one int32 per tag occurrence).

    Behaves like ``list[list[str]]`` (``len``, indexing, iteration return plain
    lists of strings), so methods receive ordinary lists, while a dataset of
    hundreds of thousands of items keeps only three arrays in memory.
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, vocabulary: Sequence[str]) -> None:
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int32)
        self.vocabulary = list(vocabulary)
        if self.indptr.ndim != 1 or self.indptr[0] != 0 or self.indptr[-1] != self.indices.size:
            raise ValueError("TagLists: indptr does not match indices")

    @classmethod
    def from_lists(cls, lists: Iterable[Sequence[str]]) -> "TagLists":
        vocab: dict[str, int] = {}
        indptr = [0]
        indices: list[int] = []
        for tags in lists:
            indices.extend(vocab.setdefault(t, len(vocab)) for t in tags)
            indptr.append(len(indices))
        return cls(np.array(indptr), np.array(indices, dtype=np.int32), list(vocab))

    def __len__(self) -> int:
        return self.indptr.size - 1

    @overload
    def __getitem__(self, i: int) -> list[str]: ...
    @overload
    def __getitem__(self, i: slice) -> list[list[str]]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"tag list index {i} out of range")
        vocab = self.vocabulary
        return [vocab[k] for k in self.indices[self.indptr[i] : self.indptr[i + 1]]]

    def __iter__(self) -> Iterator[list[str]]:
        for i in range(len(self)):
            yield self[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (TagLists, list)):
            return len(self) == len(other) and all(a == list(b) for a, b in zip(self, other))
        return NotImplemented

    def counts(self) -> np.ndarray:
        """Number of tags of each item."""
        return np.diff(self.indptr)

    def subset(self, rows: np.ndarray) -> "TagLists":
        """The tag lists of ``rows`` (in that order), sharing the vocabulary."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = self.counts()[rows]
        indptr = np.concatenate([[0], np.cumsum(counts)])
        # gather every selected item's slice of ``indices`` in one fancy index
        starts = np.repeat(self.indptr[rows], counts)
        offsets = np.arange(indptr[-1]) - np.repeat(indptr[:-1], counts)
        return TagLists(indptr, self.indices[starts + offsets], self.vocabulary)

    def used_vocabulary(self) -> int:
        return int(np.unique(self.indices).size)
