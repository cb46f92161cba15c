"""The tag methods' named configurations, ``paper`` and ``authors-code``, from the command line
on the embedded default and on the MIRFLICKR and NUS-WIDE fixtures (publishers' layouts)."""

from __future__ import annotations

import numpy as np
import pytest

import hashbench
from hashbench import ConfigError
from hashbench.cli import main
from hashbench.store import iter_cells

from .dataset_fixtures import write_mirflickr, write_nuswide

TAG_METHODS = ("udht-frozen", "udht", "tag-binary", "tag-binary-e2e")
VARIANTS = [f"{m}@{c}" for m in TAG_METHODS for c in ("paper", "authors-code")]


def _short(spec: str) -> list[str]:
    """A short schedule: this checks that each configuration runs, not how well it learns."""
    out = ["--param", f"{spec}.max_epochs=1"]
    if spec.startswith(("udht@", "tag-binary-e2e@")):
        out += ["--param", f"{spec}.batch_size=16"]
    return out


DATASETS = {
    "synthetic": (None, ["-D", "n_items=160", "-D", "n_query=30"]),
    "mirflickr25k": (write_mirflickr, ["-D", "min_tag_count=2", "-D", "n_query=4", "-D", "n_database=20"]),
    "nuswide": (write_nuswide, ["-D", "top_labels=4", "-D", "n_query=5", "-D", "n_database=null"]),
}


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_paper_and_authors_code_configurations_run_from_the_command_line(dataset, tmp_path, capsys):
    writer, options = DATASETS[dataset]
    # on the real fixtures (224-px crops) the end-to-end path runs once per configuration, through
    # udht; tag-binary-e2e shares it and runs on the embedded default (64 px)
    variants = VARIANTS if writer is None else [v for v in VARIANTS if not v.startswith("tag-binary-e2e@")]
    argv = ["-q", "run", "--dataset", dataset, *options, "--methods", ",".join(variants), "--bits", "8",
            "--results", str(tmp_path / "res"), "--cache-dir", str(tmp_path / "cache"), "--no-report"]
    if writer is not None:
        writer(tmp_path / "data")
        argv += ["--data-root", str(tmp_path / "data"), "--weights", "random"]
    for spec in variants:
        argv += _short(spec)
    assert main(argv) == 0, capsys.readouterr().err
    frame = hashbench.load_results(tmp_path / "res")
    assert sorted(frame.method) == sorted(variants)
    assert np.isfinite(frame["mAP@all"]).all()
    records = {c.record["method"]["name"]: c.record for c in iter_cells(tmp_path / "res")}
    for spec, rec in records.items():
        base, _, config = spec.partition("@")
        params = rec["method"]["params"]
        assert rec["method"]["base"] == base and rec["method"]["configuration"] == config
        # the configuration's values are what ran (apart from the shortened schedule)
        want = {k: v for k, v in hashbench.get_method(base).configurations[config].items()
                if k not in ("max_epochs", "batch_size")}
        assert {k: params[k] for k in want} == want
        assert params["reduction"] == ("sum" if config == "paper" else "mean")
        conv = rec["fit_info"]["convergence"]
        assert "val_fraction=0" in conv["stopped_because"] and conv["epochs_run"] == 1
        assert rec["fit_info"]["feature_norm"] == {"kind": "none"}  # FC3 straight on FC2


def test_configurations_hold_what_the_readme_table_says():
    for base in TAG_METHODS:
        cls = hashbench.get_method(base)
        paper, code = cls.configurations["paper"], cls.configurations["authors-code"]
        for c in (paper, code):  # 50 epochs over all training images, no early stopping; the paper's rates
            assert c["max_epochs"] == 50 and c["val_fraction"] == 0.0 and c["lr"] == 1e-3 and c["momentum"] == 0.9
            assert c["feature_norm"] == "none"
            if cls.end_to_end:
                assert c["backbone_lr"] == 1e-4 and c["max_train_images"] is None and c["warmup_epochs"] == 0
        assert paper["reduction"] == "sum" and code["reduction"] == "mean"
        if base.startswith("udht"):
            assert paper["unit_tag_vectors"] is False and paper["l1_target_scale"] == 0.5
            assert code["l1_target_scale"] == 1.0 and code["margin"] == 0.2 and code["lambda2"] == 10.0
        else:
            assert paper["l4_similar_power"] == 1 and (code["margin"], code["l4_similar_power"]) == (3.0, 2)
    with pytest.raises(ConfigError, match="no configuration 'papr'.*authors-code, paper"):
        hashbench.create("udht-frozen@papr")
