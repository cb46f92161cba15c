"""Model selection: the validation split, search spaces, the two criteria, resume, and blindness to queries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hashbench import ConfigError, DataError, Hasher, ResultsError
from hashbench.cli import main
from hashbench.datasets import random_split, register_dataset
from hashbench.registry import register_method, unregister_method
from hashbench.selection import (
    TrainingData,
    check_search_space,
    plan_trials,
    run_selection,
    validation_split,
)
from hashbench.reports import load_report_data
from hashbench.reports.hyperparams import hyperparameter_rows
from hashbench.selection.criteria import neighbour_relevance
from hashbench.store import iter_cells
from hashbench.tune import TuneConfig, tune

from .conftest import TinyDataset


# ----------------------------------------------------------------- test methods and datasets
class _Projection(Hasher):
    """Random projections whose quality depends on ``k`` (k-th of a few seeded draws); counts its fits."""

    search_space = {"k": [0, 1, 2, 3, 4]}
    fits: list[int] = []
    interrupt_at: int | None = None

    def __init__(self, bits: int = 32, seed: int = 0, k: int = 0, scale: float = 1.0) -> None:
        super().__init__(bits=bits, seed=seed)
        self.k = k
        self.scale = scale

    def _fit(self, features):
        if self.k == type(self).interrupt_at:
            type(self).interrupt_at = None
            raise KeyboardInterrupt
        type(self).fits.append(self.k)
        rng = np.random.default_rng([self.seed, self.k])
        self.mean_ = features.mean(0)
        self.w_ = rng.standard_normal((features.shape[1], self.bits))

    def _encode(self, features):
        return ((features - self.mean_) @ self.w_ > 0).astype(np.uint8)


class _WithObjective(_Projection):
    """A label-free objective of its own: |k - 2| + 0.5 (lower is better): selection must pick k = 2."""

    def heldout_objective(self, features=None, tags=None, images=None):
        assert features is not None and features.shape[0] == 12  # the validation queries, nothing else
        return abs(self.k - 2) + 0.5


@pytest.fixture
def projection():
    register_method("sel-projection")(_Projection)
    register_method("sel-objective")(_WithObjective)
    _Projection.fits = []
    yield _Projection
    unregister_method("sel-projection")
    unregister_method("sel-objective")


def _training(n=60, d=16, seed=0):
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 3, n)
    centres = rng.standard_normal((3, d)) * 3
    feats = (centres[classes] + rng.standard_normal((n, d))).astype(np.float32)
    return TrainingData(ids=[f"t{i}" for i in range(n)], features=feats, labels=np.eye(3, dtype=np.uint8)[classes])


class _DeepStub(_Projection):
    """A 'deep' method that records where its (pretend) early stopping stopped."""

    display_name = "deep stub"
    deep = True

    def _fit(self, features):
        super()._fit(features)
        self.fit_info_ = {"convergence": {"max_epochs": 9, "epochs_run": 4 + (self.bits > 8),
                                          "best_epoch": 2 + (self.bits > 8)}}


# ----------------------------------------------------------------- validation split
def test_validation_split_is_seeded_disjoint_and_covers_the_training_role():
    a = validation_split(100, 0.2, seed=3)
    assert a.val.size == 20 and a.fit.size == 80
    assert not set(a.val) & set(a.fit) and set(a.val) | set(a.fit) == set(range(100))
    b = validation_split(100, 20, seed=3)
    np.testing.assert_array_equal(a.val, b.val)  # a count and the same fraction agree
    assert not np.array_equal(a.val, validation_split(100, 0.2, seed=4).val)


@pytest.mark.parametrize("size", [99, 100, 150])
def test_validation_split_larger_than_the_training_role_is_refused(size):
    with pytest.raises(ConfigError, match=rf"validation split of {size} items is larger than the training role.*100 items"):
        validation_split(100, size, seed=0)


def test_validation_split_bad_sizes():
    with pytest.raises(ConfigError, match="fraction must be in"):
        validation_split(100, 1.5, seed=0)
    with pytest.raises(ConfigError, match="at least 2"):
        validation_split(100, 1, seed=0)


# ----------------------------------------------------------------- search spaces
def test_search_space_with_an_unknown_parameter_names_it_and_the_accepted_ones(projection):
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) 'kk'; accepted: k, scale"):
        check_search_space(projection, {"kk": [1, 2]})
    with pytest.raises(ConfigError, match="may not tune bits"):
        check_search_space(projection, {"bits": [8, 16]})
    with pytest.raises(ConfigError, match="non-empty list"):
        check_search_space(projection, {"k": []})

    class Bad(_Projection):
        search_space = {"learning_rate": [0.1]}  # a plugin's typo

    with pytest.raises(ConfigError, match="'learning_rate'"):
        run_selection("sel-projection", 8, _training(), validation_split(60, 12, 0), space=Bad.search_space,
                      echo=lambda s: None)


def test_plan_is_the_whole_grid_within_budget_and_a_seeded_subset_beyond():
    space = {"a": [1, 2, 3], "b": ["x", "y"]}
    full = plan_trials(space, 10, seed=0)
    assert len(full) == 6 and {(p["a"], p["b"]) for p in full} == {(a, b) for a in (1, 2, 3) for b in "xy"}
    part = plan_trials(space, 4, seed=0)
    assert part == full[:4] and len({json.dumps(p) for p in part}) == 4  # without replacement
    assert plan_trials(space, 4, seed=0) == part
    assert plan_trials({}, 5, seed=0) == [{}]  # nothing to tune: one trial with the defaults


def test_builtin_search_spaces_are_valid_and_hold_the_defaults():
    from hashbench.registry import available_methods, get_method

    for name in available_methods():
        cls = get_method(name)
        space = check_search_space(cls)
        defaults = cls().get_params()
        for param, values in space.items():
            assert defaults[param] in values, f"{name}: the default {param}={defaults[param]!r} is not a candidate"


# ----------------------------------------------------------------- criteria
def test_labels_criterion_scores_validation_map_and_picks_the_best(projection):
    data, vs = _training(), validation_split(60, 12, seed=0)
    rec = run_selection("sel-projection", 8, data, vs, n_trials=5, echo=lambda s: None)
    from hashbench.evaluation import mean_average_precision

    for t in rec["trials"]:  # each score is the tie-aware validation mAP of that trial, recomputed here
        h = _Projection(bits=8, k=t["params"]["k"]).fit(data.features[vs.fit])
        expect = mean_average_precision(h.encode(data.features[vs.val]), h.encode(data.features[vs.fit]),
                                        data.labels[vs.val], data.labels[vs.fit], topk=5000, ties="tie-aware")
        assert t["score"] == pytest.approx(expect)
    assert rec["best_score"] == max(t["score"] for t in rec["trials"])
    assert rec["params"]["k"] == rec["chosen"]["k"] and rec["n_trials_run"] == 5 and rec["grid_size"] == 5


def test_label_free_uses_the_methods_own_objective(projection):
    rec = run_selection("sel-objective", 8, _training(), validation_split(60, 12, 0), criterion="label-free",
                        n_trials=5, echo=lambda s: None)
    assert rec["chosen"] == {"k": 2}
    assert {t["params"]["k"]: t["objective"] for t in rec["trials"]}[0] == 2.5
    assert all(t["measure"].startswith("minus the method's own") for t in rec["trials"])


def test_label_free_generic_criterion_reads_no_label(projection):
    data = _training()
    scrambled = TrainingData(ids=data.ids, features=data.features, labels=data.labels[::-1].copy())
    vs = validation_split(60, 12, 0)
    a = run_selection("sel-projection", 8, data, vs, criterion="label-free", n_trials=5, echo=lambda s: None)
    b = run_selection("sel-projection", 8, scrambled, vs, criterion="label-free", n_trials=5, echo=lambda s: None)
    assert [t["score"] for t in a["trials"]] == [t["score"] for t in b["trials"]]
    assert a["trials"][0]["measure"].startswith("Euclidean-neighbour")
    # ... while the labels criterion does read them (the invariance above is not vacuous)
    c = run_selection("sel-projection", 8, data, vs, n_trials=5, echo=lambda s: None)
    d = run_selection("sel-projection", 8, scrambled, vs, n_trials=5, echo=lambda s: None)
    assert [t["score"] for t in c["trials"]] != [t["score"] for t in d["trials"]]


def test_neighbour_relevance_matches_brute_force():
    rng = np.random.default_rng(1)
    v, f = rng.standard_normal((7, 5)), rng.standard_normal((50, 5))
    q_lab, f_lab = neighbour_relevance(v, f, fraction=0.1)
    dist = ((v[:, None, :] - f[None, :, :]) ** 2).sum(-1)
    for q in range(7):
        expect = set(np.argsort(dist[q])[:5])
        shared = {j for j in range(50) if (q_lab[q] & f_lab[j]).any()}
        assert shared == expect


# ----------------------------------------------------------------- storage and resume
def test_interrupted_selection_resumes_without_repeating_finished_trials(projection, tmp_path):
    data, vs = _training(), validation_split(60, 12, seed=0)
    kw = dict(n_trials=4, echo=lambda s: None)
    reference = run_selection("sel-projection", 8, data, vs, **kw)
    order = [t["params"]["k"] for t in reference["trials"]]
    folder = tmp_path / "sel"
    _Projection.fits, _Projection.interrupt_at = [], order[2]
    with pytest.raises(KeyboardInterrupt):
        run_selection("sel-projection", 8, data, vs, folder=folder, **kw)
    assert _Projection.fits == order[:2]
    assert len((folder / "trials.jsonl").read_text().splitlines()) == 2
    _Projection.fits = []
    resumed = run_selection("sel-projection", 8, data, vs, folder=folder, **kw)
    assert _Projection.fits == order[2:]  # only the unfinished trials ran
    assert [(t["params"], t["score"]) for t in resumed["trials"]] == \
        [(t["params"], t["score"]) for t in reference["trials"]]
    assert json.loads((folder / "selection.json").read_text())["chosen"] == reference["chosen"]
    # a line cut short by an interruption is run again, with a warning
    lines = (folder / "trials.jsonl").read_text().splitlines()
    (folder / "trials.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])
    _Projection.fits = []
    with pytest.warns(UserWarning, match="unreadable trial"):
        run_selection("sel-projection", 8, data, vs, folder=folder, **kw)
    assert _Projection.fits == [order[3]]
    # another configuration in the same folder is refused; --force starts afresh
    with pytest.raises(ResultsError, match="another configuration"):
        run_selection("sel-projection", 8, data, vs, folder=folder, n_trials=3, echo=lambda s: None)
    _Projection.fits = []
    run_selection("sel-projection", 8, data, vs, folder=folder, n_trials=3, force=True, echo=lambda s: None)
    assert len(_Projection.fits) == 3


# ----------------------------------------------------------------- never a query item
class _Split(TinyDataset):
    """The tiny set with a database larger than the training role (database-only items exist)."""

    name = "sel-tiny"

    def make_split(self, seed: int = 0):
        return random_split(len(self), self.n_query, seed=seed, protocol="random", n_train=40)


class _Poisoned(_Split):
    """Query and database-only items poisoned: shuffled labels, garbage tags, images that cannot be read."""

    name = "sel-tiny"

    def __init__(self, **kw):
        super().__init__(**kw)
        split = self.make_split(0)
        other = np.setdiff1d(np.arange(len(self)), split.train)
        rng = np.random.default_rng(99)
        self.labels = self.labels.copy()
        self.labels[other] = np.eye(4, dtype=np.uint8)[rng.integers(0, 4, other.size)]
        for i in other:
            self.tags[i] = ["poison", "yellow", "red"]
        self._poisoned = set(other.tolist())

    def load_image(self, index):
        if index in self._poisoned:
            raise DataError(f"selection read the image of item {index}, which is not in the training role")
        return super().load_image(index)


def _clean_factory(**kw):
    return _Split(**kw)


def _poisoned_factory(**kw):
    return _Poisoned(**kw)


register_dataset("sel-tiny-clean", summary="tests only")(_clean_factory)
register_dataset("sel-tiny-poisoned", summary="tests only")(_poisoned_factory)


def _tune(tmp_path, dataset, methods, criterion="labels", **kw):
    cfg = TuneConfig(dataset=dataset, methods=methods, bits=[8], criterion=criterion, trials=3, val_size=10,
                     results=tmp_path / dataset, progress=False, **kw)
    return tune(cfg, echo=lambda s: None)


def _outcome(records):
    return [(r["method"], r["chosen"], [(t["params"], round(t["score"], 12)) for t in r["trials"]]) for r in records]


def test_selection_never_reads_a_query_or_database_only_item(tmp_path):
    clean_ds, poisoned_ds = _Split(), _Poisoned()
    split = clean_ds.make_split(0)
    assert np.setdiff1d(split.database, split.train).size > 0  # database-only items exist
    assert (clean_ds.labels[split.query] != poisoned_ds.labels[split.query]).any()
    for criterion in ("labels", "label-free"):
        clean = _tune(tmp_path / criterion, "sel-tiny-clean", ["itq", "dsh"], criterion)
        poisoned = _tune(tmp_path / criterion, "sel-tiny-poisoned", ["itq", "dsh"], criterion)
        assert _outcome(clean) == _outcome(poisoned)
        assert all(r["n_trials_run"] == 3 for r in clean)
    saved = list((tmp_path / "labels" / "sel-tiny-clean" / "sel-tiny" / "selection" / "validation").glob("*.json"))
    assert len(saved) == 1
    vs = json.loads(saved[0].read_text())
    train_ids = {clean_ds.ids[i] for i in split.train}
    assert set(vs["validation"]) | set(vs["fit"]) == train_ids and not set(vs["validation"]) & set(vs["fit"])


def test_tune_then_run_selected_records_the_selection_in_each_cell(tmp_path, capsys):
    res = str(tmp_path / "res")
    common = ["--dataset", "tiny-test", "-q", "--results", res]
    assert main(["tune", *common, "--methods", "itq,lsh", "--bits", "8", "--trials", "2", "--val-size", "12"]) == 0
    out = capsys.readouterr().out
    assert "itq 8 bits, criterion labels (2 of 3 grid points, budget 2)" in out
    assert main(["run", *common, "--no-report", "--methods", "itq,lsh", "--bits", "8", "--selected", "labels"]) == 0
    cells = {c.record["method"]["name"]: c.record for c in iter_cells(res)}
    sel = cells["itq"]["method"]["selection"]
    assert sel["criterion"] == "labels" and sel["n_trials_run"] == 2
    assert cells["itq"]["method"]["params"]["n_iter"] == sel["chosen"]["n_iter"]
    assert cells["lsh"]["method"]["selection"]["chosen"] == {}
    # the report says, per method, what it ran with and how it was chosen; deep methods' stopping epochs
    register_method("sel-deep")(_DeepStub)
    try:
        assert main(["run", *common, "--no-report", "--methods", "sel-deep", "--bits", "8,16"]) == 0
    finally:
        unregister_method("sel-deep")
    from hashbench.reports import generate_reports

    generate_reports(res, tmp_path / "rep", figures=False)
    rows = {r["method"]: r for r in hyperparameter_rows(load_report_data(res))}
    assert rows["ITQ"]["hyper-parameters"] == f"n_iter={sel['chosen']['n_iter']}"
    assert "selected on a validation split" in rows["ITQ"]["how chosen"] and "`labels`" in rows["ITQ"]["how chosen"]
    assert rows["deep stub"]["how chosen"].startswith("the method's defaults")
    assert rows["deep stub"]["stopping epoch (best of run)"] == "2 of 4 (max 9) (8 bits), 3 of 5 (max 9) (16 bits)"
    index = (tmp_path / "rep" / "index.md").read_text()
    assert "## Hyper-parameters and model selection" in index and "n_iter=" in index
    # no stored selection for these bits: a clear error that says which tune command makes it
    assert main(["run", *common, "--no-report", "--methods", "itq", "--bits", "16", "--selected", "labels"]) == 2
    assert "tune --methods itq --bits 16 --criterion labels" in capsys.readouterr().err


def test_tune_refuses_an_unknown_configuration_and_a_too_large_validation_split(tmp_path, capsys):
    common = ["tune", "--dataset", "tiny-test", "-q", "--results", str(tmp_path / "r"), "--bits", "8"]
    assert main([*common, "--methods", "itq@nope"]) == 2
    assert "has no configuration 'nope'" in capsys.readouterr().err
    assert main([*common, "--methods", "itq", "--val-size", "500"]) == 2
    assert "validation split of 500 items is larger than the training role" in capsys.readouterr().err


def test_a_parameter_both_fixed_and_searched_is_refused(projection):
    with pytest.raises(ConfigError, match="k both fixed"):
        run_selection("sel-projection", 8, _training(), validation_split(60, 12, 0), params={"k": 1},
                      echo=lambda s: None)
    with pytest.raises(ConfigError, match="unknown selection criterion 'mAP'"):
        run_selection("sel-projection", 8, _training(), validation_split(60, 12, 0), criterion="mAP",
                      echo=lambda s: None)


# ----------------------------------------------------------------- ties, the selection key, chunks, the saved split
class _Tied(_Projection):
    """Its own label-free objective is 0 for k in {1, 3} and 1 otherwise: two trials tie for the best."""

    def heldout_objective(self, features=None, tags=None, images=None):
        return 0.0 if self.k in (1, 3) else 1.0


@pytest.mark.parametrize("search_seed", range(4))
def test_tied_scores_choose_the_earliest_trial_of_the_plan(projection, search_seed):
    register_method("sel-tied")(_Tied)
    try:
        rec = run_selection("sel-tied", 8, _training(), validation_split(60, 12, 0), criterion="label-free",
                            n_trials=5, search_seed=search_seed, echo=lambda s: None)
    finally:
        unregister_method("sel-tied")
    order = [t["params"]["k"] for t in rec["trials"]]
    first_tied = min(i for i, k in enumerate(order) if k in (1, 3))
    assert sorted(order) == [0, 1, 2, 3, 4]
    assert rec["best_trial"] == first_tied and rec["chosen"] == {"k": order[first_tied]}
    assert rec["best_score"] == 0.0
    # every trial tied: the first trial of the plan, whatever its parameters
    every = run_selection("sel-projection", 8, _training(), validation_split(60, 12, 0), space={"scale": [1.0, 2.0, 3.0]},
                          n_trials=3, search_seed=search_seed, echo=lambda s: None)
    assert len({t["score"] for t in every["trials"]}) == 1  # the projection ignores scale: every score ties
    assert every["best_trial"] == 0 and every["chosen"] == every["trials"][0]["params"]


_KEY_BASE = dict(criterion="labels", n_trials=2, search_seed=0, seed=0, params={"scale": 1.0}, space={"k": [0, 1, 2]},
                 topk=50, context={"dataset": {"name": "d", "ids_sha256": "a"}, "split_key": "s1", "backbone": {"w": 1}})


@pytest.mark.parametrize("change", [
    {"bits": 16},
    {"criterion": "label-free"},
    {"n_trials": 3},
    {"search_seed": 1},
    {"seed": 1},
    {"params": {"scale": 2.0}},
    {"space": {"k": [0, 1, 3]}},
    {"topk": 40},
    {"topk": None},
    {"vsplit": (12, 1)},  # another validation seed
    {"vsplit": (13, 0)},  # another validation size
    {"context": {**_KEY_BASE["context"], "dataset": {"name": "d", "ids_sha256": "b"}}},
    {"context": {**_KEY_BASE["context"], "split_key": "s2"}},
    {"context": {**_KEY_BASE["context"], "backbone": {"w": 2}}},
    {"method": "sel-objective"},
])
def test_resuming_under_any_other_setting_that_changes_the_result_is_refused(projection, tmp_path, change):
    """Every field that changes a trial's score or the choice is in the selection key: a folder tuned
    under one setting (mAP@50, say) is never resumed under another (mAP@40) as if its trials were valid."""
    data = _training()

    def call(**kw):
        args = {**_KEY_BASE, **kw}
        method, bits, vs = args.pop("method", "sel-projection"), args.pop("bits", 8), args.pop("vsplit", (12, 0))
        return run_selection(method, bits, data, validation_split(60, vs[0], vs[1]), folder=tmp_path / "sel",
                             echo=lambda s: None, **args)

    first = call()
    _Projection.fits = []
    assert call()["key"] == first["key"] and _Projection.fits == []  # the same setting resumes: nothing runs again
    with pytest.raises(ResultsError, match="another configuration"):
        call(**change)
    assert _Projection.fits == []  # refused before any trial ran
    assert call(**change, force=True)["key"] != first["key"]


def test_neighbour_relevance_is_right_past_the_first_chunk_of_queries():
    rng = np.random.default_rng(4)
    v, f = rng.standard_normal((11, 6)), rng.standard_normal((40, 6))
    dist = ((v[:, None, :] - f[None, :, :]) ** 2).sum(-1)
    expect = np.zeros((40, 11), dtype=np.uint8)
    for q in range(11):
        expect[np.argsort(dist[q])[:4], q] = 1  # k = round(0.1 * 40) nearest fit items
    for chunk in (1, 3, 4, 11, 256):  # many chunks, a short last one, exactly one, more than enough
        q_lab, f_lab = neighbour_relevance(v, f, fraction=0.1, chunk=chunk)
        np.testing.assert_array_equal(q_lab, np.eye(11, dtype=np.uint8))
        np.testing.assert_array_equal(f_lab, expect, err_msg=f"chunk={chunk}")


class _ImageSpy(Hasher):
    """Learns nothing; records which dataset items it was fitted on and asked to encode."""

    requires = frozenset({"images"})
    search_space: dict = {}
    calls: list[tuple[str, list[int]]] = []

    def _fit(self, features, images):
        type(self).calls.append(("fit", images.indices.tolist()))

    def _encode(self, features, images):
        type(self).calls.append(("encode", images.indices.tolist()))
        idx = np.asarray(images.indices)
        return ((idx[:, None] >> np.arange(self.bits)) & 1).astype(np.uint8)


def test_the_saved_validation_split_is_the_one_used(tmp_path):
    """The ids saved as the validation split are exactly the items encoded as validation queries, and its
    fit ids exactly the items fitted on: another lab loading the file gets the very split we scored on."""
    register_method("sel-image-spy")(_ImageSpy)
    _ImageSpy.calls = []
    try:
        (rec,) = _tune(tmp_path, "sel-tiny-clean", ["sel-image-spy"], val_seed=3)
    finally:
        unregister_method("sel-image-spy")
    ds = _Split()
    (fit, fit_items), (enc_v, val_items), (enc_f, fit_again) = _ImageSpy.calls
    assert (fit, enc_v, enc_f) == ("fit", "encode", "encode") and fit_again == fit_items
    (saved,) = (tmp_path / "sel-tiny-clean" / "sel-tiny" / "selection" / "validation").glob("*.json")
    vs = json.loads(saved.read_text())
    assert vs["validation"] == [ds.ids[i] for i in val_items]
    assert vs["fit"] == [ds.ids[i] for i in fit_items]
    assert vs["seed"] == 3 and len(vs["validation"]) == 10 == rec["validation_split"]["validation"]
    assert rec["validation_split_file"] == str(saved.relative_to(tmp_path / "sel-tiny-clean"))


# ----------------------------------------------------------------- from the mutation run's survivors
def _silent(*args, **kw):
    return run_selection(*args, echo=lambda s: None, **kw)


def test_labels_score_is_the_tie_aware_map_at_k_of_the_fit_items(projection):
    from hashbench.evaluation import mean_average_precision

    data, vs = _training(), validation_split(60, 12, seed=0)
    rec = _silent("sel-projection", 8, data, vs, n_trials=5, topk=5)
    at_all = []
    for t in rec["trials"]:
        h = _Projection(bits=8, k=t["params"]["k"]).fit(data.features[vs.fit])
        args = (h.encode(data.features[vs.val]), h.encode(data.features[vs.fit]), data.labels[vs.val],
                data.labels[vs.fit])
        assert t["score"] == pytest.approx(mean_average_precision(*args, topk=5, ties="tie-aware"))
        at_all.append(mean_average_precision(*args, topk=None, ties="tie-aware"))
        assert t["measure"] == "validation mAP@5"
    assert [t["score"] for t in rec["trials"]] != pytest.approx(at_all)  # K matters here
    assert "mAP@5 of validation queries" in rec["criterion_description"]
    whole = _silent("sel-projection", 8, data, vs, n_trials=1, topk=None)
    assert whole["trials"][0]["measure"] == "validation mAP@all" and "mAP@all of" in whole["criterion_description"]


def test_generic_label_free_score_is_the_tie_aware_map_against_feature_neighbours(projection):
    from hashbench.evaluation import mean_average_precision
    from hashbench.selection.criteria import neighbour_score

    data, vs = _training(), validation_split(60, 12, seed=0)
    rec = _silent("sel-projection", 8, data, vs, criterion="label-free", n_trials=2)
    relevance = neighbour_relevance(data.features[vs.val], data.features[vs.fit])
    for t in rec["trials"]:
        h = _Projection(bits=8, k=t["params"]["k"]).fit(data.features[vs.fit])
        expect = mean_average_precision(h.encode(data.features[vs.val]), h.encode(data.features[vs.fit]), *relevance,
                                        topk=None, ties="tie-aware")
        assert t["score"] == pytest.approx(expect)
    # over the whole fit set, however large (not the evaluator's default K of 5,000)
    rng = np.random.default_rng(3)
    fit_codes, val_codes = rng.integers(0, 2, (6000, 6)), rng.integers(0, 2, (5, 6))
    rel = neighbour_relevance(rng.standard_normal((5, 3)), rng.standard_normal((6000, 3)))
    assert neighbour_score(val_codes, fit_codes, rel) == pytest.approx(
        mean_average_precision(val_codes, fit_codes, *rel, topk=None, ties="tie-aware"))


@pytest.mark.parametrize("seed", range(6))
def test_neighbour_relevance_takes_exactly_the_k_nearest(seed):
    rng = np.random.default_rng(seed)
    n_fit = int(rng.integers(20, 90))
    v, f = rng.standard_normal((9, 4)), rng.standard_normal((n_fit, 4))
    dist = ((v[:, None, :] - f[None, :, :]) ** 2).sum(-1)
    for fraction in (0.005, 0.02, 0.1, 0.3):
        k = max(1, int(round(fraction * n_fit)))
        _, f_lab = neighbour_relevance(v, f, fraction=fraction, chunk=4)
        for q in range(9):
            assert set(np.flatnonzero(f_lab[:, q])) == set(np.argsort(dist[q])[:k]), (fraction, q)


class _Failing(_WithObjective):
    """Its objective is NaN at k = 2 and inf at k = 3, the would-be best trials."""

    def heldout_objective(self, features=None, tags=None, images=None):
        return {2: float("nan"), 3: float("inf")}.get(self.k, abs(self.k - 2) + 0.5)


def test_a_non_finite_objective_ranks_last(projection):
    register_method("sel-failing")(_Failing)
    try:
        rec = _silent("sel-failing", 8, _training(), validation_split(60, 12, 0), criterion="label-free", n_trials=5)
    finally:
        unregister_method("sel-failing")
    trials = {t["params"]["k"]: t for t in rec["trials"]}
    # a non-finite objective is a failed trial (its reason kept, no score), ranked below every finished one
    assert trials[2]["score"] is None and trials[3]["score"] is None
    assert trials[2]["failed"] == "the held-out objective is nan" and "objective is inf" in trials[3]["failed"]
    assert rec["chosen"] in ({"k": 1}, {"k": 4}) and rec["n_failed"] == 2
    assert rec["best_score"] == -1.5


def test_each_trial_records_where_its_training_stopped(projection):
    register_method("sel-deep")(_DeepStub)
    lines: list[str] = []
    try:
        rec = run_selection("sel-deep", 16, _training(), validation_split(60, 12, 0), n_trials=2, echo=lines.append)
    finally:
        unregister_method("sel-deep")
    assert all(t["convergence"] == {"max_epochs": 9, "epochs_run": 5, "best_epoch": 3} for t in rec["trials"])
    assert all("best epoch 3" in s for s in lines)
    assert all(t["fit_s"] >= 0 and t["score_s"] >= 0 for t in rec["trials"])


class _TagSpy(_Projection):
    requires = frozenset({"features", "tags"})
    seen: list = []

    def _fit(self, features, tags):
        type(self).seen.append([list(t) for t in tags])
        super()._fit(features)


def test_a_tag_method_gets_the_fit_items_tags_and_no_tags_is_refused(projection):
    register_method("sel-tags")(_TagSpy)
    _TagSpy.seen = []
    data, vs = _training(), validation_split(60, 12, 0)
    tagged = TrainingData(ids=data.ids, features=data.features, labels=data.labels,
                          tags=[[f"t{i}", "x"] for i in range(60)])
    try:
        _silent("sel-tags", 8, tagged, vs, n_trials=1)
        with pytest.raises(ConfigError, match="learns from tags, and the dataset has none"):
            _silent("sel-tags", 8, data, vs, n_trials=1)
    finally:
        unregister_method("sel-tags")
    assert _TagSpy.seen == [[[f"t{i}", "x"] for i in vs.fit]]


def test_a_blank_line_in_the_trials_file_is_skipped_not_the_end(projection, tmp_path):
    data, vs = _training(), validation_split(60, 12, seed=0)
    folder = tmp_path / "sel"
    _silent("sel-projection", 8, data, vs, n_trials=4, folder=folder)
    lines = (folder / "trials.jsonl").read_text().splitlines()
    (folder / "trials.jsonl").write_text("\n".join(lines[:1] + [""] + lines[1:]) + "\n")
    _Projection.fits = []
    _silent("sel-projection", 8, data, vs, n_trials=4, folder=folder)
    assert _Projection.fits == []  # every finished trial was read, before and after the blank line


def test_a_stored_selection_is_loaded_for_its_split_only_and_summarised(projection, tmp_path):
    from hashbench.selection import load_selection, selection_folder, summary

    data, vs = _training(), validation_split(60, 12, seed=0)
    folder = selection_folder(tmp_path, "ds", "sel-projection", 8, "labels")
    assert folder == tmp_path / "ds" / "selection" / "sel-projection" / "8bits" / "labels"
    rec = _silent("sel-projection", 8, data, vs, n_trials=8, folder=folder, context={"split_key": "s1"})
    loaded = load_selection(tmp_path, "ds", "sel-projection", 8, "labels", split_key="s1")
    assert loaded == json.loads(json.dumps(rec)) and loaded["key"] == rec["key"]
    assert load_selection(tmp_path, "ds", "sel-projection", 8, "labels")["chosen"] == rec["chosen"]
    with pytest.raises(ConfigError, match="made on split s1, this run uses s2; tune again"):
        load_selection(tmp_path, "ds", "sel-projection", 8, "labels", split_key="s2")
    with pytest.raises(ConfigError, match=r"no stored selection for sel-projection at 16 bits \(criterion labels\).*"
                                          r"tune --methods sel-projection --bits 16 --criterion labels"):
        load_selection(tmp_path, "ds", "sel-projection", 16, "labels")
    s = summary(loaded, path="x/selection.json")
    assert s == {"criterion": "labels", "criterion_description": rec["criterion_description"],
                 "chosen": rec["chosen"], "best_score": rec["best_score"], "n_trials_run": 5, "budget": 8,
                 "grid_size": 5, "search_space": {"k": [0, 1, 2, 3, 4]}, "validation_split": rec["validation_split"],
                 "key": rec["key"], "file": "x/selection.json", "failed": []}  # no trial failed
    assert rec["validation_split"] == {"seed": 0, "key": vs.key(data.ids), "fit": 48, "validation": 12}
    assert {k: rec[k] for k in ("method", "base_method", "bits", "seed", "criterion", "topk", "budget",
                                "search_seed", "fixed_params", "split_key")} == {
        "method": "sel-projection", "base_method": "sel-projection", "bits": 8, "seed": 0, "criterion": "labels",
        "topk": 5000, "budget": 8, "search_seed": 0, "fixed_params": {}, "split_key": "s1"}
    assert rec["params"] == rec["chosen"] and rec["grid_size"] == 5 == rec["n_trials_run"]  # the budget covers the grid
    (folder / "selection.json").write_text("{not json")
    with pytest.raises(ResultsError, match="not valid JSON"):
        load_selection(tmp_path, "ds", "sel-projection", 8, "labels")
