"""Lock files for shared (network) file systems: exclusive, heartbeat, stale-lock recovery."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from hashbench import store
from hashbench.lockfile import LockFile, holder_of


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid  # exited and reaped: no such process (pids are not reused this fast)


def test_lock_is_exclusive_records_its_holder_and_is_removed_on_release(tmp_path):
    path = tmp_path / "a.held"
    a, b = LockFile(path, stale_after=30), LockFile(path, stale_after=30)
    with a.hold(blocking=False) as got:
        assert got
        holder = holder_of(path)
        assert holder["host"] == socket.gethostname() and holder["pid"] == os.getpid()
        assert holder["token"] == a.token
        assert not b.try_acquire()  # held by a live LockFile of this very process
    assert not path.exists()
    assert b.try_acquire()
    b.release()


def test_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    path = tmp_path / "a.held"
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "token": "old"}))
    lock = LockFile(path, stale_after=3600)  # the heartbeat rule would take an hour
    t0 = time.monotonic()
    assert lock.try_acquire()
    assert time.monotonic() - t0 < 5
    assert holder_of(path)["token"] == lock.token
    lock.release()
    assert not path.exists() and not path.with_name("a.held.break").exists()


@pytest.mark.parametrize("body", [
    json.dumps({"host": "another-host.invalid", "pid": 1, "token": "remote"}),  # a host we cannot ask
    "",  # its creator died between creating and writing it
])
def test_lock_whose_heartbeat_stopped_is_taken_over_after_stale_after(tmp_path, body):
    path = tmp_path / "a.held"
    path.write_text(body)
    lock = LockFile(path, stale_after=0.6)
    assert not lock.try_acquire()  # first sight: the waiter starts its own clock
    t0 = time.monotonic()
    assert lock.acquire(timeout=10)
    waited = time.monotonic() - t0
    assert 0.4 <= waited < 5
    lock.release()


def test_live_heartbeat_from_another_process_is_never_taken_over(tmp_path):
    path = tmp_path / "a.held"
    # A holder in another process, pretending to be on another host (so only its
    # heartbeat can keep it alive), beating every 0.1 s.
    code = (
        "import sys, time, socket\n"
        "from hashbench.lockfile import LockFile\n"
        "socket.gethostname = lambda: 'another-host.invalid'\n"
        f"lock = LockFile({str(path)!r}, stale_after=0.8, heartbeat=0.1)\n"
        "assert lock.try_acquire()\n"
        "print('held', flush=True)\n"
        "time.sleep(3.0)\n"
        "lock.release()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        waiter = LockFile(path, stale_after=0.8)
        assert not waiter.acquire(timeout=1.8)  # more than twice stale_after: heartbeat seen
        assert holder_of(path)["host"] == "another-host.invalid"
        assert waiter.acquire(timeout=10)  # released normally
        waiter.release()
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_two_waiters_never_both_hold_a_recovered_lock(tmp_path):
    path = tmp_path / "a.held"
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "token": "old"}))
    holders: list[str] = []
    count = [0]
    most = [0]

    def worker() -> None:
        lock = LockFile(path, stale_after=3600)
        for _ in range(20):
            assert lock.acquire(timeout=30)
            count[0] += 1
            most[0] = max(most[0], count[0])
            holders.append(lock.token)
            time.sleep(0.005)
            count[0] -= 1
            lock.release()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and len(holders) == 60


def test_store_cell_lock_uses_lock_files_and_recovers_a_killed_holder(tmp_path):
    cell = store.cell_path(tmp_path, "ds", "lsh", 8, 0)
    held = tmp_path / "ds" / ".locks" / "lsh__8bits__seed0.held"
    with store.cell_lock(cell, blocking=False) as got:
        assert got and held.is_file()
        with store.cell_lock(cell, blocking=False) as again:
            assert not again
    assert not held.exists()
    held.write_text(json.dumps({"host": socket.gethostname(), "pid": _dead_pid(), "token": "x"}))
    with store.cell_lock(cell, blocking=False) as got:
        assert got


class _ReplacedWhileJudging(LockFile):
    """A waiter that judges the lock stale, and just then (before its re-check) the file changes under it."""

    def __init__(self, path, change):
        super().__init__(path, stale_after=3600)
        self.change = change

    def _is_stale(self, st, holder):
        self.change()
        return True


@pytest.mark.parametrize("how", ["same token, new inode", "same inode, new token"])
def test_stale_lock_is_deleted_only_if_it_is_still_the_same_inode_and_token(tmp_path, how):
    """Breaking a lock re-reads it under the break file and deletes it only if both its inode and its
    token are those it judged stale; a lock taken meanwhile (either differs) survives."""
    path = tmp_path / "a.held"
    old = json.dumps({"host": "another-host.invalid", "pid": 1, "token": "old"})
    path.write_text(old)
    keep_inode = open(path)  # the old inode stays allocated, so a new file cannot get its number
    try:
        def change():
            if how == "same token, new inode":
                fresh = tmp_path / "fresh"
                fresh.write_text(old)
                os.replace(fresh, path)
            else:
                with open(path, "r+") as f:  # rewritten in place: same inode, another holder
                    f.truncate(0)
                    f.write(json.dumps({"host": "another-host.invalid", "pid": 2, "token": "new"}))

        before = os.stat(path).st_ino
        waiter = _ReplacedWhileJudging(path, change)
        assert waiter._break_if_stale()  # it went through the break file ...
        assert path.exists()  # ... and deleted nothing
        assert (os.stat(path).st_ino == before) == (how == "same inode, new token")
        assert not path.with_name("a.held.break").exists()
    finally:
        keep_inode.close()
    # the unchanged lock, judged stale, is deleted (so the two cases above are not vacuous)
    waiter = _ReplacedWhileJudging(path, lambda: None)
    assert waiter._break_if_stale() and not path.exists()


def test_hold_releases_the_lock_when_its_body_raises(tmp_path):
    path = tmp_path / "a.held"
    lock = LockFile(path, stale_after=30)
    with pytest.raises(KeyError):
        with lock.hold() as got:
            assert got and path.exists()
            raise KeyError("the body failed")
    assert not path.exists()  # released: no one waits for a dead body's lock
    assert lock._thread is None  # and its heartbeat stopped
    other = LockFile(path, stale_after=30)
    assert other.try_acquire()  # at once, not after stale_after
    other.release()
