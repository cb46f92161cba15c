"""UDHT (udht, udht-frozen) and the tag-binary baseline: losses by hand, optimiser groups, training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import hashbench
from hashbench import ConfigError, DataError, NotFittedError
from hashbench.evaluation import mean_average_precision
from hashbench.features import BackboneSpec, ImageInput
from hashbench_methods import lsh, tag_binary, udht  # noqa: F401  (registers the methods)
from hashbench_methods._udht_net import (
    HashHead,
    contrastive_loss,
    hinge_loss,
    normalized_sq_distances,
    pairwise_similarity_loss,
    quantization_loss,
)

T = torch.tensor


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ------------------------------------------------------------------- losses by hand
def test_distance_is_squared_euclidean_over_bits():
    h = T([[0.0, 1.0], [1.0, 1.0], [0.5, 0.0]])
    d = normalized_sq_distances(h)
    np.testing.assert_allclose(d.numpy(), [[0, 0.5, 0.625], [0.5, 0, 0.625], [0.625, 0.625, 0]], rtol=1e-6)


def test_l1_pairwise_similarity_by_hand():
    h1 = T([[0.0, 1.0], [1.0, 1.0]])  # D_01 = 1/2
    w = T([[1.0, 0.0], [1.0, 1.0]])  # cos = 1/sqrt(2): target 1/2 (1 - 0.7071) = 0.14645
    valid = T([True, True])
    term = (0.5 - 0.5 * (1 - 1 / math.sqrt(2))) ** 2
    # the paper's double sum counts (0, 1) and (1, 0); the diagonal adds 0
    assert pairwise_similarity_loss(h1, w, valid, "sum").item() == pytest.approx(2 * term, rel=1e-6)
    assert pairwise_similarity_loss(h1, w, valid, "mean").item() == pytest.approx(term, rel=1e-6)
    # opposite tag vectors: target 1, so identical codes cost (0 - 1)^2
    same = T([[0.3, 0.7], [0.3, 0.7]])
    assert pairwise_similarity_loss(same, T([[1.0, 0.0], [-1.0, 0.0]]), valid, "mean").item() == pytest.approx(1.0)


def test_l1_masks_items_without_tag_vectors_and_never_nans():
    h1 = T([[0.0, 1.0], [1.0, 1.0], [0.2, 0.9]], requires_grad=True)
    w = T([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])  # item 2: no tag vector (zero, masked)
    full = pairwise_similarity_loss(h1, w, T([True, True, False]), "mean")
    assert full.item() == pytest.approx((0.5 - 0.5 * (1 - 1 / math.sqrt(2))) ** 2, rel=1e-6)
    full.backward()
    assert torch.isfinite(h1.grad).all() and torch.all(h1.grad[2] == 0)
    none = pairwise_similarity_loss(h1, w, T([False, True, False]), "mean")
    assert none.item() == 0.0  # no valid pair at all: zero, not 0/0


def test_l2_hinge_by_hand():
    h2 = T([[1.0, 0.0], [0.0, 1.0]])
    w = T([[0.5, 0.0], [0.0, 0.2]])
    # anchor 0: margin + w1.h2_0 - w0.h2_0 = 0.2 + 0 - 0.5 < 0 -> 0
    # anchor 1: 0.2 + w0.h2_1 - w1.h2_1 = 0.2 + 0 - 0.2 = 0 -> 0; with margin 0.5: 0.3
    valid = T([True, True])
    assert hinge_loss(h2, w, valid, 0.2, "sum").item() == pytest.approx(0.0, abs=1e-7)
    assert hinge_loss(h2, w, valid, 0.5, "sum").item() == pytest.approx(0.0 + 0.3, rel=1e-6)
    assert hinge_loss(h2, w, valid, 0.5, "mean").item() == pytest.approx(0.3 / 2, rel=1e-6)
    # three items, the third masked: it is neither anchor nor negative
    h2b = torch.cat([h2, T([[5.0, 5.0]])])
    wb = torch.cat([w, T([[9.0, 9.0]])])
    assert hinge_loss(h2b, wb, T([True, True, False]), 0.5, "sum").item() == pytest.approx(0.3, rel=1e-6)
    assert hinge_loss(h2b, wb, T([True, True, True]), 0.5, "sum").item() > 10  # it would dominate


def test_l3_quantization_sign_and_value():
    h1 = T([[0.5, 0.5], [1.0, 0.0], [0.9, 0.5]])
    per_item = [0.0, 0.25, 0.16 / 2]
    assert quantization_loss(h1, "sum").item() == pytest.approx(-sum(per_item), rel=1e-6)
    assert quantization_loss(h1, "mean").item() == pytest.approx(-sum(per_item) / 3, rel=1e-6)
    # minimising L3 pushes outputs away from 0.5: the gradient step moves 0.6 up and 0.4 down
    h = T([[0.6, 0.4]], requires_grad=True)
    quantization_loss(h).backward()
    assert h.grad[0, 0] < 0 < h.grad[0, 1]


def test_l4_contrastive_with_beta_by_hand():
    h1 = T([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    # D_01 = 0.5, D_02 = 1.0, D_12 = 0.5
    similar = T([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)  # only (0, 1) shares a tag
    valid = T([True, True, True])
    margin = 0.8
    beta = 2 / 6  # 2 of the 6 ordered pairs i != j are similar
    sim_term = (1 - beta) * 0.5
    dis_terms = beta * (max(0.0, margin - 1.0) ** 2) + beta * (margin - 0.5) ** 2
    want_sum = 2 * (sim_term + dis_terms)
    loss, b = contrastive_loss(h1, similar, valid, margin, "sum")
    assert b == pytest.approx(beta)
    assert loss.item() == pytest.approx(want_sum, rel=1e-6)
    loss_m, _ = contrastive_loss(h1, similar, valid, margin, "mean")
    assert loss_m.item() == pytest.approx(want_sum / 6, rel=1e-6)
    # item 2 without tags: only the pair (0, 1) remains, beta = 1, weight 1 - beta = 0
    loss_v, b_v = contrastive_loss(h1, similar, T([True, True, False]), margin, "sum")
    assert b_v == 1.0 and loss_v.item() == pytest.approx(0.0, abs=1e-7)


def test_bad_reduction():
    with pytest.raises(ConfigError):
        quantization_loss(T([[0.1]]), "max")


# ---------------------------------------------------------------- network and optimiser
def test_head_shapes_init_and_code_rule():
    torch.manual_seed(0)
    head = HashHead(4096, 12, 64)
    assert head.h1.out_features == 12 and head.h2.out_features == 64 and head.fc3.out_features == 256
    for layer in (head.fc3, head.h1, head.h2):
        assert torch.all(layer.bias == 0)
        fan_in, fan_out = layer.in_features, layer.out_features
        assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.1)
    h1, h2, logits = head(torch.randn(5, 4096))
    assert torch.all((h1 > 0) & (h1 < 1)) and torch.all(h2.abs() < 1)
    assert torch.equal(logits > 0, h1 > 0.5)
    assert HashHead(10, 4, None).h2 is None


def test_two_learning_rates_apply_to_the_right_parameter_groups():
    net = udht.UDHT(bits=8, momentum=0.0, lr=1e-3)  # the two rates given, not the defaults
    net.head_ = HashHead(4096, 8, 16)
    backbone = torch.nn.Sequential(torch.nn.Linear(3, 4096))  # stands in for AlexNet
    opt = net._optimizer(backbone)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == {"new": 1e-3, "pretrained": 1e-4}
    head_ids = {id(p) for p in net.head_.parameters()}
    bb_ids = {id(p) for p in backbone.parameters()}
    groups = {g["name"]: {id(p) for p in g["params"]} for g in opt.param_groups}
    assert groups["new"] == head_ids and groups["pretrained"] == bb_ids
    # one real step with unit gradients: each parameter moves by exactly its group's lr
    before = {id(p): p.detach().clone() for p in [*net.head_.parameters(), *backbone.parameters()]}
    for p in [*net.head_.parameters(), *backbone.parameters()]:
        p.grad = torch.ones_like(p)
    opt.step()
    for p in net.head_.parameters():
        torch.testing.assert_close(before[id(p)] - p.detach(), torch.full_like(p, 1e-3))
    for p in backbone.parameters():
        torch.testing.assert_close(before[id(p)] - p.detach(), torch.full_like(p, 1e-4))


# --------------------------------------------------------------- training on clusters
WORDS = [["sky", "cloud", "blue"], ["dog", "puppy", "pet"], ["car", "road", "traffic"], ["tree", "leaf", "forest"]]
NOISE = ["canon", "nikon", "explore", "2008", "bw", "macro"]


def clustered_with_tags(n: int = 500, d: int = 64, seed: int = 0):
    """4 classes; features are noisy class means with a shared offset, tags mostly from the class words."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    centres = rng.standard_normal((4, d)) * 0.6
    x = centres[labels] + rng.standard_normal((n, d)) + 2.0
    tags = []
    for c in labels:
        t = list(rng.choice(WORDS[c], size=2, replace=False)) + [NOISE[rng.integers(len(NOISE))]]
        if rng.random() < 0.2:  # a confusing tag from another class
            t.append(WORDS[rng.integers(4)][rng.integers(3)])
        tags.append(t)
    return x.astype(np.float32), labels, tags


@pytest.fixture(scope="module")
def clusters():
    return clustered_with_tags()


def _map(h, x, labels):
    q, db = slice(0, 100), slice(100, None)
    return mean_average_precision(h.encode(x[q]), h.encode(x[db]), labels[q], labels[db], topk=None)


@pytest.mark.parametrize("name", ["udht-frozen", "tag-binary"])
def test_frozen_training_lowers_the_loss_and_beats_lsh(name, clusters):
    x, labels, tags = clusters
    # a short schedule of 10 mini-batches per epoch, at 10x the paper's learning rate
    params = {"word_vector_dim": 16, "max_epochs": 15} if name == "udht-frozen" else {"max_epochs": 30}
    params["val_fraction"] = 0.0  # a fixed schedule: this test is about learning, not stopping
    params["lr"] = 1e-2
    h = hashbench.create(name, bits=16, seed=0, **params)
    with pytest.raises(NotFittedError):
        h.encode(x)
    h.fit(x, tags=tags)
    total = h.history_["total"]
    assert len(total) == params["max_epochs"] and total[-1] < total[0]
    codes = h.encode(x)
    assert codes.shape == (len(x), 16) and codes.dtype == np.uint8
    ours = _map(h, x, labels)
    ref = np.mean([_map(hashbench.create("lsh", bits=16, seed=s).fit(x), x, labels) for s in range(3)])
    assert ours > ref + 0.05, (ours, ref)
    # same seed, same codes; the fit records what it used
    again = hashbench.create(name, bits=16, seed=0, **params).fit(x, tags=tags)
    np.testing.assert_array_equal(again.encode(x), codes)
    assert h.fit_info_["device"] == "cpu" and "tags" in h.fit_info_


def test_udht_records_word_vectors_and_l1_l2_l3(clusters):
    x, _, tags = clusters
    h = hashbench.create("udht-frozen", bits=8, max_epochs=2, word_vector_dim=16).fit(x, tags=tags)
    assert set(h.history_) == {"total", "L1", "L2", "L3", "heldout"} and all(len(v) == 2 for v in h.history_.values())
    assert all(v < 0 for v in h.history_["L3"])  # the paper's sign
    info = h.fit_info_["word_vectors"]
    assert info["source"] == "trained" and info["dim"] == 16 and info["vocabulary_size"] == 18
    assert h.head_.h2.out_features == 16  # H2 has the word-vector dimension
    hist = h.training_history()
    assert set(hist) == {"total", "L1", "L2", "L3", "heldout"}


def test_images_without_known_tags_are_masked_not_nan(clusters, tmp_path):
    x, _, tags = clusters
    # vectors for two class words only: most images lose some tags, many lose all
    path = tmp_path / "small.txt"
    path.write_text("2 3\nsky 1 0 0\ndog 0 1 0\n")
    h = hashbench.create("udht-frozen", bits=8, max_epochs=2, word_vectors=str(path), aggregation="idf")
    h.fit(x, tags=tags)
    stats = h.fit_info_["tags"]
    assert stats["n_images_all_oov"] > 100 and stats["n_oov_occurrences"] > 0
    assert all(np.isfinite(v).all() for v in h.history_.values())
    assert h.fit_info_["word_vectors"]["source"] == "file"
    with pytest.raises(DataError, match="vocabulary"):
        hashbench.create("udht-frozen", bits=8, max_epochs=1, word_vectors=str(path)).fit(
            x[:3], tags=[["car"], ["tree"], ["road"]])


@pytest.mark.parametrize("bad", [{"max_epochs": -1}, {"patience": 0}, {"min_delta": -1.0}, {"val_fraction": 1.0},
                                 {"l1_target_scale": -0.5}, {"batch_size": 1}, {"reduction": "avg"}, {"margin": -1.0},
                                 {"aggregation": "max"}, {"feature_norm": "whiten"}, {"lr": 0.0}])
def test_bad_parameters_are_refused(bad, clusters):
    x, _, tags = clusters
    with pytest.raises(ConfigError):
        hashbench.create("udht-frozen", bits=8, **bad).fit(x[:20], tags=tags[:20])


# ------------------------------------------------------------------- end to end
def test_end_to_end_short_cpu_training_on_tiny_images():
    from hashbench.datasets import get_dataset

    data = get_dataset("tiny-test", n_items=40, n_query=8)
    spec = BackboneSpec(weights="random", resize=64, crop=64)
    train = np.arange(8, 40)
    images = ImageInput(data, train, spec)
    tags = [data.tags[i] for i in train]
    # every layer fine-tuned from the images, as in the paper (the frozen-trunk default: test_frozen_trunk.py)
    h = hashbench.create("udht", bits=8, seed=0, max_epochs=1, warmup_epochs=1, batch_size=16, word_vector_dim=8,
                         val_fraction=0.0, device="cpu", finetune="all")
    h.fit(tags=tags, images=images)
    initial = images.build_backbone()
    fc2 = dict(initial.named_parameters())["classifier.4.weight"]
    tuned = dict(h.backbone_.named_parameters())["classifier.4.weight"]
    assert not torch.equal(fc2, tuned)  # the pre-trained layers were fine-tuned
    assert h.history_["end_to_end"] == [0.0, 1.0]
    assert all(np.isfinite(h.history_[k]).all() for k in ("L1", "L2", "L3", "total"))
    codes = h.encode(images=ImageInput(data, np.arange(8), spec))
    assert codes.shape == (8, 8) and set(np.unique(codes)) <= {0, 1}
    np.testing.assert_array_equal(codes, h.encode(images=ImageInput(data, np.arange(8), spec)))
    # the tag-binary baseline end to end, without warm-up (the paper's joint schedule)
    b = tag_binary.TagBinaryEndToEnd(bits=8, max_epochs=1, warmup_epochs=0, batch_size=16, val_fraction=0.0,
                                     device="cpu")
    b.fit(tags=tags, images=images)
    assert b.history_["end_to_end"] == [1.0] and np.isfinite(b.history_["L4"]).all()
    assert b.encode(images=ImageInput(data, np.arange(8), spec)).shape == (8, 8)


def test_end_to_end_training_reads_through_dataloader_workers_with_the_same_result():
    from hashbench.datasets import get_dataset

    data = get_dataset("tiny-test", n_items=40, n_query=8)
    spec = BackboneSpec(weights="random", resize=64, crop=64)
    train = np.arange(8, 40)
    tags = [data.tags[i] for i in train]
    fitted = []
    for workers in (0, 1):
        h = hashbench.create("udht", bits=8, seed=0, max_epochs=1, warmup_epochs=1, batch_size=16,
                             word_vector_dim=8, val_fraction=0.0, device="cpu")
        h.fit(tags=tags, images=ImageInput(data, train, spec, workers=workers))
        fitted.append((h.history_, h.encode(images=ImageInput(data, np.arange(8), spec, workers=workers))))
    assert fitted[0][0] == fitted[1][0]  # the same batches, the same losses, epoch by epoch
    np.testing.assert_array_equal(fitted[0][1], fitted[1][1])


def test_registered_with_the_right_inputs():
    assert hashbench.get_method("udht").requires == frozenset({"images", "tags"})
    assert hashbench.get_method("udht-frozen").requires == frozenset({"features", "tags"})
    assert hashbench.get_method("tag-binary").requires == frozenset({"features", "tags"})
    assert tag_binary.TagBinaryEndToEnd.requires == frozenset({"images", "tags"})
    for name in ("udht", "udht-frozen", "tag-binary"):
        assert hashbench.get_method(name).deep
