"""USDH and PLUDH: the common interface, and the properties their losses promise
(bit balance, a shrinking quantisation gap, Hamming relevance following feature relevance, rotation
agreement for USDH; pseudo-label purity and class-consistent codes for PLUDH)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import hashbench
from hashbench import ConfigError, NotFittedError
from hashbench.datasets import get_dataset
from hashbench.features import BackboneSpec, ImageInput
from hashbench_methods import lsh, pludh, usdh  # noqa: F401  (registers the methods)
from hashbench_methods.pludh import bitwise_mutual_information

FEATURE_MODES = ["usdh", "pludh"]
FAST = {"max_epochs": 30, "device": "cpu"}
#: the loss weights these tests were written for (the shipped ones are selected, and may change with the record)
USDH_WEIGHTS = {"lambda_q": 0.1, "lambda_e": 0.1, "lr": 0.05}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def clustered(n: int = 600, d: int = 64, k: int = 5, seed: int = 0, sep: float = 3.0,
              weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """k Gaussian clusters (ReLU'd, like CNN features), well separated, optionally of unequal sizes."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * sep
    labels = rng.choice(k, size=n, p=weights)
    x = np.maximum(centres[labels] + rng.standard_normal((n, d)), 0) + 0.1
    return x.astype(np.float32), labels


@pytest.fixture(scope="module")
def data():
    return clustered()


def _u(h, x):
    with torch.no_grad():
        return h._u(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("name", FEATURE_MODES)
def test_common_interface(name, data):
    x, _ = data
    h = hashbench.create(name, bits=12, seed=0, **FAST)
    with pytest.raises(NotFittedError):
        h.encode(x)
    assert h.fit(x) is h
    codes = h.encode(x[:50])
    assert codes.shape == (50, 12) and codes.dtype == np.uint8 and set(np.unique(codes)) <= {0, 1}
    np.testing.assert_array_equal(codes, hashbench.create(name, bits=12, seed=0, **FAST).fit(x).encode(x[:50]))
    assert not np.array_equal(h.encode(x), hashbench.create(name, bits=12, seed=1, **FAST).fit(x).encode(x))
    params = h.get_params()
    assert hashbench.create(name, **params).get_params() == params
    conv = h.fit_info_["convergence"]
    assert 1 <= conv["best_epoch"] <= conv["epochs_run"] <= 30 and conv["stopped_because"]
    assert h.fit_info_["heldout"]["n_heldout"] == 60  # val_fraction 0.1 of the training items
    assert len(h.history_["heldout"]) == conv["epochs_run"]
    assert set(type(h).components) <= set(h.history_)
    info = type(h).info()
    assert info["deep"] and info["requires"] == ["features"] and info["paper"]
    doc = type(h).__doc__
    assert "*Paper*" in doc and "*Ours*" in doc  # criterion by criterion: where each part comes from
    assert set(type(h).search_space) <= set(params)
    assert type(h).in_default_run and not hashbench.get_method(f"{name}-e2e").in_default_run


@pytest.mark.parametrize("name", FEATURE_MODES)
def test_heldout_objective_is_the_trained_objective_on_unseen_items(name, data):
    x, _ = data
    fit_x, unseen = x[:500], x[500:]
    trained = hashbench.create(name, bits=12, seed=0, **FAST).fit(fit_x)
    untrained = hashbench.create(name, bits=12, seed=0, max_epochs=0, device="cpu").fit(fit_x)
    a, b = trained.heldout_objective(features=unseen), untrained.heldout_objective(features=unseen)
    assert math.isfinite(a) and a < b


@pytest.mark.parametrize("name, bad", [
    ("usdh", {"lambda_q": -1}), ("usdh", {"lr": 0}), ("usdh", {"val_fraction": 1.0}), ("usdh", {"patience": 0}),
    ("pludh", {"n_clusters": 1}), ("pludh", {"n_clusters": "many"}), ("pludh", {"alpha": float("nan")}),
    ("usdh-e2e", {"rotation_angles": []}), ("pludh-e2e", {"finetune": "conv"}),
])
def test_bad_parameters_are_refused(name, bad, data):
    x, _ = data
    h = hashbench.create(name, bits=8, **bad)
    with pytest.raises(ConfigError, match=list(bad)[0]):
        if name.endswith("e2e"):
            h._check_params()
        else:
            h.fit(x)


# ------------------------------------------------------------------------- USDH
def test_usdh_bit_entropy_term_balances_the_bits_on_skewed_data():
    x, _ = clustered(n=600, k=3, weights=np.array([0.8, 0.15, 0.05]), seed=2)
    skew = {}
    for lam in (0.0, 1.0):
        h = hashbench.create("usdh", bits=16, seed=0, lambda_e=lam, **FAST).fit(x)
        skew[lam] = float(np.abs(h.encode(x).mean(0) - 0.5).mean())
    assert skew[1.0] < skew[0.0] and skew[1.0] < 0.15


def test_usdh_quantisation_gap_shrinks(data):
    x, _ = data
    h = hashbench.create("usdh", bits=16, seed=0, lambda_q=1.0, **FAST).fit(x)
    gaps = h.history_["L_q"]
    best = h.fit_info_["convergence"]["best_epoch"]
    assert gaps[best - 1] < 0.5 * gaps[0]
    loose = hashbench.create("usdh", bits=16, seed=0, lambda_q=0.0, **FAST).fit(x)
    gap = {m: float(((u - np.sign(u)) ** 2).mean()) for m, u in (("q", _u(h, x)), ("none", _u(loose, x)))}
    assert gap["q"] < gap["none"]


def test_usdh_hamming_relevance_follows_feature_relevance(data):
    """Criterion 1: code inner products rank held-out pairs like the centred feature cosines, far better than LSH."""
    x, _ = data
    fit_x, unseen = x[:500], x[500:]
    from scipy.stats import spearmanr

    z = unseen - fit_x.mean(0)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    iu = np.triu_indices(len(unseen), 1)
    target = (z @ z.T)[iu]

    def agreement(codes):
        s = 2.0 * codes.astype(np.float64) - 1
        return spearmanr((s @ s.T)[iu], target).statistic

    ours = agreement(hashbench.create("usdh", bits=16, seed=0, **FAST, **USDH_WEIGHTS).fit(fit_x).encode(unseen))
    base = agreement(hashbench.create("lsh", bits=16, seed=0).fit(fit_x).encode(unseen))
    assert ours > 0.6 and ours > base + 0.1


@pytest.fixture(scope="module")
def tiny():
    data = get_dataset("tiny-test", n_items=32, n_query=8)
    spec = BackboneSpec(weights="random", resize=64, crop=64)
    return data, spec, ImageInput(data, np.arange(8, 32), spec)


def test_usdh_e2e_rotation_term_makes_codes_agree_under_rotation(tiny):
    data, spec, images = tiny
    flips = {}
    for lam in (0.0, 5.0):
        h = hashbench.create("usdh-e2e", bits=16, seed=0, lambda_r=lam, max_epochs=10, finetune_epochs=2,
                             batch_size=12, backbone_lr=1e-3, patience=10, device="cpu", **USDH_WEIGHTS).fit(images=images)
        flips[lam] = h.rotation_disagreement(images, angle=10.0)
    assert h.history_["end_to_end"][0] == 0.0 and h.history_["end_to_end"][-1] == 1.0
    assert set(h.fit_info_["convergence_phases"]) == {"warmup", "finetune"}
    assert flips[5.0] < flips[0.0]
    codes = h.encode(images=ImageInput(data, np.arange(8), spec))
    assert codes.shape == (8, 16)
    np.testing.assert_array_equal(codes, h.encode(images=ImageInput(data, np.arange(8), spec)))


# ------------------------------------------------------------------------ PLUDH
def test_pludh_pseudo_labels_are_pure_on_data_with_known_clusters(data):
    x, labels = data
    for c in (5, "auto"):  # the true count, and the label-free default (n // 50 = 10 here, finer than the truth)
        h = hashbench.create("pludh", bits=12, seed=0, n_clusters=c, **FAST).fit(x)
        pseudo = h.pseudo_labels(x)
        purity = sum(np.bincount(labels[pseudo == p]).max() for p in np.unique(pseudo)) / len(x)
        assert purity > 0.97, (c, purity)
    assert h.fit_info_["pseudo_labels"]["n_clusters"] == 10


def test_pludh_codes_carry_the_pseudo_classes(data):
    x, _ = data
    h = hashbench.create("pludh", bits=16, seed=0, **FAST).fit(x)
    codes, pseudo = h.encode(x).astype(int), h.pseudo_labels(x)
    ham = (codes[:, None, :] != codes[None, :, :]).sum(-1)
    same = pseudo[:, None] == pseudo[None, :]
    off = ~np.eye(len(x), dtype=bool)
    assert ham[same & off].mean() < 0.5 * ham[~same].mean()
    assert h.history_["MI"][h.fit_info_["convergence"]["best_epoch"] - 1] > h.history_["MI"][0]


def test_bitwise_mutual_information_matches_counting_on_binary_codes():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    b = (rng.random((200, 5)) < np.array([0.2, 0.5, 0.7, 0.9, 0.4])).astype(int)
    b[:, 0] = y == 1  # one bit determined by the class
    expected = []
    for k in range(5):
        joint = np.array([[np.mean((y == c) & (b[:, k] == v)) for v in (0, 1)] for c in range(3)])
        pc, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
        nz = joint > 0
        expected.append(float((joint[nz] * np.log(joint[nz] / (pc @ pb)[nz])).sum()))
    got = bitwise_mutual_information(torch.tensor(2.0 * b - 1), torch.tensor(y), 3)
    assert float(got) == pytest.approx(np.mean(expected), abs=1e-4)


def test_pludh_e2e_finetunes_the_top_and_keeps_the_convolutions(tiny):
    data, spec, images = tiny
    h = hashbench.create("pludh-e2e", bits=8, seed=0, max_epochs=5, finetune_epochs=2, batch_size=16,
                         backbone_lr=1e-2, device="cpu").fit(images=images)
    initial = dict(images.build_backbone().named_parameters())
    tuned = dict(h.backbone_.named_parameters())
    assert torch.equal(initial["features.0.weight"], tuned["features.0.weight"])  # convolutions frozen
    assert not torch.equal(initial["classifier.4.weight"], tuned["classifier.4.weight"])  # FC2 fine-tuned
    assert h.fit_info_["pseudo_labels"]["n_clusters"] == 2  # auto: 22 fit images // 50, at least 2
    assert h.encode(images=ImageInput(data, np.arange(8), spec)).shape == (8, 8)
