"""NUS-WIDE on a tiny fixture in the official layout: filters, top concepts, missing images, protocols."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from hashbench.datasets import get_dataset
from hashbench.errors import DataError

from .dataset_fixtures import NUS_CONCEPTS, write_nuswide

MISSING = (12, 30, 31)


@pytest.fixture(scope="module")
def nus(tmp_path_factory):
    return write_nuswide(tmp_path_factory.mktemp("nus"), n=60, missing=MISSING)


def _top(written, k):
    counts = written.labels.sum(0).astype(np.int64)
    return sorted(range(len(NUS_CONCEPTS)), key=lambda c: (-counts[c], NUS_CONCEPTS[c]))[:k]


def test_paper_protocol_follows_the_files_and_reports_missing_images(nus, caplog):
    with caplog.at_level(logging.WARNING, logger="hashbench"):
        ds = get_dataset("nuswide", nus.root, top_labels=4, n_query=5, n_database=None)
    top = _top(nus, 4)
    assert ds.label_names == [NUS_CONCEPTS[c] for c in top]
    tagmat = nus.extra["tagmat"]
    eligible = [i for i in range(60) if tagmat[i].sum() >= 3 and nus.labels[i, top].any()]
    keep = [i for i in eligible if i not in MISSING]
    assert ds.ids == [nus.ids[i] for i in keep]
    np.testing.assert_array_equal(ds.labels, nus.labels[np.ix_(keep, top)])
    assert list(ds.tags) == [nus.tags[i] for i in keep]
    # every missing image that passed the filters is reported, by id and path, and in the log
    missing = [nus.ids[i] for i in eligible if i in MISSING]
    assert missing and sorted(ds.skipped) == sorted(missing)
    assert all("image missing" in r and "Flickr/" in r for r in ds.skipped.values())
    assert f"{len(missing)} of {len(eligible)} images skipped" in caplog.text
    assert ds.source["missing_images"] == len(missing)
    assert ds.describe()["skipped_images"] == len(missing)
    # the Windows path of Imagelist.txt maps to <image_root>/<folder>/<file>
    i = ds.ids[0]
    assert ds.image_source(0).endswith(f"Flickr/{i}.jpg") and ds.load_image(0).shape == (48, 40, 3)
    split = ds.make_split(0)
    assert split.sizes() == {"query": 5, "database": len(keep) - 5, "train": len(keep) - 5}
    assert not np.intersect1d(split.query, split.database).size


def test_tc21_protocol_has_no_tag_filter_and_draws_per_concept(nus):
    ds = get_dataset("nuswide", nus.root, protocol="tc21", top_labels=3, n_query_per_class=2,
                     n_train_per_class=3)
    top = _top(nus, 3)
    keep = [i for i in range(60) if nus.labels[i, top].any() and i not in MISSING]
    assert ds.ids == [nus.ids[i] for i in keep]
    assert any(len(t) < 3 for t in ds.tags)  # rows 0..5 have fewer than 3 tags and stay
    split = ds.make_split(1)
    assert split.sizes() == {"query": 6, "database": len(keep) - 6, "train": 9}
    assert (ds.labels[split.query].sum(0) >= 2).all() and (ds.labels[split.train].sum(0) >= 3).all()
    assert not np.intersect1d(split.query, split.database).size
    assert np.isin(split.train, split.database).all()


def test_flat_image_folder_and_space_separated_tags(tmp_path):
    w = write_nuswide(tmp_path, n=30, image_folder="images", flat=True, separator=" ", trailing=False)
    ds = get_dataset("nuswide", tmp_path, top_labels=3, n_query=2)
    assert not ds.skipped and ds.image_source(0).startswith(str(tmp_path / "images"))
    assert "/" not in ds.image_source(0)[len(str(tmp_path / "images")) + 1 :]
    keep = [i for i in range(30) if w.extra["tagmat"][i].sum() >= 3 and w.labels[i, _top(w, 3)].any()]
    assert ds.ids == [w.ids[i] for i in keep]
    with pytest.raises(DataError, match="image folder .*image_root=.* not found"):
        get_dataset("nuswide", tmp_path, top_labels=3, image_root="nope")


def test_bad_files_are_named(tmp_path):
    write_nuswide(tmp_path, n=20)
    tags = tmp_path / "NUS_WID_Tags" / "AllTags1k.txt"
    lines = tags.read_text().splitlines(keepends=True)
    tags.write_text("".join(lines[:6]) + "0\t1\t1\n" + "".join(lines[7:]))
    with pytest.raises(DataError, match=r"AllTags1k\.txt: line 7: 3 values, expected 12"):
        get_dataset("nuswide", tmp_path, top_labels=3, n_query=2)
    tags.write_text("".join(lines[:-1]))
    with pytest.raises(DataError, match=r"AllTags1k\.txt: 19 rows, but .*Imagelist\.txt lists 20 images"):
        get_dataset("nuswide", tmp_path, top_labels=3, n_query=2)
    tags.write_text("".join(lines))
    sky = tmp_path / "Groundtruth" / "AllLabels" / "Labels_sky.txt"
    sky.write_text("0\n" * 19)
    with pytest.raises(DataError, match=r"Labels_sky\.txt: 19 lines, but the image list has 20 images"):
        get_dataset("nuswide", tmp_path, top_labels=3, n_query=2)
    sky.unlink()
    with pytest.raises(DataError, match=r"Labels_sky\.txt: label file of concept 'sky' .*Concepts81\.txt.* not found"):
        get_dataset("nuswide", tmp_path, top_labels=3, n_query=2)
    images = tmp_path / "ImageList" / "Imagelist.txt"
    text = images.read_text()
    images.write_text(text.replace("\n", "\nnot-a-path\n", 1))
    with pytest.raises(DataError, match=r"Imagelist\.txt: line 2: expected a path like"):
        get_dataset("nuswide", tmp_path, top_labels=3, n_query=2)
    (tmp_path / "NUS_WID_Tags" / "TagList1k.txt").unlink()
    images.write_text(text)
    (tmp_path / "ConceptsList" / "Concepts81.txt").unlink()
    with pytest.raises(DataError, match=r"TagList1k\.txt: tag list not found"):
        get_dataset("nuswide", tmp_path, top_labels=3, n_query=2)


def test_corrupt_image_is_named_or_skipped(tmp_path):
    w = write_nuswide(tmp_path, n=30, corrupt=(20,))
    ds = get_dataset("nuswide", tmp_path, protocol="tc21", top_labels=3, n_query_per_class=1, n_train_per_class=1)
    bad = w.ids[20]
    assert bad in ds.ids  # row 20 has a top concept
    with pytest.raises(DataError, match=rf"{bad}\.jpg: image does not decode"):
        ds.load_image(ds.ids.index(bad))
    skipping = get_dataset("nuswide", tmp_path, protocol="tc21", top_labels=3, n_query_per_class=1,
                           n_train_per_class=1, skip_corrupt=True)
    assert list(skipping.skipped) == [bad] and bad not in skipping.ids
    assert skipping.config["skip_corrupt"] is True
