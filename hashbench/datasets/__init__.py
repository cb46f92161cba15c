"""Datasets: the embedded synthetic default and loaders for the real ones.

Importing this package registers every built-in dataset.
"""

from .base import (
    HashingDataset,
    Split,
    available_datasets,
    get_dataset,
    random_split,
    register_dataset,
    relevant_pair_fraction,
)
from . import synthetic  # noqa: F401  (registers "synthetic")
from . import cifar10, manifest, mirflickr, nuswide  # noqa: F401,E402  (register the real datasets)
from . import feature_file  # noqa: F401,E402  (registers "features-file")

__all__ = [
    "HashingDataset",
    "Split",
    "available_datasets",
    "get_dataset",
    "random_split",
    "register_dataset",
    "relevant_pair_fraction",
]
