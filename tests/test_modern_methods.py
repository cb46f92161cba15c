"""GreedyHash, Bi-half and CIBHash: their parts against brute-force definitions and torchvision, and what
a fit promises (the fidelity to the authors' code is tests/test_modern_fidelity.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hashbench
from hashbench import ConfigError, NotFittedError
from hashbench.datasets import get_dataset
from hashbench.features import BackboneSpec, ImageInput
from hashbench_methods import _views, bihalf, cibhash, greedyhash  # noqa: F401  (registers the methods)
from hashbench_methods._convergence import holdout_split
from hashbench_methods._cosine_head import cosine_all_pairs_loss, cosine_pair_loss, dropout, fixed_dropout
from hashbench_methods.bihalf import bihalf as bihalf_layer
from hashbench_methods.cibhash import nt_xent

pytestmark = pytest.mark.usefixtures("one_torch_thread")
HEADS = ["greedyhash", "bihalf"]


def clustered(n: int = 600, d: int = 64, k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k clusters of sparse non-negative (ReLU-like) features, each cluster on its own support."""
    rng = np.random.default_rng(seed)
    centres = np.maximum(rng.standard_normal((k, d)) * 2.0, 0)
    labels = rng.integers(0, k, n)
    x = np.maximum(centres[labels] + 0.5 * rng.standard_normal((n, d)), 0)
    return x.astype(np.float32), labels


@pytest.fixture(scope="module")
def data():
    return clustered()


# ---------------------------------------------------------------- the parts
def test_all_pairs_loss_is_its_definition():
    rng = np.random.default_rng(0)
    b = np.sign(rng.standard_normal((9, 5)))
    x = np.abs(rng.standard_normal((9, 7)))
    x[4] = 0.0  # a ReLU feature vector can be all zero: its cosines are 0, its own pair (i, i) still no pair

    def cos(a):
        unit = a / np.linalg.norm(a, axis=1, keepdims=True)
        return unit @ unit.T

    with np.errstate(invalid="ignore", divide="ignore"):
        cx = np.nan_to_num(cos(x))
    want = np.mean([(cos(b)[i, j] - cx[i, j]) ** 2 for i in range(9) for j in range(9) if i != j])
    got = cosine_all_pairs_loss(torch.from_numpy(b), torch.from_numpy(x), block=4)  # blocks that split the rows
    assert got == pytest.approx(want, rel=1e-12)


def test_pair_loss_pairs_each_row_with_the_row_half_a_batch_later():
    b = torch.tensor([[1.0, 1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, -1.0], [5.0, 5.0]])  # odd: the last row is left out
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    want = np.mean([(1.0 - 1 / math.sqrt(2)) ** 2, (0.0 - 0.0) ** 2])  # pairs (0, 2) and (1, 3)
    assert cosine_pair_loss(b, x).item() == pytest.approx(want)


@pytest.mark.parametrize("n", [8, 7, 2])
def test_bihalf_layer_gives_each_bit_its_top_half(n):
    u = torch.randn(n, 6, generator=torch.Generator().manual_seed(n), requires_grad=True)
    b = bihalf_layer(u, 6.0)
    order = np.argsort(-u.detach().numpy(), axis=0, kind="stable")
    want = -np.ones((n, 6))
    for k in range(6):
        want[order[: n // 2, k], k] = 1
    np.testing.assert_array_equal(b.detach().numpy(), want)
    assert np.all((b.detach().numpy() == 1).sum(0) == n // 2)  # floor(N/2) ones per bit: maximum entropy
    g = torch.randn(n, 6, generator=torch.Generator().manual_seed(99))
    b.backward(g)
    np.testing.assert_allclose(u.grad.numpy(), (g + 6.0 * (u - b) / (n * 6)).detach().numpy(), rtol=1e-6)


def test_nt_xent_is_the_cross_entropy_against_the_other_views():
    rng = np.random.default_rng(1)
    zi, zj = (torch.from_numpy(np.sign(rng.standard_normal((5, 8)))) for _ in range(2))
    z = torch.cat((zi, zj))
    unit = z / z.norm(dim=1, keepdim=True)
    sim = (unit @ unit.T / 0.3).numpy()
    total = 0.0
    for a in range(10):
        partner = (a + 5) % 10
        others = [c for c in range(10) if c != a]
        total += -sim[a, partner] + np.log(np.sum(np.exp(sim[a, others])))
    assert nt_xent(zi, zj, 0.3).item() == pytest.approx(total / 10, rel=1e-10)


def test_dropout_keeps_one_minus_p_scaled_and_fixed_masks_repeat():
    x = torch.ones(200, 500)
    y = dropout(x, 0.5, torch.Generator().manual_seed(0))
    assert set(torch.unique(y).tolist()) == {0.0, 2.0} and abs(float((y > 0).float().mean()) - 0.5) < 0.01
    torch.testing.assert_close(fixed_dropout(x, 0.5, 3), fixed_dropout(x, 0.5, 3))
    assert not torch.equal(fixed_dropout(x, 0.5, 3), fixed_dropout(x, 0.5, 4))
    assert dropout(x, 0.0) is x


# ------------------------------------------------------------ augmentations
def test_jitter_operations_are_torchvisions():
    import torchvision.transforms.functional as TF

    img = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    cases = [(0, 1.3, TF.adjust_brightness), (1, 0.7, TF.adjust_contrast), (2, 1.4, TF.adjust_saturation),
             (3, 0.08, TF.adjust_hue), (3, -0.1, TF.adjust_hue)]
    for op, f, tv in cases:
        ours = _views._jitter_op(op, img.clone(), torch.tensor([f], dtype=torch.float64))
        np.testing.assert_allclose(ours[0].numpy(), tv(img[0].float(), f).double().numpy(), atol=2e-6, err_msg=str(op))
    np.testing.assert_allclose(_views._gray(img)[0].numpy(), TF.rgb_to_grayscale(img[0].float()).double().numpy(),
                               atol=1e-6)


def test_blur_is_a_normalised_3x3_gaussian_with_reflected_edges():
    img = torch.rand(2, 3, 6, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    sigma = torch.tensor([0.8, 0.0], dtype=torch.float64)
    got = _views.gaussian_blur3(img, sigma)
    k = np.exp(-np.array([1.0, 0.0, 1.0]) / (2 * 0.8 ** 2))
    k /= k.sum()
    pad = np.pad(img[0].numpy(), ((0, 0), (1, 1), (1, 1)), mode="reflect")  # numpy's reflect is OpenCV's 101
    want = sum(k[a] * k[b] * pad[:, a: a + 6, b: b + 7] for a in range(3) for b in range(3))
    np.testing.assert_allclose(got[0].numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(got[1].numpy(), img[1].numpy(), rtol=1e-12)  # sigma 0: unchanged


def test_crops_follow_torchvisions_ranges_and_resize_exactly():
    boxes = _views.crop_boxes(2000, 64, 64, torch.Generator().manual_seed(0))
    top, left, h, w = boxes.T.numpy()
    area = h * w / 64 ** 2
    assert area.min() >= 0.5 - 0.03 and area.max() <= 1.0 and (top >= 0).all() and (top + h <= 64).all()
    assert (left + w <= 64).all() and (w / h).min() >= 0.7 and (w / h).max() <= 1.45
    img = torch.rand(2, 3, 10, 10, generator=torch.Generator().manual_seed(2))
    full = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10]])
    same = _views.crop_resize_flip(img, full, torch.tensor([False, True]))
    np.testing.assert_allclose(same[0].numpy(), img[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(same[1].numpy(), img[1].flip(-1).numpy(), atol=1e-6)
    half = torch.tensor([[2, 4, 5, 5], [2, 4, 5, 5]])
    want = F.interpolate(img[:, :, 2:7, 4:9], size=(10, 10), mode="bilinear", align_corners=False)
    np.testing.assert_allclose(_views.crop_resize_flip(img, half, torch.tensor([False, False])).numpy(),
                               want.numpy(), atol=1e-6)


def test_views_are_seeded_and_each_image_draws_its_own(monkeypatch):
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3)).repeat(6, 1, 1, 1)

    def n_distinct(views):
        return len({tuple(np.round(v.flatten().numpy(), 5)) for v in views})

    a = _views.augment(x, torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, _views.augment(x, torch.Generator().manual_seed(5)))
    assert a.shape == x.shape and torch.isfinite(a).all() and n_distinct(a) == 6
    # each step on its own still gives every image its own draw
    for p in ("JITTER_P", "GRAYSCALE_P", "BLUR_P"):
        monkeypatch.setattr(_views, p, 0.0)
    assert n_distinct(_views.augment(x, torch.Generator().manual_seed(5))) == 6  # crops and flips alone
    monkeypatch.setattr(_views, "crop_resize_flip", lambda rgb, boxes, flip: rgb)
    assert n_distinct(_views.augment(x, torch.Generator().manual_seed(5))) == 1  # nothing left to draw
    monkeypatch.setattr(_views, "JITTER_P", 1.0)
    assert n_distinct(_views.augment(x, torch.Generator().manual_seed(5))) == 6  # colour jitter alone


def test_normalise_and_denormalise_take_the_backbones_statistics():
    rgb = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(8))
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    lite = ((127 / 255,) * 3, (128 / 255,) * 3)
    for stats in (imagenet, lite):
        x = _views.normalise(rgb, stats)
        torch.testing.assert_close(x[:, 1], (rgb[:, 1] - stats[0][1]) / stats[1][1])
        torch.testing.assert_close(_views.denormalise(x, stats), rgb)


def test_cibhash_augments_real_colours_and_feeds_its_backbone_in_the_backbones_normalisation():
    """The synthetic images reach the backbone unresized at 64 px, so the true RGB is known: CIBHash must
    read back exactly those pixels from the (EfficientNet-Lite-normalised) image batches, augment them, and
    normalise the views as the backbone expects. Reading them back with ImageNet's statistics (the bug this
    guards) shifted and compressed every colour before the colour jitter."""
    from hashbench.datasets import get_dataset
    from hashbench.features import ImageInput
    from hashbench.features.backbone import BackboneSpec

    ds = get_dataset("synthetic", n_items=8, n_query=2)
    spec = BackboneSpec(name="efficientnet-lite0-pool", weights="random", resize=64, crop=64)
    images = ImageInput(ds, list(range(4)), spec)
    method = hashbench.create("cibhash", bits=8)
    rgb8 = method._read(images, np.arange(4))
    raw = torch.from_numpy(np.stack([ds.load_image(i) for i in range(4)])).permute(0, 3, 1, 2)
    assert torch.equal(rgb8, raw)
    seen = []
    method._view_features(lambda v: seen.append(v) or v.flatten(1)[:, :5], rgb8, torch.Generator().manual_seed(4),
                          torch.device("cpu"), method._stats(images))
    g = torch.Generator().manual_seed(4)
    rgb = raw.float() / 255
    want = torch.cat((_views.augment(rgb, g), _views.augment(rgb, g)))
    torch.testing.assert_close(seen[0], (want - 127 / 255) / (128 / 255))


# ------------------------------------------------------------ GreedyHash / Bi-half
@pytest.mark.parametrize("name", HEADS)
def test_training_lowers_the_heldout_objective_on_unseen_items(name, data):
    x, _ = data
    # without the dropout the objective is deterministic: gradient steps on it must lower it
    kw = {"max_epochs": 15, "lr": 1e-2, "feature_dropout": 0.0, "device": "cpu"}
    trained = hashbench.create(name, bits=16, seed=0, **kw).fit(x[:500])
    untrained = hashbench.create(name, bits=16, seed=0, **{**kw, "max_epochs": 0}).fit(x[:500])
    a, b = trained.heldout_objective(features=x[500:]), untrained.heldout_objective(features=x[500:])
    assert math.isfinite(a) and a < b
    conv = trained.fit_info_["convergence"]
    assert len(trained.history_["heldout_objective"]) == conv["epochs_run"] and "L_sim" in trained.history_


def test_heldout_objective_is_the_training_objective_over_all_pairs(data):
    x, _ = data
    g = hashbench.create("greedyhash", bits=8, max_epochs=1, device="cpu").fit(x[:300])
    b = hashbench.create("bihalf", bits=8, max_epochs=1, device="cpu").fit(x[:300])
    xv = torch.from_numpy(x[300:400])
    with torch.no_grad():  # the training centring, then the training dropout (masks fixed by the seed)
        xg, xb = fixed_dropout(xv - g.mean_, 0.5, 0), fixed_dropout(xv - b.mean_, 0.5, 0)
        hg, hb = g.layer_(xg), b.layer_(xb)
        want_g = cosine_all_pairs_loss(torch.sign(hg), xg) + 0.1 * greedyhash.cubic_penalty(hg).item()
        want_b = cosine_all_pairs_loss(bihalf_layer(hb, 6.0), xb)
    assert g.heldout_objective(features=x[300:400]) == pytest.approx(want_g)
    assert b.heldout_objective(features=x[300:400]) == pytest.approx(want_b)


@pytest.mark.parametrize("name", HEADS)
def test_centring_subtracts_the_fitting_mean_everywhere_and_gives_offset_features_contrast(name):
    x, labels = clustered(n=500, seed=4)
    x = x + 4.0  # far from the origin: raw cosines all near 1, a target with little to learn
    kw = {"bits": 16, "seed": 0, "max_epochs": 15, "lr": 1e-3, "device": "cpu"}
    raw = hashbench.create(name, center=False, **kw).fit(x[:400])  # the authors' code: raw features
    cen = hashbench.create(name, **kw).fit(x[:400])  # our default
    fit_rows, _ = holdout_split(400, 0.1, 0)
    np.testing.assert_allclose(cen.mean_.numpy(), x[:400][fit_rows].mean(0), rtol=1e-5)
    assert not raw.mean_.any() and cen.fit_info_["centred"]
    with torch.no_grad():  # encode sees the centred features too
        want = (cen.layer_(torch.from_numpy(x[400:]) - cen.mean_) > 0).numpy().astype(np.uint8)
    np.testing.assert_array_equal(cen.encode(x[400:]), want)

    def agreement(h):  # how often the nearest code (Hamming) shares the item's cluster
        c = h.encode(x[400:]).astype(int)
        d = (c[:, None, :] != c[None, :, :]).sum(-1) + np.eye(len(c), dtype=int) * 99
        return float((labels[400:][d.argmin(1)] == labels[400:]).mean())

    if name == "greedyhash":  # sign codes of raw offset features collapse (Bi-half's balanced codes resist it)
        assert agreement(cen) > agreement(raw) + 0.2
    assert agreement(cen) > 0.9


@pytest.mark.parametrize("name, bad", [
    ("greedyhash", {"alpha": -1}), ("greedyhash", {"lr": 0}), ("greedyhash", {"feature_dropout": 1.0}),
    ("greedyhash", {"center": "yes"}),
    ("bihalf", {"gamma": float("nan")}), ("bihalf", {"lr_decay_epochs": 0}), ("bihalf", {"batch_size": 1}),
    ("cibhash", {"temperature": 0}), ("cibhash", {"hidden": 0}), ("cibhash", {"max_train_images": 2}),
])
def test_bad_parameters_are_refused(name, bad, data):
    x, _ = data
    h = hashbench.create(name, bits=8, **bad)
    with pytest.raises(ConfigError, match=list(bad)[0]):
        h._check()


def test_bihalf_learning_rate_decays_as_the_script_does(data, monkeypatch):
    x, _ = data
    seen = []
    original = torch.optim.SGD.step

    def step(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    hashbench.create("bihalf", bits=8, lr=1e-4, max_epochs=3, patience=10, lr_decay_epochs=2, batch_size=100,
                     device="cpu").fit(x[:300])
    assert sorted(set(seen), reverse=True) == pytest.approx([1e-4, 1e-5])
    assert seen.index(1e-5) == 2 * 3  # epochs 1-2 at lr (3 batches each), epoch 3 at lr / 10


# ------------------------------------------------------------------ CIBHash
@pytest.fixture(scope="module")
def tiny():
    data = get_dataset("tiny-test", n_items=40, n_query=8)
    spec = BackboneSpec(weights="random", resize=64, crop=64)
    return data, spec


def _features(data, idx, spec):
    from hashbench.features import extract_features

    return np.array(extract_features(data, idx, spec, progress=False, device="cpu")[0])


def test_cibhash_fits_on_two_views_and_encodes_the_plain_images(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("HASHBENCH_CACHE", str(tmp_path))
    data, spec = tiny
    train = np.arange(8, 40)
    images = ImageInput(data, train, spec)
    feats = _features(data, train, spec)
    kw = {"max_epochs": 3, "batch_size": 8, "hidden": 32, "device": "cpu", "center": True}  # (the default is selected)
    h = hashbench.create("cibhash", bits=8, seed=0, **kw)
    with pytest.raises(NotFittedError):
        h.encode(feats)
    assert h.fit(features=feats, images=images) is h
    assert h.fit_info_["heldout"] == {"fraction": 0.1, "n_fit": 29, "n_heldout": 3}
    conv = h.fit_info_["convergence"]
    assert len(h.history_["heldout_objective"]) == conv["epochs_run"] and {"contra_loss", "kl_loss"} <= set(h.history_)
    q = _features(data, np.arange(8), spec)
    codes = h.encode(q)
    assert codes.shape == (8, 8) and set(np.unique(codes)) <= {0, 1}
    fit_rows, _ = holdout_split(32, 0.1, 0)
    np.testing.assert_allclose(h.mean_.numpy(), feats[fit_rows].mean(0), rtol=1e-5)  # centred on the fitting images
    with torch.no_grad():  # the code of an image: its un-augmented features through the encoder, [logit > 0]
        want = (h.encoder_(torch.from_numpy(q) - h.mean_) > 0).numpy().astype(np.uint8)
    np.testing.assert_array_equal(codes, want)
    again = hashbench.create("cibhash", bits=8, seed=0, **kw).fit(features=feats, images=images)
    np.testing.assert_array_equal(codes, again.encode(q))  # seeded: views, dropout, batches
    held = h.heldout_objective(features=q, images=ImageInput(data, np.arange(8), spec))
    assert math.isfinite(held) and held > 0
    info = type(h).info()
    assert info["requires"] == ["features", "images"] and not info["in_default_run"]
    assert info["row_group"] and type(h).not_in_default_run_because


def test_cibhash_uses_a_seeded_subset_of_max_train_images(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("HASHBENCH_CACHE", str(tmp_path))
    data, spec = tiny
    train = np.arange(8, 40)
    h = hashbench.create("cibhash", bits=8, max_epochs=1, max_train_images=20, batch_size=4, hidden=16, device="cpu")
    h.fit(features=_features(data, train, spec), images=ImageInput(data, train, spec))
    assert h.fit_info_["train_images_used"] == 20 and h.fit_info_["train_images_given"] == 32
