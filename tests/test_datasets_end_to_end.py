"""Each real dataset through ``python -m hashbench run`` and ``prepare`` on its tiny fixture.

The fixtures are written in the publishers' layouts (tests/dataset_fixtures.py);
features come from a seeded random AlexNet (no ImageNet weights offline).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import hashbench
from hashbench.cli import main
from hashbench.datasets import get_dataset
from hashbench.datasets.prepare import load_split
from hashbench.hasher import Hasher
from hashbench.registry import register_method, unregister_method

from .dataset_fixtures import write_cifar10, write_manifest, write_mirflickr, write_nuswide

CASES = {
    "mirflickr25k": (write_mirflickr, ["-D", "min_tag_count=2", "-D", "n_query=4", "-D", "n_database=20"]),
    "nuswide": (write_nuswide, ["-D", "top_labels=4", "-D", "n_query=5", "-D", "n_database=null"]),
    "cifar10": (write_cifar10, ["-D", "n_query_per_class=2", "-D", "n_train_per_class=3"]),
    "manifest": (write_manifest, ["-D", "n_query=5"]),
}


def _run(tmp_path, name, *extra):
    writer, options = CASES[name]
    root = tmp_path / "data"
    writer(root)
    argv = ["-q", "run", "--dataset", name, "--data-root", str(root), *options, "--methods", "lsh,itq",
            "--bits", "8", "--seeds", "0", "--results", str(tmp_path / "res"), "--cache-dir",
            str(tmp_path / "cache"), "--weights", "random", "--no-report", *extra]
    return root, options, main(argv)


@pytest.mark.parametrize("name", sorted(CASES))
def test_run_on_fixture_stores_results_and_a_loadable_split(tmp_path, name, capsys):
    root, options, rc = _run(tmp_path, name)
    assert rc == 0, capsys.readouterr().err
    frame = hashbench.load_results(tmp_path / "res")
    assert sorted(frame.method) == ["itq", "lsh"] and set(frame.bits) == {8}
    assert np.isfinite(frame["mAP@all"]).all() and (frame["mAP@all"] > 0).all()
    # the split is stored as item ids, disjoint, and rebuilds the very same roles
    (split_file,) = (tmp_path / "res").glob("*/splits/*.json")
    saved = json.loads(split_file.read_text())
    assert not set(saved["query"]) & set(saved["database"])
    opts = {k: json.loads(v) if v[:1].isdigit() or v in ("null", "true", "false") else v
            for k, v in (o.split("=", 1) for o in options[1::2])}
    dataset = get_dataset(name, root=root, **opts)
    loaded = load_split(split_file, dataset)
    fresh = dataset.make_split(0)
    for role in ("query", "database", "train"):
        np.testing.assert_array_equal(getattr(loaded, role), getattr(fresh, role))
    # --split FILE runs on the saved split: same cells, nothing recomputed
    _, _, rc = _run(tmp_path, name, "--split", str(split_file))
    assert rc == 0
    assert "0 cell(s) computed, 2 already done" in capsys.readouterr().out


def test_image_only_dataset_refuses_tag_methods(tmp_path, capsys):
    @register_method("tag-user-test")
    class TagUser(Hasher):
        """Needs tags (test only)."""

        requires = frozenset({"features", "tags"})

        def _fit(self, features, **inputs):
            self.w_ = np.ones((features.shape[1], self.bits))

        def _encode(self, features, **inputs):
            return features @ self.w_ > 0

    try:
        root = tmp_path / "data"
        write_cifar10(root)
        rc = main(["-q", "run", "--dataset", "cifar10", "--data-root", str(root), "--methods", "tag-user-test",
                   "--bits", "8", "--results", str(tmp_path / "res"), "--weights", "random", "--no-report",
                   "-D", "n_query_per_class=2", "-D", "n_train_per_class=3"])
        err = capsys.readouterr().err
        assert rc == 2
        assert "tag-user-test" in err and "no tags" in err and "cifar10" in err
    finally:
        unregister_method("tag-user-test")


def test_prepare_reports_counts_missing_images_and_builds_the_cache(tmp_path, capsys):
    root = tmp_path / "nus"
    written = write_nuswide(root, missing=(20, 21, 22))
    rc = main(["-q", "prepare", "nuswide", "--root", str(root), "-D", "top_labels=4", "-D", "n_query=5",
               "-D", "n_database=30", "--weights", "random", "--cache-dir", str(tmp_path / "cache")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "5 queries, 30 database, 30 train; query/database overlap 0" in out
    assert "relevant query-database pairs" in out
    assert "skipped images: 3" in out and all(i in out for i in written.missing)
    assert "features:" in out and "extracted in" in out
    assert list((tmp_path / "cache" / "features").glob("*.npy"))
    # a second prepare finds the features in the cache
    main(["-q", "prepare", "nuswide", "--root", str(root), "-D", "top_labels=4", "-D", "n_query=5",
          "-D", "n_database=30", "--weights", "random", "--cache-dir", str(tmp_path / "cache")])
    assert "already cached" in capsys.readouterr().out


def test_a_corrupt_image_stops_the_run_naming_it_or_is_skipped_and_recorded(tmp_path, capsys):
    root = tmp_path / "data"
    write_mirflickr(root, corrupt=(15,))
    argv = ["-q", "run", "--dataset", "mirflickr25k", "--data-root", str(root), *CASES["mirflickr25k"][1],
            "--methods", "lsh", "--bits", "8", "--results", str(tmp_path / "res"), "--cache-dir",
            str(tmp_path / "cache"), "--weights", "random", "--no-report"]
    assert main(argv) == 2
    assert "mirflickr/im15.jpg: image does not decode" in capsys.readouterr().err
    assert main([*argv, "--skip-corrupt"]) == 0
    stats = json.loads((tmp_path / "res" / "mirflickr25k" / "dataset.json").read_text())["statistics"]
    assert stats["skipped_images"] == 1 and "im15" in stats["skipped_examples"]
    assert stats["items"] == 29


def test_two_label_sets_share_a_results_folder_side_by_side(tmp_path, capsys):
    """MIRFLICKR with 24 and with 38 labels: two folders, neither run refuses the other's results."""
    root = tmp_path / "data"
    write_mirflickr(root)
    base = ["-q", "run", "--dataset", "mirflickr25k", "--data-root", str(root), *CASES["mirflickr25k"][1],
            "--methods", "lsh", "--bits", "8", "--results", str(tmp_path / "res"), "--cache-dir",
            str(tmp_path / "cache"), "--weights", "random", "--no-report"]
    assert main(base) == 0
    assert main([*base, "-D", "label_set=38"]) == 0
    assert main([*base, "-D", "label_set=24"]) == 0  # the default, spelled out: the first folder, already done
    out = capsys.readouterr().out
    assert "0 cell(s) computed, 1 already done" in out
    assert sorted(p.name for p in (tmp_path / "res").iterdir() if p.is_dir()) == [
        "mirflickr25k", "mirflickr25k-label_set38"]
    frame = hashbench.load_results(tmp_path / "res")
    assert sorted(frame.dataset) == ["mirflickr25k", "mirflickr25k-label_set38"]
