"""NUS-WIDE (Chua et al., CIVR 2009), read from the files its publisher distributes.

Where to get it: the NUS-WIDE page of NUS's Lab for Media Search
(https://lms.comp.nus.edu.sg/wp-content/uploads/2019/research/nuswide/NUS-WIDE.html,
now also github.com/NExTplusplus/NUS-WIDE):
``NUS-WIDE.zip`` (Groundtruth, ConceptsList), ``NUS_WID_Tags.zip`` and
``ImageList.zip``. The images themselves are not in those archives: the
publisher lists their Flickr URLs (many are dead) and sends the image archive on
request; keep the images you have in one folder. The ``root`` is::

    root/
      ImageList/Imagelist.txt              269,648 lines like C:\\ImageData\\Flickr\\actor\\0001_2124494179.jpg
      NUS_WID_Tags/TagList1k.txt           the 1,000 most frequent tags, one per line
      NUS_WID_Tags/AllTags1k.txt           269,648 rows of 1,000 0/1 values, Imagelist order
      Groundtruth/AllLabels/Labels_<concept>.txt   81 files, one 0/1 per line, Imagelist order
      ConceptsList/Concepts81.txt          (optional) the 81 concept names, checked when present
      Flickr/actor/0001_2124494179.jpg ... the images (image_root=, default root/Flickr or root/images)

An Imagelist entry's last two path components (``actor\\0001_2124494179.jpg``)
name the image under ``image_root``: ``<image_root>/actor/0001_2124494179.jpg``
(the layout of the publisher's image archive), or ``<image_root>/0001_2124494179.jpg``
when the images sit in one flat folder (``image_layout="flat"``; the default,
``"auto"``, takes each image where it is found, nested first).

Images missing on disk (common: dead URLs) are left out before the split is
drawn, and reported: a warning with the first few, the full list in
``dataset.skipped`` and the count in the stored dataset statistics and in
``prepare``'s report. Never silently.

Protocols (``protocol=``):

``"paper"`` (default; UDHT, section 4.1): images with at least ``min_tags=3``
of the 1,000 tags of ``AllTags1k.txt`` (the tags are counted within that
vocabulary, as the paper says) and at least one of the ``top_labels=21`` most
frequent concepts (frequency over all images of Imagelist.txt; ties broken by
name); labels are those 21 columns. 2,000 random queries and 100,000 random
database items from the rest; the database is the training set.

``"tc21"`` (NUS-WIDE-TC21, as in DPSH, Li et al., IJCAI 2016, and most deep
hashing papers since): every image with at least one of the 21 most frequent
concepts (no tag filter, so items may have no tags: they keep an empty list);
100 queries per concept and 500 training items per concept, drawn concept by
concept without repeats (2,100 and 10,500); the database is every non-query item.

Items' tags are the 1,000-tag names of their row of ``AllTags1k.txt``. Every
size is an option, so a tiny copy in the same layout runs with small numbers.

Memory: the 0/1 tag matrix is streamed in 16 MiB blocks and only kept items'
tag indices are stored (see ``_tags.iter_binary_rows``); the label files are
read one concept at a time and only the ``top_labels`` columns are kept.
Measured on a generated full-size copy (269,648 listed images, a 539 MB
AllTags1k.txt, 81 label files, 250,000 image files), 2 CPU cores: the whole
load takes about 3.5 s and 250 MB of peak memory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ._images import FileImageDataset, list_image_files
from ._protocols import as_bool, check_choice, check_count, check_unknown, per_class_split, sized_random_split
from ._tags import (
    TagLists,
    iter_binary_rows,
    iter_lines,
    read_binary_column,
    read_word_list,
    require_dir,
    require_file,
)
from .base import DatasetReport, Split, register_dataset

OFFICIAL_IMAGES = 269648
# The publisher gives no checksums and several mirrors repackage the archives:
# the structure of the extracted files is verified instead.
ARCHIVES: dict[str, str | None] = {"NUS-WIDE.zip": None, "NUS_WID_Tags.zip": None, "ImageList.zip": None}
PROTOCOLS = {
    # protocol: (min_tags, n_query, n_database, n_query_per_class, n_train_per_class)
    "paper": (3, 2000, 100000, None, None),
    "tc21": (0, None, None, 100, 500),
}
_LABEL_FILE = re.compile(r"Labels_(.+)\.txt$")
_OPTIONS = [
    "protocol", "top_labels", "min_tags", "min_labels", "n_query", "n_database", "n_query_per_class",
    "n_train_per_class", "image_root", "image_layout", "skip_corrupt",
]


@register_dataset("nuswide", summary="NUS-WIDE (Chua et al. 2009): Flickr images, 1,000 tags, 21 most frequent "
                                     "of 81 concepts; protocols paper (default) and tc21")
class NusWide(FileImageDataset):
    """NUS-WIDE in its publisher's layout (see the module docstring for the layout and protocols).

    Parameters
    ----------
    root : the folder holding ImageList/, NUS_WID_Tags/ and Groundtruth/.
    protocol : "paper" (UDHT's, the default) or "tc21".
    top_labels : keep this many most frequent concepts as labels (21).
    min_tags : keep items with at least this many of the 1,000 tags (paper: 3, tc21: 0).
    min_labels : keep items with at least this many of the kept concepts (1).
    n_query, n_database : paper protocol sizes (2,000 and 100,000; n_database=None: all the rest).
    n_query_per_class, n_train_per_class : tc21 sizes (100 and 500).
    image_root : the image folder (default ``root/Flickr``, else ``root/images``).
    image_layout : "auto", "nested" (``<concept>/<file>``) or "flat" (``<file>``).
    skip_corrupt : also decode every kept image once, and leave out (and report) those
        that fail, instead of stopping with an error naming the file when it is read.
    """

    name = "nuswide"
    summary = "NUS-WIDE: Flickr images with 1,000-tag vectors and 81 concepts (21 most frequent kept)"
    archives = ARCHIVES
    variant_options = ("protocol", "top_labels")  # results of each variant in their own folder

    def __init__(
        self,
        root: str | Path,
        *,
        protocol: str = "paper",
        top_labels: int = 21,
        min_tags: int | None = None,
        min_labels: int = 1,
        n_query: int | None = None,
        n_database: int | None = -1,
        n_query_per_class: int | None = None,
        n_train_per_class: int | None = None,
        image_root: str | Path | None = None,
        image_layout: str = "auto",
        skip_corrupt: bool = False,
        **unknown: Any,
    ) -> None:
        ds = "nuswide"
        check_unknown(ds, unknown, _OPTIONS)
        self.protocol = check_choice(ds, "protocol", protocol, tuple(PROTOCOLS))
        d_min_tags, d_query, d_db, d_qpc, d_tpc = PROTOCOLS[self.protocol]
        self.top_labels = check_count(ds, "top_labels", top_labels, 1)
        self.min_tags = check_count(ds, "min_tags", d_min_tags if min_tags is None else min_tags, 0)
        self.min_labels = check_count(ds, "min_labels", min_labels, 0)
        if self.protocol == "paper":
            self.n_query = check_count(ds, "n_query", d_query if n_query is None else n_query, 1)
            self.n_database = check_count(ds, "n_database", d_db if n_database == -1 else n_database, 1,
                                          optional=True)
            sizes = {"n_query": self.n_query, "n_database": self.n_database}
        else:
            self.n_query_per_class = check_count(ds, "n_query_per_class", n_query_per_class or d_qpc, 1)
            self.n_train_per_class = check_count(ds, "n_train_per_class", n_train_per_class or d_tpc, 1)
            sizes = {"n_query_per_class": self.n_query_per_class, "n_train_per_class": self.n_train_per_class}
        layout = check_choice(ds, "image_layout", image_layout, ("auto", "nested", "flat"))
        skip_corrupt = as_bool(ds, "skip_corrupt", skip_corrupt)
        self.config = {
            "protocol": self.protocol, "top_labels": self.top_labels, "min_tags": self.min_tags,
            "min_labels": self.min_labels, **sizes, "image_layout": layout, "skip_corrupt": skip_corrupt,
        }
        self.report = DatasetReport()

        root = Path(root).expanduser()
        require_dir(root, "NUS-WIDE root folder")
        files = self._read_image_list(root / "ImageList" / "Imagelist.txt")
        n = len(files)
        labels, names, counts = self._read_labels(root / "Groundtruth" / "AllLabels", root / "ConceptsList", n)
        vocab_path = root / "NUS_WID_Tags" / "TagList1k.txt"
        vocab = read_word_list(vocab_path, "tag list")
        if len(set(vocab)) != len(vocab):
            raise DataError(f"{vocab_path}: a tag is listed twice")
        label_ok = labels.sum(axis=1) >= self.min_labels

        # stream the 0/1 tag matrix; keep the tag indices of the rows that pass both filters
        tags_path = root / "NUS_WID_Tags" / "AllTags1k.txt"
        rows, indptr_parts, index_parts, seen, total = [], [np.zeros(1, np.int64)], [], 0, 0
        for first, block in iter_binary_rows(tags_path, len(vocab), what="tag matrix"):
            if first + block.shape[0] > n:
                raise DataError(f"{tags_path}: more rows than the {n} images of {files.source}")
            n_tags = block.sum(axis=1, dtype=np.int32)
            keep = np.flatnonzero((n_tags >= self.min_tags) & label_ok[first : first + block.shape[0]])
            c = np.flatnonzero(block[keep]) % block.shape[1]  # row-major: grouped by row, in order
            rows.append(keep + first)
            index_parts.append(c.astype(np.int32))
            indptr_parts.append(np.cumsum(n_tags[keep], dtype=np.int64) + total)
            total += int(c.size)
            seen = first + block.shape[0]
        if seen != n:
            raise DataError(f"{tags_path}: {seen} rows, but {files.source} lists {n} images")
        candidates = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        all_tags = TagLists(np.concatenate(indptr_parts), np.concatenate(index_parts) if index_parts
                            else np.zeros(0, np.int32), vocab)

        # images: find each candidate's file once, from one scan of the image folder
        img_root = self._image_root(root, image_root)
        on_disk = list_image_files(img_root, depth=1)
        ids = [files.ids[i] for i in candidates]
        prefix = str(img_root) + "/"  # plain string joins: pathlib per item costs seconds at this scale
        paths, present = [], np.zeros(candidates.size, dtype=bool)
        for k, i in enumerate(candidates):
            nested, flat = files.nested[i], files.flat[i]
            if layout != "flat" and nested in on_disk:
                rel, present[k] = nested, True
            elif layout != "nested" and flat in on_disk:
                rel, present[k] = flat, True
            else:
                rel = nested if layout != "flat" else flat
            paths.append(prefix + rel)
        keep = self._screen_images(ids, paths, present, skip_corrupt=skip_corrupt, missing_is_error=False)

        self.ids = [ids[k] for k in np.flatnonzero(keep)]
        self.paths = [paths[k] for k in np.flatnonzero(keep)]
        self.labels = labels[candidates[keep]]
        self.label_names = names
        self.tags = all_tags.subset(np.flatnonzero(keep))
        self.source = {
            "root": str(root), "image_root": str(img_root), "images_listed": n, "eligible_items": int(candidates.size),
            "missing_images": int((~present).sum()), "label_frequencies": counts,
            "tag_vocabulary": len(vocab),
        }
        if n != OFFICIAL_IMAGES:
            self.source["note"] = f"{n} images listed; the official release lists {OFFICIAL_IMAGES}"

    # ------------------------------------------------------------------ files
    @staticmethod
    def _read_image_list(path: Path) -> "_ImageList":
        ids, nested, flat = [], [], []
        for lineno, line in iter_lines(path, "image list"):
            text = line.strip()
            if not text:
                raise DataError(f"{path}: line {lineno}: empty line (every line names one image)")
            parts = text.replace("\\", "/").rsplit("/", 2)
            if len(parts) < 2 or not parts[-2] or not parts[-1].lower().endswith((".jpg", ".jpeg", ".png")):
                raise DataError(
                    f"{path}: line {lineno}: expected a path like C:\\ImageData\\Flickr\\actor\\0001_2124494179.jpg,"
                    f" got {text!r}"
                )
            folder, file = parts[-2], parts[-1]
            nested.append(f"{folder}/{file}")
            flat.append(file)
            ids.append(f"{folder}/{file.rsplit('.', 1)[0]}")
        if not ids:
            raise DataError(f"{path}: the image list is empty")
        if len(set(ids)) != len(ids):
            dup = next(i for i, c in _counts(ids).items() if c > 1)
            raise DataError(f"{path}: image {dup!r} is listed twice")
        return _ImageList(ids, nested, flat, str(path))

    def _read_labels(self, folder: Path, concepts_dir: Path, n: int) -> tuple[np.ndarray, list[str], dict[str, int]]:
        require_dir(folder, "label folder (Groundtruth/AllLabels)")
        files = {m.group(1): folder / name for name in sorted(list_image_files(folder, depth=0))
                 if (m := _LABEL_FILE.fullmatch(name))}
        if not files:
            raise DataError(f"{folder}: no Labels_<concept>.txt files")
        listed = concepts_dir / "Concepts81.txt"
        if listed.is_file():
            for concept in read_word_list(listed, "concept list"):
                require_file(folder / f"Labels_{concept}.txt", f"label file of concept {concept!r} ({listed})")
        if self.top_labels > len(files):
            raise DataError(f"{folder}: top_labels={self.top_labels} but only {len(files)} concepts")
        counts: dict[str, int] = {}
        columns: dict[str, np.ndarray] = {}
        for concept, path in files.items():
            col = read_binary_column(path, what=f"label file of concept {concept!r}")
            if col.size != n:
                raise DataError(f"{path}: {col.size} lines, but the image list has {n} images")
            counts[concept] = int(col.sum())
            columns[concept] = col
            # keep only the current top_labels columns: memory stays at top_labels vectors
            if len(columns) > self.top_labels:
                worst = min(columns, key=lambda c: (counts[c], _reverse(c)))
                del columns[worst]
        names = sorted(columns, key=lambda c: (-counts[c], c))
        labels = np.stack([columns[c] for c in names], axis=1).astype(np.uint8)
        return labels, names, dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    @staticmethod
    def _image_root(root: Path, image_root: str | Path | None) -> Path:
        if image_root is not None:
            folder = Path(image_root).expanduser()
            folder = folder if folder.is_absolute() else root / folder
            return require_dir(folder, "image folder (image_root=)")
        for folder in (root / "Flickr", root / "images"):
            if folder.is_dir():
                return folder
        raise DataError(
            f"{root / 'Flickr'}: image folder not found (nor {root / 'images'}); put the images there "
            "or pass -D image_root=PATH"
        )

    # --------------------------------------------------------------- protocol
    def make_split(self, seed: int = 0) -> Split:
        if self.protocol == "tc21":
            return per_class_split(
                self.labels, self.n_query_per_class, self.n_train_per_class, seed=seed,
                protocol="nuswide-tc21", class_names=self.label_names,
            )
        return sized_random_split(self.name, len(self), self.n_query, self.n_database, None, seed=seed,
                                  protocol="nuswide-paper")


class _ImageList:
    def __init__(self, ids: list[str], nested: list[str], flat: list[str], source: str) -> None:
        self.ids, self.nested, self.flat, self.source = ids, nested, flat, source

    def __len__(self) -> int:
        return len(self.ids)


def _counts(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in items:
        out[i] = out.get(i, 0) + 1
    return out


def _reverse(name: str) -> tuple[int, ...]:
    """Sort key that puts later names first: among equal counts, the alphabetically last is dropped."""
    return tuple(-ord(ch) for ch in name) + (0,)
