"""Our numbers beside the published ones, where the setting is the same.

A column group of a report (one dataset under one split and backbone) matches a published
setting when its dataset, the dataset's protocol and the options the paper fixes (e.g.
MIRFLICKR's 38 categories) are the published ones; then each metric and code length that
the paper reports too gets a comparison: published value, ours, and ours minus published.
A row of ours is compared with a published row when it runs the method the paper's row
names (any named configuration of it, ``udht@paper`` included) with the parameters the
row requires (e.g. ``aggregation = "idf"`` for Table 4's idf row). Published rows that no
method here implements and our methods the paper lacks are listed too, with a dash.

Where nothing matches (the embedded synthetic set, another protocol, other code lengths)
:func:`compare_protocol` says why, so that a report never compares unlike things. Where the
setting matches but the run differs in a way that moves numbers (random backbone weights,
smaller splits), the comparison carries that as a caveat.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..published import load_published, matching_rows
from .collect import Protocol, ReportData
from .tables import MetricTable, latex_escape

DECIMALS = 4


@dataclass
class ComparisonRow:
    label: str  # our display name, or the paper's row name when we have no such method
    method: str | None  # our method (None: the paper's row has no implementation here)
    published_name: str | None
    deep: bool
    values: dict[int, tuple[float | None, float | None]] = field(default_factory=dict)  # bits -> (paper, ours)
    sources: dict[int, str] = field(default_factory=dict)  # bits -> "Table 2"

    def diff(self, bits: int) -> float | None:
        pub, ours = self.values.get(bits, (None, None))
        return None if pub is None or ours is None else ours - pub


@dataclass
class Comparison:
    """One metric of one column group against the published numbers of its setting."""

    metric: str
    protocol: Protocol
    bits: list[int]
    rows: list[ComparisonRow]
    papers: list[str]
    tables: list[str]
    caveats: list[str]

    def caption(self) -> str:
        text = (f"{self.metric} on {self.protocol.label}: the published value ({'; '.join(self.tables)} of "
                f"{'; '.join(self.papers)}), ours, and the difference ours \u2212 published. "
                "A dash: no such number (a method the paper reports that hashbench lacks, or one of ours the paper "
                "does not report).")
        if self.caveats:
            text += " Caveats: " + " ".join(self.caveats)
        return text

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["algorithm", "method", "published_as", "bits", "published", "ours", "difference", "source"])
        for r in self.rows:
            for b in self.bits:
                pub, ours = r.values.get(b, (None, None))
                d = r.diff(b)
                w.writerow([r.label, r.method or "", r.published_name or "", b,
                            "" if pub is None else repr(pub), "" if ours is None else repr(ours),
                            "" if d is None else repr(d), r.sources.get(b, "")])
        return buf.getvalue()

    def cells(self, row: ComparisonRow, b: int) -> tuple[str, str, str]:
        pub, ours = row.values.get(b, (None, None))
        d = row.diff(b)
        return (("\u2013" if pub is None else f"{pub:.{DECIMALS}f}"),
                ("\u2013" if ours is None else f"{ours:.{DECIMALS}f}"),
                ("\u2013" if d is None else f"{d:+.{DECIMALS}f}"))

    def to_markdown(self) -> str:
        head = ["Algorithm"] + [f"{b} bits · {c}" for b in self.bits for c in ("paper", "ours", "\u0394")]
        lines = [f"**{self.metric} against the published numbers.** {self.caption()}", "",
                 "| " + " | ".join(head) + " |", "|:--|" + "--:|" * (3 * len(self.bits))]
        for r in self.rows:
            name = r.label + (f" (paper: {r.published_name})" if r.published_name and r.method else "")
            cells = [c for b in self.bits for c in self.cells(r, b)]
            lines.append("| " + " | ".join([name.replace("|", r"\|"), *cells]) + " |")
        return "\n".join(lines) + "\n"

    def to_latex(self) -> str:
        n = len(self.bits)
        head1 = "Algorithm & " + " & ".join(f"\\multicolumn{{3}}{{c}}{{{b} bits}}" for b in self.bits) + " \\\\"
        rules = " ".join(f"\\cmidrule(lr){{{2 + 3 * i}-{4 + 3 * i}}}" for i in range(n))
        head2 = " & " + " & ".join(["Paper & Ours & $\\Delta$"] * n) + " \\\\"
        body = []
        for r in self.rows:
            cells = [latex_escape(c).replace("?", "--") for b in self.bits for c in self.cells(r, b)]
            body.append(latex_escape(r.label) + " & " + " & ".join(cells) + " \\\\")
        return (
            "% hashbench: ours against published numbers; needs \\usepackage{booktabs} and \\usepackage{graphicx}\n"
            "\\begin{table}[tbp]\n\\centering\n\\small\n"
            f"\\caption{{{latex_escape(self.caption())}}}\n"
            "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n"
            f"\\begin{{tabular}}{{l{'rrr' * n}}}\n\\toprule\n{head1}\n{rules}\n{head2}\n\\midrule\n"
            + "\n".join(body) + "\n\\bottomrule\n\\end{tabular}%\n}\n\\end{table}\n"
        )


def _settings_text(pub: pd.DataFrame) -> str:
    seen = []
    for _, r in pub.drop_duplicates(["dataset", "protocol"]).iterrows():
        opts = ", ".join(f"{k}={v}" for k, v in r["options"].items())
        seen.append(f"{r['dataset']} under protocol '{r['protocol']}'" + (f" with {opts}" if opts else ""))
    return "; ".join(seen) or "none"


def caveats_for(protocol: Protocol, pub: pd.DataFrame) -> list[str]:
    """What differs between this run and the published setting although the setting matches."""
    out = []
    weights = sorted(set(pub["weights"]) - {""})
    if weights and protocol.weights not in weights:
        names = {"imagenet": "ImageNet", "random": "RANDOM (untrained)"}
        out.append(f"Our features use {names.get(protocol.weights, protocol.weights)} backbone weights, the paper's "
                   f"{', '.join(names.get(w, w) for w in weights)} weights: the differences measure that too.")
    backbones = sorted(set(pub["backbone"]) - {""}) if "backbone" in pub else []
    ours_net = str(protocol.backbone.get("name") or "")
    if backbones and ours_net and ours_net not in backbones:
        out.append(f"Our features come from {ours_net}, the paper's from {', '.join(backbones)}.")
    if "selection" in pub:
        chosen = pub[pub["selection"].astype(str).str.strip() != ""]
        for how, sub in chosen.groupby("selection", sort=False):
            names = ", ".join(dict.fromkeys(sub["name"]))
            out.append(f"The published {names} numbers were selected on {how} (their code kept the epoch with the "
                       f"best mAP on {how}); ours never look at query labels, so they may sit below.")
    recalled = pub[pub["note"].astype(str).str.lower().str.startswith("recalled")]
    if not recalled.empty:
        out.append(f"The published {', '.join(dict.fromkeys(recalled['name']))} numbers are recalled, not read from "
                   "the paper (see the note in their source file).")
    splits = [s for s in pub["split"] if s]
    if splits:
        paper = splits[0]
        ours = {k: protocol.split_sizes.get(k) for k in paper}
        if any(ours[k] != v for k, v in paper.items()):
            fmt = lambda d: ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} ?" for k, v in d.items())  # noqa: E731
            out.append(f"Our split ({fmt(ours)}) is not the paper's size ({fmt(paper)}).")
    return out


def compare_protocol(data: ReportData, protocol: Protocol, tables: list[MetricTable]) -> tuple[list[Comparison], str]:
    """The comparisons of one column group with the published numbers, and a sentence on what applies.

    Returns ([], why not) when no published number applies.
    """
    published = load_published()
    pub = matching_rows(protocol.name, protocol.protocol_name, protocol.options, published)
    if pub.empty:
        same = published[published["dataset"] == protocol.name] if not published.empty else published
        if same.empty:
            return [], (f"No published number applies to {protocol.label}: no paper in hashbench's published data "
                        f"reports on dataset {protocol.name} (published settings: {_settings_text(published)}).")
        keys = dict.fromkeys(k for r in same["options"] for k in r)  # once each, not once per published row
        opts = ", ".join(f"{k}={protocol.options.get(k)}" for k in keys)
        return [], (f"No published number applies to {protocol.label}: its setting (protocol "
                    f"'{protocol.protocol_name}'{', ' + opts if opts else ''}) is not a published one "
                    f"({_settings_text(same)}).")
    comparisons = []
    skipped = []
    for table in tables:
        if protocol.key not in table.bits:
            continue
        pm = pub[pub["metric"] == table.metric]
        if pm.empty:
            skipped.append(table.metric)
            continue
        bits = sorted(set(table.bits[protocol.key]) & set(int(b) for b in pm["bits"]))
        if not bits:
            skipped.append(f"{table.metric} at {', '.join(map(str, table.bits[protocol.key]))} bits")
            continue
        comparisons.append(_compare(data, protocol, table, pm[pm["bits"].isin(bits)], bits))
    published_metrics = sorted(set(pub["metric"]))
    note = (f"{protocol.label} matches a published setting ({_settings_text(pub)}); published metrics: "
            f"{', '.join(published_metrics)}.")
    if skipped:
        note += f" No published number for {', '.join(skipped)}."
    if not comparisons:
        note = f"No published number applies to {protocol.label}: " + note
    return comparisons, note


def _cell_params(data: ReportData, method: str, protocol: Protocol, bits: int) -> dict[str, Any]:
    f = data.frame
    rows = f[(f.method == method) & (f.protocol == protocol.key) & (f.bits == bits)]
    if rows.empty:
        return {}
    return dict((rows.iloc[0]["cell"].record.get("method") or {}).get("params") or {})


def _matches(params: dict[str, Any], required: dict[str, Any]) -> bool:
    return all(k in params and json.dumps(params[k]) == json.dumps(v) for k, v in required.items())


def _compare(data: ReportData, protocol: Protocol, table: MetricTable, pub: pd.DataFrame,
             bits: list[int]) -> Comparison:
    rows: list[ComparisonRow] = []
    used: set[int] = set()
    for method, display, deep in table.rows:
        base = method.partition("@")[0]
        row = ComparisonRow(label=display, method=method, published_name=None, deep=deep)
        for b in bits:
            entry = table.entries.get((method, protocol.key, b))
            ours = None if entry is None or not np.isfinite(entry.mean) else float(entry.mean)
            params = _cell_params(data, method, protocol, b)
            cands = pub[(pub["method"] == base) & (pub["bits"] == b)]
            cands = cands[[_matches(params, p) for p in cands["params"]]]
            if not cands.empty:
                # the row asking most of our parameters is the most specific; the paper's order breaks ties
                best = cands.iloc[int(np.argmax([len(p) for p in cands["params"]]))]
                same = cands[np.isclose(cands["value"], best["value"])]
                used.update(int(i) for i in cands.index)
                row.values[b] = (float(best["value"]), ours)
                row.sources[b] = "; ".join(dict.fromkeys(same["table"]))
                chosen = str(best.get("selection") or "").strip()
                row.published_name = row.published_name or (
                    str(best["name"]) + (f" [selected on {chosen}]" if chosen else ""))
            else:
                row.values[b] = (None, ours)
        rows.append(row)
    # the paper's rows that none of ours answers (no implementation here, or not run)
    rest = pub[~pub.index.isin(used)]
    ours = {m.partition("@")[0] for m, _, _ in table.rows}
    listed: list[tuple] = []
    for name, sub in rest.groupby("name", sort=False):
        method = sub["method"].iloc[0] if isinstance(sub["method"].iloc[0], str) else None
        numbers = (method, tuple(sorted(zip(sub["bits"], sub["value"]))))
        if method is not None and numbers in listed:
            continue  # the same numbers in another table (Table 4's mean row is Table 2's UDHT row)
        listed.append(numbers)
        why = ("no implementation in hashbench" if method is None
               else f"our {method} ran with other parameters" if method in ours else f"{method} not run")
        row = ComparisonRow(label=f"{name} (paper; {why})", method=None, published_name=str(name),
                            deep=sub["kind"].iloc[0] == "deep")
        for _, r in sub.iterrows():
            row.values[int(r["bits"])] = (float(r["value"]), None)
            row.sources[int(r["bits"])] = str(r["table"])
        rows.append(row)
    rows = [r for r in rows if not r.deep] + [r for r in rows if r.deep]
    return Comparison(
        metric=table.metric,
        protocol=protocol,
        bits=bits,
        rows=rows,
        papers=list(dict.fromkeys(pub["paper"])),
        tables=list(dict.fromkeys(pub["table"])),
        caveats=caveats_for(protocol, pub),
    )


@dataclass
class PublishedSection:
    """What the report shows for one column group: the comparisons and their files, or why there are none."""

    protocol: Protocol
    note: str
    comparisons: list[tuple[Comparison, dict[str, Any]]] = field(default_factory=list)  # (table, {format: path})
    figures: list[Any] = field(default_factory=list)
