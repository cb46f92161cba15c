"""Shared test fixtures: a tiny registered dataset and an isolated cache."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
os.environ.setdefault("TQDM_DISABLE", "1")
# as the command line does: idle OpenMP threads sleep rather than spin (a shared CI machine)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from hashbench.datasets import HashingDataset, random_split, register_dataset  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@register_dataset("tiny-test", summary="tests only: coloured blocks, 4 classes")
class TinyDataset(HashingDataset):
    """A few dozen 64-px images of 4 colour classes, with tags (or none)."""

    name = "tiny-test"
    summary = "tests only"
    default_resize = 64
    default_crop = 64
    default_weights = "random"

    COLOURS = np.array([[220, 40, 40], [40, 200, 60], [50, 60, 230], [230, 220, 40]], dtype=np.uint8)
    WORDS = ["red", "green", "blue", "yellow"]

    def __init__(self, n_items: int = 80, n_query: int = 16, with_tags: bool = True, seed: int = 0,
                 protocol: str = "random") -> None:
        rng = np.random.default_rng(seed)
        self.n_query = n_query
        self.classes = rng.integers(0, 4, size=n_items)
        self.ids = [f"tiny{i:04d}" for i in range(n_items)]
        self.labels = np.eye(4, dtype=np.uint8)[self.classes]
        self.label_names = list(self.WORDS)
        noise = ["canon", "nikon", "2008", "explore"]
        self.tags = (
            [[self.WORDS[c], noise[rng.integers(0, 4)]] for c in self.classes] if with_tags else None
        )
        self.config = {"n_items": n_items, "n_query": n_query, "with_tags": with_tags, "seed": seed,
                       "protocol": protocol}
        self._seed = seed

    def load_image(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self._seed, index])
        img = rng.integers(0, 60, size=(64, 64, 3)).astype(np.uint8)
        y, x = rng.integers(0, 32, size=2)
        img[y : y + 32, x : x + 32] = self.COLOURS[self.classes[index]]
        return img

    def make_split(self, seed: int = 0):
        return random_split(len(self), self.n_query, seed=seed, protocol="random")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Every test run gets its own feature/word-vector cache (shared within the session)."""
    cache = tmp_path_factory.mktemp("hashbench-cache")
    old = os.environ.get("HASHBENCH_CACHE")
    os.environ["HASHBENCH_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("HASHBENCH_CACHE", None)
    else:
        os.environ["HASHBENCH_CACHE"] = old


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny torch matrices run faster on one thread, and a shared 2-core machine stays responsive.

    Modules of small deep-method tests opt in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
