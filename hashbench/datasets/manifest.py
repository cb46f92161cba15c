"""A user's own data: a folder of images and a manifest (CSV or JSON Lines).

Layout::

    root/
      manifest.csv          (or manifest.jsonl; or any file named by manifest=)
      photos/0001.jpg ...   paths in the manifest are relative to root (absolute paths work too)

CSV: a header row naming the columns ``path``, ``labels`` and, optionally,
``tags`` and ``id``; the list columns hold values separated by ``|`` (the
``separator`` option), e.g.::

    path,tags,labels
    photos/0001.jpg,beach|sunset|canon,sea|sky
    photos/0002.jpg,,dog

JSON Lines: one object per line with the same keys; ``tags`` and ``labels`` are
JSON lists (or strings split on the separator)::

    {"path": "photos/0001.jpg", "tags": ["beach", "sunset"], "labels": ["sea", "sky"]}

Without a ``tags`` column (or key on every line) the dataset is image-only and
tag-using methods are refused. Tags are lower-cased and counted once per item;
an item with no tags keeps an empty list unless ``min_tags`` asks for more.
Items with fewer than ``min_labels=1`` labels cannot be scored (nothing is
relevant to them) and are left out, with a warning that counts them. Label names
are sorted alphabetically into columns; with ``label_mode="auto"`` a manifest in
which every item has exactly one label gives a class vector (single-label data),
otherwise a multi-label 0/1 matrix.

Protocol ``"random"``: ``n_query`` random queries (default: 10% of the items, at
most 2,000), the database is the rest (or ``n_database`` of it), and the
training set is the database (or ``n_train`` random database items). The split
is seeded and blind to labels.

The manifest is read line by line; only kept items are stored.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import ConfigError, DataError
from ..storage import file_digest
from ._images import FileImageDataset
from ._protocols import as_bool, check_choice, check_count, check_unknown, sized_random_split
from ._tags import TagLists, normalise_tag, require_dir, require_file, unique_in_order
from .base import DatasetReport, Split, register_dataset

log = logging.getLogger("hashbench")
DEFAULT_NAMES = ("manifest.csv", "manifest.jsonl")
_OPTIONS = [
    "manifest", "protocol", "separator", "n_query", "n_database", "n_train", "min_tags", "min_labels",
    "label_mode", "skip_corrupt",
]


@register_dataset("manifest", summary="your own images: a folder plus manifest.csv / manifest.jsonl "
                                      "(columns path, tags, labels)")
class ManifestDataset(FileImageDataset):
    """A folder of images described by a manifest (see the module docstring for the formats).

    Parameters
    ----------
    root : the folder; paths in the manifest are relative to it.
    manifest : the manifest file (relative to root, or absolute); default manifest.csv,
        else manifest.jsonl, in root.
    separator : separator of the list values in CSV cells and JSON strings ("|").
    n_query, n_database, n_train : role sizes (see the module docstring).
    min_tags, min_labels : keep items with at least this many tags (0) and labels (1).
    label_mode : "auto", "multi" or "single".
    skip_corrupt : leave out (and report) images that are missing or do not decode,
        instead of stopping with an error naming the file.
    """

    name = "manifest"
    summary = "a user's own images and manifest"
    archives: dict[str, str | None] = {}

    def __init__(
        self,
        root: str | Path,
        *,
        manifest: str | Path | None = None,
        protocol: str = "random",
        separator: str = "|",
        n_query: int | None = None,
        n_database: int | None = None,
        n_train: int | None = None,
        min_tags: int = 0,
        min_labels: int = 1,
        label_mode: str = "auto",
        skip_corrupt: bool = False,
        **unknown: Any,
    ) -> None:
        ds = "manifest"
        check_unknown(ds, unknown, _OPTIONS)
        check_choice(ds, "protocol", protocol, ("random",))
        if not isinstance(separator, str) or len(separator) != 1 or separator in ",\"\n":
            raise ConfigError(f"manifest dataset: separator must be one character other than , \" or newline; "
                              f"got {separator!r}")
        self.min_tags = check_count(ds, "min_tags", min_tags, 0)
        self.min_labels = check_count(ds, "min_labels", min_labels, 0)
        label_mode = check_choice(ds, "label_mode", label_mode, ("auto", "multi", "single"))
        skip_corrupt = as_bool(ds, "skip_corrupt", skip_corrupt)
        root = require_dir(Path(root).expanduser(), "manifest dataset folder")
        path = self._manifest_path(root, manifest)
        self.report = DatasetReport()

        ids, paths, tags, labels, has_tags = [], [], [], [], None
        dropped = 0
        seen: dict[str, int] = {}
        for lineno, row in self._rows(path, separator):
            if has_tags is None:
                has_tags = row["tags"] is not None
            elif has_tags != (row["tags"] is not None):
                raise DataError(f"{path}: line {lineno}: 'tags' given on some lines but not on others")
            item_tags = unique_in_order(normalise_tag(t) for t in (row["tags"] or []))
            item_labels = sorted({lab.strip() for lab in row["labels"] if lab.strip()})
            item_id = row["id"] or row["path"]
            if item_id in seen:
                raise DataError(f"{path}: line {lineno}: item {item_id!r} already on line {seen[item_id]}")
            seen[item_id] = lineno
            if len(item_tags) < self.min_tags or len(item_labels) < self.min_labels:
                dropped += 1
                continue
            ids.append(item_id)
            p = Path(row["path"]).expanduser()
            paths.append(str(p if p.is_absolute() else root / p))
            tags.append(item_tags)
            labels.append(item_labels)
        if not ids:
            raise DataError(f"{path}: no item left (after min_tags={self.min_tags}, min_labels={self.min_labels})")
        if dropped:
            log.warning("manifest %s: %d item(s) left out for having fewer than %d tag(s) or %d label(s)",
                        path, dropped, self.min_tags, self.min_labels)

        present = np.array([Path(p).is_file() for p in paths])
        keep = self._screen_images(ids, paths, present, skip_corrupt=skip_corrupt, missing_is_error=True)
        rows = np.flatnonzero(keep)
        self.ids = [ids[i] for i in rows]
        self.paths = [paths[i] for i in rows]
        self.tags = TagLists.from_lists(tags[i] for i in rows) if has_tags else None
        kept_labels = [labels[i] for i in rows]
        self.label_names = sorted({lab for labs in kept_labels for lab in labs})
        column = {name: k for k, name in enumerate(self.label_names)}
        single = all(len(labs) == 1 for labs in kept_labels)
        if label_mode == "single" and not single:
            bad = next(i for i, labs in enumerate(kept_labels) if len(labs) != 1)
            raise DataError(
                f"{path}: label_mode=single, but item {self.ids[bad]!r} has {len(kept_labels[bad])} labels"
            )
        if label_mode == "single" or (label_mode == "auto" and single):
            self.labels = np.array([column[labs[0]] for labs in kept_labels], dtype=np.int64)
        else:
            self.labels = np.zeros((len(self.ids), len(self.label_names)), dtype=np.uint8)
            r = np.repeat(np.arange(len(kept_labels)), [len(labs) for labs in kept_labels])
            c = np.array([column[lab] for labs in kept_labels for lab in labs], dtype=np.int64)
            self.labels[r, c] = 1

        n = len(self.ids)
        self.n_query = check_count(ds, "n_query", min(2000, max(1, n // 10)) if n_query is None else n_query, 1)
        self.n_database = check_count(ds, "n_database", n_database, 1, optional=True)
        self.n_train = check_count(ds, "n_train", n_train, 1, optional=True)
        self.config = {
            "manifest": path.name, "protocol": "random", "separator": separator, "n_query": self.n_query,
            "n_database": self.n_database, "n_train": self.n_train, "min_tags": self.min_tags,
            "min_labels": self.min_labels, "label_mode": label_mode, "skip_corrupt": skip_corrupt,
            "manifest_sha256": _sha256(path),
        }
        self.source = {"root": str(root), "manifest": str(path), "rows": len(seen), "left_out_by_filters": dropped}

    # ------------------------------------------------------------------ files
    @staticmethod
    def _manifest_path(root: Path, manifest: str | Path | None) -> Path:
        if manifest is not None:
            p = Path(manifest).expanduser()
            return require_file(p if p.is_absolute() else root / p, "manifest file")
        for name in DEFAULT_NAMES:
            if (root / name).is_file():
                return root / name
        raise DataError(f"{root / DEFAULT_NAMES[0]}: manifest not found (nor {DEFAULT_NAMES[1]}); "
                        "pass -D manifest=FILE to name another file")

    @staticmethod
    def _rows(path: Path, sep: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """(line number, {"path", "tags" (list or None), "labels" (list), "id"}) per item, streamed."""
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            yield from _jsonl_rows(path, sep)
        else:
            yield from _csv_rows(path, sep)

    # --------------------------------------------------------------- protocol
    def make_split(self, seed: int = 0) -> Split:
        return sized_random_split(self.name, len(self), self.n_query, self.n_database, self.n_train, seed=seed,
                                  protocol="manifest-random")


def _split_list(value: Any, sep: str, where: str, key: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v for v in value.split(sep) if v.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise DataError(f"{where}: '{key}' must be a list of strings or a '{sep}'-separated string, got {value!r}")


def _csv_rows(path: Path, sep: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        for col in ("path", "labels"):
            if col not in header:
                raise DataError(f"{path}: line 1: no '{col}' column (the header has {', '.join(header) or 'nothing'})")
        for row in reader:
            where = f"{path}: line {reader.line_num}"
            if None in row or any(row.get(c) is None for c in header):
                raise DataError(f"{where}: {len(header)} columns expected (as in the header)")
            if not row["path"].strip():
                raise DataError(f"{where}: empty 'path'")
            yield reader.line_num, {
                "path": row["path"].strip(),
                "tags": _split_list(row["tags"], sep, where, "tags") if "tags" in header else None,
                "labels": _split_list(row["labels"], sep, where, "labels"),
                "id": (row.get("id") or "").strip() or None,
            }


def _jsonl_rows(path: Path, sep: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}: line {lineno}"
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise DataError(f"{where}: not valid JSON ({exc})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{where}: expected a JSON object")
            for key in ("path", "labels"):
                if key not in obj:
                    raise DataError(f"{where}: no '{key}' key")
            if not isinstance(obj["path"], str) or not obj["path"].strip():
                raise DataError(f"{where}: 'path' must be a non-empty string")
            yield lineno, {
                "path": obj["path"].strip(),
                "tags": _split_list(obj["tags"], sep, where, "tags") if "tags" in obj else None,
                "labels": _split_list(obj["labels"], sep, where, "labels"),
                "id": str(obj["id"]) if obj.get("id") is not None else None,
            }


def _sha256(path: Path) -> str:
    return file_digest(path)[:16]
