"""The documentation: the site builds strictly (no broken link or anchor), the README stays short
and its links hold, and the options table in the user guide is the option schema's."""

from __future__ import annotations

import re
import subprocess
import sys

from hashbench.options import options_table

from .conftest import REPO


def test_the_site_builds_strictly_with_no_broken_link(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "site" / "user-guide" / "index.html").is_file()


def test_the_readme_is_short_and_its_links_hold():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    links = re.findall(r"\]\(([^)#\s]+\.md)(#[^)\s]+)?\)", text)
    assert links, "the README points to the docs"
    for path, anchor in links:
        target = REPO / path
        assert target.is_file(), path
        if anchor:  # the heading exists (MkDocs' slugs: lower case, punctuation dropped, spaces to -)
            slugs = {re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", h.strip().lower()))
                     for h in re.findall(r"^#+ (.+)$", target.read_text(encoding="utf-8"), flags=re.M)}
            assert anchor[1:] in slugs, (path, anchor)


def test_the_options_table_in_the_user_guide_is_the_schema():
    assert options_table() in (REPO / "docs" / "user-guide.md").read_text(encoding="utf-8"), (
        "regenerate it: python -c 'from hashbench.options import options_table; print(options_table())'")
