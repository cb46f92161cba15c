"""Writers of tiny copies of the real datasets, in their publishers' exact layouts.

Each writer returns the ground truth it wrote (labels, tags, which images are
missing or corrupt), so that tests compare a loader's output with what is on
disk, not with numbers copied from the loader. Images are small JPEGs whose
colour follows the first label, so that a retrieval run on them is meaningful.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from hashbench.datasets.mirflickr import POTENTIAL, RELEVANT

PALETTE = np.array(
    [[220, 40, 40], [40, 200, 60], [50, 60, 230], [230, 220, 40], [200, 60, 200], [40, 210, 210],
     [120, 80, 30], [250, 150, 40], [150, 150, 150], [20, 20, 20]],
    dtype=np.uint8,
)


def write_jpeg(path: Path, colour_index: int, rng: np.random.Generator, size: tuple[int, int] = (48, 40)) -> None:
    """A small JPEG: noise plus a block in the palette colour of ``colour_index``."""
    h, w = size
    img = rng.integers(0, 70, size=(h, w, 3)).astype(np.uint8)
    y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
    img[y : y + h // 2, x : x + w // 2] = PALETTE[colour_index % len(PALETTE)]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, format="JPEG", quality=90)


def corrupt_jpeg(path: Path) -> None:
    """Keep the JPEG header, cut the data: PIL opens it but cannot decode it."""
    data = path.read_bytes()
    path.write_bytes(data[: max(200, len(data) // 3)])


@dataclass
class Written:
    root: Path
    ids: list[str]
    labels: np.ndarray                         # (n, L) 0/1 or (n,) classes, in the file order
    label_names: list[str]
    tags: list[list[str]] | None               # per item, as written
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- MIRFLICKR-25K
MIR_WORDS = ["sky", "clouds", "dog", "beach", "sunset", "canon", "nikon", "explore", "portrait", "tree",
             "flower", "night", "city", "water", "car", "bird"]


def write_mirflickr(root: Path, n: int = 40, *, seed: int = 0, corrupt: tuple[int, ...] = (),
                    missing: tuple[int, ...] = (), annotations_dir: str = "mirflickr25k_annotations_v080",
                    crlf: bool = False) -> Written:
    """``mirflickr/im{1..n}.jpg``, ``mirflickr/meta/tags{,_raw}/tags{N}.txt`` and the 38 annotation files.

    Image numbers in ``corrupt`` get a truncated JPEG, those in ``missing`` none.
    Items 1..4 have no tag, items 5..8 two tags, items 9..10 no label: the protocols' filters meet them.
    """
    rng = np.random.default_rng(seed)
    mir = root / "mirflickr"
    eol = "\r\n" if crlf else "\n"
    labels = np.zeros((n, len(POTENTIAL)), dtype=np.uint8)
    tags: list[list[str]] = []
    for i in range(n):
        k = rng.integers(1, 4)
        labels[i, rng.choice(len(POTENTIAL), size=k, replace=False)] = 1
        n_tags = 0 if i < 4 else 2 if i < 8 else int(rng.integers(3, 7))
        tags.append(list(rng.choice(MIR_WORDS, size=n_tags, replace=False)))
    labels[8:10] = 0
    relevant = np.zeros((n, len(RELEVANT)), dtype=np.uint8)
    for j, concept in enumerate(RELEVANT):
        col = POTENTIAL.index(concept)
        # the "_r1" sets are subsets of their concept, as in the real annotations
        relevant[:, j] = labels[:, col] & (rng.random(n) < 0.6)
    for i in range(n):
        number = i + 1
        (mir / "meta" / "tags").mkdir(parents=True, exist_ok=True)
        (mir / "meta" / "tags_raw").mkdir(parents=True, exist_ok=True)
        (mir / "meta" / "tags" / f"tags{number}.txt").write_text("".join(t + eol for t in tags[i]))
        (mir / "meta" / "tags_raw" / f"tags{number}.txt").write_text("".join(t.title() + eol for t in tags[i]))
        if number in missing:
            continue
        first = int(np.flatnonzero(labels[i])[0]) if labels[i].any() else 9
        write_jpeg(mir / f"im{number}.jpg", first, rng)
        if number in corrupt:
            corrupt_jpeg(mir / f"im{number}.jpg")
    ann = root / annotations_dir
    ann.mkdir(parents=True, exist_ok=True)
    for col, concept in enumerate(POTENTIAL):
        (ann / f"{concept}.txt").write_text("".join(f"{i + 1}{eol}" for i in np.flatnonzero(labels[:, col])))
    for j, concept in enumerate(RELEVANT):
        (ann / f"{concept}_r1.txt").write_text("".join(f"{i + 1}{eol}" for i in np.flatnonzero(relevant[:, j])))
    (ann / "README.txt").write_text("MIRFLICKR-25000 annotations (test fixture)\n")
    return Written(root, [f"im{i + 1}" for i in range(n)], np.concatenate([labels, relevant], axis=1),
                   list(POTENTIAL) + [f"{c}_r1" for c in RELEVANT], tags,
                   missing=[f"im{i}" for i in missing], corrupt=[f"im{i}" for i in corrupt])


# ----------------------------------------------------------------------------- NUS-WIDE
NUS_CONCEPTS = ["animal", "beach", "buildings", "clouds", "flowers", "sky", "water", "zebra"]
NUS_TAGS = ["sky", "blue", "clouds", "nature", "water", "sea", "beach", "city", "flower", "canon", "animal",
            "explore"]


def write_nuswide(root: Path, n: int = 60, *, seed: int = 0, missing: tuple[int, ...] = (),
                  corrupt: tuple[int, ...] = (), image_folder: str = "Flickr", flat: bool = False,
                  separator: str = "\t", trailing: bool = True) -> Written:
    """ImageList/Imagelist.txt, NUS_WID_Tags/{TagList1k,AllTags1k}.txt, Groundtruth/AllLabels/Labels_*.txt,
    ConceptsList/Concepts81.txt and the images under ``<image_folder>/<folder>/<file>`` (or flat).

    Rows in ``missing`` (0-based) have no image on disk, rows in ``corrupt`` a truncated one.
    Concepts are frequent in an order unlike their names', the last is rarest; rows 0..5 have fewer than 3 tags;
    rows 6..7 have none of the top concepts.
    """
    rng = np.random.default_rng(seed)
    n_c, n_t = len(NUS_CONCEPTS), len(NUS_TAGS)
    # concept rates in an order unlike the alphabetical one (the loader must sort by frequency);
    # the last concept, zebra, is the rarest
    freq = np.linspace(0.55, 0.05, n_c)[[2, 0, 4, 1, 5, 3, 6, 7]]
    labels = (rng.random((n, n_c)) < freq).astype(np.uint8)
    labels[np.flatnonzero(labels.sum(1) == 0), 0] = 1
    labels[6:8] = 0
    labels[6:8, n_c - 1] = 1  # only the rarest concept
    tagmat = np.zeros((n, n_t), dtype=np.uint8)
    for i in range(n):
        k = int(rng.integers(0, 3)) if i < 6 else int(rng.integers(3, 7))
        tagmat[i, rng.choice(n_t, size=k, replace=False)] = 1
    folders = [NUS_CONCEPTS[int(rng.integers(0, n_c))] for _ in range(n)]
    files = [f"{i + 1:04d}_{2124494179 + 7919 * i}.jpg" for i in range(n)]
    (root / "ImageList").mkdir(parents=True, exist_ok=True)
    # the publisher's list holds Windows paths, with CRLF line ends
    (root / "ImageList" / "Imagelist.txt").write_bytes(
        "".join(f"C:\\ImageData\\Flickr\\{f}\\{name}\r\n" for f, name in zip(folders, files)).encode()
    )
    tags_dir = root / "NUS_WID_Tags"
    tags_dir.mkdir(parents=True, exist_ok=True)
    (tags_dir / "TagList1k.txt").write_text("".join(t + "\n" for t in NUS_TAGS))
    end = separator if trailing else ""
    (tags_dir / "AllTags1k.txt").write_text(
        "".join(separator.join(str(v) for v in row) + end + "\n" for row in tagmat)
    )
    lab_dir = root / "Groundtruth" / "AllLabels"
    lab_dir.mkdir(parents=True, exist_ok=True)
    for c, concept in enumerate(NUS_CONCEPTS):
        (lab_dir / f"Labels_{concept}.txt").write_text("".join(f"{v}\n" for v in labels[:, c]))
    (root / "ConceptsList").mkdir(parents=True, exist_ok=True)
    (root / "ConceptsList" / "Concepts81.txt").write_text("".join(c + "\n" for c in NUS_CONCEPTS))
    for i in range(n):
        if i in missing:
            continue
        rel = files[i] if flat else f"{folders[i]}/{files[i]}"
        path = root / image_folder / rel
        write_jpeg(path, int(np.flatnonzero(labels[i])[0]), rng)
        if i in corrupt:
            corrupt_jpeg(path)
    ids = [f"{f}/{name[:-4]}" for f, name in zip(folders, files)]
    tags = [[NUS_TAGS[k] for k in np.flatnonzero(row)] for row in tagmat]
    return Written(root, ids, labels, list(NUS_CONCEPTS), tags,
                   missing=[ids[i] for i in missing], corrupt=[ids[i] for i in corrupt],
                   extra={"tagmat": tagmat})


# ----------------------------------------------------------------------------- CIFAR-10
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar10(root: Path, per_batch: int = 12, *, seed: int = 0) -> Written:
    """``cifar-10-batches-py/`` with data_batch_1..5, test_batch and batches.meta, pickled as the
    official python release is: dicts with bytes keys, b'data' (N, 3072) uint8 channel-major rows."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    meta = {b"num_cases_per_batch": per_batch, b"label_names": [c.encode() for c in CIFAR_CLASSES],
            b"num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    all_labels, images = [], []
    for b, name in enumerate(["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                              "test_batch"]):
        labels = [(b * per_batch + k) % 10 for k in range(per_batch)]
        imgs = rng.integers(0, 60, size=(per_batch, 32, 32, 3)).astype(np.uint8)
        for k, c in enumerate(labels):
            imgs[k, 8:24, 8:24] = PALETTE[c]
        # channel-major rows: 1024 red values, 1024 green, 1024 blue
        data = imgs.transpose(0, 3, 1, 2).reshape(per_batch, 3072)
        batch = {b"batch_label": f"fixture batch {b}".encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img_{b}_{k}.png".encode() for k in range(per_batch)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
        all_labels += labels
        images.append(imgs)
    n_train = 5 * per_batch
    ids = [f"train-{k:05d}" for k in range(n_train)] + [f"test-{k:05d}" for k in range(per_batch)]
    return Written(root, ids, np.array(all_labels, dtype=np.int64), list(CIFAR_CLASSES), None,
                   extra={"images": np.concatenate(images)})


# ----------------------------------------------------------------------------- a user's manifest
def write_manifest(root: Path, n: int = 30, *, seed: int = 0, fmt: str = "csv", with_tags: bool = True,
                   single_label: bool = False, name: str | None = None) -> Written:
    """``photos/*.jpg`` and ``manifest.csv`` (path,tags,labels; lists joined by '|') or ``manifest.jsonl``."""
    rng = np.random.default_rng(seed)
    classes = ["cat", "dog", "sea", "sky"]
    rows, labels_out, tags_out, ids = [], [], [], []
    for i in range(n):
        labs = [classes[i % 4]] if single_label else sorted(set(rng.choice(classes, size=int(rng.integers(1, 3)))))
        tags = list(rng.choice(["Summer", "holiday", "canon", "blue", "cute"], size=int(rng.integers(0, 3)),
                               replace=False))
        path = f"photos/p{i:03d}.jpg"
        write_jpeg(root / path, classes.index(labs[0]), rng)
        rows.append((path, tags, labs))
        ids.append(path)
        labels_out.append(labs)
        tags_out.append([t.lower() for t in tags])
    name = name or f"manifest.{fmt}"
    if fmt == "csv":
        head = "path,tags,labels\n" if with_tags else "path,labels\n"
        body = "".join(
            f"{p},{'|'.join(t)},{'|'.join(lab)}\n" if with_tags else f"{p},{'|'.join(lab)}\n" for p, t, lab in rows
        )
        (root / name).write_text(head + body)
    else:
        (root / name).write_text("".join(
            json.dumps({"path": p, **({"tags": t} if with_tags else {}), "labels": lab}) + "\n" for p, t, lab in rows
        ))
    names = sorted(classes)
    if single_label:
        lab_arr = np.array([names.index(lab[0]) for lab in labels_out], dtype=np.int64)
    else:
        lab_arr = np.zeros((n, len(names)), dtype=np.uint8)
        for i, labs in enumerate(labels_out):
            lab_arr[i, [names.index(x) for x in labs]] = 1
    return Written(root, ids, lab_arr, names, tags_out if with_tags else None)
