"""The backbone registry: VGG-16/19 fc7 and ResNet-50 pool beside AlexNet FC2, their weights, the cache
and results keyed by backbone, and `--backbone` on the command line (tiny inputs: VGG on CPU is heavy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hashbench
from hashbench import ConfigError, WeightsError
from hashbench.cli import main
from hashbench.datasets import get_dataset
from hashbench.features import BACKBONES, BackboneSpec, build_backbone, canonical_backbone, results_suffix
from hashbench.features.extract import feature_key
from hashbench.store import iter_cells


@pytest.fixture(autouse=True, scope="module")
def _two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


def test_registry_names_and_aliases():
    assert set(BACKBONES) == {"alexnet-fc2", "vgg16-fc7", "vgg19-fc7", "resnet50-pool", "efficientnet-lite0-pool"}
    assert canonical_backbone("vgg19") == "vgg19-fc7" and canonical_backbone("RESNET50") == "resnet50-pool"
    assert canonical_backbone("lite0") == canonical_backbone("efficientnet-lite0") == "efficientnet-lite0-pool"
    assert BackboneSpec(name="vgg16", weights="random", resize=32, crop=32).name == "vgg16-fc7"
    with pytest.raises(ConfigError, match="unknown backbone 'vgg11'.*vgg19-fc7"):
        BackboneSpec(name="vgg11")
    with pytest.raises(ConfigError, match="at least 63"):  # AlexNet's own minimum, not VGG's
        BackboneSpec(name="alexnet", weights="random", resize=32, crop=32)


@pytest.mark.parametrize("name, layer", [("vgg16-fc7", 4), ("vgg19-fc7", 4), ("resnet50-pool", None)])
def test_features_are_the_named_layer_of_the_torchvision_network(name, layer):
    """fc7 after ReLU is torchvision's classifier[:5] output; the pool is the input of ResNet's fc."""
    spec = BackboneSpec(name=name, weights="random", resize=32, crop=32, seed=1)
    net = build_backbone(spec).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = net(x)
        full = spec.definition.build_untrained()
        full.load_state_dict(_full_state(net, full))
        full.eval()
        if layer is not None:  # VGG: the classifier up to fc7's ReLU, on torchvision's own forward path
            h = torch.flatten(full.avgpool(full.features(x)), 1)
            ref = full.classifier[:5](h)
        else:  # ResNet: replace the classifier by the identity
            full.fc = torch.nn.Identity()
            ref = full(x)
    assert out.shape == (2, spec.dim) and spec.dim == (2048 if layer is None else 4096)
    assert torch.allclose(out, ref, atol=1e-5 * float(ref.abs().max()))
    assert (out >= 0).all() and (out > 0).any()  # after a ReLU (or a pooled ReLU)
    # seeded: the same seed gives the same network, another seed another one
    again = build_backbone(spec).eval()
    with torch.no_grad():
        assert torch.equal(again(x), out)
    assert len(net.top_parameters()) > 0


def _full_state(wrapped: torch.nn.Module, full: torch.nn.Module) -> dict:
    """The truncated network's weights under the full network's parameter names (same tensors, same order)."""
    mine = list(wrapped.state_dict().values())
    names = [k for k in full.state_dict() if not k.startswith(("fc.", "classifier.6."))]
    assert len(names) == len(mine)
    state = dict(full.state_dict())
    state.update(dict(zip(names, mine)))
    return state


def test_imagenet_weights_missing_offline_is_a_clear_error(tmp_path, monkeypatch):
    from torchvision.models._api import WeightsEnum

    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))

    def offline(self, *a, **k):
        raise OSError("no network")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    try:
        with pytest.raises(WeightsError, match=r"VGG-19 fc7 ImageNet weights.*vgg19-dcbb9e9d\.pth.*--weights"):
            build_backbone(BackboneSpec(name="vgg19", weights="imagenet", resize=32, crop=32))
    finally:
        torch.hub.set_dir(old)


def test_a_weights_file_of_another_network_is_refused(tmp_path):
    path = tmp_path / "not_vgg.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match="not a VGG-16 fc7 state dict"):
        build_backbone(BackboneSpec(name="vgg16", weights=str(path), resize=32, crop=32))
    with pytest.raises(WeightsError, match="no such file"):
        build_backbone(BackboneSpec(name="resnet50", weights=str(tmp_path / "missing.pth"), resize=32, crop=32))


def test_cache_and_results_are_keyed_by_backbone():
    data = get_dataset("tiny-test", n_items=12, n_query=4)
    idx = np.arange(12)
    keys = {feature_key(data, idx, BackboneSpec(name=n, weights="random", resize=64, crop=64)) for n in BACKBONES}
    assert len(keys) == len(BACKBONES)
    assert results_suffix(BackboneSpec(weights="random", resize=64, crop=64)) == ""  # the default: as before
    assert results_suffix(BackboneSpec(name="vgg19", weights="random", resize=64, crop=64)) == "-vgg19-fc7"
    # relative to the dataset's own default: the synthetic set's is EfficientNet-Lite0, so AlexNet gets a suffix
    lite = BackboneSpec(name="lite0", weights="random", resize=64, crop=64)
    assert results_suffix(lite, "efficientnet-lite0-pool") == ""
    assert results_suffix(BackboneSpec(weights="random", resize=64, crop=64), "lite0") == "-alexnet-fc2"


def test_run_with_another_backbone_names_it_in_results_and_report(tmp_path, capsys):
    results, reports = tmp_path / "results", tmp_path / "reports"
    code = main(["run", "--methods", "itq,usdh", "--bits", "8", "-q", "--dataset", "tiny-test",
                 "-D", "n_items=40", "-D", "n_query=8", "--backbone", "vgg16", "--cache-dir", str(tmp_path / "c"),
                 "--param", "usdh.max_epochs=3", "--results", str(results), "--report", str(reports)])
    assert code == 0
    out = capsys.readouterr().out
    assert "VGG-16 fc7 (4096-d), random He initialisation" in out
    assert "usdh's paper uses vgg19-fc7; this run uses vgg16-fc7" in out
    frame = hashbench.load_results(results)
    assert set(frame.method) == {"itq", "usdh"}
    assert (results / "tiny-test-vgg16-fc7").is_dir()
    cells = list(iter_cells(results))
    assert {c.record["features"]["backbone"]["name"] for c in cells} == {"vgg16-fc7"}
    assert "VGG-16 fc7" in (reports / "index.md").read_text()
    # the default backbone's results go to the dataset's own folder, beside it, without a clash
    assert main(["run", "--methods", "itq", "--bits", "8", "-q", "--dataset", "tiny-test", "-D", "n_items=40",
                 "-D", "n_query=8", "--cache-dir", str(tmp_path / "c"), "--results", str(results),
                 "--no-report"]) == 0
    assert (results / "tiny-test").is_dir()


def test_list_shows_backbones_and_preferred_backbones(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in BACKBONES:
        assert name in out
    assert "--backbone vgg19" in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("usdh "))
    assert "paper's backbone vgg19-fc7" in line
