"""``features-file``: a dataset read from a feature matrix on disk instead of images.

Researchers often start from feature files: the ``.mat`` files of the MATLAB
hashing suites, ``.npy``/``.npz``/``.h5`` files from their own extractors. This
dataset reads one such file -- a feature matrix with its labels and, optionally,
tags, item ids and a split -- and hands the matrix to the runner as the
features (no backbone runs). Methods that learn from features (and tags, when
the file has them) run on it; methods that need images are refused with a
clear error.

Usage::

    python -m hashbench run --dataset features-file --data-root feats.mat \\
        -D features=fc7 -D labels=gnd --methods itq,lsh --bits 32

Formats (by extension):

* ``.npz``: arrays by name (``np.savez``);
* ``.npy``: the file is the feature matrix; ``-D labels=labels.npy`` names the
  label file (and ``-D ids=``/``-D tags=`` other ``.npy`` files), relative to
  the features file's folder;
* ``.mat``: MATLAB v5/v7 through :func:`scipy.io.loadmat`; MATLAB v7.3 (an
  HDF5 file) through h5py, its arrays transposed back to MATLAB's
  orientation (HDF5 stores MATLAB's column-major arrays with the axes reversed);
* ``.h5``/``.hdf5``: datasets by name (a ``group/name`` path works) through
  h5py, as written (row-major, items along the first axis).

Variables (``-D NAME=VARIABLE``; the default is the first candidate present):

==============  =============================================  ====================================
option          default candidates                             content
==============  =============================================  ====================================
``features``    features, feats, feat, X, data, fc7, fc2       (n, d) numeric; items are rows
``labels``      labels, label, Y, gnd, L                       (n,) class ids or (n, L) 0/1 matrix
``tags``        tags                                           (n, T) 0/1 tag matrix (optional)
``tag_names``   tag_names                                      T strings (optional; else tag0..)
``ids``         ids                                            n unique item ids (optional; else
                                                               row numbers "0".."n-1")
``query``,      query_index, database_index, train_index      row indices of each role (optional;
``database``,                                                  all three or none)
``train``
==============  =============================================  ====================================

The train/test layout of the MATLAB suites (Liu et al.'s AGH/DGH code and
its descendants: ``traindata``, ``testdata``, ``traingnd``, ``testgnd``) is
recognised when the file has those four variables and no ``features`` option
is given (``-D layout=train-test`` forces it, ``-D layout=matrix`` turns it
off): the items are the training rows then the test rows; the test rows are
the queries, the training rows both the database and the training set.

Split: a split stored in the file (index variables or the train/test layout)
is used as is (``protocol`` "file"); otherwise a seeded random split draws
``n_query`` queries (default ``min(1000, n // 10)``), the rest being database
and training set, as the other datasets do. ``--split`` loads a split saved by
hashbench (``results/<dataset>/splits/*.json``) against the file's ``ids``.
Index variables are 0-based in ``.npz``/``.h5`` files and 1-based in ``.mat``
files (MATLAB's convention); ``-D index_base=0|1`` overrides.

``-D transpose=true`` reads a (d, n) features matrix (items as columns).

Bad input is a :class:`~hashbench.errors.DataError` naming the file and the
variable: a missing variable (listing the variables the file has), features
and labels of different lengths, rows with NaN or inf (how many, the first),
labels that are neither class ids nor a 0/1 matrix, duplicate ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, DataError
from ..storage import file_digest
from .base import HashingDataset, Split, random_split, register_dataset

CANDIDATES: dict[str, tuple[str, ...]] = {
    "features": ("features", "feats", "feat", "X", "data", "fc7", "fc2"),
    "labels": ("labels", "label", "Y", "gnd", "L"),
    "tags": ("tags",),
    "tag_names": ("tag_names",),
    "ids": ("ids",),
    "query": ("query_index",),
    "database": ("database_index",),
    "train": ("train_index",),
}
TRAIN_TEST = ("traindata", "testdata", "traingnd", "testgnd")
EXTENSIONS = (".npy", ".npz", ".mat", ".h5", ".hdf5")


# ------------------------------------------------------------------ readers
class _Reader:
    """Named arrays of one file, whatever its format."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kind = path.suffix.lower()
        self.matlab_hdf5 = False
        self._h5 = None
        if self.kind == ".npz":
            try:
                self._npz = np.load(path, allow_pickle=False)
            except Exception as exc:
                raise DataError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from exc
            self._names = list(self._npz.files)
        elif self.kind == ".npy":
            self._names = []
        elif self.kind in (".mat", ".h5", ".hdf5"):
            import h5py

            if h5py.is_hdf5(path):
                self.matlab_hdf5 = self.kind == ".mat"
                self._h5 = h5py.File(path, "r")
                names: list[str] = []
                self._h5.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset) else None)
                self._names = [n for n in names if not n.startswith("#refs#")]
            elif self.kind == ".mat":
                from scipy.io import loadmat

                try:
                    self._mat = loadmat(path)
                except Exception as exc:
                    raise DataError(f"{path}: not a readable MATLAB file ({type(exc).__name__}: {exc})") from exc
                self._names = [k for k in self._mat if not k.startswith("__")]
            else:
                raise DataError(f"{path}: not an HDF5 file")
        else:
            raise ConfigError(f"{path}: unsupported feature file type {path.suffix!r}; use one of {', '.join(EXTENSIONS)}")

    def names(self) -> list[str]:
        return list(self._names)

    def has(self, name: str) -> bool:
        return name in self._names

    def get(self, name: str) -> np.ndarray:
        if not self.has(name):
            raise DataError(
                f"{self.path}: no variable {name!r}; the file has: {', '.join(sorted(self._names)) or '(nothing)'}"
            )
        if self.kind == ".npz":
            return np.asarray(self._npz[name])
        if self._h5 is not None:
            ds = self._h5[name]
            if ds.dtype.kind == "O" or ds.dtype.names:
                raise DataError(f"{self.path}: variable {name!r} is a cell array or struct; store it as a "
                                "numeric or character matrix")
            arr = np.asarray(ds[()])
            if self.matlab_hdf5:
                arr = arr.T  # MATLAB column-major -> the axes MATLAB shows
                if ds.attrs.get("MATLAB_class", b"") in (b"char", "char"):
                    arr = np.array(["".join(map(chr, row)).rstrip("\0 ") for row in np.atleast_2d(arr)])
            return arr
        arr = self._mat[name]
        if arr.dtype.kind == "O":  # a cell array of strings
            try:
                return np.array([str(np.squeeze(v)) for v in arr.ravel()])
            except Exception as exc:  # pragma: no cover - exotic cells
                raise DataError(f"{self.path}: variable {name!r}: cannot read this cell array ({exc})") from exc
        if arr.dtype.kind == "U":  # a char matrix: one padded string per row
            return np.array([s.rstrip() for s in arr])
        return arr

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()


def _sibling(path: Path, name: str, what: str) -> np.ndarray:
    """A companion .npy file of a .npy features file (``-D labels=labels.npy``)."""
    other = Path(name) if Path(name).is_absolute() else path.parent / name
    if not other.is_file():
        raise DataError(f"{path}: the {what} file {other} does not exist (give -D {what}=FILE.npy)")
    try:
        return np.load(other, allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{other}: cannot be read as the {what} of {path} ({type(exc).__name__}: {exc})") from exc


# ------------------------------------------------------------------ checks
def _id_text(v: Any) -> str:
    """An item id as text: bytes decoded (HDF5 strings), integral floats without ".0" (MATLAB doubles)."""
    if isinstance(v, bytes):
        return v.decode("utf-8").strip()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _check_labels(arr: np.ndarray, where: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.dtype.kind not in "biuf":
        raise DataError(f"{where}: labels must be numeric, got dtype {a.dtype}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DataError(f"{where}: labels contain NaN or inf")
    if a.ndim == 1:
        if a.dtype.kind == "f" and not np.all(a == np.round(a)):
            raise DataError(f"{where}: class labels must be integers, got non-integral values")
        return a.astype(np.int64)
    if a.ndim == 2:
        if not np.isin(a, (0, 1)).all():
            raise DataError(f"{where}: a label matrix must hold only 0 and 1 (one column per label)")
        return a.astype(np.uint8)
    raise DataError(f"{where}: labels must be a vector or an (items, labels) matrix, got shape {a.shape}")


def _check_finite_rows(x: np.ndarray, where: str) -> None:
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(f"{where}: {rows.size} row(s) contain NaN or inf (first: row {int(rows[0])})")


@dataclass(frozen=True)
class ProvidedFeatures:
    """Stands where a :class:`~hashbench.features.BackboneSpec` would: the features came from a file."""

    file: str
    sha256: str
    variable: str
    dim: int
    name: str = "features-file"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "weights": "precomputed", "file": self.file, "sha256": self.sha256,
                "variable": self.variable, "dim": self.dim}

    def describe(self) -> str:
        return f"precomputed features from {self.file} (variable {self.variable}, {self.dim}-d); no backbone run"


# ------------------------------------------------------------------ dataset
@register_dataset("features-file", "a feature matrix with labels (and optionally tags, ids, a split) "
                                   "from .npy/.npz/.mat/.h5: --data-root FILE, -D features=VAR -D labels=VAR")
class FeatureFileDataset(HashingDataset):
    """A dataset whose items are the rows of a feature file (see the module docstring)."""

    name = "features-file"
    summary = "precomputed features from a file"
    has_images: ClassVar[bool] = False
    default_weights = "precomputed"
    variant_options = ()

    def __init__(
        self,
        root: str | Path | None = None,
        features: str | None = None,
        labels: str | None = None,
        tags: str | None = None,
        tag_names: str | None = None,
        ids: str | None = None,
        query: str | None = None,
        database: str | None = None,
        train: str | None = None,
        layout: str = "auto",
        transpose: bool = False,
        index_base: int | None = None,
        n_query: int | None = None,
    ) -> None:
        if root is None:
            raise ConfigError("features-file: give the file with --data-root FILE (.npy, .npz, .mat or .h5)")
        path = Path(root).expanduser()
        if not path.is_file():
            raise DataError(f"features-file: {path}: no such file")
        if layout not in ("auto", "matrix", "train-test"):
            raise ConfigError(f"features-file: layout must be auto, matrix or train-test, got {layout!r}")
        if not isinstance(transpose, bool):
            raise ConfigError(f"features-file: transpose must be true or false, got {transpose!r}")
        if index_base not in (None, 0, 1):
            raise ConfigError(f"features-file: index_base must be 0 or 1, got {index_base!r}")
        if n_query is not None and (isinstance(n_query, bool) or not isinstance(n_query, int) or n_query < 1):
            raise ConfigError(f"features-file: n_query must be a positive integer, got {n_query!r}")
        self.path = path
        reader = _Reader(path)
        try:
            self._read(reader, features=features, labels=labels, tags=tags, tag_names=tag_names, ids=ids,
                       roles={"query": query, "database": database, "train": train}, layout=layout,
                       transpose=transpose, index_base=index_base)
        finally:
            reader.close()
        n = len(self.ids)
        self.n_query = n_query if n_query is not None else max(1, min(1000, n // 10))
        self._sha = file_digest(path)[:16]
        self.config = {
            "file": path.name,
            "sha256": self._sha,
            "variables": self.variables,
            "layout": self.layout,
            "transpose": transpose,
            "n_query": None if self._file_split is not None else self.n_query,
        }

    # ---------------------------------------------------------------- reading
    def _pick(self, reader: _Reader, option: str, given: str | None, *, required: bool) -> str | None:
        if given is not None:
            if reader.kind != ".npy" and not reader.has(given):
                raise DataError(f"{self.path}: no variable {given!r} (-D {option}={given}); the file has: "
                                f"{', '.join(sorted(reader.names())) or '(nothing)'}")
            return given
        for cand in CANDIDATES[option]:
            if reader.has(cand):
                return cand
        if required:
            raise DataError(
                f"{self.path}: no {option} variable among the default names ({', '.join(CANDIDATES[option])}); "
                f"the file has: {', '.join(sorted(reader.names())) or '(nothing)'}. Name it with -D {option}=VARIABLE"
            )
        return None

    def _array(self, reader: _Reader, option: str, var: str) -> np.ndarray:
        if reader.kind == ".npy":
            return _sibling(self.path, var, option)
        return reader.get(var)

    def _read(self, reader: _Reader, *, features, labels, tags, tag_names, ids, roles, layout, transpose,
              index_base) -> None:
        use_tt = layout == "train-test" or (
            layout == "auto" and features is None and all(reader.has(v) for v in TRAIN_TEST))
        self.layout = "train-test" if use_tt else "matrix"
        self._file_split: dict[str, np.ndarray] | None = None
        if use_tt:
            parts = {v: reader.get(v) for v in TRAIN_TEST}
            xs = []
            for v in ("traindata", "testdata"):
                x = np.asarray(parts[v])
                xs.append(x.T if transpose else x)
            ys = [_check_labels(parts[v], f"{self.path}: variable {v!r}") for v in ("traingnd", "testgnd")]
            for x, y, vx, vy in zip(xs, ys, ("traindata", "testdata"), ("traingnd", "testgnd")):
                self._check_pair(x, y, vx, vy)
            if xs[0].shape[1] != xs[1].shape[1]:
                raise DataError(f"{self.path}: traindata has {xs[0].shape[1]} columns, testdata {xs[1].shape[1]}")
            x = np.concatenate(xs)
            y = np.concatenate(ys)
            n_tr = xs[0].shape[0]
            train = np.arange(n_tr)
            self._file_split = {"query": np.arange(n_tr, x.shape[0]), "database": train, "train": train}
            self.variables = {k: k for k in TRAIN_TEST}
            fvar = "traindata+testdata"
        else:
            if reader.kind == ".npy":
                try:
                    x = np.load(self.path, allow_pickle=False)
                except Exception as exc:
                    raise DataError(f"{self.path}: not a readable .npy file ({type(exc).__name__}: {exc})") from exc
                fvar = self.path.name
                if labels is None:
                    raise DataError(f"{self.path}: a .npy file holds only the features; give the labels "
                                    "with -D labels=LABELS.npy")
                lvar = labels
            else:
                fvar = self._pick(reader, "features", features, required=True)
                lvar = self._pick(reader, "labels", labels, required=True)
                x = reader.get(fvar)
            x = np.asarray(x)
            if x.ndim != 2:
                raise DataError(f"{self.path}: variable {fvar!r}: features must be a 2-D matrix, got shape {x.shape}")
            x = x.T if transpose else x
            y = _check_labels(self._array(reader, "labels", lvar), f"{self.path}: variable {lvar!r}")
            self._check_pair(x, y, fvar, lvar)
            self.variables = {"features": fvar, "labels": lvar}
            role_vars = {r: (self._pick(reader, r, v, required=False) if reader.kind != ".npy" else v)
                         for r, v in roles.items()}
            if any(v is not None for v in role_vars.values()):
                missing = [r for r, v in role_vars.items() if v is None]
                if missing:
                    raise DataError(f"{self.path}: a split needs query, database and train indices; "
                                    f"missing: {', '.join(missing)}")
                base = index_base if index_base is not None else (1 if reader.kind == ".mat" else 0)
                self._file_split = {}
                for r, v in role_vars.items():
                    idx = np.asarray(self._array(reader, r, v)).reshape(-1)
                    where = f"{self.path}: variable {v!r} ({r} indices)"
                    if idx.dtype.kind not in "iuf" or (idx.dtype.kind == "f" and not np.all(idx == np.round(idx))):
                        raise DataError(f"{where}: must be integers")
                    idx = idx.astype(np.int64) - base
                    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[0]):
                        raise DataError(f"{where}: out of range for {x.shape[0]} rows (index base {base}; "
                                        "-D index_base=0|1)")
                    self._file_split[r] = idx
                    self.variables[r] = v
        if x.dtype.kind not in "biuf":
            raise DataError(f"{self.path}: variable {fvar!r}: features must be numeric, got dtype {x.dtype}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        _check_finite_rows(x, f"{self.path}: variable {fvar!r}")
        self._features = x
        self._fvar = fvar
        self.labels = y
        n = x.shape[0]
        self.label_names = ([str(c) for c in np.unique(y)] if y.ndim == 1 else [f"label{j}" for j in range(y.shape[1])])
        # ids
        ivar = ids if reader.kind == ".npy" else self._pick(reader, "ids", ids, required=False)
        if ivar is not None and not use_tt:
            raw = np.asarray(self._array(reader, "ids", ivar)).reshape(-1)
            if raw.shape[0] != n:
                raise DataError(f"{self.path}: variable {ivar!r}: {raw.shape[0]} ids for {n} feature rows")
            self.ids = [_id_text(v) for v in raw.tolist()]
            if len(set(self.ids)) != n:
                raise DataError(f"{self.path}: variable {ivar!r}: ids are not unique")
            self.variables["ids"] = ivar
        else:
            self.ids = [str(i) for i in range(n)]
        # tags: a 0/1 matrix, one column per tag
        tvar = tags if reader.kind == ".npy" else self._pick(reader, "tags", tags, required=False)
        self.tags = None
        if tvar is not None:
            t = np.asarray(self._array(reader, "tags", tvar))
            where = f"{self.path}: variable {tvar!r}"
            if t.ndim != 2 or t.shape[0] != n:
                raise DataError(f"{where}: tags must be an ({n}, T) 0/1 matrix, got shape {t.shape}")
            if not np.isin(t, (0, 1)).all():
                raise DataError(f"{where}: the tag matrix must hold only 0 and 1")
            nvar = tag_names if reader.kind == ".npy" else self._pick(reader, "tag_names", tag_names, required=False)
            # _id_text: HDF5 stores strings as bytes (str() would name a tag "b'sky'", a word no vector knows)
            names = ([_id_text(s) for s in np.asarray(self._array(reader, "tag_names", nvar)).reshape(-1).tolist()]
                     if nvar is not None else [f"tag{j}" for j in range(t.shape[1])])
            if len(names) != t.shape[1]:
                raise DataError(f"{self.path}: variable {nvar!r}: {len(names)} tag names for {t.shape[1]} tag columns")
            cols = np.asarray(names)
            self.tags = [cols[np.flatnonzero(row)].tolist() for row in t.astype(bool)]
            self.variables["tags"] = tvar

    def _check_pair(self, x: np.ndarray, y: np.ndarray, fvar: str, lvar: str) -> None:
        if x.ndim != 2:
            raise DataError(f"{self.path}: variable {fvar!r}: features must be a 2-D matrix, got shape {x.shape}")
        if x.shape[0] != y.shape[0]:
            hint = (" (the features look transposed: items as columns; add -D transpose=true)"
                    if x.shape[1] == y.shape[0] else "")
            raise DataError(f"{self.path}: variable {fvar!r} has {x.shape[0]} rows but labels variable {lvar!r} "
                            f"has {y.shape[0]}{hint}")

    # --------------------------------------------------------------- dataset
    def load_image(self, index: int) -> np.ndarray:
        raise DataError(f"{self.path}: a features-file dataset has no images (item {index})")

    def image_source(self, index: int) -> str:
        return f"{self.path}[row {index}]"

    def results_key(self) -> str:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", self.path.stem)
        return f"{self.name}-{stem}"

    def feature_spec(self) -> ProvidedFeatures:
        return ProvidedFeatures(file=self.path.name, sha256=self._sha, variable=self._fvar,
                                dim=int(self._features.shape[1]))

    def precomputed_features(self, indices: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        spec = self.feature_spec()
        info = {"backbone": spec.to_dict(), "description": spec.describe(),
                "cache_key": f"file:{spec.file}@{spec.sha256}", "dim": spec.dim, "cache_hit": True, "extract_s": 0.0,
                "provided": True}  # read from the dataset's own file: nothing extracted, nothing cached
        return self._features[np.asarray(indices, dtype=np.int64)], info

    def make_split(self, seed: int = 0) -> Split:
        if self._file_split is not None:
            try:
                return Split(protocol="file", seed=0, **self._file_split)
            except DataError as exc:
                raise DataError(f"{self.path}: the split stored in the file is not valid: {exc}") from None
        return random_split(len(self), self.n_query, seed=seed, protocol="random")
