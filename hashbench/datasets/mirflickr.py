"""MIRFLICKR-25K (Huiskes and Lew, MIR 2008), read from its two official archives.

Where to get it: https://press.liacs.nl/mirflickr/mirdownload.html, the files
``mirflickr25k.zip`` (images, tags, EXIF, licences) and
``mirflickr25k_annotations_v080.zip`` (the concept annotations). Unzip both into
one folder, the ``root``::

    root/
      mirflickr/im1.jpg ... im25000.jpg
      mirflickr/meta/tags/tags1.txt ... tags25000.txt       one clean tag per line
      mirflickr/meta/tags_raw/tags1.txt ...                  the tags as their owners typed them
      mirflickr25k_annotations_v080/animals.txt ...          one image number (1-based) per line
      mirflickr25k_annotations_v080/baby_r1.txt ...          the "relevant" subsets
      mirflickr25k_annotations_v080/README.txt

(``root`` may also be the ``mirflickr`` folder itself, and the annotation files
may sit in ``root/annotations`` or ``root`` instead; ``annotations=PATH`` names
their folder explicitly.)

Labels. The annotation archive has 24 "potential" concepts (``animals.txt`` ...
``water.txt``) and, for 14 of them, a stricter subset ``<concept>_r1.txt`` of the
images where the concept is clearly relevant. ``label_set="24"`` (the field's
default) uses the 24; ``label_set="38"`` adds the 14 ``_r1`` sets as further
columns: the UDHT paper's "38 categories". Every ``_r1`` set lies inside its
concept, so "at least one label" selects the same images under both.

Protocols (``protocol=``):

``"paper"`` (default; UDHT, section 4.1): images with at least ``min_tags=3``
tags and at least one label; 2,000 random queries (blind to labels) and 16,000
database items, drawn from the rest; the database is the training set. The
paper does not say in which vocabulary the three tags are counted. They are
counted here among all of the image's clean tags (``count_tags_in="all"``):
counted within the 1,386-tag vocabulary, too few images qualify to give the
paper's 18,000 (measured on the real tags and labels). ``prepare`` reports how many images each reading keeps
(``eligible_counting_all_tags`` and ``eligible_counting_vocabulary_tags``); set
``count_tags_in="vocabulary"`` for the other reading. The tags handed to the
methods are those of the 1,386-tag vocabulary the paper names (tags on at least
``min_tag_count=20`` of the 25,000 images); an image can therefore pass the
filter with fewer than three (even zero) vocabulary tags, and a method receives
its empty list.

``"cleaned"``: the field's 20,015-image subset (DCMH, Jiang and Li, CVPR 2017,
and most cross-modal hashing papers since): the vocabulary is the tags on at
least 20 images (document frequency over all 25,000 images; ``prepare`` shows
its size, which should be 1,386), and an image is kept when it has at least one
label and at least one vocabulary tag. 2,000 random queries, the other 18,015
images are the database, and 10,000 random database images train (DCMH's
choice; ``n_train=None`` trains on the whole database).

``"bihalf"``: the setting of Bi-half's MIRFLICKR script (Li & van Gemert, AAAI 2021;
liyunqianggyn/Deep-Unsupervised-Image-Hashing, ``ImageHashing/Flickr25k.py`` and
``data/flickr25k.py``, commit 1cd671a): every image of the release (its ``img.txt`` lists all 25,000,
its ``targets.txt`` the 24 potential concepts, images without any label included), 2,000 random
queries, 5,000 random training items from the others, and every non-query image as the database
(training items included). Here ``min_tags=0`` and ``min_labels=0`` keep every image, and the 24
labels are the default ``label_set``. Its script reports mAP over the whole database (mAP@all).

Items with no tags are therefore dropped by the paper and cleaned protocols' tag filters (set
``min_tags=0`` to keep them). Tags come from ``meta/tags`` (the publisher's
lower-cased, space-free form) unless ``tags_source="raw"``.

Every size is an option (``n_query``, ``n_database``, ``n_train``), so a tiny
copy in the same layout runs with small numbers.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ._images import FileImageDataset, list_image_files
from ._protocols import as_bool, check_choice, check_count, check_unknown, sized_random_split
from ._tags import TagLists, decode, iter_lines, normalise_tag, require_dir, unique_in_order
from .base import DatasetReport, Split, register_dataset

#: the 24 potential concepts of mirflickr25k_annotations_v080.zip, in the publisher's (alphabetical) order
POTENTIAL = (
    "animals", "baby", "bird", "car", "clouds", "dog", "female", "flower", "food", "indoor", "lake", "male",
    "night", "people", "plant_life", "portrait", "river", "sea", "sky", "structures", "sunset", "transport",
    "tree", "water",
)
#: the 14 concepts that also have a "relevant" subset <concept>_r1.txt
RELEVANT = (
    "baby", "bird", "car", "clouds", "dog", "female", "flower", "male", "night", "people", "portrait", "river",
    "sea", "tree",
)
OFFICIAL_IMAGES = 25000
ARCHIVES = {
    # MD5 published on the download page and reproduced by several independent
    # projects (for the v3b release); size 3,069,184,257 bytes
    "mirflickr25k.zip": "a23d0a8564ee84cda5622a6c2f947785",
    # no checksum from a source we could verify: the structure is checked instead
    "mirflickr25k_annotations_v080.zip": None,
}
PROTOCOLS = {
    # protocol: (min_tags, count_tags_in, n_query, n_database, n_train)
    "paper": (3, "all", 2000, 16000, None),
    "cleaned": (1, "vocabulary", 2000, None, 10000),
    "bihalf": (0, "all", 2000, None, 5000),
}
#: the fewest labels an item needs, per protocol (1 unless said here)
PROTOCOL_MIN_LABELS = {"bihalf": 0}
_TAG_FILE = re.compile(r"tags(\d+)\.txt$")
_OPTIONS = [
    "protocol", "label_set", "min_tags", "min_labels", "count_tags_in", "min_tag_count", "tags_source",
    "n_query", "n_database", "n_train", "annotations", "skip_corrupt",
]


@register_dataset("mirflickr25k", summary="MIRFLICKR-25K (Huiskes & Lew 2008): Flickr images, user tags, "
                                          "24 or 38 concepts; protocols paper (default), cleaned and bihalf")
class MirFlickr25k(FileImageDataset):
    """MIRFLICKR-25K in its publisher's layout (see the module docstring for the layout and protocols).

    Parameters
    ----------
    root : the folder holding ``mirflickr/`` and the annotation files.
    protocol : "paper" (UDHT's, the default), "cleaned" (the 20,015-image subset) or "bihalf" (every
        image; 2,000 queries, 5,000 training items).
    label_set : "24" (potential concepts) or "38" (plus the 14 ``_r1`` sets).
    min_tags, count_tags_in : keep items with at least ``min_tags`` tags counted among
        "all" their tags or only those in the "vocabulary" (protocol defaults: 3/"all", 1/"vocabulary").
    min_labels : keep items with at least this many labels (protocol default: 1; "bihalf": 0).
    min_tag_count : the tag vocabulary is the tags on at least this many of all images (20,
        giving the 1,386-tag vocabulary); item tag lists are restricted to it. 1 keeps every tag.
    tags_source : "clean" (``meta/tags``) or "raw" (``meta/tags_raw``, lower-cased here).
    n_query, n_database, n_train : role sizes (protocol defaults: 2000/16000/database,
        2000/rest/10000 and 2000/rest/5000). None for n_database means every non-query item; for n_train, the database.
    annotations : folder of the annotation files, if not in a standard place.
    skip_corrupt : leave out (and report) images that are missing or do not decode,
        instead of stopping with an error that names the file.
    """

    name = "mirflickr25k"
    summary = "MIRFLICKR-25K: 25,000 Flickr images with user tags and 24 (or 38) concepts"
    archives = ARCHIVES
    variant_options = ("protocol", "label_set")  # results of each variant in their own folder

    def __init__(
        self,
        root: str | Path,
        *,
        protocol: str = "paper",
        label_set: str | int = "24",
        min_tags: int | None = None,
        min_labels: int | None = None,
        count_tags_in: str | None = None,
        min_tag_count: int = 20,
        tags_source: str = "clean",
        n_query: int | None = None,
        n_database: int | None = -1,
        n_train: int | None = -1,
        annotations: str | Path | None = None,
        skip_corrupt: bool = False,
        **unknown: Any,
    ) -> None:
        ds = "mirflickr25k"
        check_unknown(ds, unknown, _OPTIONS)
        protocol = check_choice(ds, "protocol", protocol, tuple(PROTOCOLS))
        label_set = check_choice(ds, "label_set", label_set, ("24", "38"))
        d_min_tags, d_count_in, d_query, d_db, d_train = PROTOCOLS[protocol]
        # -1 marks "the protocol's default" where None is itself a meaningful value
        self.min_tags = check_count(ds, "min_tags", d_min_tags if min_tags is None else min_tags, 0)
        self.count_tags_in = check_choice(ds, "count_tags_in", count_tags_in or d_count_in, ("all", "vocabulary"))
        self.min_labels = check_count(ds, "min_labels",
                                      PROTOCOL_MIN_LABELS.get(protocol, 1) if min_labels is None else min_labels, 0)
        self.min_tag_count = check_count(ds, "min_tag_count", min_tag_count, 1)
        self.tags_source = check_choice(ds, "tags_source", tags_source, ("clean", "raw"))
        self.n_query = check_count(ds, "n_query", d_query if n_query is None else n_query, 1)
        self.n_database = check_count(ds, "n_database", d_db if n_database == -1 else n_database, 1, optional=True)
        self.n_train = check_count(ds, "n_train", d_train if n_train == -1 else n_train, 1, optional=True)
        self.protocol = protocol
        skip_corrupt = as_bool(ds, "skip_corrupt", skip_corrupt)
        self.config = {
            "protocol": protocol, "label_set": label_set, "min_tags": self.min_tags,
            "count_tags_in": self.count_tags_in, "min_labels": self.min_labels,
            "min_tag_count": self.min_tag_count, "tags_source": self.tags_source, "n_query": self.n_query,
            "n_database": self.n_database, "n_train": self.n_train, "skip_corrupt": skip_corrupt,
        }
        self.report = DatasetReport()

        root = Path(root).expanduser()
        mir = self._find_image_folder(root)
        ann = self._find_annotations(root, mir, annotations)
        n_images = self._count_tag_files(mir / "meta" / "tags")
        tags_dir = mir / "meta" / ("tags" if self.tags_source == "clean" else "tags_raw")
        all_tags = [self._read_tags(tags_dir / f"tags{i}.txt") for i in range(1, n_images + 1)]
        labels, names = self._read_labels(ann, n_images, label_set)

        # the vocabulary: tags on at least min_tag_count images (document frequency over all images)
        df = Counter(t for tags in all_tags for t in tags)
        vocab = {t for t, c in df.items() if c >= self.min_tag_count}
        in_vocab = [[t for t in tags if t in vocab] for tags in all_tags]
        has_labels = labels.sum(axis=1) >= self.min_labels
        by_reading = {
            "all": (np.array([len(t) for t in all_tags]) >= self.min_tags) & has_labels,
            "vocabulary": (np.array([len(t) for t in in_vocab]) >= self.min_tags) & has_labels,
        }
        eligible = by_reading[self.count_tags_in]
        candidates = np.flatnonzero(eligible)
        ids = [f"im{i + 1}" for i in candidates]
        paths = [str(mir / f"im{i + 1}.jpg") for i in candidates]
        on_disk = list_image_files(mir, depth=0)
        present = np.array([f"im{i + 1}.jpg" in on_disk for i in candidates], dtype=bool)
        keep = self._screen_images(ids, paths, present, skip_corrupt=skip_corrupt, missing_is_error=True)
        rows = candidates[keep]

        self.ids = [f"im{i + 1}" for i in rows]
        self.paths = [str(mir / f"im{i + 1}.jpg") for i in rows]
        self.labels = labels[rows]
        self.label_names = names
        self.tags = TagLists.from_lists(in_vocab[i] for i in rows)
        self.source = {
            "root": str(root), "images": str(mir), "annotations": str(ann), "images_in_release": n_images,
            "vocabulary_size": len(vocab), "eligible_items": int(candidates.size),
            "eligible_counting_all_tags": int(by_reading["all"].sum()),
            "eligible_counting_vocabulary_tags": int(by_reading["vocabulary"].sum()),
        }
        if n_images != OFFICIAL_IMAGES:
            self.source["note"] = f"{n_images} images found; the official release has {OFFICIAL_IMAGES}"

    # ------------------------------------------------------------------ files
    @staticmethod
    def _find_image_folder(root: Path) -> Path:
        for mir in (root / "mirflickr", root):
            if (mir / "meta" / "tags").is_dir():
                return mir
        raise DataError(
            f"{root / 'mirflickr' / 'meta' / 'tags'}: folder not found; unzip mirflickr25k.zip into {root} "
            "(it creates mirflickr/im*.jpg and mirflickr/meta/tags/)"
        )

    @staticmethod
    def _find_annotations(root: Path, mir: Path, annotations: str | Path | None) -> Path:
        if annotations is not None:
            folder = Path(annotations).expanduser()
            folder = folder if folder.is_absolute() else root / folder
            return require_dir(folder, "annotation folder (annotations=)")
        candidates = [root / "mirflickr25k_annotations_v080", root / "annotations", root, mir / "annotations"]
        for folder in candidates:
            if (folder / "animals.txt").is_file():
                return folder
        raise DataError(
            f"{candidates[0]}: annotation files not found (looked for animals.txt in "
            f"{', '.join(str(c) for c in candidates)}); unzip mirflickr25k_annotations_v080.zip into "
            f"{candidates[0]} or pass -D annotations=PATH"
        )

    @staticmethod
    def _count_tag_files(folder: Path) -> int:
        numbers = sorted(int(m.group(1)) for name in list_image_files(folder, depth=0)
                         if (m := _TAG_FILE.fullmatch(name)))
        if not numbers:
            raise DataError(f"{folder}: no tags<N>.txt files")
        expected = np.arange(1, numbers[-1] + 1)
        if len(numbers) != numbers[-1]:
            gap = int(np.setdiff1d(expected, numbers)[0])
            raise DataError(f"{folder / f'tags{gap}.txt'}: tag file not found (the files run to tags{numbers[-1]}.txt)")
        return numbers[-1]

    @staticmethod
    def _read_tags(path: Path) -> list[str]:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise DataError(f"{path}: tag file not found") from None
        return unique_in_order(normalise_tag(t) for t in decode(raw).splitlines())

    @staticmethod
    def _read_labels(folder: Path, n_images: int, label_set: str) -> tuple[np.ndarray, list[str]]:
        names = list(POTENTIAL) + ([f"{c}_r1" for c in RELEVANT] if label_set == "38" else [])
        labels = np.zeros((n_images, len(names)), dtype=np.uint8)
        for col, concept in enumerate(names):
            path = folder / f"{concept}.txt"
            numbers = []
            for lineno, line in iter_lines(path, f"annotation file of concept {concept!r}"):
                text = line.strip()
                if not text:
                    continue
                if not text.isdigit() or not 1 <= int(text) <= n_images:
                    raise DataError(
                        f"{path}: line {lineno}: expected an image number 1..{n_images}, got {text!r}"
                    )
                numbers.append(int(text))
            labels[np.array(numbers, dtype=np.int64) - 1, col] = 1
        return labels, names

    # --------------------------------------------------------------- protocol
    def make_split(self, seed: int = 0) -> Split:
        """Seeded random queries (blind to labels and tags), then the database, then training items."""
        return sized_random_split(
            self.name, len(self), self.n_query, self.n_database, self.n_train, seed=seed,
            protocol=f"mirflickr25k-{self.protocol}",
        )
