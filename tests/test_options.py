"""Every run option arrives through every door: the command line, an experiment file, hashbench.run().

Each option is declared once (hashbench.options.OPTIONS). For each one, a value goes in through
each door over a base experiment file and the test reads the RunConfig the run would get (the
run itself is replaced by a recorder). Falsy values (0, false, "") are values: they override
the file as any other does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import hashbench
import hashbench.api
from hashbench.cli import main
from hashbench.options import OPTIONS, RunConfig, by_name, get_path

BASE = {"dataset": {"name": "tiny-test"}, "run": {"methods": ["itq", "agh"], "bits": [8]}}


def case(argv, value, expected, base=None):
    """argv: the flag(s) on the command line; value: the file's and hashbench.run()'s; expected: RunConfig's."""
    return {"argv": argv, "value": value, "expected": expected, "base": base or {}}


#: option -> cases; every option needs at least one (a new option without one fails the walk)
SAMPLES = {
    "dataset": [case(["--dataset", "synthetic"], "synthetic", "synthetic")],
    "data_root": [case(["--data-root", "/data/mir"], "/data/mir", Path("/data/mir"))],
    "protocol": [case(["--protocol", "random"], "random", "random")],
    "split_seed": [case(["--split-seed", "4"], 4, 4),
                   case(["--split-seed", "0"], 0, 0, {"dataset": {"split_seed": 3}})],
    "split_file": [case(["--split", "/s/split.json"], "/s/split.json", Path("/s/split.json"))],
    "dataset_options": [case(["-D", "n_items=70", "-D", "seed=0"], {"n_items": 70, "seed": 0},
                             {"n_items": 70, "seed": 0}, {"dataset": {"options": {"seed": 3}}})],
    "skip_corrupt": [case(["--skip-corrupt"], True, True, {"dataset": {"name": "mirflickr25k"}})],
    "backbone": [case(["--backbone", "vgg16"], "vgg16", "vgg16")],
    "weights": [case(["--weights", "imagenet"], "imagenet", "imagenet")],
    "backbone_seed": [case(["--backbone-seed", "2"], 2, 2),
                      case(["--backbone-seed", "0"], 0, 0, {"features": {"seed": 2}})],
    "cache_dir": [case(["--cache-dir", "/c/cache"], "/c/cache", Path("/c/cache"))],
    "device": [case(["--device", "cpu"], "cpu", "cpu")],
    "methods": [case(["--methods", "itq,sh"], ["itq", "sh"], ["itq", "sh"]),
                case(["--methods", "all,supervised"], ["all", "supervised"], ["all", "supervised"])],
    "bits": [case(["--bits", "12,24"], [12, 24], [12, 24])],
    "seeds": [case(["--seeds", "0"], [0], [0], {"run": {"seeds": [1, 2]}})],
    "force": [case(["--force"], True, True)],
    "selected": [case(["--selected", "label-free"], "label-free", "label-free")],
    "params": [case(["--param", "itq.n_iter=0", "--param", "agh.n_anchors=20"],
                    {"itq": {"n_iter": 0}, "agh": {"n_anchors": 20}},
                    {"itq": {"n_iter": 0}, "agh": {"n_anchors": 20}}, {"params": {"itq": {"n_iter": 9}}})],
    "evaluation": [case(["-E", "radius=0", "-E", "seed=0"], {"radius": 0, "seed": 0}, {"radius": 0, "seed": 0},
                        {"evaluation": {"seed": 5}})],
    "ties": [case(["--ties", "index"], "index", "index")],
    "empty": [case(["--empty", "drop"], "drop", "drop")],
    "topk": [case(["--topk", "10,all"], [10, "all"], (10, None))],
    "results": [case(["--results", "/r/res"], "/r/res", Path("/r/res"))],
    "report": [case(["--report", "/r/rep"], "/r/rep", Path("/r/rep")),
               case(["--no-report"], "", None, {"output": {"report": "/r/rep"}})],
    "jobs": [case(["--jobs", "2"], 2, 2)],
    "threads": [case(["--threads", "1"], 1, 1), case(["--threads", "3"], 3, 3, {"execution": {"threads": 1}})],
    "scheduler": [case(["--scheduler", "tcp://h:8786"], "tcp://h:8786", "tcp://h:8786")],
    "shard": [case(["--shard", "1/3"], "1/3", (1, 3)),
              case(["--shard", "0/2"], "0/2", (0, 2), {"execution": {"shard": "1/2"}})],
    "workers": [case(["--workers", "3"], 3, 3),
                case(["--workers", "0"], 0, 0, {"execution": {"workers": 2}})],
}

#: falsy values a file sets that hashbench.run() must still override (the command line's switches only say yes)
FALSY_FROM_PYTHON = [("force", False, {"run": {"force": True}}),
                     ("skip_corrupt", False, {"dataset": {"name": "mirflickr25k", "options": {"skip_corrupt": True}}})]


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, str)):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def _toml(doc: dict) -> str:
    """A small TOML writer: top-level keys, then one [table] per section (nested tables inline)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for section, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{section}]")
            lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _nest(path: tuple[str, ...], value) -> dict:
    for key in reversed(path):
        value = {key: value}
    return value


@pytest.fixture
def recorded(monkeypatch, tmp_path):
    """Replace the run by a recorder of the (config, report) it is handed."""
    import os

    monkeypatch.setenv("HASHBENCH_CACHE", os.environ.get("HASHBENCH_CACHE", str(tmp_path / "cache")))
    calls: list = []
    monkeypatch.setattr(hashbench.api, "run_config", lambda cfg, report=None, echo=None: calls.append((cfg, report)))
    return calls


def _arrived(config: RunConfig, name: str):
    opt = by_name(name)
    value = config
    for key in opt.where:
        value = getattr(value, key) if isinstance(value, RunConfig) else value.get(key)
    return value


def _walk(tmp_path, recorded, name: str, c: dict) -> dict[str, object]:
    """What RunConfig holds for option ``name`` after each door."""
    opt = by_name(name)
    base = _merge(BASE, c["base"])
    base_file = tmp_path / "base.toml"
    base_file.write_text(_toml(base))
    got = {}
    # 1. the command line's flag over the file
    assert main(["run", "--config", str(base_file), "-q", *c["argv"]]) == 0
    got["flag"] = _arrived(recorded[-1][0], name)
    if name == "report":
        got["flag report written"] = recorded[-1][1]
    # 2. the file's key
    own = tmp_path / f"{name}.toml"
    own.write_text(_toml(_merge(base, _nest(opt.file, c["value"]))))
    assert main(["run", "--config", str(own), "-q"]) == 0
    got["file"] = _arrived(recorded[-1][0], name)
    # 3. hashbench.run()'s keyword over the file
    hashbench.run(config=base_file, echo=None, **{name: c["value"]})
    got["run()"] = _arrived(recorded[-1][0], name)
    if name == "report":
        got["run() report written"] = recorded[-1][1]
    return got


def test_every_option_has_a_sample_and_every_door():
    assert set(SAMPLES) == {o.name for o in OPTIONS}, "give each new option a case in SAMPLES"
    for opt in OPTIONS:
        assert opt.flag and opt.file, f"{opt.name}: every option has a flag and a file key"
        for c in SAMPLES[opt.name]:
            assert c["argv"][0] in (*opt.flag, opt.off_flag), (opt.name, c["argv"])
    import inspect

    params = inspect.signature(hashbench.run).parameters
    assert {o.name for o in OPTIONS} <= set(params)  # hashbench.run() takes every option by name


@pytest.mark.parametrize("name, c", [(n, c) for n, cases in SAMPLES.items() for c in cases],
                         ids=[f"{n}-{i}" for n, cases in SAMPLES.items() for i in range(len(cases))])
def test_every_option_arrives_through_every_door(tmp_path, recorded, name, c):
    got = _walk(tmp_path, recorded, name, c)
    expected = c["expected"]
    assert got["flag"] == expected and got["file"] == expected and got["run()"] == expected, got
    if name == "report":  # and it is the report the command line writes
        assert got["flag report written"] == expected and got["run() report written"] == expected, got


@pytest.mark.parametrize("name, value, base", FALSY_FROM_PYTHON)
def test_a_falsy_keyword_overrides_the_file(tmp_path, recorded, name, value, base):
    f = tmp_path / "base.toml"
    f.write_text(_toml(_merge(BASE, base)))
    hashbench.run(config=f, echo=None)
    assert _arrived(recorded[-1][0], name) is True
    hashbench.run(config=f, echo=None, **{name: value})
    assert _arrived(recorded[-1][0], name) is False


def test_falsy_flags_override_the_file_and_threads_reach_the_run(tmp_path, recorded):
    """Issue 26: `--split-seed 0` and `--workers 0` against a file with 3 and 2; [execution] threads."""
    f = tmp_path / "exp.toml"
    f.write_text(_toml(_merge(BASE, {"dataset": {"split_seed": 3}, "execution": {"workers": 2, "threads": 2}})))
    assert main(["run", "--config", str(f), "-q"]) == 0
    cfg = recorded[-1][0]
    assert (cfg.split_seed, cfg.workers, cfg.threads) == (3, 2, 2)
    assert main(["run", "--config", str(f), "-q", "--split-seed", "0", "--workers", "0", "--threads", "1"]) == 0
    cfg = recorded[-1][0]
    assert (cfg.split_seed, cfg.workers, cfg.threads) == (0, 0, 1)
    assert cfg.experiment["dataset"]["split_seed"] == 0 and cfg.experiment["execution"]["workers"] == 0


def test_the_file_schema_and_defaults_are_the_option_table():
    from hashbench.experiment import DEFAULTS, SCHEMA

    for opt in OPTIONS:
        if len(opt.file) == 2 and opt.file[0] in SCHEMA:
            assert opt.file[1] in SCHEMA[opt.file[0]]
        if get_path(DEFAULTS, opt.file, missing="absent") != "absent":
            assert get_path(DEFAULTS, opt.file) == opt.default
    assert RunConfig().results == Path("results") and RunConfig().bits == [12, 24, 32, 48]
    assert RunConfig().bits is not RunConfig().bits  # fresh lists
