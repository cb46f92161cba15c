"""The cell as a value: a frozen, picklable spec; compute_cell(spec, inputs) is a plain function;
executors get specs (never the runner); a cell held elsewhere does not stall a serial run."""

from __future__ import annotations

import contextlib
import dataclasses
import pickle
import threading

import numpy as np
import pytest

from hashbench import store
from hashbench.cell import CellInputs, CellJob, compute_cell
from hashbench.plan import CellSpec
from hashbench.runner import RunConfig, Runner, run
from hashbench.store import iter_cells

GRID = dict(dataset="tiny-test", methods=["lsh", "itq"], bits=[8, 16], seeds=[0], progress=False)


def test_a_cell_spec_is_a_small_frozen_picklable_value(tmp_path):
    runner = Runner(RunConfig(**GRID, results=tmp_path / "res", method_params={"itq": {"n_iter": 7}}),
                    echo=lambda s: None)
    specs = runner.cells()
    assert [(s.method, s.bits, s.seed) for s in specs] == [("lsh", 8, 0), ("lsh", 16, 0), ("itq", 8, 0),
                                                            ("itq", 16, 0)]
    spec = specs[2]
    assert spec.param_dict == {"n_iter": 7} and spec.view == "tiny-test" and spec.split_key == runner.view.split_key
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.bits = 32  # type: ignore[misc]
    blob = pickle.dumps(spec)
    assert pickle.loads(blob) == spec
    assert len(blob) < 2000  # names its inputs; carries no dataset, features or runner
    assert b"Runner" not in blob and b"tiny-test" in blob
    # the key is the digest of what decides the result: another parameter, another key
    other = Runner(RunConfig(**GRID, results=tmp_path / "res"), echo=lambda s: None).cells()[2]
    assert other.key != spec.key and other.path == spec.path


def test_compute_cell_is_a_plain_function_of_spec_and_inputs(tmp_path):
    """What a run stores, compute_cell gives again from the spec and the inputs alone (no runner)."""
    run(RunConfig(**GRID, results=tmp_path / "res"), echo=lambda s: None)
    stored = {(c.record["method"]["name"], c.record["bits"]): c for c in iter_cells(tmp_path / "res")}
    runner = Runner(RunConfig(**GRID, results=tmp_path / "res"), echo=lambda s: None)
    inputs = pickle.loads(pickle.dumps(runner.inputs))  # as a worker gets them: no runner, no features
    assert inputs._features is None
    for spec in runner.cells():
        result = compute_cell(spec, inputs)
        cell = stored[spec.method, spec.bits]
        assert result.record["cell_key"] == spec.key == cell.record["cell_key"]
        assert result.record["metrics"] == cell.record["metrics"]
        q, db = cell.load_codes()
        np.testing.assert_array_equal(np.asarray(result.arrays["query_codes"]), q)
        np.testing.assert_array_equal(result.arrays["database_codes"].unpack(), db)
    # a spec reads only the inputs it names
    wrong = dataclasses.replace(runner.cells()[0], split_key="another-split")
    with pytest.raises(ValueError, match="not the inputs given"):
        compute_cell(wrong, inputs)


class _SpyExecutor:
    """Records what an executor is handed, then runs it through a pickle round trip (as joblib/dask do)."""

    in_process = False
    seen: list = []

    def run(self, job, tasks):
        blob = pickle.dumps(job)
        type(self).seen.append((blob, list(tasks)))
        remote = pickle.loads(blob)
        for i, task in enumerate(tasks):
            yield i, remote(pickle.loads(pickle.dumps(task)), True)


def test_executors_get_specs_and_the_inputs_never_the_runner(tmp_path, monkeypatch):
    import hashbench.runner as runner_module

    _SpyExecutor.seen = []
    monkeypatch.setattr(runner_module, "make_executor", lambda **kw: _SpyExecutor())
    lines: list[str] = []
    summary = run(RunConfig(**GRID, results=tmp_path / "res"), echo=lines.append)
    assert [o.status for o in summary.outcomes] == ["computed"] * 4
    ((blob, tasks),) = _SpyExecutor.seen
    assert all(isinstance(t, CellSpec) and t.path.is_absolute() for t in tasks)
    assert b"hashbench.runner" not in blob and b"Runner" not in blob  # the job carries inputs, not the runner
    assert sum("bits seed 0: mAP@5000" in s for s in lines) == 4  # the workers' lines come back


def test_a_serial_run_computes_other_cells_while_one_cell_is_held_elsewhere(tmp_path):
    """A cell whose lock another process holds is deferred: the serial run computes the rest first,
    while the lock is still held, and comes back to it when it is free."""
    root = tmp_path / "res"
    grid = dict(GRID, methods=["lsh"], bits=[8, 16, 24])
    held = store.cell_path(root, "tiny-test", "lsh", 8, 0)
    holder = contextlib.ExitStack()
    assert holder.enter_context(store.cell_lock(held, blocking=True))  # "another process" holds lsh 8 bits
    released = threading.Event()

    def release() -> None:
        if not released.is_set():
            released.set()
            holder.close()

    safety = threading.Timer(20, release)  # with the bug the run would wait here for ever: fail instead
    safety.start()
    order: list[tuple[int, bool]] = []

    def echo(line: str) -> None:
        for bits in (8, 16, 24):
            if line.startswith(f"  lsh {bits} bits seed 0: mAP"):
                order.append((bits, released.is_set()))
                if bits == 24:
                    release()  # the other process finishes with it

    try:
        summary = run(RunConfig(**grid, results=root), echo=echo)
    finally:
        safety.cancel()
        release()
    assert order == [(16, False), (24, False), (8, True)]  # computed while lsh 8 was still held elsewhere
    assert [o.status for o in summary.outcomes] == ["computed"] * 3
    assert sorted(c.record["bits"] for c in iter_cells(root)) == [8, 16, 24]


def test_a_job_in_this_process_skips_a_done_cell_and_defers_a_held_one(tmp_path):
    runner = Runner(RunConfig(**GRID, results=tmp_path / "res"), echo=lambda s: None)
    spec = runner.cells()[0]
    job = CellJob(runner.inputs, echo=lambda s: None)
    holder = contextlib.ExitStack()
    holder.enter_context(store.cell_lock(spec.path, blocking=True))
    safety = threading.Timer(20, holder.close)  # a job that waited would wait for ever: fail instead
    safety.start()
    try:
        assert job(spec, False) is None  # held elsewhere: come back later
    finally:
        safety.cancel()
        holder.close()
    outcome, _ = job(spec, False)
    assert outcome.status == "computed"
    assert job(spec, False)[0].status == "skipped"
    assert job(dataclasses.replace(spec, force=True), False)[0].status == "computed"
    assert isinstance(runner.inputs, CellInputs)
