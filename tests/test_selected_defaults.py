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


def test_every_result_and_report_says_how_the_defaults_were_chosen(tmp_path):
    from hashbench.reports.collect import load_report_data
    from hashbench.reports.hyperparams import hyperparameter_rows
    from hashbench.runner import RunConfig, run

    for name in _record()["methods"]:
        said = get_method(name).info()["defaults_chosen_by"]
        assert "selected by `tune`" in said and "selected_defaults.json" in said
        assert ("inherited" in said) == name.endswith(("e2e", "udht"))
    assert "defaults_chosen_by" not in get_method("itq").info()  # nothing selected it
    run(RunConfig(dataset="synthetic", dataset_options={"n_items": 200, "n_query": 40}, methods=["udht-frozen", "lsh"],
                  bits=[8], results=tmp_path, progress=False, method_params={"udht-frozen": {"max_epochs": 1}}),
        echo=lambda s: None)
    rows = {r["method"]: r["how chosen"] for r in hyperparameter_rows(load_report_data(tmp_path))}
    assert "selected by `tune`" in rows["UDHT (frozen backbone)"] and "lambda2=10, lr=0.01" in rows["UDHT (frozen backbone)"]
    assert "selected by `tune`" not in rows["LSH"]
