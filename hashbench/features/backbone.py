"""The backbone spec (network, weights, preprocessing), weights loading and image preprocessing.

The networks themselves are the registry of :mod:`hashbench.features.networks`;
what follows was written for AlexNet, the default, and holds for every backbone.

The paper feeds every classical method the 4,096-d output of AlexNet's second
fully connected layer (FC2, after its ReLU) and fine-tunes the same network in
UDHT. Both uses build the network here, so end-to-end UDHT starts from exactly
the weights the cached features came from.

Weights (``BackboneSpec.weights``):

* ``"imagenet"``: torchvision's ``AlexNet_Weights.IMAGENET1K_V1``, read from the
  torch hub cache (``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth``) or
  downloaded there by torchvision when online; offline and missing, a
  :class:`~hashbench.errors.WeightsError` says how to provide them. Never a
  silent fallback to random weights. A backbone whose weights install with pip
  (EfficientNet-Lite0: :class:`~hashbench.features.packaged.PackagedWeights`)
  reads them from its package, checked by SHA-256, and never downloads: a
  missing package or a file that fails its check is a ``WeightsError`` naming
  the package and the command that installs it;
* a path to a ``.pth`` state dict (``--weights PATH``), loaded with
  ``torch.load(weights_only=True)``;
* ``"random"``: a fixed, seeded random initialisation, for fast pipeline tests
  (``--backbone alexnet --weights random``: the synthetic set's former stage);
  every result records it and the report states it, so that nobody takes those
  features for ImageNet ones. It is He et al.'s
  initialisation for ReLU networks (ICCV 2015, eq. 10): weights N(0, 2/fan_in),
  biases 0, which keeps the signal's scale through the layers, so that FC2
  outputs come out at about unit scale, as a trained network's do.
  torchvision's AlexNet is left at PyTorch's default initialisation (weights
  and biases uniform in +-1/sqrt(fan_in)), under which the signal shrinks
  ~2.4x per layer while the biases do not: its FC2 outputs are ~100x below
  unit scale and dominated by a common offset, and fine-tuning them at the
  paper's backbone learning rate moved them by many times their size in
  one epoch. VGG-16/19, ResNet-50 and EfficientNet-Lite0 get the same He
  initialisation of every convolution and linear layer (their batch norms keep
  the identity start: weight 1, bias 0, running mean 0, variance 1).
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
from .networks import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401 (the torchvision networks' normalisation)
from .networks import BACKBONES, DEFAULT_BACKBONE, BackboneDef, canonical_backbone, get_backbone

FC2_DIM = 4096  # AlexNet FC2's (and VGG fc7's) width; other backbones: BACKBONES[name].dim
#: recorded with random weights: which random network they are
RANDOM_INIT = "he-normal-fan-in, zero biases"


@dataclass(frozen=True)
class BackboneSpec:
    """Which network, which weights and which preprocessing produce the features.

    ``name`` is a registry name of :mod:`hashbench.features.networks`
    (short names such as ``vgg19`` are accepted and stored in full).
    """

    name: str = DEFAULT_BACKBONE
    weights: str = "imagenet"
    seed: int = 0  # only used by weights="random"
    resize: int = 256  # shorter side is resized to this ...
    crop: int = 224  # ... then centre-cropped to crop x crop

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", canonical_backbone(self.name))
        d = self.definition
        if self.crop < d.min_crop:
            raise ConfigError(f"backbone {self.name}: crop must be at least {d.min_crop} pixels, got {self.crop}")
        if self.resize < self.crop:
            raise ConfigError(f"backbone: resize ({self.resize}) must be >= crop ({self.crop})")

    @property
    def definition(self) -> BackboneDef:
        return BACKBONES[self.name]

    @property
    def dim(self) -> int:
        return self.definition.dim

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        defn = self.definition
        if defn.library != "torchvision":  # the torchvision networks' records stay as they were
            d.update(library=defn.library, arch=defn.arch, mean=list(defn.mean), std=list(defn.std))
        if self.weights == "random":
            d["init"] = RANDOM_INIT
        elif self.weights == "imagenet":
            if defn.packaged is not None:
                d["weights_package"] = defn.packaged.describe()
        else:
            d["weights_sha256"] = _file_sha256(Path(self.weights))
        return d

    @property
    def stage(self) -> str:
        """What the features are, in a few words, for a report's warning box."""
        d = self.definition
        if self.weights == "random":
            return f"random backbone weights ({d.display}, seeded He initialisation): not ImageNet features"
        if self.weights == "imagenet":
            return f"ImageNet {d.display.rsplit(' ', 1)[0]} features"
        return f"{d.display} features, weights from {Path(self.weights).name}"

    def describe(self) -> str:
        d = self.definition
        if self.weights == "random":
            w = f"random He initialisation (seed {self.seed}), not ImageNet"
        elif self.weights == "imagenet" and d.packaged is not None:
            w = f"ImageNet (package {d.packaged.distribution} {d.packaged.version}, sha256 {d.packaged.sha256[:12]})"
        elif self.weights == "imagenet":
            w = "ImageNet (torchvision IMAGENET1K_V1)"
        else:
            w = f"weights from {self.weights}"
        return f"{d.display} ({d.dim}-d), {w}; resize {self.resize}, centre crop {self.crop}"


def backbone_for(dataset: Any, name: str | None = None, weights: str | None = None, seed: int = 0) -> Any:
    """The features' spec for a run on ``dataset``: its backbone (the dataset's default network,
    weights and preprocessing unless ``name``/``weights`` say otherwise), or, for a dataset that
    brings its own feature matrix, that file's description (a backbone or weights are then refused)."""
    if not getattr(dataset, "has_images", True):
        if name is not None or weights is not None:
            raise ConfigError(f"dataset {dataset.name!r} brings its own features: --backbone and --weights do not apply")
        return dataset.feature_spec()
    name = canonical_backbone(name or dataset.default_backbone)
    resize, crop = dataset.preprocessing(name)
    return BackboneSpec(
        name=name,
        weights=weights or dataset.default_weights,
        seed=seed,
        resize=resize,
        crop=crop,
    )


def results_suffix(spec: Any, default: str = DEFAULT_BACKBONE) -> str:
    """What a run's backbone adds to its results folder name: nothing for the dataset's ``default``
    backbone or precomputed features, ``-vgg19-fc7`` and so on otherwise, so that two backbones'
    results sit side by side instead of refusing to overwrite each other."""
    name = getattr(spec, "name", default)
    return f"-{name}" if name in BACKBONES and name != canonical_backbone(default) else ""


def _file_sha256(path: Path) -> str:
    if not path.is_file():
        raise WeightsError(f"backbone weights file {path}: no such file")
    return file_digest(path)[:16]


def imagenet_weights_path(name: str = DEFAULT_BACKBONE) -> Path:
    """Where torchvision keeps (or would download) this backbone's ImageNet weights; for a backbone
    whose weights install with pip, the verified file in its package (a WeightsError if missing)."""
    import torch

    d = get_backbone(name)
    if d.packaged is not None:
        return d.packaged.path()
    filename = d.weights().url.rsplit("/", 1)[-1]
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def load_state_dict(spec: BackboneSpec) -> dict[str, Any] | None:
    """The torchvision state dict for ``spec`` (None for random weights)."""
    import torch

    if spec.weights == "random":
        return None
    d = spec.definition
    if spec.weights == "imagenet" and d.packaged is not None:
        path = d.packaged.path()  # verified; never downloaded
        where = f"{path} (package {d.packaged.distribution}; `{d.packaged.install} --force-reinstall` restores it)"
        return _read_state_dict(path, d, where)
    if spec.weights == "imagenet":
        path = imagenet_weights_path(spec.name)
        if not path.is_file():
            entry = d.weights()
            old = socket.getdefaulttimeout()
            socket.setdefaulttimeout(30)
            try:
                # torchvision's own download path: fetches into the hub cache.
                return entry.get_state_dict(progress=True, check_hash=True)
            except Exception as exc:
                raise WeightsError(
                    f"{d.display} ImageNet weights are not in the torch hub cache ({path}) and could not be "
                    f"downloaded ({type(exc).__name__}: {exc}). Download {entry.url} on a machine with "
                    f"internet and either copy it to {path} or pass --weights /path/to/{path.name}"
                ) from exc
            finally:
                socket.setdefaulttimeout(old)
    else:
        path = Path(spec.weights)
        if not path.is_file():
            raise WeightsError(f"backbone weights file {path}: no such file")
    return _read_state_dict(path, d, path)


def _read_state_dict(path: Path, d: BackboneDef, where: Any) -> dict[str, Any]:
    """The state dict in ``path``, in the network's own names (``d.convert``), checked to fit it."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"backbone weights file {where}: cannot be read ({type(exc).__name__}: {exc})") from exc
    if isinstance(state, dict) and d.convert is not None:
        state = d.convert(state)
    if not isinstance(state, dict) or d.check_key not in state:
        raise WeightsError(f"backbone weights file {where}: not a {d.display} state dict (no {d.check_key})")
    check_state_dict(state, where, d)
    return state


def check_state_dict(state: dict[str, Any], source: str | Path, d: BackboneDef) -> None:
    """A :class:`WeightsError` naming ``source`` unless ``state`` has the network's tensors, of its shapes.

    Checked before ``load_state_dict``, whose own message (a raw RuntimeError
    listing every size mismatch) names neither the file nor what to do.
    """
    import torch

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        expected = {k: tuple(v.shape) for k, v in d.build_untrained().state_dict().items()}
    missing = [k for k in expected if k not in state]
    if missing:
        raise WeightsError(f"backbone weights file {source}: not {d.display}'s weights: tensor {missing[0]!r} is "
                           "missing" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    for name, shape in expected.items():
        found = tuple(getattr(state[name], "shape", ()))
        if found != shape:
            raise WeightsError(
                f"backbone weights file {source}: tensor {name!r} has shape {list(found)}, {d.display} expects "
                f"{list(shape)}; the file is for another network or another variant of {d.display}"
            )
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise WeightsError(f"backbone weights file {source}: not {d.display}'s weights: unexpected tensor "
                           f"{unexpected[0]!r}" + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))


def build_backbone(spec: BackboneSpec):
    """The torchvision network of ``spec``, truncated at its feature layer, weights per ``spec``.

    The module has ``out_dim`` and ``top_parameters()`` (the fully connected
    layers, or ResNet's last stage: what end-to-end methods fine-tune when
    the convolutional trunk is frozen).
    """
    import torch

    d = spec.definition
    state = load_state_dict(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        net = d.build_untrained()
        if state is None:
            _he_init(net)
        else:
            net.load_state_dict(state)
    return d.wrap(net)


def build_alexnet_fc2(spec: BackboneSpec):
    """torchvision AlexNet truncated after FC2's ReLU, weights per ``spec`` (kept for existing callers)."""
    if spec.name != "alexnet-fc2":
        raise ConfigError(f"build_alexnet_fc2 called with backbone {spec.name}; use build_backbone")
    return build_backbone(spec)


def _he_init(net: Any) -> None:
    """He et al.'s fan-in initialisation for ReLU networks: weights N(0, 2 / fan_in), zero biases."""
    from torch import nn

    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:  # ResNet's convolutions have none
                nn.init.zeros_(m.bias)


def preprocess(images: np.ndarray | list[np.ndarray], spec: BackboneSpec):
    """uint8 RGB images (H, W, 3) -> normalised float tensor (n, 3, crop, crop).

    Resize the shorter side to ``spec.resize`` (bilinear, antialiased), centre-crop
    ``spec.crop``, scale to [0, 1] and normalise with the statistics the backbone's
    weights were trained with (``mean``/``std`` of its definition: ImageNet's for the
    torchvision networks, (x - 127/255) / (128/255) for EfficientNet-Lite).
    """
    import torch
    import torch.nn.functional as F

    out = []
    for img in images:
        t = torch.from_numpy(np.require(img, requirements=["C", "W"])).permute(2, 0, 1).float().div_(255.0)[None]
        h, w = t.shape[-2:]
        scale = spec.resize / min(h, w)
        nh, nw = max(spec.crop, round(h * scale)), max(spec.crop, round(w * scale))
        if (nh, nw) != (h, w):
            t = F.interpolate(t, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        top, left = (nh - spec.crop) // 2, (nw - spec.crop) // 2
        out.append(t[..., top : top + spec.crop, left : left + spec.crop])
    batch = torch.cat(out)
    d = spec.definition
    mean = torch.tensor(d.mean).view(1, 3, 1, 1)
    std = torch.tensor(d.std).view(1, 3, 1, 1)
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
