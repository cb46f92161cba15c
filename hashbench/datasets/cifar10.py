"""CIFAR-10 (Krizhevsky, 2009), the python release ``cifar-10-python.tar.gz``.

Where to get it: https://www.cs.toronto.edu/~kriz/cifar.html. Extract the
archive into the ``root``::

    root/cifar-10-batches-py/data_batch_1 ... data_batch_5, test_batch, batches.meta

(``root`` may also be the ``cifar-10-batches-py`` folder itself.) Each batch is a
pickled dict with ``b"data"`` (N x 3072 uint8: the red, then green, then blue
32 x 32 plane of each image) and ``b"labels"`` (N class indices); ``batches.meta``
holds ``b"label_names"``. Those files are unpickled because pickle *is* the
official format; only these files are read this way, never results, and by a
restricted unpickler that resolves nothing but NumPy's array reconstruction
and the byte-string codec: a file that names any other global (``os.system``,
say) is refused before anything runs. ``prepare`` also checks them against the MD5 sums that
torchvision publishes for the same release (and the archive's, when
``--archives`` names its folder).

CIFAR-10 is image-only: ``tags`` is None, and the runner refuses methods that
learn from tags with an error naming the method.

Protocol ``"standard"`` (DSH, Liu et al., CVPR 2016; DPSH, Li et al., IJCAI 2016;
and most hashing papers since): the 60,000 images of the six batches form one
pool; 100 random images per class are the queries (1,000), the other 59,000 are
the database, and 500 random database images per class (5,000) train. The
sizes are the options ``n_query_per_class`` and ``n_train_per_class``.

Item ids are ``train-00000`` ... ``train-49999`` (data_batch_1..5 in order) and
``test-00000`` ... ``test-09999``, positions in the official release.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..storage import file_digest
from ._protocols import as_bool, check_choice, check_count, check_unknown, per_class_split
from ._tags import require_file
from .base import DatasetReport, HashingDataset, Split, register_dataset

BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
ARCHIVES = {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"}  # the MD5 torchvision checks too
_OPTIONS = ["protocol", "n_query_per_class", "n_train_per_class", "skip_corrupt"]


def official_md5s() -> dict[str, str]:
    """MD5 of each extracted file of the official release, as torchvision publishes them."""
    from torchvision.datasets import CIFAR10

    out = {name: md5 for name, md5 in CIFAR10.train_list + CIFAR10.test_list}
    out[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    return out


#: the only globals a CIFAR-10 batch refers to: NumPy's array reconstruction (old and new module
#: paths), and _codecs.encode, with which Python 3 writes bytes at pickle protocols below 3
_ALLOWED_GLOBALS = {
    (module, name)
    for module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                   "numpy._core.numeric")
    for name in ("ndarray", "dtype", "_reconstruct", "_frombuffer", "scalar")
} | {("_codecs", "encode")}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Plain containers and NumPy arrays; any other global is refused, so nothing else can run."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refers to {module}.{name}, which a CIFAR-10 batch never does")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    """One file of the official python release (see the module docstring)."""
    require_file(path, "CIFAR-10 batch file")
    try:
        with open(path, "rb") as f:
            obj = _ArraysOnlyUnpickler(f, encoding="bytes").load()
    except Exception as exc:  # a truncated, foreign or hostile file: name it
        raise DataError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{path}: not a CIFAR-10 python batch (a {type(obj).__name__}, expected a dict)")
    return obj


@register_dataset("cifar10", summary="CIFAR-10 python release: 60,000 32x32 images, 10 classes, no tags "
                                     "(image-only); 1,000 queries / 59,000 database / 5,000 train")
class Cifar10(HashingDataset):
    """CIFAR-10 from ``cifar-10-batches-py`` (see the module docstring for the layout and protocol).

    Parameters
    ----------
    root : the folder holding ``cifar-10-batches-py/`` (or that folder).
    protocol : "standard" (the only one).
    n_query_per_class, n_train_per_class : 100 and 500.
    skip_corrupt : accepted for uniformity; the images are arrays inside the batches,
        and a damaged batch is always an error naming the file.
    """

    name = "cifar10"
    summary = "CIFAR-10: 60,000 32x32 images in 10 classes, image-only (no tags)"
    archives = ARCHIVES

    def __init__(
        self,
        root: str | Path,
        *,
        protocol: str = "standard",
        n_query_per_class: int = 100,
        n_train_per_class: int = 500,
        skip_corrupt: bool = False,
        **unknown: Any,
    ) -> None:
        ds = "cifar10"
        check_unknown(ds, unknown, _OPTIONS)
        self.protocol = check_choice(ds, "protocol", protocol, ("standard",))
        self.n_query_per_class = check_count(ds, "n_query_per_class", n_query_per_class, 1)
        self.n_train_per_class = check_count(ds, "n_train_per_class", n_train_per_class, 1)
        as_bool(ds, "skip_corrupt", skip_corrupt)
        self.config = {
            "protocol": self.protocol, "n_query_per_class": self.n_query_per_class,
            "n_train_per_class": self.n_train_per_class,
        }
        self.report = DatasetReport()
        root = Path(root).expanduser()
        folder = root / "cifar-10-batches-py"
        if not folder.is_dir() and (root / "batches.meta").is_file():
            folder = root
        self.folder = folder
        meta = _unpickle(folder / "batches.meta")
        try:
            self.label_names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[b"label_names"]]
        except KeyError:
            raise DataError(f"{folder / 'batches.meta'}: no b'label_names' entry") from None
        data, labels, self.ids, n_train = [], [], [], 0
        for name in BATCHES:
            path = folder / name
            batch = _unpickle(path)
            try:
                x = np.asarray(batch[b"data"])
                y = np.asarray(batch[b"labels"], dtype=np.int64)
            except KeyError as exc:
                raise DataError(f"{path}: no {exc.args[0]!r} entry (expected b'data' and b'labels')") from None
            if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072 or y.shape != (x.shape[0],):
                raise DataError(
                    f"{path}: expected b'data' of shape (N, 3072) uint8 and N labels, got {x.shape} {x.dtype} "
                    f"and {y.shape[0]} labels"
                )
            if y.size and (y.min() < 0 or y.max() >= len(self.label_names)):
                raise DataError(f"{path}: a label outside 0..{len(self.label_names) - 1}")
            prefix = "test" if name == "test_batch" else "train"
            start = n_train if prefix == "train" else 0
            self.ids.extend(f"{prefix}-{start + k:05d}" for k in range(x.shape[0]))
            n_train += x.shape[0] if prefix == "train" else 0
            data.append(x)
            labels.append(y)
        self._data = np.concatenate(data)
        self.labels = np.concatenate(labels)
        self.tags = None
        self.source = {"root": str(root), "folder": str(folder)}
        if self._data.shape[0] != 60000:
            self.source["note"] = f"{self._data.shape[0]} images; the official release has 60000"

    def load_image(self, index: int) -> np.ndarray:
        """(32, 32, 3) uint8: the stored row is three 32x32 planes (R, G, B), row-major."""
        return self._data[int(index)].reshape(3, 32, 32).transpose(1, 2, 0).copy()

    def image_source(self, index: int) -> str:
        i = int(index)
        return f"{self.folder}/{self.ids[i]} (row {i} of the batches)"

    @property
    def skipped(self) -> dict[str, str]:
        return self.report.skipped

    def verify_files(self) -> dict[str, str]:
        """{file: "ok" | "MD5 mismatch ..."} for each extracted file, against the official sums."""
        out = {}
        for name, md5 in official_md5s().items():
            got = file_digest(self.folder / name, "md5")
            out[name] = "ok (MD5 matches the official release)" if got == md5 else f"MD5 {got}, official {md5}"
        return out

    def describe(self, split: Split | None = None) -> dict[str, Any]:
        out = super().describe(split)
        out["source"] = self.source
        return out

    def make_split(self, seed: int = 0) -> Split:
        return per_class_split(
            self.labels, self.n_query_per_class, self.n_train_per_class, seed=seed,
            protocol="cifar10-standard", class_names=self.label_names,
        )
