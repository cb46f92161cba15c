"""A user's own folder of images with a CSV or JSON Lines manifest."""

from __future__ import annotations

import numpy as np
import pytest

from hashbench.datasets import get_dataset
from hashbench.errors import ConfigError, DataError

from .dataset_fixtures import write_manifest


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_manifest_items_labels_and_tags(tmp_path, fmt):
    w = write_manifest(tmp_path, n=30, fmt=fmt)
    ds = get_dataset("manifest", tmp_path, n_query=5)
    assert ds.ids == w.ids and ds.label_names == w.label_names
    np.testing.assert_array_equal(ds.labels, w.labels)
    assert list(ds.tags) == w.tags  # lower-cased; an item without tags keeps an empty list
    assert any(t == [] for t in ds.tags)
    assert ds.image_source(3) == str(tmp_path / "photos" / "p003.jpg") and ds.load_image(3).shape == (48, 40, 3)
    split = ds.make_split(0)
    assert split.sizes() == {"query": 5, "database": 25, "train": 25}
    assert not np.intersect1d(split.query, split.database).size


def test_single_label_and_image_only_manifests(tmp_path):
    w = write_manifest(tmp_path, n=20, single_label=True, with_tags=False, fmt="jsonl")
    ds = get_dataset("manifest", tmp_path)
    assert ds.labels.dtype == np.int64 and ds.labels.ndim == 1
    np.testing.assert_array_equal(ds.labels, w.labels)
    assert ds.tags is None and not ds.has_tags
    assert ds.n_query == 2  # default: 10% of the items
    multi = get_dataset("manifest", tmp_path, label_mode="multi")
    assert multi.labels.shape == (20, 4) and (multi.labels.sum(1) == 1).all()


def test_manifest_errors_name_file_and_line(tmp_path):
    write_manifest(tmp_path, n=6)
    m = tmp_path / "manifest.csv"
    lines = m.read_text().splitlines()
    m.write_text("\n".join(lines[:4] + ["photos/p001.jpg,a,b"] + lines[5:]) + "\n")
    with pytest.raises(DataError, match=r"manifest\.csv: line 5: item 'photos/p001\.jpg' already on line 3"):
        get_dataset("manifest", tmp_path)
    m.write_text("path,labels,tags\nphotos/p000.jpg,sea\n")
    with pytest.raises(DataError, match=r"manifest\.csv: line 2: 3 columns expected"):
        get_dataset("manifest", tmp_path)
    m.write_text("file,labels\nphotos/p000.jpg,sea\n")
    with pytest.raises(DataError, match=r"manifest\.csv: line 1: no 'path' column"):
        get_dataset("manifest", tmp_path)
    m.unlink()
    (tmp_path / "manifest.jsonl").write_text('{"path": "photos/p000.jpg", "labels": ["sea"]}\n{"path": \n')
    with pytest.raises(DataError, match=r"manifest\.jsonl: line 2: not valid JSON"):
        get_dataset("manifest", tmp_path)
    (tmp_path / "manifest.jsonl").write_text('{"path": "photos/p000.jpg", "labels": 3}\n')
    with pytest.raises(DataError, match=r"manifest\.jsonl: line 1: 'labels' must be a list of strings"):
        get_dataset("manifest", tmp_path)
    (tmp_path / "manifest.jsonl").unlink()
    with pytest.raises(DataError, match=r"manifest\.csv: manifest not found \(nor manifest\.jsonl\)"):
        get_dataset("manifest", tmp_path)
    with pytest.raises(ConfigError, match="separator must be one character"):
        get_dataset("manifest", tmp_path, separator=",")


def test_missing_and_unlabelled_items(tmp_path, caplog):
    w = write_manifest(tmp_path, n=12, name="mine.csv")
    m = tmp_path / "mine.csv"
    m.write_text(m.read_text() + "photos/nolabel.jpg,x,\n")
    (tmp_path / "photos" / "p004.jpg").unlink()
    with pytest.raises(DataError, match=r"1 image file\(s\) not found \(.*photos/p004\.jpg\)"):
        get_dataset("manifest", tmp_path, manifest="mine.csv")
    ds = get_dataset("manifest", tmp_path, manifest="mine.csv", skip_corrupt=True, n_query=2)
    assert list(ds.skipped) == ["photos/p004.jpg"]
    assert ds.ids == [i for i in w.ids if i != "photos/p004.jpg"]  # and the unlabelled item is left out
    assert "1 item(s) left out for having fewer than 0 tag(s) or 1 label(s)" in caplog.text
    assert ds.source["left_out_by_filters"] == 1
