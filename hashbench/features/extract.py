"""The features stage: backbone features of a dataset's items, cached on disk.

Features are computed once per (dataset items, backbone, weights,
preprocessing) and stored as ``<cache>/features/<key>.npy`` with a JSON sidecar
that says what they are and which :data:`CACHE_VERSION` wrote them
(``python -m hashbench cache`` lists the entries and finds the stale ones). A second run with the same key reads them back
(memory-mapped) instead of recomputing.

The outputs of a backbone's frozen trunk (:meth:`ImageInput.frozen_trunk`, for
end-to-end methods that fine-tune only the top) go through the same cache, as
``layer: "trunk"`` entries of shape (n, C * h * w).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..datasets.base import HashingDataset
from ..errors import ConfigError, DataError
from ..storage import atomic_write_json, cache_dir
from .backbone import BackboneSpec, build_backbone, check_image, preprocess, resolve_device

CACHE_VERSION = 3  # 2: FC1 folded when conv5 is 1x1 (other float rounding); 3: random weights He-initialised
#: torch's CPU convolutions run depthwise and 1x1 convolutions (EfficientNet's) about twice as fast on
#: channels-last tensors (benchmarks/README.md); the other networks are left as they were
CHANNELS_LAST = ("timm",)


class ImageInput:
    """The images of some dataset items, as the backbone sees them.

    This is what an image-using method (end-to-end UDHT) receives in ``fit`` and
    ``encode``: it yields preprocessed tensors and builds the very backbone (same
    weights, same preprocessing) that produced the cached features.
    """

    def __init__(self, dataset: HashingDataset, indices: Sequence[int], spec: BackboneSpec, *,
                 cache: str | Path | None = None, workers: int = 0, pin_memory: bool = False) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.spec = spec
        self.cache = cache  # the feature cache of the run (None: $HASHBENCH_CACHE or the default)
        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
            raise ConfigError(f"workers must be a non-negative integer, got {workers!r}")
        self.workers = int(workers)  # image-reading processes (torch DataLoader); 0: read here
        self.pin_memory = pin_memory  # page-locked batches, for non-blocking copies to a GPU

    def __len__(self) -> int:
        return int(self.indices.size)

    def tensors(self, positions: Sequence[int]):
        """Preprocessed images at these positions (0..len-1) as an (n, 3, S, S) tensor."""
        idx = self.indices[np.asarray(positions, dtype=np.int64)]
        imgs = [check_image(self.dataset.load_image(int(i)), self.dataset.image_source(int(i))) for i in idx]
        return preprocess(imgs, self.spec)

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> Iterator[tuple[np.ndarray, Any]]:
        """(positions, tensor) mini-batches; shuffled with a seeded generator when asked."""
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        yield from self.loader([order[s : s + batch_size] for s in range(0, len(order), batch_size)])

    def loader(self, position_batches: Sequence[np.ndarray]) -> Iterator[tuple[np.ndarray, Any]]:
        """(positions, tensor) for each batch of positions, in the order given.

        With ``workers > 0`` the images are read, decoded and preprocessed by that many
        torch DataLoader worker processes (and pinned when ``pin_memory``), while this
        process computes; the tensors are the same as :meth:`tensors` gives, bit for bit
        (each image is preprocessed alone either way).
        """
        if self.workers == 0 or len(position_batches) == 0:
            for pos in position_batches:
                yield pos, self.tensors(pos)
            return
        import torch
        from torch.utils.data import DataLoader

        batches = [np.asarray(p, dtype=np.int64) for p in position_batches]
        # Its own generator: a DataLoader draws its workers' base seed from the generator it is given, by
        # default torch's global one, which would shift a seeded method's later random draws (nothing here
        # is random: the images are read in the order given).
        data = DataLoader(_ItemImages(self), batch_sampler=batches, num_workers=self.workers,
                          collate_fn=_stack, pin_memory=self.pin_memory, generator=torch.Generator().manual_seed(0))
        yield from zip(batches, data)

    def build_backbone(self):
        return build_backbone(self.spec)

    def region_features(self, proposals: Sequence[tuple[float, float, float, float]], *,
                        device: str = "auto") -> np.ndarray:
        """(n, M, D) backbone features of each region proposal of each image, through the feature cache."""
        from .regions import region_features

        return region_features(self, list(proposals), extract=extract_features, cache=self.cache, device=device,
                               workers=self.workers)

    def frozen_trunk(self, *, device: str = "auto", progress: bool = False) -> "TrunkInput":
        """These items as the backbone's frozen trunk sees them: for methods that fine-tune only its top.

        The trunk's outputs are computed once per (items, backbone) through the feature
        cache; the returned :class:`TrunkInput` yields them where this yields images,
        and its ``build_backbone()`` is the top alone (``split()[1]``), so a method that
        fine-tunes "the backbone" it is given fine-tunes the top, on the frozen trunk's
        exact outputs, without running the trunk again. Methods that transform the
        images themselves (rotations, crops) cannot use it.
        """
        outputs, shape = trunk_outputs(self.dataset, self.indices, self.spec, cache=self.cache, device=device,
                                       progress=progress, workers=self.workers)
        return TrunkInput(self, outputs, shape)


class TrunkInput:
    """The frozen-trunk view of an :class:`ImageInput` (see :meth:`ImageInput.frozen_trunk`)."""

    def __init__(self, images: ImageInput, outputs: np.ndarray, shape: tuple[int, ...]) -> None:
        self.images = images
        self.dataset, self.indices, self.spec = images.dataset, images.indices, images.spec
        self.outputs = outputs  # (n, prod(shape)), memory-mapped from the cache
        self.shape = tuple(int(v) for v in shape)

    def __len__(self) -> int:
        return int(self.indices.size)

    def tensors(self, positions: Sequence[int]):
        import torch

        rows = np.asarray(self.outputs[np.asarray(positions, dtype=np.int64)], dtype=np.float32)
        return torch.from_numpy(rows.reshape((-1, *self.shape)))

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> Iterator[tuple[np.ndarray, Any]]:
        order = np.random.default_rng(seed).permutation(len(self)) if shuffle else np.arange(len(self))
        yield from self.loader([order[s : s + batch_size] for s in range(0, len(order), batch_size)])

    def loader(self, position_batches: Sequence[np.ndarray]) -> Iterator[tuple[np.ndarray, Any]]:
        for pos in position_batches:
            yield pos, self.tensors(pos)

    def build_backbone(self):
        """The backbone's top (what follows the trunk), with ``out_dim`` and ``top_parameters()`` (all of it)."""
        from torch import nn

        class Top(nn.Module):
            def __init__(self, top: nn.Module, out_dim: int) -> None:
                super().__init__()
                self.top = top
                self.out_dim = out_dim

            def top_parameters(self):
                return list(self.top.parameters())

            def forward(self, x):
                return self.top(x)

        net = build_backbone(self.spec)
        return Top(net.split()[1], int(net.out_dim))

    def frozen_trunk(self, **_: Any) -> "TrunkInput":
        return self



def crop_region(batch: Any, region: tuple[float, float, float, float]) -> Any:
    """The (x0, y0, x1, y1) fraction of each (n, 3, S, S) image, resized back to S x S (bilinear, antialiased)."""
    import torch.nn.functional as F

    size = batch.shape[-1]
    x0, y0, x1, y1 = (int(round(v * size)) for v in region)
    crop = batch[:, :, y0:y1, x0:x1]
    if crop.shape[-2:] == batch.shape[-2:]:
        return batch
    return F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class _ItemImages:
    """Map-style dataset for torch's DataLoader: position -> preprocessed (3, S, S) tensor."""

    def __init__(self, images: ImageInput) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, pos: int):
        im = self.images
        i = int(im.indices[pos])
        return preprocess([check_image(im.dataset.load_image(i), im.dataset.image_source(i))], im.spec)[0]


def _stack(items: list):
    import torch

    return torch.stack(items)


def feature_key(dataset: HashingDataset, indices: np.ndarray, spec: BackboneSpec,
                region: tuple[float, float, float, float] | None = None, layer: str = "features") -> str:
    ids = np.asarray(dataset.ids)[indices]
    h = hashlib.sha256()
    what = {"dataset": dataset.fingerprint(), "backbone": spec.to_dict(), "v": CACHE_VERSION}
    if region is not None:  # features of a region of each image (the whole image keeps its old keys)
        what["region"] = [float(v) for v in region]
    if layer != "features":  # the trunk's outputs (the features keep their old keys)
        what["layer"] = layer
    h.update(json.dumps(what, sort_keys=True, default=str).encode())
    for i in ids:
        h.update(str(i).encode() + b"\0")
    return h.hexdigest()[:24]


def extract_features(
    dataset: HashingDataset,
    indices: Sequence[int],
    spec: BackboneSpec,
    *,
    cache: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 64,
    progress: bool = True,
    region: tuple[float, float, float, float] | None = None,
    workers: int = 0,
    layer: str = "features",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Backbone features of ``dataset`` items ``indices`` (in that order), and their provenance.

    ``region`` = (x0, y0, x1, y1), fractions of the preprocessed image: the
    features of that crop of every image, resized back to the backbone's input
    size (region proposals; :func:`hashbench.features.regions.region_features`).
    ``workers``: image-reading processes (a torch DataLoader; 0 reads in this process).
    On CUDA the batches are pinned and copied without blocking, so reading, copying and
    the forward pass overlap. No mixed precision: features are cached and feed every
    method, so they are computed in float32 (the same numbers as without workers).

    ``layer="trunk"``: the outputs of the backbone's trunk (``split()[0]``), flattened
    to (n, C * h * w); ``info["shape"]`` is (C, h, w).

    Returns a float32 (len(indices), spec.dim) array (memory-mapped from the cache)
    and a dict recorded in every result: the backbone spec, the cache key and
    whether the cache was hit.
    """
    import torch

    from ..progress import progress_bar

    if layer not in ("features", "trunk"):
        raise ConfigError(f"layer must be 'features' or 'trunk', got {layer!r}")
    indices = np.asarray(indices, dtype=np.int64)
    root = Path(cache) if cache is not None else cache_dir()
    folder = root / "features"
    folder.mkdir(parents=True, exist_ok=True)
    key = feature_key(dataset, indices, spec, region, layer)
    path, meta_path = folder / f"{key}.npy", folder / f"{key}.json"
    info = {"backbone": spec.to_dict(), "description": spec.describe(), "stage": spec.stage, "cache_key": key,
            "dim": spec.dim}
    if region is not None:
        info["region"] = [float(v) for v in region]
    if layer != "features":
        info["layer"] = layer
    if path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            feats = np.load(path, mmap_mode="r")
            dim = spec.dim if layer == "features" else int(np.prod(meta.get("shape") or [-1]))
            if feats.shape == (indices.size, dim) and meta.get("key") == key:
                extra = {"shape": meta["shape"]} if layer != "features" else {}
                return feats, {**info, **extra, "cache_hit": True, "extract_s": meta.get("extract_s")}
        except (ValueError, OSError, json.JSONDecodeError, KeyError):
            pass  # unreadable cache entry: recompute it below
    dev = resolve_device(device)
    net = build_backbone(spec).to(dev).eval()
    if layer == "trunk":
        net = net.split()[0].eval()
    cuda = str(dev).startswith("cuda")
    fmt = torch.channels_last if spec.definition.library in CHANNELS_LAST and not cuda else torch.contiguous_format
    net = net.to(memory_format=fmt)
    images = ImageInput(dataset, indices, spec, workers=workers, pin_memory=cuda)
    shape: tuple[int, ...] = (spec.dim,)
    if layer == "trunk":
        with torch.inference_mode():
            probe = images.tensors([0])
            shape = tuple(net(probe.to(dev).contiguous(memory_format=fmt)).shape[1:])
        info["shape"] = list(shape)
    tmp = folder / f".{key}.{os.getpid()}.tmp.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(indices.size, int(np.prod(shape))))
    t0 = time.perf_counter()
    what = "features" if layer == "features" else "trunk outputs"
    bar = progress_bar(indices.size, f"{what} {dataset.name} ({spec.name})", "img", enabled=progress)
    try:
        with torch.inference_mode():
            for pos, batch in images.batches(batch_size):
                if region is not None:
                    batch = crop_region(batch, region)
                batch = batch.to(dev, non_blocking=cuda).contiguous(memory_format=fmt)
                feats = net(batch).float().cpu().reshape(len(pos), -1).numpy()
                if not np.isfinite(feats).all():
                    raise DataError(f"features of {dataset.name} items {pos[0]}..{pos[-1]} contain NaN/inf")
                out[pos] = feats
                bar.update(len(pos))
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        bar.close()
        if tmp.exists():
            tmp.unlink()
    elapsed = time.perf_counter() - t0
    atomic_write_json(meta_path, {"key": key, **info, "n": int(indices.size), "dataset": dataset.fingerprint(),
                                  "extract_s": elapsed, "cache_version": CACHE_VERSION})
    return np.load(path, mmap_mode="r"), {**info, "cache_hit": False, "extract_s": elapsed}


def trunk_outputs(dataset: HashingDataset, indices: Sequence[int], spec: BackboneSpec,
                  **extract_options: Any) -> tuple[np.ndarray, tuple[int, ...]]:
    """(n, C * h * w) outputs of the backbone's trunk for items ``indices`` (cached), and (C, h, w)."""
    outputs, info = extract_features(dataset, indices, spec, layer="trunk", **extract_options)
    return outputs, tuple(info["shape"])


def dataset_features(
    dataset: HashingDataset,
    indices: Sequence[int],
    spec: Any,
    **extract_options: Any,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The features of ``dataset`` items ``indices``: the dataset's own when it brings them, else extracted.

    A dataset read from a feature file (``features-file``) provides its
    matrix (:meth:`~hashbench.datasets.base.HashingDataset.precomputed_features`);
    every other dataset's images go through the backbone ``spec`` and the cache.
    """
    own = dataset.precomputed_features(np.asarray(indices, dtype=np.int64))
    if own is not None:
        return own
    return extract_features(dataset, indices, spec, **extract_options)
