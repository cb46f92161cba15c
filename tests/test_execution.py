"""Where cells run: shards, joblib workers (--jobs), thread limits; same results as serial."""

from __future__ import annotations

import numpy as np
import pytest

import hashbench
from hashbench import ConfigError
from hashbench.cli import main
from hashbench.execution import limit_threads, make_executor, parse_shard, select_shard, threads_per_worker
from hashbench.execution.local import JoblibExecutor, SerialExecutor
from hashbench.runner import RunConfig, run
from hashbench.store import iter_cells

GRID = dict(dataset="tiny-test", methods=["lsh", "itq", "pcah"], bits=[8, 16], seeds=[0, 1], progress=False)


def _cells(root) -> dict:
    out = {}
    for c in iter_cells(root):
        r = c.record
        q, db = c.load_codes()
        out[(r["method"]["name"], r["bits"], r["seed"])] = (r["metrics"], q, db, c.load_per_query())
    return out


def assert_same_results(a, b) -> None:
    ca, cb = _cells(a), _cells(b)
    assert sorted(ca) == sorted(cb) and ca
    for key in ca:
        ma, qa, da, pa = ca[key]
        mb, qb, db_, pb = cb[key]
        assert ma == mb, key  # bit-for-bit the same numbers
        np.testing.assert_array_equal(qa, qb)
        np.testing.assert_array_equal(da, db_)
        assert sorted(pa) == sorted(pb)
        for k in pa:
            np.testing.assert_array_equal(pa[k], pb[k])


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_shards_partition_any_task_list(n):
    for size in (0, 1, 6, 13, 24):
        tasks = [("m", i) for i in range(size)]
        parts = [select_shard(tasks, i, n) for i in range(n)]
        flat = [t for p in parts for t in p]
        assert sorted(flat) == tasks  # every task exactly once
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
        assert parts == [select_shard(tasks, i, n) for i in range(n)]  # deterministic


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1", "a/b", "0/0", "1/2/3"])
def test_bad_shards_are_refused(text):
    with pytest.raises(ConfigError, match="shard"):
        parse_shard(text)


def test_shards_of_a_run_cover_each_cell_exactly_once(tmp_path):
    grid = {**GRID, "methods": ["lsh", "pcah"]}
    outcomes = []
    for i in range(3):
        summary = run(RunConfig(**grid, results=tmp_path / "res", shard=(i, 3)), echo=lambda s: None)
        outcomes += [(o.method, o.bits, o.seed) for o in summary.outcomes]
        assert all(o.status == "computed" for o in summary.outcomes)
    full = [(m, b, s) for m in grid["methods"] for b in grid["bits"] for s in grid["seeds"]]
    assert sorted(outcomes) == sorted(full)
    assert sorted(_cells(tmp_path / "res")) == sorted(full)


def test_jobs_2_stores_the_same_results_as_a_serial_run(tmp_path, capsys):
    assert main(["run", "--dataset", "tiny-test", "--no-report", "-q", "--methods", "lsh,itq,pcah",
                 "--bits", "8,16", "--seeds", "0,1", "--results", str(tmp_path / "par"), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "12 cell(s) computed, 0 already done" in out and "on 2 worker processes" in out
    assert "itq 16 bits seed 1: mAP@5000" in out  # the workers' lines are printed here
    run(RunConfig(**GRID, results=tmp_path / "serial"), echo=lambda s: None)
    assert_same_results(tmp_path / "par", tmp_path / "serial")
    # resumed in parallel: nothing recomputed
    summary = run(RunConfig(**GRID, results=tmp_path / "par", jobs=2), echo=lambda s: None)
    assert [o.status for o in summary.outcomes] == ["skipped"] * 12
    assert [(o.method, o.bits, o.seed) for o in summary.outcomes] == [
        (m, b, s) for m in GRID["methods"] for b in GRID["bits"] for s in GRID["seeds"]]


def test_same_threads_make_serial_and_parallel_runs_agree_and_each_cell_records_its_threads(tmp_path):
    import torch

    grid = dict(dataset="tiny-test", methods=["dh", "itq"], bits=[8], seeds=[0], progress=False)
    before = torch.get_num_threads()
    run(RunConfig(**grid, results=tmp_path / "serial", threads=1), echo=lambda s: None)
    assert torch.get_num_threads() == before  # restored after the run
    run(RunConfig(**grid, results=tmp_path / "par", jobs=2, threads=1), echo=lambda s: None)
    assert_same_results(tmp_path / "serial", tmp_path / "par")
    for root in ("serial", "par"):
        for c in iter_cells(tmp_path / root):
            assert c.record["provenance"]["threads"]["torch"] == 1
            assert c.record["provenance"]["threads"]["native"] <= 1
    run(RunConfig(**grid, results=tmp_path / "default"), echo=lambda s: None)
    for c in iter_cells(tmp_path / "default"):  # without --threads a serial run keeps the libraries' own
        assert c.record["provenance"]["threads"]["torch"] == before
    with pytest.raises(ConfigError, match="threads must be a positive integer"):
        run(RunConfig(**grid, results=tmp_path / "bad", threads=0), echo=lambda s: None)


def _thread_counts(task, blocking):
    import numba
    import torch
    from threadpoolctl import threadpool_info

    return {"torch": torch.get_num_threads(), "numba": numba.get_num_threads(),
            "pools": sorted({p["num_threads"] for p in threadpool_info()})}


def test_workers_times_threads_does_not_exceed_the_cores():
    assert threads_per_worker(2, cores=2) == 1 and threads_per_worker(3, cores=8) == 2
    assert threads_per_worker(4, cores=2) == 1
    ex = JoblibExecutor(2)
    assert ex.threads * 2 <= max(2, threads_per_worker(1))
    got = dict(ex.run(_thread_counts, [0, 1, 2]))
    assert sorted(got) == [0, 1, 2]
    for counts in got.values():
        assert counts["torch"] == ex.threads and counts["numba"] <= ex.threads
        assert counts["pools"] and max(counts["pools"]) <= ex.threads


def test_limit_threads_sets_and_restores():
    import numba
    import torch

    before = (torch.get_num_threads(), numba.get_num_threads())
    with limit_threads(1):
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    assert (torch.get_num_threads(), numba.get_num_threads()) == before


def test_serial_executor_defers_a_task_held_elsewhere():
    calls = []

    def job(task, blocking):
        calls.append((task, blocking))
        return None if (task == "held" and not blocking) else task.upper()

    out = list(SerialExecutor().run(job, ["a", "held", "b"]))
    assert out == [(0, "A"), (2, "B"), (1, "HELD")]
    assert calls == [("a", False), ("held", False), ("b", False), ("held", True)]


@pytest.mark.parametrize("kwargs, message", [
    ({"jobs": 0}, "jobs must be a positive integer"),
    ({"jobs": 2, "scheduler": "tcp://x:1"}, "not both"),
])
def test_bad_execution_options_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_executor(**kwargs)


def test_cli_refuses_bad_jobs_and_shards(tmp_path, capsys):
    base = ["run", "--dataset", "tiny-test", "--no-report", "-q", "--methods", "lsh", "--bits", "8",
            "--results", str(tmp_path / "r")]
    assert main([*base, "--jobs", "0"]) == 2
    assert "jobs must be a positive integer" in capsys.readouterr().err
    assert main([*base, "--shard", "2/2"]) == 2
    assert "must be below 2" in capsys.readouterr().err
    assert not list(iter_cells(tmp_path / "r")) if (tmp_path / "r").exists() else True
    assert hashbench  # the package imports without dask being imported


def test_image_workers_give_the_same_tensors_and_features(tmp_path):
    from hashbench.datasets import get_dataset
    from hashbench.features import BackboneSpec, ImageInput, extract_features

    data = get_dataset("tiny-test", n_items=24)
    spec = BackboneSpec(weights="random", seed=0, resize=64, crop=64)
    plain = ImageInput(data, np.arange(3, 20), spec)
    loaded = ImageInput(data, np.arange(3, 20), spec, workers=2)
    a = list(plain.batches(5, shuffle=True, seed=1))
    b = list(loaded.batches(5, shuffle=True, seed=1))
    assert [len(p) for p, _ in b] == [5, 5, 5, 2]
    for (pa, ta), (pb, tb) in zip(a, b):
        np.testing.assert_array_equal(pa, pb)
        np.testing.assert_array_equal(ta.numpy(), tb.numpy())
    f0, _ = extract_features(data, np.arange(24), spec, cache=tmp_path / "c0", progress=False, device="cpu")
    f2, _ = extract_features(data, np.arange(24), spec, cache=tmp_path / "c2", progress=False, device="cpu",
                             workers=2)
    np.testing.assert_array_equal(np.asarray(f0), np.asarray(f2))
    with pytest.raises(ConfigError, match="workers"):
        ImageInput(data, np.arange(3), spec, workers=-1)
