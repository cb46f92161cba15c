"""Progress output: a bar for a terminal, one line per stage for a log, nothing under -q."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from hashbench import progress
from hashbench.progress import StageLine, progress_bar, progress_mode

from .conftest import REPO


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.fixture
def streams(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.delenv("HASHBENCH_PROGRESS", raising=False)

    def set_streams(out_tty: bool, err_tty: bool):
        out, err = _Stream(out_tty), _Stream(err_tty)
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        return out, err

    return set_streams


def test_bar_only_when_a_person_watches_a_terminal(streams, monkeypatch):
    streams(True, True)
    assert progress_mode() == "bar"
    streams(False, True)  # python -m hashbench run > log
    assert progress_mode() == "lines"
    streams(False, False)  # > log 2>&1, a batch job
    assert progress_mode() == "lines"
    assert progress_mode(enabled=False) == "off"
    with progress.quiet():
        assert progress_mode() == "off"
    monkeypatch.setenv("HASHBENCH_PROGRESS", "bar")
    assert progress_mode() == "bar"
    monkeypatch.setenv("TQDM_DISABLE", "1")  # what -q sets: it wins over everything
    assert progress_mode() == "off"


def test_a_stage_in_a_log_is_one_line_with_its_count_and_time(streams):
    out, err = streams(False, False)
    with progress_bar(10, "features tiny (alexnet-fc2)", "img") as bar:
        assert isinstance(bar, StageLine)
        for _ in range(10):
            bar.update(1)
            bar.set_postfix({"loss": "0.1234"}, refresh=False)
    bar.close()  # closing twice prints once
    text = out.getvalue()
    assert "\r" not in text and err.getvalue() == ""
    assert text.count("\n") == 1
    assert text.startswith("  features tiny (alexnet-fc2): 10 img in ") and text.endswith("s (loss 0.1234)\n")
    out.truncate(0)
    out.seek(0)
    bar = progress_bar(10, "stopped stage", "batch")
    bar.update(3)
    bar.close()
    assert "3/10 batch (stopped)" in out.getvalue()
    out.truncate(0)
    out.seek(0)
    with progress.quiet():
        bar = progress_bar(10, "silent", "img")
        bar.update(10)
        bar.close()
    assert out.getvalue() == ""


def _run_logged(tmp_path, *extra):
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "HASHBENCH_PROGRESS")}
    env["HASHBENCH_CACHE"] = str(tmp_path / "cache")
    log = tmp_path / f"log{len(extra)}.txt"
    # the fast random stage (the log's format is under test, not the features)
    cmd = [sys.executable, "-m", "hashbench", "run", "--dataset", "synthetic", "-D", "n_items=120", "-D", "n_query=20",
           "--backbone", "alexnet", "--weights", "random",
           "--methods", "lsh,udht-frozen", "--bits", "8", "--param", "udht-frozen.max_epochs=2", "--no-report",
           "--results", str(tmp_path / "res"), "--force", *extra]
    with open(log, "w") as f:  # stdout and stderr into one file, as a batch job does
        proc = subprocess.run(cmd, env=env, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, timeout=300)
    text = log.read_text()
    assert proc.returncode == 0, text
    return text


def test_a_run_redirected_to_a_file_writes_a_readable_log(tmp_path):
    text = _run_logged(tmp_path)
    assert "\r" not in text and "\x1b" not in text  # no carriage-return bar updates, no terminal escapes
    lines = text.splitlines()
    assert any(ln.startswith("  features synthetic (alexnet-fc2): 120 img in ") for ln in lines), text
    # one line per training phase of the deep method, with its time and final losses
    stage = [ln for ln in lines if ln.startswith("  udht-frozen 8 bits train: ")]
    assert len(stage) == 1 and " batch in " in stage[0] and "L1" in stage[0], text
    assert "2 cell(s) computed" in text
    assert len(lines) < 20, text
    quiet = _run_logged(tmp_path, "-q")  # -q: no stage lines at all (the features are cached by now)
    assert "udht-frozen 8 bits train:" not in quiet and " img in " not in quiet
    assert "2 cell(s) computed" in quiet
