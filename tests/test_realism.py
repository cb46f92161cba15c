"""The realism report, and the embedded default pinned within its calibration bands against real MIRFLICKR.

The bands come from the calibration issue and /work/shared/reference-figures.md:
both tag rankings within +-0.01 of the real figures above chance (binary +0.023,
self-trained vectors +0.087), LSH above chance within the UDHT paper's band
(+0.02..+0.05 at 12..48 bits), chance near 0.55. The expensive part (features of
the 6,000 default images through the random AlexNet) is computed once per session.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hashbench.datasets import get_dataset
from hashbench.datasets.prepare import prepare_dataset
from hashbench.realism import (
    BITS,
    REFERENCE_FILE,
    format_realism,
    prepare_realism,
    reference_figures,
    synthetic_report,
    tag_statistics,
)
from hashbench.realism._docstring import SYNTHETIC_FILE, current_section, docstring_section, numbers

from .conftest import REPO


@pytest.fixture(scope="session")
def default_report():
    return synthetic_report()


# ------------------------------------------------------------------ the reference table
def test_reference_table_holds_the_shared_reference_figures_with_sources():
    ref = reference_figures()
    assert ref["chance"]["value"] == 0.554 and ref["binary_tags"]["value"] == 0.577
    assert ref["word_vectors"]["value"] == 0.641 and ref["paper_chance"]["value"] == 0.55
    assert [ref[f"lsh@{b}"]["value"] for b in BITS] == [0.571, 0.589, 0.584, 0.602]
    assert [ref[f"itq@{b}"]["value"] for b in BITS] == [0.642, 0.655, 0.625, 0.650]
    assert all(r["source"] for r in ref.values())
    assert "real MIRFLICKR cleaned subset" in ref["word_vectors"]["source"]
    assert "Table 2" in ref["lsh@12"]["source"] and "Table 2" in ref["itq@48"]["source"]


# ------------------------------------------------------------------ the statistics on small known cases
def test_tags_that_are_the_labels_rank_perfectly_and_chance_is_the_pair_fraction():
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 3, size=60)
    labels = np.eye(3, dtype=np.uint8)[classes]
    words = ["red", "green", "blue"]
    ds = get_dataset("tiny-test", n_items=60, n_query=12)
    split = ds.make_split(0)
    tags = [[words[c]] + (["shared"] if i % 2 else []) for i, c in enumerate(classes)]
    st = tag_statistics(tags, labels, split)
    relevant = labels[split.query] @ labels[split.database].T > 0
    assert st["chance"] == pytest.approx(relevant.mean())
    # every same-class item shares one more tag than any other-class item: a perfect ranking
    assert st["binary_tags"] == pytest.approx(1.0)
    assert 0.0 <= st["word_vectors"] <= 1.0 and st["word_vectors_info"]["dim"] == 64


def test_prepare_prints_the_report_without_reference_for_another_tagged_dataset(tmp_path):
    report = prepare_dataset("tiny-test", None, options={"n_items": 80, "n_query": 16}, backbone="random",
                             cache=tmp_path, device="cpu", extra={"realism": prepare_realism})
    real = report["realism"]
    assert real["reference"] is None
    r = real["report"]
    assert {"chance", "binary_tags", "word_vectors", "features", "lsh@12", "itq@48"} <= set(r)
    # the tiny set's colour tags are its labels (plus noise words): the binary ranking beats chance by far
    assert r["binary_tags"] > r["chance"] + 0.3
    text = format_realism(r)
    assert "realism (tiny-test" in text and "real MIRFLICKR" not in text and "ITQ 48 bits" in text
    untagged = prepare_dataset("tiny-test", None, options={"with_tags": False}, backbone=None,
                               extra={"realism": prepare_realism})
    assert untagged["realism"] is None


def test_prepare_synthetic_needs_no_root_and_prints_the_real_figures_beside(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "hashbench", "prepare", "synthetic", "-D", "n_items=500", "-D", "n_query=100",
         "--cache-dir", str(tmp_path), "--device", "cpu", "-q"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "dataset synthetic in (embedded)" in out.stdout
    table = out.stdout[out.stdout.index("realism (synthetic"):]
    assert "real MIRFLICKR" in table
    for label in ("chance (pairs sharing a label)", "shared binary tags", "mean self-trained tag vectors",
                  "raw features, Euclidean", "LSH 12 bits", "ITQ 48 bits"):
        assert label in table
    assert "0.641" in table and "+0.087" in table  # the real self-trained-vector figure beside ours
    bad = subprocess.run([sys.executable, "-m", "hashbench", "prepare", "mirflickr"], capture_output=True,
                         text=True, cwd=REPO, timeout=120)
    assert bad.returncode != 0 and "--root" in bad.stderr


# ------------------------------------------------------------------ the embedded default, calibrated
def test_embedded_default_is_within_the_calibration_bands(default_report):
    r, _ = default_report
    ref = reference_figures()
    chance = r["chance"]
    assert abs(chance - ref["chance"]["value"]) < 0.02
    assert r["binary_tags"] - chance == pytest.approx(ref["binary_tags"]["value"] - ref["chance"]["value"], abs=0.01)
    assert r["word_vectors"] - chance == pytest.approx(ref["word_vectors"]["value"] - ref["chance"]["value"],
                                                       abs=0.01)
    for b in BITS:
        assert 0.02 <= r[f"lsh@{b}"] - chance <= 0.05, (b, r[f"lsh@{b}"] - chance)
    # ITQ above LSH on average (the real gain is about +0.05; see the README for how far the
    # drawn images under a random backbone get)
    gain = np.mean([r[f"itq@{b}"] - r[f"lsh@{b}"] for b in BITS])
    assert gain > 0.015, gain
    # the raw features carry signal, far from the labels in disguise
    assert chance + 0.03 < r["features"] < chance + 0.2


def test_docstring_section_is_the_report(default_report):
    r, ds = default_report
    written = current_section(SYNTHETIC_FILE.read_text())
    fresh = docstring_section(r, ds)
    got, want = numbers(written), numbers(fresh)
    assert len(got) == len(want), "the docstring section's shape changed: run python -m hashbench.realism --write"
    # within rounding (one unit of the last printed digit) of what the report computes now
    np.testing.assert_allclose(got, want, atol=0.0011 + 1e-9,
                               err_msg="run python -m hashbench.realism --write to regenerate the section")
