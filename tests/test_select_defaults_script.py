"""benchmarks/select_defaults.py, the command that regenerates the shipped defaults record, on a small setting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hashbench.selection.record import NOTHING, SELECTED, check_record

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_select_defaults_writes_a_record_with_one_budget_and_every_status(tmp_path):
    out = tmp_path / "record.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "select_defaults.py"), "--out", str(out), "--results",
           str(tmp_path / "res"), "--methods", "itq,dsh", "--trials", "2", "--bits", "8", "--val-size", "20",
           "-D", "n_items=200", "-D", "n_query=40"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    rec = check_record(json.loads(out.read_text()))
    status = {m: e["status"] for m, e in rec["methods"].items()}
    assert status == {"itq": SELECTED, "dsh": SELECTED, "lsh": NOTHING, "pcah": NOTHING, "sh": NOTHING}
    cfg = rec["config"]
    assert (cfg["criterion"], cfg["budget"], cfg["bits"], cfg["validation_split"]["validation"]) == ("labels", 2, 8, 20)
    assert cfg["command"].startswith("python benchmarks/select_defaults.py") and "synthetic" in cfg["stage"]
    assert set(cfg["cost"]["per_method_s"]) == {"itq", "dsh"} and cfg["cost"]["wall_s"] > 0
    assert cfg["code_version"]["code_version"]
    for m in ("itq", "dsh"):
        assert len(rec["methods"][m]["trials"]) == 2
    # the estimate: one trial per method, times the trials its budget would run
    est = subprocess.run([*cmd[:2], "--estimate", "--results", str(tmp_path / "res"), "--methods", "itq",
                          "--trials", "3", "--bits", "8", "--val-size", "20", "-D", "n_items=200", "-D", "n_query=40"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert est.returncode == 0, est.stderr[-3000:]
    assert "estimated cost of `--trials 3`" in est.stdout and "x   3 trials" in est.stdout
