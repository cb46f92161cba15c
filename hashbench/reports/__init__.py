"""Paper-style reports regenerated from the results store, without re-running anything.

>>> from hashbench.reports import generate_reports
>>> paths = generate_reports("results/", "reports/")        # doctest: +SKIP
>>> paths.index                                              # doctest: +SKIP
PosixPath('reports/index.md')

What comes out (``out/``)::

    index.html                       the same as a web page (sortable tables, SVG figures; offline)
    index.md                         links everything, with the provenance of the cells
    tables/<metric>.tex|.md|.csv     one table per metric (mAP@50000, mAP@5000, mAP@all, P@N, ...)
    tables/published_<metric>_<dataset>.tex|.md|.csv   ours beside the published numbers (when the setting matches)
    tables/significance.csv          the paired tests behind the daggers
    figures/published_<dataset>.png|.pdf|.svg          ours against published, per method
    tables/hyperparameters.md|.csv   each method's hyper-parameters, how they were chosen, stopping epochs
    figures/pr_<dataset>_<b>bits.png|.pdf              precision-recall curves (UDHT Fig. 2)
    figures/map_vs_bits_<dataset>.png|.pdf             mAP against code length
    figures/precision_at_n_<dataset>_<b>bits.png|.pdf  precision@N
    figures/loss_<dataset>_<method>.png|.pdf           training loss per component (UDHT Fig. 4)

When the results hold cells scored under different evaluator conventions (tie order,
empty queries), each convention gets its own ``out/<conventions>/tables`` and
``figures`` and its own section in the index; they are never mixed in one table.

Modules, one job each: :mod:`.collect` (read and group the cells; the method order and
styles every writer uses), :mod:`.tables`, :mod:`.significance`, :mod:`.published` (ours
beside the published numbers of :mod:`hashbench.published`), :mod:`.plots`, :mod:`.index`
(Markdown) and :mod:`.html` (the web page).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import ConfigError
from .collect import ConventionGroup, ReportData, load_report_data, slug
from .published import PublishedSection, compare_protocol
from .significance import TESTS
from .tables import MetricTable, build_table, significance_rows

__all__ = ["ReportPaths", "generate_reports", "load_report_data"]

FORMATS = ("png", "pdf", "svg")
_MANIFEST = ".hashbench-report.json"


@dataclass
class ReportPaths:
    """What :func:`generate_reports` wrote."""

    index: Path
    html: Path | None = None
    tables: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    significance: list[Path] = field(default_factory=list)

    def all(self) -> list[Path]:
        return [self.index, *([self.html] if self.html else []), *self.tables, *self.significance, *self.figures]

    def get(self, key: str, default: Any = None) -> Any:
        """Dict-style access (``paths.get("index")``)."""
        return getattr(self, key, default)


def generate_reports(
    results: str | Path,
    out: str | Path,
    *,
    formats: Iterable[str] = ("png", "pdf", "svg"),
    figures: bool = True,
    test: str = "bootstrap",
    alpha: float = 0.05,
    n_boot: int = 5000,
    seed: int = 0,
) -> ReportPaths:
    """Regenerate every table, figure and the index from the results store at ``results``.

    Args:
        results: the results folder (``python -m hashbench run --results``).
        out: the report folder; files this function wrote before and does not write again
            (e.g. figures of a method since removed) are deleted, nothing else is touched.
        formats: figure formats, any of "png", "pdf", "svg" (the web page shows the SVGs, or the
            PNGs when no SVG is written).
        figures: False writes the tables and the index only (fast).
        test: the paired test that decides the daggers: "bootstrap" (paired bootstrap of
            the mean difference, default) or "wilcoxon" (signed-rank test).
        alpha: its significance level.
        n_boot, seed: resamples and seed of the paired bootstrap (always reported in
            ``significance.csv``).

    Raises:
        ResultsError: the folder holds no finished cell.
        ConfigError: an unknown figure format or test.
    """
    from .._version import __version__
    from .html import write_html
    from .hyperparams import write_hyperparameters
    from .index import write_index
    from .plots import published_figure, write_figures

    formats = tuple(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"report formats {formats!r}: choose among {', '.join(FORMATS)}")
    if test not in TESTS:
        raise ConfigError(f"significance test {test!r}: choose one of {', '.join(TESTS)}")
    data: ReportData = load_report_data(results)
    out_path = Path(out)
    out_path.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(index=out_path / "index.md")

    tables: dict[ConventionGroup, list[tuple[MetricTable, dict[str, Path]]]] = {}
    figs: dict[ConventionGroup, dict[str, list[Path]]] = {}
    sig_files: dict[ConventionGroup, Path | None] = {}
    published: dict[ConventionGroup, list[PublishedSection]] = {}
    for group in data.groups:
        base = out_path if len(data.groups) == 1 else out_path / group.slug
        tdir = base / "tables"
        tdir.mkdir(parents=True, exist_ok=True)
        metrics = data.metrics(group)
        sig_rows: list[dict[str, Any]] = []
        tables[group] = []
        for metric in metrics:
            table = build_table(data, group, metric, test=test, alpha=alpha, n_boot=n_boot, seed=seed)
            stem = tdir / slug(metric)
            files = {
                "LaTeX": stem.with_suffix(".tex"),
                "Markdown": stem.with_suffix(".md"),
                "CSV": stem.with_suffix(".csv"),
            }
            files["LaTeX"].write_text(table.to_latex())
            files["Markdown"].write_text(table.to_markdown())
            files["CSV"].write_text(table.to_csv())
            paths.tables += list(files.values())
            tables[group].append((table, files))
            sig_rows += significance_rows(table)
        sig_files[group] = None
        if sig_rows:
            sig = tdir / "significance.csv"
            with open(sig, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(sig_rows[0]), lineterminator="\n")
                w.writeheader()
                w.writerows(sig_rows)
            paths.significance.append(sig)
            sig_files[group] = sig
        if figures:
            figs[group] = write_figures(data, group, base / "figures", formats, metrics)
            paths.figures += [p for ps in figs[group].values() for p in ps]
        published[group] = []
        group_tables = [t for t, _ in tables[group]]
        for pkey in sorted(set(data.cells(group)["protocol"]), key=lambda k: (data.protocols[k].label, k)):
            protocol = data.protocols[pkey]
            comparisons, note = compare_protocol(data, protocol, group_tables)
            section = PublishedSection(protocol=protocol, note=note)
            for comp in comparisons:
                stem = tdir / f"published_{slug(comp.metric)}_{slug(protocol.label)}"
                files = {"LaTeX": stem.with_suffix(".tex"), "Markdown": stem.with_suffix(".md"),
                         "CSV": stem.with_suffix(".csv")}
                files["LaTeX"].write_text(comp.to_latex())
                files["Markdown"].write_text(comp.to_markdown())
                files["CSV"].write_text(comp.to_csv())
                paths.tables += list(files.values())
                section.comparisons.append((comp, files))
            if figures and comparisons:
                section.figures = published_figure(
                    data, protocol, comparisons, base / "figures" / f"published_{slug(protocol.label)}", formats)
                figs[group].setdefault("published", []).extend(section.figures)
                paths.figures += section.figures
            published[group].append(section)

    paths.tables += write_hyperparameters(data, out_path / "tables")
    common = dict(tables=tables, figures=figs, significance=sig_files, published=published,
                  results_arg=str(results), out_arg=str(out), version=__version__)
    write_index(data, out_path, **common)
    paths.html = write_html(data, out_path, **common)
    _prune_stale(out_path, paths, keep_figures=not figures)
    return paths


def _prune_stale(out: Path, paths: ReportPaths, *, keep_figures: bool) -> None:
    """Delete files that an earlier report wrote and this one did not; remember what this one wrote.

    With ``keep_figures`` (a tables-only run) earlier figures are left alone and stay listed.
    """
    manifest = out / _MANIFEST
    now = sorted(p.relative_to(out).as_posix() for p in paths.all())
    try:
        before = [str(x) for x in json.loads(manifest.read_text()).get("files", [])]
    except (OSError, ValueError, AttributeError):
        before = []
    if keep_figures:
        kept = [rel for rel in before if "figures" in Path(rel).parts and (out / rel).is_file()]
        now = sorted(set(now) | set(kept))
    for rel in set(before) - set(now):
        target = out / rel
        # only plain files inside ``out``: a damaged manifest must not reach anywhere else
        if ".." not in Path(rel).parts and target.is_file():
            target.unlink()
    manifest.write_text(json.dumps({"files": now}, indent=1) + "\n")
