"""Read the results store into what the reports need, grouped so that nothing is mixed silently.

Two groupings decide what may share a table or a figure:

* the **conventions** of the evaluator (tie order, empty queries, tie seed, preset): cells
  scored under different conventions never share a table; each convention group gets its
  own set of tables and figures (a warning says so);
* the **protocol** of a dataset (its key, the split, the backbone and its weights): each
  distinct protocol is one column group of a table (as the paper puts NUS-WIDE and
  MIRFLICKR side by side). Two protocols of the same dataset (e.g. ImageNet and random
  weights) become two column groups with distinguishing labels, never one.

Everything here only reads: cells come from :func:`hashbench.store.iter_cells`, which
verifies each file's checksum and skips (with a warning) cells it cannot trust.
"""

from __future__ import annotations

import json
import re
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ResultsError
from ..store import Cell, iter_cells

#: Evaluation fields that change what a number means; cells differing in any share no table.
CONVENTION_FIELDS = ("ties", "empty", "tie_seed", "preset")


def slug(text: str) -> str:
    """A file-name-safe form of ``text`` ("mAP@5000" -> "map-at-5000")."""
    text = str(text).replace("@", "-at-").replace("±", "pm")
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._").lower()
    return re.sub(r"-{2,}", "-", text) or "x"


def per_query_key(metric: str) -> str:
    """The per-query array behind a metric: "mAP@K" -> "AP@K"; "P@100", "P@r2" unchanged."""
    return "AP@" + metric[len("mAP@"):] if metric.startswith("mAP@") else metric


#: Rows of UDHT's Tables 2 and 3 in the paper's order (ITQ, PCAH, LSH, DSH, SpH, SH, AGH;
#: DH, UH-BDNN, DeepBit; its baseline, then UDHT), with our variants after the method they vary.
PAPER_ROW_ORDER = ("itq", "pcah", "lsh", "dsh", "sph", "sh", "agh", "agh2",
                   "dh", "uh-bdnn", "deepbit", "deepbit-e2e",
                   "tag-binary", "tag-binary-e2e", "udht-frozen", "udht")


def method_sort_key(method: str, display_name: str, deep: bool, supervised: bool = False) -> tuple:
    """Table rows and legend entries: non-deep before deep; the paper's methods in its row order;
    any other method (a plugin, a new proposal) after them by display name, where papers put theirs;
    supervised references last, apart from the unsupervised methods they are a reference for."""
    known = method in PAPER_ROW_ORDER
    return (supervised, deep, not known, PAPER_ROW_ORDER.index(method) if known else 0, display_name.lower(), method)


@dataclass(frozen=True)
class Style:
    """How one method is drawn in every figure (and coloured on the web page)."""

    color: str
    marker: str
    linestyle: str

    def kw(self) -> dict[str, Any]:
        return {"color": self.color, "marker": self.marker, "linestyle": self.linestyle}


#: The paper's methods keep these colours in every figure of every run (16 distinct colours,
#: none grey: grey is the chance level). Other methods and named configurations draw from
#: EXTRA_COLOURS by a stable hash of their name, skipping colours already taken in the report.
METHOD_COLOURS = {
    "itq": "#1f77b4", "pcah": "#ff7f0e", "lsh": "#2ca02c", "dsh": "#9467bd", "sph": "#8c564b",
    "sh": "#e377c2", "agh": "#17becf", "agh2": "#bcbd22", "tag-binary": "#000075", "tag-binary-e2e": "#469990",
    "udht-frozen": "#f032e6", "udht": "#d62728", "dh": "#aaffc3", "uh-bdnn": "#808000", "deepbit": "#ffd8b1",
    "deepbit-e2e": "#dcbeff",
}
EXTRA_COLOURS = ("#800000", "#000000", "#b8860b", "#4363d8", "#7cb342", "#9a6324", "#5c4d7d", "#e6550d",
                 "#00a087", "#c51b7d", "#3c5488", "#a0522d")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "*")


def _stable_index(name: str, n: int) -> int:
    return zlib.crc32(name.encode("utf-8")) % n  # not hash(): that changes from run to run


def method_styles(methods: list[tuple[str, str, bool]]) -> dict[str, Style]:
    """One style per method, decided once for a whole report (:attr:`ReportData.styles`).

    A method's colour depends on its name only (the paper's methods: a fixed colour; others:
    a stable hash into the extra colours, moved on to the next free one when taken), so
    the same method looks the same in every figure and every run. Beyond 24 methods colours
    repeat, but never with the same marker. Deep methods are drawn solid, non-deep dashed.
    """
    out: dict[str, Style] = {}
    taken = {METHOD_COLOURS[m] for m, _, _ in methods if m in METHOD_COLOURS}
    for i, (name, _, deep) in enumerate(methods):
        base = name.partition("@")[0]
        if name in METHOD_COLOURS:
            colour = METHOD_COLOURS[name]
        else:
            # its own colour, unless an earlier method of this report took it: then the next free one
            start = _stable_index(name, len(EXTRA_COLOURS))
            ring = EXTRA_COLOURS[start:] + EXTRA_COLOURS[:start]
            colour = next((c for c in ring if c not in taken), ring[0])
            taken.add(colour)
        known = list(METHOD_COLOURS)
        marker = MARKERS[(known.index(base) if base in known else i) % len(MARKERS)]
        out[name] = Style(colour, marker, "-" if deep else "--")
    return out


def methods_in_order(cells: pd.DataFrame) -> list[tuple[str, str, bool]]:
    """(method, display name, deep) of the methods in ``cells``, in :func:`method_sort_key` order."""
    rows = cells.drop_duplicates("method")
    sup = dict(zip(rows["method"], rows["supervised"])) if "supervised" in rows else {}
    triples = ((m, d, bool(x)) for m, d, x in rows[["method", "display_name", "deep"]].itertuples(index=False))
    return sorted(triples, key=lambda r: method_sort_key(*r, supervised=bool(sup.get(r[0], False))))


#: the prefix of category-aware retrieval's metrics (hashbench.evaluation.category)
CATEGORY_AWARE = "category-aware "


def metric_sort_key(metric: str) -> tuple:
    """The paper's order: mAP@50000 (Table 2), mAP@5000 (Table 3), other K, mAP@all, then P@N, P@r, R@r;
    category-aware mAP@K last, in the same order among themselves."""
    if metric.startswith(CATEGORY_AWARE):
        return (4, metric_sort_key(metric[len(CATEGORY_AWARE):]))
    kind, _, arg = metric.partition("@")
    family = {"mAP": 0, "P": 1, "R": 2}.get(kind, 3)
    if arg == "all":
        return (family, 1, 0, 0, metric)
    if arg.isdigit():
        k = int(arg)
        # 50000 first, then 5000, then the rest by decreasing K: the paper's table order.
        return (family, 0, {50000: 0, 5000: 1}.get(k, 2) if family == 0 else 0, -k if family == 0 else k, metric)
    return (family, 2, 0, 0, metric)


@dataclass(frozen=True)
class ConventionGroup:
    """Cells scored under the same evaluator conventions."""

    ties: str
    empty: str
    tie_seed: int | None
    preset: str | None

    @property
    def slug(self) -> str:
        parts = [f"ties-{self.ties}", f"empty-{self.empty}"]
        if self.tie_seed is not None:
            parts.append(f"seed{self.tie_seed}")
        if self.preset:
            parts.append(f"preset-{self.preset}")
        return slug("_".join(parts))

    def describe(self) -> str:
        ties = {
            "index": "items at equal Hamming distance are ranked by database index",
            "random": f"items at equal Hamming distance are ranked in a seeded random order (seed {self.tie_seed})",
            "tie-aware": "ties are scored by their exact expectation over all orders of the tied items (tie-aware)",
        }.get(self.ties, f"ties: {self.ties}")
        empty = {
            "zero": "a query with no relevant item in the top K counts as AP 0",
            "drop": "a query with no relevant item in the top K is left out of the mean",
        }.get(self.empty, f"empty queries: {self.empty}")
        text = f"{ties}; {empty}"
        if self.preset:
            text += f"; evaluator preset {self.preset}"
        return text


@dataclass
class Protocol:
    """One column group: a dataset under one split and one feature extractor."""

    key: str  # unique within a report
    dataset: str
    name: str
    label: str  # what the table header shows
    split_key: str | None
    split_protocol: str | None
    split_sizes: dict[str, int]
    backbone: dict[str, Any]
    features_description: str
    chance: float | None
    summary: str
    topk_effective: dict[str, int] = field(default_factory=dict)  # "mAP@5000" -> effective K
    n_db: int | None = None
    n_query: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the dataset's recorded options (its config)
    stage: str = ""  # what the features are, in words, as recorded at extraction ("ImageNet ... features")

    @property
    def protocol_name(self) -> str | None:
        """The dataset's named protocol ("paper"), from its options or the split's name."""
        if self.options.get("protocol") is not None:
            return str(self.options["protocol"])
        sp = self.split_protocol or ""
        return sp[len(self.name) + 1:] if sp.startswith(self.name + "-") else (sp or None)

    def whole_database(self, metric: str) -> bool:
        """True when ``metric`` is mAP over the whole database (mAP@all, or K at least the database)."""
        if metric == "mAP@all":
            return True
        eff = self.topk_effective.get(metric)
        return eff is not None and self.n_db is not None and eff >= self.n_db

    @property
    def weights(self) -> str:
        return str(self.backbone.get("weights", "unknown"))

    @property
    def random_weights(self) -> bool:
        return self.weights == "random"

    @property
    def network(self) -> str:
        """The backbone network's name ("AlexNet", "EfficientNet-Lite0"), from the recorded description."""
        head = (self.features_description or "").split(" (")[0].strip()
        return head.rsplit(" ", 1)[0] if " " in head else (head or "backbone")

    def stage_warning(self) -> tuple[str, str] | None:
        """(title, text) of the warning box that says which stage these results come from, or None
        (ImageNet features of a real dataset need no warning)."""
        if self.random_weights:
            return (f"Random backbone weights ({self.label})",
                    f"The features come from a randomly initialised {self.network}, not from ImageNet weights: "
                    "these numbers test the pipeline and are not comparable to published results (which use "
                    "ImageNet features).")
        if self.name == "synthetic":  # the embedded default: real features, drawn pictures
            what = self.stage or f"{self.network} features"
            side = self.backbone.get("crop")
            return (f"Synthetic stage ({self.label})",
                    f"{what} of synthetic images: drawn {self.options.get('image_size', 64)}-px scenes"
                    + (f" (resized to {side} px for the network)" if side else "")
                    + " with Flickr-style tags, calibrated against real MIRFLICKR's statistics. The features are "
                    "real ImageNet features but the pictures are not photographs: not comparable to published "
                    "numbers. End-to-end methods fine-tune only the backbone's top by default (finetune='top').")
        return None

    def describe_features(self) -> str:
        """The features in words; random weights are said plainly, in capitals."""
        text = self.features_description or json.dumps(self.backbone, sort_keys=True)
        if self.random_weights:
            text += " -- RANDOM (untrained) backbone weights, NOT ImageNet features: not comparable to published numbers"
        return text

    def describe_split(self) -> str:
        sizes = ", ".join(f"{k} {v:,}" for k, v in self.split_sizes.items())
        proto = f"{self.split_protocol} split" if self.split_protocol else "split"
        return f"{proto} ({sizes})" if sizes else proto


@dataclass
class ReportData:
    """Every verified cell of a results folder, one row per cell, with its groups."""

    root: Path
    frame: pd.DataFrame  # one row per cell; column "cell" holds the Cell
    protocols: dict[str, Protocol]
    groups: list[ConventionGroup]
    #: every method of the folder in table order, and its style: decided once, read by every writer
    methods: list[tuple[str, str, bool]] = field(default_factory=list)
    styles: dict[str, Style] = field(default_factory=dict)
    _per_query: dict[int, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    _curves: dict[int, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def cells(self, group: ConventionGroup) -> pd.DataFrame:
        return self.frame[self.frame["group"] == group]

    @property
    def supervised(self) -> set[str]:
        """Methods that learned from labels: shown apart, as references, never ranked with the others."""
        if "supervised" not in self.frame:
            return set()
        return set(self.frame.loc[self.frame["supervised"], "method"])

    def ordered(self, cells: pd.DataFrame) -> list[tuple[str, str, bool]]:
        """(method, display name, deep) of the methods in ``cells``, in the report's one order."""
        present = set(cells["method"])
        return [m for m in self.methods if m[0] in present]

    def metrics(self, group: ConventionGroup) -> list[str]:
        """The metrics present in a group, in the paper's table order ("chance" excluded)."""
        sub = self.cells(group)
        names = [c for c in self.frame.columns
                 if c.startswith(("mAP@", "P@", "R@", CATEGORY_AWARE + "mAP@")) and sub[c].notna().any()]
        return sorted(names, key=metric_sort_key)

    def per_query(self, row: int) -> dict[str, np.ndarray]:
        """The per-query arrays of the cell in frame row ``row`` (read once)."""
        if row not in self._per_query:
            self._per_query[row] = self.frame.at[row, "cell"].load_per_query()
        return self._per_query[row]

    def curves(self, row: int) -> dict[str, np.ndarray]:
        if row not in self._curves:
            self._curves[row] = self.frame.at[row, "cell"].load_curves()
        return self._curves[row]


def _protocol_of(record: dict[str, Any]) -> tuple:
    ds = record.get("dataset", {})
    split = ds.get("split", {}) or {}
    backbone = (record.get("features") or {}).get("backbone") or {}
    return (ds.get("key"), split.get("key"), json.dumps(backbone, sort_keys=True))


def _convention_of(record: dict[str, Any]) -> ConventionGroup:
    ev = record.get("evaluation") or {}
    ties = str(ev.get("ties", "unknown"))
    return ConventionGroup(
        ties=ties,
        empty=str(ev.get("empty", "unknown")),
        # the tie seed only matters for the random tie order
        tie_seed=int(ev["seed"]) if ties == "random" and ev.get("seed") is not None else None,
        preset=ev.get("preset") or None,
    )


def load_report_data(results: str | Path) -> ReportData:
    """Read every verified cell under ``results`` (raises :class:`ResultsError` if there is none)."""
    root = Path(results)
    cells: list[Cell] = list(iter_cells(root, errors="warn"))
    if not cells:
        raise ResultsError(
            f"results folder {root}: no finished cells to report on (run `python -m hashbench run` first)"
        )
    rows = []
    protocol_ids: dict[tuple, str] = {}
    protocols: dict[str, Protocol] = {}
    for cell in cells:
        r = cell.record
        ds = r.get("dataset", {})
        pkey = _protocol_of(r)
        if pkey not in protocol_ids:
            pid = f"p{len(protocol_ids)}"
            protocol_ids[pkey] = pid
            split = ds.get("split", {}) or {}
            feats = r.get("features") or {}
            ev = r.get("evaluation") or {}
            topk = ev.get("topk") or []
            eff = ev.get("topk_effective") or []
            protocols[pid] = Protocol(
                key=pid,
                dataset=str(ds.get("key")),
                name=str(ds.get("name") or ds.get("key")),
                label=str(ds.get("name") or ds.get("key")),
                split_key=split.get("key"),
                split_protocol=split.get("protocol"),
                split_sizes={str(k): int(v) for k, v in (split.get("sizes") or {}).items()},
                backbone=dict(feats.get("backbone") or {}),
                features_description=str(feats.get("description") or ""),
                stage=str(feats.get("stage") or ""),
                chance=None if ds.get("chance") is None else float(ds["chance"]),
                summary=str(ds.get("summary") or ""),
                topk_effective={
                    ("mAP@all" if k is None else f"mAP@{k}"): int(e) for k, e in zip(topk, eff) if e is not None
                },
                n_db=ev.get("n_db"),
                n_query=ev.get("n_query"),
                options=dict(((ds.get("fingerprint") or {}).get("config")) or {}),
            )
        method = r.get("method", {})
        row: dict[str, Any] = {
            "protocol": protocol_ids[pkey],
            "dataset": str(ds.get("key")),
            "method": str(method.get("name")),
            "display_name": str(method.get("display_name") or method.get("name")),
            "deep": bool(method.get("deep", False)),
            "supervised": bool(method.get("supervised", False)),
            "bits": int(r["bits"]),
            "seed": int(r["seed"]),
            "group": _convention_of(r),
            "cell": cell,
        }
        for k, v in (r.get("metrics") or {}).items():
            row[k] = np.nan if v is None else float(v)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame = frame.sort_values(["protocol", "deep", "display_name", "bits", "seed"], ignore_index=True)

    _label_protocols(protocols)
    groups = sorted(set(frame["group"]), key=lambda g: g.slug)
    if len(groups) > 1:
        warnings.warn(
            f"results folder {root} holds cells scored under {len(groups)} different evaluator conventions "
            f"({', '.join(g.slug for g in groups)}); they are reported in separate tables and figures, never mixed",
            stacklevel=2,
        )
    for pid, p in protocols.items():
        # the chance level belongs to the split: it must agree across the cells of a protocol
        chances = {round(float(c.record["dataset"].get("chance", np.nan)), 6) for c in frame.loc[frame.protocol == pid, "cell"]}
        if len(chances) > 1:
            warnings.warn(f"dataset {p.label}: cells disagree on the chance level ({sorted(chances)})", stacklevel=2)
    methods = methods_in_order(frame)
    styles = method_styles(methods)
    for m in set(frame.loc[frame["supervised"], "method"]):  # supervised references: dotted, apart
        styles[m] = Style(styles[m].color, styles[m].marker, ":")
    return ReportData(root=root, frame=frame, protocols=protocols, groups=groups, methods=methods,
                      styles=styles)


def _label_protocols(protocols: dict[str, Protocol]) -> None:
    """Give two protocols of one dataset labels that tell them apart (weights, then split)."""
    by_name: dict[str, list[Protocol]] = {}
    for p in protocols.values():
        by_name.setdefault(p.name, []).append(p)
    for name, ps in by_name.items():
        if len(ps) == 1:
            continue
        warnings.warn(
            f"dataset {name} appears under {len(ps)} protocols (split or features differ); "
            "each gets its own column group",
            stacklevel=3,
        )
        for p in ps:
            bits = []
            if len({q.weights for q in ps}) > 1:
                bits.append(f"{p.weights} weights")
            if len({q.split_key for q in ps}) > 1 or not bits:
                bits.append(f"split {str(p.split_key)[:6]}")
            if len({json.dumps(q.backbone, sort_keys=True) for q in ps}) > len({q.weights for q in ps}):
                bits.append(f"{p.backbone.get('resize', '?')}px")
            p.label = f"{name} ({', '.join(bits)})"
        labels = [p.label for p in ps]
        if len(set(labels)) < len(labels):  # still alike (e.g. another backbone seed): say which is which
            for p in ps:
                p.label = f"{p.label} [{p.key}]"
