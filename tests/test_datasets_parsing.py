"""The shared readers: the streamed 0/1 matrix parser, compact tag lists, per-class splits."""

from __future__ import annotations

import numpy as np
import pytest

from hashbench.datasets._protocols import per_class_split
from hashbench.datasets._tags import TagLists, iter_binary_rows, read_binary_column
from hashbench.errors import DataError


def _write(path, matrix, sep="\t", trailing=False, eol="\n", final_eol=True):
    lines = [sep.join(str(v) for v in row) + (sep if trailing else "") for row in matrix]
    path.write_bytes((eol.join(lines) + (eol if final_eol else "")).encode())


def _read(path, width, block_bytes):
    blocks = list(iter_binary_rows(path, width, block_bytes=block_bytes))
    starts = [s for s, _ in blocks]
    out = np.concatenate([b for _, b in blocks])
    assert starts == list(np.cumsum([0] + [b.shape[0] for _, b in blocks])[:-1])
    return out


@pytest.mark.parametrize(
    "sep,trailing,eol,final_eol",
    [("\t", True, "\n", True), (" ", False, "\n", True), ("\t", False, "\r\n", True), (" ", True, "\n", False)],
)
@pytest.mark.parametrize("block_bytes", [7, 64, 1 << 20])
def test_binary_matrix_equals_the_written_matrix(tmp_path, sep, trailing, eol, final_eol, block_bytes):
    rng = np.random.default_rng(1)
    matrix = (rng.random((53, 17)) < 0.3).astype(np.uint8)
    path = tmp_path / "m.txt"
    _write(path, matrix, sep, trailing, eol, final_eol)
    np.testing.assert_array_equal(_read(path, 17, block_bytes), matrix)


def test_irregular_spacing_takes_the_general_path(tmp_path):
    # mixed separators defeat the fixed-layout fast path; the values must still come out right
    path = tmp_path / "m.txt"
    path.write_text("0 1\t1\n1  0 0\n0\t0 1 \n")
    np.testing.assert_array_equal(_read(path, 3, 1 << 20), [[0, 1, 1], [1, 0, 0], [0, 0, 1]])


@pytest.mark.parametrize("block_bytes", [8, 1 << 20])
@pytest.mark.parametrize(
    "bad_line,content,message",
    [
        ("0\t1\t2", 3, "line 3: unexpected character '2'"),
        ("0\t1", 3, "line 3: 2 values, expected 3"),
        ("0\t1\t1\t0", 3, "line 3: 4 values, expected 3"),
        ("0\t10\t1", 3, "line 3: a value with several digits"),
        ("0\tx\t1", 3, "line 3: unexpected character 'x'"),
        ("", 3, "line 3: 0 values, expected 3"),
    ],
)
def test_a_malformed_line_is_named_by_file_and_number(tmp_path, bad_line, content, message, block_bytes):
    path = tmp_path / "AllTags1k.txt"
    good = "0\t1\t0\n1\t0\t0\n"
    path.write_text(good + bad_line + "\n" + "1\t1\t1\n")
    with pytest.raises(DataError, match=message) as err:
        list(iter_binary_rows(path, content, block_bytes=block_bytes))
    assert str(path) in str(err.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="Labels_sky.txt: .*not found"):
        read_binary_column(tmp_path / "Labels_sky.txt")


def test_binary_column(tmp_path):
    path = tmp_path / "Labels_sky.txt"
    path.write_text("0\n1\n1\n0\n")
    np.testing.assert_array_equal(read_binary_column(path), [False, True, True, False])


def test_tag_lists_behave_like_lists_and_subset():
    lists = [["sky", "blue"], [], ["dog"], ["blue", "dog", "sea"]]
    tags = TagLists.from_lists(lists)
    assert len(tags) == 4 and list(tags) == lists and tags[-1] == lists[-1] and tags[1:3] == lists[1:3]
    np.testing.assert_array_equal(tags.counts(), [2, 0, 1, 3])
    sub = tags.subset(np.array([3, 1, 0]))
    assert list(sub) == [lists[3], lists[1], lists[0]]
    with pytest.raises(IndexError):
        tags[4]


def test_per_class_split_single_label():
    labels = np.repeat(np.arange(4), 10)  # 10 items per class
    split = per_class_split(labels, 2, 3, seed=5, protocol="t")
    np.testing.assert_array_equal(np.bincount(labels[split.query]), [2, 2, 2, 2])
    np.testing.assert_array_equal(np.bincount(labels[split.train]), [3, 3, 3, 3])
    assert not np.intersect1d(split.query, split.database).size
    assert np.union1d(split.query, split.database).size == labels.size  # database = every non-query item
    assert np.isin(split.train, split.database).all()
    again = per_class_split(labels, 2, 3, seed=5, protocol="t")
    np.testing.assert_array_equal(split.query, again.query)
    other = per_class_split(labels, 2, 3, seed=6, protocol="t")
    assert not np.array_equal(split.query, other.query)


def test_per_class_split_multilabel_draws_distinct_items_and_names_a_short_class():
    rng = np.random.default_rng(0)
    labels = (rng.random((80, 3)) < 0.5).astype(np.uint8)
    labels[labels.sum(1) == 0, 0] = 1
    split = per_class_split(labels, 3, 4, seed=0, protocol="t")
    assert split.query.size == 9 and split.train.size == 12
    assert (labels[split.query].sum(0) >= 3).all()
    with pytest.raises(DataError, match="class 'c0' has .* eligible items left for the query role, 99 needed"):
        per_class_split(labels, 99, 1, seed=0, protocol="t", class_names=["c0", "c1", "c2"])
