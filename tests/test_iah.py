"""Supervised methods in the interface, IAH, and category-aware retrieval."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import hashbench
from hashbench import ConfigError, DataError, Hasher
from hashbench.cli import main
from hashbench.datasets import get_dataset
from hashbench.evaluation import EvalConfig
from hashbench.evaluation.category import evaluate_category_aware
from hashbench.features.regions import grid_proposals
from hashbench.registry import register_method, unregister_method
from hashbench.runner import RunConfig, Runner, resolve_methods
from hashbench.store import iter_cells
from hashbench_methods.iah import IAH, category_triplet_loss, semantic_triplet_loss


# ------------------------------------------------------------ category-aware metric
def _brute_ap(dist: np.ndarray, rel: np.ndarray, k: int) -> float:
    order = np.argsort(dist, kind="stable")[:k]  # index ties: stable sort on distance
    r = rel[order]
    if r.sum() == 0:
        return 0.0
    prec = np.cumsum(r) / np.arange(1, r.size + 1)
    return float((prec * r).sum() / r.sum())


def test_category_aware_map_equals_brute_force():
    rng = np.random.default_rng(3)
    nq, ndb, n_cat, b = 12, 40, 5, 6
    qp = rng.integers(0, 2, (nq, n_cat, b))
    dp = rng.integers(0, 2, (ndb, n_cat, b))
    ql = rng.integers(0, 2, (nq, n_cat))
    dl = rng.integers(0, 2, (ndb, n_cat))
    ql[:, 4] = 0  # a category no query asks for is left out of the mean
    res = evaluate_category_aware(qp, dp, ql, dl, EvalConfig(topk=(10, None), ties="index", device="cpu"))
    expected = {}
    for k, key in ((10, "mAP@10"), (ndb, "mAP@all")):
        per_cat = []
        for c in range(n_cat):
            asking = np.flatnonzero(ql[:, c])
            if asking.size == 0:
                continue
            aps = [_brute_ap(np.abs(dp[:, c] - qp[q, c]).sum(1), dl[:, c], k) for q in asking]
            per_cat.append(np.mean(aps))
        expected[key] = np.mean(per_cat)
    assert res.metrics["category-aware mAP@10"] == pytest.approx(expected["mAP@10"], abs=1e-12)
    assert res.metrics["category-aware mAP@all"] == pytest.approx(expected["mAP@all"], abs=1e-12)
    assert set(res.per_category) == {"0", "1", "2", "3"}
    assert res.metrics["category-aware chance"] == pytest.approx(np.mean(dl[:, :4].mean(0)))
    assert res.per_category["2"]["queries"] == int(ql[:, 2].sum())


def test_category_aware_input_errors():
    with pytest.raises(DataError, match="categories"):
        evaluate_category_aware(np.zeros((2, 3, 4)), np.zeros((5, 2, 4)), np.ones((2, 3)), np.ones((5, 3)))
    with pytest.raises(DataError, match="no query carries"):
        evaluate_category_aware(np.zeros((2, 3, 4)), np.zeros((5, 3, 4)), np.zeros((2, 3)), np.ones((5, 3)))


# ------------------------------------------------------------------ IAH's losses
def test_triplet_losses_match_explicit_loops():
    g = torch.Generator().manual_seed(0)
    k, n_cat, b, m = 6, 3, 5, 0.25
    h = torch.rand(k, b, generator=g)
    pieces = torch.rand(k, n_cat, b, generator=g)
    y = torch.tensor([[1, 0, 1], [1, 1, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 1]], dtype=torch.float32)
    sem_terms, cat_terms = [], []
    for a, p, n in itertools.product(range(k), repeat=3):
        if a == p or a == n:
            continue
        d = lambda u, v: float(((u - v) ** 2).sum()) / b  # noqa: E731
        if float(y[a] @ y[p]) > float(y[a] @ y[n]):
            sem_terms.append(max(0.0, m + d(h[a], h[p]) - d(h[a], h[n])))
        for c in range(n_cat):
            if y[a, c] and y[p, c] and not y[n, c]:
                cat_terms.append(max(0.0, m + d(pieces[a, c], pieces[p, c]) - d(pieces[a, c], pieces[n, c])))
    assert semantic_triplet_loss(h, y, m).item() == pytest.approx(np.mean(sem_terms), rel=1e-5)
    assert category_triplet_loss(pieces, y, m).item() == pytest.approx(np.mean(cat_terms), rel=1e-5)


def test_grid_proposals():
    boxes = grid_proposals(2)
    assert boxes[0] == (0.0, 0.0, 1.0, 1.0) and len(boxes) == 5
    assert all(x1 - x0 == pytest.approx(2 / 3) for x0, _, x1, _ in boxes[1:])
    assert len(grid_proposals(3)) == 10 and grid_proposals(0) == [(0.0, 0.0, 1.0, 1.0)]
    with pytest.raises(ConfigError):
        grid_proposals(-1)


# ----------------------------------------------------------- supervised interface
class _LabelSpy(Hasher):
    requires = frozenset({"features", "labels"})
    seen: list = []

    def _fit(self, features, labels):
        type(self).seen.append(np.array(labels))

    def _encode(self, features):
        return np.zeros((features.shape[0], self.bits), dtype=np.uint8)


def test_all_means_unsupervised_and_supervised_is_asked_for():
    ds = get_dataset("tiny-test")
    assert "iah" not in resolve_methods(["all"], ds)
    assert "iah" in resolve_methods(["all", "supervised"], ds)
    assert resolve_methods(["supervised"], ds) == ["iah"]
    assert IAH.is_supervised() and not hashbench.get_method("itq").is_supervised()
    assert IAH.info()["supervised"] is True


def test_supervised_fit_gets_training_labels_only(tmp_path):
    """Poison every label outside the training role: the spy still sees the clean training labels."""
    register_method("_label-spy")(_LabelSpy)
    try:
        _LabelSpy.seen.clear()
        cfg = RunConfig(dataset="synthetic", dataset_options={"n_items": 200, "n_query": 40, "n_train": 60},
                        methods=["_label-spy"], bits=[8], results=tmp_path / "r", progress=False)
        runner = Runner(cfg, echo=lambda s: None)
        split = runner.split
        clean = runner.dataset.labels.copy()
        outside = np.setdiff1d(np.arange(len(runner.dataset)), split.train)
        assert outside.size > 100  # queries and database-only items exist
        runner.dataset.labels = clean.copy()
        runner.dataset.labels[outside] = 1 - runner.dataset.labels[outside]  # poisoned
        runner.run()
        (seen,) = _LabelSpy.seen
        np.testing.assert_array_equal(seen, clean[split.train])
    finally:
        unregister_method("_label-spy")


def test_supervised_method_without_labels_is_refused(rng):
    with pytest.raises(DataError, match="supervised"):
        _LabelSpy(bits=4).fit(rng.standard_normal((10, 5)))
    with pytest.raises(DataError, match="0 and 1"):
        _LabelSpy(bits=4).fit(rng.standard_normal((10, 5)), labels=np.full((10, 3), 2))


# ----------------------------------------------------------------------- IAH
@pytest.fixture(scope="module")
def iah_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("iah")
    results = tmp / "results"
    code = main(["run", "--methods", "iah,lsh", "--bits", "16", "-q", "--dataset", "synthetic",
                 "-D", "n_items=400", "-D", "n_query=80", "--results", str(results), "--no-report",
                 "--param", "iah.max_epochs=12"])
    assert code == 0
    records = {c.record["method"]["name"]: c.record for c in iter_cells(results)}
    records["_results"] = results
    return records


def test_iah_run_stores_both_modes(iah_run):
    rec = iah_run["iah"]
    m = rec["metrics"]
    assert {"mAP@5000", "category-aware mAP@5000", "category-aware mAP@all"} <= set(m)
    assert rec["method"]["supervised"] is True
    assert rec["category_aware"]["per_category"]
    conv = rec["fit_info"]["convergence"]
    assert 1 <= conv["best_epoch"] <= conv["epochs_run"] <= 12
    assert len(rec["history"]["heldout"]) == conv["epochs_run"]


def test_iah_learns_from_labels(iah_run):
    """A supervised method beats chance and an unsupervised random projection by a wide margin."""
    iah, lsh = iah_run["iah"]["metrics"], iah_run["lsh"]["metrics"]
    assert iah["mAP@all"] > iah["chance"] + 0.1
    assert iah["mAP@all"] > lsh["mAP@all"] + 0.05
    # category-aware retrieval against its own chance level (mean frequency of each category)
    assert iah["category-aware mAP@all"] > iah["category-aware chance"] + 0.1
    hist = iah_run["iah"]["history"]
    assert hist["total"][-1] < hist["total"][0]


def test_iah_is_seeded_and_checks_parameters():
    with pytest.raises(ConfigError, match="hidden"):
        IAH(hidden=1)._check_params()
    with pytest.raises(ConfigError, match="patience"):
        IAH(patience=0)._check_params()


@pytest.mark.parametrize("name", ["mirflickr25k", "nuswide"])
def test_iah_runs_on_the_real_dataset_fixtures(tmp_path, name):
    from .test_datasets_end_to_end import CASES

    writer, options = CASES[name]
    root = tmp_path / "data"
    writer(root)
    rc = main(["-q", "run", "--dataset", name, "--data-root", str(root), *options, "--methods", "iah",
               "--bits", "8", "--results", str(tmp_path / "res"), "--cache-dir", str(tmp_path / "cache"),
               "--weights", "random", "--no-report", "--param", "iah.max_epochs=2", "--param", "iah.batch_size=8"])
    assert rc == 0
    (cell,) = iter_cells(tmp_path / "res")
    m = cell.record["metrics"]
    assert 0 <= m["category-aware mAP@all"] <= 1 and 0 <= m["mAP@all"] <= 1


def test_report_keeps_the_supervised_reference_apart_and_unranked(iah_run, tmp_path):
    from hashbench.reports import generate_reports

    generate_reports(iah_run["_results"], tmp_path / "rep", figures=False)
    md = (tmp_path / "rep" / "tables" / "map-at-all.md").read_text()
    assert "Supervised references" in md
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ") and "bits" not in line}
    iah_row = next(v for k, v in rows.items() if k.startswith("IAH"))
    lsh_row = next(v for k, v in rows.items() if k.startswith("LSH"))
    assert "supervised reference" in iah_row and "**" not in iah_row  # better, but never marked best
    assert "**" in lsh_row  # the best unsupervised method is
    names = [k for k in rows]
    assert names.index(next(k for k in names if k.startswith("IAH"))) > names.index(next(k for k in names if k.startswith("LSH")))
    tex = (tmp_path / "rep" / "tables" / "map-at-all.tex").read_text()
    assert tex.count("\\midrule") >= 3  # header, then LSH | IAH | chance separated
    html = (tmp_path / "rep" / "index.html").read_text()
    first = html.index('<tr class="supervised-first">')  # the HTML table's rule, above the IAH row
    assert html.index(">IAH", first) < html.index("</tr>", first) and html.count("supervised-first\">") >= 1


def test_report_has_a_category_aware_table(iah_run, tmp_path):
    from hashbench.reports import generate_reports

    generate_reports(iah_run["_results"], tmp_path / "rep", figures=False)
    md = (tmp_path / "rep" / "tables" / "category-aware-map-at-all.md").read_text()
    assert "Category-aware retrieval" in md
    value = iah_run["iah"]["metrics"]["category-aware mAP@all"]
    assert f"{value:.4f}" in md and "LSH" not in md.split("|", 1)[1]  # only the method that has pieces
