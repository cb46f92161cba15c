"""The plan below run and tune: one parameter check for both, the grid as specs."""

from __future__ import annotations

import pytest

from hashbench import ConfigError
from hashbench.cli import main
from hashbench.datasets import get_dataset
from hashbench.evaluation import EvalConfig
from hashbench.plan import check_params, open_view, plan_cells


@pytest.mark.parametrize("command", ["run", "tune"])
def test_an_unknown_parameter_gets_the_same_clear_error_from_run_and_tune(tmp_path, capsys, command):
    """``tune --param itq.bogus=3`` once ended in a raw TypeError from ITQ.__init__ (issue 26)."""
    code = main([command, "--dataset", "tiny-test", "-q", "--results", str(tmp_path / "r"), "--methods", "itq",
                 "--bits", "8", "--param", "itq.bogus=3"] + (["--no-report"] if command == "run" else []))
    err = capsys.readouterr().err
    assert code == 2, err
    assert "unknown parameter 'bogus'; known parameters of itq: n_iter" in err
    assert "TypeError" not in err and "Traceback" not in err
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").rglob("cell.json"))  # nothing computed


def test_the_one_parameter_check():
    check_params({"itq": {"n_iter": 3}, "uh-bdnn@authors-code": {"patience": 2}}, ["itq", "uh-bdnn@authors-code", "lsh"])
    with pytest.raises(ConfigError, match=r"unknown parameter 'bogus', 'n_iters'; known parameters of itq: n_iter"):
        check_params({"itq": {"n_iters": 3, "bogus": 1}}, ["itq"])
    with pytest.raises(ConfigError, match=r"parameters given for 'lsh', which is not being tuned \(itq\)"):
        check_params({"lsh": {}}, ["itq"], where="being tuned")
    with pytest.raises(ConfigError, match="unknown parameter 'bits'"):  # the grid's, never a parameter
        check_params({"itq": {"bits": 8}}, ["itq"])


def test_plan_cells_is_the_grid_in_order_with_parameters_and_shards(tmp_path):
    view = open_view(get_dataset("tiny-test"), split_seed=1)
    ev = EvalConfig()
    specs = plan_cells(view, ["lsh", "itq"], [8, 16], [0, 1], root=tmp_path, evaluation=ev,
                       method_params={"itq": {"n_iter": 3}})
    assert [(s.method, s.bits, s.seed) for s in specs] == [
        (m, b, s) for m in ("lsh", "itq") for b in (8, 16) for s in (0, 1)]
    assert {s.param_dict.get("n_iter") for s in specs if s.method == "itq"} == {3}
    assert all(s.param_dict == {} for s in specs if s.method == "lsh")
    assert len({s.key for s in specs}) == 8 and all(s.split_key == view.split_key for s in specs)
    parts = [plan_cells(view, ["lsh", "itq"], [8, 16], [0, 1], root=tmp_path, evaluation=ev,
                        method_params={"itq": {"n_iter": 3}}, shard=(i, 3)) for i in range(3)]
    assert sorted(s.key for p in parts for s in p) == sorted(s.key for s in specs)
    # the keys depend on the split and the evaluation conventions
    other = open_view(get_dataset("tiny-test"), split_seed=2)
    assert plan_cells(other, ["lsh"], [8], [0], root=tmp_path, evaluation=ev)[0].key != specs[0].key
    assert plan_cells(view, ["lsh"], [8], [0], root=tmp_path, evaluation=EvalConfig(ties="index"))[0].key != specs[0].key
