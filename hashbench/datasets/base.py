"""What every dataset provides, and how the query/database/train roles are drawn.

A dataset is a sequence of items, each with an image, a set of user tags (or
none, for image-only datasets such as CIFAR-10) and ground-truth labels that are
used only for evaluation. Like torchvision's dataset classes, a dataset is
constructed from a ``root`` folder in the publisher's layout and exposes its
items by index; unlike them it also carries the benchmark protocol: the seeded
:class:`Split` into query, database and training roles.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from ..errors import ConfigError, DataError


@dataclass(frozen=True)
class Split:
    """Indices (into the dataset) of each role, and how they were drawn.

    ``database`` and ``train`` may be the same array (the paper's protocol: the
    training set is the retrieval database). ``query`` is disjoint from
    ``database`` whenever ``disjoint`` is True (checked on construction).
    """

    query: np.ndarray
    database: np.ndarray
    train: np.ndarray
    protocol: str
    seed: int
    disjoint: bool = True

    def __post_init__(self) -> None:
        for role in ("query", "database", "train"):
            arr = np.asarray(getattr(self, role), dtype=np.int64)
            if arr.ndim != 1 or arr.size == 0:
                raise DataError(f"split: the {role} role is empty")
            if np.unique(arr).size != arr.size:
                raise DataError(f"split: the {role} role lists an item twice")
            object.__setattr__(self, role, arr)
        if self.disjoint and np.intersect1d(self.query, self.database).size:
            raise DataError("split: query items leak into the database")

    def sizes(self) -> dict[str, int]:
        return {"query": int(self.query.size), "database": int(self.database.size), "train": int(self.train.size)}

    def to_json(self, ids: Sequence[str]) -> dict[str, Any]:
        """The split as item ids, so that another lab can load the exact same roles."""
        ids = np.asarray(ids)
        return {
            "protocol": self.protocol,
            "seed": int(self.seed),
            "disjoint": bool(self.disjoint),
            "sizes": self.sizes(),
            "query": ids[self.query].tolist(),
            "database": ids[self.database].tolist(),
            "train": ids[self.train].tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], ids: Sequence[str], *, source: str = "split") -> "Split":
        """Rebuild a split saved by :meth:`to_json` against a dataset's ids."""
        pos = {str(i): k for k, i in enumerate(ids)}
        roles = {}
        for role in ("query", "database", "train"):
            try:
                wanted = data[role]
            except KeyError:
                raise DataError(f"{source}: no '{role}' list") from None
            missing = [i for i in wanted if str(i) not in pos]
            if missing:
                raise DataError(
                    f"{source}: {len(missing)} {role} id(s) are not in the dataset (first: {missing[0]!r})"
                )
            roles[role] = np.array([pos[str(i)] for i in wanted], dtype=np.int64)
        return cls(
            protocol=str(data.get("protocol", "custom")),
            seed=int(data.get("seed", 0)),
            disjoint=bool(data.get("disjoint", True)),
            **roles,
        )


def random_split(
    n: int,
    n_query: int,
    *,
    seed: int,
    protocol: str,
    n_database: int | None = None,
    n_train: int | None = None,
    candidates: np.ndarray | None = None,
) -> Split:
    """The paper's protocol: queries drawn at random without looking at labels.

    The database is the remaining items (or the first ``n_database`` of a random
    order of them), and the training set is the database unless ``n_train`` asks
    for a random subset of it.
    """
    pool = np.arange(n, dtype=np.int64) if candidates is None else np.asarray(candidates, dtype=np.int64)
    need = n_query + (n_database or 0)
    if n_query <= 0:
        raise ConfigError(f"split: n_query must be positive, got {n_query}")
    if pool.size <= n_query or pool.size < need:
        raise DataError(
            f"split: {pool.size} eligible items cannot give {n_query} queries"
            + (f" and {n_database} database items" if n_database else " and a database")
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(pool)
    query = np.sort(order[:n_query])
    rest = order[n_query:]
    database = np.sort(rest if n_database is None else rest[:n_database])
    if n_train is None:
        train = database
    else:
        if n_train > database.size:
            raise DataError(f"split: n_train={n_train} exceeds the database size {database.size}")
        train = np.sort(rng.choice(database, size=n_train, replace=False))
    return Split(query=query, database=database, train=train, protocol=protocol, seed=seed)


class HashingDataset:
    """Base class of datasets.

    Subclasses set, in ``__init__``:

    ``ids``          list of n unique item ids (strings), stable across releases;
    ``labels``       (n, L) uint8 multi-label matrix, or (n,) int64 class vector;
    ``label_names``  L names (or the class names);
    ``tags``         n lists of (normalised) tag strings, or None for image-only data;
    ``config``       dict of every option that changes the items or the split;

    and implement :meth:`load_image` and :meth:`make_split`.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: preprocessing for the backbone: shorter side resized to ``default_resize``, then a
    #: centre crop of ``default_crop`` (torchvision's AlexNet recipe: 256 then 224; the paper says 227)
    default_resize: ClassVar[int] = 256
    default_crop: ClassVar[int] = 224
    #: backbone weights used unless the user says otherwise: "imagenet" or "random"
    default_weights: ClassVar[str] = "imagenet"
    #: the backbone (hashbench.features.networks) used unless the user says otherwise (``--backbone``)
    default_backbone: ClassVar[str] = "alexnet-fc2"
    #: options (keys of ``config``) that name a variant of the dataset in its results
    #: folder when they differ from the constructor's default (see :meth:`results_key`)
    variant_options: ClassVar[tuple[str, ...]] = ("protocol",)
    #: False for a dataset that brings its own feature matrix instead of images
    #: (``features-file``): methods that need images are refused on it
    has_images: ClassVar[bool] = True

    ids: list[str]
    labels: np.ndarray
    label_names: list[str]
    tags: list[list[str]] | None
    config: dict[str, Any]

    # ------------------------------------------------------------- items
    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_tags(self) -> bool:
        return self.tags is not None

    @property
    def multilabel(self) -> bool:
        return self.labels.ndim == 2

    def load_image(self, index: int) -> np.ndarray:  # pragma: no cover - abstract
        """The image of item ``index`` as an (H, W, 3) uint8 RGB array.

        Raises :class:`DataError` naming the file when it is missing or does not decode.
        """
        raise NotImplementedError

    def preprocessing(self, backbone: str) -> tuple[int, int]:
        """(resize, crop) of the images for ``backbone`` (a registry name): ``default_resize`` and
        ``default_crop`` unless the dataset says otherwise for some network."""
        return self.default_resize, self.default_crop

    def precomputed_features(self, indices: np.ndarray) -> tuple[np.ndarray, dict[str, Any]] | None:
        """The dataset's own feature rows ``indices`` and their provenance, or None.

        None (the default): features come from a backbone over the images.
        """
        return None

    def image_source(self, index: int) -> str:
        """Where item ``index``'s image comes from (a path), for error messages."""
        return f"{self.name}[{index}]"

    # ---------------------------------------------------------- protocol
    def make_split(self, seed: int = 0) -> Split:  # pragma: no cover - abstract
        raise NotImplementedError

    # -------------------------------------------------------- provenance
    def ids_digest(self) -> str:
        h = hashlib.sha256()
        for i in self.ids:
            h.update(str(i).encode())
            h.update(b"\0")
        return h.hexdigest()[:16]

    def fingerprint(self) -> dict[str, Any]:
        """Everything that identifies the items: recorded with every result."""
        return {
            "name": self.name,
            "config": self.config,
            "n_items": len(self),
            "ids_sha256": self.ids_digest(),
        }

    def fingerprint_key(self) -> str:
        from ..storage import json_digest

        return json_digest(self.fingerprint())

    def results_key(self) -> str:
        """The name of this dataset's folder in the results store.

        The dataset name, then each of :attr:`variant_options` whose value is
        not the constructor's default: the protocol as its value, the others
        as ``<option><value>`` (``mirflickr25k-cleaned``,
        ``mirflickr25k-label_set38``), so that runs of two variants share a
        results folder side by side instead of refusing to overwrite each other.
        """
        import inspect

        params = inspect.signature(type(self).__init__).parameters
        parts = [self.name]
        for option in self.variant_options:
            value = self.config.get(option)
            param = params.get(option)
            if value is None or (param is not None and str(param.default) == str(value)):
                continue
            parts.append(str(value) if option == "protocol" else f"{option}{value}")
        return "-".join(parts)

    def describe(self, split: Split | None = None) -> dict[str, Any]:
        """Counts and label statistics (``prepare`` prints these)."""
        out: dict[str, Any] = {"dataset": self.name, "items": len(self), "labels": len(self.label_names)}
        if self.multilabel:
            out["labels_per_item"] = float(self.labels.sum(axis=1).mean())
        if self.tags is not None:
            out["tags_per_item"] = float(np.mean([len(t) for t in self.tags]))
            out["tag_vocabulary"] = len({t for ts in self.tags for t in ts})
        if split is not None:
            out["split"] = split.sizes()
            out["relevant_pair_fraction"] = relevant_pair_fraction(
                self.labels[split.query], self.labels[split.database]
            )
        return out


def relevant_pair_fraction(query_labels: np.ndarray, db_labels: np.ndarray) -> float:
    """Fraction of query-database pairs that share a label (the chance level of mAP).

    One implementation for the whole suite: the evaluator's counting kernel.
    """
    from ..evaluation import chance_level

    return chance_level(query_labels, db_labels)


# ------------------------------------------------------------------ registry
_DATASETS: dict[str, Callable[..., HashingDataset]] = {}
_SUMMARIES: dict[str, str] = {}


def register_dataset(name: str, summary: str = "") -> Callable:
    """Decorator: register a dataset class or factory under ``name``."""

    def decorate(factory: Callable[..., HashingDataset]) -> Callable[..., HashingDataset]:
        if name in _DATASETS and _DATASETS[name] is not factory:
            raise ConfigError(f"two datasets claim the name {name!r}")
        _DATASETS[name] = factory
        _SUMMARIES[name] = summary or getattr(factory, "summary", "")
        return factory

    return decorate


def available_datasets() -> dict[str, str]:
    """Registered dataset names with a one-line summary each."""
    return dict(sorted(_SUMMARIES.items()))


def get_dataset(name: str, root: str | Path | None = None, **options: Any) -> HashingDataset:
    """Build a registered dataset. ``root`` is the folder of a real dataset's files."""
    try:
        factory = _DATASETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(_DATASETS))}"
        ) from None
    if root is not None:
        options["root"] = root
    return factory(**options)


@dataclass
class DatasetReport:
    """Problems found while loading (missing or corrupt images that were skipped)."""

    skipped: dict[str, str] = field(default_factory=dict)

    def add(self, item: str, reason: str) -> None:
        self.skipped[item] = reason
