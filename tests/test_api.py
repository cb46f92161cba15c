"""hashbench.run: the command line's run, from Python, returning the table."""

from __future__ import annotations

import numpy as np
import pytest

import hashbench
from hashbench import ConfigError, ResultsError
from hashbench.cli import main
from hashbench.runner import RunConfig
from hashbench.store import iter_cells


def _lines():
    out: list[str] = []
    return out, out.append


def test_run_returns_the_table_and_resumes_like_the_command_line(tmp_path):
    res = tmp_path / "res"
    said, echo = _lines()
    table = hashbench.run(["itq", "lsh"], [8, 16], dataset="tiny-test", results=res, quiet=True, echo=echo)
    assert len(table) == 4 and set(table.method) == {"itq", "lsh"} and set(table.bits) == {8, 16}
    assert (table.status == "computed").all()
    assert table.attrs["results"] == (res / "tiny-test").resolve() and table.attrs["computed"] == 4
    assert table.attrs["report"] is None
    assert any("4 cell(s) computed, 0 already done" in s for s in said)
    # the same rows as the store holds, read back and verified
    stored = hashbench.load_results(res)
    cols = ["method", "bits", "seed", "mAP@all", "path"]
    assert table[cols].equals(stored[cols])
    itq = table[table.method == "itq"]
    assert (itq["mAP@all"] > itq["chance"] + 0.1).all()

    mtimes = {c.path: (c.path / "cell.json").stat().st_mtime_ns for c in iter_cells(res)}
    again = hashbench.run("itq,lsh", "8,16", dataset="tiny-test", results=res, quiet=True, echo=None)
    assert (again.status == "skipped").all() and again.attrs["skipped"] == 4
    assert again["mAP@all"].tolist() == table["mAP@all"].tolist()
    assert mtimes == {c.path: (c.path / "cell.json").stat().st_mtime_ns for c in iter_cells(res)}
    # a grid that overlaps: only the new cells are computed (NumPy integers name the same cells)
    more = hashbench.run(["itq"], np.array([8, 12]), dataset="tiny-test", results=res, quiet=True, echo=None)
    assert dict(zip(more.bits, more.status)) == {8: "skipped", 12: "computed"}
    # another configuration is refused before anything runs, as on the command line
    with pytest.raises(ResultsError, match="would be overwritten"):
        hashbench.run(["itq"], [8], dataset="tiny-test", results=res, params={"itq.n_iter": 3}, echo=None)
    forced = hashbench.run(["itq"], [8], dataset="tiny-test", results=res, params={"itq": {"n_iter": 3}},
                           force=True, quiet=True, echo=None)
    assert forced.status.tolist() == ["computed"]
    (cell,) = [c for c in iter_cells(res) if c.record["method"]["name"] == "itq" and c.record["bits"] == 8]
    assert cell.record["method"]["params"]["n_iter"] == 3
    assert cell.record["provenance"]["command"].startswith("hashbench.run(methods=['itq'], bits=[8]")


def test_run_and_the_command_line_store_the_same_cells(tmp_path, capsys):
    common = ["--methods", "lsh", "--bits", "8", "--seeds", "0,1", "--dataset", "tiny-test", "--split-seed", "2",
              "--topk", "10,all", "--ties", "tie-aware", "-q", "--no-report"]
    assert main(["run", *common, "--results", str(tmp_path / "cli")]) == 0
    table = hashbench.run("lsh", 8, [0, 1], dataset="tiny-test", split_seed=2, topk=(10, None), ties="tie-aware",
                          results=tmp_path / "py", quiet=True, echo=None)
    cli = {(c.record["seed"]): c for c in iter_cells(tmp_path / "cli")}
    py = {(c.record["seed"]): c for c in iter_cells(tmp_path / "py")}
    assert set(cli) == set(py) == {0, 1}
    for seed in (0, 1):
        assert cli[seed].record["cell_key"] == py[seed].record["cell_key"]  # the same configuration, digested
        np.testing.assert_array_equal(cli[seed].load_codes()[1], py[seed].load_codes()[1])
        assert cli[seed].record["metrics"] == py[seed].record["metrics"]
    assert "mAP@10" in table.columns


def test_a_run_config_is_the_base_and_arguments_override_it(tmp_path):
    base = RunConfig(dataset="tiny-test", methods=["lsh"], bits=[8], results=tmp_path / "res", progress=False)
    table = hashbench.run(config=base, echo=None)
    assert table[["method", "bits"]].values.tolist() == [["lsh", 8]]
    table = hashbench.run(config=base, bits=[16], echo=None)
    assert table.bits.tolist() == [16]
    assert base.bits == [8]  # the caller's config is left as it was
    # any other RunConfig field by name; unknown names are refused naming the fields
    table = hashbench.run(config=base, backbone_seed=1, results=tmp_path / "other", echo=None)
    (cell,) = list(iter_cells(tmp_path / "other"))
    assert cell.record["features"]["backbone"]["seed"] == 1
    with pytest.raises(ConfigError, match="unknown option 'n_bits'"):
        hashbench.run(config=base, n_bits=8)
    with pytest.raises(ConfigError, match="RunConfig"):
        hashbench.run(config={"methods": ["lsh"]})


def test_run_writes_the_report_when_asked(tmp_path):
    said, echo = _lines()
    table = hashbench.run("lsh", 8, dataset="tiny-test", results=tmp_path / "res", report=tmp_path / "rep",
                          quiet=True, echo=echo)
    assert table.attrs["report"] is not None and table.attrs["report"].exists()
    assert any(s.startswith("report in ") for s in said)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"topk": "10,many"}, "expected integers or 'all'"),
        ({"topk": (0,)}, "positive integer"),
        ({"bits": "8,x"}, "comma-separated integers"),
        ({"params": {"n_iter": 3}}, "method.name"),
        ({"methods": ""}, "at least one name"),
    ],
)
def test_bad_arguments_get_clear_errors(tmp_path, kwargs, message):
    args = {"methods": "lsh", "bits": 8, "dataset": "tiny-test", "results": tmp_path, **kwargs}
    with pytest.raises(ConfigError, match=message):
        hashbench.run(echo=None, **args)
