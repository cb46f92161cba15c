"""The AlexNet FC2 backbone: the 1x1 shortcut computes exactly torchvision's function."""

from __future__ import annotations

import pytest
import torch

from hashbench.features import BackboneSpec
from hashbench.features.backbone import build_alexnet_fc2


def reference_fc2(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision's path, spelled out: pool to 6x6 (copies when the map is 1x1), flatten, FC1, FC2."""
    return net.classifier(torch.flatten(net.avgpool(net.features(x)), 1))


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    return build_alexnet_fc2(BackboneSpec(weights="random", resize=64, crop=64, seed=3))


@pytest.mark.parametrize("size", [64, 94])
def test_1x1_shortcut_gives_the_same_features_and_gradients(net, size):
    assert net.features(torch.zeros(1, 3, size, size)).shape[-2:] == (1, 1)
    x = torch.randn(6, 3, size, size, generator=torch.Generator().manual_seed(size))
    net.eval()
    with torch.no_grad():
        out = net(x)
        ref = reference_fc2(net, x)
    assert out.shape == (6, 4096)
    # the sum order differs, nothing else
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))
    assert (out > 0).any()

    # every one of FC1's 36 columns per channel gets the gradient it gets unfolded
    grads = []
    for forward in (net, lambda t: reference_fc2(net, t)):
        net.zero_grad()
        (forward(x) * torch.linspace(-1, 1, 4096)).sum().backward()
        grads.append((net.classifier[1].weight.grad.clone(), net.features[0].weight.grad.clone()))
    for a, b in zip(*grads):
        assert float(b.norm()) > 0
        assert float((a - b).norm() / b.norm()) < 1e-5
    net.zero_grad()


def test_larger_inputs_and_active_dropout_take_torchvision_path(net):
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    net.eval()
    assert net.features(x).shape[-2:] != (1, 1)
    assert torch.allclose(net(x), reference_fc2(net, x))
    # in training mode with dropout on, the 36 copies are dropped independently: no shortcut
    small = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    net.train()
    try:
        torch.manual_seed(5)
        a = net(small)
        torch.manual_seed(5)
        b = reference_fc2(net, small)
    finally:
        net.eval()
    assert torch.equal(a, b)


def test_random_weights_follow_he_initialisation(net):
    """He et al. 2015, eq. 10: Var[w] = 2 / fan_in, zero biases; recorded in the spec."""
    layers = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) == 7  # conv1-5, FC1, FC2
    for m in layers:
        fan_in = m.weight[0].numel()
        assert float(m.weight.detach().std()) == pytest.approx((2.0 / fan_in) ** 0.5, rel=0.03)
        assert not m.bias.any()
    # the signal keeps its scale: FC2 outputs of normalised noise are O(1), not ~1e-2
    with torch.no_grad():
        out = net.eval()(torch.randn(16, 3, 64, 64, generator=torch.Generator().manual_seed(2)))
    assert 0.1 < float(out.pow(2).mean().sqrt()) < 30
    spec = BackboneSpec(weights="random", resize=64, crop=64, seed=3)
    assert "he" in spec.to_dict()["init"] and "He" in spec.describe()
    # the same seed gives the same network; another seed another one
    again = build_alexnet_fc2(spec)
    other = build_alexnet_fc2(BackboneSpec(weights="random", resize=64, crop=64, seed=4))
    assert torch.equal(again.classifier[4].weight, net.classifier[4].weight)
    assert not torch.equal(other.classifier[4].weight, net.classifier[4].weight)


def _alexnet_shapes() -> dict[str, tuple[int, ...]]:
    from torchvision.models import alexnet

    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in alexnet(weights=None).state_dict().items()}


def test_weights_with_the_right_keys_but_wrong_shapes_get_a_clear_error(tmp_path):
    from hashbench import WeightsError

    # AlexNet's keys; conv1 of the right shape, conv2 with 3x3 kernels instead of 5x5, the rest tiny
    shapes = _alexnet_shapes()
    state = {k: torch.zeros(1) for k in shapes}
    state["features.0.weight"] = torch.zeros(shapes["features.0.weight"])
    state["features.0.bias"] = torch.zeros(shapes["features.0.bias"])
    state["features.3.weight"] = torch.zeros(192, 64, 3, 3)
    path = tmp_path / "not-quite-alexnet.pth"
    torch.save(state, path)
    spec = BackboneSpec(weights=str(path), resize=64, crop=64)
    with pytest.raises(WeightsError) as err:
        build_alexnet_fc2(spec)
    msg = str(err.value)
    assert str(path) in msg
    assert "'features.3.weight'" in msg and "[192, 64, 3, 3]" in msg and "[192, 64, 5, 5]" in msg
    # a missing tensor is named too (not torch's raw RuntimeError)
    del state["features.8.bias"]
    state["features.3.weight"] = torch.zeros(192, 64, 5, 5)
    torch.save(state, path)
    with pytest.raises(WeightsError, match=r"not-quite-alexnet\.pth.*'features\.8\.bias' is missing"):
        build_alexnet_fc2(BackboneSpec(weights=str(path), resize=64, crop=64))
