"""MIRFLICKR-25K on a tiny fixture in the official layout: items, labels, tags, protocols, bad input."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from hashbench.datasets import get_dataset
from hashbench.errors import ConfigError, DataError

from .dataset_fixtures import write_mirflickr

SMALL = {"min_tag_count": 3, "n_query": 4, "n_database": 20}


@pytest.fixture(scope="module")
def mir(tmp_path_factory):
    return write_mirflickr(tmp_path_factory.mktemp("mir"), n=40)


def _vocab(written, min_count):
    df = Counter(t for tags in written.tags for t in tags)
    return {t for t, c in df.items() if c >= min_count}


def test_paper_protocol_items_labels_and_tags_follow_the_files(mir):
    ds = get_dataset("mirflickr25k", mir.root, **SMALL)
    vocab = _vocab(mir, 3)
    # brute force: >= 3 tags among all the item's tags, >= 1 of the 24 concepts
    keep = [i for i in range(40) if len(mir.tags[i]) >= 3 and mir.labels[i, :24].any()]
    assert ds.ids == [mir.ids[i] for i in keep]
    np.testing.assert_array_equal(ds.labels, mir.labels[keep, :24])
    assert ds.labels.dtype == np.uint8 and ds.label_names[0] == "animals" and len(ds.label_names) == 24
    assert list(ds.tags) == [[t for t in mir.tags[i] if t in vocab] for i in keep]
    assert ds.image_source(0).endswith("mirflickr/im11.jpg")
    img = ds.load_image(0)
    assert img.dtype == np.uint8 and img.shape == (48, 40, 3)
    # items 1..8 (no tags, two tags) and 9..10 (no label) are left out by the filters
    assert not {f"im{i}" for i in range(1, 11)} & set(ds.ids)


def test_38_categories_add_the_r1_subsets(mir):
    ds24 = get_dataset("mirflickr25k", mir.root, **SMALL)
    ds38 = get_dataset("mirflickr25k", mir.root, label_set="38", **SMALL)
    assert ds38.ids == ds24.ids  # every _r1 set lies inside its concept
    assert ds38.label_names[24:] == [n for n in mir.label_names[24:]] and len(ds38.label_names) == 38
    rows = [mir.ids.index(i) for i in ds38.ids]
    np.testing.assert_array_equal(ds38.labels, mir.labels[rows])
    assert ds38.config["label_set"] == "38" and ds38.fingerprint_key() != ds24.fingerprint_key()


def test_counting_tags_in_the_vocabulary_keeps_fewer_items(mir):
    ds = get_dataset("mirflickr25k", mir.root, count_tags_in="vocabulary", min_tag_count=10, n_query=2,
                     n_database=None)
    vocab = _vocab(mir, 10)
    assert ds.source["vocabulary_size"] == len(vocab) < len(_vocab(mir, 1))
    keep = [i for i in range(40) if sum(t in vocab for t in mir.tags[i]) >= 3 and mir.labels[i, :24].any()]
    assert ds.ids == [mir.ids[i] for i in keep]
    assert len(keep) < len(get_dataset("mirflickr25k", mir.root, **SMALL))


def test_cleaned_protocol(mir):
    ds = get_dataset("mirflickr25k", mir.root, protocol="cleaned", min_tag_count=8, n_query=4, n_train=10)
    vocab = _vocab(mir, 8)
    keep = [i for i in range(40) if any(t in vocab for t in mir.tags[i]) and mir.labels[i, :24].any()]
    assert ds.ids == [mir.ids[i] for i in keep]
    split = ds.make_split(3)
    assert split.sizes() == {"query": 4, "database": len(keep) - 4, "train": 10}
    assert np.isin(split.train, split.database).all()
    assert not np.intersect1d(split.query, split.database).size
    assert split.protocol == "mirflickr25k-cleaned"


def test_paper_split_is_seeded_disjoint_and_trains_on_the_database(mir):
    ds = get_dataset("mirflickr25k", mir.root, **SMALL)
    a, b, c = ds.make_split(0), ds.make_split(0), ds.make_split(1)
    assert a.sizes() == {"query": 4, "database": 20, "train": 20}
    np.testing.assert_array_equal(a.train, a.database)
    assert not np.intersect1d(a.query, a.database).size
    np.testing.assert_array_equal(a.query, b.query)
    assert not np.array_equal(a.query, c.query)
    with pytest.raises(DataError, match=r"30 items are kept, too few for n_query=4 and n_database=9999; .*-D n_query"):
        get_dataset("mirflickr25k", mir.root, **{**SMALL, "n_database": 9999}).make_split(0)


def test_raw_tags_are_lower_cased_and_root_may_be_the_mirflickr_folder(tmp_path):
    w = write_mirflickr(tmp_path, n=24, annotations_dir="mirflickr/annotations", crlf=True)
    clean = get_dataset("mirflickr25k", tmp_path, min_tag_count=1, n_query=2)
    raw = get_dataset("mirflickr25k", tmp_path / "mirflickr", tags_source="raw", min_tag_count=1, n_query=2)
    assert clean.ids == raw.ids and list(clean.tags) == list(raw.tags)
    assert list(clean.tags) == [w.tags[w.ids.index(i)] for i in clean.ids]


def test_missing_and_malformed_files_are_named(tmp_path):
    w = write_mirflickr(tmp_path, n=16)
    ann = tmp_path / "mirflickr25k_annotations_v080"
    (ann / "dog_r1.txt").unlink()
    get_dataset("mirflickr25k", tmp_path, min_tag_count=1, n_query=2)  # 24 labels do not need it
    with pytest.raises(DataError, match=r"dog_r1\.txt: annotation file of concept 'dog_r1' not found"):
        get_dataset("mirflickr25k", tmp_path, label_set="38", min_tag_count=1, n_query=2)
    (ann / "sky.txt").write_text("3\n12a\n")
    with pytest.raises(DataError, match=r"sky\.txt: line 2: expected an image number 1\.\.16, got '12a'"):
        get_dataset("mirflickr25k", tmp_path, min_tag_count=1, n_query=2)
    (ann / "sky.txt").write_text("3\n17\n")
    with pytest.raises(DataError, match=r"sky\.txt: line 2: expected an image number 1\.\.16, got '17'"):
        get_dataset("mirflickr25k", tmp_path, min_tag_count=1, n_query=2)
    (ann / "sky.txt").write_text("")
    (tmp_path / "mirflickr" / "meta" / "tags" / "tags5.txt").unlink()
    with pytest.raises(DataError, match=r"tags5\.txt: tag file not found"):
        get_dataset("mirflickr25k", tmp_path, min_tag_count=1, n_query=2)
    with pytest.raises(DataError, match=r"nowhere: annotation folder \(annotations=\) not found"):
        get_dataset("mirflickr25k", tmp_path, annotations="nowhere")
    with pytest.raises(DataError, match=r"mirflickr/meta/tags: folder not found; unzip mirflickr25k\.zip"):
        get_dataset("mirflickr25k", tmp_path / "elsewhere")
    (ann / "animals.txt").unlink()
    with pytest.raises(DataError, match="annotation files not found .*mirflickr25k_annotations_v080.zip"):
        get_dataset("mirflickr25k", tmp_path)
    with pytest.raises(ConfigError, match="unknown option.*n_queries.*known options: protocol"):
        get_dataset("mirflickr25k", tmp_path, n_queries=3)
    with pytest.raises(ConfigError, match="label_set must be one of 24, 38"):
        get_dataset("mirflickr25k", tmp_path, label_set="81")


def test_missing_and_corrupt_images(tmp_path):
    # im12 is missing, im15 truncated: both pass the metadata filters
    w = write_mirflickr(tmp_path, n=24, missing=(12,), corrupt=(15,))
    opts = {"min_tag_count": 1, "n_query": 2}
    with pytest.raises(DataError, match=r"1 image file\(s\) not found \(.*mirflickr/im12\.jpg\).*--skip-corrupt"):
        get_dataset("mirflickr25k", tmp_path, **opts)
    (tmp_path / "mirflickr" / "im12.jpg").write_bytes((tmp_path / "mirflickr" / "im11.jpg").read_bytes())
    ds = get_dataset("mirflickr25k", tmp_path, **opts)
    k = ds.ids.index("im15")
    with pytest.raises(DataError, match=r"mirflickr/im15\.jpg: image does not decode"):
        ds.load_image(k)
    (tmp_path / "mirflickr" / "im12.jpg").unlink()
    skipping = get_dataset("mirflickr25k", tmp_path, skip_corrupt=True, **opts)
    assert set(skipping.skipped) == {"im12", "im15"}
    assert "missing" in skipping.skipped["im12"] and "does not decode" in skipping.skipped["im15"]
    assert skipping.ids == [i for i in ds.ids if i not in ("im12", "im15")]
    assert skipping.describe()["skipped_images"] == 2
    for i in range(len(skipping)):
        skipping.load_image(i)
    assert w.corrupt == ["im15"]


def test_prepare_checks_archives_and_reports_skipped_images(tmp_path, capsys):
    from hashbench.cli import main

    write_mirflickr(tmp_path / "data", n=24, corrupt=(15,))
    archives = tmp_path / "downloads"
    archives.mkdir()
    (archives / "mirflickr25k_annotations_v080.zip").write_bytes(b"PK fixture")
    argv = ["-q", "prepare", "mirflickr25k", "--root", str(tmp_path / "data"), "-D", "min_tag_count=1",
            "-D", "n_query=3", "-D", "n_database=null", "--no-features", "--skip-corrupt", "--archives",
            str(archives)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "mirflickr25k.zip: not found in" in out
    assert "mirflickr25k_annotations_v080.zip: no published checksum is known; its MD5 is" in out
    assert "skipped images: 1" in out and "im15:" in out and "does not decode" in out
    assert "query/database overlap 0" in out and "features: not built" in out
    (archives / "mirflickr25k.zip").write_bytes(b"PK not the real archive")
    assert main(argv) == 2
    assert "mirflickr25k.zip: MD5" in capsys.readouterr().err
