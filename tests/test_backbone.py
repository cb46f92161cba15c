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
