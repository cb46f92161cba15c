"""The shape of the package, read from its imports (``ast``; nothing is imported).

Every import counts: at the top of a module, inside a function, or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hashbench"

#: the commands and what they are built from, above the selection library
RUN = {"hashbench", "hashbench.__main__", "hashbench.api", "hashbench.cli", "hashbench.runner", "hashbench.cell",
       "hashbench.plan", "hashbench.tune", "hashbench.experiment", "hashbench.options",
       "hashbench.execution"}


def _name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the modules of the package it imports (``from x import y``: x.y when y is a module, else x)."""
    files = {_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        here = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            graph[module] |= {t for t in targets if t in files and t != module}
    return graph


def find_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import circle through each strongly connected group of modules (Tarjan), as a path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    circles = []
    for group in (g for g in groups if len(g) > 1):
        start = min(group)
        path, seen = [start], {start}
        while True:  # walk inside the group until a module repeats: a circle
            nxt = min(w for w in graph[path[-1]] if w in group)
            if nxt in seen:
                circles.append(path[path.index(nxt):] + [nxt])
                break
            path.append(nxt)
            seen.add(nxt)
    return circles


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    out, todo = set(), [start]
    while todo:
        for w in graph[todo.pop()] - out:
            out.add(w)
            todo.append(w)
    return out


def test_the_finder_finds_circles_and_only_circles():
    assert find_circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert reachable({"a": {"b"}, "b": {"c"}, "c": set()}, "a") == {"b", "c"}


def test_no_import_circle_inside_hashbench():
    graph = import_graph()
    assert {"hashbench.runner", "hashbench.cell", "hashbench.features.regions"} <= set(graph)  # it reads the package
    circles = find_circles(graph)
    assert circles == [], "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_selection_is_a_library_that_imports_nothing_of_the_run():
    graph = import_graph()
    selection = [m for m in graph if m == "hashbench.selection" or m.startswith("hashbench.selection.")]
    assert len(selection) >= 5
    for module in selection:
        bad = sorted(m for m in reachable(graph, module)
                     if m in RUN or any(m.startswith(r + ".") for r in RUN if r != "hashbench"))
        assert not bad, f"{module} imports (directly or through others) {', '.join(bad)}"
