"""The report as one web page: ``index.html``, readable offline.

Self-contained: the styles and the few lines of JavaScript that sort the tables are inline;
nothing is fetched from anywhere but the report folder (figures as SVG files beside the page,
links to the ``.tex``/``.md``/``.csv`` tables). It shows the same collected data as the
Markdown index, in the same method order and colours (:class:`~.collect.ReportData`):
warnings first (random backbone weights, settings no published number applies to, mixed
conventions), then the tables, ours beside the published numbers, the figures, the
hyper-parameters each cell ran with (its ``method.params``, the training's convergence
record ``fit_info.convergence`` and any model-selection record ``selection``), and the
provenance.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .collect import ConventionGroup, ReportData
from .index import _rel, provenance_items
from .tables import CHANCE_LABEL, MetricTable

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1f24;background:#fff}
main{max-width:1200px;margin:0 auto;padding:1.2em 1.5em 4em}
h1{font-size:1.7em;margin:.2em 0}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.6em}nav a{margin-right:1em}code{background:#f3f4f6;padding:0 .25em;border-radius:3px}
.warning{background:#fff4e5;border-left:5px solid #e67700;padding:.6em 1em;margin:.6em 0}
.note{background:#eef4ff;border-left:5px solid #3b6fd8;padding:.6em 1em;margin:.6em 0}
table{border-collapse:collapse;margin:.6em 0;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #d0d7de;padding:.25em .6em;text-align:right;white-space:nowrap}
th:first-child,td:first-child,td.text,th.text{text-align:left}
thead th{background:#f6f8fa;border-bottom:2px solid #8c959f}
table.sortable thead th{cursor:pointer}table.sortable thead th:hover{background:#e7ecf0}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
tr.pinned td{color:#57606a;font-style:italic}tr.deep-first td,tr.supervised-first td{border-top:2px solid #8c959f}
.swatch{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.4em;vertical-align:baseline}
.caption{color:#444;font-size:.9em;max-width:70em}.files a{margin-right:.6em}
.pos{color:#1a7f37}.neg{color:#cf222e}.wrap{overflow-x:auto}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{font-size:.85em;color:#444}details{margin:.3em 0}pre{background:#f6f8fa;padding:.5em;overflow-x:auto}
"""

# Click (or Enter on) a header: sort the body rows by that column, numbers by data-value;
# rows marked "pinned" (the chance level) stay at the bottom.
JS = """
(function () {
  function key(td) {
    if (!td) return null;
    var v = td.getAttribute('data-value');
    if (v !== null) return v === '' ? null : parseFloat(v);
    return td.textContent.trim().toLowerCase();
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var head = table.tHead.rows[table.tHead.rows.length - 1].cells;
    Array.prototype.forEach.call(head, function (th, i) {
      th.tabIndex = 0;
      function sort() {
        var asc = th.getAttribute('aria-sort') !== 'ascending';
        Array.prototype.forEach.call(head, function (o) { o.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        var pinned = rows.filter(function (r) { return r.classList.contains('pinned'); });
        rows = rows.filter(function (r) { return !r.classList.contains('pinned'); });
        rows.forEach(function (r) { r.classList.remove('deep-first'); });
        rows.sort(function (a, b) {
          var x = key(a.cells[i]), y = key(b.cells[i]);
          if (x === null || y === null) return (x === null) - (y === null);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.concat(pinned).forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener('click', sort);
      th.addEventListener('keydown', function (e) { if (e.key === 'Enter') sort(); });
    });
  });
})();
"""

_e = html.escape


def _md_inline(text: str) -> str:
    """Escape, then turn the Markdown index's `code` spans into <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", _e(text))


def _swatch(data: ReportData, method: str | None) -> str:
    style = data.styles.get(method) if method else None
    return f'<span class="swatch" style="background:{style.color}"></span>' if style else ""


def _num(value: float | None) -> str:
    return "" if value is None or not np.isfinite(value) else repr(float(value))


def _links(files: dict[str, Path], out: Path) -> str:
    return '<span class="files">' + "".join(
        f'<a href="{_e(_rel(p, out))}">{_e(fmt)}</a>' for fmt, p in files.items()) + "</span>"


def metric_table_html(data: ReportData, table: MetricTable) -> str:
    """One results table: bold best, underlined second, dagger; sortable by any column."""
    head = ['<th class="text">Algorithm</th>', '<th class="text">Type</th>']
    head += [f"<th>{_e(p.label)} · {b} bits</th>" for p, b in table.columns]
    rows = []
    first_deep = first_supervised = True
    methods = {m: d for m, _, d in table.rows}
    for (name, typ, entries), method in zip(table._row_entries(), [m for m, _, _ in table.rows] + [None]):
        cls = []
        if name == CHANCE_LABEL and not typ:
            cls.append("pinned")
        elif method in table.supervised:  # below a rule, as in the Markdown and LaTeX tables
            if first_supervised and any(m not in table.supervised for m in methods):
                cls.append("supervised-first")
            first_supervised = False
        elif method is not None and methods.get(method) and first_deep:
            first_deep = False
            if any(not d for d in methods.values()):
                cls.append("deep-first")
        cells = [f'<td class="text">{_swatch(data, method)}{_e(name)}</td>', f'<td class="text">{_e(typ)}</td>']
        for e in entries:
            if e is None:
                cells.append('<td data-value="">\u2013</td>')
                continue
            text = _e(e.text("plain"))
            text = {1: f"<strong>{text}</strong>", 2: f"<u>{text}</u>"}.get(e.rank, text)
            cells.append(f'<td data-value="{_num(e.mean)}">{text}</td>')
        rows.append(f'<tr class="{" ".join(cls)}">' + "".join(cells) + "</tr>")
    return ('<div class="wrap"><table class="sortable"><thead><tr>' + "".join(head) + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


def comparison_html(data: ReportData, comp: Any) -> str:
    """Ours beside the published numbers: paper, ours, difference per code length."""
    head = ['<th class="text">Algorithm</th>', '<th class="text">Paper\'s row</th>']
    for b in comp.bits:
        head += [f"<th>{b} bits paper</th>", f"<th>{b} bits ours</th>", f"<th>{b} bits \u0394</th>"]
    rows = []
    for r in comp.rows:
        cells = [f'<td class="text">{_swatch(data, r.method)}{_e(r.label)}</td>',
                 f'<td class="text">{_e(r.published_name or "")}</td>']
        for b in comp.bits:
            pub, ours = r.values.get(b, (None, None))
            d = r.diff(b)
            shown = comp.cells(r, b)
            sign = "" if d is None else (' class="pos"' if d > 0 else ' class="neg"' if d < 0 else "")
            cells += [f'<td data-value="{_num(pub)}" title="{_e(r.sources.get(b, ""))}">{_e(shown[0])}</td>',
                      f'<td data-value="{_num(ours)}">{_e(shown[1])}</td>',
                      f'<td data-value="{_num(d)}"{sign}>{_e(shown[2])}</td>']
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return ('<div class="wrap"><table class="sortable comparison"><thead><tr>' + "".join(head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")


def _figure(paths: list[Path], out: Path) -> str:
    by_stem: dict[Path, list[Path]] = {}
    for p in paths:
        by_stem.setdefault(p.with_suffix(""), []).append(p)
    parts = []
    for stem in sorted(by_stem, key=lambda s: s.name):
        files = by_stem[stem]
        shown = next((p for p in files if p.suffix == ".svg"), None) or next((p for p in files if p.suffix == ".png"), None)
        img = f'<img src="{_e(_rel(shown, out))}" alt="{_e(stem.name)}">' if shown else ""
        links = "".join(f'<a href="{_e(_rel(p, out))}">{p.suffix[1:].upper()}</a> ' for p in sorted(files))
        parts.append(f"<figure>{img}<figcaption><code>{_e(stem.name)}</code>: {links}</figcaption></figure>")
    return "".join(parts)


def _compact(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list)) else str(value)


def hyperparameters_html(data: ReportData) -> str:
    """Per method: the parameters all its cells share, then what differs per cell, convergence and selection."""
    parts = []
    frame = data.frame
    for method, display, _ in data.methods:
        sub = frame[frame.method == method].sort_values(["protocol", "bits", "seed"])
        recs = [c.record for c in sub["cell"]]
        params = [dict((r.get("method") or {}).get("params") or {}) for r in recs]
        keys = sorted({k for p in params for k in p} - {"bits", "seed"})
        shared = {k: params[0].get(k) for k in keys
                  if all(k in p and _compact(p[k]) == _compact(params[0][k]) for p in params)}
        varying = [k for k in keys if k not in shared]
        parts.append(f"<h3>{_swatch(data, method)}{_e(display)} <code>{_e(method)}</code></h3>")
        parts.append("<p>" + (", ".join(f"<code>{_e(k)}={_e(_compact(v))}</code>" for k, v in shared.items())
                              or "no parameters besides bits and seed") + "</p>")
        extra = any((r.get("fit_info") or {}).get("convergence") or r.get("selection") for r in recs)
        if not (varying or extra):
            continue
        head = ["dataset", "bits", "seed", *varying, "convergence", "selection"]
        rows = []
        for (_, row), rec, p in zip(sub.iterrows(), recs, params):
            conv = (rec.get("fit_info") or {}).get("convergence")
            sel = rec.get("selection")
            cells = [data.protocols[row["protocol"]].label, str(row["bits"]), str(row["seed"])]
            cells += [_compact(p.get(k, "")) for k in varying]
            tds = [f'<td class="text">{_e(c)}</td>' for c in cells]
            tds.append('<td class="text">' + (", ".join(f"{_e(str(k))}: {_e(_compact(v))}" for k, v in conv.items())
                                              if isinstance(conv, dict) else _e(_compact(conv)) if conv else "") + "</td>")
            tds.append('<td class="text">' + (
                f"<details><summary>record</summary><pre>{_e(json.dumps(sel, indent=1, sort_keys=True, default=str))}"
                "</pre></details>" if sel is not None else "") + "</td>")
            rows.append("<tr>" + "".join(tds) + "</tr>")
        parts.append('<div class="wrap"><table class="sortable"><thead><tr>'
                     + "".join(f'<th class="text">{_e(h)}</th>' for h in head)
                     + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")
    return "".join(parts)


def warnings_html(data: ReportData, published: dict[ConventionGroup, list]) -> str:
    out = []
    for p in sorted(data.protocols.values(), key=lambda q: q.label):
        box = p.stage_warning()
        if box is not None:
            out.append(f'<div class="warning"><strong>{_e(box[0])}.</strong> {_e(box[1])}</div>')
    seen = set()
    for sections in published.values():
        for s in sections:
            if s.note in seen:
                continue
            seen.add(s.note)
            if not s.comparisons:
                out.append(f'<div class="warning"><strong>Not a published setting.</strong> {_e(s.note)}</div>')
            for comp, _ in s.comparisons[:1]:
                for c in comp.caveats:
                    out.append(f'<div class="warning"><strong>Compared with the paper, but:</strong> {_e(c)}</div>')
    if len(data.groups) > 1:
        out.append(f'<div class="warning">These results were scored under {len(data.groups)} different evaluator '
                   "conventions; each has its own section. Numbers from different sections are not comparable.</div>")
    return "".join(out)


def write_html(
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
    """Write ``out/index.html`` and return its path."""
    published = published or {}
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    body = [
        "<h1>hashbench report</h1>",
        f"<p>Generated {_e(now)} by hashbench {_e(version)} from the results in <code>{_e(results_arg)}</code> "
        f"({len(data.frame)} cells); nothing was re-run. Regenerate with <code>python -m hashbench report --results "
        f"{_e(results_arg)} --out {_e(out_arg)}</code>. Also as <a href=\"index.md\">Markdown</a>. Click a table's "
        "header to sort by it.</p>",
        '<nav><a href="#tables">Tables</a><a href="#published">Published numbers</a><a href="#figures">Figures</a>'
        '<a href="#hyperparameters">Hyper-parameters</a><a href="#datasets">Datasets</a>'
        '<a href="#provenance">Provenance</a></nav>',
        warnings_html(data, published),
    ]
    tbl, pub, fig = [], [], []
    multi = len(data.groups) > 1
    for group in data.groups:
        title = f"<h3>Conventions <code>{_e(group.slug)}</code></h3>" if multi else ""
        tbl += [title, f'<p class="caption">Evaluation conventions: {_e(group.describe())}.</p>']
        for table, files in tables.get(group, []):
            tbl += [f"<h3>{_e(table.metric)}</h3>",
                    f'<p class="caption">{_e(table.caption())}</p>',
                    f"<p>Files: {_links(files, out)}</p>", metric_table_html(data, table)]
        sig = significance.get(group)
        if sig is not None:
            tbl.append(f'<p>Paired significance tests of each column\'s best method against its runner-up: '
                       f'<a href="{_e(_rel(sig, out))}">significance.csv</a>.</p>')
        pub.append(title)
        for section in published.get(group, []):
            pub.append(f'<p class="{"note" if section.comparisons else "warning"}">{_e(section.note)}</p>')
            for comp, files in section.comparisons:
                pub += [f"<h3>{_e(comp.metric)} on {_e(section.protocol.label)}: ours against published</h3>",
                        f'<p class="caption">{_e(comp.caption())}</p>', f"<p>Files: {_links(files, out)}</p>",
                        comparison_html(data, comp)]
            pub.append(_figure(section.figures, out))
        fig.append(title)
        kinds = [("map_vs_bits", "mAP against code length"), ("pr", "Precision-recall curves (UDHT Figure 2)"),
                 ("precision_at_n", "Precision@N"), ("loss", "Training loss per component (UDHT Figure 4)")]
        for kind, name in kinds:
            paths = figures.get(group, {}).get(kind, [])
            if paths:
                fig += [f"<h3>{_e(name)}</h3>", _figure(paths, out)]
    body += ['<h2 id="tables">Tables</h2>', *tbl, '<h2 id="published">Published numbers</h2>', *pub,
             '<h2 id="figures">Figures</h2>', *(fig if any(fig) else ["<p>No figures were drawn.</p>"]),
             '<h2 id="hyperparameters">Hyper-parameters</h2>',
             '<p class="caption">Each cell\'s <code>method.params</code> (what all cells of a method share, then what '
             "differs), the training's convergence record and any model-selection record.</p>",
             hyperparameters_html(data), '<h2 id="datasets">Datasets</h2>', "<ul>"]
    for p in sorted(data.protocols.values(), key=lambda q: q.label):
        chance = f"{p.chance:.4f}" if p.chance is not None else "not recorded"
        summary = " \u2013 " + _e(p.summary) if p.summary else ""
        body.append(f"<li><strong>{_e(p.label)}</strong>{summary}<br>"
                    f"split: {_e(p.describe_split())}{', key <code>' + _e(p.split_key) + '</code>' if p.split_key else ''}"
                    f"<br>features: {_e(p.describe_features())}<br>chance level (fraction of relevant query-database "
                    f"pairs): {chance}</li>")
    body += ["</ul>", '<h2 id="provenance">Provenance</h2>', "<table><tbody>"]
    body += [f'<tr><th class="text">{_e(k)}</th><td class="text">{_md_inline(v)}</td></tr>'
             for k, v in provenance_items(data)]
    body.append("</tbody></table>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<link rel=\"icon\" href=\"data:,\">\n"  # no icon: the browser then asks nothing of the server
            f"<title>hashbench report: {_e(', '.join(sorted({p.label for p in data.protocols.values()})))}</title>\n"
            f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n" + "\n".join(b for b in body if b)
            + f"\n</main>\n<script>{JS}</script>\n</body>\n</html>\n")
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
