"""Convergence of the tag methods (udht, udht-frozen, tag-binary, tag-binary-e2e): the held-out
objectives against brute-force definitions, early stopping on held-out training items only,
restoring the best epoch, and what is recorded."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import hashbench
from hashbench import ConfigError, DataError
from hashbench.features import BackboneSpec, ImageInput
from hashbench.tags import binary_tag_matrix
from hashbench_methods import tag_binary, udht  # noqa: F401  (registers the methods)
from hashbench_methods._convergence import holdout_split
from hashbench_methods._heldout import heldout_l1, heldout_l4

from .test_udht import clustered_with_tags


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clusters():
    return clustered_with_tags(n=400)


# ------------------------------------------------------------ objectives by definition
def _brute_l1(codes, w, valid, scale):
    total, count = 0.0, 0
    for i in range(len(codes)):
        for j in range(len(codes)):
            if i == j or not (valid[i] and valid[j]):
                continue
            d = np.sum(codes[i] != codes[j]) / codes.shape[1]
            cos = w[i] @ w[j] / np.linalg.norm(w[i]) / np.linalg.norm(w[j])
            total += (d - scale * (1 - cos)) ** 2
            count += 1
    return total / count


def _brute_l4(codes, tags, margin=1.0):
    keep = [i for i, t in enumerate(tags) if t]
    pairs = [(i, j) for i in keep for j in keep if i != j]
    sim = {p: bool(set(tags[p[0]]) & set(tags[p[1]])) for p in pairs}
    beta = sum(sim.values()) / len(pairs)
    total = 0.0
    for i, j in pairs:
        d = np.sum(codes[i] != codes[j]) / codes.shape[1]
        total += (1 - beta) * d if sim[(i, j)] else beta * max(0.0, margin - d) ** 2
    return total / len(pairs)


def test_heldout_l1_matches_its_definition_blockwise():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2, (37, 12)).astype(np.uint8)
    w = rng.standard_normal((37, 5))
    valid = rng.random(37) > 0.2
    for scale in (0.5, 1.0):
        want = _brute_l1(codes, w, valid, scale)
        got = heldout_l1(torch.from_numpy(codes), torch.from_numpy(w), torch.from_numpy(valid), scale)
        assert got == pytest.approx(want, rel=1e-10)
    # perfect agreement: codes whose Hamming distance is exactly half the cosine distance
    c = np.array([[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=np.uint8)  # D = 0.5, 1, 0.5
    w3 = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # 1 - cos = 1, 2, 1
    assert heldout_l1(torch.from_numpy(c), torch.from_numpy(w3), torch.ones(3, dtype=torch.bool), 0.5) == 0.0
    with pytest.raises(DataError, match="at least 2"):
        heldout_l1(torch.from_numpy(c), torch.from_numpy(w3), torch.tensor([True, False, False]))


def test_heldout_l4_matches_its_definition_blockwise():
    rng = np.random.default_rng(1)
    vocab = ["a", "b", "c", "d", "e", "f"]
    tags = [list(rng.choice(vocab, size=rng.integers(0, 3), replace=False)) for _ in range(41)]
    codes = rng.integers(0, 2, (41, 16)).astype(np.uint8)
    mat, _ = binary_tag_matrix(tags)
    valid = np.diff(mat.indptr) > 0
    got = heldout_l4(torch.from_numpy(codes), mat, valid)
    assert got == pytest.approx(_brute_l4(codes, tags), rel=1e-10)
    # the objective does not depend on the tag vocabulary's order (only on shared tags)
    perm = sp.csr_matrix(mat[:, ::-1])
    assert heldout_l4(torch.from_numpy(codes), perm, valid) == pytest.approx(got, rel=1e-12)


# ------------------------------------------------------------------ early stopping
@pytest.mark.parametrize("name", ["udht-frozen", "tag-binary"])
def test_stops_on_heldout_and_restores_the_best_epoch(name, clusters):
    x, _, tags = clusters
    # lambda3 pinned: the mechanics under test, not the selected defaults (0.1 keeps improving here)
    params = {"word_vector_dim": 16} if name == "udht-frozen" else {"lambda3": 1.0}
    h = hashbench.create(name, bits=16, seed=0, lr=0.05, max_epochs=40, patience=3, val_fraction=0.25,
                         **params).fit(x, tags=tags)
    conv = h.fit_info_["convergence"]
    held = h.history_["heldout"]
    assert len(held) == conv["epochs_run"] == len(h.history_["total"])
    assert conv["epochs_run"] < 40 and "no held-out improvement" in conv["stopped_because"]
    best = conv["best_epoch"]
    # the best epoch: no later one improved on it by more than min_delta (1e-4)
    assert conv["best_heldout"] == held[best - 1] and held[best - 1] <= min(held) + 1e-4
    assert all(v > held[best - 1] - 1e-4 for v in held[best:])
    assert all(held[best - 1] < v - 1e-4 for v in held[: best - 1])
    assert conv["epochs_run"] - best == 3  # exactly `patience` epochs without improvement
    # the weights kept are the best epoch's: its held-out objective, recomputed from scratch
    # on the held-out items (same seeded split), is the recorded best value
    _, rows = holdout_split(len(x), 0.25, 0)
    assert h.fit_info_["heldout"] == {"val_fraction": 0.25, "n_fit": 300, "n_heldout": 100}
    again = h.heldout_objective(x[rows], tags=[tags[i] for i in rows])
    assert again == pytest.approx(held[best - 1], rel=1e-9)
    assert best < conv["epochs_run"] and held[-1] != held[best - 1]  # so the last epoch's weights would differ


def test_heldout_items_never_shape_the_training_steps(clusters):
    """Garbage in the held-out items' features and tags changes the held-out curve only: the
    training losses epoch by epoch (word vectors, standardisation, gradient steps) are identical."""
    x, _, tags = clusters
    _, rows = holdout_split(len(x), 0.2, 0)
    x2 = x.copy()
    x2[rows] = np.random.default_rng(5).standard_normal((rows.size, x.shape[1])) * 50
    tags2 = [list(t) for t in tags]
    for i in rows:
        tags2[i] = ["car", "sky", "zebra"]
    kw = dict(bits=8, seed=0, word_vector_dim=16, max_epochs=4, patience=10, val_fraction=0.2)
    a = hashbench.create("udht-frozen", **kw).fit(x, tags=tags)
    b = hashbench.create("udht-frozen", **kw).fit(x2, tags=tags2)
    np.testing.assert_array_equal(a.history_["total"], b.history_["total"])
    assert a.history_["heldout"] != b.history_["heldout"]
    # and the word vectors were trained on the fit rows' tags only
    assert "zebra" not in b.word_vectors_.key_to_index


def test_no_heldout_items_means_the_full_schedule(clusters):
    x, _, tags = clusters
    h = hashbench.create("tag-binary", bits=8, seed=0, max_epochs=3, val_fraction=0.0).fit(x, tags=tags)
    conv = h.fit_info_["convergence"]
    assert conv["epochs_run"] == conv["best_epoch"] == 3 and "val_fraction=0" in conv["stopped_because"]
    assert "heldout" not in h.history_ and len(h.history_["total"]) == 3
    assert h.fit_info_["heldout"]["n_fit"] == len(x)


def test_heldout_objective_on_new_items_and_bad_input(clusters):
    x, _, tags = clusters
    h = hashbench.create("udht-frozen", bits=8, seed=0, word_vector_dim=16, max_epochs=2).fit(x[:300], tags=tags[:300])
    v = h.heldout_objective(x[300:], tags=tags[300:])
    w = torch.from_numpy(h._targets_for(tags[300:])[0].numpy())
    want = _brute_l1(h.encode(x[300:]), w.numpy().astype(np.float64),
                     np.linalg.norm(w.numpy(), axis=1) > 0, 0.5)
    assert v == pytest.approx(want, rel=1e-6)
    with pytest.raises(DataError):
        h.heldout_objective(x[300:], tags=tags[300:310])  # one tag list per item
    b = hashbench.create("tag-binary", bits=8, seed=0, max_epochs=2).fit(x[:300], tags=tags[:300])
    assert b.heldout_objective(x[300:], tags=tags[300:]) == pytest.approx(
        _brute_l4(b.encode(x[300:]), [sorted(set(t)) for t in tags[300:]]), rel=1e-9)


@pytest.mark.parametrize("bad", [{"val_fraction": 0.999}, {"patience": 0}, {"max_epochs": 1.5},
                                 {"min_delta": float("nan")}, {"l4_similar_power": 3}])
def test_bad_convergence_parameters_are_refused(bad, clusters):
    x, _, tags = clusters
    with pytest.raises(ConfigError):
        hashbench.create("tag-binary", bits=8, **bad).fit(x[:40], tags=tags[:40])


def test_end_to_end_warmup_and_fine_tuning_both_stop_on_heldout():
    from hashbench.datasets import get_dataset

    data = get_dataset("tiny-test", n_items=48, n_query=8)
    spec = BackboneSpec(weights="random", resize=64, crop=64)
    train = np.arange(8, 48)
    images = ImageInput(data, train, spec)
    tags = [data.tags[i] for i in train]
    h = hashbench.create("tag-binary-e2e", bits=8, seed=0, max_epochs=2, warmup_epochs=30, patience=2,
                         val_fraction=0.25, batch_size=16, lr=0.05, device="cpu").fit(tags=tags, images=images)
    conv = h.fit_info_["convergence"]
    warm = conv["warmup"]
    assert conv["phase"] == "fine-tuning" and warm["phase"] == "warmup"
    assert h.fit_info_["heldout"]["n_heldout"] == 10 and h.fit_info_["train_images_used"] == 30
    assert conv["history_offset"] == warm["epochs_run"] == h.history_["end_to_end"].count(0.0)
    assert len(h.history_["heldout"]) == warm["epochs_run"] + conv["epochs_run"]
    # fine-tuning starts from the warmed-up head: its held-out value is the warm-up's best
    assert conv["initial_heldout"] == pytest.approx(warm["best_heldout"], rel=1e-9)
    # and whatever epoch is kept (0 = the starting point), its value is the best seen
    held_ft = h.history_["heldout"][conv["history_offset"]:]
    assert conv["best_heldout"] == pytest.approx(min([conv["initial_heldout"], *held_ft]))
    # the kept weights (backbone and head) give that value again on the held-out images
    _, rows = holdout_split(40, 0.25, 0)  # max_train_images (500) > 40: the split is of all 40
    again = h.heldout_objective(images=ImageInput(data, train[rows], spec), tags=[tags[i] for i in rows])
    assert again == pytest.approx(conv["best_heldout"], rel=1e-6)


# ------------------------------------------------------------------ search spaces
@pytest.mark.parametrize("name", ["udht", "udht-frozen", "tag-binary", "tag-binary-e2e"])
def test_search_spaces_are_small_valid_grids(name):
    import itertools

    cls = hashbench.get_method(name)
    space = cls.search_space
    assert space and set(space) <= set(cls._param_names())
    assert not {"max_epochs", "patience", "val_fraction"} & set(space)  # early stopping sets the schedule
    points = list(itertools.product(*space.values()))
    assert 8 <= len(points) <= 12 and all(len(set(v)) == len(v) for v in space.values())
    for point in points:  # every point is a valid configuration
        h = cls(bits=8, **dict(zip(space, point)))
        h._check_params()
        getattr(h, "_check_udht_params", lambda: None)()
