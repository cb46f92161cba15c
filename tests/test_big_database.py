"""Large databases: packed codes and labels, chunked encoding, streamed evaluation.

Streaming must change nothing: every metric, curve and per-query value equals the
in-memory evaluation exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from hashbench import DataError
from hashbench.codes import PackedBits, encode_packed
from hashbench.evaluation import EvalConfig, evaluate
from hashbench.store import iter_cells, write_cell


def _data(rng, nq, n, bits, n_labels=None):
    qc = rng.integers(0, 2, (nq, bits), dtype=np.uint8)
    dc = rng.integers(0, 2, (n, bits), dtype=np.uint8)
    dc[: n // 3] = dc[0]  # big tie groups
    if n_labels is None:
        return qc, dc, rng.integers(0, 5, nq), rng.integers(0, 5, n)
    return qc, dc, (rng.random((nq, n_labels)) < 0.2).astype(np.uint8), \
        (rng.random((n, n_labels)) < 0.2).astype(np.uint8)


def _same(a, b):
    assert a.metrics == b.metrics
    assert sorted(a.curves) == sorted(b.curves) and sorted(a.per_query) == sorted(b.per_query)
    for k in a.curves:
        np.testing.assert_array_equal(a.curves[k], b.curves[k])
    for k in a.per_query:
        np.testing.assert_array_equal(a.per_query[k], b.per_query[k])


@pytest.mark.parametrize("bits, n_labels", [(13, 21), (64, 3), (70, 70), (32, None)])
@pytest.mark.parametrize("ties", ["index", "tie-aware", "random"])
def test_packed_inputs_give_exactly_the_in_memory_results(rng, bits, n_labels, ties):
    qc, dc, ql, dl = _data(rng, 9, 300, bits, n_labels)
    cfg = EvalConfig(ties=ties, topk=(50, None), precision_at=(10, 100), pr_levels=20, device="cpu")
    ref = evaluate(qc, dc, ql, dl, cfg)
    pl = (lambda x: PackedBits.pack(x)) if n_labels else (lambda x: x)
    _same(ref, evaluate(PackedBits.pack(qc), PackedBits.pack(dc), pl(ql), pl(dl), cfg))
    _same(ref, evaluate(qc, PackedBits.pack(dc), ql, dl, cfg))


def test_packed_inputs_on_the_torch_path(rng):
    qc, dc, ql, dl = _data(rng, 7, 200, 24, 5)
    cfg = EvalConfig(topk=(20, None), pr_levels=10, device="torch-cpu")
    _same(evaluate(qc, dc, ql, dl, cfg), evaluate(qc, PackedBits.pack(dc), ql, PackedBits.pack(dl), cfg))


def test_a_stored_cell_is_evaluated_memory_mapped(tmp_path, rng):
    qc, dc, ql, dl = _data(rng, 6, 500, 40, 4)
    cell = write_cell(tmp_path / "ds" / "m" / "40bits" / "seed0", {"bits": 40, "cell_key": "k"},
                      query_codes=qc, database_codes=PackedBits.pack(dc), curves={}, per_query={})
    (cell,) = list(iter_cells(tmp_path))
    q, db = cell.load_packed_codes()
    assert isinstance(db.packed, np.memmap) and db.shape == (500, 40)
    np.testing.assert_array_equal(db.unpack(), dc)
    np.testing.assert_array_equal(cell.load_codes()[1], dc)  # written packed, read as before
    cfg = EvalConfig(device="cpu")
    _same(evaluate(qc, dc, ql, dl, cfg), evaluate(q, db, ql, dl, cfg))


def test_padding_bits_in_a_file_do_not_change_distances(rng):
    qc, dc, ql, dl = _data(rng, 5, 100, 13, 3)
    dirty = PackedBits.pack(dc).packed.copy()
    dirty[:, -1] |= 0b00000111  # the 3 bits past the 13th
    cfg = EvalConfig(device="cpu")
    _same(evaluate(qc, dc, ql, dl, cfg), evaluate(qc, PackedBits(dirty, 13), ql, dl, cfg))


def test_encode_packed_in_chunks_equals_encoding_at_once(rng):
    from hashbench_methods.lsh import LSH

    feats = rng.standard_normal((1000, 32)).astype(np.float32)
    h = LSH(bits=20, seed=0).fit(feats)
    whole = np.packbits(h.encode(feats), axis=1)
    for chunk in (1, 7, 999, 1000, 5000):
        p = encode_packed(h.encode, feats, chunk=chunk)
        assert p.width == 20
        np.testing.assert_array_equal(p.packed, whole)


def test_encode_packed_and_packed_bits_refuse_bad_input(rng):
    with pytest.raises(DataError, match="other than 0/1"):
        encode_packed(lambda x: np.where(x[:, :4] > 0, 1, -1), rng.standard_normal((10, 4)))
    with pytest.raises(DataError, match="cannot hold 20 bits"):
        PackedBits(np.zeros((3, 2), np.uint8), 20)
    with pytest.raises(DataError, match="2-D uint8"):
        PackedBits(np.zeros((3, 2), np.int64), 16)
    with pytest.raises(DataError, match="bits but database codes"):
        evaluate(np.zeros((2, 8)), PackedBits.pack(np.zeros((3, 16))), np.zeros(2), np.zeros(3))


@pytest.mark.parametrize("ties", ["index", "random", "tie-aware"])
def test_torch_path_under_a_small_device_budget_gives_the_cpu_results(rng, monkeypatch, ties):
    from hashbench.evaluation import _torch

    qc, dc, ql, dl = _data(rng, 7, 300, 70, 66)  # two words of codes and of labels
    cfg = dict(ties=ties, topk=(20, None), precision_at=(10,), pr_levels=10)
    ref = evaluate(qc, dc, ql, dl, EvalConfig(device="cpu", **cfg))
    monkeypatch.setenv("HASHBENCH_EVAL_DEVICE_BUDGET", str(_torch._ROW_BYTES * 300 * 2))  # 2 queries a chunk
    got = evaluate(qc, PackedBits.pack(dc), ql, PackedBits.pack(dl), EvalConfig(device="torch-cpu", **cfg))
    for k in ref.metrics:
        assert got.metrics[k] == pytest.approx(ref.metrics[k], abs=1e-9), k
    np.testing.assert_array_equal(got.per_query["P@10"], ref.per_query["P@10"])


def test_packed_bits_blocks_cover_every_row_in_order(rng, tmp_path):
    codes = rng.integers(0, 2, (23, 13), dtype=np.uint8)
    path = tmp_path / "codes.npy"
    np.save(path, PackedBits.pack(codes).packed)
    for p in (PackedBits.pack(codes), PackedBits.load(path, 13)):  # in memory and memory-mapped
        for rows in (1, 5, 22, 23, 100):
            blocks = list(p.blocks(rows))
            assert [s for s, _ in blocks] == list(range(0, 23, rows))
            assert all(len(b) == min(rows, 23 - s) for s, b in blocks)
            np.testing.assert_array_equal(np.concatenate([b for _, b in blocks]), p.packed)


@pytest.mark.parametrize("ties", ["index", "tie-aware"])
def test_databases_larger_than_one_block_give_the_in_memory_results(rng, monkeypatch, ties):
    """Every evaluator path that reads codes or labels block by block, with blocks of 7 rows: the second and
    later blocks count (every test database elsewhere fits in the first 65,536-row block)."""
    from hashbench.evaluation import _inputs

    qc, dc, ql, dl = _data(rng, 6, 50, 21, 4)
    cfg = EvalConfig(ties=ties, topk=(10, None), precision_at=(5,), pr_levels=10, device="cpu")
    ref = evaluate(qc, dc, ql, dl, cfg)
    monkeypatch.setattr(_inputs, "_BLOCK", 7)
    _same(ref, evaluate(qc, dc, ql, dl, cfg))
    _same(ref, evaluate(PackedBits.pack(qc), PackedBits.pack(dc), PackedBits.pack(ql), PackedBits.pack(dl), cfg))


@pytest.mark.parametrize("width", [1, 8, 13, 64, 70])
def test_packed_bits_round_trip_at_any_width(rng, tmp_path, width):
    """Widths that are not a multiple of 8 unpack to exactly ``width`` columns (no padding), and a
    1-bit code is a code."""
    codes = rng.integers(0, 2, (9, width), dtype=np.uint8)
    p = PackedBits.pack(codes)
    assert p.shape == (9, width) and p.packed.shape == (9, (width + 7) // 8)
    np.testing.assert_array_equal(p.unpack(), codes)
    np.save(tmp_path / "c.npy", p.packed)
    loaded = PackedBits.load(tmp_path / "c.npy", width)
    assert isinstance(loaded.packed, np.memmap)  # memory-mapped unless asked otherwise
    assert not isinstance(PackedBits.load(tmp_path / "c.npy", width, mmap=False).packed, np.memmap)
    np.testing.assert_array_equal(loaded.unpack(), codes)


def test_encode_packed_edge_sizes_and_a_wrong_row_count(rng):
    feats = rng.standard_normal((1, 4))
    one = encode_packed(lambda x: (x > 0).astype(np.uint8), feats)  # a single item is a database
    np.testing.assert_array_equal(one.unpack(), (feats > 0).astype(np.uint8))
    with pytest.raises(DataError, match="no items to encode"):
        encode_packed(lambda x: (x > 0).astype(np.uint8), feats[:0])
    with pytest.raises(DataError, match=r"encode returned shape \(4, 4\) for 5 items"):
        encode_packed(lambda x: (x[:-1] > 0).astype(np.uint8), rng.standard_normal((5, 4)))
    with pytest.raises(DataError, match="encode returned 3 bits for rows 2.., 4 before"):
        encode_packed(lambda x: (x[:, : 4 - (x[0, 0] > 100)] > 0).astype(np.uint8),
                      np.r_[rng.standard_normal((2, 4)), np.full((2, 4), 200.0)], chunk=2)


_SPRUNG: list[int] = []


def _spring() -> dict:
    _SPRUNG.append(1)  # what unpickling the file would run
    return {}


class _Trap:
    def __reduce__(self):
        return (_spring, ())


def test_a_codes_file_holding_pickled_objects_is_refused(tmp_path):
    """A results folder can come from elsewhere: loading its codes must never unpickle (run) anything."""
    path = tmp_path / "codes.npy"
    np.save(path, np.array([_Trap()], dtype=object), allow_pickle=True)
    for mmap in (False, True):
        with pytest.raises(ValueError):
            PackedBits.load(path, 8, mmap=mmap)
    assert _SPRUNG == []
