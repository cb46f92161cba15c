"""Guards on the plumbing: what the runner hands a method, and how the store rewrites a cell.

Both tests were written against bugs planted in a copy of the code that the
rest of the suite let through (issue 18): the runner passing query rows to
``fit``, and a cell writer that saves straight into the final cell folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hashbench
from hashbench import store
from hashbench.datasets import get_dataset, random_split
from hashbench.features import BackboneSpec, ImageInput, extract_features
from hashbench.runner import RunConfig, run
from hashbench.store import CellState, cell_path, read_cell, write_cell

from .conftest import TinyDataset


# ------------------------------------------------------------------ spy method
class _Spy(hashbench.Hasher):
    """Records every input of ``fit`` and ``encode``; codes: the first bits of the features, thresholded."""

    display_name = "spy"
    requires = frozenset({"features", "tags"})
    calls: list[tuple[str, dict]] = []

    def _fit(self, features, tags=None, images=None):
        type(self).calls.append(("fit", {"features": None if features is None else np.array(features), "tags": list(tags) if tags else tags,
                                         "images": images}))
        self.mean_ = None if features is None else features[:, : self.bits].mean(axis=0)

    def _encode(self, features, images=None):
        type(self).calls.append(("encode", {"features": None if features is None else np.array(features),
                                            "images": images}))
        if features is None:  # images only: a fixed code per item (the pipeline is under test, not the codes)
            return np.zeros((len(images), self.bits), dtype=np.uint8)
        return (features[:, : self.bits] > self.mean_).astype(np.uint8)


class _ImageSpy(_Spy):
    requires = frozenset({"images", "tags"})


def _split_with_a_training_subset(self, seed=0):
    # train is a strict subset of the database, so train, database and query rows all differ
    return random_split(len(self), self.n_query, seed=seed, protocol="random", n_train=40)


@pytest.fixture
def spy(monkeypatch):
    monkeypatch.setattr(TinyDataset, "make_split", _split_with_a_training_subset)
    registered = []

    def register(cls, name):
        cls.calls = []
        hashbench.register_method(name)(cls)
        registered.append(name)
        return cls

    yield register
    for name in registered:
        hashbench.registry.unregister_method(name)


def test_fit_gets_exactly_the_training_rows_and_encode_the_query_and_database_rows(tmp_path, spy):
    cls = spy(_Spy, "spy-features-test")
    run(RunConfig(dataset="tiny-test", methods=["spy-features-test"], bits=[8], results=tmp_path / "res",
                  progress=False), echo=lambda s: None)
    dataset = get_dataset("tiny-test")
    split = dataset.make_split(0)
    assert len(split.train) == 40 and not np.array_equal(split.train, split.database)
    spec = BackboneSpec(weights="random", resize=64, crop=64)

    def features_of(rows):  # extracted on their own, not through the runner's row bookkeeping
        feats, _ = extract_features(dataset, rows, spec, cache=tmp_path / "own-cache", progress=False)
        return np.asarray(feats)

    assert [c[0] for c in cls.calls] == ["fit", "encode", "encode"]
    fit, enc_q, enc_db = (c[1] for c in cls.calls)
    np.testing.assert_allclose(fit["features"], features_of(split.train), rtol=1e-5, atol=1e-6)
    assert fit["tags"] == [dataset.tags[i] for i in split.train]
    np.testing.assert_allclose(enc_q["features"], features_of(split.query), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(enc_db["features"], features_of(split.database), rtol=1e-5, atol=1e-6)


def test_image_methods_get_exactly_the_training_images_and_encode_query_and_database(tmp_path, spy):
    cls = spy(_ImageSpy, "spy-images-test")
    run(RunConfig(dataset="tiny-test", methods=["spy-images-test"], bits=[8], results=tmp_path / "res",
                  progress=False), echo=lambda s: None)
    dataset = get_dataset("tiny-test")
    split = dataset.make_split(0)
    assert [c[0] for c in cls.calls] == ["fit", "encode", "encode"]
    fit, enc_q, enc_db = (c[1] for c in cls.calls)
    for call, rows in ((fit, split.train), (enc_q, split.query), (enc_db, split.database)):
        assert isinstance(call["images"], ImageInput)
        np.testing.assert_array_equal(call["images"].indices, rows)
        assert call["images"].dataset.ids == dataset.ids
    assert fit["tags"] == [dataset.tags[i] for i in split.train]


# ------------------------------------------------------------- failed rewrite
def _cell(root, key, codes_seed):
    rng = np.random.default_rng(codes_seed)
    record = {"cell_key": key, "dataset": {"key": "toy", "name": "toy"},
              "method": {"name": "itq", "display_name": "ITQ", "deep": False}, "bits": 16, "seed": 0,
              "metrics": {"mAP@all": 0.5}, "timings": {"fit_s": 1.0}, "evaluation": {"ties": "index"}}
    arrays = {"query_codes": rng.integers(0, 2, size=(5, 16), dtype=np.uint8),
              "database_codes": rng.integers(0, 2, size=(9, 16), dtype=np.uint8),
              "curves": {"pr_precision": rng.random(4)}, "per_query": {"AP@all": rng.random(5)}}
    return cell_path(root, "toy", "itq", 16, 0), record, arrays


def test_a_rewrite_with_different_codes_that_fails_halfway_keeps_the_old_cell(tmp_path, monkeypatch):
    path, record, old = _cell(tmp_path, "old", codes_seed=1)
    write_cell(path, record, **old)
    _, new_record, new = _cell(tmp_path, "new", codes_seed=2)
    assert not np.array_equal(new["query_codes"], old["query_codes"])  # different bytes, not a no-op rewrite

    real_savez = np.savez

    def fail_after_the_codes(file, *args, **kwargs):  # the codes are saved, then the disk fills up
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail_after_the_codes)
    with pytest.raises(OSError, match="disk full"):
        write_cell(path, new_record, **new)
    monkeypatch.setattr(np, "savez", real_savez)

    state, reason, cell = read_cell(path, "old")
    assert state == CellState.DONE, reason
    q, d = cell.load_codes()
    np.testing.assert_array_equal(q, old["query_codes"])
    np.testing.assert_array_equal(d, old["database_codes"])
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_no_file_is_ever_saved_directly_into_a_final_cell_folder(tmp_path, monkeypatch):
    saved: list = []
    for name in ("save", "savez", "savez_compressed"):
        real = getattr(np, name)
        monkeypatch.setattr(np, name, lambda file, *a, _real=real, **k: (saved.append(file), _real(file, *a, **k))[1])
    real_json = store.atomic_write_json
    monkeypatch.setattr(store, "atomic_write_json", lambda p, obj: (saved.append(p), real_json(p, obj))[1])

    path, record, first = _cell(tmp_path, "first", codes_seed=1)
    write_cell(path, record, **first)  # a new cell ...
    _, record2, second = _cell(tmp_path, "second", codes_seed=2)
    write_cell(path, record2, **second)  # ... and a rewrite of an existing one
    assert len(saved) == 10
    final = path.resolve()
    into_final = [str(f) for f in saved if Path(f).resolve().parent == final]
    assert into_final == []
    assert read_cell(path, "second")[0] == CellState.DONE
