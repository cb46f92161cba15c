"""The main job, end to end, as a user runs it: every registered method on the
embedded synthetic dataset, scored, stored and reported (a small size here)."""

from __future__ import annotations

import hashbench
from hashbench.cli import main
from hashbench.store import iter_cells


def test_main_job_runs_every_method_and_writes_the_report(tmp_path, capsys):
    results, reports = tmp_path / "results", tmp_path / "reports"
    code = main([
        "run", "--methods", "all", "--bits", "8,16", "-q",
        "--dataset", "synthetic", "-D", "n_items=260", "-D", "n_query=60",
        "--results", str(results), "--report", str(reports),
        # short schedules: this checks the pipeline, the methods' own tests check learning
        "--param", "udht.max_epochs=1", "--param", "udht.warmup_epochs=2", "--param", "udht.max_train_images=64",
        "--param", "tag-binary-e2e.max_epochs=1", "--param", "tag-binary-e2e.warmup_epochs=2",
        "--param", "tag-binary-e2e.max_train_images=64",
        "--param", "udht-frozen.max_epochs=2", "--param", "tag-binary.max_epochs=2",
        "--param", "dh.max_epochs=2", "--param", "uh-bdnn.max_epochs=1", "--param", "uh-bdnn.lbfgs_iter=5",
        "--param", "deepbit.max_epochs=2",
    ])
    assert code == 0
    out = capsys.readouterr().out
    assert f"results in {results.resolve() / 'synthetic'}" in out
    assert str(reports.resolve()) in out
    frame = hashbench.load_results(results)
    # every unsupervised method but those kept out of 'all' for the CPU budget (Hasher.in_default_run);
    # supervised references (IAH) only when asked for
    expected = {m for m in hashbench.available_methods()
                if hashbench.get_method(m).in_default_run and not hashbench.get_method(m).is_supervised()}
    assert "deepbit-e2e" not in expected and {"dh", "uh-bdnn", "deepbit"} <= expected
    assert {"usdh", "pludh"} <= expected and not {"usdh-e2e", "pludh-e2e"} & expected
    assert set(frame.method) == expected
    assert len(frame) == 2 * len(expected)
    assert frame["mAP@all"].between(0, 1).all()
    # the chance level is the same for every cell: one split
    assert frame["chance"].nunique() == 1
    # UDHT records its per-epoch losses (the paper's Figure 4)
    udht = [c for c in iter_cells(results) if c.record["method"]["name"] == "udht-frozen"]
    assert udht and {"L1", "L2", "L3"} <= set(udht[0].record["history"])
    index = (reports / "index.md").read_text()
    # the default stage (issue 22), said in the warning box: real ImageNet features of drawn pictures
    assert "**Warning: Synthetic stage (synthetic).** ImageNet EfficientNet-Lite0 features of synthetic images" in index
    assert "randomly initialised" not in index
    assert list((reports / "figures").glob("pr_synthetic_8bits.png"))
    # the end-to-end modes fine-tuned the backbone's top only, on the frozen trunk's cached outputs
    e2e = [c for c in iter_cells(results) if c.record["method"]["name"] in ("udht", "tag-binary-e2e")]
    assert len(e2e) == 4 and all(c.record["fit_info"]["finetune"] == "top" for c in e2e)
    assert all(c.record["features"]["stage"] == "ImageNet EfficientNet-Lite0 features" for c in e2e)


def test_the_random_stage_is_one_flag_away(tmp_path, capsys):
    """`--backbone alexnet --weights random`: the former stage, fast, in its own results folder, said so."""
    results, reports = tmp_path / "results", tmp_path / "reports"
    assert main(["run", "--methods", "itq,lsh", "--bits", "8", "-q", "--dataset", "synthetic", "-D", "n_items=200",
                 "-D", "n_query=40", "--backbone", "alexnet", "--weights", "random", "--results", str(results),
                 "--report", str(reports)]) == 0
    out = capsys.readouterr().out
    assert "AlexNet FC2 (4096-d), random He initialisation" in out and "resize 64, centre crop 64" in out
    assert (results / "synthetic-alexnet-fc2").is_dir() and not (results / "synthetic").exists()
    index = (reports / "index.md").read_text()
    assert "**Warning: Random backbone weights (synthetic).** The features come from a randomly initialised " \
           "AlexNet, not from ImageNet weights" in index
