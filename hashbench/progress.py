"""Progress reporting for long stages (feature extraction, training epochs).

One helper decides, for the whole of hashbench, how a stage shows progress:

* ``"bar"``: a tqdm bar (``tqdm.auto``: a widget in a notebook), when a person
  is watching: standard output and standard error are both terminals, or the
  code runs in a Jupyter kernel;
* ``"lines"``: no bar, one line per stage when it ends, with its count and time
  (``features synthetic (alexnet-fc2): 3000 img in 41.2s``), when the output
  goes to a file or a pipe (a log, a batch job): a bar there writes thousands
  of carriage-return updates into the log;
* ``"off"``: nothing, under ``-q`` / ``hashbench.run(quiet=True)`` (or
  ``TQDM_DISABLE=1``, which ``-q`` sets), or when the caller passes
  ``enabled=False``.

``HASHBENCH_PROGRESS=bar|lines|off`` overrides the choice (``-q`` still wins).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any, Iterator

MODES = ("bar", "lines", "off")
_quiet_depth = 0


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Within this block every progress bar and stage line is off (``hashbench.run(quiet=True)``)."""
    global _quiet_depth
    _quiet_depth += 1
    try:
        yield
    finally:
        _quiet_depth -= 1


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _in_jupyter() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    ip = getattr(shell, "get_ipython", lambda: None)()
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def progress_mode(enabled: bool = True) -> str:
    """``"bar"``, ``"lines"`` or ``"off"``: how a stage starting now reports progress."""
    disable = os.environ.get("TQDM_DISABLE", "").strip().lower()
    if not enabled or _quiet_depth > 0 or disable not in ("", "0", "false", "no"):
        return "off"
    forced = os.environ.get("HASHBENCH_PROGRESS", "").strip().lower()
    if forced in MODES:
        return forced
    if (_isatty(sys.stdout) and _isatty(sys.stderr)) or _in_jupyter():
        return "bar"
    return "lines"


class StageLine:
    """What a bar is to a terminal, for a log: counts silently, prints one line at ``close``.

    The line goes to standard output, where the run's other messages go, so a
    log reads in order.
    """

    def __init__(self, total: int | None, desc: str, unit: str) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n = 0
        self.postfix: dict[str, Any] = {}
        self._t0 = time.perf_counter()
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        self.postfix = {**(ordered_dict or {}), **kwargs}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        elapsed = time.perf_counter() - self._t0
        done = f"{self.n} {self.unit}" if self.total in (None, self.n) else f"{self.n}/{self.total} {self.unit} (stopped)"
        extra = ", ".join(f"{k} {v}" for k, v in self.postfix.items())
        print(f"  {self.desc}: {done} in {elapsed:.1f}s" + (f" ({extra})" if extra else ""), flush=True)

    def __enter__(self) -> "StageLine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Silent(StageLine):
    def close(self) -> None:
        self._closed = True


def progress_bar(total: int | None, desc: str, unit: str = "it", *, enabled: bool = True, leave: bool = True):
    """A progress reporter for one stage: a tqdm bar, a :class:`StageLine` or a silent one (see the module doc).

    All three have ``update``, ``set_postfix`` and ``close`` and work as context managers.
    """
    mode = progress_mode(enabled)
    if mode == "bar":
        from tqdm.auto import tqdm

        # disable=False: the choice is made here, not by tqdm's own tty test
        return tqdm(total=total, desc=desc, unit=unit, leave=leave, disable=False)
    if mode == "lines":
        return StageLine(total, desc, unit)
    return _Silent(total, desc, unit)
