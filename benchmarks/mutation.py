"""Mutation testing of the modules where a silent bug changes numbers (not run in CI).

    pip install -e ".[mutation]"
    python benchmarks/mutation.py                  # every group below
    python benchmarks/mutation.py codes selection  # some groups
    python benchmarks/mutation.py --list           # the groups, their modules and test files

Each group mutates its own modules and runs only its own test files against each mutant
(mutmut then runs, of those, the tests that call the mutated function), so a group stays
affordable on 2 cores. A group works in ``build/mutation/<group>/`` (links to ``hashbench/``
and ``tests/``, a ``pyproject.toml`` with the group's ``[tool.mutmut]``); run a group again
and mutmut resumes where it stopped and re-tests only what changed. The score per group
is caught / all, where caught = killed or timed out and the rest = survived or reached by no
selected test. Two scores are given: over every mutant, and over the mutants that change more
than the text of an error or a warning (a mutant whose every changed line lies inside a
``raise`` statement or a ``warnings.warn`` call; those change no number). They are printed as
a Markdown table and written to ``build/mutation/scores.json``; the diff of every surviving
mutant that is not message-only goes to ``build/mutation/<group>/survivors.txt`` (``mutmut
results`` / ``mutmut show NAME`` in a group's folder list and show them all).

Why mutmut (3.x) and not cosmic-ray: mutmut forks each mutant's test run from a process that
has already imported numpy, numba, torch and the tests (all mutants of a file live in one
copy, switched by an environment variable), and runs only the tests that call the mutated
function; cosmic-ray starts the test command afresh for every mutant (a few seconds of
imports each, on 2 cores hours for a few hundred mutants) and needs a hand-kept test command
per module to do the same selection.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "build" / "mutation"

# group -> (modules to mutate, test selection). The tests are each module's own unit tests; slow
# end-to-end tests that rebuild a whole run per mutant are left out (named in the comment).
GROUPS: dict[str, tuple[list[str], list[str]]] = {
    # test_ties_default's run on a label-sorted dataset is left out (a whole run per mutant)
    "evaluation": (
        ["hashbench/evaluation/*.py"],
        ["tests/test_evaluation.py", "tests/test_evaluation_ranking.py", "tests/test_big_database.py",
         "tests/test_ties_default.py",
         "tests/test_iah.py::test_category_aware_map_equals_brute_force",
         "tests/test_iah.py::test_category_aware_input_errors", "-k", "not a_run_on_a_label_sorted"],
    ),
    # the tune-and-run tests (every image of the training role through the backbone, a run, a report)
    # are left out: they test the tune command around this library
    "selection": (
        ["hashbench/selection/search.py", "hashbench/selection/criteria.py", "hashbench/selection/validation.py",
         "hashbench/selection/space.py"],
        ["tests/test_selection.py", "-k", "not never_reads_a_query and not tune_then_run"],
    ),
    "codes": (["hashbench/codes.py"], ["tests/test_big_database.py"]),
    # test_feature_file's runs (the same numbers as on the images, per format; image methods refused by a
    # run) are left out: they repeat a whole run per mutant; the other tests check the reader against the
    # arrays written
    "feature-file": (
        ["hashbench/datasets/feature_file.py"],
        ["tests/test_feature_file.py", "-k",
         "not same_numbers_as_on_the_images and not saved_split_json and not image_methods_are_refused"],
    ),
    # the report tests that build a whole MIRFLICKR run (mir_report) are left out for the same reason;
    # the comparison itself is tested on a column group made without a run
    "published": (
        ["hashbench/published/__init__.py", "hashbench/reports/published.py"],
        ["tests/test_published.py", "tests/test_report_html.py", "-k",
         "not test_report_html or beside_ours or comparison_files or takes_the_papers or own_parameters"],
    ),
}


def _pyproject(modules: list[str], tests: list[str]) -> str:
    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    return (
        "# written by benchmarks/mutation.py: one mutation-testing group\n"
        "[tool.mutmut]\n"
        'source_paths = ["hashbench"]\n'
        f"only_mutate = {toml_list(modules)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider"]\n'
        # torch and numba start threads at import: forking from a process that ran tests is not safe
        'process_isolation = "forkserver"\n'
        "\n[tool.pytest.ini_options]\n"
        'addopts = "-ra"\n'
        'markers = ["slow: longer end-to-end tests (still run in CI)"]\n'
    )


def _prepare(group: str) -> Path:
    modules, tests = GROUPS[group]
    folder = WORK / group
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("hashbench", "tests"):
        link = folder / name
        if not link.exists():
            link.symlink_to(REPO / name, target_is_directory=True)
    text = _pyproject(modules, tests)
    cfg = folder / "pyproject.toml"
    if not cfg.exists() or cfg.read_text() != text:
        cfg.write_text(text)
    return folder


_MUTANT = re.compile(r"^(?P<base>.+)__mutmut_(?P<n>\d+)$")


def _message_spans(fn: ast.AST) -> list[tuple[int, int]]:
    """Line spans of ``raise`` statements and ``warnings.warn(...)`` calls inside a function."""
    spans = []
    for node in ast.walk(fn):
        warn = (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "warn")
        if isinstance(node, ast.Raise) or warn:
            spans.append((node.lineno, node.end_lineno or node.lineno))
    return spans


def _mutants_of(mutated_file: Path) -> dict[str, tuple[bool, str]]:
    """Mutant function name -> (only an error/warning message changes, the mutant's diff)."""
    source = mutated_file.read_text()
    tree = ast.parse(source)
    lines = source.splitlines()
    funcs = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    out = {}
    for name, fn in funcs.items():
        m = _MUTANT.match(name)
        if not m or m["n"] is None:
            continue
        orig = funcs.get(f"{m['base']}__mutmut_orig")
        if orig is None:
            continue
        a = lines[orig.lineno - 1: orig.end_lineno]
        b = lines[fn.lineno - 1: fn.end_lineno]
        a[0] = a[0].replace("__mutmut_orig", "")  # the def lines differ only by their names
        b[0] = b[0].replace(f"__mutmut_{m['n']}", "")
        changed: set[int] = set()  # line numbers in the original function's file lines
        for tag, i1, i2, _, _ in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
            if tag != "equal":
                changed.update(range(orig.lineno + i1, orig.lineno + max(i2, i1 + 1)))
        spans = _message_spans(orig)
        message = bool(changed) and all(any(lo <= ln <= hi for lo, hi in spans) for ln in changed)
        diff = "".join(difflib.unified_diff([x + "\n" for x in a], [x + "\n" for x in b], n=1))
        out[name] = (message, diff)
    return out


def _results(folder: Path) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Counts by status, over every mutant and over those that change more than a message; the
    diffs of the survivors of the latter."""
    from mutmut.stats import status_by_exit_code

    counts = {"all": {}, "beyond messages": {}}
    survivors = []
    for meta in sorted((folder / "mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text()).get("exit_code_by_key", {})
        if not codes:
            continue
        kinds = _mutants_of(meta.with_suffix(""))
        for key, code in codes.items():
            status = status_by_exit_code[code].replace(" ", "_")
            message, diff = kinds.get(key.rsplit(".", 1)[-1], (False, ""))
            for scope in ("all", "beyond messages"):
                if scope == "all" or not message:
                    counts[scope][status] = counts[scope].get(status, 0) + 1
            if not message and status in ("survived", "no_tests"):
                survivors.append(f"# {key}: {status}\n{diff}")
    return counts, survivors


def score(c: dict[str, int]) -> float | None:
    caught = c.get("killed", 0) + c.get("timeout", 0)
    total = caught + c.get("survived", 0) + c.get("no_tests", 0)
    return caught / total if total else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("groups", nargs="*", help=f"groups to run (default: all of {', '.join(GROUPS)})")
    ap.add_argument("--max-children", type=int, default=os.cpu_count() or 2, help="mutants tested at once")
    ap.add_argument("--list", action="store_true", help="list the groups and exit")
    ap.add_argument("--report", action="store_true",
                    help="no mutmut run: count the results a previous run left in each group's folder")
    args = ap.parse_args(argv)
    if args.list:
        for g, (mods, tests) in GROUPS.items():
            print(f"{g}: mutates {' '.join(mods)}\n    tests {' '.join(tests)}")
        return 0
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        ap.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    env = {**os.environ, "HASHBENCH_CACHE": os.environ.get("HASHBENCH_CACHE", str(WORK / "cache"))}
    scores_path = WORK / "scores.json"
    scores = json.loads(scores_path.read_text()) if scores_path.is_file() else {}
    for group in args.groups or list(GROUPS):
        folder = _prepare(group)
        wall = scores.get(group, {}).get("wall_s", 0.0)
        if not args.report:
            print(f"== {group}: mutating {' '.join(GROUPS[group][0])}", flush=True)
            t0 = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children)],
                                  cwd=folder, env=env)
            wall = time.monotonic() - t0
            if proc.returncode != 0:
                print(f"mutmut failed for {group} (exit {proc.returncode}); see above", file=sys.stderr)
                return proc.returncode
        elif not (folder / "mutants").is_dir():
            continue
        counts, survivors = _results(folder)
        (folder / "survivors.txt").write_text("\n".join(survivors))
        scores[group] = {"modules": GROUPS[group][0], "tests": GROUPS[group][1], "counts": counts,
                         "score": score(counts["all"]), "score_beyond_messages": score(counts["beyond messages"]),
                         "wall_s": round(wall, 1)}
        scores_path.write_text(json.dumps(scores, indent=1) + "\n")
    print(table(scores))
    return 0


def table(scores: dict) -> str:
    def pct(x: float | None) -> str:
        return "" if x is None else f"{100 * x:.0f}%"

    lines = ["| group | mutants | killed | timeout | survived | no test reaches | score | mutants beyond messages "
             "| their survivors (+ unreached) | score beyond messages | wall |",
             "|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for g, s in scores.items():
        a, b = s["counts"]["all"], s["counts"]["beyond messages"]
        lines.append(f"| {g} | {sum(a.values())} | {a.get('killed', 0)} | {a.get('timeout', 0)} | "
                     f"{a.get('survived', 0)} | {a.get('no_tests', 0)} | {pct(s['score'])} | {sum(b.values())} | "
                     f"{b.get('survived', 0)} (+ {b.get('no_tests', 0)}) | {pct(s['score_beyond_messages'])} | "
                     f"{s['wall_s'] / 60:.0f} min |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
