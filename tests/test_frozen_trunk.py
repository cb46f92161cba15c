"""The frozen-trunk view (ImageInput.frozen_trunk): the trunk's cached outputs and the top alone, so that the
end-to-end modes fine-tune only the backbone's top without running the trunk again (finetune="top")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hashbench
from hashbench import ConfigError
from hashbench.datasets import get_dataset
from hashbench.features import BackboneSpec, ImageInput
from hashbench_methods import tag_binary, udht  # noqa: F401  (registers the methods)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", ["alexnet", "lite0"])
def test_top_of_cached_trunk_outputs_is_the_backbone_of_the_images(tmp_path, name):
    data = get_dataset("tiny-test", n_items=30, n_query=6)
    spec = BackboneSpec(name=name, weights="random", resize=64, crop=64, seed=2)
    positions = np.array([5, 2, 17, 9, 11])
    images = ImageInput(data, np.arange(3, 25), spec, cache=tmp_path)
    view = images.frozen_trunk(device="cpu")
    assert len(view) == len(images) and view.frozen_trunk() is view
    full = images.build_backbone().eval()
    top = view.build_backbone().eval()
    with torch.no_grad():
        want = full(images.tensors(positions))
        got = top(view.tensors(positions))
        # the same rows whichever way they are read: batches in order, and the loader's batches
        rows = torch.cat([x for _, x in view.batches(4)])
    assert got.shape == want.shape == (5, spec.dim)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))
    assert torch.equal(rows[positions], view.tensors(positions))
    # the top is all that a method fine-tunes: its parameters are the full network's top_parameters
    assert {tuple(p.shape) for p in top.top_parameters()} == {tuple(p.shape) for p in full.top_parameters()}
    assert sum(p.numel() for p in top.parameters()) == sum(p.numel() for p in full.top_parameters())
    # computed once: a second view reads the cache entry (same file, nothing recomputed)
    entries = sorted(p.name for p in (tmp_path / "features").glob("*.npy"))
    again = ImageInput(data, np.arange(3, 25), spec, cache=tmp_path).frozen_trunk(device="cpu")
    assert sorted(p.name for p in (tmp_path / "features").glob("*.npy")) == entries and len(entries) == 1
    assert np.array_equal(np.asarray(again.outputs), np.asarray(view.outputs))


def test_udht_end_to_end_fine_tunes_only_the_top_by_default_and_matches_the_full_path(tmp_path):
    """finetune="top" (the default) trains on the trunk's cached outputs; the same fit with finetune="all" and the
    pre-trained layers' learning rate 0 computes the same function from the images: equal losses and codes."""
    data = get_dataset("tiny-test", n_items=40, n_query=8)
    spec = BackboneSpec(weights="random", resize=64, crop=64)
    train = np.arange(8, 40)
    tags = [data.tags[i] for i in train]
    kw = dict(bits=8, seed=0, max_epochs=2, warmup_epochs=2, batch_size=16, word_vector_dim=8, val_fraction=0.0,
              device="cpu")
    top = hashbench.create("udht", **kw)
    assert top.finetune == "top"
    top.fit(tags=tags, images=ImageInput(data, train, spec, cache=tmp_path))
    assert top.fit_info_["finetune"] == "top"
    n_top = sum(p.numel() for p in ImageInput(data, train, spec).build_backbone().top_parameters())
    assert top.fit_info_["finetuned_parameters"] == n_top  # FC1-FC2 of AlexNet, not its convolutions
    # the top was fine-tuned ...
    initial = dict(ImageInput(data, train, spec).build_backbone().named_parameters())["classifier.4.weight"]
    assert not torch.equal(dict(top.backbone_.named_parameters())["top.classifier.4.weight"], initial)
    # ... and with a zero learning rate for the pre-trained layers both paths are one function
    frozen = {}
    for mode in ("top", "all"):
        h = hashbench.create("udht", **kw, finetune=mode, backbone_lr=0.0)
        h.fit(tags=tags, images=ImageInput(data, train, spec, cache=tmp_path))
        frozen[mode] = (h.history_, h.encode(images=ImageInput(data, np.arange(8), spec, cache=tmp_path)))
    for k in ("L1", "L2", "L3", "total"):
        np.testing.assert_allclose(frozen["top"][0][k], frozen["all"][0][k], rtol=1e-4, err_msg=k)
    np.testing.assert_array_equal(frozen["top"][1], frozen["all"][1])


def test_tag_binary_end_to_end_takes_finetune_and_refuses_a_bad_value(tmp_path):
    data = get_dataset("tiny-test", n_items=40, n_query=8)
    spec = BackboneSpec(weights="random", resize=64, crop=64)
    train = np.arange(8, 40)
    tags = [data.tags[i] for i in train]
    b = tag_binary.TagBinaryEndToEnd(bits=8, max_epochs=1, warmup_epochs=1, batch_size=16, val_fraction=0.0,
                                     device="cpu")
    b.fit(tags=tags, images=ImageInput(data, train, spec, cache=tmp_path))
    assert b.fit_info_["finetune"] == "top" and b.encode(images=ImageInput(data, np.arange(8), spec)).shape == (8, 8)
    with pytest.raises(ConfigError, match="finetune must be one of"):
        tag_binary.TagBinaryEndToEnd(bits=8, finetune="trunk").fit(tags=tags, images=ImageInput(data, train, spec))
    # the paper's configurations fine-tune every layer
    assert hashbench.get_method("udht").configurations["paper"]["finetune"] == "all"
    assert tag_binary.TagBinaryEndToEnd.configurations["paper"]["finetune"] == "all"
