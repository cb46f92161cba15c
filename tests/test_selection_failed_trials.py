"""Failed trials: stored with their reason, ranked last, shown; the search goes on; all failed is an error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hashbench import DataError, Hasher
from hashbench.cli import main
from hashbench.registry import register_method, unregister_method
from hashbench.reports import load_report_data
from hashbench.reports.hyperparams import hyperparameter_rows
from hashbench.selection import TrainingData, all_failed, format_records, run_selection, validation_split

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _training(n=60, d=16, seed=0):
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 3, n)
    feats = (rng.standard_normal((3, d))[classes] * 3 + rng.standard_normal((n, d)) + 1).astype(np.float32)
    return TrainingData(ids=[f"t{i}" for i in range(n)], features=feats, labels=np.eye(3, dtype=np.uint8)[classes])


def test_a_diverging_deepbit_trial_is_stored_ranked_last_and_the_search_goes_on(tmp_path):
    """The issue's failure: DeepBit's loss becomes inf (ReLU hash layer, a huge lr) and used to abort ``tune``."""
    space = {"lr": [1e4, 1e-3], "activation": ["relu"]}  # the first trial of the plan diverges
    kw = dict(criterion="labels", n_trials=2, space=space, params={"max_epochs": 2}, topk=None,
              folder=tmp_path / "sel", echo=lambda s: None)
    rec = run_selection("deepbit", 8, _training(150), validation_split(150, 30, 0), **kw)
    by_lr = {t["params"]["lr"]: t for t in rec["trials"]}
    assert set(by_lr) == {1e4, 1e-3}
    bad, good = by_lr[1e4], by_lr[1e-3]
    assert bad["failed"] == "DataError: deepbit: the loss became inf in stage 1; lower lr" and bad["score"] is None
    assert bad["params"] == {"lr": 1e4, "activation": "relu"}
    assert good.get("failed") is None and np.isfinite(good["score"])
    assert rec["chosen"] == {"lr": 1e-3, "activation": "relu"} and rec["best_score"] == good["score"]
    assert rec["n_failed"] == 1 and not rec["all_failed"]
    # stored as a result: the line is in trials.jsonl and a resumed search does not run it again
    lines = [json.loads(x) for x in (tmp_path / "sel" / "trials.jsonl").read_text().splitlines()]
    assert [x.get("failed") for x in lines].count(bad["failed"]) == 1
    again = run_selection("deepbit", 8, _training(150), validation_split(150, 30, 0), **kw)
    assert again["trials"] == rec["trials"]
    table = format_records([rec])
    assert "1 failed" in table and table.rstrip().endswith("(DataError: deepbit: the loss became inf in stage 1; "
                                                           "lower lr)")  # ranked last


class _Fragile(Hasher):
    """k = 0 fits; k = 1 raises; k = 2 fits but its recorded training loss became nan; k = 3 codes fine."""

    search_space = {"k": [0, 1, 2, 3]}
    always_fail = False

    def __init__(self, bits: int = 32, seed: int = 0, k: int = 0) -> None:
        super().__init__(bits=bits, seed=seed)
        self.k = k

    def _fit(self, features):
        if self.k == 1 or type(self).always_fail:
            raise DataError(f"fragile: the objective became inf at epoch 2 (k={self.k})")
        self.history_ = {"loss": [1.0, float("nan") if self.k == 2 else 0.5]}
        rng = np.random.default_rng([self.seed, self.k])
        self.mean_ = features.mean(0)
        self.w_ = rng.standard_normal((features.shape[1], self.bits))

    def _encode(self, features):
        return ((features - self.mean_) @ self.w_ > 0).astype(np.uint8)


@pytest.fixture
def fragile():
    register_method("sel-fragile")(_Fragile)
    _Fragile.always_fail = False
    yield _Fragile
    unregister_method("sel-fragile")


def test_a_non_finite_training_loss_fails_the_trial_without_an_exception(fragile):
    rec = run_selection("sel-fragile", 8, _training(), validation_split(60, 12, 0), n_trials=4, echo=lambda s: None)
    why = {t["params"]["k"]: t.get("failed") for t in rec["trials"]}
    assert why[1] == "DataError: fragile: the objective became inf at epoch 2 (k=1)"
    assert why[2] == "training loss 'loss' became nan at entry 2 of 2"
    assert why[0] is None and why[3] is None and rec["chosen"]["k"] in (0, 3) and rec["n_failed"] == 2


def test_tune_exits_non_zero_only_when_every_trial_of_a_method_failed_and_says_so(fragile, tmp_path, capsys):
    res = str(tmp_path / "res")
    common = ["tune", "--dataset", "tiny-test", "-q", "--results", res, "--bits", "8", "--val-size", "12"]
    assert main([*common, "--methods", "sel-fragile,itq", "--trials", "4"]) == 0  # two failures of four: a result
    out = capsys.readouterr().out
    assert "sel-fragile 8 bits, criterion labels (4 of 4 grid points, budget 4, 2 failed)" in out
    assert "FAILED" in out
    # tune writes the same kind of record as the shipped defaults, failures included
    from hashbench.selection.record import load_record

    (path,) = (tmp_path / "res").rglob("record-labels-8bits.json")
    rec = load_record(path)
    assert {m: e["status"] for m, e in rec["methods"].items()} == {"sel-fragile": "selected", "itq": "selected"}
    assert rec["methods"]["sel-fragile"]["n_failed"] == 2 and rec["config"]["budget"] == 4
    # the report of a run on those selections names the failed trials and their reasons
    assert main(["run", "--dataset", "tiny-test", "-q", "--results", res, "--no-report", "--methods", "sel-fragile",
                 "--bits", "8", "--selected", "labels"]) == 0
    row = {r["method"]: r for r in hyperparameter_rows(load_report_data(res))}["sel-fragile"]["how chosen"]
    assert "2 of 4 trials failed" in row and "k=1: DataError: fragile: the objective became inf" in row
    # every trial failing is the one error: non-zero exit, and the message says which method and why
    _Fragile.always_fail = True
    assert main([*common, "--methods", "itq,sel-fragile", "--trials", "2", "--results", str(tmp_path / "r2")]) == 1
    err = capsys.readouterr().err
    assert "every trial failed" in err and "sel-fragile at 8 bits: all 2 trials failed" in err
    assert "itq" not in err.split("nothing was selected for", 1)[1]
    assert not list((tmp_path / "r2").rglob("record-*.json"))  # no record that would claim a selection
    # and a run asked to use that selection refuses with the same reason
    assert main(["run", "--dataset", "tiny-test", "-q", "--results", str(tmp_path / "r2"), "--no-report",
                 "--methods", "sel-fragile", "--bits", "8", "--selected", "labels"]) == 2
    assert "every trial of sel-fragile at 8 bits failed" in capsys.readouterr().err


def test_all_failed_lists_only_selections_without_a_finished_trial():
    ok = {"method": "a", "bits": 8, "all_failed": False, "n_trials_run": 2, "trials": []}
    bad = {"method": "b", "bits": 16, "all_failed": True, "n_trials_run": 1,
           "trials": [{"params": {"lr": 1.0}, "failed": "DataError: boom"}]}
    assert all_failed([ok, bad]) == ["b at 16 bits: all 1 trials failed, e.g. {'lr': 1.0}: DataError: boom"]
