"""python -m hashbench cache: list the cache, find what no current version can use, clean it."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from hashbench import tags as tags_module
from hashbench.cache import CURRENT, IN_USE, STALE, UNKNOWN, scan_cache
from hashbench.cli import main
from hashbench.datasets import get_dataset
from hashbench.features import BackboneSpec, extract_features
from hashbench.features import extract as extract_module

SPEC = BackboneSpec(weights="random", resize=64, crop=64)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def _built_cache(tmp_path_factory):
    """A cache folder with real entries written by this version and by older ones (built once)."""
    root = tmp_path_factory.mktemp("cache-source") / "cache"
    with pytest.MonkeyPatch.context() as monkeypatch:
        made = _build(root, monkeypatch)
    return root, made


@pytest.fixture
def cache(_built_cache, tmp_path):
    """A fresh copy of it for each test (the tests remove entries)."""
    source, made = _built_cache
    root = tmp_path / "cache"
    shutil.copytree(source, root)
    return root, made


def _build(root, monkeypatch):
    ds = get_dataset("tiny-test")
    made = {}
    _, info = extract_features(ds, np.arange(40), SPEC, cache=root, progress=False)
    made["features"] = info["cache_key"]
    with monkeypatch.context() as m:  # what version 2 wrote (its key and its sidecar's version differ)
        m.setattr(extract_module, "CACHE_VERSION", 2)
        _, info = extract_features(ds, np.arange(30), SPEC, cache=root, progress=False)
        made["features_v2"] = info["cache_key"]
    # what hashbench wrote before sidecars recorded the version: a pre-He random backbone (no 'init')
    # and ImageNet weights (version unknowable), made from a real entry by taking those fields out
    for name, edit in (("features_legacy_random", {"init": None}), ("features_legacy_imagenet", {"weights": "imagenet"})):
        key = f"{name.replace('_', '')[:24]:0<24}"
        shutil.copy(root / "features" / f"{made['features']}.npy", root / "features" / f"{key}.npy")
        meta = json.loads((root / "features" / f"{made['features']}.json").read_text())
        del meta["cache_version"]
        meta["key"] = key
        for field, value in edit.items():
            meta["backbone"].pop(field, None) if value is None else meta["backbone"].update({field: value})
        (root / "features" / f"{key}.json").write_text(json.dumps(meta))
        made[name] = key
    # an .npy without its sidecar, and the temporary files of a dead and of a live process
    (root / "features" / "0123456789abcdef01234567.npy").write_bytes(b"\x93NUMPY")
    (root / "features" / f".feedfacefeedfacefeedface.{_dead_pid()}.tmp.npy").write_bytes(b"x" * 10)
    (root / "features" / f".cafebabecafebabecafebabe.{os.getpid()}.tmp.npy").write_bytes(b"x" * 10)

    tag_sets = [t for t in ds.tags]
    _, info = tags_module.load_word_vectors("trained", tags=tag_sets, cache=root)
    made["vectors"] = info["cache_key"]
    with monkeypatch.context() as m:
        m.setattr(tags_module, "TRAINED_VERSION", 0)
        _, info = tags_module.load_word_vectors("trained", tags=tag_sets, cache=root)
        made["vectors_v0"] = info["cache_key"]
    _, info = tags_module.load_word_vectors("trained", tags=tag_sets, cache=root, train_params={"epochs": 2})
    folder = root / "wordvectors" / info["cache_key"]
    meta = json.loads((folder / "info.json").read_text())
    (folder / "info.json").write_text(json.dumps({**meta, "gensim": "3.8.3"}))  # another gensim trained it
    made["vectors_other_gensim"] = info["cache_key"]
    _, info = tags_module.load_word_vectors("trained", tags=tag_sets, cache=root, train_params={"epochs": 3})
    (root / "wordvectors" / info["cache_key"] / "info.json").unlink()  # written before info.json existed
    made["vectors_legacy"] = info["cache_key"]
    (root / "notes.txt").write_text("mine")
    return made


def test_every_entry_is_listed_with_what_it_is_and_whether_it_can_be_used(cache):
    root, made = cache
    contents = scan_cache(root)
    status = {e.key: e for e in contents.entries}
    assert status[made["features"]].status == CURRENT
    f = status[made["features"]]
    assert (f.dataset, f.items, f.version) == ("tiny-test", 40, "3") and "random seed 0 64/64px" in f.description
    assert f.size == sum(p.stat().st_size for p in f.paths) > 40 * 4096 * 4
    assert status[made["features_v2"]].status == STALE and "cache version 2" in status[made["features_v2"]].reason
    assert status[made["features_legacy_random"]].status == STALE
    assert "before He initialisation" in status[made["features_legacy_random"]].reason
    assert status[made["features_legacy_imagenet"]].status == UNKNOWN
    assert status["0123456789abcdef01234567"].status == STALE
    assert "sidecar" in status["0123456789abcdef01234567"].reason or "missing" in status["0123456789abcdef01234567"].reason
    temps = {e.key: e for e in contents.entries if e.kind == "temporary"}
    assert sorted(e.status for e in temps.values()) == [IN_USE, STALE]

    import gensim

    assert status[made["vectors"]].status == CURRENT
    assert status[made["vectors"]].version == f"1, gensim {gensim.__version__}"
    assert status[made["vectors_v0"]].status == STALE and "recipe version 0" in status[made["vectors_v0"]].reason
    assert status[made["vectors_other_gensim"]].status == STALE
    assert "gensim 3.8.3" in status[made["vectors_other_gensim"]].reason
    # no info.json: the gensim version is read from gensim's own save record in the file
    assert status[made["vectors_legacy"]].status == CURRENT
    assert status[made["vectors_legacy"]].version == f"1, gensim {gensim.__version__}"
    assert status["notes.txt"].kind == "other"
    assert contents.size == sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_cache_command_lists_and_clear_stale_keeps_what_is_usable(cache, capsys):
    root, made = cache
    assert main(["cache", "--cache-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert str(root) in out and "tiny-test" in out and "cache version 3" in out and "word vectors" in out
    assert "6 stale entries" in out and "--clear-stale" in out
    assert main(["cache", "--cache-dir", str(root), "--clear-stale"]) == 0
    assert "removed 6 entries" in capsys.readouterr().out
    left = {e.key: e.status for e in scan_cache(root).entries}
    assert {made["features"], made["vectors"], made["vectors_legacy"], made["features_legacy_imagenet"]} <= set(left)
    assert STALE not in left.values()
    assert (root / "notes.txt").read_text() == "mine"
    # what was kept is still used: no recomputation
    _, info = extract_features(get_dataset("tiny-test"), np.arange(40), SPEC, cache=root, progress=False)
    assert info["cache_hit"]
    _, info = tags_module.load_word_vectors("trained", tags=get_dataset("tiny-test").tags, cache=root)
    assert info["cache_hit"]


def test_clear_asks_first_unless_yes(cache, capsys, monkeypatch):
    root, _ = cache
    files = sorted(root.rglob("*"))
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    assert main(["cache", "--cache-dir", str(root), "--clear"]) == 1
    assert "nothing removed" in capsys.readouterr().out
    assert sorted(root.rglob("*")) == files
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    assert main(["cache", "--cache-dir", str(root), "--clear"]) == 0
    out = capsys.readouterr().out
    assert "remove all" in out and "freed" in out
    left = scan_cache(root).entries
    # only the file the cache does not know, and the temporary file of a live process, remain
    assert sorted(e.kind for e in left) == ["other", "temporary"]
    assert [e.status for e in left if e.kind == "temporary"] == [IN_USE]
    (next(root.glob("features/.*"))).unlink()
    assert main(["cache", "--cache-dir", str(root), "--clear", "--yes"]) == 0
    assert "removed 0 entries" in capsys.readouterr().out


def test_an_empty_or_missing_cache_is_said_so(tmp_path, capsys):
    assert main(["cache", "--cache-dir", str(tmp_path / "none")]) == 0
    assert "empty" in capsys.readouterr().out
