"""Cells on a dask.distributed cluster: a LocalCluster of two worker processes.

Same results as a serial run, no cell computed twice, and a worker killed in the
middle of a cell leaves no half cell behind: its cell is computed again elsewhere.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import textwrap
import threading
import time
import types

import numpy as np
import pytest

from hashbench.registry import load_plugin_file, unregister_method
from hashbench.runner import RunConfig, run
from hashbench.store import iter_cells

from .test_execution import assert_same_results

distributed = pytest.importorskip("distributed")  # a declared dependency; the import is the check

GRID = dict(dataset="tiny-test", methods=["lsh", "itq"], bits=[8], seeds=[0, 1], progress=False)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as c:
        yield c


def test_local_cluster_stores_the_same_results_as_serial_and_computes_each_cell_once(tmp_path, cluster):
    lines: list[str] = []
    summary = run(RunConfig(**GRID, results=tmp_path / "dask", scheduler=cluster.scheduler_address),
                  echo=lines.append)
    assert [o.status for o in summary.outcomes] == ["computed"] * 4
    assert len({(o.method, o.bits, o.seed) for o in summary.outcomes}) == 4
    assert any("lsh 8 bits seed 0" in s for s in lines)
    run(RunConfig(**GRID, results=tmp_path / "serial"), echo=lambda s: None)
    assert_same_results(tmp_path / "dask", tmp_path / "serial")
    again = run(RunConfig(**GRID, results=tmp_path / "dask", scheduler=cluster.scheduler_address),
                echo=lambda s: None)
    assert [o.status for o in again.outcomes] == ["skipped"] * 4


SLEEPY = '''
import os, time
import hashbench
from hashbench_methods.lsh import LSH

@hashbench.register_method("sleepy-test")
class Sleepy(LSH):
    """LSH that notes which process fits it, then takes its time (tests only)."""

    def __init__(self, bits=32, seed=0, log="", delay=0.0):
        super().__init__(bits=bits, seed=seed)
        self.log = log
        self.delay = delay

    def fit(self, features=None, **kw):
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(self.delay)
        return super().fit(features, **kw)
'''


def test_worker_killed_mid_cell_leaves_no_half_cell_and_its_cell_is_redone(tmp_path, cluster):
    plugin = tmp_path / "sleepy.py"
    plugin.write_text(textwrap.dedent(SLEEPY))
    log = tmp_path / "fits.log"
    load_plugin_file(plugin)
    try:
        config = RunConfig(dataset="tiny-test", methods=["sleepy-test", "lsh"], bits=[8], seeds=[0],
                           method_params={"sleepy-test": {"log": str(log), "delay": 3.0}}, progress=False,
                           results=tmp_path / "res", scheduler=cluster.scheduler_address)
        box: dict = {}
        thread = threading.Thread(target=lambda: box.update(summary=run(config, echo=lambda s: None)))
        thread.start()
        deadline = time.monotonic() + 300
        while not (log.exists() and log.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        victim = int(log.read_text().split()[0])
        assert victim != os.getpid()
        os.kill(victim, signal.SIGKILL)  # the worker process, in the middle of the cell's fit
        thread.join(timeout=400)  # generous: a loaded CI machine restarts workers slowly
        assert not thread.is_alive(), "the run did not finish after the worker was killed"
    finally:
        unregister_method("sleepy-test")
    fitters = [int(p) for p in log.read_text().split()]
    assert len(fitters) == 2 and fitters[0] == victim and fitters[1] != victim, fitters  # redone once, elsewhere
    summary = box["summary"]
    assert sorted((o.method, o.status) for o in summary.outcomes) == [("lsh", "computed"),
                                                                       ("sleepy-test", "computed")]
    cells = {c.record["method"]["name"]: c for c in iter_cells(tmp_path / "res")}
    assert sorted(cells) == ["lsh", "sleepy-test"]
    # the redone cell is whole and right: the same codes as LSH with the same bits and seed
    for a, b in zip(cells["sleepy-test"].load_codes(), cells["lsh"].load_codes()):
        np.testing.assert_array_equal(a, b)
    hidden = [p for p in (tmp_path / "res").rglob(".*") if p.name != ".locks"]
    assert hidden == []  # no temporary cell folder, no lock left behind
    assert json.loads((cells["sleepy-test"].path / "cell.json").read_text())["metrics"]


def test_task_slots_of_every_worker_on_a_host_add_up(cluster, monkeypatch):
    """Two one-thread workers on one host are 2 task slots there, so each task gets cores // 2 threads."""
    from hashbench.execution import distributed as dist
    from hashbench.execution import threads

    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        slots = dist._threads_by_host(client.scheduler_info())
    host = next(iter(cluster.scheduler_info["workers"])).rsplit(":", 1)[0]
    assert slots == {host: 2}
    info = {"workers": {"tcp://10.0.0.1:4001": {"nthreads": 1}, "tcp://10.0.0.1:4002": {"nthreads": 3},
                        "tcp://10.0.0.2:4001": {"nthreads": 4}}}
    assert dist._threads_by_host(info) == {"tcp://10.0.0.1": 4, "tcp://10.0.0.2": 4}

    # inside a task: the slots of its host decide its threads, not its own worker's thread count
    seen: list[int] = []

    class Limit:
        def __init__(self, n):
            seen.append(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(threads, "available_cores", lambda: 16)
    monkeypatch.setattr(dist, "limit_threads", Limit)
    worker = types.SimpleNamespace(address="tcp://10.0.0.1:4001", state=types.SimpleNamespace(nthreads=1))
    monkeypatch.setattr(distributed, "get_worker", lambda: worker)
    host_slots = dist._threads_by_host(info)
    assert dist._call_on_worker("task", lambda task, flag: (task, flag), 7, host_slots) == (7, ("task", True))
    assert dist._call_on_worker("task", lambda task, flag: task, 0, host_slots, 3) == (0, "task")
    worker.address = "tcp://10.0.0.9:4001"  # a host the scheduler did not list at the start: its own threads
    dist._call_on_worker("task", lambda task, flag: task, 0, host_slots)
    assert seen == [16 // 4, 3, 16 // 1]
