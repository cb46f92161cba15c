"""The features-file dataset: a feature matrix with labels (tags, ids, a split) from .npy/.npz/.mat/.h5.

The key check: the classical methods run on features written out by hashbench and read back
through a file, with the saved split, give exactly the numbers of the run on the images."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import scipy.io

import hashbench
from hashbench import ConfigError, DataError
from hashbench.cli import main
from hashbench.datasets import get_dataset
from hashbench.features import extract_features
from hashbench.runner import RunConfig, Runner
from hashbench.store import iter_cells

METHODS = "itq,lsh,pcah,sph"


def _metrics(results):
    frame = hashbench.load_results(results)
    return {(r.method, r.bits): (r["mAP@5000"], r["mAP@all"]) for _, r in frame.iterrows()}


def _write_matlab_v73(path, arrays: dict[str, np.ndarray]) -> None:
    """What MATLAB's save -v7.3 writes: HDF5, each array stored with its axes reversed (column-major)."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, a in arrays.items():
            if a.dtype.kind == "U":  # a char matrix: uint16 codes, one row per string
                width = max(len(s) for s in a)
                codes = np.array([[ord(c) for c in s.ljust(width)] for s in a], dtype=np.uint16)
                ds = f.create_dataset(name, data=codes.T)
                ds.attrs["MATLAB_class"] = np.bytes_("char")
            else:
                f.create_dataset(name, data=np.asarray(a).T)
    with open(path, "r+b") as fh:  # MATLAB's 128-byte text header in the user block
        fh.write(b"MATLAB 7.3 MAT-file, written by a test".ljust(128, b" "))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A run of the classical methods on the tiny image dataset, and its features, labels, ids and split."""
    tmp = tmp_path_factory.mktemp("ref")
    results = tmp / "results"
    assert main(["run", "--methods", METHODS, "--bits", "8,16", "-q", "--dataset", "tiny-test",
                 "-D", "n_items=80", "-D", "n_query=16", "--cache-dir", str(tmp / "cache"),
                 "--results", str(results), "--no-report"]) == 0
    runner = Runner(RunConfig(dataset="tiny-test", dataset_options={"n_items": 80, "n_query": 16},
                              cache=tmp / "cache", methods=["itq"], progress=False), echo=lambda s: None)
    rows = runner.inputs.role_rows()["union"]
    feats, _ = extract_features(runner.dataset, rows, runner.backbone, cache=tmp / "cache",
                                                   progress=False)
    split_file = next((results / "tiny-test" / "splits").glob("*.json"))
    data = runner.dataset
    return {
        "results": results,
        "metrics": _metrics(results),
        "features": np.asarray(feats),
        "labels": data.labels[rows],
        "ids": np.asarray(data.ids)[rows],
        "split": split_file,
        "tmp": tmp,
    }


@pytest.mark.parametrize("fmt", ["npz", "mat-v5", "mat-v73", "h5", "npy"])
def test_same_numbers_as_on_the_images_with_the_saved_split(reference, fmt, tmp_path):
    x, y, ids = reference["features"], reference["labels"], reference["ids"]
    opts = []
    if fmt == "npz":
        path = tmp_path / "feats.npz"
        np.savez(path, features=x, labels=y, ids=ids)
    elif fmt == "mat-v5":  # the MATLAB suites' names: fc7 and gnd, read with -D
        path = tmp_path / "feats.mat"
        scipy.io.savemat(path, {"fc7": x, "gnd": y, "ids": ids})
        opts = ["-D", "features=fc7", "-D", "labels=gnd"]
    elif fmt == "mat-v73":
        path = tmp_path / "feats.mat"
        _write_matlab_v73(path, {"X": x, "Y": y, "ids": ids})
    elif fmt == "h5":
        path = tmp_path / "feats.h5"
        with h5py.File(path, "w") as f:
            f["emb/feats"] = x
            f["emb/labels"] = y
            f["ids"] = ids.astype("S")
        opts = ["-D", "features=emb/feats", "-D", "labels=emb/labels"]
    else:
        path = tmp_path / "feats.npy"
        np.save(path, x)
        np.save(tmp_path / "labels.npy", y)
        np.save(tmp_path / "ids.npy", ids)
        opts = ["-D", "labels=labels.npy", "-D", "ids=ids.npy"]
    results = tmp_path / "results"
    code = main(["run", "--methods", METHODS, "--bits", "8,16", "-q", "--dataset", "features-file",
                 "--data-root", str(path), *opts, "--split", str(reference["split"]),
                 "--results", str(results), "--no-report"])
    assert code == 0
    got = _metrics(results)
    assert got == reference["metrics"]  # exactly: same features, same split, same order
    cell = next(iter(iter_cells(results)))
    assert cell.record["features"]["backbone"]["weights"] == "precomputed"
    assert path.name in cell.record["features"]["description"]


def _write(fmt: str, folder, arrays: dict, transpose: bool = False):
    """``arrays`` (features X, labels, ids, tags and tag names, 0-based split indices) in one format, as
    its users write it; returns (path, -D options). Features as columns when ``transpose``."""
    a = dict(arrays)
    if transpose:
        a["X"] = a["X"].T
    base = 1 if fmt.startswith("mat") else 0  # MATLAB indices are 1-based
    for role in ("query_index", "database_index", "train_index"):
        a[role] = a[role] + base
    if fmt == "npz":
        path = folder / "f.npz"
        np.savez(path, **a)
    elif fmt == "mat-v5":
        path = folder / "f.mat"
        a["ids"] = np.array(list(a["ids"]), dtype=object)  # a cell array of strings
        scipy.io.savemat(path, a)
    elif fmt == "mat-v73":
        path = folder / "f.mat"
        _write_matlab_v73(path, a)  # ids and tag names as char matrices
    elif fmt == "h5":
        path = folder / "f.h5"
        with h5py.File(path, "w") as f:
            for k, v in a.items():
                f[f"grp/{k}"] = v.astype("S") if v.dtype.kind == "U" else v
        opts = {k: f"grp/{k}" for k in ("ids", "tags", "tag_names")}
        opts.update(features="grp/X", labels="grp/labels", query="grp/query_index",
                    database="grp/database_index", train="grp/train_index")
        return path, opts
    else:
        path = folder / "f.npy"
        np.save(path, a.pop("X"))
        for k, v in a.items():
            np.save(folder / f"{k}.npy", v)
        return path, {"labels": "labels.npy", "ids": "ids.npy", "tags": "tags.npy", "tag_names": "tag_names.npy",
                      "query": "query_index.npy", "database": "database_index.npy", "train": "train_index.npy"}
    return path, {}


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("fmt", ["npz", "mat-v5", "mat-v73", "h5", "npy"])
def test_every_format_reads_back_exactly_what_was_written(tmp_path, fmt, transpose):
    """Features, labels, ids, tags and the split of each format, as written, without a run: rows stay rows
    (MATLAB's column-major HDF5 and items stored as columns included), indices keep their base, text stays
    text; and what the dataset records about the file names it."""
    from hashbench.storage import file_digest

    rng = np.random.default_rng(6)
    n = 12
    tags = (rng.random((n, 4)) < 0.5).astype(np.uint8)
    arrays = {"X": rng.standard_normal((n, 5)), "labels": (rng.random((n, 3)) < 0.4).astype(np.uint8),
              "ids": np.array([f"img{i:03d}" for i in rng.permutation(n)]), "tags": tags,
              "tag_names": np.array(["sky", "ocean", "dog", "cat"]), "query_index": np.arange(0, 3),
              "database_index": np.arange(3, n), "train_index": np.arange(5, n)}
    path, opts = _write(fmt, tmp_path, arrays, transpose)
    if fmt in ("npz", "mat-v5", "mat-v73"):
        opts = {"features": "X"}  # the rest by their default names
    ds = get_dataset("features-file", root=path, transpose=transpose, **opts)
    feats, info = ds.precomputed_features(np.arange(n))
    np.testing.assert_allclose(feats, arrays["X"].astype(np.float32))
    assert feats.dtype == np.float32 and ds.layout == "matrix" and len(ds) == n
    np.testing.assert_array_equal(ds.labels, arrays["labels"])
    assert ds.ids == list(arrays["ids"])
    assert ds.tags == [[w for w, t in zip(arrays["tag_names"], row) if t] for row in tags]
    split = ds.make_split(5)  # the file's split, whatever the seed
    assert split.protocol == "file"
    for role in ("query", "database", "train"):
        np.testing.assert_array_equal(getattr(split, role), arrays[f"{role}_index"])
    fvar = path.name if fmt == "npy" else opts["features"]
    assert ds.variables["features"] == fvar and set(ds.variables) >= {"labels", "ids", "tags", "query"}
    sha = file_digest(path)[:16]
    assert ds.config == {"file": path.name, "sha256": sha, "variables": ds.variables, "layout": "matrix",
                         "transpose": transpose, "n_query": None}
    assert ds.results_key() == "features-file-f"
    assert ds.feature_spec().to_dict() == {"name": "features-file", "weights": "precomputed", "file": path.name,
                                           "sha256": sha, "variable": fvar, "dim": 5}
    assert info["cache_key"] == f"file:{path.name}@{sha}" and info["dim"] == 5 and info["provided"] is True
    assert info["backbone"] == ds.feature_spec().to_dict() and fvar in info["description"]
    part, _ = ds.precomputed_features(np.array([7, 2]))
    np.testing.assert_allclose(part, arrays["X"][[7, 2]].astype(np.float32))


def test_labels_ids_and_indices_in_the_forms_files_hold_them(tmp_path):
    rng = np.random.default_rng(8)
    x = rng.random((6, 3))
    # class ids stored as doubles (MATLAB), as a column; numeric ids stored as doubles
    p = tmp_path / "doubles.mat"
    scipy.io.savemat(p, {"X": x, "gnd": np.array([[1.0], [3.0], [2.0], [1.0], [3.0], [2.0]]),
                         "ids": np.array([10.0, 11, 12, 13, 14, 15])})
    ds = get_dataset("features-file", root=p)
    assert ds.labels.dtype == np.int64 and ds.labels.tolist() == [1, 3, 2, 1, 3, 2]
    assert ds.ids == ["10", "11", "12", "13", "14", "15"] and ds.label_names == ["1", "2", "3"]
    # no split in the file: a seeded random one; no ids: row numbers
    p = tmp_path / "plain.npz"
    np.savez(p, features=x, labels=np.array([0, 1, 0, 1, 0, 1]))
    ds = get_dataset("features-file", root=p, n_query=2)
    assert ds.ids == [str(i) for i in range(6)] and ds.config["n_query"] == 2
    a, b = ds.make_split(0), ds.make_split(0)
    np.testing.assert_array_equal(a.query, b.query)
    assert a.protocol == "random" and a.query.size == 2 and a.database.size == 4
    # non-integral class ids, NaN labels, non-integral indices: refused, naming the variable
    for labels, message in ((np.array([0.5, 1, 0, 1, 0, 1]), "class labels must be integers"),
                            (np.array([np.nan, 1, 0, 1, 0, 1]), "labels contain NaN or inf")):
        p = tmp_path / "bad.npz"
        np.savez(p, features=x, labels=labels)
        with pytest.raises(DataError, match=rf"bad\.npz: variable 'labels': {message}"):
            get_dataset("features-file", root=p)
    p = tmp_path / "idx.npz"
    np.savez(p, features=x, labels=np.zeros(6, int), query_index=np.array([0.5]), database_index=np.arange(1, 6),
             train_index=np.arange(1, 6))
    with pytest.raises(DataError, match=r"variable 'query_index' \(query indices\): must be integers"):
        get_dataset("features-file", root=p)
    # a .npy of features and labels in another folder, named by an absolute path
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "elsewhere").mkdir()
    np.save(tmp_path / "elsewhere" / "y.npy", np.arange(6) % 2)
    ds = get_dataset("features-file", root=tmp_path / "x.npy", labels=str(tmp_path / "elsewhere" / "y.npy"))
    assert ds.labels.tolist() == [0, 1, 0, 1, 0, 1]


def test_image_methods_are_refused_and_all_skips_them(tmp_path):
    path = tmp_path / "f.npz"
    rng = np.random.default_rng(0)
    np.savez(path, features=rng.random((60, 8), dtype=np.float32), labels=rng.integers(0, 3, 60))
    cfg = dict(dataset="features-file", data_root=path, results=tmp_path / "r", progress=False)
    with pytest.raises(ConfigError, match="'usdh-e2e' learns from images.*features-file.*precomputed"):
        Runner(RunConfig(methods=["usdh-e2e"], **cfg), echo=lambda s: None)
    with pytest.raises(ConfigError, match="learns from tags"):
        Runner(RunConfig(methods=["udht-frozen"], **cfg), echo=lambda s: None)
    methods = Runner(RunConfig(methods=["all"], **cfg), echo=lambda s: None).methods
    assert "itq" in methods and "usdh" in methods and "pludh" in methods
    assert not {"udht", "tag-binary-e2e", "usdh-e2e", "pludh-e2e", "udht-frozen"} & set(methods)
    with pytest.raises(ConfigError, match="--backbone and --weights do not apply"):
        Runner(RunConfig(methods=["itq"], backbone="vgg19", **cfg), echo=lambda s: None)
    # no split in the file: a seeded random one, min(1000, n // 10) queries
    ds = get_dataset("features-file", root=path)
    assert ds.make_split(0).sizes() == {"query": 6, "database": 54, "train": 54}
    with pytest.raises(DataError, match="has no images"):
        ds.load_image(0)


def test_tags_in_the_file_feed_tag_methods(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "tagged.mat"
    tags = (rng.random((50, 4)) < 0.5).astype(np.uint8)
    scipy.io.savemat(path, {"features": rng.random((50, 6)), "labels": rng.integers(0, 2, (50, 3)),
                            "tags": tags, "tag_names": np.array(["sky", "sea", "dog", "cat"])})
    ds = get_dataset("features-file", root=path)
    assert ds.has_tags and ds.labels.shape == (50, 3) and ds.labels.dtype == np.uint8
    assert ds.tags[0] == [n for n, t in zip(["sky", "sea", "dog", "cat"], tags[0]) if t]


def test_tag_names_stored_as_hdf5_strings_are_text(tmp_path):
    rng = np.random.default_rng(7)
    path = tmp_path / "tagged.h5"
    with h5py.File(path, "w") as f:
        f["features"], f["labels"] = rng.random((8, 3)), rng.integers(0, 2, 8)
        f["tags"] = np.eye(8, 2, dtype=np.uint8)
        f["tag_names"] = np.array(["sky", "sea"]).astype("S")  # h5py's usual strings: bytes
    ds = get_dataset("features-file", root=path)
    assert ds.tags[0] == ["sky"] and ds.tags[1] == ["sea"] and ds.tags[2] == []


def test_prepare_says_the_features_come_from_the_file(tmp_path, capsys):
    rng = np.random.default_rng(2)
    path = tmp_path / "feats.mat"
    scipy.io.savemat(path, {"features": rng.random((60, 6)), "labels": rng.integers(0, 2, (60, 3))})
    assert main(["-q", "prepare", "features-file", "--root", str(path), "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "features: " in out and "read from the dataset's file" in out and "already cached" not in out
    assert not (tmp_path / "cache" / "features").exists() or not list((tmp_path / "cache" / "features").iterdir())


def test_train_test_layout_of_the_matlab_suites(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "cifar_gist.mat"
    scipy.io.savemat(path, {"traindata": rng.random((40, 5)), "testdata": rng.random((10, 5)),
                            "traingnd": rng.integers(1, 4, (40, 1)), "testgnd": rng.integers(1, 4, (10, 1))})
    ds = get_dataset("features-file", root=path)
    split = ds.make_split(123)  # the file's split, whatever the seed
    assert ds.layout == "train-test" and len(ds) == 50
    np.testing.assert_array_equal(split.query, np.arange(40, 50))
    np.testing.assert_array_equal(split.database, np.arange(40))
    assert split.protocol == "file"


@pytest.mark.parametrize("fmt", ["mat-v5", "mat-v73"])
def test_train_test_layout_trains_on_the_training_rows_only(tmp_path, fmt):
    """The test rows are the queries; they never enter the training role (nor the database)."""
    rng = np.random.default_rng(5)
    arrays = {"traindata": rng.random((30, 4)), "testdata": rng.random((6, 4)) + 10.0,  # test rows stand out
              "traingnd": rng.integers(1, 4, (30, 1)), "testgnd": rng.integers(1, 4, (6, 1))}
    path = tmp_path / "suite.mat"
    if fmt == "mat-v5":
        scipy.io.savemat(path, arrays)
    else:
        _write_matlab_v73(path, arrays)
    ds = get_dataset("features-file", root=path)
    split = ds.make_split(0)
    np.testing.assert_array_equal(split.train, np.arange(30))
    train_x, _ = ds.precomputed_features(split.train)
    np.testing.assert_allclose(train_x, arrays["traindata"].astype(np.float32))
    np.testing.assert_array_equal(ds.labels[split.train], arrays["traingnd"].ravel())
    query_x, _ = ds.precomputed_features(split.query)
    np.testing.assert_allclose(query_x, arrays["testdata"].astype(np.float32))
    assert not set(split.train) & set(split.query) and not set(split.database) & set(split.query)


def test_split_indices_in_the_file_are_one_based_in_mat_files(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "s.mat"
    scipy.io.savemat(path, {"X": rng.random((20, 4)), "Y": rng.integers(0, 2, 20),
                            "query_index": np.arange(1, 6), "database_index": np.arange(6, 21),
                            "train_index": np.arange(6, 21)})
    split = get_dataset("features-file", root=path).make_split()
    np.testing.assert_array_equal(split.query, np.arange(0, 5))
    np.testing.assert_array_equal(split.database, np.arange(5, 20))
    with pytest.raises(DataError, match=r"'database_index'.*out of range"):
        get_dataset("features-file", root=path, index_base=0)


def test_bad_input_names_the_file_and_the_variable(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.random((30, 6)).astype(np.float32)
    # shape mismatch
    p = tmp_path / "mismatch.npz"
    np.savez(p, features=x, labels=rng.integers(0, 3, 29))
    with pytest.raises(DataError, match=r"mismatch\.npz: variable 'features' has 30 rows but labels variable "
                                        r"'labels' has 29"):
        get_dataset("features-file", root=p)
    # items as columns: the error suggests -D transpose=true, which then works
    p = tmp_path / "columns.mat"
    scipy.io.savemat(p, {"X": x.T, "Y": rng.integers(0, 3, 30)})
    with pytest.raises(DataError, match="transpose=true"):
        get_dataset("features-file", root=p)
    assert len(get_dataset("features-file", root=p, transpose=True)) == 30
    # NaN rows
    bad = x.copy()
    bad[[7, 12], 2] = np.nan
    p = tmp_path / "nan.h5"
    with h5py.File(p, "w") as f:
        f["features"], f["labels"] = bad, rng.integers(0, 3, 30)
    with pytest.raises(DataError, match=r"nan\.h5: variable 'features': 2 row\(s\) contain NaN or inf \(first: row 7\)"):
        get_dataset("features-file", root=p)
    # a missing variable name, given or defaulted: the file's variables are listed
    p = tmp_path / "named.npz"
    np.savez(p, emb=x, cls=rng.integers(0, 3, 30))
    with pytest.raises(DataError, match=r"named\.npz: no variable 'fc7' \(-D features=fc7\); the file has: cls, emb"):
        get_dataset("features-file", root=p, features="fc7", labels="cls")
    with pytest.raises(DataError, match=r"named\.npz: no features variable among the default names.*-D features="):
        get_dataset("features-file", root=p)
    # labels that are neither class ids nor 0/1
    p = tmp_path / "labels.npz"
    np.savez(p, features=x, labels=rng.random((30, 3)))
    with pytest.raises(DataError, match=r"labels\.npz: variable 'labels': a label matrix must hold only 0 and 1"):
        get_dataset("features-file", root=p)
    # a .npy without its labels file; a file that does not exist; an unknown type
    p = tmp_path / "only.npy"
    np.save(p, x)
    with pytest.raises(DataError, match="give the labels with -D labels="):
        get_dataset("features-file", root=p)
    with pytest.raises(DataError, match="labels file .*missing.npy does not exist"):
        get_dataset("features-file", root=p, labels="missing.npy")
    with pytest.raises(DataError, match="no such file"):
        get_dataset("features-file", root=tmp_path / "absent.npz")
    (tmp_path / "f.csv").write_text("1,2\n")
    with pytest.raises(ConfigError, match="unsupported feature file type"):
        get_dataset("features-file", root=tmp_path / "f.csv")
    # duplicate ids
    p = tmp_path / "dup.npz"
    np.savez(p, features=x, labels=rng.integers(0, 3, 30), ids=np.array(["a"] * 30))
    with pytest.raises(DataError, match=r"dup\.npz: variable 'ids': ids are not unique"):
        get_dataset("features-file", root=p)


def test_saved_split_json_round_trips_through_the_file(reference, tmp_path):
    """The split file names ids: a feature file whose rows are in another order still gets the same roles."""
    x, y, ids = reference["features"], reference["labels"], reference["ids"]
    order = np.random.default_rng(0).permutation(len(ids))
    path = tmp_path / "shuffled.npz"
    np.savez(path, features=x[order], labels=y[order], ids=ids[order])
    from hashbench.datasets.prepare import load_split

    ds = get_dataset("features-file", root=path)
    split = load_split(reference["split"], ds)
    saved = json.loads(reference["split"].read_text())
    assert [ds.ids[i] for i in split.query] == saved["query"]
