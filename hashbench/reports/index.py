"""The report's front page: a Markdown index linking every table and figure, with provenance."""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .collect import ConventionGroup, ReportData
from .hyperparams import index_lines
from .tables import MetricTable, describe_metric


def _rel(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def _distinct(values: list[Any]) -> str:
    """"a" when all agree, else "a (3 cells), b (1 cell)"."""
    counts = Counter(str(v) for v in values if v not in (None, ""))
    if not counts:
        return "not recorded"
    if len(counts) == 1:
        return f"`{next(iter(counts))}`"
    return ", ".join(f"`{v}` ({n} cell{'s' if n > 1 else ''})" for v, n in counts.most_common())


def provenance_items(data: ReportData) -> list[tuple[str, str]]:
    """Provenance of the cells, aggregated: what ran them, where and when, as (what, value) pairs."""
    recs = [c.record for c in data.frame["cell"]]
    prov = [r.get("provenance") or {} for r in recs]
    commits = [
        (p.get("git_commit") or "") + (" (uncommitted changes)" if p.get("git_dirty") else "") for p in prov
    ]
    libs: dict[str, list[str]] = {}
    for p in prov:
        for k, v in (p.get("libraries") or {}).items():
            libs.setdefault(k, []).append(v)
    hw = [
        ", ".join(
            f"{k} {v}" for k, v in (p.get("hardware") or {}).items() if v not in (None, "")
        ) or None
        for p in prov
    ]
    started = sorted(p["started"] for p in prov if p.get("started"))
    finished = sorted(p["finished"] for p in prov if p.get("finished"))
    experiments = [((p.get("experiment") or {}).get("source") or "command line") if p.get("experiment") else None
                   for p in prov]
    items = [
        ("cells", str(len(recs))),
        ("hashbench", _distinct([p.get("code_version") or r.get("hashbench_version") for p, r in zip(prov, recs)])),
        ("git commit", _distinct(commits)),
        ("command", _distinct([p.get("command") for p in prov])),
        ("experiment", _distinct(experiments)),
        ("python", _distinct([p.get("python") for p in prov])),
        ("platform", _distinct([p.get("platform") for p in prov])),
        ("hardware", _distinct(hw)),
        ("computed", f"{started[0] if started else '?'} to {finished[-1] if finished else '?'}"),
    ]
    items += [(k, _distinct(libs[k])) for k in sorted(libs)]
    return [(k, v.replace("\n", " ")) for k, v in items]


def provenance_lines(data: ReportData) -> list[str]:
    """:func:`provenance_items` as a Markdown table."""
    return ["| | |", "|:--|:--|", *(f"| {k} | {v} |" for k, v in provenance_items(data))]


def write_index(
    data: ReportData,
    out: Path,
    *,
    tables: dict[ConventionGroup, list[tuple[MetricTable, dict[str, Path]]]],
    figures: dict[ConventionGroup, dict[str, list[Path]]],
    significance: dict[ConventionGroup, Path | None],
    published: dict[ConventionGroup, list] | None = None,
    results_arg: str,
    out_arg: str,
    version: str,
) -> Path:
    """Write ``out/index.md`` and return its path."""
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    lines = [
        "# hashbench report",
        "",
        f"Generated {now} by hashbench {version} from the results in `{results_arg}` "
        f"({len(data.frame)} cells); nothing was re-run. Regenerate with "
        f"`python -m hashbench report --results {results_arg} --out {out_arg}`.",
        "",
    ]
    for p in sorted(data.protocols.values(), key=lambda q: q.label):
        box = p.stage_warning()
        if box is not None:
            lines += [f"> **Warning: {box[0]}.** {box[1]}", ""]
    if len(data.groups) > 1:
        lines += [
            f"> **Note:** these results were scored under {len(data.groups)} different evaluator conventions; "
            "each has its own section, tables and figures. Numbers from different sections are not comparable.",
            "",
        ]
    lines += ["## Datasets", ""]
    for p in sorted(data.protocols.values(), key=lambda q: q.label):
        lines += [
            f"- **{p.label}**" + (f" -- {p.summary}" if p.summary else ""),
            f"  - split: {p.describe_split()}" + (f", key `{p.split_key}`" if p.split_key else ""),
            f"  - features: {p.describe_features()}",
            f"  - chance level (fraction of relevant query-database pairs): "
            + (f"{p.chance:.4f}" if p.chance is not None else "not recorded"),
        ]
    lines += ["", "## Provenance", "", *provenance_lines(data), ""]
    lines += index_lines(data)

    for group in data.groups:
        heading = "##" if len(data.groups) == 1 else "###"
        if len(data.groups) > 1:
            lines += [f"## Conventions `{group.slug}`", ""]
        lines += [f"Evaluation conventions: {group.describe()}.", ""]
        lines += [f"{heading} Tables", ""]
        for table, files in tables.get(group, []):
            links = " · ".join(f"[{fmt}]({_rel(path, out)})" for fmt, path in files.items())
            lines += [f"{heading}# {table.metric}", "", f"{describe_metric(table.metric, table.protocols)}. Files: {links}", ""]
            md = files.get("Markdown")
            if md is not None and md.is_file():
                lines += [md.read_text().strip(), ""]
        sig = significance.get(group)
        if sig is not None:
            lines += [
                f"Paired significance tests of each column's best method against its runner-up: "
                f"[significance.csv]({_rel(sig, out)}).",
                "",
            ]
        sections = (published or {}).get(group, [])
        if sections:
            lines += [f"{heading} Published numbers", ""]
        for section in sections:
            lines += [f"{section.note}", ""]
            for comp, files in section.comparisons:
                links = " · ".join(f"[{fmt}]({_rel(path, out)})" for fmt, path in files.items())
                lines += [f"{heading}# {comp.metric}: ours against published", "", f"Files: {links}", "",
                          comp.to_markdown().strip(), ""]
            pngs = [p for p in section.figures if p.suffix == ".png"]
            for png in pngs:
                lines += [f"![{png.stem}]({_rel(png, out)})", ""]
        lines += [f"{heading} Figures", ""]
        kinds = [
            ("map_vs_bits", "mAP against code length"),
            ("pr", "Precision-recall curves (UDHT Figure 2)"),
            ("precision_at_n", "Precision@N"),
            ("loss", "Training loss per component (UDHT Figure 4)"),
        ]
        figs = figures.get(group, {})
        for kind, title in kinds:
            paths = figs.get(kind, [])
            pngs = [p for p in paths if p.suffix == ".png"]
            if not paths:
                continue
            lines += [f"{heading}# {title}", ""]
            stems = sorted({p.with_suffix("") for p in paths}, key=lambda s: s.name)
            for stem in stems:
                others = " · ".join(
                    f"[{p.suffix[1:].upper()}]({_rel(p, out)})" for p in paths if p.with_suffix("") == stem
                )
                png = next((p for p in pngs if p.with_suffix("") == stem), None)
                if png is not None:
                    lines.append(f"![{stem.name}]({_rel(png, out)})")
                lines += [f"`{stem.name}`: {others}", ""]
    path = out / "index.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path
