"""Ties that cannot favour anyone: by default, items at equal Hamming distance are not ranked in
the dataset's file order (which can be grouped by label, as NUS-WIDE's is), while the peer
presets keep their evaluators' index order exactly."""

from __future__ import annotations

import numpy as np
import pytest

from hashbench.cli import main
from hashbench.evaluation import EvalConfig, evaluate, mean_average_precision
from hashbench.registry import unregister_method
from hashbench.store import iter_cells

from .dataset_fixtures import write_jpeg


def _grouped(n_db: int = 2400, n_q: int = 300, classes: int = 6, bits: int = 2, seed: int = 0):
    """Single-label data whose database lists its items grouped by class, and codes full of ties
    that carry a little signal (a query's class shares its code with part of its database class)."""
    rng = np.random.default_rng(seed)
    db_labels = np.sort(rng.integers(0, classes, n_db))  # file order sorted by label
    q_labels = rng.integers(0, classes, n_q)
    code_of = rng.integers(0, 2, (classes, bits))
    db_codes = np.where(rng.random((n_db, 1)) < 0.3, code_of[db_labels], rng.integers(0, 2, (n_db, bits)))
    q_codes = code_of[q_labels]
    return q_codes.astype(np.uint8), db_codes.astype(np.uint8), q_labels, db_labels


def test_default_tie_order_does_not_follow_the_file_order():
    qc, dc, ql, dl = _grouped()
    perm = np.random.default_rng(1).permutation(len(dc))  # the same database, shuffled file order
    m = lambda c, lab, **kw: mean_average_precision(qc, c, ql, lab, topk=None, device="cpu", **kw)  # noqa: E731
    exact = m(dc, dl, ties="tie-aware")
    assert exact == pytest.approx(m(dc[perm], dl[perm], ties="tie-aware"), abs=1e-12)  # order-free by definition
    # index ties: the grouped file order moves mAP far from its order-free value
    by_index = m(dc, dl, ties="index")
    assert abs(by_index - exact) > 0.03 and abs(by_index - m(dc[perm], dl[perm], ties="index")) > 0.03
    # the default (EvalConfig(), as the runner and the CLI use it): within noise of the exact value,
    # on the grouped and on the shuffled order alike
    assert EvalConfig().ties == "random"
    default_sorted, default_shuffled = m(dc, dl), m(dc[perm], dl[perm])
    assert abs(default_sorted - exact) < 0.01 and abs(default_shuffled - exact) < 0.01
    res = evaluate(qc, dc, ql, dl, EvalConfig(device="cpu"))
    assert res.config["ties"] == "random" and res.metrics["mAP@all"] == default_sorted


def test_peer_presets_keep_index_ties():
    for preset in ("deephash-pytorch", "thuml"):
        assert EvalConfig(preset=preset).ties == "index"
    qc, dc, ql, dl = _grouped(n_db=300, n_q=40)
    for preset, empty in (("deephash-pytorch", "zero"), ("thuml", "drop")):
        got = mean_average_precision(qc, dc, ql, dl, topk=100, preset=preset, device="cpu")
        assert got == mean_average_precision(qc, dc, ql, dl, topk=100, ties="index", empty=empty, device="cpu")


CONSTANT = '''
import numpy as np
import hashbench

@hashbench.register_method("constant-codes-test")
class Constant(hashbench.Hasher):
    """Every item gets the same code: the ranking is all ties (test only)."""

    def _fit(self, features, **inputs):
        pass

    def _encode(self, features, **inputs):
        return np.zeros((features.shape[0], self.bits), np.uint8)
'''


def test_a_run_on_a_label_sorted_dataset_is_not_helped_by_its_file_order(tmp_path, capsys):
    """A manifest listing its images grouped by label; a method whose codes are all equal.
    By index, its mAP would follow the file order; by default it is the order-free value."""
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    rows = []
    for i, lab in enumerate(np.repeat(["a", "b", "c", "d"], 16)):  # sorted by label
        write_jpeg(root / f"p{i:03d}.jpg", "abcd".index(lab), rng, size=(16, 16))
        rows.append(f"p{i:03d}.jpg,{lab}\n")
    (root / "manifest.csv").write_text("path,labels\n" + "".join(rows))
    plugin = tmp_path / "constant.py"
    plugin.write_text(CONSTANT)

    def run(*extra: str) -> float:
        res = tmp_path / f"res{len(extra)}{'-'.join(extra)}"
        argv = ["-q", "--plugin", str(plugin), "run", "--dataset", "manifest", "--data-root", str(root),
                "-D", "n_query=24", "--methods", "constant-codes-test", "--bits", "4", "--weights", "random",
                "--results", str(res), "--cache-dir", str(tmp_path / "cache"), "--no-report", *extra]
        assert main(argv) == 0, capsys.readouterr().err
        (cell,) = list(iter_cells(res))
        return cell.record["evaluation"]["ties"], cell.record["metrics"]["mAP@all"]

    try:
        ties, default = run()
        _, exact = run("--ties", "tie-aware")
        _, by_index = run("--ties", "index")
    finally:
        unregister_method("constant-codes-test")
    assert ties == "random"
    assert abs(default - exact) < 0.05 < abs(by_index - exact)
