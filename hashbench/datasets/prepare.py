"""``python -m hashbench prepare``: verify a real dataset's files, report its statistics, cache its features.

Also :func:`load_split`, which rebuilds a split saved with the results
(``results/<dataset>/splits/<key>.json``) against a dataset, so that another
lab can run on exactly the same query, database and training items.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import DataError
from ..storage import file_digest
from .base import HashingDataset, Split, get_dataset, relevant_pair_fraction


def load_split(path: str | Path, dataset: HashingDataset) -> Split:
    """The split saved in ``path`` (by the runner, as item ids) as indices into ``dataset``.

    Every id must be in the dataset (same protocol filters, same images present);
    otherwise a DataError says how many are not and names the first.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"split file {path}: no such file") from None
    except (ValueError, OSError) as exc:
        raise DataError(f"split file {path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DataError(f"split file {path}: expected a JSON object with query/database/train lists")
    return Split.from_json(data, dataset.ids, source=f"split file {path}")


def file_md5(path: Path) -> str:
    return file_digest(path, "md5")


def check_archives(dataset: HashingDataset, folder: Path | None) -> dict[str, str]:
    """{archive: verdict} for each official archive of the dataset found in ``folder``."""
    known: dict[str, str | None] = getattr(dataset, "archives", {}) or {}
    out: dict[str, str] = {}
    for name, md5 in known.items():
        if folder is None:
            out[name] = "not checked (pass --archives DIR, the folder holding the downloaded archives)"
            continue
        path = Path(folder) / name
        if not path.is_file():
            out[name] = f"not found in {folder}"
            continue
        got = file_md5(path)
        if md5 is None:
            out[name] = f"no published checksum is known; its MD5 is {got} (files' structure verified instead)"
        elif got == md5:
            out[name] = "ok (MD5 matches the official archive)"
        else:
            raise DataError(f"{path}: MD5 {got} does not match the official archive's {md5}; download it again")
    return out


def label_statistics(dataset: HashingDataset, split: Split) -> dict[str, Any]:
    """Per-label item counts (all kept items and each role) and the chance level of mAP."""
    labels = dataset.labels
    roles = {"all": np.arange(len(dataset)), "query": split.query, "database": split.database, "train": split.train}
    if labels.ndim == 1:
        counts = {r: np.bincount(labels[idx], minlength=len(dataset.label_names)) for r, idx in roles.items()}
    else:
        counts = {r: labels[idx].sum(axis=0, dtype=np.int64) for r, idx in roles.items()}
    per_label = {
        name: {r: int(counts[r][k]) for r in roles} for k, name in enumerate(dataset.label_names)
    }
    out: dict[str, Any] = {
        "per_label": per_label,
        "relevant_pair_fraction": relevant_pair_fraction(labels[split.query], labels[split.database]),
    }
    if labels.ndim == 2:
        per_item = labels.sum(axis=1)
        out["labels_per_item"] = float(per_item.mean())
        out["items_without_label"] = int((per_item == 0).sum())
    return out


def prepare_dataset(
    name: str,
    root: Path | None,
    *,
    options: dict[str, Any],
    split_seed: int = 0,
    backbone: Any = None,
    cache: Path | None = None,
    device: str = "auto",
    archives: Path | None = None,
    extra: Mapping[str, Callable[..., Any]] | None = None,
) -> dict[str, Any]:
    """Load ``name`` from ``root`` (which checks every file it reads), then report on it.

    Returns a JSON-able dict: archive checksums, counts per role, skipped
    images, label statistics with the fraction of relevant query-database pairs,
    and, when ``backbone`` (a :class:`~hashbench.features.BackboneSpec`) is given,
    the feature cache entry built for the split's items.

    ``extra`` maps a report key to ``f(dataset, split, features, items)``, run last
    (``features``: the rows of ``items``, the split's items in index order, or None
    when no features were built); its value is stored under that key. The command
    line passes the realism report this way, so datasets stay unaware of it.
    """
    t0 = time.perf_counter()
    dataset = get_dataset(name, root=root, **dict(options))
    load_s = time.perf_counter() - t0
    report: dict[str, Any] = {
        "dataset": dataset.name,
        "root": "(embedded)" if root is None else str(root),
        "config": dataset.config,
        "fingerprint_key": dataset.fingerprint_key(),
        "items": len(dataset),
        "load_s": load_s,
        "source": getattr(dataset, "source", {}),
        "archives": check_archives(dataset, archives),
    }
    if hasattr(dataset, "verify_files"):
        report["files"] = dataset.verify_files()
    split = dataset.make_split(split_seed)
    overlap = int(np.intersect1d(split.query, split.database).size)
    report["split"] = {"protocol": split.protocol, "seed": split.seed, "sizes": split.sizes(),
                       "query_database_overlap": overlap, "unused_items": len(dataset) - int(np.union1d(
                           np.union1d(split.query, split.database), split.train).size)}
    report["labels"] = label_statistics(dataset, split)
    if dataset.tags is not None:
        counts = np.array([len(t) for t in dataset.tags])
        report["tags"] = {
            "tags_per_item": float(counts.mean()),
            "items_without_tags": int((counts == 0).sum()),
            "vocabulary_in_use": len({t for ts in dataset.tags for t in ts}),
        }
    skipped = dict(getattr(dataset, "skipped", {}) or {})
    report["skipped"] = skipped
    feats = union = None
    if backbone is not None:
        from ..features import backbone_for, dataset_features

        union = np.unique(np.concatenate([split.query, split.database, split.train]))
        if isinstance(backbone, str):  # weights only ("default": the dataset's); its own preprocessing
            backbone = backbone_for(dataset, None, None if backbone == "default" else backbone)
        elif isinstance(backbone, dict):  # {"name": ..., "weights": ...}: another network, the dataset's preprocessing
            backbone = backbone_for(dataset, backbone.get("name"), backbone.get("weights"))
        feats, info = dataset_features(dataset, union, backbone, cache=cache, device=device)
        report["features"] = {
            "items": int(feats.shape[0]),
            "dim": int(feats.shape[1]),
            "cache_key": info["cache_key"],
            "cache_hit": bool(info.get("cache_hit")),
            "provided": bool(info.get("provided")),
            "extract_s": info.get("extract_s"),
            "backbone": info.get("description"),
        }
    for key, fn in (extra or {}).items():
        report[key] = fn(dataset, split, feats, union)
    return report


def format_prepare_report(report: dict[str, Any], shown: int = 10) -> str:
    """The report as text for the terminal."""
    lines = [f"dataset {report['dataset']} in {report['root']}: {report['items']} items "
             f"(loaded in {report['load_s']:.1f}s; fingerprint {report['fingerprint_key']})"]
    lines.append("  options: " + ", ".join(f"{k}={v}" for k, v in report["config"].items()))
    for k, v in report.get("source", {}).items():
        if k != "label_frequencies":
            lines.append(f"  {k}: {v}")
    lines.append("archives:")
    lines += [f"  {k}: {v}" for k, v in report["archives"].items()] or ["  (none)"]
    if "files" in report:
        lines.append("extracted files:")
        lines += [f"  {k}: {v}" for k, v in report["files"].items()]
    s = report["split"]
    sizes = s["sizes"]
    lines.append(
        f"split ({s['protocol']}, seed {s['seed']}): {sizes['query']} queries, {sizes['database']} database, "
        f"{sizes['train']} train; query/database overlap {s['query_database_overlap']}; "
        f"{s['unused_items']} kept items in no role"
    )
    lab = report["labels"]
    lines.append(f"labels: relevant query-database pairs {lab['relevant_pair_fraction']:.4f} (the chance level of mAP)"
                 + (f"; {lab['labels_per_item']:.2f} labels per item" if "labels_per_item" in lab else ""))
    width = max((len(n) for n in lab["per_label"]), default=5)
    lines.append(f"  {'label':<{width}} {'all':>8} {'query':>7} {'database':>9} {'train':>7}")
    for name, c in lab["per_label"].items():
        lines.append(f"  {name:<{width}} {c['all']:>8} {c['query']:>7} {c['database']:>9} {c['train']:>7}")
    if "tags" in report:
        t = report["tags"]
        lines.append(f"tags: {t['tags_per_item']:.2f} per item, {t['items_without_tags']} items without tags, "
                     f"{t['vocabulary_in_use']} distinct tags in use")
    else:
        lines.append("tags: none (image-only dataset: methods that learn from tags are refused)")
    skipped = report["skipped"]
    if skipped:
        lines.append(f"skipped images: {len(skipped)} (missing on disk or not decodable)")
        lines += [f"  {k}: {v}" for k, v in list(skipped.items())[:shown]]
        if len(skipped) > shown:
            lines.append(f"  ... and {len(skipped) - shown} more")
    else:
        lines.append("skipped images: none")
    if "features" in report:
        f = report["features"]
        how = ("read from the dataset's file (no backbone run)" if f.get("provided")
               else "already cached" if f["cache_hit"] else f"extracted in {f['extract_s']:.1f}s")
        lines.append(f"features: {f['items']} x {f['dim']} ({f['backbone']}), {how}, cache key {f['cache_key']}")
    else:
        lines.append("features: not built (--no-features)")
    return "\n".join(lines)
