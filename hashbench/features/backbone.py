"""The AlexNet backbone up to FC2, its weights and its image preprocessing.

The paper feeds every classical method the 4,096-d output of AlexNet's second
fully connected layer (FC2, after its ReLU) and fine-tunes the same network in
UDHT. Both uses build the network here, so end-to-end UDHT starts from exactly
the weights the cached features came from.

Weights (``BackboneSpec.weights``):

* ``"imagenet"``: torchvision's ``AlexNet_Weights.IMAGENET1K_V1``, read from the
  torch hub cache (``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth``) or
  downloaded there by torchvision when online; offline and missing, a
  :class:`~hashbench.errors.WeightsError` says how to provide them. Never a
  silent fallback to random weights.
* a path to a ``.pth`` state dict (``--weights PATH``), loaded with
  ``torch.load(weights_only=True)``;
* ``"random"``: a fixed, seeded random initialisation. Only the synthetic
  dataset uses it by default; every result records it and the report states it,
  so that nobody takes those features for ImageNet ones. It is He et al.'s
  initialisation for ReLU networks (ICCV 2015, eq. 10): weights N(0, 2/fan_in),
  biases 0, which keeps the signal's scale through the layers, so that FC2
  outputs come out at about unit scale, as a trained network's do.
  torchvision's AlexNet is left at PyTorch's default initialisation (weights
  and biases uniform in +-1/sqrt(fan_in)), under which the signal shrinks
  ~2.4x per layer while the biases do not: its FC2 outputs are ~100x below
  unit scale and dominated by a common offset, and fine-tuning them at the
  paper's backbone learning rate moved them by many times their size in
  one epoch.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, WeightsError
from ..storage import file_digest

FC2_DIM = 4096
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: recorded with random weights: which random network they are
RANDOM_INIT = "he-normal-fan-in, zero biases"
BACKBONES = {"alexnet-fc2": "AlexNet (Krizhevsky et al., NIPS 2012) up to FC2 after ReLU: 4,096-d"}


@dataclass(frozen=True)
class BackboneSpec:
    """Which network, which weights and which preprocessing produce the features."""

    name: str = "alexnet-fc2"
    weights: str = "imagenet"
    seed: int = 0  # only used by weights="random"
    resize: int = 256  # shorter side is resized to this ...
    crop: int = 224  # ... then centre-cropped to crop x crop

    def __post_init__(self) -> None:
        if self.name not in BACKBONES:
            raise ConfigError(f"unknown backbone {self.name!r}; known: {', '.join(BACKBONES)}")
        if self.crop < 63:
            raise ConfigError(f"backbone: crop must be at least 63 pixels for AlexNet, got {self.crop}")
        if self.resize < self.crop:
            raise ConfigError(f"backbone: resize ({self.resize}) must be >= crop ({self.crop})")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.weights == "random":
            d["init"] = RANDOM_INIT
        elif self.weights != "imagenet":
            d["weights_sha256"] = _file_sha256(Path(self.weights))
        return d

    def describe(self) -> str:
        if self.weights == "random":
            w = f"random He initialisation (seed {self.seed}), not ImageNet"
        elif self.weights == "imagenet":
            w = "ImageNet (torchvision IMAGENET1K_V1)"
        else:
            w = f"weights from {self.weights}"
        return f"AlexNet FC2 (4096-d), {w}; resize {self.resize}, centre crop {self.crop}"


def _file_sha256(path: Path) -> str:
    if not path.is_file():
        raise WeightsError(f"backbone weights file {path}: no such file")
    return file_digest(path)[:16]


def imagenet_weights_path() -> Path:
    """Where torchvision keeps (or would download) AlexNet's ImageNet weights."""
    import torch
    from torchvision.models import AlexNet_Weights

    filename = AlexNet_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def load_state_dict(spec: BackboneSpec) -> dict[str, Any] | None:
    """The AlexNet state dict for ``spec`` (None for random weights)."""
    import torch

    if spec.weights == "random":
        return None
    if spec.weights == "imagenet":
        path = imagenet_weights_path()
        if not path.is_file():
            from torchvision.models import AlexNet_Weights

            old = socket.getdefaulttimeout()
            socket.setdefaulttimeout(30)
            try:
                # torchvision's own download path: fetches into the hub cache.
                return AlexNet_Weights.IMAGENET1K_V1.get_state_dict(progress=True, check_hash=True)
            except Exception as exc:
                raise WeightsError(
                    f"AlexNet ImageNet weights are not in the torch hub cache ({path}) and could not be "
                    f"downloaded ({type(exc).__name__}: {exc}). Download "
                    f"{AlexNet_Weights.IMAGENET1K_V1.url} on a machine with internet and either copy it "
                    f"to {path} or pass --weights /path/to/alexnet-owt-7be5be79.pth"
                ) from exc
            finally:
                socket.setdefaulttimeout(old)
    else:
        path = Path(spec.weights)
        if not path.is_file():
            raise WeightsError(f"backbone weights file {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"backbone weights file {path}: cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict) or "classifier.4.weight" not in state:
        raise WeightsError(f"backbone weights file {path}: not an AlexNet state dict (no classifier.4.weight)")
    check_state_dict(state, path)
    return state


def check_state_dict(state: dict[str, Any], source: str | Path) -> None:
    """A :class:`WeightsError` naming ``source`` unless ``state`` has AlexNet's tensors, of AlexNet's shapes.

    Checked before ``load_state_dict``, whose own message (a raw RuntimeError
    listing every size mismatch) names neither the file nor what to do.
    """
    import torch
    from torchvision.models import alexnet

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        expected = {k: tuple(v.shape) for k, v in alexnet(weights=None).state_dict().items()}
    missing = [k for k in expected if k not in state]
    if missing:
        raise WeightsError(f"backbone weights file {source}: not AlexNet's weights: tensor {missing[0]!r} is missing"
                           + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    for name, shape in expected.items():
        found = tuple(getattr(state[name], "shape", ()))
        if found != shape:
            raise WeightsError(
                f"backbone weights file {source}: tensor {name!r} has shape {list(found)}, AlexNet expects "
                f"{list(shape)}; the file is for another network or another variant of AlexNet"
            )
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise WeightsError(f"backbone weights file {source}: not AlexNet's weights: unexpected tensor "
                           f"{unexpected[0]!r}" + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))


def build_alexnet_fc2(spec: BackboneSpec):
    """torchvision AlexNet truncated after FC2's ReLU, weights per ``spec``."""
    import torch
    from torch import nn
    from torchvision.models import alexnet

    class AlexNetFC2(nn.Module):
        """conv1-5, pool, then Dropout-FC1-ReLU-Dropout-FC2-ReLU: the paper's FC2 output."""

        out_dim = FC2_DIM

        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.features = net.features
            self.avgpool = net.avgpool
            self.classifier = nn.Sequential(*list(net.classifier.children())[:6])

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

    state = load_state_dict(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        net = alexnet(weights=None)
        if state is None:
            _he_init(net)
        else:
            net.load_state_dict(state)
    return AlexNetFC2(net)


def _he_init(net: Any) -> None:
    """He et al.'s fan-in initialisation for ReLU networks: weights N(0, 2 / fan_in), zero biases."""
    from torch import nn

    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)


def preprocess(images: np.ndarray | list[np.ndarray], spec: BackboneSpec):
    """uint8 RGB images (H, W, 3) -> normalised float tensor (n, 3, crop, crop).

    Resize the shorter side to ``spec.resize`` (bilinear, antialiased), centre-crop
    ``spec.crop``, scale to [0, 1] and normalise with the ImageNet statistics.
    """
    import torch
    import torch.nn.functional as F

    out = []
    for img in images:
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)[None]
        h, w = t.shape[-2:]
        scale = spec.resize / min(h, w)
        nh, nw = max(spec.crop, round(h * scale)), max(spec.crop, round(w * scale))
        if (nh, nw) != (h, w):
            t = F.interpolate(t, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        top, left = (nh - spec.crop) // 2, (nw - spec.crop) // 2
        out.append(t[..., top : top + spec.crop, left : left + spec.crop])
    batch = torch.cat(out)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (batch - mean) / std


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; others pass through."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but torch sees no CUDA GPU")
    return device


def check_image(img: Any, source: str) -> np.ndarray:
    """An (H, W, 3) uint8 array, or a DataError naming where it came from."""
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
        raise DataError(f"{source}: expected an RGB uint8 image, got shape {arr.shape} dtype {arr.dtype}")
    return arr[..., :3]


def default_num_threads() -> int:
    return max(1, (os.cpu_count() or 1))
