"""The shipped defaults record: every method has a status, runs use its values, results and reports say which."""

from __future__ import annotations

import inspect
import json
from importlib.resources import files

import pytest

from hashbench import ConfigError, Hasher, ResultsError
from hashbench.registry import available_methods, get_method, register_method, unregister_method
from hashbench.selection.record import (
    HAND_SET,
    INHERITED,
    NOTHING,
    SELECTED,
    STATUSES,
    build_record,
    check_record,
    describe,
)
from hashbench.selection.space import grid_size
from hashbench_methods import _selected


def _record():
    return json.loads(files("hashbench_methods").joinpath("selected_defaults.json").read_text())


def test_the_shipped_record_covers_every_builtin_method_with_a_status():
    rec = check_record(_record())
    assert set(rec["methods"]) == set(available_methods())
    for name, entry in rec["methods"].items():
        cls = get_method(name)
        status = entry["status"]
        assert status in (*STATUSES, HAND_SET), name
        if not cls.search_space:
            assert status == NOTHING, name  # an empty space has nothing to select, whatever else happened
        if cls.inherits_defaults_from:
            assert status in (INHERITED, HAND_SET) and cls.inherits_defaults_because, name
            if status == INHERITED:
                assert entry["from"] == cls.inherits_defaults_from
                assert rec["methods"][entry["from"]]["status"] == SELECTED
    for key in ("criterion", "budget", "bits", "validation_split", "stage", "code_version", "command"):
        assert rec["config"].get(key) is not None, key


def test_the_selected_entries_chose_their_best_trial_with_one_budget():
    rec = _record()
    budgets = set()
    for name, entry in rec["methods"].items():
        if entry["status"] != SELECTED:
            continue
        assert set(entry["defaults"]) == set(get_method(name).search_space), name  # the record fits today's space
        # one budget: every selected method ran min(budget, its grid's size) trials
        n = min(rec["config"]["budget"], grid_size(get_method(name).search_space))
        budgets.add("budget" if len(entry["trials"]) == n else (name, len(entry["trials"])))
        finished = [t for t in entry["trials"] if not t.get("failed")]
        best = max(finished, key=lambda t: (t["score"], -t["trial"]))
        assert best["params"] == entry["defaults"] and best["score"] == entry["best_score"]
        assert len({json.dumps(t["params"], sort_keys=True) for t in entry["trials"]}) == len(entry["trials"])
    assert budgets == {"budget"}  # the same number of trials for every selected method (or its whole grid)


def test_every_method_of_the_main_job_with_a_search_space_was_selected_in_the_one_run():
    """The fair race (issue 24): no method of `--methods all` runs on hand-set values.

    Methods outside `all` (supervised references, the slow end-to-end modes) may be left
    out of the selection run only with a recorded reason; their twins inherit."""
    rec = _record()
    main_job = [m for m in available_methods()
                if get_method(m).in_default_run and not get_method(m).is_supervised()]
    assert len(main_job) >= 17
    for name in main_job:
        cls, entry = get_method(name), rec["methods"][name]
        if cls.inherits_defaults_from:
            assert entry["status"] == INHERITED, name
        elif cls.search_space:
            assert entry["status"] == SELECTED, f"{name}: {entry['status']}"
        else:
            assert entry["status"] == NOTHING, name
    for name, entry in rec["methods"].items():
        if entry["status"] == HAND_SET:
            assert name not in main_job and len(entry["why"]) > 40, name


def test_runs_use_the_recorded_values_and_a_users_parameter_still_wins():
    rec = _record()
    for name, entry in rec["methods"].items():
        params = get_method(name)().get_params()
        for k, v in (entry.get("defaults") or {}).items():
            assert params[k] == v, f"{name}.{k}: default {params[k]!r}, recorded {v!r}"
            assert inspect.signature(get_method(name)).parameters[k].default == v
    values = rec["methods"]["udht-frozen"]["defaults"]
    other = next(x for x in get_method("udht-frozen").search_space["lr"] if x != values["lr"])
    assert get_method("udht-frozen")(lr=other).get_params()["lr"] == other


class _Plugin(Hasher):
    """A method with a literal default, overridden by a record."""

    search_space = {"k": [1, 2, 3]}

    def __init__(self, bits: int = 32, seed: int = 0, k: int = 1, other: str = "x") -> None:
        super().__init__(bits=bits, seed=seed)
        self.k, self.other = k, other


def test_the_decorator_replaces_only_the_recorded_defaults(monkeypatch):
    """A record that selects k = 3 makes it the default; the literal (1) stays the hand-set fallback."""
    fake = {"format": 2, "config": {"criterion": "labels", "budget": 3, "bits": 8}, "methods": {
        "rec-plugin": {"status": SELECTED, "defaults": {"k": 3}, "n_trials_run": 3, "grid_size": 3}}}
    monkeypatch.setattr(_selected, "shipped_record", lambda: fake)
    cls = _selected.record_defaults("rec-plugin")(type("P", (_Plugin,), {}))
    assert cls().get_params() == {"bits": 32, "seed": 0, "k": 3, "other": "x"}
    assert cls(k=2).k == 2 and cls(8, 1).bits == 8 and cls(8, 1).k == 3
    assert cls.defaults_chosen_by["status"] == SELECTED and cls.defaults_chosen_by["defaults"] == {"k": 3}
    plain = _selected.record_defaults("not-in-record")(type("Q", (_Plugin,), {}))
    assert plain().k == 1 and plain.defaults_chosen_by["status"] == HAND_SET
    fake["methods"]["rec-plugin"]["defaults"] = {"kk": 3}
    with pytest.raises(RuntimeError, match="regenerate the record"):
        _selected.record_defaults("rec-plugin")(type("R", (_Plugin,), {}))


def _selection(method, chosen, space, *, failed=0, **over):
    trials = [{"trial": 0, "params": chosen, "score": 0.7, "measure": "validation mAP@5000", "fit_s": 1.0}]
    trials += [{"trial": i + 1, "params": {"lr": 10.0 ** (i + 1)}, "score": None, "failed": "DataError: inf"}
               for i in range(failed)]
    rec = {"method": method, "bits": 32, "budget": 1 + failed, "criterion": "labels", "seed": 0, "search_seed": 0,
           "topk": 5000, "validation_split": {"seed": 0, "key": "v", "fit": 40, "validation": 10}, "dataset": {"n": 1},
           "dataset_key": "synthetic", "split_key": "s", "backbone": {"name": "alexnet"}, "chosen": chosen,
           "search_space": space, "grid_size": 3, "fixed_params": {}, "best_trial": 0, "best_score": 0.7,
           "n_trials_run": 1 + failed, "n_failed": failed, "all_failed": False, "key": f"k-{method}",
           "trials": trials}
    rec.update(over)
    return rec


def test_build_record_gives_every_method_one_of_the_three_statuses():
    sels = [_selection("udht-frozen", {"lr": 0.01, "lambda2": 10.0}, {"lr": [0.01], "lambda2": [10.0]}, failed=1),
            _selection("tag-binary", {"lr": 0.03, "lambda3": 0.1}, {"lr": [0.03], "lambda3": [0.1]}, budget=2)]
    rec = build_record(sels, ["udht-frozen", "udht", "tag-binary", "tag-binary-e2e", "lsh"], what="test",
                       extra_config={"stage": "synthetic, alexnet"})
    assert {m: e["status"] for m, e in rec["methods"].items()} == {
        "udht-frozen": SELECTED, "udht": INHERITED, "tag-binary": SELECTED, "tag-binary-e2e": INHERITED,
        "lsh": NOTHING}
    assert rec["methods"]["udht"]["defaults"] == {"lr": 0.01, "lambda2": 10.0}
    assert "minutes per trial" in rec["methods"]["udht"]["why"]
    assert rec["methods"]["udht-frozen"]["trials"][1]["failed"] == "DataError: inf"
    assert rec["config"]["budget"] == 2 and rec["config"]["stage"] == "synthetic, alexnet"
    assert rec["config"]["code_version"]["code_version"]
    check_record(rec)
    said = describe(rec, "udht-frozen", "where.json")
    assert said["status"] == SELECTED and "selected by `tune` (criterion labels" in said["text"]
    assert "1 of 2 trials failed" in said["text"] and said["text"].endswith("record: where.json")
    assert describe(rec, "udht", "w")["text"].startswith("lambda2=10, lr=0.01: inherited from udht-frozen")
    assert describe(rec, "lsh", "w")["text"].startswith("nothing to select")


def test_build_record_refuses_unequal_budgets_missing_selections_and_all_failed_methods():
    a = _selection("itq", {"n_iter": 50}, {"n_iter": [50]})
    with pytest.raises(ConfigError, match="another budget"):
        build_record([a, _selection("dsh", {"r": 3}, {"r": [3]}, budget=5)], ["itq", "dsh"], what="t")
    with pytest.raises(ConfigError, match="another validation_split"):
        build_record([a, _selection("dsh", {"r": 3}, {"r": [3]}, validation_split={"seed": 1})], ["itq", "dsh"],
                     what="t")
    with pytest.raises(ConfigError, match="no selection for dsh"):
        build_record([a], ["itq", "dsh"], what="t")
    with pytest.raises(ConfigError, match="udht inherits from udht-frozen, which was not selected"):
        build_record([a], ["itq", "udht"], what="t")
    with pytest.raises(ConfigError, match="every trial failed for itq"):
        build_record([_selection("itq", None, {"n_iter": [50]}, all_failed=True)], ["itq"], what="t")


def test_a_method_left_out_of_the_run_is_hand_set_with_its_reason():
    a = _selection("itq", {"n_iter": 50}, {"n_iter": [50]})
    rec = build_record([a], ["itq", "dsh", "lsh"], what="t", left_out={"dsh": "costs hours on 2 cores"})
    assert {m: e["status"] for m, e in rec["methods"].items()} == {"itq": SELECTED, "dsh": HAND_SET, "lsh": NOTHING}
    said = describe(check_record(rec), "dsh", "w")
    assert said["status"] == HAND_SET and "costs hours on 2 cores" in said["text"] and not said["defaults"]
    with pytest.raises(ConfigError, match="itq both searched and left out"):
        build_record([a], ["itq"], what="t", left_out={"itq": "no"})


def test_a_malformed_record_is_a_clear_error():
    with pytest.raises(ResultsError, match="not a defaults record of format 2"):
        check_record({"methods": {}}, "x.json")
    with pytest.raises(ResultsError, match="dh has status 'guessed'"):
        check_record({"format": 2, "config": {}, "methods": {"dh": {"status": "guessed"}}}, "x.json")
    with pytest.raises(ResultsError, match="inherits from 'nope'"):
        check_record({"format": 2, "config": {}, "methods": {"udht": {"status": INHERITED, "defaults": {},
                                                                       "from": "nope"}}}, "x.json")


def test_every_result_and_the_report_say_which_status_applies(tmp_path):
    from hashbench.reports.collect import load_report_data
    from hashbench.reports.hyperparams import hyperparameter_rows
    from hashbench.runner import RunConfig, run

    run(RunConfig(dataset="synthetic", dataset_options={"n_items": 200, "n_query": 40},
                  methods=["udht-frozen", "lsh", "itq", "tag-binary"], bits=[8], results=tmp_path, progress=False,
                  method_params={"udht-frozen": {"max_epochs": 1}, "tag-binary": {"max_epochs": 1, "lr": 0.001}}),
        echo=lambda s: None)
    from hashbench.store import iter_cells

    stored = {c.record["method"]["name"]: c.record["method"]["defaults_chosen_by"] for c in iter_cells(tmp_path)}
    assert stored["udht-frozen"]["status"] == SELECTED and stored["lsh"]["status"] == NOTHING
    assert stored["itq"]["status"] == _record()["methods"]["itq"]["status"]
    rows = {r["method"]: r for r in hyperparameter_rows(load_report_data(tmp_path))}
    assert rows["UDHT (frozen backbone)"]["defaults"] == SELECTED
    assert "selected by `tune`" in rows["UDHT (frozen backbone)"]["how chosen"]
    chosen = _record()["methods"]["udht-frozen"]["defaults"]
    assert f"lambda2={chosen['lambda2']:g}, lr={chosen['lr']:g}" in rows["UDHT (frozen backbone)"]["how chosen"]
    assert rows["LSH"]["defaults"] == NOTHING and "nothing to select" in rows["LSH"]["how chosen"]
    # the user's --param over a selected value: said, not hidden
    assert rows["Tag-binary baseline (frozen backbone)"]["defaults"] == "selected (overridden)"
    assert "this run set lr=0.001 instead" in rows["Tag-binary baseline (frozen backbone)"]["how chosen"]


def test_a_result_stored_before_the_statuses_still_reports():
    from hashbench.reports.hyperparams import _how_chosen, defaults_status

    old = {8: {"method": {"defaults_chosen_by": "lr=0.01: selected by `tune` on synthetic", "params": {}}}}
    assert _how_chosen(old, "udht-frozen") == "the method's defaults, lr=0.01: selected by `tune` on synthetic"
    assert defaults_status(old) == "not recorded"
