"""The later papers' numbers and settings: their source files, MIRFLICKR's Bi-half protocol, and the
report putting published numbers beside ours only where the setting matches, with what still differs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import hashbench.published as published
from hashbench.cli import main
from hashbench.datasets import get_dataset
from hashbench.datasets._protocols import per_class_split
from hashbench.published import COLUMNS, OPTIONAL_COLUMNS, load_published, matching_rows, register_published
from hashbench.store import iter_cells

from .dataset_fixtures import write_mirflickr


@pytest.fixture
def later():
    pub = load_published()
    return pub[pub["file"].str.endswith(("bihalf2021.csv", "cibhash2021.csv"))]


def test_each_later_number_names_its_source_setting_and_how_sure_it_is(later):
    assert set(later["method"]) == {"bihalf", "cibhash", "greedyhash"}
    assert (later["backbone"] == "vgg16-fc7").all() and (later["weights"] == "imagenet").all()
    for _, r in later.iterrows():
        assert r["split"] and r["metric"] == "mAP@1000" and r["note"]
        # a number not read from the paper says so: quoted (with where) or recalled
        assert r["note"].startswith(("Quoted", "recalled"))
    greedy = later[later["method"] == "greedyhash"]
    assert (greedy["selection"] == "test queries").all()  # GreedyHash's script keeps the best test-query epoch
    cib = later[later["method"] == "cibhash"]
    standard_sizes = json.dumps({"n_query_per_class": 100, "n_train_per_class": 500})
    assert sorted(cib["bits"]) == [16, 32, 64] and (cib["options"].map(json.dumps) == standard_sizes).all()
    # the two CIFAR-10 settings never match each other's runs
    standard = {"protocol": "standard", "n_query_per_class": 100, "n_train_per_class": 500}
    assert set(matching_rows("cifar10", "standard", standard)["method"]) == {"cibhash", "greedyhash"}
    assert set(matching_rows("cifar10", "standard", {**standard, "n_query_per_class": 1000,
                                                     "n_train_per_class": 5000})["method"]) == {"bihalf"}


def _sizes_drawn(dataset: str, protocol: str, options: dict) -> dict[str, int]:
    """The role sizes hashbench's protocol gives the real dataset under these options."""
    if dataset == "cifar10":  # 60,000 images, 6,000 per class: the per-class draw on those labels
        split = per_class_split(np.repeat(np.arange(10), 6000), options.get("n_query_per_class", 100),
                                options.get("n_train_per_class", 500), seed=0, protocol="cifar10-standard")
        return {"query": len(split.query), "database": len(split.database), "train": len(split.train)}
    raise AssertionError(f"no size rule for {dataset} under {protocol}: add one with the row")


def test_each_later_rows_split_is_what_our_protocol_draws_for_its_options(later):
    # the report's split caveat compares a run's sizes with the row's: a row whose recorded split disagrees
    # with its own options would put that caveat under every run of the very setting it matches
    for _, r in later.iterrows():
        assert _sizes_drawn(r["dataset"], r["protocol"], r["options"]) == r["split"], (r["name"], r["bits"])


def test_bihalf_protocol_keeps_every_image_and_trains_on_a_subset_of_the_database(tmp_path):
    write_mirflickr(tmp_path, n=40)
    ds = get_dataset("mirflickr25k", root=tmp_path, protocol="bihalf", n_query=8, n_train=20, min_tag_count=2)
    assert len(ds) == 40  # untagged (1-4) and unlabelled (9, 10) images stay, as in Bi-half's img.txt
    assert ds.labels[8:10].sum() == 0 and ds.config["min_labels"] == 0 and ds.config["min_tags"] == 0
    split = ds.make_split(0)
    assert (len(split.query), len(split.database), len(split.train)) == (8, 32, 20)
    assert not set(split.query) & set(split.database) and set(split.train) <= set(split.database)
    full = get_dataset("mirflickr25k", root=tmp_path, protocol="bihalf", min_tag_count=2, n_query=8)
    assert full.n_train == 5000 and full.n_database is None  # the protocol's sizes: 2,000 / rest / 5,000
    assert get_dataset("mirflickr25k", root=tmp_path, protocol="paper", min_tag_count=2, n_query=8,
                       n_database=20).config["min_labels"] == 1  # the other protocols keep their filter


def _row(**change):
    base = {"paper": "A later paper (test row)", "table": "Table 9", "dataset": "mirflickr25k", "protocol": "bihalf",
            "options": "", "split": json.dumps({"query": 2000, "database": 23000, "train": 5000}),
            "weights": "imagenet", "metric": "mAP@all", "bits": 16, "name": "Bi-half", "kind": "deep",
            "method": "bihalf", "params": "", "value": 0.7, "note": "", "backbone": "vgg16-fc7", "selection": ""}
    return {**base, **change}


@pytest.fixture(scope="module")
def mir_bihalf(tmp_path_factory):
    """ITQ, DH, GreedyHash and Bi-half on the MIRFLICKR fixture under the Bi-half protocol."""
    base = tmp_path_factory.mktemp("mirbh")
    write_mirflickr(base / "data", n=60)
    res = base / "res"
    code = main(["-q", "run", "--dataset", "mirflickr25k", "--data-root", str(base / "data"), "-D", "protocol=bihalf",
                 "-D", "min_tag_count=2", "-D", "n_query=10", "-D", "n_train=30", "--weights", "random",
                 "--methods", "itq,dh,greedyhash,bihalf", "--bits", "16", "--param", "greedyhash.max_epochs=2",
                 "--param", "bihalf.max_epochs=2", "--param", "dh.max_epochs=2", "--results", str(res),
                 "--no-report"])
    assert code == 0
    return base, res


def test_report_puts_published_numbers_beside_ours_where_the_setting_matches(mir_bihalf, tmp_path):
    base, res = mir_bihalf
    f = tmp_path / "later.csv"
    pd.DataFrame([_row(), _row(name="GreedyHash", method="greedyhash", value=0.6, selection="test queries",
                           note="recalled: a test row")], columns=[*COLUMNS, *OPTIONAL_COLUMNS]).to_csv(f, index=False)
    ours = {c.record["method"]["name"]: c.record["metrics"]["mAP@all"] for c in iter_cells(res)}
    try:
        register_published(f)
        assert main(["report", "--results", str(res), "--out", str(base / "rep")]) == 0
    finally:
        published._REGISTERED.clear()
        load_published.cache_clear()
    table = pd.read_csv(base / "rep" / "tables" / "published_map-at-all_mirflickr25k.csv")
    bh = table[table.method == "bihalf"].iloc[0]
    assert bh["published"] == 0.7 and bh["ours"] == pytest.approx(ours["bihalf"])
    gh = table[table.method == "greedyhash"].iloc[0]
    assert gh["published_as"] == "GreedyHash [selected on test queries]"
    md = (base / "rep" / "index.md").read_text()
    assert "The published GreedyHash numbers were selected on test queries" in md  # said beside the numbers
    assert "recalled, not read from the paper" in md
    net = next(iter(iter_cells(res))).record["features"]["backbone"]["name"]
    assert f"Our features come from {net}, the paper's from vgg16-fc7" in md
    # the results table groups the methods published after UDHT below the others, typed so
    main_table = pd.read_csv(base / "rep" / "tables" / "map-at-all.csv")
    assert list(main_table["algorithm"]) == ["ITQ", "DH", "GreedyHash", "Bi-half", "Chance"]
    assert list(main_table["type"][:4]) == ["non-deep", "deep", "deep, after UDHT (2018)", "deep, after UDHT (2018)"]


def test_without_a_matching_number_the_report_says_none_applies(mir_bihalf):
    base, res = mir_bihalf
    assert main(["report", "--results", str(res), "--out", str(base / "rep0")]) == 0
    md = (base / "rep0" / "index.md").read_text()
    assert "No published number applies to mirflickr25k" in md and "bihalf" in md
    assert not list((base / "rep0" / "tables").glob("published_*"))
