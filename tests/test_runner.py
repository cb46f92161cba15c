"""The runner and the CLI end to end: grid, resume, atomic cells, concurrency, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hashbench
from hashbench import ConfigError, ResultsError
from hashbench.cli import main
from hashbench.runner import RunConfig, run
from hashbench.store import iter_cells

from .conftest import REPO

TINY = ["--dataset", "tiny-test", "--no-report", "-q"]


def _cli(tmp_path, *args):
    return main([*args[:1], *TINY, "--results", str(tmp_path / "res"), *args[1:]]) if args[0] == "run" else main(list(args))


def test_run_grid_writes_every_cell_and_resumes(tmp_path, capsys):
    assert _cli(tmp_path, "run", "--methods", "lsh,itq", "--bits", "8,16", "--seeds", "0,1") == 0
    frame = hashbench.load_results(tmp_path / "res")
    assert len(frame) == 2 * 2 * 2
    assert set(frame.method) == {"lsh", "itq"} and set(frame.bits) == {8, 16}
    # a tiny dataset of 4 well-separated colours: ITQ must rank far above chance
    itq = frame[frame.method == "itq"]
    assert (itq["mAP@all"] > itq["chance"] + 0.1).all()
    out = capsys.readouterr().out
    assert "8 cell(s) computed, 0 already done" in out
    # the split is saved as ids and loadable
    split_files = list((tmp_path / "res" / "tiny-test" / "splits").glob("*.json"))
    assert len(split_files) == 1
    split = json.loads(split_files[0].read_text())
    assert len(split["query"]) == 16 and not set(split["query"]) & set(split["database"])
    # same command again: nothing recomputed
    mtimes = {c.path: (c.path / "cell.json").stat().st_mtime_ns for c in iter_cells(tmp_path / "res")}
    assert _cli(tmp_path, "run", "--methods", "lsh,itq", "--bits", "8,16", "--seeds", "0,1") == 0
    assert "0 cell(s) computed, 8 already done" in capsys.readouterr().out
    assert mtimes == {c.path: (c.path / "cell.json").stat().st_mtime_ns for c in iter_cells(tmp_path / "res")}
    # --force recomputes, with the same codes (seeded)
    before = {c.path: c.load_codes()[1] for c in iter_cells(tmp_path / "res")}
    assert _cli(tmp_path, "run", "--methods", "lsh,itq", "--bits", "8,16", "--seeds", "0,1", "--force") == 0
    assert "8 cell(s) computed" in capsys.readouterr().out
    for c in iter_cells(tmp_path / "res"):
        np.testing.assert_array_equal(c.load_codes()[1], before[c.path])


def test_cell_records_config_versions_hardware_and_timings(tmp_path):
    assert _cli(tmp_path, "run", "--methods", "itq", "--bits", "8") == 0
    (cell,) = list(iter_cells(tmp_path / "res"))
    r = cell.record
    assert r["method"]["params"] == {"bits": 8, "seed": 0, "n_iter": 50} or r["method"]["params"]["bits"] == 8
    assert r["features"]["backbone"]["weights"] == "random"
    assert "not ImageNet" in r["features"]["description"]
    assert r["provenance"]["libraries"]["numpy"] == np.__version__
    assert r["provenance"]["hardware"]["cores"] == os.cpu_count()
    assert r["provenance"]["code_version"].startswith(hashbench.__version__)
    assert {"fit_s", "encode_s", "evaluate_s"} <= set(r["timings"])
    assert r["evaluation"]["ties"] == "random" and r["evaluation"]["empty"] == "zero"
    assert len(r["history"]["quantization_loss"]) == r["method"]["params"]["n_iter"] == hashbench.create("itq").n_iter
    assert r["dataset"]["split"]["sizes"] == {"query": 16, "database": 64, "train": 64}


def test_features_are_cached_between_runs(tmp_path, capsys):
    cache = tmp_path / "cache"
    args = ["--methods", "lsh", "--bits", "8", "--cache-dir", str(cache)]
    assert _cli(tmp_path, "run", *args) == 0
    assert "features: extracted" in capsys.readouterr().out
    assert _cli(tmp_path, "run", *args, "--force") == 0
    assert "features: read from cache" in capsys.readouterr().out
    assert len(list((cache / "features").glob("*.npy"))) == 1


def test_corrupt_cell_is_recomputed(tmp_path, capsys):
    assert _cli(tmp_path, "run", "--methods", "lsh", "--bits", "8,16") == 0
    (cell,) = [c for c in iter_cells(tmp_path / "res") if c.record["bits"] == 16]
    (cell.path / "cell.json").write_text('{"schema_version": 1, "files": ')  # half-written
    with pytest.warns(UserWarning, match="corrupt results cell"):
        assert _cli(tmp_path, "run", "--methods", "lsh", "--bits", "8,16") == 0
    out = capsys.readouterr().out
    assert "1 cell(s) computed, 1 already done" in out
    assert len(list(iter_cells(tmp_path / "res"))) == 2


def test_results_of_another_configuration_are_not_overwritten(tmp_path, capsys):
    assert _cli(tmp_path, "run", "--methods", "itq", "--bits", "8") == 0
    assert _cli(tmp_path, "run", "--methods", "itq", "--bits", "8", "--param", "itq.n_iter=3") == 2
    err = capsys.readouterr().err
    assert "would be overwritten" in err and "cell.json" in err and "--force" in err
    assert _cli(tmp_path, "run", "--methods", "itq", "--bits", "8", "--param", "itq.n_iter=3", "--force") == 0
    (cell,) = list(iter_cells(tmp_path / "res"))
    assert cell.record["method"]["params"]["n_iter"] == 3


def test_older_results_folder_gets_a_clear_error(tmp_path, capsys):
    assert _cli(tmp_path, "run", "--methods", "lsh", "--bits", "8") == 0
    (cell,) = list(iter_cells(tmp_path / "res"))
    rec = json.loads((cell.path / "cell.json").read_text())
    rec["schema_version"] = 0
    (cell.path / "cell.json").write_text(json.dumps(rec))
    assert _cli(tmp_path, "run", "--methods", "lsh", "--bits", "8") == 2
    err = capsys.readouterr().err
    assert str(cell.path / "cell.json") in err and "schema 0" in err
    assert json.loads((cell.path / "cell.json").read_text())["schema_version"] == 0  # untouched


@pytest.mark.parametrize(
    "args, message",
    [
        (["--methods", "nope"], "unknown method 'nope'; known methods:"),
        (["--methods", "lsh", "--dataset", "nope"], "unknown dataset 'nope'; known datasets:"),
        (["--methods", "lsh", "--bits", "0"], "bits must be a positive integer, got 0"),
        (["--methods", "itq", "--bits", "5000"], "itq: cannot produce 5000 bits"),
        (["--methods", "lsh", "--param", "itq.n_iter=3"], "parameters given for 'itq'"),
        (["--methods", "lsh", "--ties", "sorted"], "sorted"),
    ],
)
def test_bad_arguments_get_clear_errors(tmp_path, capsys, args, message):
    assert _cli(tmp_path, "run", *args) == 2
    assert message in capsys.readouterr().err


def test_tag_methods_refuse_an_image_only_dataset(tmp_path, capsys):
    plugin = tmp_path / "tagplugin.py"
    plugin.write_text(textwrap.dedent("""
        import numpy as np, hashbench
        @hashbench.register_method("needs-tags-test")
        class NeedsTags(hashbench.Hasher):
            requires = frozenset({"features", "tags"})
            def _fit(self, features, tags): pass
            def _encode(self, features): return np.zeros((len(features), self.bits), np.uint8)
    """))
    try:
        code = main(["--plugin", str(plugin), "run", *TINY, "--results", str(tmp_path / "res"),
                     "-D", "with_tags=false", "--methods", "needs-tags-test", "--bits", "8"])
        assert code == 2
        assert "learns from tags, but dataset 'tiny-test' has no tags" in capsys.readouterr().err
        # with "all", the tag method is left out and the others run
        cfg = RunConfig(dataset="tiny-test", dataset_options={"with_tags": False}, methods=["all"], bits=[8],
                        results=tmp_path / "res2", progress=False)
        from hashbench.runner import Runner
        assert "needs-tags-test" not in Runner(cfg, echo=lambda s: None).methods
    finally:
        hashbench.registry.unregister_method("needs-tags-test")


def test_list_shows_methods_datasets_backbones(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "itq" in out and "Gong" in out and "synthetic" in out and "alexnet-fc2" in out


def _killer_plugin(tmp_path):
    plugin = tmp_path / "killer.py"
    plugin.write_text(textwrap.dedent("""
        import os, signal, time
        import numpy as np, hashbench

        @hashbench.register_method("killer-test")
        class Killer(hashbench.Hasher):
            '''Sign of the first features; kills its own process (like kill -9) when told to.'''
            def __init__(self, bits=8, seed=0):
                super().__init__(bits=bits, seed=seed)
            def _fit(self, features):
                if os.environ.get("KILL_AT_BITS") == str(self.bits):
                    os.kill(os.getpid(), signal.SIGKILL)
                if os.environ.get("SLOW_FIT"):
                    time.sleep(float(os.environ["SLOW_FIT"]))
                self.mean_ = features[:, : self.bits].mean(axis=0)
            def _encode(self, features):
                return (features[:, : self.bits] > self.mean_).astype(np.uint8)
    """))
    return plugin


def _run_subprocess(tmp_path, plugin, env_extra, bits="4,8,12"):
    env = {**os.environ, **env_extra, "HASHBENCH_CACHE": str(tmp_path / "cache")}
    # a fresh process does not see the tests' tiny dataset: use a small synthetic set
    small = ["--dataset", "synthetic", "-D", "n_items=120", "-D", "n_query=20", "--no-report", "-q"]
    cmd = [sys.executable, "-m", "hashbench", "--plugin", str(plugin), "run", *small,
           "--results", str(tmp_path / "res"), "--methods", "killer-test", "--bits", bits]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kill_9_loses_only_the_cell_in_flight(tmp_path):
    plugin = _killer_plugin(tmp_path)
    proc = _run_subprocess(tmp_path, plugin, {"KILL_AT_BITS": "8"})
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    done = sorted(c.record["bits"] for c in iter_cells(tmp_path / "res"))
    assert done == [4]
    leftovers = [p for p in (tmp_path / "res").rglob(".*") if ".locks" not in p.parts and p.name != ".locks"]
    assert leftovers == []  # no half-written cell left behind
    proc = _run_subprocess(tmp_path, plugin, {})
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "2 cell(s) computed, 1 already done" in out
    assert sorted(c.record["bits"] for c in iter_cells(tmp_path / "res")) == [4, 8, 12]


def test_two_concurrent_runs_neither_corrupt_nor_duplicate(tmp_path):
    plugin = _killer_plugin(tmp_path)
    # warm the feature cache so both runs reach the cells together
    first = _run_subprocess(tmp_path, plugin, {}, bits="2")
    assert first.wait(timeout=300) == 0
    procs = [_run_subprocess(tmp_path, plugin, {"SLOW_FIT": "0.5"}, bits="4,6,8,10,12") for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    computed = [int(o.split(" cell(s) computed")[0].rsplit("\n", 1)[-1]) for o, _ in outs]
    assert sum(computed) == 5, outs  # every cell computed exactly once across the two runs
    assert sorted(c.record["bits"] for c in iter_cells(tmp_path / "res")) == [2, 4, 6, 8, 10, 12]


def test_saved_split_can_be_reloaded(tmp_path):
    assert _cli(tmp_path, "run", "--methods", "lsh", "--bits", "8", "--split-seed", "3") == 0
    (split_file,) = list((tmp_path / "res" / "tiny-test" / "splits").glob("*.json"))
    cfg = RunConfig(dataset="tiny-test", methods=["lsh"], bits=[8], results=tmp_path / "res2",
                    split_file=split_file, progress=False)
    summary = run(cfg, echo=lambda s: None)
    (cell,) = list(iter_cells(tmp_path / "res2"))
    (orig,) = list(iter_cells(tmp_path / "res"))
    assert cell.record["dataset"]["split"]["key"] == orig.record["dataset"]["split"]["key"]
    assert summary.computed
    bad = tmp_path / "bad_split.json"
    bad.write_text(json.dumps({"query": ["nope"], "database": [], "train": []}))
    with pytest.raises(hashbench.DataError, match="bad_split.json.*not in the dataset"):
        run(RunConfig(dataset="tiny-test", methods=["lsh"], bits=[8], results=tmp_path / "r3",
                      split_file=bad, progress=False), echo=lambda s: None)


def test_run_config_rejects_empty_grid(tmp_path):
    with pytest.raises(ConfigError, match="no bit lengths"):
        run(RunConfig(dataset="tiny-test", methods=["lsh"], bits=[], results=tmp_path), echo=lambda s: None)


def test_command_line_lets_idle_openmp_threads_sleep_unless_the_user_chose(monkeypatch, capsys):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert main(["list"]) == 0
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert main(["list"]) == 0
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
