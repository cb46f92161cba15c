"""Paper-style result tables (the layout of UDHT's Tables 2 and 3), as LaTeX, Markdown and CSV.

One table per metric and convention group. Rows: one per method, non-deep methods first
and deep ones after (the paper's grouping), then, below a rule, any supervised reference
(a method that learned from labels: typed "supervised reference", never bold, underlined or
tested against the unsupervised methods it bounds), each group in the paper's row order for the
methods of its Table 2 (:func:`~hashbench.reports.collect.method_sort_key`) and then any other method (a plugin,
a new proposal) by display name, so a new method lands at the bottom, where papers put
theirs; then a
*Chance* row (the fraction of relevant query-database pairs, i.e. the expected precision of
a random ranking, which the evaluator reports beside the methods; shown for precision-like
metrics only, as it is no baseline for recall). Columns: one group per dataset protocol,
one column per bit length.

Cells: the mean over the method's seeds with 4 decimals, and when there are several seeds
the sample standard deviation in compact form (``0.6258±.0031``). The best value of each
column is bold, the second underlined; ranks are taken on the values *as printed* (so two
methods that print the same are tied, and both are marked). A dagger on the best marks a
significant win over the runner-up by a paired test over queries
(:mod:`hashbench.reports.significance`).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .collect import CATEGORY_AWARE, ConventionGroup, Protocol, ReportData, per_query_key, slug
from .significance import PairedTest, paired_test

DECIMALS = 4
CHANCE_LABEL = "Chance"
TYPE_LABELS = {False: "non-deep", True: "deep"}
SUPERVISED_LABEL = "supervised reference"

#: Metrics whose per-query mean has the chance level as its random-ranking baseline.
_PRECISION_LIKE = ("mAP@", "P@")


def describe_metric(metric: str, protocols: list[Protocol] | None = None) -> str:
    """The metric in words (with its effective cut-off when the database is smaller than K)."""
    if metric.startswith(CATEGORY_AWARE):
        inner = describe_metric(metric[len(CATEGORY_AWARE):], protocols)
        return ("Category-aware retrieval (one code piece per category: a query asks for each of its labels c, "
                "only the c-th pieces are compared, relevant = carries c; the mean over categories of "
                "the per-category value): " + inner[0].lower() + inner[1:])
    kind, _, arg = metric.partition("@")
    if kind == "mAP":
        if arg == "all":
            text = "Mean average precision over the whole ranked database (mAP@all)"
        else:
            text = f"Mean average precision over the top {int(arg):,} retrieved items (mAP@{arg})"
            eff = {p.label: p.topk_effective.get(metric) for p in protocols or []}
            small = {k: v for k, v in eff.items() if v is not None and v < int(arg)}
            if small:
                text += " (the database is smaller than K, so K is the whole database: " + ", ".join(
                    f"{k} {v:,}" for k, v in small.items()
                ) + ")"
        return text
    if kind == "P" and arg.startswith("r"):
        return f"Precision within Hamming radius {arg[1:]} ({metric}; an empty Hamming ball counts as precision 0)"
    if kind == "R" and arg.startswith("r"):
        return f"Recall within Hamming radius {arg[1:]} ({metric})"
    if kind == "P" and arg.isdigit():
        return f"Precision of the top {int(arg):,} retrieved items ({metric})"
    return metric


@dataclass
class Entry:
    """One table cell."""

    mean: float
    std: float | None = None  # None with a single seed
    n: int = 1
    rank: int = 0  # 1 best, 2 second, 0 otherwise
    dagger: bool = False

    def text(self, fmt: str) -> str:
        """The number as printed in ``fmt`` ("latex", "markdown", "plain"), without bold/underline."""
        if not np.isfinite(self.mean):
            return "--" if fmt == "latex" else "–"
        s = f"{self.mean:.{DECIMALS}f}"
        if self.std is not None and np.isfinite(self.std):
            sd = f"{self.std:.{DECIMALS}f}"
            sd = sd[1:] if sd.startswith("0.") else sd  # compact: .0031
            s += {"latex": r"{\scriptsize$\pm$" + sd + "}", "markdown": "±" + sd}.get(fmt, "±" + sd)
        if self.dagger:
            s += {"latex": r"$^\dagger$", "markdown": "†"}.get(fmt, "†")
        return s


@dataclass
class MetricTable:
    """A table of one metric for one convention group: the numbers and their marks."""

    metric: str
    group: ConventionGroup
    protocols: list[Protocol]  # the column groups, in order
    bits: dict[str, list[int]]  # protocol key -> its bit lengths
    rows: list[tuple[str, str, bool]]  # (method, display name, deep), in table order
    entries: dict[tuple[str, str, int], Entry]  # (method, protocol key, bits) -> entry
    chance: dict[str, float] = field(default_factory=dict)  # protocol key -> chance level (if shown)
    tests: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # (protocol, bits) -> test info
    test: str = "bootstrap"
    alpha: float = 0.05
    n_boot: int = 5000
    boot_seed: int = 0
    n_seeds: tuple[int, int] = (1, 1)  # (min, max) seeds per cell
    supervised: set[str] = field(default_factory=set)  # rows below a rule, never ranked or tested
    row_groups: dict[str, str] = field(default_factory=dict)  # method -> its own row group (below the deep ones)

    @property
    def columns(self) -> list[tuple[Protocol, int]]:
        return [(p, b) for p in self.protocols for b in self.bits[p.key]]

    def best(self, protocol: str, bits: int) -> list[str]:
        """The methods marked best (bold) in a column."""
        return [m for (m, p, b), e in self.entries.items() if p == protocol and b == bits and e.rank == 1]

    def second(self, protocol: str, bits: int) -> list[str]:
        return [m for (m, p, b), e in self.entries.items() if p == protocol and b == bits and e.rank == 2]

    # ----------------------------------------------------------- renderers
    def caption(self) -> str:
        """The protocol in words: datasets, splits, features, conventions, and the legend (plain text)."""
        parts = [describe_metric(self.metric, self.protocols) + "."]
        # datasets that share a split layout and features are described once
        shared: dict[tuple[str, str], list[Protocol]] = {}
        for p in self.protocols:
            shared.setdefault((p.describe_split(), p.describe_features()), []).append(p)
        for (split, feats), ps in shared.items():
            known = [p for p in ps if p.chance is not None]
            if len(ps) == 1 and known:
                chance = f"; chance level {known[0].chance:.4f}"
            elif known:
                chance = "; chance level " + ", ".join(f"{p.label} {p.chance:.4f}" for p in known)
            else:
                chance = ""
            parts.append(f"{', '.join(p.label for p in ps)}: {split}; features: {feats}{chance}.")
        parts.append(f"Evaluation: Hamming ranking; {self.group.describe()}.")
        legend = (
            f"Best in each column in bold, second underlined (compared as printed, {DECIMALS} decimals)."
        )
        if self.supervised:
            legend += (" Supervised references (trained with the training items' labels) are listed below a rule "
                       "and not ranked: they bound what the unsupervised methods could reach.")
        if self.n_seeds[1] > 1:
            legend += (
                " Mean ± sample standard deviation over the method's seeds"
                + (f" ({self.n_seeds[0]}-{self.n_seeds[1]} seeds)" if self.n_seeds[0] != self.n_seeds[1] else f" ({self.n_seeds[1]} seeds)")
                + "; a number without ± comes from one seed."
            )
        if self.tests:
            pq = per_query_key(self.metric)
            name = (
                f"two-sided Wilcoxon signed-rank test on the per-query {pq} differences"
                if self.test == "wilcoxon"
                else f"two-sided paired bootstrap of the mean per-query {pq} difference over the queries, "
                f"{self.n_boot:,} resamples, seed {self.boot_seed}"
            )
            legend += (
                f" † marks a best method that beats the runner-up significantly ({name}; per-query values "
                f"averaged over seeds; p < {self.alpha:g})."
            )
        if self.chance:
            legend += (
                " Chance: the fraction of relevant query-database pairs, the expected precision of a random ranking."
            )
        parts.append(legend)
        return " ".join(parts)

    def _row_entries(self) -> list[tuple[str, str, list[Entry | None]]]:
        """(display name, type label, entries per column) for every row, chance last."""
        out = []
        for method, display, deep in self.rows:
            kind = SUPERVISED_LABEL if method in self.supervised else TYPE_LABELS[deep]
            if method in self.row_groups and method not in self.supervised:
                kind = f"{kind}, {self.row_groups[method]}"
            out.append((display, kind, [self.entries.get((method, p.key, b)) for p, b in self.columns]))
        if self.chance:
            out.append((CHANCE_LABEL, "", [Entry(self.chance[p.key]) if p.key in self.chance else None for p, _ in self.columns]))
        return out

    def to_latex(self, *, label: str | None = None) -> str:
        """A ``table`` float (booktabs; needs ``\\usepackage{booktabs,graphicx}``), built with pandas' Styler."""
        cols = pd.MultiIndex.from_tuples([(p.label, f"{b} bits") for p, b in self.columns])
        rows = self._row_entries()
        index = pd.MultiIndex.from_tuples([(name, typ) for name, typ, _ in rows])
        frame = pd.DataFrame([ents for _, _, ents in rows], index=index, columns=cols, dtype=object)

        def fmt(e: Any) -> str:
            return e.text("latex") if isinstance(e, Entry) else "--"

        def marks(col: pd.Series) -> list[str]:
            # Styler turns "command: --rwrap" into \command{...} around the printed value
            return [
                {1: "textbf: --rwrap;", 2: "underline: --rwrap;"}.get(e.rank, "") if isinstance(e, Entry) else ""
                for e in col
            ]

        styler = frame.style.format(fmt, na_rep="--").apply(marks, axis=0)
        styler = styler.format_index(escape="latex", axis=0).format_index(escape="latex", axis=1)
        tabular = styler.to_latex(
            hrules=True,
            multicol_align="c",
            column_format="ll" + "c" * len(self.columns),
            siunitx=False,
        )
        tabular = _booktabs_layout(
            tabular,
            sizes=[sum(not d and m not in self.supervised and m not in self.row_groups for m, _, d in self.rows),
                   sum(d and m not in self.supervised and m not in self.row_groups for m, _, d in self.rows),
                   *[sum(self.row_groups.get(m) == g and m not in self.supervised for m, _, _ in self.rows)
                     for g in dict.fromkeys(self.row_groups[m] for m, _, _ in self.rows if m in self.row_groups)],
                   sum(m in self.supervised for m, _, _ in self.rows),
                   int(bool(self.chance))],
            groups=[len(self.bits[p.key]) for p in self.protocols],
        )
        label = label or f"tab:hashbench-{slug(self.metric)}-{self.group.slug}"
        return (
            "% hashbench results table; needs \\usepackage{booktabs} and \\usepackage{graphicx}\n"
            "\\begin{table}[tbp]\n\\centering\n\\small\n"
            f"\\caption{{{latex_escape(self.caption())}}}\n\\label{{{label}}}\n"
            "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n"
            f"{tabular.rstrip()}%\n}}\n\\end{{table}}\n"
        )

    def to_markdown(self) -> str:
        """A GitHub Markdown table (bold best, <u>underlined</u> second) with the caption above it."""
        head = ["Algorithm", "Type"] + [f"{p.label} · {b} bits" for p, b in self.columns]
        lines = [
            f"**{self.metric}.** {self.caption()}",
            "",
            "| " + " | ".join(_md_escape(h) for h in head) + " |",
            "|" + "|".join([":--", ":--"] + ["--:"] * len(self.columns)) + "|",
        ]
        for name, typ, ents in self._row_entries():
            cells = []
            for e in ents:
                if e is None:
                    cells.append("–")
                    continue
                s = e.text("markdown")
                cells.append({1: f"**{s}**", 2: f"<u>{s}</u>"}.get(e.rank, s))
            shown = f"*{name}*" if name == CHANCE_LABEL and not typ else _md_escape(name)
            lines.append("| " + " | ".join([shown, typ] + cells) + " |")
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        """The same table with plain numbers: mean per column, plus std and seed count when several seeds."""
        several = self.n_seeds[1] > 1
        header = ["algorithm", "type"]
        for p, b in self.columns:
            header.append(f"{p.label} {b} bits")
            if several:
                header += [f"{p.label} {b} bits std", f"{p.label} {b} bits seeds"]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        for name, typ, ents in self._row_entries():
            row: list[Any] = [name, typ]
            for e in ents:
                row.append("" if e is None or not np.isfinite(e.mean) else repr(float(e.mean)))
                if several:
                    row.append("" if e is None or e.std is None else repr(float(e.std)))
                    row.append("" if e is None or name == CHANCE_LABEL else e.n)
            w.writerow(row)
        return buf.getvalue()


def build_table(
    data: ReportData,
    group: ConventionGroup,
    metric: str,
    *,
    test: str = "bootstrap",
    alpha: float = 0.05,
    n_boot: int = 5000,
    seed: int = 0,
) -> MetricTable:
    """Aggregate the cells of ``group`` for ``metric``: means, stds, ranks and the significance marks."""
    cells = data.cells(group)
    cells = cells[cells[metric].notna()] if metric in cells else cells.iloc[0:0]
    protocols = [data.protocols[k] for k in sorted(set(cells["protocol"]), key=lambda k: (data.protocols[k].label, k))]
    bits = {p.key: sorted(set(cells.loc[cells.protocol == p.key, "bits"])) for p in protocols}
    rows = data.ordered(cells)
    entries: dict[tuple[str, str, int], Entry] = {}
    n_min, n_max = np.inf, 0
    for (method, pkey, b), sub in cells.groupby(["method", "protocol", "bits"], sort=False):
        vals = sub[metric].to_numpy(dtype=np.float64)
        n = len(vals)
        n_min, n_max = min(n_min, n), max(n_max, n)
        entries[(method, pkey, int(b))] = Entry(
            mean=float(vals.mean()), std=float(vals.std(ddof=1)) if n > 1 else None, n=n
        )
    supervised = data.supervised & {m for m, _, _ in rows}
    table = MetricTable(
        supervised=supervised,
        row_groups={m: g for m, g in data.row_groups.items() if m in {r[0] for r in rows}},
        metric=metric,
        group=group,
        protocols=protocols,
        bits=bits,
        rows=rows,
        entries=entries,
        test=test,
        alpha=alpha,
        n_boot=n_boot,
        boot_seed=seed,
        n_seeds=(int(n_min) if n_max else 1, int(n_max) or 1),
    )
    if metric.startswith(_PRECISION_LIKE):
        table.chance = {p.key: p.chance for p in protocols if p.chance is not None}
    pq = per_query_key(metric)
    for p in protocols:
        for b in bits[p.key]:
            # supervised references are shown, never ranked against the methods they bound
            col = {m: e for (m, pk, bb), e in entries.items() if pk == p.key and bb == b and m not in supervised}
            _rank_column(col)
            info = _test_column(data, cells, col, p.key, b, pq, test=test, alpha=alpha, n_boot=n_boot, seed=seed)
            if info is not None:
                table.tests[(p.key, b)] = info
                if info["result"].significant:
                    for m in info["best"]:
                        col[m].dagger = True
    return table


def _rank_column(col: dict[str, Entry]) -> None:
    """Dense ranks on the printed values: every method printing the top value is 1, the next value 2."""
    printed = {m: round(e.mean, DECIMALS) for m, e in col.items() if np.isfinite(e.mean)}
    levels = sorted(set(printed.values()), reverse=True)
    for m, v in printed.items():
        r = levels.index(v) + 1
        col[m].rank = r if r <= 2 else 0


def _test_column(
    data: ReportData,
    cells: pd.DataFrame,
    col: dict[str, Entry],
    protocol: str,
    bits: int,
    pq: str,
    **kw: Any,
) -> dict[str, Any] | None:
    """Test the best method against the runner-up of one column, on the per-query values ``pq``."""
    best = [m for m, e in col.items() if e.rank == 1]
    second = [m for m, e in col.items() if e.rank == 2]
    if len(best) != 1 or not second:
        return None  # a tie at the top (or a lone method): there is no single winner to test
    runner = max(second, key=lambda m: col[m].mean)
    arrays = {}
    for m in (best[0], runner):
        rows = cells.index[(cells.method == m) & (cells.protocol == protocol) & (cells.bits == bits)]
        per = [data.per_query(r).get(pq) for r in rows]
        per = [np.asarray(x, dtype=np.float64) for x in per if x is not None]
        if not per or len({x.shape for x in per}) != 1:
            return None  # per-query values missing (or inconsistent): no test, no dagger
        with np.errstate(invalid="ignore"):
            # the mean over seeds per query; a query dropped in every seed stays NaN
            stacked = np.vstack(per)
            counts = np.isfinite(stacked).sum(axis=0)
            arrays[m] = np.where(counts > 0, np.nansum(stacked, axis=0) / np.maximum(counts, 1), np.nan)
    a, b = arrays[best[0]], arrays[runner]
    if a.shape != b.shape:
        return None
    result: PairedTest = paired_test(a, b, **kw)
    return {"best": best, "runner_up": runner, "per_query": pq, "result": result}


def significance_rows(table: MetricTable) -> list[dict[str, Any]]:
    """One row per tested column, for ``significance.csv``."""
    out = []
    for (pkey, b), info in table.tests.items():
        r: PairedTest = info["result"]
        p = next(pp for pp in table.protocols if pp.key == pkey)
        out.append(
            {
                "conventions": table.group.slug,
                "metric": table.metric,
                "per_query": info["per_query"],
                "dataset": p.label,
                "bits": b,
                "best": ",".join(info["best"]),
                "runner_up": info["runner_up"],
                "n_queries": r.n,
                "mean_diff": r.mean_diff,
                "p_wilcoxon": r.p_wilcoxon,
                "p_bootstrap": r.p_bootstrap,
                "ci95_low": r.ci_low,
                "ci95_high": r.ci_high,
                "test": r.test,
                "alpha": r.alpha,
                "significant": r.significant,
            }
        )
    return out


# ----------------------------------------------------------------- helpers
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "†": r"$^\dagger$",
    "–": "--",
    "—": "---",
    "×": r"$\times$",
    "·": r"$\cdot$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "<": r"$<$",
    ">": r"$>$",
}


def latex_escape(text: str) -> str:
    """Escape text for LaTeX; the few Unicode symbols we write are mapped, any other non-ASCII becomes '?'."""
    out = []
    for ch in str(text):
        if ch in _LATEX_SPECIAL:
            out.append(_LATEX_SPECIAL[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append("?")  # pdflatex without extra packages cannot typeset arbitrary Unicode
    return "".join(out)


def _md_escape(text: str) -> str:
    return str(text).replace("|", r"\|")


def _booktabs_layout(tabular: str, *, sizes: list[int], groups: list[int]) -> str:
    """Turn Styler's tabular into the paper's layout.

    Styler writes the column headers on two lines (dataset, bits) after ``\\toprule``, then
    ``\\midrule`` and one line per row. Here the first header line gets "Algorithm" and
    the (empty) type heading, ``\\cmidrule`` rules go under each dataset group, and a
    ``\\midrule`` separates the row groups of ``sizes`` (non-deep, deep, supervised
    references, the chance row), skipping empty ones.
    """
    lines = tabular.strip().split("\n")
    try:
        top = lines.index("\\toprule")
        mid = lines.index("\\midrule")
        bottom = lines.index("\\bottomrule")
    except ValueError as exc:  # pragma: no cover - would mean pandas changed its output
        raise RuntimeError(f"unexpected Styler.to_latex output:\n{tabular}") from exc
    header = lines[top + 1:mid]
    body = lines[mid + 1:bottom]
    n_rows = sum(sizes)
    if len(body) != n_rows or len(header) < 2:  # pragma: no cover
        raise RuntimeError(f"unexpected Styler.to_latex layout ({len(header)} header, {len(body)} body lines)")
    # header[0]: " &  & \multicolumn{4}{c}{synthetic} ..."; header[1]: " &  & 12 bits & ..."
    header = header[:2]  # a third line would hold index names, which we do not set
    header[0] = re.sub(r"^\s*&\s*&", "Algorithm & Type &", header[0])
    start, rules = 3, []
    for width in groups:
        rules.append(f"\\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    new_body: list[str] = []
    start_row = 0
    for size in sizes:
        if not size:
            continue
        if new_body:
            new_body.append("\\midrule")
        new_body += body[start_row:start_row + size]
        start_row += size
    return "\n".join(
        lines[: top + 1] + [header[0], " ".join(rules), header[1], "\\midrule"] + new_body + lines[bottom:]
    )
