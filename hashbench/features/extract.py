"""The features stage: backbone features of a dataset's items, cached on disk.

Features are computed once per (dataset items, backbone, weights,
preprocessing) and stored as ``<cache>/features/<key>.npy`` with a JSON sidecar
that says what they are. A second run with the same key reads them back
(memory-mapped) instead of recomputing.
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
from ..errors import DataError
from ..storage import atomic_write_json, cache_dir
from .backbone import BackboneSpec, build_backbone, check_image, preprocess, resolve_device

CACHE_VERSION = 3  # 2: FC1 folded when conv5 is 1x1 (other float rounding); 3: random weights He-initialised


class ImageInput:
    """The images of some dataset items, as the backbone sees them.

    This is what an image-using method (end-to-end UDHT) receives in ``fit`` and
    ``encode``: it yields preprocessed tensors and builds the very backbone (same
    weights, same preprocessing) that produced the cached features.
    """

    def __init__(self, dataset: HashingDataset, indices: Sequence[int], spec: BackboneSpec) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        self.spec = spec

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
        for s in range(0, len(order), batch_size):
            pos = order[s : s + batch_size]
            yield pos, self.tensors(pos)

    def build_backbone(self):
        return build_backbone(self.spec)


def feature_key(dataset: HashingDataset, indices: np.ndarray, spec: BackboneSpec) -> str:
    ids = np.asarray(dataset.ids)[indices]
    h = hashlib.sha256()
    h.update(json.dumps({"dataset": dataset.fingerprint(), "backbone": spec.to_dict(), "v": CACHE_VERSION},
                        sort_keys=True, default=str).encode())
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
) -> tuple[np.ndarray, dict[str, Any]]:
    """Backbone features of ``dataset`` items ``indices`` (in that order), and their provenance.

    Returns a float32 (len(indices), spec.dim) array (memory-mapped from the cache)
    and a dict recorded in every result: the backbone spec, the cache key and
    whether the cache was hit.
    """
    import torch
    from tqdm.auto import tqdm

    indices = np.asarray(indices, dtype=np.int64)
    root = Path(cache) if cache is not None else cache_dir()
    folder = root / "features"
    folder.mkdir(parents=True, exist_ok=True)
    key = feature_key(dataset, indices, spec)
    path, meta_path = folder / f"{key}.npy", folder / f"{key}.json"
    info = {"backbone": spec.to_dict(), "description": spec.describe(), "cache_key": key, "dim": spec.dim}
    if path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            feats = np.load(path, mmap_mode="r")
            if feats.shape == (indices.size, spec.dim) and meta.get("key") == key:
                return feats, {**info, "cache_hit": True, "extract_s": meta.get("extract_s")}
        except (ValueError, OSError, json.JSONDecodeError):
            pass  # unreadable cache entry: recompute it below
    dev = resolve_device(device)
    net = build_backbone(spec).to(dev).eval()
    tmp = folder / f".{key}.{os.getpid()}.tmp.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(indices.size, spec.dim))
    images = ImageInput(dataset, indices, spec)
    t0 = time.perf_counter()
    bar = tqdm(total=indices.size, desc=f"features {dataset.name} ({spec.name})", unit="img", disable=not progress)
    try:
        with torch.inference_mode():
            for pos, batch in images.batches(batch_size):
                feats = net(batch.to(dev)).float().cpu().numpy()
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
                                  "extract_s": elapsed})
    return np.load(path, mmap_mode="r"), {**info, "cache_hit": False, "extract_s": elapsed}


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
