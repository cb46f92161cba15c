"""Reports: table structure and marks, significance, LaTeX that compiles, figures, index.

Every test reads a small results folder that the test writes with ``write_cell``, built so
that the answer is known by construction: which method is best and second in each column,
which win is significant, what the means and standard deviations are.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hashbench import ConfigError, ResultsError
from hashbench.reports import generate_reports
from hashbench.reports.collect import load_report_data, method_sort_key, metric_sort_key
from hashbench.reports.plots import DPI, FIGSIZE
from hashbench.reports.significance import paired_bootstrap, paired_test
from hashbench.reports.tables import build_table
from hashbench.store import cell_path, write_cell

Q = 200  # queries
METHODS = {  # name: (display name, deep)
    "alpha": ("Alpha", False),
    "beta": ("BETA", False),
    "gamma": ("Gamma-Net", True),
}
CHANCE = {"toy-a": 0.30, "toy-b": 0.40}


def _per_query_ap(dataset: str, method: str, bits: int, seed: int) -> np.ndarray:
    """Per-query AP, built so that each column's winner and its significance are known.

    toy-a  8 bits: Gamma-Net = base + .08 (a clear, significant win), BETA = base (second).
    toy-a 16 bits: BETA beats Alpha (base + .10 averaged over its two seeds) by .0005 on
                   average, under per-query noise of sd .1: printed apart, but not
                   significant. Gamma-Net = base.
    toy-b  8 bits: Alpha (over its seeds) and BETA print the same (a tie: both bold, no
                   test), Gamma-Net = base.
    Alpha's seed 1 is its seed 0 plus .01 everywhere.
    """
    rng = np.random.default_rng(7)
    base = rng.uniform(0.2, 0.7, Q)
    z = rng.normal(0, 0.1, Q)
    noise = z - z.mean()  # exactly zero mean
    table = {
        ("toy-a", 8): {"alpha": base - 0.05, "beta": base, "gamma": base + 0.08},
        ("toy-a", 16): {"alpha": base + 0.095, "beta": base + 0.10 + 0.0005 + noise, "gamma": base},
        ("toy-b", 8): {"alpha": base + 0.015, "beta": base + 0.02, "gamma": base},
    }
    ap = table[(dataset, bits)][method].copy()
    if method == "alpha" and seed == 1:
        ap += 0.01
    return ap


def _record(dataset: str, method: str, bits: int, seed: int, *, ties: str = "index", weights: str = "random"):
    ap = _per_query_ap(dataset, method, bits, seed)
    display, deep = METHODS[method]
    metrics = {
        "mAP@5000": float(np.mean(ap * 0.9)),
        "mAP@all": float(np.mean(ap)),
        "P@100": float(np.mean(ap * 1.1)),
        "R@r2": float(np.mean(ap * 0.2)),
        "chance": CHANCE[dataset],
    }
    history = {}
    if method == "gamma" and dataset == "toy-a":  # UDHT-like: three loss components
        steps = np.arange(1, 31)
        history = {"L1": list(1.0 / steps), "L2": list(10.0 / steps + 0.5), "L3": list(0.1 * np.exp(-steps / 10)),
                   "heldout": list(0.02 + 0.001 * (steps - 25.0) ** 2 / 25)}
    record = {
        "cell_key": f"{dataset}-{method}-{bits}-{seed}-{ties}",
        "hashbench_version": "0.1.0",
        "dataset": {
            "key": dataset,
            "name": dataset,
            "split": {"protocol": "paper", "seed": 0, "sizes": {"query": Q, "database": 3000, "train": 3000},
                      "key": f"split-{dataset}"},
            "chance": CHANCE[dataset],
            "summary": f"a test dataset called {dataset}",
        },
        "method": {"name": method, "display_name": display, "deep": deep, "paper": "Someone, 2020", "params": {}},
        "bits": bits,
        "seed": seed,
        "features": {
            "backbone": {"name": "alexnet-fc2", "weights": weights, "seed": 0, "resize": 64, "crop": 64},
            "description": f"AlexNet FC2 (4096-d), {weights} weights",
        },
        "evaluation": {"ties": ties, "empty": "zero", "seed": 0, "topk": [5000, None],
                       "topk_effective": [3000, 3000], "n_db": 3000, "n_query": Q,
                       "precision_at_effective": [10, 100, 1000]},
        "metrics": metrics,
        "timings": {"fit_s": 1.0},
        "history": history,
        "fit_info": {"convergence": {"epochs_run": 30, "best_epoch": 25, "phase": "train", "history_offset": 0,
                                     "stopped_because": "no held-out improvement > 0.0001 for 5 epochs"}}
        if history else {},
        "provenance": {"code_version": "0.1.0+gtest", "git_commit": "abc123", "python": "3.11", "platform": "test",
                       "libraries": {"numpy": np.__version__}, "hardware": {"cores": 2, "gpu": None},
                       "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:01:00+00:00",
                       "command": "python -m hashbench run --test"},
    }
    rec = np.linspace(0.001, 1.0, 1000)
    k = {"alpha": 1.0, "beta": 2.0, "gamma": 4.0}[method]
    curves = {
        "pr_recall": rec,
        "pr_precision": CHANCE[dataset] + (1 - CHANCE[dataset]) * (1 - rec) ** k,
        "precision_at_n_n": np.array([10, 100, 1000]),
        "precision_at_n": np.array([0.9, 0.7, 0.5]) / k ** 0.1,
        "radius_precision": np.linspace(0.9, 0.3, bits + 1),
        "radius_recall": np.linspace(0.0, 1.0, bits + 1),
    }
    per_query = {"AP@5000": ap * 0.9, "AP@all": ap, "P@100": ap * 1.1, "R@r2": ap * 0.2}
    return record, curves, per_query


GRID = [("toy-a", m, b, s) for m in METHODS for b in (8, 16) for s in ((0, 1) if m == "alpha" else (0,))] + [
    ("toy-b", m, 8, s) for m in METHODS for s in ((0, 1) if m == "alpha" else (0,))
]


def write_results(root: Path, grid=GRID, **kw) -> Path:
    rng = np.random.default_rng(0)
    for dataset, method, bits, seed in grid:
        record, curves, per_query = _record(dataset, method, bits, seed, **kw)
        write_cell(cell_path(root, dataset, method, bits, seed), record,
                   query_codes=rng.integers(0, 2, (4, bits)), database_codes=rng.integers(0, 2, (6, bits)),
                   curves=curves, per_query=per_query)
    return root


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One full report (tables, figures in PNG and PDF, index) shared by the read-only tests."""
    root = write_results(tmp_path_factory.mktemp("results"))
    out = tmp_path_factory.mktemp("reports")
    paths = generate_reports(root, out, formats=("png", "pdf"))
    return root, out, paths


def _latex_rows(tex: str) -> dict[str, list[str]]:
    """Body rows of a tabular: first cell -> the other cells."""
    body = tex.split("\\midrule", 1)[1].split("\\bottomrule")[0]
    rows = {}
    for line in body.strip().split("\n"):
        line = line.strip()
        if line.endswith("\\\\"):
            cells = [c.strip() for c in line[:-2].split(" & ")]
            rows[cells[0]] = cells[1:]
    return rows


# ------------------------------------------------------------------ significance
def test_identical_per_query_values_are_not_significant():
    a = np.random.default_rng(1).uniform(0, 1, 300)
    for test in ("bootstrap", "wilcoxon"):
        r = paired_test(a, a.copy(), test=test)
        assert r.mean_diff == 0 and r.p == 1.0 and not r.significant


def test_clear_shift_is_significant_and_only_for_the_higher_mean():
    rng = np.random.default_rng(2)
    b = rng.uniform(0.2, 0.8, 300)
    a = b + 0.03 + rng.normal(0, 0.05, 300)
    for test in ("bootstrap", "wilcoxon"):
        assert paired_test(a, b, test=test).significant
        assert paired_test(a, b, test=test).p < 1e-3
        assert not paired_test(b, a, test=test).significant  # b is worse: never a win


def test_zero_mean_noise_is_not_significant_and_bootstrap_interval_covers_zero():
    rng = np.random.default_rng(3)
    b = rng.uniform(0.2, 0.8, 400)
    z = rng.normal(0, 0.1, 400)
    a = b + (z - z.mean())  # mean difference exactly 0 up to rounding
    r = paired_test(a, b, test="bootstrap")
    assert not r.significant and r.p > 0.5
    assert r.ci_low < 0 < r.ci_high


def test_bootstrap_is_seeded_and_independent_of_chunking():
    d = np.random.default_rng(4).normal(0.01, 0.1, 150)
    p1 = paired_bootstrap(d, n_boot=999, seed=5, chunk=7)
    p2 = paired_bootstrap(d, n_boot=999, seed=5, chunk=500)
    assert p1 == p2
    # brute force: the same draws one resample at a time
    rng = np.random.default_rng(5)
    means = np.array([d[rng.integers(0, d.size, d.size)].mean() for _ in range(999)])
    p_ref = (1 + np.sum(np.abs(means - d.mean()) >= abs(d.mean()) - 1e-15)) / 1000
    assert p1[0] == pytest.approx(p_ref)
    assert p1[1:] == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))


def test_nan_queries_are_left_out_of_the_pair():
    a = np.array([0.5, np.nan, 0.7, 0.9])
    b = np.array([0.4, 0.3, np.nan, 0.8])
    r = paired_test(a, b, n_boot=50)
    assert r.n == 2 and r.mean_diff == pytest.approx(0.1)


# ------------------------------------------------------------------ tables
def test_metric_order_is_the_papers():
    names = ["R@r2", "P@r2", "mAP@all", "P@1000", "mAP@5000", "P@100", "mAP@50000", "mAP@1000"]
    assert sorted(names, key=metric_sort_key) == [
        "mAP@50000", "mAP@5000", "mAP@1000", "mAP@all", "P@100", "P@1000", "P@r2", "R@r2"
    ]


def test_method_order_is_the_papers_then_other_methods_by_name():
    rows = [("udht", "UDHT", True), ("zeta", "Zeta", False), ("itq", "ITQ", False), ("mine", "A new method", True),
            ("sh", "SH", False), ("tag-binary", "Tag-binary baseline", True), ("lsh", "LSH", False),
            ("dsh", "DSH", False), ("alpha", "alpha", False), ("deepbit", "DeepBit", True), ("dh", "DH", True),
            ("uh-bdnn", "UH-BDNN", True), ("agh", "AGH", False), ("deepbit-e2e", "DeepBit (end to end)", True)]
    ordered = [r[0] for r in sorted(rows, key=lambda r: method_sort_key(*r))]
    # Table 2: ITQ, PCAH, LSH, DSH, SpH, SH, AGH, DH, UH-BDNN, DeepBit, baseline, UDHT; a new method after them
    assert ordered == ["itq", "lsh", "dsh", "sh", "agh", "alpha", "zeta", "dh", "uh-bdnn", "deepbit", "deepbit-e2e",
                       "tag-binary", "udht", "mine"]


def test_table_rows_columns_values_and_marks(tmp_path):
    root = write_results(tmp_path)
    data = load_report_data(root)
    (group,) = data.groups
    t = build_table(data, group, "mAP@all")
    # rows: non-deep sorted by display name, then deep
    assert [r[1] for r in t.rows] == ["Alpha", "BETA", "Gamma-Net"]
    assert [r[2] for r in t.rows] == [False, False, True]
    # columns: one group per dataset, one column per bit length of that dataset
    assert [(p.label, b) for p, b in t.columns] == [("toy-a", 8), ("toy-a", 16), ("toy-b", 8)]
    # means and stds by brute force from the constructed per-query APs
    a0 = _per_query_ap("toy-a", "alpha", 8, 0).mean()
    a1 = _per_query_ap("toy-a", "alpha", 8, 1).mean()
    pa = next(p.key for p in t.protocols if p.label == "toy-a")
    pb = next(p.key for p in t.protocols if p.label == "toy-b")
    e = t.entries[("alpha", pa, 8)]
    assert e.n == 2 and e.mean == pytest.approx((a0 + a1) / 2) and e.std == pytest.approx(np.std([a0, a1], ddof=1))
    assert t.entries[("beta", pa, 8)].std is None  # one seed: no ±
    # bold (rank 1) and underline (rank 2) where the construction put them
    assert t.best(pa, 8) == ["gamma"] and t.second(pa, 8) == ["beta"]
    assert t.best(pa, 16) == ["beta"] and t.second(pa, 16) == ["alpha"]
    assert sorted(t.best(pb, 8)) == ["alpha", "beta"] and t.second(pb, 8) == ["gamma"]  # tie: both bold
    # significance: the clear win gets a dagger; the tiny noisy one and the tie do not
    assert t.entries[("gamma", pa, 8)].dagger
    assert not t.entries[("beta", pa, 16)].dagger
    assert (pa, 16) in t.tests and not t.tests[(pa, 16)]["result"].significant
    assert (pb, 8) not in t.tests
    assert not any(e.dagger for (m, p, b), e in t.entries.items() if (p, b) != (pa, 8))
    # chance row per dataset
    assert t.chance == {pa: CHANCE["toy-a"], pb: CHANCE["toy-b"]}
    # recall is not compared with chance
    assert build_table(data, group, "R@r2").chance == {}


def test_latex_layout_bold_underline_and_caption(report):
    _, out, _ = report
    tex = (out / "tables" / "map-at-all.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "\\hline" not in tex  # booktabs
    assert "\\cmidrule(lr){3-4} \\cmidrule(lr){5-5}" in tex
    assert re.search(r"Algorithm & Type & \\multicolumn\{2\}\{c\}\{toy-a\} & toy-b", tex)
    assert re.search(r"&\s*&\s*8 bits & 16 bits & 8 bits", tex)
    rows = _latex_rows(tex)
    assert list(rows) == ["Alpha", "BETA", "Gamma-Net", "Chance"]
    assert rows["Gamma-Net"][0] == "deep" and rows["Alpha"][0] == "non-deep"
    # the non-deep, deep and chance blocks are separated by rules
    body = tex.split("\\midrule", 1)[1]
    assert re.search(r"BETA.*\\\\\n\\midrule\nGamma-Net", body) and re.search(r"Gamma-Net.*\\\\\n\\midrule\nChance", body)
    g8 = rows["Gamma-Net"][1]
    assert g8.startswith("\\textbf{") and "$^\\dagger$" in g8
    assert rows["BETA"][1].startswith("\\underline{")
    assert rows["BETA"][2].startswith("\\textbf{") and "dagger" not in rows["BETA"][2]
    assert rows["Alpha"][2].startswith("\\underline{")
    assert rows["Alpha"][3].startswith("\\textbf{") and rows["BETA"][3].startswith("\\textbf{")
    assert "$\\pm$" in rows["Alpha"][1] and "$\\pm$" not in rows["BETA"][1]
    assert rows["Chance"][1:] == ["0.3000", "0.3000", "0.4000"]
    # numbers have 4 decimals
    assert re.fullmatch(r"\\textbf\{0\.\d{4}\$\^\\dagger\$\}", g8)
    cap = re.search(r"\\caption\{(.*)\}\n\\label", tex, re.S).group(1)
    for needle in ("toy-a", "toy-b", "query 200", "database 3,000", "train 3,000", "RANDOM", "NOT ImageNet",
                   "ranked by database index", "counts as AP 0", "bootstrap", "toy-a 0.3000", "toy-b 0.4000"):
        assert needle in cap, needle


def test_markdown_and_csv_hold_the_same_table(report):
    _, out, _ = report
    md = (out / "tables" / "map-at-all.md").read_text()
    lines = [l for l in md.splitlines() if l.startswith("| ")]
    assert lines[0].startswith("| Algorithm | Type | toy-a · 8 bits | toy-a · 16 bits | toy-b · 8 bits |")
    gamma = next(l for l in lines if l.startswith("| Gamma-Net"))
    assert re.search(r"\| \*\*0\.\d{4}†\*\* \|", gamma)
    beta = next(l for l in lines if l.startswith("| BETA"))
    assert "<u>" in beta.split("|")[3]
    frame = pd.read_csv(out / "tables" / "map-at-all.csv")
    assert list(frame["algorithm"]) == ["Alpha", "BETA", "Gamma-Net", "Chance"]
    a = [_per_query_ap("toy-a", "alpha", 16, s).mean() for s in (0, 1)]
    row = frame.set_index("algorithm").loc["Alpha"]
    assert row["toy-a 16 bits"] == pytest.approx(np.mean(a))
    assert row["toy-a 16 bits std"] == pytest.approx(np.std(a, ddof=1))
    assert row["toy-a 16 bits seeds"] == 2


def test_one_table_per_metric_and_significance_csv(report):
    _, out, paths = report
    names = sorted(p.name for p in (out / "tables").glob("*.tex"))
    assert names == ["map-at-5000.tex", "map-at-all.tex", "p-at-100.tex", "r-at-r2.tex"]
    sig = list(csv.DictReader(io.StringIO((out / "tables" / "significance.csv").read_text())))
    mine = [r for r in sig if r["metric"] == "mAP@all"]
    assert {(r["dataset"], r["bits"], r["best"], r["runner_up"], r["significant"]) for r in mine} == {
        ("toy-a", "8", "gamma", "beta", "True"),
        ("toy-a", "16", "beta", "alpha", "False"),
    }
    assert float(next(r for r in mine if r["bits"] == "8")["mean_diff"]) == pytest.approx(0.08)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed (CI installs texlive)")
def test_every_latex_table_compiles(report, tmp_path):
    _, out, _ = report
    tables = sorted((out / "tables").glob("*.tex"))
    assert tables
    doc = tmp_path / "doc.tex"
    doc.write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\begin{document}\n"
        + "".join(f"\\input{{{t.as_posix()}}}\n\\clearpage\n" for t in tables)
        + "\\end{document}\n"
    )
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "doc.pdf").read_bytes().startswith(b"%PDF")
    assert "Overfull" not in (tmp_path / "doc.log").read_text()


# ------------------------------------------------------------------ figures
def test_every_figure_is_a_valid_image_of_the_expected_size(report):
    from PIL import Image

    _, out, paths = report
    stems = sorted({p.relative_to(out).with_suffix("").as_posix() for p in paths.figures})
    assert stems == [
        "figures/loss_toy-a_gamma",
        "figures/map_vs_bits_toy-a", "figures/map_vs_bits_toy-b",
        "figures/pr_toy-a_16bits", "figures/pr_toy-a_8bits", "figures/pr_toy-b_8bits",
        "figures/precision_at_n_toy-a_16bits", "figures/precision_at_n_toy-a_8bits",
        "figures/precision_at_n_toy-b_8bits",
    ]
    for stem in stems:
        kind = re.match(r"figures/(pr|map_vs_bits|precision_at_n|loss)_", stem).group(1)
        png = out / f"{stem}.png"
        with Image.open(png) as im:
            im.verify()
        with Image.open(png) as im:
            w, h = FIGSIZE[kind]
            assert im.size == (round(w * DPI), round(h * DPI)), stem
            assert np.asarray(im.convert("L")).std() > 5  # something is drawn
        assert (out / f"{stem}.pdf").read_bytes().startswith(b"%PDF")


def test_loss_figure_has_a_panel_per_component():
    # drawn afresh to inspect the axes: UDHT's three loss components, one panel each
    from hashbench.reports import plots

    captured = {}
    real_save = plots._save

    def spy(fig, path, formats):
        captured["titles"] = [ax.get_title() for ax in fig.axes if ax.get_visible()]
        captured["ylog"] = [ax.get_yscale() for ax in fig.axes if ax.get_visible()]
        captured["legend"] = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
        captured["note"] = fig._supxlabel.get_text() if fig._supxlabel is not None else ""
        captured["vlines"] = [sorted({float(ln.get_xdata()[0]) for ln in ax.get_lines() if len(set(ln.get_xdata())) == 1})
                              for ax in fig.axes if ax.get_visible()]
        return []

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = write_results(Path(tmp) / "r", grid=[("toy-a", "gamma", 8, 0), ("toy-a", "gamma", 16, 0)])
        data = load_report_data(root)
        plots._save = spy
        try:
            plots.loss_figure(data, data.groups[0], data.protocols["p0"], "gamma", Path(tmp) / "x", ("png",))
        finally:
            plots._save = real_save
    assert captured["titles"] == ["L1", "L2", "L3", plots.HELDOUT_TITLE]
    assert captured["legend"] == ["8 bits", "16 bits"]
    # where and why training stopped: the kept epoch marked in every panel, the reason written out
    assert captured["vlines"] == [[25.0]] * 4
    assert "8 bits: kept epoch 25 of 30 (no held-out improvement > 0.0001 for 5 epochs)" in captured["note"]


# ------------------------------------------------------------------ grouping and index
def test_different_conventions_are_never_mixed(tmp_path):
    root = tmp_path / "results"
    write_results(root, grid=[g for g in GRID if g[0] == "toy-a"], ties="index")
    write_results(root, grid=[g for g in GRID if g[0] == "toy-b"], ties="random")
    with pytest.warns(UserWarning, match="different evaluator conventions"):
        paths = generate_reports(root, tmp_path / "out", figures=False)
    a = (tmp_path / "out" / "ties-index_empty-zero" / "tables" / "map-at-all.md").read_text()
    b = (tmp_path / "out" / "ties-random_empty-zero_seed0" / "tables" / "map-at-all.md").read_text()
    assert "toy-a" in a and "toy-b" not in a and "database index" in a
    assert "toy-b" in b and "toy-a" not in b and "random order" in b
    index = paths.index.read_text()
    assert "ties-index_empty-zero" in index and "ties-random_empty-zero_seed0" in index
    assert "not comparable" in index


def test_one_dataset_under_two_weights_gets_two_column_groups(tmp_path):
    root = tmp_path / "results"
    write_results(root / "x", grid=[("toy-a", "alpha", 8, 0), ("toy-a", "beta", 8, 0)], weights="random")
    write_results(root / "y", grid=[("toy-a", "alpha", 8, 0), ("toy-a", "beta", 8, 0)], weights="imagenet")
    # two results folders merged into one: move the second under another dataset folder name
    shutil.copytree(root / "y" / "toy-a", root / "x" / "toy-a-imagenet")
    with pytest.warns(UserWarning, match="2 protocols"):
        data = load_report_data(root / "x")
    t = build_table(data, data.groups[0], "mAP@all")
    assert sorted(p.label for p in t.protocols) == ["toy-a (imagenet weights)", "toy-a (random weights)"]


def test_index_links_everything_and_says_random_weights(report):
    _, out, paths = report
    index = paths.index.read_text()
    assert "randomly initialised AlexNet, not from ImageNet" in index
    links = re.findall(r"\]\(([^)]+)\)", index)
    for p in paths.tables + paths.figures + paths.significance:
        assert p.relative_to(out).as_posix() in links
    for link in links:
        assert (out / link).is_file(), link
    for needle in ("abc123", "python -m hashbench run --test", "2026-01-01T00:00:00", "numpy"):
        assert needle in index


def test_imagenet_features_carry_no_random_weights_warning(tmp_path):
    root = write_results(tmp_path / "r", grid=[("toy-a", "alpha", 8, 0), ("toy-a", "beta", 8, 0)], weights="imagenet")
    paths = generate_reports(root, tmp_path / "out", figures=False)
    assert "RANDOM" not in paths.index.read_text() and "randomly" not in paths.index.read_text()
    assert "RANDOM" not in (tmp_path / "out" / "tables" / "map-at-all.tex").read_text()


def test_regenerating_removes_stale_outputs_only(tmp_path):
    root = tmp_path / "r"
    write_results(root, grid=[("toy-a", "alpha", 8, 0), ("toy-a", "beta", 8, 0)], ties="index")
    write_results(root, grid=[("toy-b", "alpha", 8, 0)], ties="random")
    out = tmp_path / "out"
    with pytest.warns(UserWarning):
        generate_reports(root, out, figures=False)
    old = out / "ties-random_empty-zero_seed0" / "tables" / "map-at-all.md"
    assert old.is_file()
    mine = out / "ties-random_empty-zero_seed0" / "notes.txt"
    mine.write_text("my own file")
    shutil.rmtree(root / "toy-b")
    generate_reports(root, out, figures=False)
    assert not old.exists()  # written by the first report, not by the second: removed
    assert mine.read_text() == "my own file"  # never ours: kept
    assert "BETA" in (out / "tables" / "map-at-all.md").read_text()


def test_bad_inputs_have_clear_errors(tmp_path):
    with pytest.raises(ResultsError, match="no such folder"):
        generate_reports(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="no finished cells"):
        generate_reports(tmp_path / "empty", tmp_path / "out")
    root = write_results(tmp_path / "r", grid=[("toy-a", "alpha", 8, 0)])
    with pytest.raises(ConfigError, match="formats"):
        generate_reports(root, tmp_path / "out", formats=("jpg",))
    with pytest.raises(ConfigError, match="significance test"):
        generate_reports(root, tmp_path / "out", test="t-test")
