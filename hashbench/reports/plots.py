"""Figures, PNG and PDF, readable with many methods.

* precision-recall curves per dataset and bit length, all methods (UDHT's Figure 2): the
  evaluator's precision at 1,000 evenly spaced recall levels, averaged over seeds;
* mAP against bits per dataset, one panel per mAP@K, with the spread over seeds as error bars;
* precision@N against N per dataset and bit length;
* training-loss curves per component (UDHT's Figure 4: L1, L2, L3) for every method whose
  cells recorded a ``history``, one panel per component, one line per bit length.

Every method keeps one style in every figure, decided once for the whole report
(:attr:`~hashbench.reports.collect.ReportData.styles`): its own colour (the paper's methods
a fixed one each, others a stable colour from their name), a marker, solid lines for deep
methods and dashed ones for non-deep methods, as the tables group them. The chance level
is a grey dotted line. Legends sit outside the axes, to the right, with ``constrained``
layout, so the saved image has exactly the figure's size: ``FIGSIZE[kind]`` inches at
``DPI``. Figures are drawn on the Agg canvas without pyplot (no display needed, and the
caller's pyplot backend is not touched); PDFs and SVGs carry no creation date.

When K is at least the database size, mAP@K is mAP@all (the same numbers): the mAP
figure then draws one panel for all of them and says why, instead of identical panels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .collect import ConventionGroup, Protocol, ReportData, Style, slug

DPI = 150
#: (width, height) in inches of each kind of figure.
FIGSIZE = {
    "pr": (8.0, 5.0),
    "map_vs_bits": (12.0, 4.5),
    "precision_at_n": (8.0, 5.0),
    "loss": (12.0, 4.0),
    "published": (12.0, 5.0),
}
#: colours of the loss figure's code lengths (methods take theirs from ReportData.styles)
BIT_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
CHANCE_STYLE = {"color": "0.45", "linestyle": ":", "linewidth": 1.5}
LOSS_LINESTYLES = ("-", "--", "-.", ":")
#: history entries that are recorded per epoch but are not losses: not drawn
NOT_LOSSES = frozenset({"end_to_end", "beta", "stage"})  # "stage": DeepBit's stage flag

#: What UDHT's loss components are, for the panel titles (the paper's equations are unnumbered).
UDHT_COMPONENTS = {
    "L1": "L1: pairwise similarity (sec. 3.4.1)",
    "L2": "L2: mini-batch hinge (sec. 3.4.2)",
    "L3": "L3: quantisation (sec. 3.4.3)",
    "L4": "L4: contrastive, baseline (sec. 3.5)",
}
#: the held-out objective that early stopping watches (recorded per epoch as ``history["heldout"]``)
HELDOUT_TITLE = "held-out objective"


def _subplots(kind: str, nrows: int = 1, ncols: int = 1):
    """A figure of ``FIGSIZE[kind]`` with its axes, drawn by the Agg canvas.

    Built with ``matplotlib.figure.Figure`` rather than pyplot: no display is needed and
    the caller's pyplot state (backend, open figures, e.g. in a notebook) is left alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE[kind], layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig, path: Path, formats: Iterable[str]) -> list[Path]:
    written = []
    path.parent.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        meta = {"CreationDate": None} if fmt == "pdf" else {"Software": None} if fmt == "png" else \
            {"Date": None} if fmt == "svg" else None
        fig.savefig(target, format=fmt, dpi=DPI, metadata=meta)
        written.append(target)
    return written


def _legend(fig, handles_labels: dict[str, Any], *, title: str | None = None) -> None:
    if not handles_labels:
        return
    n = len(handles_labels)
    fig.legend(
        list(handles_labels.values()),
        list(handles_labels.keys()),
        loc="outside right upper",
        title=title,
        title_fontsize="small",
        alignment="left",
        fontsize="small" if n <= 14 else "x-small",
        ncols=1 if n <= 20 else 2,
        frameon=False,
    )


def _kinds_title(cells) -> str | None:
    """Say what the line styles mean when deep and non-deep methods (or a supervised reference) share a figure."""
    sup = "supervised" in cells and bool(cells["supervised"].any())
    unsup = cells[~cells["supervised"]] if sup else cells
    lines = ["solid: deep", "dashed: non-deep"] if unsup["deep"].nunique() > 1 else []
    if sup:
        lines.append("dotted: supervised reference")
    return "\n".join(lines) or None


def _seed_mean(arrays: list[np.ndarray]) -> np.ndarray | None:
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays if a is not None]
    if not arrays or len({a.shape for a in arrays}) != 1:
        return None
    return np.nanmean(np.vstack(arrays), axis=0) if len(arrays) > 1 else arrays[0]


def _subtitle(protocol: Protocol, *, own_line: bool = False) -> str:
    """The random-weights warning; on its own line above a single narrow axes, beside the legend."""
    if not protocol.random_weights:
        return ""
    return ("\n" if own_line else " ") + "[RANDOM backbone weights, not ImageNet]"


def pr_curve_figure(data: ReportData, group: ConventionGroup, protocol: Protocol, bits: int,
                    styles: dict[str, Style], path: Path, formats: Iterable[str]) -> list[Path]:
    """Precision against recall for every method at one bit length (UDHT's Figure 2)."""
    cells = data.cells(group)
    cells = cells[(cells.protocol == protocol.key) & (cells.bits == bits)]
    fig, axes = _subplots("pr")
    ax = axes[0, 0]
    handles: dict[str, Any] = {}
    for i, (method, display, _) in enumerate(data.ordered(cells)):
        rows = cells.index[cells.method == method]
        curves = [data.curves(r) for r in rows]
        prec = _seed_mean([c.get("pr_precision") for c in curves])
        rec = _seed_mean([c.get("pr_recall") for c in curves])
        if prec is None or rec is None:
            continue
        every = max(1, len(rec) // 10)
        (h,) = ax.plot(rec, prec, label=display, linewidth=1.4, markersize=5,
                       markevery=(int(i * every / 7) % every, every), **styles[method].kw())
        handles[display] = h
    if protocol.chance is not None:
        handles["Chance"] = ax.axhline(protocol.chance, **CHANCE_STYLE)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_xlim(0, 1)
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{protocol.label}, {bits} bits: precision-recall{_subtitle(protocol, own_line=True)}", fontsize="medium")
    _legend(fig, handles, title=_kinds_title(cells))
    return _save(fig, path, formats)


def precision_at_n_figure(data: ReportData, group: ConventionGroup, protocol: Protocol, bits: int,
                          styles: dict[str, Style], path: Path, formats: Iterable[str]) -> list[Path]:
    """Precision of the top N against N (log scale), every method, one bit length."""
    cells = data.cells(group)
    cells = cells[(cells.protocol == protocol.key) & (cells.bits == bits)]
    fig, axes = _subplots("precision_at_n")
    ax = axes[0, 0]
    handles: dict[str, Any] = {}
    for method, display, _ in data.ordered(cells):
        rows = cells.index[cells.method == method]
        curves = [data.curves(r) for r in rows]
        prec = _seed_mean([c.get("precision_at_n") for c in curves])
        n = curves[0].get("precision_at_n_n") if curves else None
        if prec is None or n is None:
            continue
        # N beyond the database is evaluated at the whole database: plot where it was measured
        ev = data.frame.at[rows[0], "cell"].record.get("evaluation", {})
        eff = ev.get("precision_at_effective")
        x = np.asarray(eff if eff is not None and len(eff) == len(n) else n, dtype=np.float64)
        (h,) = ax.plot(x, prec, label=display, linewidth=1.4, markersize=6, **styles[method].kw())
        handles[display] = h
    if protocol.chance is not None:
        handles["Chance"] = ax.axhline(protocol.chance, **CHANCE_STYLE)
    ax.set_xscale("log")
    ax.set_xlabel("N (number of top-ranked items)")
    ax.set_ylabel("Precision@N")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{protocol.label}, {bits} bits: precision@N{_subtitle(protocol, own_line=True)}", fontsize="medium")
    _legend(fig, handles, title=_kinds_title(cells))
    return _save(fig, path, formats)


def map_panels(data: ReportData, cells, protocol: Protocol, metrics: list[str]) -> list[list[str]]:
    """The mAP metrics to draw, one list per panel: those over the whole database share one.

    mAP@K with K at least the database size ranks the whole database, so it is mAP@all: the
    same numbers (checked on the cells) are drawn once, not in identical panels.
    """
    whole = [m for m in metrics if protocol.whole_database(m)]
    if len(whole) > 1:
        values = cells[whole].to_numpy(dtype=np.float64)
        if not np.allclose(values, values[:, :1], rtol=0, atol=1e-12, equal_nan=True):
            whole = []  # not the same numbers after all: keep their own panels
    if len(whole) < 2:
        return [[m] for m in metrics]
    panels: list[list[str]] = []
    for m in metrics:
        if m not in whole:
            panels.append([m])
        elif m == whole[0]:
            panels.append(whole)
    return panels


def map_vs_bits_figure(data: ReportData, group: ConventionGroup, protocol: Protocol, metrics: list[str],
                       styles: dict[str, Style], path: Path, formats: Iterable[str]) -> list[Path]:
    """Each mAP@K against the bit length, one panel per distinct K; error bars: std over seeds."""
    cells = data.cells(group)
    cells = cells[cells.protocol == protocol.key]
    metrics = [m for m in metrics if m.startswith("mAP@") and m in cells and cells[m].notna().any()]
    panels = map_panels(data, cells, protocol, metrics)
    fig, axes = _subplots("map_vs_bits", 1, max(1, len(panels)))
    handles: dict[str, Any] = {}
    bits_all = sorted(set(cells.bits))
    methods = data.ordered(cells)
    # dodge the methods sideways a little so that their error bars do not hide each other
    span = (max(bits_all) - min(bits_all)) or 8
    dodge = {m: (i - (len(methods) - 1) / 2) * span * 0.008 for i, (m, _, _) in enumerate(methods)}
    for ax, panel in zip(axes[0], panels):
        metric = panel[0]
        stats = cells.groupby(["method", "bits"])[metric].agg(["mean", "std", "count"]).reset_index()
        for method, display, _ in methods:
            s = stats[stats.method == method].sort_values("bits")
            if s.empty:
                continue
            err = s["std"].fillna(0).to_numpy() if (s["count"] > 1).any() else None
            h = ax.errorbar(s["bits"] + dodge[method], s["mean"], yerr=err, label=display, linewidth=1.4,
                            markersize=6, capsize=3 if err is not None else 0, **styles[method].kw())
            handles[display] = h
        if protocol.chance is not None:
            handles["Chance"] = ax.axhline(protocol.chance, **CHANCE_STYLE)
        ax.set_xticks(bits_all)
        ax.set_xlabel("Code length (bits)")
        if len(panel) > 1:
            ax.set_ylabel("mAP (whole database)")
            n_db = f"{protocol.n_db:,}" if protocol.n_db is not None else "?"
            # said where the panel is: these K reach past the database, so all rank all of it
            ax.set_title(f"{' = '.join(panel)}\n(K \u2265 database size, {n_db}: the same numbers, drawn once)",
                         fontsize="medium")
        else:
            ax.set_ylabel(metric)
            eff = protocol.topk_effective.get(metric)
            k = metric.partition("@")[2]
            note = f" (K = whole database, {eff:,})" if eff is not None and k.isdigit() and eff < int(k) else ""
            ax.set_title(metric + note, fontsize="medium")
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"{protocol.label}: mAP against code length{_subtitle(protocol)}", fontsize="medium")
    _legend(fig, handles, title=_kinds_title(cells))
    return _save(fig, path, formats)


def loss_figure(data: ReportData, group: ConventionGroup, protocol: Protocol, method: str,
                path: Path, formats: Iterable[str]) -> list[Path]:
    """Training loss per component (UDHT's Figure 4) of one method: one panel per component, a line per bit length.

    The lowest seed of each bit length is drawn (one training run, as in the paper). The
    x axis is the index of the recorded value (an epoch or an iteration, as the method
    records them); a panel uses a log scale when its values are positive and span more
    than two decades.
    """
    cells = data.cells(group)
    cells = cells[(cells.protocol == protocol.key) & (cells.method == method)]
    cells = cells.sort_values(["bits", "seed"]).drop_duplicates("bits")
    histories = {int(b): (data.frame.at[r, "cell"].record.get("history") or {}) for r, b in zip(cells.index, cells.bits)}
    stops = {int(b): _stop_marks(data.frame.at[r, "cell"].record) for r, b in zip(cells.index, cells.bits)}
    # histories also carry per-epoch bookkeeping that is not a loss (UDHT's phase flag, L4's beta)
    components = sorted({k for h in histories.values() for k, v in h.items()
                         if isinstance(v, list) and v and k not in NOT_LOSSES})
    ncols = min(4, max(1, len(components)))
    nrows = int(np.ceil(max(1, len(components)) / ncols))
    fig, axes = _subplots("loss", nrows, ncols)
    handles: dict[str, Any] = {}
    for ax, comp in zip(axes.ravel(), components):
        values = []
        for b, hist in histories.items():
            y = np.asarray(hist.get(comp) or [], dtype=np.float64)
            if y.size == 0:
                continue
            values.append(y)
            j = list(histories).index(b)
            # line styles differ too, so that code lengths with equal losses stay visible
            ls = LOSS_LINESTYLES[j % len(LOSS_LINESTYLES)]
            (h,) = ax.plot(np.arange(1, y.size + 1), y, color=BIT_COLOURS[j % len(BIT_COLOURS)], linestyle=ls,
                           marker=("o", "s", "^", "D", "v", "P")[j % 6],
                           markevery=max(1, y.size // 8), markersize=4, linewidth=1.3)
            handles[f"{b} bits"] = h
            for x in stops[b][0]:  # the epoch whose weights were kept (early stopping)
                ax.axvline(x, color=BIT_COLOURS[j % len(BIT_COLOURS)], linestyle=ls, linewidth=0.9, alpha=0.6)
        allv = np.concatenate(values) if values else np.array([])
        finite = allv[np.isfinite(allv)]
        if finite.size and finite.min() > 0 and finite.max() / finite.min() > 100:
            ax.set_yscale("log")
        ax.set_title(_component_title(method, comp), fontsize="medium")
        # short label: four panels side by side leave little room
        ax.set_xlabel("Epoch / iteration")
        ax.set_ylabel("Loss")
        ax.grid(True, alpha=0.3)
    for ax in axes.ravel()[len(components):]:
        ax.set_visible(False)
    display = cells.display_name.iloc[0] if len(cells) else method
    seeds = sorted(set(int(x) for x in cells.seed))
    seed_note = f", seed {seeds[0]}" if len(seeds) == 1 else ", lowest seed per code length"
    fig.suptitle(f"{display} on {protocol.label}: training loss per component{seed_note}{_subtitle(protocol)}",
                 fontsize="medium")
    notes = [f"{b} bits: {stops[b][1]}" for b in histories if stops[b][1]]
    if notes:  # where and why training stopped; the vertical lines mark the kept epochs
        fig.supxlabel("vertical lines: kept epoch. " + "; ".join(notes), fontsize="x-small", wrap=True)
    _legend(fig, handles, title="Code length")
    return _save(fig, path, formats)


def _stop_marks(record: dict[str, Any]) -> tuple[list[int], str]:
    """(history indices of the kept epochs, a note on where and why training stopped) from
    ``fit_info["convergence"]`` (a warm-up phase, when recorded, has its own)."""
    conv = (record.get("fit_info") or {}).get("convergence")
    if not isinstance(conv, dict) or "epochs_run" not in conv:
        return [], ""
    marks, parts = [], []
    for c in ([conv["warmup"]] if isinstance(conv.get("warmup"), dict) else []) + [conv]:
        off = int(c.get("history_offset", 0))
        if c.get("best_epoch"):
            marks.append(off + int(c["best_epoch"]))
        phase = f"{c['phase']} " if c.get("phase") not in (None, "train") else ""
        parts.append(f"{phase}kept epoch {c.get('best_epoch', 0)} of {c['epochs_run']} ({c.get('stopped_because', '')})")
    return marks, ", ".join(parts)


def write_figures(data: ReportData, group: ConventionGroup, folder: Path, formats: Iterable[str],
                  metrics: list[str]) -> dict[str, list[Path]]:
    """Every figure of one convention group, under ``folder``; returns paths by kind."""
    formats = tuple(formats)
    cells = data.cells(group)
    styles = data.styles
    out: dict[str, list[Path]] = {"pr": [], "precision_at_n": [], "map_vs_bits": [], "loss": []}
    for pkey in sorted(set(cells.protocol), key=lambda k: (data.protocols[k].label, k)):
        p = data.protocols[pkey]
        ps = slug(p.label)
        sub = cells[cells.protocol == pkey]
        out["map_vs_bits"] += map_vs_bits_figure(data, group, p, metrics, styles, folder / f"map_vs_bits_{ps}", formats)
        for b in sorted(set(sub.bits)):
            out["pr"] += pr_curve_figure(data, group, p, int(b), styles, folder / f"pr_{ps}_{b}bits", formats)
            out["precision_at_n"] += precision_at_n_figure(
                data, group, p, int(b), styles, folder / f"precision_at_n_{ps}_{b}bits", formats
            )
        for method in sorted(set(sub.method)):
            rows = sub[sub.method == method]
            if any(_has_history(data.frame.at[r, "cell"].record) for r in rows.index):
                out["loss"] += loss_figure(data, group, p, method, folder / f"loss_{ps}_{slug(method)}", formats)
    return out


def _component_title(method: str, component: str) -> str:
    if component == "heldout":
        return HELDOUT_TITLE
    if "udht" in method.lower():
        return UDHT_COMPONENTS.get(component, component)
    return component


def _has_history(record: dict[str, Any]) -> bool:
    hist = record.get("history") or {}
    return any(isinstance(v, list) and len(v) > 0 for v in hist.values())


def published_figure(data: ReportData, protocol: Protocol, comparisons: list, path: Path,
                     formats: Iterable[str]) -> list[Path]:
    """Ours against published, one panel per metric, a point per method and code length.

    On the diagonal a number is reproduced exactly; above it ours is higher. Each point is
    labelled with its code length; methods keep their colour and marker from every other figure.
    """
    fig, axes = _subplots("published", 1, max(1, len(comparisons)))
    handles: dict[str, Any] = {}
    for ax, comp in zip(axes[0], comparisons):
        xs, ys = [], []
        for row in comp.rows:
            if row.method is None:
                continue
            pts = [(b, *row.values[b]) for b in comp.bits if None not in row.values.get(b, (None, None))]
            if not pts:
                continue
            b, x, y = zip(*pts)
            st = data.styles[row.method]
            h = ax.plot(x, y, linestyle="none", marker=st.marker, color=st.color, markersize=7,
                        label=row.label)[0]
            for bb, xx, yy in pts:
                ax.annotate(str(bb), (xx, yy), textcoords="offset points", xytext=(4, 3), fontsize=6, color=st.color)
            handles[row.label] = h
            xs += x
            ys += y
        if xs:
            lo = min(min(xs), min(ys))
            hi = max(max(xs), max(ys))
            pad = max(0.02, (hi - lo) * 0.08)
            lo, hi = max(0.0, lo - pad), min(1.0, hi + pad)
            handles["ours = published"] = ax.plot([lo, hi], [lo, hi], color="0.45", linestyle=":", linewidth=1.2)[0]
            ax.set_xlim(lo, hi)
            ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(f"published {comp.metric} ({'; '.join(comp.tables)})")
        ax.set_ylabel(f"ours, {comp.metric}")
        ax.set_title(comp.metric, fontsize="medium")
        ax.grid(True, alpha=0.3)
    papers = "; ".join(dict.fromkeys(p for c in comparisons for p in c.papers))
    fig.suptitle(f"{protocol.label}: ours against published (points labelled by code length; on the diagonal = "
                 f"reproduced){_subtitle(protocol)}\n{papers}", fontsize="small")
    _legend(fig, handles)
    return _save(fig, path, formats)
