"""Lock files that work where fcntl locks do not: network file systems, several hosts.

A lock is a file created atomically with ``O_CREAT | O_EXCL`` (atomic on local
file systems and on NFS v3 and later). It holds JSON naming its holder (host,
process id, a random token, the time it was taken), and while it is held a
background thread touches it every ``heartbeat`` seconds. Releasing it deletes it.

A lock whose holder died is *stale* and is taken over:

* on the same host, at once, when the holder's process id no longer exists;
* from any host, when its heartbeat has not moved for ``stale_after`` seconds *as
  measured by the waiter's own clock* (the waiter watches the file's modification
  time change, it never compares it with its clock), so clocks that differ between
  hosts do not matter. An empty or unreadable lock file (its creator died between
  creating and writing it) is judged the same way.

Taking over goes through a second, short-lived ``<lock>.break`` file (also
``O_EXCL``): under it the waiter reads the lock again and deletes it only if it is
still the very file it judged stale (same token, same inode), so two waiters never
both delete a lock, and a fresh lock taken meanwhile is never deleted.

``HASHBENCH_LOCK_STALE`` (seconds, default 120) sets ``stale_after`` for every lock;
the heartbeat runs every ``stale_after / 8`` seconds. On NFS, attribute caching
delays what a waiter sees by up to ``actimeo`` (often 3-60 s): keep ``stale_after``
well above it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

DEFAULT_STALE_AFTER = 120.0
POLL_S = 0.2


def stale_after_default() -> float:
    text = os.environ.get("HASHBENCH_LOCK_STALE")
    if not text:
        return DEFAULT_STALE_AFTER
    try:
        value = float(text)
    except ValueError:
        from .errors import ConfigError

        raise ConfigError(f"HASHBENCH_LOCK_STALE must be a number of seconds, got {text!r}") from None
    if value <= 0:
        from .errors import ConfigError

        raise ConfigError(f"HASHBENCH_LOCK_STALE must be positive, got {text!r}")
    return value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


@dataclass(frozen=True)
class _Seen:
    """What a waiter last saw of a lock file, and when (its own monotonic clock)."""

    ino: int
    mtime_ns: int
    size: int
    since: float


class LockFile:
    """One lock file; use :meth:`hold` (a context manager)."""

    def __init__(self, path: str | Path, *, stale_after: float | None = None,
                 heartbeat: float | None = None) -> None:
        self.path = Path(path)
        self.stale_after = float(stale_after if stale_after is not None else stale_after_default())
        self.heartbeat = float(heartbeat if heartbeat is not None else self.stale_after / 8)
        self.token = uuid.uuid4().hex
        self._seen: _Seen | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False  # set by the heartbeat if the file vanished or changed hands

    # ------------------------------------------------------------ acquire
    def try_acquire(self) -> bool:
        """Take the lock if it is free or stale; never waits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                return True
            if not self._break_if_stale():
                return False
        return False

    def acquire(self, *, timeout: float | None = None) -> bool:
        """Wait until the lock is taken (or ``timeout`` seconds pass: False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.try_acquire():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)

    def _create(self) -> bool:
        _HELD.add(self.token)  # before the file exists: this process must never judge it stale
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            _HELD.discard(self.token)
            return False
        try:
            os.write(fd, json.dumps(self._content()).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._seen = None
        self._start_heartbeat()
        return True

    def _content(self) -> dict[str, Any]:
        return {"host": socket.gethostname(), "pid": os.getpid(), "token": self.token,
                "taken": time.time(), "stale_after": self.stale_after}

    # -------------------------------------------------------------- stale
    def _break_if_stale(self) -> bool:
        """Delete the lock if its holder is gone; True if it was deleted (or vanished)."""
        state = _read(self.path)
        if state is None:
            return True  # released meanwhile: try again
        st, holder = state
        if not self._is_stale(st, holder):
            return False
        brk = self.path.with_name(self.path.name + ".break")
        try:
            fd = os.open(brk, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            _clear_abandoned_break(brk, self.stale_after)
            return False
        os.close(fd)
        try:
            again = _read(self.path)
            if again is None:
                return True
            st2, holder2 = again
            if st2.st_ino == st.st_ino and holder2.get("token") == holder.get("token"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(brk)

    def _is_stale(self, st: os.stat_result, holder: dict[str, Any]) -> bool:
        pid = holder.get("pid")
        if holder.get("host") == socket.gethostname() and isinstance(pid, int):
            if not _pid_alive(pid):
                return True
            if pid == os.getpid() and holder.get("token") != self.token and not _held_here(holder.get("token")):
                return True  # a lock of this very process that no live LockFile holds
        now = time.monotonic()
        seen = self._seen
        if seen is None or (seen.ino, seen.mtime_ns, seen.size) != (st.st_ino, st.st_mtime_ns, st.st_size):
            self._seen = _Seen(st.st_ino, st.st_mtime_ns, st.st_size, now)
            return False
        return now - seen.since >= self.stale_after

    # ---------------------------------------------------------- heartbeat
    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"hashbench-lock-{self.path.name}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            state = _read(self.path)
            if state is None or state[1].get("token") != self.token:
                self.lost = True  # taken over: the holder looked dead to another process
                return
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        _HELD.discard(self.token)
        state = _read(self.path)
        if state is not None and state[1].get("token") == self.token:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    @contextlib.contextmanager
    def hold(self, *, blocking: bool = True) -> Iterator[bool]:
        """Yield True while holding the lock, or False at once if not blocking and it is taken."""
        got = self.acquire() if blocking else self.try_acquire()
        if not got:
            yield False
            return
        try:
            yield True
        finally:
            self.release()


_HELD: set[str] = set()


def _held_here(token: Any) -> bool:
    return token in _HELD


def _read(path: Path) -> tuple[os.stat_result, dict[str, Any]] | None:
    """(stat, holder) of a lock file, None if it does not exist; an unreadable body gives {}."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            raw = f.read(4096)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ESTALE:  # NFS: the file was replaced under us
            return None
        raise
    try:
        holder = json.loads(raw.decode())
        if not isinstance(holder, dict):
            holder = {}
    except (ValueError, UnicodeDecodeError):
        holder = {}
    return st, holder


def _clear_abandoned_break(brk: Path, stale_after: float) -> None:
    """A break file is held for milliseconds; one older than ``stale_after`` belongs to a
    process that died while breaking a lock. Its age is read against the file system's
    own clock (a fresh file's mtime), so host clocks do not matter."""
    try:
        age_ref = brk.with_name(brk.name + f".now-{uuid.uuid4().hex[:8]}")
        age_ref.touch()
        try:
            now_fs = age_ref.stat().st_mtime
        finally:
            age_ref.unlink()
        if now_fs - brk.stat().st_mtime > stale_after:
            brk.unlink()
    except FileNotFoundError:
        pass


def holder_of(path: str | Path) -> dict[str, Any] | None:
    """Who holds the lock at ``path`` (its JSON), or None when it is free."""
    state = _read(Path(path))
    return None if state is None else state[1]
