"""Every method that stops early (``methods/_convergence.py``), each checked the same way:

* the weights it keeps are its best epoch's, not the last epoch's (a stop with a later,
  worse epoch is forced: ``min_delta`` so large that only the first epoch improves, and
  ``patience`` 1, so every phase runs two epochs and keeps its first);
* held-out training items never shape training: garbage in the held-out rows (features,
  tags, images, labels) leaves every training loss, epoch by epoch, unchanged, so the input
  standardisation, the targets and the gradient steps saw the fit rows only.

The methods are found in the registry (every built-in method whose constructor takes
``max_epochs``, ``patience``, ``min_delta`` and ``val_fraction``), so a new one is checked
without being named here; ``FAST`` only shortens schedules.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import hashbench
from hashbench.features import BackboneSpec, ImageInput
from hashbench.registry import available_methods, get_method
from hashbench_methods._convergence import holdout_split

from .conftest import TinyDataset
from .test_udht import clustered_with_tags

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONVERGENCE = {"max_epochs", "patience", "min_delta", "val_fraction"}
EARLY_STOPPING = sorted(
    n for n in available_methods()
    if get_method(n).__module__.startswith("hashbench_methods.")
    and CONVERGENCE <= set(inspect.signature(get_method(n).__init__).parameters)
)
# shorter schedules and smaller networks (the mechanics under test do not depend on them), and where the
# default is too small, a step size that moves the codes within an epoch (else both epochs score the same)
FAST = {
    "tag-binary": {"lr": 0.3},
    "iah": {"hidden": 16},
    "udht": {"word_vector_dim": 16, "warmup_epochs": 3},
    "udht-frozen": {"word_vector_dim": 16},
    "tag-binary-e2e": {"warmup_epochs": 3, "backbone_lr": 0.01, "lr": 0.03},
    "uh-bdnn": {"hidden": (16, 12), "lbfgs_iter": 10},
    # one batch an epoch: each fine-tuning step moves AlexNet's 50 million top weights
    "usdh-e2e": {"finetune_epochs": 2, "rotation_angles": (10.0,), "batch_size": 64},
    "pludh-e2e": {"finetune_epochs": 2, "batch_size": 64, "cluster_dims": 8},
}
VAL_FRACTION = 0.25
N_FEATURES, N_IMAGES, N_REGIONS = 120, 32, 60


class _Noisy(TinyDataset):
    """The tiny image set with noise in place of some items' images."""

    def __init__(self, garbage=(), **kw):
        super().__init__(**kw)
        self.garbage = set(int(i) for i in garbage)

    def load_image(self, index):
        if index in self.garbage:
            return np.random.default_rng(index).integers(0, 256, (64, 64, 3)).astype(np.uint8)
        return super().load_image(index)


class _Regions:
    """Stands for an ImageInput where a method reads region features only (IAH): fixed (n, M, D) arrays."""

    def __init__(self, regions):
        self.regions = regions

    def __len__(self):
        return len(self.regions)

    def region_features(self, proposals, device="auto"):
        return self.regions


def _inputs(requires: frozenset, garbage: bool) -> tuple[dict, dict]:
    """(fit inputs, held-out inputs) of the kind ``requires`` names; with ``garbage`` the held-out rows are noise."""
    rng = np.random.default_rng(11)
    if "images" in requires and "labels" in requires:  # IAH: region features and labels
        regions = rng.standard_normal((N_REGIONS, 5, 12)).astype(np.float32)
        labels = np.eye(3, dtype=np.uint8)[np.arange(N_REGIONS) % 3]
        _, val = holdout_split(N_REGIONS, VAL_FRACTION, 0)
        if garbage:
            regions[val] = rng.standard_normal((val.size, 5, 12)).astype(np.float32) * 50 + 7
            labels[val] = np.eye(3, dtype=np.uint8)[(np.arange(val.size) + 1) % 3]
        return ({"images": _Regions(regions), "labels": labels},
                {"images": _Regions(regions[val]), "labels": labels[val]})
    if "images" in requires:
        items = np.arange(8, 8 + N_IMAGES)
        _, val = holdout_split(N_IMAGES, VAL_FRACTION, 0)
        data = _Noisy(garbage=items[val] if garbage else (), n_items=8 + N_IMAGES, n_query=8)
        spec = BackboneSpec(weights="random", resize=64, crop=64)
        fit = {"images": ImageInput(data, items, spec)}
        held = {"images": ImageInput(data, items[val], spec)}
        tags = [list(data.tags[i]) for i in items]
        if "features" in requires:  # CIBHash: the images' cached features beside the images (its centring, its codes)
            import torch

            with torch.no_grad():
                x = fit["images"].build_backbone().eval()(torch.as_tensor(fit["images"].tensors(np.arange(N_IMAGES))))
            x = x.numpy().astype(np.float32)
            if garbage:
                x[val] = rng.standard_normal((val.size, x.shape[1])).astype(np.float32) * 50 - 20
            fit["features"], held["features"] = x, x[val]
    else:
        x, _, tags = clustered_with_tags(n=N_FEATURES, d=24)
        _, val = holdout_split(N_FEATURES, VAL_FRACTION, 0)
        if garbage:
            x[val] = rng.standard_normal((val.size, x.shape[1])).astype(np.float32) * 50 - 20
        fit, held = {"features": x}, {"features": x[val]}
    if "tags" in requires:
        if garbage:  # other items' tags and words no fit row has (new words alone would leave nothing to score)
            fit_rows = np.setdiff1d(np.arange(len(tags)), val)
            for j, i in enumerate(val):
                tags[i] = list(tags[fit_rows[(7 * j + 3) % fit_rows.size]]) + ["zebra", f"noise{j % 3}"]
        fit["tags"], held["tags"] = tags, [tags[i] for i in val]
    return fit, held


def _fit(name: str, garbage: bool):
    cls = get_method(name)
    params = inspect.signature(cls.__init__).parameters
    kw = {"bits": 8, "seed": 0, "max_epochs": 3, "patience": 1, "min_delta": 1e9, "val_fraction": VAL_FRACTION,
          **({"device": "cpu"} if "device" in params else {}), **({"batch_size": 16} if "batch_size" in params else {}),
          **FAST.get(name, {})}
    fit, held = _inputs(cls.requires, garbage)
    return hashbench.create(name, **kw).fit(**fit), held


def _heldout_curve(history: dict) -> list[float]:
    (key,) = [k for k in history if k.startswith("heldout")]
    return history[key]


def test_the_family_is_found():
    assert {"dh", "uh-bdnn", "deepbit", "deepbit-e2e", "udht", "udht-frozen", "tag-binary", "tag-binary-e2e",
            "usdh", "usdh-e2e", "pludh", "pludh-e2e", "iah", "greedyhash", "bihalf", "cibhash"} <= set(EARLY_STOPPING)


@pytest.mark.parametrize("name", EARLY_STOPPING)
def test_keeps_the_best_epoch_and_never_trains_on_heldout_rows(name):
    h, held = _fit(name, garbage=False)
    conv = h.fit_info_["convergence"]
    curve = _heldout_curve(h.history_)
    assert "no held-out improvement" in conv["stopped_because"] and conv["best_epoch"] < conv["epochs_run"]
    assert curve[-1] != pytest.approx(conv["best_heldout"], rel=1e-6)  # the last epoch's weights would differ
    # the fitted model is the best epoch's: its own objective on the held-out rows, recomputed, is the best value
    assert h.heldout_objective(**held) == pytest.approx(conv["best_heldout"], rel=1e-5, abs=1e-7)

    g, _ = _fit(name, garbage=True)
    training = sorted(k for k in h.history_ if not k.startswith("heldout"))
    assert training and training == sorted(k for k in g.history_ if not k.startswith("heldout"))
    for k in training:
        np.testing.assert_array_equal(g.history_[k], h.history_[k], err_msg=f"{name}: {k} moved with held-out rows")
    assert _heldout_curve(g.history_) != _heldout_curve(h.history_)  # the garbage did reach the held-out rows
