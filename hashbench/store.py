"""The results store: one folder per finished cell, written atomically.

Layout (readable by people and by pandas)::

    results/
      <dataset>/
        dataset.json                       # the dataset's fingerprint and statistics
        splits/<split_key>.json            # the item ids of each role, loadable
        experiments/<digest>.json          # each resolved experiment run here (``run --config`` reads it)
        <method>/<bits>bits/seed<k>/
          cell.json                        # config, metrics, timings, provenance, file checksums
          query_codes.npy                  # np.packbits(codes, axis=1), uint8
          database_codes.npy
          curves.npz                       # PR curves, precision@N (no pickle)
          per_query.npz                    # per-query AP arrays, for paired tests

A cell is written into a hidden temporary folder beside its final place and
renamed into place only when every file is complete, so a reader (or a run
killed with -9) never sees half a cell. Before trusting a cell, the store checks
its schema version and the SHA-256 of each file recorded in ``cell.json``.
Only JSON and ``.npy``/``.npz`` (with ``allow_pickle=False``) are ever read back.

Concurrency: each cell has a lock file under ``<dataset>/.locks/``, created
atomically (``O_CREAT | O_EXCL``) and kept alive by a heartbeat, so it also works
on network file systems shared by several hosts; the lock of a killed process is
taken over (at once on the same host, after the heartbeat stops elsewhere):
see :mod:`hashbench.lockfile`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .codes import PackedBits
from .errors import ResultsError
from .lockfile import LockFile
from .storage import atomic_write_json, file_digest

SCHEMA_VERSION = 1
CELL_FILE = "cell.json"


def cell_path(root: str | Path, dataset: str, method: str, bits: int, seed: int) -> Path:
    return Path(root) / dataset / method / f"{bits}bits" / f"seed{seed}"


def write_dataset_record(root: str | Path, dataset: str, *, split: dict[str, Any], split_key: str,
                         fingerprint: dict[str, Any], summary: str, statistics: dict[str, Any]) -> Path:
    """``<dataset>/splits/<split_key>.json`` (the item ids of each role, written once) and
    ``<dataset>/dataset.json`` (fingerprint, summary, statistics, which split); returns the split file."""
    root = Path(root)
    folder = root / dataset
    split_path = folder / "splits" / f"{split_key}.json"
    if not split_path.is_file():
        atomic_write_json(split_path, split)
    atomic_write_json(folder / "dataset.json", {
        "fingerprint": fingerprint,
        "summary": summary,
        "split_key": split_key,
        "split_file": str(split_path.relative_to(root)),
        "statistics": statistics,
    })
    return split_path


def write_experiment(root: str | Path, dataset: str, experiment: dict[str, Any]) -> Path:
    """The resolved experiment, rerunnable with ``run --config``, as ``<dataset>/experiments/<digest>.json``."""
    from .storage import json_digest

    path = Path(root) / dataset / "experiments" / f"{json_digest(experiment)}.json"
    if not path.is_file():
        atomic_write_json(path, experiment)
    return path


@dataclass
class Cell:
    """A finished, verified cell."""

    path: Path
    record: dict[str, Any]

    def load_packed_codes(self, *, mmap: bool = True) -> tuple[PackedBits, PackedBits]:
        """(query codes, database codes) packed, memory-mapped: for databases too large to unpack."""
        bits = int(self.record["bits"])
        return (PackedBits.load(self.path / "query_codes.npy", bits, mmap=mmap),
                PackedBits.load(self.path / "database_codes.npy", bits, mmap=mmap))

    def load_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """(query codes, database codes) as (n, bits) uint8 arrays of 0/1."""
        bits = int(self.record["bits"])
        out = []
        for name in ("query_codes.npy", "database_codes.npy"):
            packed = np.load(self.path / name, allow_pickle=False)
            out.append(np.unpackbits(packed, axis=1, count=bits))
        return out[0], out[1]

    def _npz(self, name: str) -> dict[str, np.ndarray]:
        with np.load(self.path / name, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    def load_curves(self) -> dict[str, np.ndarray]:
        return self._npz("curves.npz")

    def load_per_query(self) -> dict[str, np.ndarray]:
        return self._npz("per_query.npz")


class CellState:
    MISSING = "missing"
    DONE = "done"
    INVALID = "invalid"  # half-written or corrupt: recompute
    STALE = "stale"  # a valid cell of another configuration: never overwritten silently
    OLD = "old-schema"  # written by an older hashbench


def read_cell(path: Path, expected_key: str | None = None) -> tuple[str, str, Cell | None]:
    """Classify the cell folder at ``path``: (state, reason, cell)."""
    meta = path / CELL_FILE
    if not path.exists():
        return CellState.MISSING, "", None
    if not meta.is_file():
        return CellState.INVALID, f"{meta} is missing (half-written cell)", None
    try:
        record = json.loads(meta.read_text())
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except (ValueError, OSError) as exc:
        return CellState.INVALID, f"{meta} is unreadable ({exc})", None
    version = record.get("schema_version")
    if version != SCHEMA_VERSION:
        return (
            CellState.OLD,
            f"{meta} was written with results schema {version!r}; this hashbench reads schema {SCHEMA_VERSION}",
            None,
        )
    files = record.get("files")
    if not isinstance(files, dict) or not files:
        return CellState.INVALID, f"{meta} lists no files", None
    for name, digest in files.items():
        f = path / name
        if not f.is_file():
            return CellState.INVALID, f"{f} is missing", None
        if file_digest(f) != digest:
            return CellState.INVALID, f"{f} does not match its checksum in {meta}", None
    cell = Cell(path, record)
    if expected_key is not None and record.get("cell_key") != expected_key:
        return CellState.STALE, f"{meta} was computed with a different configuration", cell
    return CellState.DONE, "", cell


def write_cell(
    path: Path,
    record: dict[str, Any],
    *,
    query_codes: np.ndarray,
    database_codes: np.ndarray,
    curves: dict[str, np.ndarray],
    per_query: dict[str, np.ndarray],
) -> Cell:
    """Write a whole cell atomically (temporary folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        np.save(tmp / "query_codes.npy", _packed(query_codes))
        np.save(tmp / "database_codes.npy", _packed(database_codes))
        np.savez(tmp / "curves.npz", **{k: np.asarray(v) for k, v in curves.items()})
        np.savez(tmp / "per_query.npz", **{k: np.asarray(v) for k, v in per_query.items()})
        names = ["query_codes.npy", "database_codes.npy", "curves.npz", "per_query.npz"]
        record = {**record, "schema_version": SCHEMA_VERSION, "files": {n: file_digest(tmp / n) for n in names}}
        atomic_write_json(tmp / CELL_FILE, record)
        _fsync_dir(tmp)
        if path.exists():
            # Replace an invalid/stale/forced cell: move it aside first, then swap.
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Cell(path, record)


def _packed(codes: Any) -> np.ndarray:
    """np.packbits rows: a PackedBits (hashbench.codes) is written as it is, unpacked codes packed."""
    if isinstance(codes, PackedBits):
        return np.asarray(codes.packed)
    return np.packbits(np.asarray(codes, dtype=np.uint8), axis=1)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def cell_lock(path: Path, *, blocking: bool) -> Iterator[bool]:
    """Hold the lock of the cell at ``path``; yields False if not blocking and it is taken.

    An atomically created lock file with a heartbeat (:mod:`hashbench.lockfile`), so
    that it also works on network file systems shared by several hosts.
    """
    lock_dir = path.parents[2] / ".locks"  # <dataset>/.locks
    rel = "__".join(path.parts[-3:])
    # ".held", not ".lock": earlier versions left empty fcntl ".lock" files behind for good
    with LockFile(lock_dir / f"{rel}.held").hold(blocking=blocking) as locked:
        yield locked


def iter_cells(root: str | Path, *, errors: str = "warn") -> Iterator[Cell]:
    """Every verified cell under ``root``.

    ``errors``: what to do with a cell that cannot be trusted (corrupt or written
    by an older schema): ``"warn"`` skips it with a warning naming the file,
    ``"raise"`` raises :class:`ResultsError`.
    """
    root = Path(root)
    if not root.is_dir():
        raise ResultsError(f"results folder {root}: no such folder")
    for meta in sorted(root.glob(f"*/*/*bits/seed*/{CELL_FILE}")):
        state, reason, cell = read_cell(meta.parent)
        if state == CellState.DONE and cell is not None:
            yield cell
        elif errors == "raise":
            raise ResultsError(reason)
        else:
            warnings.warn(f"skipping results cell: {reason}", stacklevel=2)


def metric_columns(frame: Any) -> list[str]:
    """The metric columns of a :func:`load_results` frame, in a stable order."""
    return [c for c in frame.columns if c.startswith(("mAP@", "P@", "R@"))]


def load_results(root: str | Path = "results/", *, errors: str = "warn"):
    """Every finished cell under ``root`` as one pandas DataFrame, one row per cell.

    Columns: dataset, method, display_name, deep, bits, seed, one column per
    metric (``mAP@5000``, ``mAP@all``, ``P@r2``, ...), ``chance``, the timings
    (``fit_s``, ``encode_s``, ``evaluate_s``), the conventions (``ties``,
    ``empty``), ``weights`` and ``path``.
    """
    return results_frame(iter_cells(root, errors=errors))


def cell_row(cell: Cell) -> dict[str, Any]:
    """One cell as one row of a :func:`load_results` frame."""
    r = cell.record
    row: dict[str, Any] = {
        "dataset": r["dataset"]["key"],
        "method": r["method"]["name"],
        "display_name": r["method"].get("display_name", r["method"]["name"]),
        "deep": bool(r["method"].get("deep", False)),
        "bits": int(r["bits"]),
        "seed": int(r["seed"]),
    }
    row.update({k: float(v) for k, v in r.get("metrics", {}).items()})
    row.update({k: float(v) for k, v in r.get("timings", {}).items() if v is not None})
    ev = r.get("evaluation", {})
    row["ties"] = ev.get("ties")
    row["empty"] = ev.get("empty")
    row["weights"] = r.get("features", {}).get("backbone", {}).get("weights")
    row["path"] = str(cell.path)
    return row


def results_frame(cells: Iterable[Cell]):
    """These cells as a :func:`load_results` frame (same columns, same order)."""
    import pandas as pd

    frame = pd.DataFrame([cell_row(c) for c in cells])
    if not frame.empty:
        frame = frame.sort_values(["dataset", "deep", "method", "bits", "seed"], ignore_index=True)
    return frame
