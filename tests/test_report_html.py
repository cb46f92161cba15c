"""The reproduction report: ours beside the published numbers, one style per method, and index.html
loaded in a real browser (headless Chromium) to check that it works offline."""

from __future__ import annotations

import csv
import functools
import io
import html.parser
import http.server
import shutil
import subprocess
import threading
import types

import numpy as np
import pandas as pd
import pytest

from hashbench.cli import main
from hashbench.published import load_published
from hashbench.reports import generate_reports
from hashbench.reports.collect import METHOD_COLOURS, PAPER_ROW_ORDER, Protocol, load_report_data, method_styles
from hashbench.reports.plots import map_panels
from hashbench.reports.html import comparison_html
from hashbench.reports.published import Comparison, ComparisonRow, compare_protocol
from hashbench.reports.tables import build_table
from hashbench.store import cell_path, iter_cells, write_cell

from .dataset_fixtures import write_mirflickr
from .test_reports import _record, write_results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI (.ci/run) installs Debian's chromium; the driver is pip's playwright, which uses that binary
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def mir_report(tmp_path_factory):
    """A tiny run on the MIRFLICKR fixture under the paper's protocol (38 categories), and its report."""
    base = tmp_path_factory.mktemp("mir")
    write_mirflickr(base / "data", n=100)
    res, rep = base / "res", base / "rep"
    code = main(["-q", "run", "--dataset", "mirflickr25k", "--data-root", str(base / "data"), "-D", "label_set=38",
                 "-D", "min_tag_count=2", "-D", "n_query=8", "-D", "n_database=60", "--weights", "random",
                 "--methods", "itq,lsh,pcah", "--bits", "12,24", "--results", str(res), "--no-report"])
    assert code == 0
    assert main(["report", "--results", str(res), "--out", str(rep)]) == 0  # from stored results alone
    return res, rep


def test_paper_setting_gets_published_ours_and_difference(mir_report):
    res, rep = mir_report
    ours = {(c.record["method"]["name"], c.record["bits"]): c.record["metrics"] for c in iter_cells(res)}
    t2 = pd.read_csv(rep / "tables" / "published_map-at-50000_mirflickr25k.csv")
    itq = t2[(t2.method == "itq") & (t2.bits == 12)].iloc[0]
    assert itq["published"] == 0.6418 and itq["source"] == "Table 2"  # UDHT paper, Table 2, MIRFLICKR, 12 bits
    assert itq["ours"] == pytest.approx(ours[("itq", 12)]["mAP@50000"])
    assert itq["difference"] == pytest.approx(ours[("itq", 12)]["mAP@50000"] - 0.6418)
    t3 = pd.read_csv(rep / "tables" / "published_map-at-5000_mirflickr25k.csv")
    lsh = t3[(t3.method == "lsh") & (t3.bits == 24)].iloc[0]
    assert lsh["published"] == 0.6049 and lsh["ours"] == pytest.approx(ours[("lsh", 24)]["mAP@5000"])
    # the paper's rows we cannot answer are listed with an empty "ours"
    deepbit = t3[t3.published_as == "DeepBit [25]"]
    assert len(deepbit) == 2 and deepbit["ours"].isna().all()
    assert "(paper; deepbit-e2e not run)" in deepbit["algorithm"].iloc[0]
    # not published: no comparison table for mAP@all or precision
    assert sorted(p.name for p in (rep / "tables").glob("published_*.csv")) == [
        "published_map-at-50000_mirflickr25k.csv", "published_map-at-5000_mirflickr25k.csv"]
    md = (rep / "index.md").read_text()
    assert "matches a published setting" in md and "| ITQ (paper: ITQ [13]) | 0.6418 |" in md
    # what still differs from the paper is said next to the numbers
    tex = (rep / "tables" / "published_map-at-50000_mirflickr25k.tex").read_text()
    assert "RANDOM (untrained) backbone weights, the paper's ImageNet weights" in tex and "is not the paper's size" in tex
    assert (rep / "figures" / "published_mirflickr25k.svg").is_file()


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed (CI installs texlive)")
def test_published_latex_tables_compile(mir_report, tmp_path):
    tables = sorted((mir_report[1] / "tables").glob("published_*.tex"))
    assert len(tables) == 2
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\begin{document}\n"
                   + "".join(f"\\input{{{t.as_posix()}}}\n" for t in tables) + "\\end{document}\n")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Overfull" not in (tmp_path / "doc.log").read_text()


def test_other_settings_say_no_published_number_applies(tmp_path, mir_report):
    root = write_results(tmp_path / "r", grid=[("toy-a", "alpha", 8, 0), ("toy-a", "beta", 8, 0)])
    generate_reports(root, tmp_path / "out", figures=False)
    for page in ("index.md", "index.html"):
        assert "No published number applies to toy-a" in (tmp_path / "out" / page).read_text()
    assert not list((tmp_path / "out" / "tables").glob("published_*"))
    # MIRFLICKR with the 24 potential labels only is not the paper's setting (38 categories)
    data = load_report_data(mir_report[0])
    (p,) = data.protocols.values()
    tables = [build_table(data, data.groups[0], m) for m in ("mAP@5000", "mAP@50000")]
    assert len(compare_protocol(data, p, tables)[0]) == 2
    p.options = {**p.options, "label_set": "24"}
    comparisons, why = compare_protocol(data, p, tables)
    assert comparisons == [] and "is not a published one" in why and "label_set=24" in why


def _beside_the_paper(cells: dict, tables: dict, **protocol_changes):
    """compare_protocol on one column group of ours without a run: ``cells`` maps (method, display, deep) to
    {bits: (mean, params)}, ``tables`` a metric to its bit lengths (None: no column here); MIRFLICKR under the paper's setting
    unless ``protocol_changes`` say otherwise. Returns (comparisons, note)."""
    protocol = Protocol(key="mir", dataset="mirflickr25k", name="mirflickr25k", label="MIRFLICKR", split_key="s",
                        split_protocol="mirflickr25k-paper", split_sizes={"query": 2000, "database": 16000,
                                                                           "train": 16000},
                        backbone={"weights": "imagenet"}, features_description="", chance=None, summary="",
                        options={"label_set": "38", "protocol": "paper"})
    for k, v in protocol_changes.items():
        setattr(protocol, k, v)
    load_published.cache_clear()  # read afresh: a comparison never leans on another test's cache
    frame = pd.DataFrame([{"method": m, "protocol": "mir", "bits": b,
                           "cell": types.SimpleNamespace(record={"method": {} if p is None else {"params": p}})}
                          for (m, _, _), by_bits in cells.items() for b, (_, p) in by_bits.items()])
    made = [types.SimpleNamespace(metric=metric, bits={} if bits is None else {"mir": bits}, rows=list(cells),
                                  entries={(m, "mir", b): types.SimpleNamespace(mean=mean)
                                           for (m, _, _), by_bits in cells.items() for b, (mean, _) in by_bits.items()})
            for metric, bits in tables.items()]
    return compare_protocol(types.SimpleNamespace(frame=frame), protocol, made)


def _udht_beside_the_paper(params: dict | None, method: str = "udht"):
    """One MIRFLICKR (paper's setting) column of ours: UDHT at 32 bits, mAP@50000 0.6, run with ``params``."""
    (comparison,), note = _beside_the_paper({(method, "UDHT", True): {32: (0.6, params)}}, {"mAP@50000": [32]})
    assert "MIRFLICKR matches a published setting" in note
    return comparison


def _rows(comparison):
    return {r.label: r for r in comparison.rows}


def test_a_published_row_is_placed_beside_ours_only_with_the_parameters_it_requires():
    """Table 4's idf row needs aggregation="idf", Tables 2/4's UDHT row aggregation="mean": each of our runs
    gets the number of the row whose parameters it ran with, and a run with other (or unrecorded) parameters
    gets none."""
    idf = _rows(_udht_beside_the_paper({"aggregation": "idf", "lr": 0.01}))
    assert idf["UDHT"].values[32] == (0.6687, 0.6) and idf["UDHT"].sources[32] == "Table 4"
    assert idf["UDHT"].published_name == "UDHT (idf aggregation)"
    assert idf["UDHT"].diff(32) == pytest.approx(0.6 - 0.6687)
    mean = _rows(_udht_beside_the_paper({"aggregation": "mean"}, method="udht@paper"))
    assert mean["UDHT"].values[32] == (0.6667, 0.6) and mean["UDHT"].sources[32] == "Table 2; Table 4"
    assert "UDHT (idf aggregation) (paper; our udht ran with other parameters)" in mean
    for params in ({"aggregation": "sum"}, {"lr": 0.01}, {}, None):
        rows = _rows(_udht_beside_the_paper(params))
        assert rows["UDHT"].values[32] == (None, 0.6), params
        assert {r.published_name for r in rows.values()} >= {"Ours Proposed (UDHT)", "UDHT (idf aggregation)"}


def test_comparison_files_carry_the_published_value_ours_and_the_difference():
    comp = _udht_beside_the_paper({"aggregation": "idf"})
    assert comp.metric == "mAP@50000" and comp.bits == [32]
    csv_rows = list(csv.DictReader(io.StringIO(comp.to_csv())))
    ours = next(r for r in csv_rows if r["method"] == "udht")
    assert ours == {"algorithm": "UDHT", "method": "udht", "published_as": "UDHT (idf aggregation)", "bits": "32",
                    "published": "0.6687", "ours": "0.6", "difference": repr(0.6 - 0.6687), "source": "Table 4"}
    listed = {r["published_as"]: r for r in csv_rows if not r["method"]}
    assert listed["Ours Proposed (UDHT)"]["published"] == "0.6667" and listed["Ours Proposed (UDHT)"]["ours"] == ""
    assert listed["ITQ [13]"]["published"] == "0.6253" and listed["ITQ [13]"]["source"] == "Table 2"
    md = comp.to_markdown()
    assert "| UDHT (paper: UDHT (idf aggregation)) | 0.6687 | 0.6000 | -0.0687 |" in md
    assert "| 32 bits · paper | 32 bits · ours | 32 bits · \u0394 |" in md
    assert "Table 2; Table 4" in comp.caption() and "ours \u2212 published" in comp.caption()
    assert comp.caveats == []  # ImageNet weights and the paper's split sizes: nothing to warn about
    tex = comp.to_latex()
    assert "UDHT & 0.6687 & 0.6000 & -0.0687 \\\\" in tex and "\\multicolumn{3}{c}{32 bits}" in tex
    # our split is smaller and our weights random: both said beside the numbers
    protocol = comp.protocol
    protocol.backbone, protocol.split_sizes = {"weights": "random"}, {"query": 100, "database": 900, "train": 900}
    from hashbench.reports.published import caveats_for

    said = " ".join(caveats_for(protocol, load_published()[lambda f: f["dataset"] == "mirflickr25k"]))
    assert "RANDOM (untrained) backbone weights, the paper's ImageNet weights" in said
    assert "Our split (query 100, database 900, train 900) is not the paper's size (query 2,000" in said


def test_compare_protocol_takes_the_papers_metrics_and_code_lengths_and_says_what_it_left_out():
    cells = {("udht", "UDHT", True): {12: (0.7, {"aggregation": "sum"}), 24: (0.71, {"aggregation": "sum"})},
             ("dh", "DH", True): {12: (0.55, {}), 24: (float("nan"), {})},
             ("itq", "ITQ", False): {12: (0.6, {}), 24: (0.62, {}), 16: (0.61, {})}}
    comps, note = _beside_the_paper(cells, {"mAP@5000": [16], "mAP@all": [12], "mAP@50000": [12, 16, 24]})
    (comp,) = comps  # mAP@5000 is published, but not at 16 bits; mAP@all is not published
    assert comp.metric == "mAP@50000" and comp.bits == [12, 24]  # 16 bits: not in the paper
    assert note.endswith("No published number for mAP@5000 at 16 bits, mAP@all.")
    assert note.startswith("MIRFLICKR matches a published setting (mirflickr25k under protocol 'paper' with "
                           "label_set=38); published metrics: mAP@5000, mAP@50000.")
    rows = _rows(comp)
    assert rows["DH"].values == {12: (0.5833, 0.55), 24: (0.5945, None)}  # no number of ours: no difference
    assert rows["DH"].diff(24) is None and rows["DH"].diff(12) == pytest.approx(0.55 - 0.5833)
    assert rows["DH"].diff(48) is None and comp.cells(rows["DH"], 48) == ("\u2013",) * 3  # no such column
    assert rows["ITQ"].values == {12: (0.6418, 0.6), 24: (0.655, 0.62)}  # the paper's Table 2
    assert rows["UDHT"].values == {12: (None, 0.7), 24: (None, 0.71)}  # sum aggregation: no paper row
    # the paper's UDHT row is listed once although Tables 2 and 4 both print it; non-deep rows first
    labels = [r.label for r in comp.rows]
    assert labels.count("Ours Proposed (UDHT) (paper; our udht ran with other parameters)") == 1
    assert not any(lab.startswith("UDHT (mean aggregation)") for lab in labels)
    assert "DeepBit [25] (paper; deepbit-e2e not run)" in labels
    deep = [r.deep for r in comp.rows]
    assert deep == sorted(deep) and labels[0] == "ITQ" and "LSH [4] (paper; lsh not run)" in labels[:8]
    assert rows["DeepBit [25] (paper; deepbit-e2e not run)"].values == {12: (0.5974, None), 24: (0.6032, None)}
    assert rows["DeepBit [25] (paper; deepbit-e2e not run)"].sources == {12: "Table 2", 24: "Table 2"}
    assert comp.papers == ["Gattupalli & Li 2018, Unsupervised Deep Image Hashing through Tag Embeddings, "
                           "arXiv:1806.05804"] and comp.tables == ["Table 2", "Table 4"]
    # settings no paper reports say why, naming what differs
    none, why = _beside_the_paper(cells, {"mAP@50000": [12]}, name="synthetic", options={})
    assert none == [] and "no paper in hashbench's published data reports on dataset synthetic" in why
    assert "mirflickr25k under protocol 'paper' with label_set=38" in why
    none, why = _beside_the_paper(cells, {"mAP@50000": [12]}, options={"label_set": "24", "protocol": "paper"})
    assert none == [] and "its setting (protocol 'paper', label_set=24) is not a published one (mirflickr25k" in why
    none, why = _beside_the_paper(cells, {"mAP@all": [12]})
    assert none == [] and why.startswith("No published number applies to MIRFLICKR: MIRFLICKR matches")


def test_each_of_our_cells_is_matched_with_its_own_parameters(tmp_path):
    """Our UDHT ran idf at 12 bits and mean at 24: each code length gets the row its own cell's parameters
    ask for. A table that comes first without a comparison does not end the comparison. A paper row naming
    no method of ours says so."""
    from hashbench import published

    extra = tmp_path / "extra.csv"
    pd.DataFrame([{"paper": "Someone 2030", "table": "Table 9", "dataset": "mirflickr25k", "protocol": "paper",
                   "options": '{"label_set": "38"}', "split": "", "weights": "imagenet", "metric": "mAP@50000",
                   "bits": 12, "name": "NewHash", "kind": "deep", "method": "", "params": "", "value": 0.7,
                   "note": ""}]).to_csv(extra, index=False)
    published.register_published(extra)
    try:
        cells = {("udht", "UDHT", True): {12: (0.7, {"aggregation": "idf"}), 24: (0.71, {"aggregation": "mean"})},
                 ("itq", "ITQ", False): {12: (0.6, {"aggregation": "mean"}), 24: (0.62, {})}}
        (comp,), _ = _beside_the_paper(cells, {"mAP@50000": [12, 24]})
        after_others, _ = _beside_the_paper(cells, {"mAP@5000": None, "mAP@all": [12], "P@1000": [16],
                                                    "mAP@50000": [12]})
    finally:
        published._REGISTERED.clear()
        load_published.cache_clear()
    assert [c.metric for c in after_others] == ["mAP@50000"]
    rows = _rows(comp)
    assert rows["UDHT"].values == {12: (0.6602, 0.7), 24: (0.695, 0.71)}
    assert rows["UDHT"].sources == {12: "Table 4", 24: "Table 2; Table 4"}
    assert rows["ITQ"].values == {12: (0.6418, 0.6), 24: (0.655, 0.62)}  # parameters the paper does not ask about
    assert "Someone 2030" in comp.papers and "Table 9" in comp.tables
    new = rows["NewHash (paper; no implementation in hashbench)"]
    assert new.method is None and new.deep and new.values == {12: (0.7, None)} and new.sources == {12: "Table 9"}
    assert [r.label for r in comp.rows][-1] == "NewHash (paper; no implementation in hashbench)"


def test_map_panels_merge_only_when_k_covers_the_database(tmp_path):
    data = load_report_data(write_results(tmp_path / "r"))  # database 3,000 < K = 5,000
    group = data.groups[0]
    cells = data.cells(group)
    p = next(q for q in data.protocols.values() if q.label == "toy-a")
    sub = cells[cells.protocol == p.key].copy()
    sub["mAP@5000"] = sub["mAP@all"]  # what the evaluator gives when K covers the database
    assert map_panels(data, sub, p, ["mAP@5000", "mAP@all"]) == [["mAP@5000", "mAP@all"]]
    p.n_db = 10000  # K = 5,000 of 10,000: a different number
    assert map_panels(data, sub, p, ["mAP@5000", "mAP@all"]) == [["mAP@5000"], ["mAP@all"]]
    p.n_db = 3000
    sub["mAP@5000"] = sub["mAP@all"] * 0.9  # should K cover it yet numbers differ, nothing is hidden
    assert map_panels(data, sub, p, ["mAP@5000", "mAP@all"]) == [["mAP@5000"], ["mAP@all"]]


def test_every_method_has_its_own_colour_in_every_report():
    everything = [(m, m, m.startswith(("udht", "tag"))) for m in PAPER_ROW_ORDER]
    everything += [("udht@paper", "UDHT @paper", True), ("udht@authors-code", "UDHT @authors-code", True),
                   ("pca-rr", "PCA-RR", False)]
    styles = method_styles(everything)
    assert len({s.color for s in styles.values()}) == len(everything) == len(PAPER_ROW_ORDER) + 3
    assert len(set(METHOD_COLOURS.values())) == len(PAPER_ROW_ORDER)
    # the same method keeps its colour whatever else a report holds
    few = method_styles([("udht", "UDHT", True), ("pca-rr", "PCA-RR", False), ("itq", "ITQ", False)])
    assert {m: few[m].color for m in few} == {m: styles[m].color for m in few}
    assert styles["udht"].linestyle == "-" and styles["itq"].linestyle == "--"


def test_html_shows_hyperparameters_convergence_and_selection(tmp_path):
    root = tmp_path / "r"
    write_results(root, grid=[("toy-a", "alpha", 8, 0)])
    record, curves, per_query = _record("toy-a", "gamma", 8, 0)
    record["method"]["params"] = {"bits": 8, "seed": 0, "lr": 0.001, "max_epochs": 50}
    record["fit_info"] = {"convergence": {"stopped_epoch": 17, "best_epoch": 12, "reason": "patience"}}
    record["selection"] = {"criterion": "heldout_objective", "chosen": {"lr": 0.001}, "trials": 4}
    write_cell(cell_path(root, "toy-a", "gamma", 8, 0), record, query_codes=np.zeros((4, 8)),
               database_codes=np.zeros((6, 8)), curves=curves, per_query=per_query)
    page = generate_reports(root, tmp_path / "out", figures=False).html.read_text()
    assert "<code>lr=0.001</code>" in page and "<code>max_epochs=50</code>" in page
    assert "best_epoch: 12" in page and "stopped_epoch: 17" in page
    assert "heldout_objective" in page and "<details>" in page
    assert "Random backbone weights" in page and "<script" in page and "http" not in page.split("<main>")[0]


# ours against the paper at 12 bits: differences of both signs, several digits, one equal, one missing
_DIFFS = {"a": (0.50, 0.31), "b": (0.40, 0.35), "c": (0.20, 0.30), "d": (0.61, 0.64), "e": (0.5, 0.5),
          "f": (0.3, None), "g": (0.7, 0.6877)}


def _comparison_page() -> str:
    rows = [ComparisonRow(label=k, method=None, published_name=k, deep=False, values={12: v}) for k, v in _DIFFS.items()]
    comp = Comparison(metric="mAP@all", protocol=None, bits=[12], rows=rows, papers=["P"], tables=["T"], caveats=[])
    return comparison_html(types.SimpleNamespace(styles={}), comp)


class _Cells(html.parser.HTMLParser):
    """The rows of a table: each cell's attributes and text."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[dict]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self.rows[-1].append({**dict(attrs), "text": ""})

    def handle_data(self, data):
        if self.rows and self.rows[-1]:
            self.rows[-1][-1]["text"] += data


def test_difference_cells_are_red_when_ours_is_below_the_paper_and_green_above():
    parser = _Cells()
    parser.feed(_comparison_page())
    body = [r for r in parser.rows if r]
    assert [r[0]["text"] for r in body] == list(_DIFFS)
    for row in body:
        pub, ours = _DIFFS[row[0]["text"]]
        delta = row[4]  # algorithm, paper's row, paper, ours, difference
        if ours is None:
            assert delta.get("class") is None and delta["text"] == "\u2013"
        elif ours < pub:
            assert delta.get("class") == "neg" and delta["text"].startswith("-"), row
        elif ours > pub:
            assert delta.get("class") == "pos" and delta["text"].startswith("+"), row
        else:
            assert delta.get("class") != "neg", row


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI installs Debian's chromium)")
def test_sorting_a_column_in_the_browser_is_numeric_with_negative_values():
    """String order would put -0.05 before -0.2 and 0.1 before 0.03: the page must sort numbers as numbers."""
    from playwright.sync_api import sync_playwright

    from hashbench.reports.html import CSS, JS

    page_html = f"<!DOCTYPE html><html><head><style>{CSS}</style></head><body>{_comparison_page()}<script>{JS}</script></body></html>"
    diffs = {k: ours - pub for k, (pub, ours) in _DIFFS.items() if ours is not None}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.set_content(page_html)
        header = page.locator("thead th", has_text="12 bits \u0394")

        def order():
            return page.locator("tbody tr td:first-child").evaluate_all("tds => tds.map(td => td.textContent)")

        header.click()
        assert header.get_attribute("aria-sort") == "ascending"
        assert order() == sorted(diffs, key=diffs.get) + ["f"]  # no number: last either way
        header.click()
        assert header.get_attribute("aria-sort") == "descending"
        assert order() == sorted(diffs, key=diffs.get, reverse=True) + ["f"]
        ours = page.locator("thead th", has_text="12 bits ours")
        ours.click()
        assert order() == sorted(diffs, key=lambda k: _DIFFS[k][1]) + ["f"]
        browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI installs Debian's chromium)")
def test_index_html_in_a_real_browser(mir_report, tmp_path):
    from PIL import Image
    from playwright.sync_api import sync_playwright

    _, rep = mir_report
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # no access log on the test's output
            pass

    handler = functools.partial(Quiet, directory=str(rep))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    shot = tmp_path / "page.png"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems, requests = [], []
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
            page.on("request", lambda r: requests.append(r.url))
            response = page.goto(base + "index.html", wait_until="load")
            assert response is not None and response.ok
            # offline: everything the page loads comes from the report folder
            assert requests and all(u.startswith(base) for u in requests), [u for u in requests if not u.startswith(base)]
            images = page.eval_on_selector_all("img", "els => els.map(e => [e.getAttribute('src'), e.complete && e.naturalWidth > 0])")
            assert len(images) >= 6 and all(ok for _, ok in images), images
            assert any(src.endswith(".svg") for src, _ in images)
            links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
            files = [h for h in links if not h.startswith("#")]
            assert any(h.endswith(".tex") for h in files) and any(h.endswith(".csv") for h in files)
            for href in set(files):
                assert page.request.get(base + href).status == 200, href
            for anchor in {h for h in links if h.startswith("#")}:
                assert page.locator(anchor).count() == 1, anchor
            # sorting: the first table by its 12-bit column, descending on the second click; Chance stays last
            table = page.locator("table.sortable").first
            header = table.locator("thead th", has_text="12 bits")
            header.click()
            header.click()
            assert header.get_attribute("aria-sort") == "descending"
            values = table.locator("tbody tr:not(.pinned) td:nth-child(3)").evaluate_all(
                "tds => tds.map(td => parseFloat(td.getAttribute('data-value')))")
            assert values == sorted(values, reverse=True) and len(values) == 3
            assert table.locator("tbody tr").last.get_attribute("class") == "pinned"
            page.screenshot(path=str(shot))
            browser.close()
    finally:
        server.shutdown()
    assert problems == []
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("L"), dtype=np.float64)
    assert pixels.std() > 10  # text, tables and warnings: far from a blank page
    assert (pixels < 128).mean() > 0.01
