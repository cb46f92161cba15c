"""The one registry of backbones: which torchvision network, cut where, with which weights.

Each entry says what the features are (the layer, its dimension), which
torchvision ImageNet weights it loads (``weights="imagenet"``: read from the
torch hub cache, or downloaded there by torchvision when online; missing
offline: a :class:`~hashbench.errors.WeightsError` that says how to provide
the file), how small an input it accepts, and which of its layers are the
"top" that end-to-end methods may fine-tune while the convolutional trunk
stays frozen.

* ``alexnet-fc2``: AlexNet (Krizhevsky et al., NIPS 2012) up to FC2 after its
  ReLU, 4,096-d: the UDHT paper's features and the suite's default.
* ``vgg16-fc7`` / ``vgg19-fc7``: VGG-16 / VGG-19 (Simonyan & Zisserman, ICLR
  2015) up to fc7 after its ReLU, 4,096-d: the features of DeepBit (VGG-16)
  and USDH (VGG-19) and of many MATLAB suites' ``.mat`` feature files.
* ``resnet50-pool``: ResNet-50 (He et al., CVPR 2016), the 2,048-d global
  average pool before the classifier.

A name may be given short (``vgg19``, ``resnet50``, ``alexnet``): see
:func:`canonical_backbone`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ConfigError

DEFAULT_BACKBONE = "alexnet-fc2"


@dataclass(frozen=True)
class BackboneDef:
    """One backbone of the registry (see the module docstring)."""

    name: str
    display: str  # "VGG-19 fc7"
    dim: int
    summary: str
    arch: str  # torchvision model builder, e.g. "vgg19"
    weights_enum: str  # torchvision weights enum, e.g. "VGG19_Weights"
    check_key: str  # a key every state dict of this architecture has
    min_crop: int  # smallest input side the network accepts
    wrap: Callable[[Any], Any]  # torchvision model -> the truncated feature extractor

    def __str__(self) -> str:  # ``list`` prints the summary
        return self.summary

    def weights(self):
        """torchvision's ImageNet weights entry for this architecture (IMAGENET1K_V1)."""
        import torchvision.models as tvm

        return getattr(tvm, self.weights_enum).IMAGENET1K_V1

    def build_untrained(self):
        import torchvision.models as tvm

        return getattr(tvm, self.arch)(weights=None)


def _alexnet_fc2(net: Any):
    import torch
    from torch import nn

    class AlexNetFC2(nn.Module):
        """conv1-5, pool, then Dropout-FC1-ReLU-Dropout-FC2-ReLU: the paper's FC2 output."""

        out_dim = 4096

        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.features = net.features
            self.avgpool = net.avgpool
            self.classifier = nn.Sequential(*list(net.classifier.children())[:6])

        def top_parameters(self):
            """FC1 and FC2: what end-to-end methods fine-tune when the conv trunk is frozen."""
            return list(self.classifier.parameters())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.features(x)
            if x.shape[-2:] == (1, 1) and not (self.training and self.classifier[0].p > 0):
                return self._forward_1x1(x)
            return self.classifier(torch.flatten(self.avgpool(x), 1))

        def _forward_1x1(self, x: torch.Tensor) -> torch.Tensor:
            """The same function when conv5's map is 1x1 (inputs of 63-94 px, e.g. the synthetic set).

            The adaptive pool then copies each channel's value into all 36 cells
            of its 6x6 grid, so FC1 of the copies is FC1 with its 36 weight
            columns per channel summed: 36x fewer multiply-adds in FC1, about
            40% of the network's cost at 64 px. The sum is taken on the fly, so
            autograd gives every column the gradient it would get unfolded.
            Not used while FC1's input dropout is active (it would drop the
            36 copies independently).
            """
            fc1 = self.classifier[1]
            w = fc1.weight.view(fc1.out_features, x.shape[1], -1).sum(dim=-1)
            h = nn.functional.linear(torch.flatten(x, 1), w, fc1.bias)
            return self.classifier[2:](h)

    return AlexNetFC2(net)


def _vgg_fc7(net: Any):
    import torch
    from torch import nn

    class VGGfc7(nn.Module):
        """conv trunk, 7x7 adaptive pool, then fc6-ReLU-Dropout-fc7-ReLU: fc7 after its ReLU (4,096-d)."""

        out_dim = 4096

        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.features = net.features
            self.avgpool = net.avgpool
            self.classifier = nn.Sequential(*list(net.classifier.children())[:5])

        def top_parameters(self):
            """fc6 and fc7 (the stand-in design of USDH fine-tunes these, the convolutions frozen)."""
            return list(self.classifier.parameters())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    return VGGfc7(net)


def _resnet_pool(net: Any):
    import torch
    from torch import nn

    class ResNetPool(nn.Module):
        """Everything up to the global average pool (2,048-d for ResNet-50), no classifier."""

        out_dim = 2048

        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3)
            self.layer4 = net.layer4
            self.avgpool = net.avgpool

        def top_parameters(self):
            """layer4 (the last residual stage): ResNet has no fully connected layers below its classifier."""
            return list(self.layer4.parameters())

        def train(self, mode: bool = True):
            # Batch norm keeps its ImageNet statistics: fine-tuning batches are
            # small and one dataset's statistics would replace them (common practice).
            super().train(mode)
            for m in self.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
            return self

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.flatten(self.avgpool(self.layer4(self.trunk(x))), 1)

    return ResNetPool(net)


BACKBONES: dict[str, BackboneDef] = {
    d.name: d
    for d in (
        BackboneDef("alexnet-fc2", "AlexNet FC2", 4096,
                    "AlexNet (Krizhevsky et al., NIPS 2012) up to FC2 after ReLU: 4,096-d (the default)",
                    "alexnet", "AlexNet_Weights", "classifier.4.weight", 63, _alexnet_fc2),
        BackboneDef("vgg16-fc7", "VGG-16 fc7", 4096,
                    "VGG-16 (Simonyan & Zisserman, ICLR 2015) up to fc7 after ReLU: 4,096-d (DeepBit's)",
                    "vgg16", "VGG16_Weights", "classifier.3.weight", 32, _vgg_fc7),
        BackboneDef("vgg19-fc7", "VGG-19 fc7", 4096,
                    "VGG-19 (Simonyan & Zisserman, ICLR 2015) up to fc7 after ReLU: 4,096-d (USDH's)",
                    "vgg19", "VGG19_Weights", "classifier.3.weight", 32, _vgg_fc7),
        BackboneDef("resnet50-pool", "ResNet-50 pool", 2048,
                    "ResNet-50 (He et al., CVPR 2016) global average pool: 2,048-d",
                    "resnet50", "ResNet50_Weights", "layer4.2.conv3.weight", 32, _resnet_pool),
    )
}

#: short names accepted on the command line
ALIASES = {"alexnet": "alexnet-fc2", "vgg16": "vgg16-fc7", "vgg19": "vgg19-fc7", "resnet50": "resnet50-pool"}


def canonical_backbone(name: str) -> str:
    """``"vgg19"`` -> ``"vgg19-fc7"``; a registry name passes through; anything else: ConfigError."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in BACKBONES:
        known = ", ".join(f"{n} ({a})" for a, n in ALIASES.items())
        raise ConfigError(f"unknown backbone {name!r}; known: {known}")
    return key


def get_backbone(name: str) -> BackboneDef:
    return BACKBONES[canonical_backbone(name)]
