"""Published numbers as data: the UDHT paper's Tables 2-4 transcribed, checked, matched, extended by plugins."""

from __future__ import annotations

import pandas as pd
import pytest

import hashbench.published as published
from hashbench import DataError
from hashbench.published import COLUMNS, load_published, matching_rows, read_published_csv, register_published

PAPER_ROWS = ["ITQ [13]", "PCAH [30]", "LSH [4]", "DSH [19]", "SpH [15]", "SH [34]", "AGH [26]", "DH [9]",
              "UH-BDNN [8]", "DeepBit [25]", "Ours Baseline", "Ours Proposed (UDHT)"]
BITS = [12, 24, 32, 48]


@pytest.fixture(autouse=True)
def _fresh_published():
    """Each test reads the published data afresh (load_published caches it): no test leans on another."""
    load_published.cache_clear()
    yield
    load_published.cache_clear()


@pytest.fixture
def udht():
    pub = load_published()
    return pub[pub["paper"].str.contains("arXiv:1806.05804")]


def test_every_row_of_tables_2_3_4_is_there_once(udht):
    assert len(udht) == 2 * 12 * 2 * 4 + 2 * 4  # Tables 2 and 3: 12 rows x 2 datasets x 4 bits; Table 4: 2 x 4
    for table, metric in (("Table 2", "mAP@50000"), ("Table 3", "mAP@5000")):
        t = udht[udht["table"] == table]
        assert set(t["metric"]) == {metric}
        for dataset in ("nuswide", "mirflickr25k"):
            d = t[t["dataset"] == dataset]
            assert list(dict.fromkeys(d["name"])) == PAPER_ROWS  # the paper's row order
            for name in PAPER_ROWS:
                assert sorted(d[d["name"] == name]["bits"]) == BITS
    t4 = udht[udht["table"] == "Table 4"]
    assert set(t4["dataset"]) == {"mirflickr25k"} and sorted(t4["bits"]) == sorted(BITS * 2)
    assert not udht.duplicated(["table", "dataset", "name", "bits"]).any()
    assert set(udht["protocol"]) == {"paper"} and set(udht["weights"]) == {"imagenet"}


@pytest.mark.parametrize(
    "table, dataset, name, bits, value",
    [  # re-read from the paper's text (arXiv:1806.05804, Tables 2, 3 and 4)
        ("Table 2", "nuswide", "Ours Proposed (UDHT)", 32, 0.6606),
        ("Table 2", "mirflickr25k", "ITQ [13]", 24, 0.655),
        ("Table 2", "nuswide", "LSH [4]", 12, 0.3308),
        ("Table 2", "mirflickr25k", "Ours Baseline", 48, 0.6098),
        ("Table 3", "mirflickr25k", "DSH [19]", 24, 0.7071),
        ("Table 3", "nuswide", "AGH [26]", 12, 0.6551),
        ("Table 3", "mirflickr25k", "DeepBit [25]", 48, 0.6086),
        ("Table 3", "nuswide", "SpH [15]", 24, 0.4645),
        ("Table 4", "mirflickr25k", "UDHT (idf aggregation)", 32, 0.6687),
        ("Table 4", "mirflickr25k", "UDHT (mean aggregation)", 12, 0.687),
    ],
)
def test_spot_values_match_the_paper(udht, table, dataset, name, bits, value):
    row = udht[(udht["table"] == table) & (udht["dataset"] == dataset) & (udht["name"] == name) & (udht["bits"] == bits)]
    assert row["value"].tolist() == [value]


def test_transcription_agrees_with_what_the_paper_says_about_it(udht):
    # Section 4.3: "mean" aggregation was used for all experiments, so Table 4's mean row is Table 2's UDHT row
    t2 = udht[(udht.table == "Table 2") & (udht.dataset == "mirflickr25k") & (udht.name == "Ours Proposed (UDHT)")]
    t4 = udht[(udht.table == "Table 4") & (udht.name == "UDHT (mean aggregation)")]
    assert t2.sort_values("bits")["value"].tolist() == t4.sort_values("bits")["value"].tolist()
    # ... and mean beats idf "in three of the four" code lengths
    idf = udht[(udht.table == "Table 4") & (udht.name == "UDHT (idf aggregation)")].sort_values("bits")["value"]
    assert sum(m > i for m, i in zip(t4.sort_values("bits")["value"], idf)) == 3
    # "our approach (UDHT) ... performed superior than all the state-of-art methods on both datasets"
    for (table, dataset, bits), col in udht[udht.table != "Table 4"].groupby(["table", "dataset", "bits"]):
        assert col.loc[col["value"].idxmax(), "name"] == "Ours Proposed (UDHT)", (table, dataset, bits)


def test_rows_name_our_methods_and_the_parameters_they_need(udht):
    ours = udht[udht["table"] == "Table 2"].drop_duplicates("name").set_index("name")["method"]
    assert ours["ITQ [13]"] == "itq" and ours["AGH [26]"] == "agh" and ours["Ours Baseline"] == "tag-binary-e2e"
    assert ours["Ours Proposed (UDHT)"] == "udht"
    # section 4.3: DH and UH-BDNN ran on the FC2 features, DeepBit from raw images
    assert (ours["DH [9]"], ours["UH-BDNN [8]"], ours["DeepBit [25]"]) == ("dh", "uh-bdnn", "deepbit-e2e")
    # every row names a method hashbench has, so that no published number waits beside a dash for want of a name
    from hashbench.registry import available_methods

    assert set(udht["method"]) <= set(available_methods())
    t4 = udht[udht["table"] == "Table 4"]
    assert {r["aggregation"] for r in t4["params"]} == {"mean", "idf"}
    assert all(s.startswith(f"{t}, Gattupalli & Li 2018") for s, t in zip(udht["source"], udht["table"]))


def test_a_setting_matches_on_dataset_protocol_and_the_papers_options():
    assert len(matching_rows("mirflickr25k", "paper", {"label_set": "38", "min_tags": 3})) == 12 * 2 * 4 + 8
    assert matching_rows("mirflickr25k", "paper", {"label_set": "24"}).empty  # the 24 potential labels only
    assert matching_rows("mirflickr25k", "cleaned", {"label_set": "38"}).empty
    assert len(matching_rows("nuswide", "paper", {"top_labels": 21})) == 12 * 2 * 4
    assert matching_rows("synthetic", "random", {}).empty


def test_an_option_the_paper_fixes_but_our_run_does_not_record_is_no_match():
    """A run that does not say it used the paper's 38 categories (an older record, another dataset version)
    is not the paper's setting: no published number may be placed beside it."""
    assert matching_rows("mirflickr25k", "paper", {}).empty
    assert matching_rows("mirflickr25k", "paper", {"min_tags": 3}).empty
    assert matching_rows("nuswide", "paper", {}).empty
    assert matching_rows("nuswide", "paper", {"top_labels": None}).empty
    # what the paper does not fix may be anything (and the recorded value may be a number or its text)
    assert len(matching_rows("nuswide", "paper", {"top_labels": 21, "anything": "else"})) == 12 * 2 * 4
    assert len(matching_rows("mirflickr25k", "paper", {"label_set": 38})) == 12 * 2 * 4 + 8


def _write(path, rows):
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    return path


ROW = {"paper": "Someone 2030", "table": "Table 1", "dataset": "cifar10", "protocol": "standard", "options": "",
       "split": '{"query": 1000}', "weights": "imagenet", "metric": "mAP@1000", "bits": 16, "name": "ITQ",
       "kind": "non-deep", "method": "itq", "params": "", "value": 0.16, "note": ""}


def test_another_paper_adds_its_numbers_by_file_or_entry_point(tmp_path, monkeypatch):
    f = _write(tmp_path / "mine.csv", [ROW])
    before = len(load_published())
    try:
        register_published(f)
        pub = load_published()
        assert len(pub) == before + 1 and len(matching_rows("cifar10", "standard", {})) == 1
    finally:
        published._REGISTERED.clear()
        load_published.cache_clear()

    class EntryPoint:  # what importlib.metadata hands out for a plugin package's entry point
        name, value = "mine", "mine_pkg:published"

        def load(self):
            return lambda: [str(f)]

    monkeypatch.setattr(published, "entry_points", lambda group: [EntryPoint()] if group == "hashbench.published" else [])
    load_published.cache_clear()
    try:
        assert len(matching_rows("cifar10", "standard", {})) == 1
    finally:
        monkeypatch.undo()
        load_published.cache_clear()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"value": 1.7}, r"row 2: bits must be positive and value within \[0, 1\]"),
        ({"metric": "accuracy"}, r"row 2: metric 'accuracy' is not a hashbench metric name"),
        ({"params": "{aggregation: idf}"}, r"row 2: column 'params' is not JSON"),
        ({"kind": "shallow"}, r"row 2: kind must be 'deep' or 'non-deep'"),
    ],
)
def test_a_bad_file_is_refused_naming_file_and_row(tmp_path, change, message):
    f = _write(tmp_path / "bad.csv", [{**ROW, **change}])
    with pytest.raises(DataError, match=rf"{f}, {message}"):
        read_published_csv(f)


def test_a_file_missing_a_column_is_refused(tmp_path):
    f = tmp_path / "bad.csv"
    pd.DataFrame([ROW]).drop(columns=["params"]).to_csv(f, index=False)
    with pytest.raises(DataError, match=rf"{f}: missing column\(s\) params"):
        read_published_csv(f)
