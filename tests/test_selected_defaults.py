"""The tag methods' defaults are the values the shipped selection record chose (and it says how)."""

from __future__ import annotations

import json
from importlib.resources import files

from hashbench.registry import get_method


def _record():
    return json.loads(files("hashbench_methods").joinpath("selected_defaults.json").read_text())


def test_defaults_in_the_signatures_are_the_selected_values():
    rec = _record()
    assert set(rec["methods"]) == {"udht", "udht-frozen", "tag-binary", "tag-binary-e2e"}
    for name, entry in rec["methods"].items():
        params = get_method(name)().get_params()
        assert entry["defaults"], name
        for k, v in entry["defaults"].items():
            assert params[k] == v, f"{name}.{k}: default {params[k]!r}, selected {v!r}"


def test_the_record_chose_the_best_trial_on_the_validation_split_with_labels():
    rec = _record()
    assert rec["criterion"] == "labels" and "never its queries" in rec["dataset"]
    budgets = set()
    for name, entry in rec["methods"].items():
        if entry["how"] != "selected":
            assert entry["how"].startswith("inherited")
            continue
        budgets.add(len(entry["trials"]))
        best = max(entry["trials"], key=lambda t: (t["score"], -t["trial"]))
        assert best["params"] == entry["defaults"] and best["score"] == entry["best_score"]
        assert len({json.dumps(t["params"], sort_keys=True) for t in entry["trials"]}) == len(entry["trials"])
    assert len(budgets) == 1  # the same number of trials for every selected method
