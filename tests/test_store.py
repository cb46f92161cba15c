"""The results store: atomic cells, verification, what counts as finished."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hashbench import ResultsError, load_results
from hashbench.store import CellState, cell_path, iter_cells, read_cell, write_cell


def _write(root, method="itq", bits=8, seed=0, key="k1", metrics=None, rng=None):
    rng = rng or np.random.default_rng(seed)
    path = cell_path(root, "toy", method, bits, seed)
    record = {
        "cell_key": key,
        "dataset": {"key": "toy", "name": "toy"},
        "method": {"name": method, "display_name": method.upper(), "deep": False},
        "bits": bits,
        "seed": seed,
        "metrics": metrics or {"mAP@all": 0.5, "chance": 0.25},
        "timings": {"fit_s": 1.0},
        "evaluation": {"ties": "index", "empty": "zero"},
    }
    q = rng.integers(0, 2, size=(5, bits), dtype=np.uint8)
    d = rng.integers(0, 2, size=(9, bits), dtype=np.uint8)
    cell = write_cell(path, record, query_codes=q, database_codes=d,
                      curves={"pr_precision": np.linspace(1, 0, 4)}, per_query={"AP@all": rng.random(5)})
    return cell, q, d


def test_written_cell_reads_back_verified(tmp_path):
    cell, q, d = _write(tmp_path)
    state, reason, read = read_cell(cell.path, "k1")
    assert state == CellState.DONE, reason
    q2, d2 = read.load_codes()
    np.testing.assert_array_equal(q2, q)
    np.testing.assert_array_equal(d2, d)
    assert read.load_per_query()["AP@all"].shape == (5,)
    # codes are stored packed: 8 bits per byte
    assert np.load(cell.path / "query_codes.npy").shape == (5, 1)
    assert not [p for p in cell.path.parent.iterdir() if p.name.startswith(".")]


def test_other_configuration_is_stale_not_done(tmp_path):
    cell, _, _ = _write(tmp_path, key="k1")
    state, reason, _ = read_cell(cell.path, "another-key")
    assert state == CellState.STALE and "different configuration" in reason


@pytest.mark.parametrize("damage", ["truncate_json", "delete_json", "flip_codes", "delete_codes"])
def test_damaged_cells_are_not_trusted(tmp_path, damage):
    cell, _, _ = _write(tmp_path)
    meta = cell.path / "cell.json"
    if damage == "truncate_json":
        meta.write_text(meta.read_text()[:40])
    elif damage == "delete_json":
        meta.unlink()
    elif damage == "flip_codes":
        raw = bytearray((cell.path / "query_codes.npy").read_bytes())
        raw[-1] ^= 0xFF
        (cell.path / "query_codes.npy").write_bytes(bytes(raw))
    else:
        (cell.path / "database_codes.npy").unlink()
    state, reason, _ = read_cell(cell.path, "k1")
    assert state == CellState.INVALID
    assert str(cell.path) in reason


def test_older_schema_is_named(tmp_path):
    cell, _, _ = _write(tmp_path)
    meta = cell.path / "cell.json"
    rec = json.loads(meta.read_text())
    rec["schema_version"] = 0
    meta.write_text(json.dumps(rec))
    state, reason, _ = read_cell(cell.path, "k1")
    assert state == CellState.OLD
    assert str(meta) in reason and "schema 0" in reason
    with pytest.raises(ResultsError, match="schema 0"):
        list(iter_cells(tmp_path, errors="raise"))


def test_failed_write_leaves_no_cell_and_keeps_the_old_one(tmp_path, monkeypatch):
    cell, q, _ = _write(tmp_path, key="old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        _write(tmp_path, key="new")
    state, _, kept = read_cell(cell.path, "old")
    assert state == CellState.DONE
    np.testing.assert_array_equal(kept.load_codes()[0], q)
    assert not [p for p in cell.path.parent.iterdir() if p.name.startswith(".")]


def test_load_results_one_row_per_cell_and_skips_corrupt(tmp_path):
    for bits in (8, 16):
        for seed in (0, 1):
            _write(tmp_path, bits=bits, seed=seed, metrics={"mAP@all": bits / 100 + seed, "chance": 0.2})
    bad, _, _ = _write(tmp_path, method="lsh")
    (bad.path / "cell.json").write_text("{")
    with pytest.warns(UserWarning, match="unreadable"):
        frame = load_results(tmp_path)
    assert len(frame) == 4
    assert set(frame["method"]) == {"itq"}
    row = frame[(frame.bits == 16) & (frame.seed == 1)].iloc[0]
    assert row["mAP@all"] == pytest.approx(1.16)
    assert row["display_name"] == "ITQ" and row["ties"] == "index"


def test_load_results_missing_folder(tmp_path):
    with pytest.raises(ResultsError, match="no such folder"):
        load_results(tmp_path / "nope")
