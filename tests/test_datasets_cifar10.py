"""CIFAR-10 from a tiny copy of the python release: pixels, labels, the per-class protocol, bad files."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from hashbench.datasets import get_dataset
from hashbench.datasets.prepare import check_archives
from hashbench.errors import DataError

from .dataset_fixtures import CIFAR_CLASSES, write_cifar10

OPTS = {"n_query_per_class": 2, "n_train_per_class": 3}


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    return write_cifar10(tmp_path_factory.mktemp("cifar"))


def test_images_labels_and_ids_match_the_batches(cifar):
    ds = get_dataset("cifar10", cifar.root, **OPTS)
    assert ds.ids == cifar.ids and ds.label_names == CIFAR_CLASSES
    assert ds.labels.dtype == np.int64 and ds.labels.ndim == 1
    np.testing.assert_array_equal(ds.labels, cifar.labels)
    for i in (0, 13, 71):  # first batch, second batch, test batch
        np.testing.assert_array_equal(ds.load_image(i), cifar.extra["images"][i])
    assert ds.tags is None and not ds.has_tags and not ds.multilabel
    # root may also be the cifar-10-batches-py folder itself
    assert get_dataset("cifar10", cifar.root / "cifar-10-batches-py", **OPTS).ids == ds.ids


def test_standard_protocol_per_class_and_disjoint(cifar):
    ds = get_dataset("cifar10", cifar.root, **OPTS)
    split = ds.make_split(0)
    assert split.sizes() == {"query": 20, "database": 52, "train": 30}
    np.testing.assert_array_equal(np.bincount(ds.labels[split.query], minlength=10), [2] * 10)
    np.testing.assert_array_equal(np.bincount(ds.labels[split.train], minlength=10), [3] * 10)
    assert not np.intersect1d(split.query, split.database).size
    assert np.union1d(split.query, split.database).size == len(ds)
    assert np.isin(split.train, split.database).all()
    np.testing.assert_array_equal(split.query, ds.make_split(0).query)
    assert not np.array_equal(split.query, ds.make_split(1).query)
    # classes 0-1 have 8 items in the fixture, the others 7: bird is the first one short
    with pytest.raises(DataError, match="class 'bird' has 5 eligible items left for the train role, 6 needed"):
        get_dataset("cifar10", cifar.root, n_query_per_class=2, n_train_per_class=6).make_split(0)


def test_checksums_say_when_files_are_not_the_official_ones(cifar, tmp_path):
    ds = get_dataset("cifar10", cifar.root, **OPTS)
    verdicts = ds.verify_files()
    assert set(verdicts) == {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                             "test_batch", "batches.meta"}
    assert all(v.startswith("MD5 ") and "official" in v for v in verdicts.values())  # a fixture is not official
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not the archive")
    with pytest.raises(DataError, match="cifar-10-python.tar.gz: MD5 .* does not match the official archive's "
                                        "c58f30108f718f92721af3b95e74349a"):
        check_archives(ds, tmp_path)
    assert "not found" in check_archives(ds, tmp_path / "empty")["cifar-10-python.tar.gz"]


def test_bad_batches_are_named(tmp_path):
    write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "data_batch_3").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataError, match=r"data_batch_3: not a CIFAR-10 python batch"):
        get_dataset("cifar10", tmp_path)
    with open(folder / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4}, f)
    with pytest.raises(DataError, match=r"data_batch_3: expected b'data' of shape \(N, 3072\)"):
        get_dataset("cifar10", tmp_path)
    with open(folder / "data_batch_3", "wb") as f:
        pickle.dump({b"labels": [0] * 4}, f)
    with pytest.raises(DataError, match=r"data_batch_3: no b'data' entry"):
        get_dataset("cifar10", tmp_path)
    (folder / "test_batch").unlink()
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match=r"data_batch_3: CIFAR-10 batch file not found"):
        get_dataset("cifar10", tmp_path)


class _Hostile:
    """Unpickles as a call to os.system: what a tampered batch file could carry."""

    def __reduce__(self):
        import os

        return (os.system, ("touch hostile-ran",))


def test_a_batch_that_names_another_global_is_refused_before_anything_runs(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    monkeypatch.chdir(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_2", "wb") as f:
        pickle.dump({b"data": _Hostile(), b"labels": [0] * 4}, f, protocol=2)
    with pytest.raises(DataError, match=r"data_batch_2: not a CIFAR-10 python batch .*system"):
        get_dataset("cifar10", tmp_path)
    assert not (tmp_path / "hostile-ran").exists()
