"""The realism report: how much signal a tagged dataset's tags and images carry about its labels.

For any dataset with tags, on its own split (queries against the database,
relevance = sharing a label), every figure is a tie-aware mAP@all from the
shared evaluator (:mod:`hashbench.evaluation`, :mod:`hashbench.evaluation.ranking`):

* ``chance``: the fraction of query-database pairs sharing a label (a random ranking's mAP);
* ``binary_tags``: the database ranked by the count of tags shared with the query;
* ``word_vectors``: ranked by the cosine of the mean tag vectors, with hashbench's
  default word vectors (``load_word_vectors("auto")``: 64-d skip-gram trained, seed 0,
  on the database items' own tags) and ``aggregate_tag_vectors`` (mean);
* ``features``: ranked by Euclidean distance of the raw backbone features;
* ``lsh@b``, ``itq@b``: the registered LSH and ITQ (seed 0), fitted on the training
  role's features, at b = 12, 24, 32, 48 bits.

This is the protocol of the real MIRFLICKR figures in ``mirflickr25k_cleaned.csv``
(see :func:`reference_figures`): random queries against all other items, vectors
trained on the database items' tags. The image rows of that table are the UDHT
paper's Table 2 (ImageNet AlexNet features, mAP@50000 = its whole database).

``python -m hashbench prepare DATASET`` prints this report; for the embedded
``synthetic`` default it prints the real MIRFLICKR figures beside it.
``python -m hashbench.realism --docstring`` prints the measured section of the
synthetic dataset's docstring.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..datasets.base import HashingDataset, Split
from ..errors import ConfigError, DataError

BITS = (12, 24, 32, 48)
REFERENCE_FILE = Path(__file__).with_name("mirflickr25k_cleaned.csv")
#: datasets whose report is printed beside the real MIRFLICKR figures (stand-ins for it)
REFERENCE_FOR = ("synthetic", "mirflickr25k")


def reference_figures() -> dict[str, dict[str, Any]]:
    """{statistic: {"value": float, "source": str}} of real MIRFLICKR-25K (cleaned subset) and the UDHT paper."""
    with REFERENCE_FILE.open(newline="") as f:
        return {r["statistic"]: {"value": float(r["value"]), "source": r["source"]} for r in csv.DictReader(f)}


def tag_statistics(tags: Sequence[Sequence[str]], labels: np.ndarray, split: Split, *,
                   seed: int = 0, cache: str | Path | None = None) -> dict[str, Any]:
    """Chance and the two tag rankings (binary shared tags, cosine of mean self-trained vectors)."""
    from ..evaluation import chance_level
    from ..evaluation.ranking import score_map
    from ..tags import aggregate_tag_vectors, binary_tag_matrix, load_word_vectors

    q, db = split.query, split.database
    ql, dl = labels[q], labels[db]
    out: dict[str, Any] = {"chance": chance_level(ql, dl)}
    binary, _ = binary_tag_matrix(tags)
    out["binary_tags"] = score_map(binary[q], binary[db], ql, dl, "dot")
    db_tags = [tags[i] for i in db]
    if sum(len(t) >= 2 for t in db_tags) == 0:
        raise DataError("realism report: no database item has two or more tags: no word vectors to train")
    kv, info = load_word_vectors("auto", tags=db_tags, seed=seed, cache=cache)
    vec = aggregate_tag_vectors(tags, kv, aggregation="mean").vectors
    out["word_vectors"] = score_map(vec[q], vec[db], ql, dl, "cosine")
    out["word_vectors_info"] = {k: info[k] for k in ("source", "dim", "seed", "vocabulary_size") if k in info}
    return out


def image_statistics(features: np.ndarray, labels: np.ndarray, split: Split, *, items: np.ndarray | None = None,
                     bits: Sequence[int] = BITS, seed: int = 0) -> dict[str, Any]:
    """Euclidean ranking of the raw features, and LSH and ITQ mAP@all at each bit length.

    Row k of ``features`` is item ``items[k]`` (``items`` sorted; None: row i is item i).
    """
    from ..evaluation import EvalConfig, evaluate
    from ..evaluation.ranking import score_map
    from ..registry import create

    def rows(idx: np.ndarray) -> np.ndarray:
        if items is None:
            return np.asarray(features[idx])
        pos = np.searchsorted(items, idx)
        if not np.array_equal(np.asarray(items)[np.minimum(pos, len(items) - 1)], idx):
            raise DataError("realism report: the features do not cover every item of the split")
        return np.asarray(features[pos])

    q, db, tr = split.query, split.database, split.train
    ql, dl = labels[q], labels[db]
    fq, fdb = rows(q), rows(db)
    out: dict[str, Any] = {"features": score_map(fq, fdb, ql, dl, "euclidean")}
    cfg = EvalConfig(topk=(None,), precision_at=(), ties="tie-aware", pr_levels=0, device="cpu")
    ftr = rows(tr)
    for method in ("lsh", "itq"):
        for b in bits:
            try:
                # fixed settings (the authors' 50 ITQ iterations): a statistic of the data must not move when
                # the shipped defaults record is regenerated
                h = create(method, bits=int(b), seed=seed, **({"n_iter": 50} if method == "itq" else {})).fit(ftr)
            except ConfigError:  # e.g. ITQ on fewer training items than bits: that row is n/a
                out[f"{method}@{b}"] = None
                continue
            out[f"{method}@{b}"] = evaluate(h.encode(fq), h.encode(fdb), ql, dl, cfg).metrics["mAP@all"]
    return out


def realism_report(dataset: HashingDataset, split: Split, features: np.ndarray | None = None,
                   items: np.ndarray | None = None, *, cache: str | Path | None = None) -> dict[str, Any]:
    """Every statistic of the module docstring for ``dataset`` on ``split``.

    ``features``: the backbone's FC2 features (row k = item ``items[k]``, or item k when
    ``items`` is None), typically from the features stage; None leaves out the image rows.
    The signature is the one :func:`hashbench.datasets.prepare.prepare_dataset` calls.
    """
    if dataset.tags is None:
        raise DataError(f"realism report: dataset {dataset.name!r} has no tags")
    labels = np.asarray(dataset.labels)
    t0 = time.perf_counter()
    report: dict[str, Any] = {"dataset": dataset.name, "split_seed": split.seed,
                              "n_query": int(split.query.size), "n_database": int(split.database.size)}
    report.update(tag_statistics(dataset.tags, labels, split, cache=cache))
    if features is not None:
        report.update(image_statistics(features, labels, split, items=items))
    report["seconds"] = time.perf_counter() - t0
    return report


def prepare_realism(dataset: HashingDataset, split: Split, features: np.ndarray | None,
                    items: np.ndarray | None) -> dict[str, Any] | None:
    """``prepare``'s hook: the report (None for a dataset without tags) and, for stand-ins of
    MIRFLICKR, the real figures to print beside it."""
    if dataset.tags is None:
        return None
    reference = reference_figures() if dataset.name in REFERENCE_FOR else None
    try:
        report = realism_report(dataset, split, features, items)
    except DataError as exc:  # e.g. too few tags to train vectors: say why, keep the rest of prepare's report
        return {"report": None, "reference": reference, "error": str(exc)}
    return {"report": report, "reference": reference}


ROWS = (("chance", "chance (pairs sharing a label)"),
        ("binary_tags", "shared binary tags, count"),
        ("word_vectors", "mean self-trained tag vectors, cosine"),
        ("features", "raw features, Euclidean"),
        *((f"lsh@{b}", f"LSH {b} bits") for b in BITS),
        *((f"itq@{b}", f"ITQ {b} bits") for b in BITS))


def format_realism(report: dict[str, Any], reference: dict[str, dict[str, Any]] | None = None) -> str:
    """The report as a text table: mAP@all and its margin above chance, beside ``reference`` when given."""
    chance = report["chance"]
    head = (f"realism ({report['dataset']}, split seed {report['split_seed']}: {report['n_query']} queries vs "
            f"{report['n_database']} database; tie-aware mAP@all; word vectors: hashbench's default, trained on "
            f"the database items' tags)")
    width = max(len(label) for _, label in ROWS)
    cols = f"  {'statistic':<{width}} {'mAP':>7} {'+chance':>8}"
    if reference:
        cols += f"   {'real MIRFLICKR':>14} {'+chance':>8}"
    lines = [head, cols]
    for key, label in ROWS:
        if key not in report:
            continue
        v = report[key]
        if v is None:
            line = f"  {label:<{width}} {'n/a':>7} {'':>8}"
        else:
            line = f"  {label:<{width}} {v:7.3f} {'' if key == 'chance' else f'{v - chance:+8.3f}':>8}"
        if reference and key in reference:
            rv = reference[key]["value"]
            rc = reference["paper_chance" if "@" in key else "chance"]["value"]
            line += f"   {rv:14.3f} {'' if key == 'chance' else f'{rv - rc:+8.3f}':>8}"
        lines.append(line)
    if reference:
        lines.append("  real MIRFLICKR: tag rows measured on the real cleaned subset (20,015 items, 2,000 queries);")
        lines.append("  LSH/ITQ rows from the UDHT paper's Table 2 (ImageNet AlexNet FC2, against its chance 0.55);")
        lines.append(f"  sources: hashbench/realism/{REFERENCE_FILE.name}")
    if any(report.get(k, 0) is None for k, _ in ROWS):
        lines.append("  n/a: the method cannot produce that many bits from so few training items")
    return "\n".join(lines)


def synthetic_report(*, cache: str | Path | None = None, device: str = "cpu", **options: Any):
    """(report, dataset) of the embedded ``synthetic`` set (``options``: its options; default: the default set).

    Features come from the features stage with the set's own backbone (ImageNet
    EfficientNet-Lite0), cached as for a run.
    """
    from ..datasets import get_dataset
    from ..features import backbone_for, extract_features

    dataset = get_dataset("synthetic", **options)
    split = dataset.make_split(0)
    items = np.unique(np.concatenate([split.query, split.database, split.train]))
    spec = backbone_for(dataset)
    feats, _ = extract_features(dataset, items, spec, cache=cache, device=device, progress=False)
    report = realism_report(dataset, split, feats, items, cache=cache)
    # what the image rows measure: e.g. "ImageNet EfficientNet-Lite0 features at 128 px"
    report["stage"] = f"{spec.stage} at {spec.crop} px"
    return report, dataset
