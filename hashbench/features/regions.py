"""Region proposals and their backbone features, for instance-aware methods (IAH).

The generator is a fixed, deterministic multi-scale grid: the whole image plus
``grid`` x ``grid`` overlapping cells of side 2 / (grid + 1), at strides of
1 / (grid + 1) (``grid=2``: the whole image and its four corner crops of 2/3
of the side, M = 5). Why a grid and not EdgeBoxes or selective search (the
proposal generators of the IAH era): it needs nothing beyond torch, is exactly
reproducible offline on any machine, and on the embedded default's 64-px
scenes an edge-based generator has almost no structure to work with; the
labelled IAH design in ``shared/papers/iah.md`` names a fixed grid as the
cheap fallback. The features of each region are the backbone's FC2 output on
that crop resized back to the input size, computed once per (items, backbone,
region) through the feature cache like the whole-image features (region 0 is
the whole image, so it *is* the cached feature).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError


def grid_proposals(grid: int = 2) -> list[tuple[float, float, float, float]]:
    """(x0, y0, x1, y1) fractions: the whole image, then ``grid`` x ``grid`` overlapping cells, row by row."""
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 0:
        raise ConfigError(f"proposal grid must be a non-negative integer, got {grid!r}")
    boxes = [(0.0, 0.0, 1.0, 1.0)]
    if grid:
        step = 1.0 / (grid + 1)
        for r in range(grid):
            for c in range(grid):
                boxes.append((c * step, r * step, (c + 2) * step, (r + 2) * step))
    return boxes


def region_features(images: Any, proposals: list[tuple[float, float, float, float]], *,
                    extract: Callable[..., tuple[Any, dict[str, Any]]],
                    cache: str | Path | None = None, device: str = "auto",
                    progress: bool = False, workers: int = 0) -> np.ndarray:
    """(n, M, D) float32 backbone features of each proposal of each image of an ``ImageInput``.

    ``extract`` is :func:`hashbench.features.extract.extract_features` (passed in by
    ``ImageInput.region_features``, so that this module needs nothing from the one that calls it).
    """
    blocks = []
    for box in proposals:
        region = None if tuple(box) == (0.0, 0.0, 1.0, 1.0) else tuple(box)
        feats, _ = extract(images.dataset, images.indices, images.spec, cache=cache, device=device,
                           progress=progress, region=region, workers=workers)
        blocks.append(np.asarray(feats, dtype=np.float32))
    return np.stack(blocks, axis=1)
