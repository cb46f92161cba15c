"""The UDHT paper's deep baselines: DH, UH-BDNN and DeepBit.

Each loss is checked against numbers computed here by hand (numpy), and each
method against the property its paper promises, measured independently of the
method's own bookkeeping: DH's bits balanced and decorrelated, UH-BDNN's
reconstruction error falling, DeepBit's codes stable under rotation.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import hashbench
from hashbench import ConfigError
from hashbench.features import BackboneSpec, ImageInput
from hashbench_methods import deepbit, dh, uh_bdnn


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def clusters(n: int = 600, d: int = 32, k: int = 8, seed: int = 0) -> np.ndarray:
    """k well-separated isotropic Gaussian clusters, offset from the origin (like ReLU features)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 2.0
    return (centres[rng.integers(0, k, n)] + rng.standard_normal((n, d)) * 0.5 + 3.0).astype(np.float32)


# ---------------------------------------------------------------------- DH
def test_dh_objective_terms_by_hand():
    torch.manual_seed(0)
    net = dh.DHNet(5, (4,), 3, np.zeros(5), 1.0)
    x = torch.randn(7, 5)
    h = net(x)
    total, parts = dh.dh_objective(net, h, n_ref=50, lambda1=2.0, lambda2=0.5, lambda3=0.1)
    hn = h.detach().numpy().astype(np.float64)
    b = np.where(hn >= 0, 1.0, -1.0)
    j1 = 0.5 * ((b - hn) ** 2).sum() / 7
    j2 = 0.5 * (hn ** 2).sum() / 7  # tr(H H^T) / (2n): uncentred, as printed and as both public codes
    centred = 0.5 * ((hn - hn.mean(0)) ** 2).sum() / 7
    assert dh.dh_objective(net, h, 50, 2.0, 0.5, 0.1, centred=True)[1]["J2"] == pytest.approx(centred, rel=1e-5)
    w = [layer.weight.detach().numpy().astype(np.float64) for layer in net.layers]
    c = [layer.bias.detach().numpy().astype(np.float64) for layer in net.layers]
    j3 = 0.5 * (((w[0] @ w[0].T - np.eye(4)) ** 2).sum() + ((w[1] @ w[1].T - np.eye(3)) ** 2).sum())
    j4 = 0.5 * sum((wi ** 2).sum() + (ci ** 2).sum() for wi, ci in zip(w, c))
    assert parts["J1"] == pytest.approx(j1, rel=1e-5)
    assert parts["J2"] == pytest.approx(j2, rel=1e-5)
    assert parts["J3"] == pytest.approx(j3, rel=1e-4, abs=1e-6)
    assert parts["J4"] == pytest.approx(j4, rel=1e-5)
    assert total.item() == pytest.approx(j1 + (-2.0 * j2 + 0.5 * j3 + 0.1 * j4) / 50, rel=1e-5)


def test_dh_orthogonality_gap_follows_the_shape():
    wide = torch.tensor(np.linalg.qr(np.random.default_rng(0).standard_normal((6, 3)))[0].T.copy())  # 3 x 6 rows
    assert dh.orthogonality_gap(wide).item() == pytest.approx(0.0, abs=1e-10)
    assert dh.orthogonality_gap(wide.T.contiguous()).item() == pytest.approx(0.0, abs=1e-10)  # 6 x 3: columns
    assert dh.orthogonality_gap(2 * wide).item() == pytest.approx(3 * 3.0 ** 2)  # W W^T = 4 I


def one_dominant_direction(n: int = 2000, d: int = 64, share: float = 0.6, seed: int = 0) -> np.ndarray:
    """16 Gaussian clusters plus one direction holding ``share`` of the variance (as the random-AlexNet
    features did: 62% in their first principal component), offset from the origin like ReLU features."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, d))[rng.integers(0, 16, n)] + 0.5 * rng.standard_normal((n, d))
    x -= x.mean(0)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    x += np.outer(rng.standard_normal(n) * np.sqrt(share / (1 - share) * (x ** 2).sum(1).mean()), u)
    return (x + 3).astype(np.float32)


def bit_copies(codes: np.ndarray) -> float:
    """Mean absolute correlation between two bits (a constant bit counts as a copy: 1)."""
    b = codes.astype(float) * 2 - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.corrcoef(b.T)
    c = np.where(np.isfinite(c), np.abs(c), 1.0)
    return float(c[~np.eye(b.shape[1], dtype=bool)].mean())


def test_dh_bits_are_not_copies_of_one_another_on_features_with_one_dominant_direction():
    """The issue's collapse: trained DH bits repeat one split (correlation ~1, fewer distinct codes at
    more bits). Here, with the shipped (selected) defaults: mean |correlation| falls with the code length and is
    below 0.6 at 32 bits, and more bits give many more distinct codes (at least 2.5x from 8 to 16 and 1.5x from 16
    to 32 bits). The paper's soft penalty collapses on this very fixture (measured: correlation 0.97-1.0, 45 -> 28
    -> 4 distinct codes), which is why the default keeps independence exact. (Measured with the selected
    defaults, lr 1e-3: correlation 0.71 / 0.58 / 0.53, 144 / 553 / 1,183 distinct codes of 2,000 items; with the
    former hand-set lr 1e-2: 0.61 / 0.49 / 0.43. The dominant direction correlates even independent splits.)"""
    x = one_dominant_direction()
    ev = np.linalg.eigvalsh(np.cov(x.T))
    assert 0.55 < ev[-1] / ev.sum() < 0.65  # the fixture is what it claims
    distinct, copies = [], []
    for bits in (8, 16, 32):
        codes = hashbench.create("dh", bits=bits, seed=0).fit(x).encode(x)
        distinct.append(len(np.unique(codes, axis=0)))
        copies.append(bit_copies(codes))
    assert copies[-1] < 0.6 and copies[0] > copies[1] > copies[2], copies
    assert distinct[1] >= 2.5 * distinct[0] and distinct[2] >= 1.5 * distinct[1], distinct
    soft = hashbench.create("dh", bits=32, seed=0, independence="penalty").fit(x).encode(x)
    assert bit_copies(soft) > 0.9  # the paper's weights, kept soft: the collapse this default avoids


def test_dh_bits_are_balanced_and_decorrelated_on_the_training_data():
    """The paper's two code properties (J2: balanced bits; J3: independent bits), measured on the codes.

    On data whose variance has no dominant direction (64 clusters). Tolerance:
    every bit's mean over the training items (as +-1) within 0.3 of 0 (at
    most 65% of the items on one side); the mean absolute correlation
    between two bits below 0.3, the largest below 0.7 (a network whose bits
    collapse onto one direction, as DH's do on the synthetic features, is near 1).
    """
    x = clusters(n=800, k=64)
    h = hashbench.create("dh", bits=12, seed=0, max_epochs=15).fit(x)
    b = h.encode(x).astype(float) * 2 - 1
    means = b.mean(0)
    corr = np.corrcoef(b.T)[~np.eye(12, dtype=bool)]
    assert np.abs(means).max() <= 0.3, means
    assert np.abs(corr).mean() < 0.3 and np.abs(corr).max() < 0.7, np.abs(corr)
    assert h.history_["J1"][-1] < h.history_["J1"][0]  # codes became less ambiguous


# ------------------------------------------------------------------ UH-BDNN
def test_uh_bdnn_default_hidden_sizes_follow_the_authors_table():
    assert [uh_bdnn.default_hidden(b) for b in (8, 16, 24, 32)] == [(90, 20), (90, 30), (100, 40), (120, 50)]
    assert uh_bdnn.default_hidden(12) == (90, 25)
    assert uh_bdnn.default_hidden(48) == (160, 70)


def test_uh_bdnn_decoder_is_the_least_squares_solution():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 7)).astype(np.float32)
    b = np.where(rng.standard_normal((50, 3)) >= 0, 1.0, -1.0)
    w4, c4 = uh_bdnn.fit_decoder(x, b, lambda1=0.0)
    coef, *_ = np.linalg.lstsq(np.hstack([b, np.ones((50, 1))]), x.astype(np.float64), rcond=None)
    np.testing.assert_allclose(w4, coef[:3].T, atol=1e-5)
    np.testing.assert_allclose(c4, coef[3], atol=1e-5)


def test_uh_bdnn_code_step_is_a_coordinate_optimum_near_the_global_one():
    """No single bit flip lowers ||Y - B W4^T||^2 + lambda2 ||H - B||^2 (per item), and the total is within
    25% of the global minimum found by trying all 2^L codes of every item."""
    rng = np.random.default_rng(1)
    m, d, L, lam = 40, 6, 4, 0.3
    y, w4, h = rng.standard_normal((m, d)), rng.standard_normal((d, L)), rng.standard_normal((m, L))
    b = uh_bdnn.update_codes(y, w4, h, lam)

    def cost(bi, i):
        return ((y[i] - w4 @ bi) ** 2).sum() + lam * ((h[i] - bi) ** 2).sum()

    every = np.array(list(itertools.product((-1.0, 1.0), repeat=L)))
    ours, best = 0.0, 0.0
    for i in range(m):
        here = cost(b[i], i)
        for k in range(L):
            flipped = b[i].copy()
            flipped[k] = -flipped[k]
            assert cost(flipped, i) >= here - 1e-9
        ours += here
        best += min(cost(c, i) for c in every)
    assert best <= ours <= 1.25 * best, (ours, best)  # a local method: near, not at, the optimum


def _reconstruction_error(x: np.ndarray, b: np.ndarray) -> float:
    """min over (W, c) of 1/(2m) ||X - B W^T - c||^2, by least squares (numpy)."""
    design = np.hstack([b, np.ones((len(b), 1))])
    coef, *_ = np.linalg.lstsq(design, x.astype(np.float64), rcond=None)
    return 0.5 * float(((x - design @ coef) ** 2).sum()) / len(b)


def test_uh_bdnn_reconstruction_error_falls():
    """Epoch after epoch the alternating optimisation lowers the whole objective J, and over the run the
    binary codes reconstruct the inputs better.

    Only J is monotone (each step minimises it over its block: B by coordinate descent, the decoder by least
    squares, the encoder by L-BFGS with a Wolfe line search); the reconstruction term J1 alone may rise for an
    epoch while the B step trades it for the binary gap J3 (it did by 4e-4 in the second epoch on a Zen 5
    CPU, not on the one this test was written on). The recorded J1 is checked against least squares computed
    here, and the final codes against ITQ's, where the optimisation starts.
    """
    x = clusters(n=500, d=40, k=64, seed=2)
    h = hashbench.create("uh-bdnn", bits=8, seed=0, hidden=(30, 16), max_epochs=6, patience=6, lbfgs_iter=30,
                         val_fraction=0.0).fit(x)
    total = np.array([h.initial_terms_["total"], *h.history_["total"]])
    assert np.all(np.diff(total) <= 1e-6) and total[-1] < total[0] - 1e-2, total
    rec = np.array(h.history_["reconstruction"])
    assert rec[-1] < rec[0] - 1e-3, rec
    xr = h._rescale(x)
    assert _reconstruction_error(xr, h.codes_) == pytest.approx(rec[-1], rel=1e-3)  # lambda1 = 1e-5: ~ least squares
    z = h._project(xr)  # ITQ's start, on what layer 1 sees
    itq_codes = hashbench.create("itq", bits=8, seed=0).fit(z).encode(z) * 2.0 - 1
    assert _reconstruction_error(xr, h.codes_) < _reconstruction_error(xr, itq_codes)
    assert _reconstruction_error(xr, h.encode(x) * 2.0 - 1) < _reconstruction_error(xr, itq_codes)


def test_uh_bdnn_refuses_layers_that_cannot_start_from_eigenvectors():
    with pytest.raises(ConfigError, match="hidden"):
        hashbench.create("uh-bdnn", bits=8, hidden=(10, 20)).fit(clusters(n=60, d=12))


# ------------------------------------------------------------------ DeepBit
def test_deepbit_losses_by_hand():
    rng = np.random.default_rng(0)
    h = rng.uniform(0, 1, (6, 4))
    hr = rng.uniform(0, 1, (6, 4))
    w = np.array([deepbit.rotation_weight(a) for a in (-10, -5, 0, 5, 10, 5)])
    th, thr = torch.tensor(h), torch.tensor(hr)
    b = (h > 0.5).astype(float)
    assert deepbit.quantization_loss(th).item() == pytest.approx(((b - h) ** 2).sum() / 12)
    assert deepbit.even_distribution_loss(th, relaxed=False).item() == pytest.approx(((b.mean(0) - .5) ** 2).sum() / 12)
    assert deepbit.even_distribution_loss(th).item() == pytest.approx(((h.mean(0) - .5) ** 2).sum() / 12)
    assert deepbit.rotation_loss(th, thr, torch.tensor(w)).item() == pytest.approx(
        (w * ((h - hr) ** 2).sum(1)).sum() / 12)
    assert w[:3] == pytest.approx([np.exp(-2), np.exp(-0.5), 1.0])
    # the true gradient of L_q: (h - b) / N, not one constant for every element (the official code's)
    th.requires_grad_(True)
    deepbit.quantization_loss(th).backward()
    np.testing.assert_allclose(th.grad.numpy(), (h - b) / 6)


def test_deepbit_on_features_runs_stage_one_and_lowers_the_quantisation_loss():
    x = clusters(seed=3)
    h = hashbench.create("deepbit", bits=16, seed=0, max_epochs=5, patience=5).fit(x)
    assert h.history_["stage"] == [1.0] * 5 and h.history_["L_r"] == [0.0] * 5
    assert h.history_["L_q"][-1] < 0.8 * h.history_["L_q"][0]
    # recomputed here: the mean squared distance of the outputs to their codes, on the training items
    with torch.no_grad():
        out = h.head_(torch.from_numpy(x)).numpy()
    assert ((out - (out > 0.5)) ** 2).sum(1).mean() / 2 == pytest.approx(h.heldout_objective(x), rel=1e-2)


class _Rotated:
    """An ImageInput whose images are turned by ``angle`` degrees (the test's own rotation, by torchvision)."""

    def __init__(self, images: ImageInput, angle: float) -> None:
        self.images, self.angle = images, angle

    def __len__(self) -> int:
        return len(self.images)

    def batches(self, batch_size: int):
        from torchvision.transforms.functional import rotate

        for pos, x in self.images.batches(batch_size):
            yield pos, rotate(x, self.angle)


def test_deepbit_codes_of_a_rotated_image_agree_with_the_originals_more_than_unrelated_images():
    from hashbench.datasets import get_dataset

    data = get_dataset("tiny-test", n_items=48, n_query=8)
    spec = BackboneSpec(weights="random", resize=64, crop=64)
    train = ImageInput(data, np.arange(8, 48), spec)
    h = hashbench.create("deepbit-e2e", bits=16, seed=0, max_epochs=3, device="cpu").fit(images=train)
    assert h.fit_info_["stages_run"] == [1, 2] and set(h.history_["stage"]) == {1.0, 2.0}
    assert np.isfinite(h.history_["L_r"]).all()
    codes = h.encode(images=train)
    rotated = h.encode(images=_Rotated(train, 10.0))
    same = (codes == rotated).mean(1)  # per image: share of bits kept under a 10-degree turn
    other = (codes[:, None, :] == codes[None, :, :]).mean(2)[~np.eye(len(codes), dtype=bool)]
    assert same.mean() > other.mean() + 0.1, (same.mean(), other.mean())
    # its own objective on held-out images is stage 2's, finite; and the fit is reproducible
    assert np.isfinite(h.heldout_objective(images=ImageInput(data, np.arange(8), spec)))
    again = hashbench.create("deepbit-e2e", bits=16, seed=0, max_epochs=3, device="cpu").fit(images=train)
    np.testing.assert_array_equal(again.encode(images=train), codes)


def test_deepbit_e2e_is_kept_out_of_all_and_list_says_so(capsys):
    from hashbench.cli import main

    assert not hashbench.get_method("deepbit-e2e").in_default_run
    assert hashbench.get_method("deepbit").in_default_run
    main(["list", "methods"])
    line = next(s for s in capsys.readouterr().out.splitlines() if s.strip().startswith("deepbit-e2e"))
    assert "not in 'all'" in line


@pytest.mark.parametrize("name, kw", [("deepbit-e2e", {"max_epochs": 2, "max_train_images": 24}),
                                      ("usdh-e2e", {"max_epochs": 1, "finetune_epochs": 1, "batch_size": 12}),
                                      ("pludh-e2e", {"max_epochs": 1, "finetune_epochs": 1, "batch_size": 12})])
def test_end_to_end_training_reads_through_dataloader_workers_with_the_same_result(name, kw, monkeypatch):
    # --workers: every image batch of fit, held-out objective and encode comes through DataLoader worker
    # processes; the losses epoch by epoch, the codes and the held-out objective are those of reading here
    # (this also catches a loader that draws from torch's global generator and shifts a seeded init).
    from hashbench.datasets import get_dataset

    data = get_dataset("tiny-test", n_items=40, n_query=8)
    spec = BackboneSpec(weights="random", resize=64, crop=64)
    runs = []
    for workers in (0, 1):
        if workers:  # nothing may read images in this process any more
            monkeypatch.setattr(ImageInput, "tensors", lambda *a: pytest.fail("an image read in-process"))
        h = hashbench.create(name, bits=8, seed=0, device="cpu", **kw)
        h.fit(images=ImageInput(data, np.arange(8, 40), spec, workers=workers))
        query = ImageInput(data, np.arange(8), spec, workers=workers)
        runs.append((h.history_, h.encode(images=query), h.heldout_objective(images=query)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]


def test_deepbit_rotation_fills_corners_with_the_backbones_own_black():
    """DeepBit-e2e's rotated copies have black corners, as the code's imrotate: black in the backbone's input
    normalisation (EfficientNet-Lite's (x - 127) / 128 is not ImageNet's)."""
    from hashbench_methods.deepbit import rotate_batch

    lite = ((127 / 255,) * 3, (128 / 255,) * 3)
    x = torch.zeros(1, 3, 32, 32)
    out = rotate_batch(x, 45.0, *lite)
    corner = out[0, :, 0, 0]
    torch.testing.assert_close(corner, torch.full((3,), -127 / 128))
    assert torch.equal(rotate_batch(x, 0.0, *lite), x)
