"""One writer per run directory: an advisory lock on RUN/.lock, held while a command writes there.

The lock is the kernel's (flock), not the file's existence: a process that dies, even by
SIGKILL, releases it, so no stale lock is ever left to clean up. The file also records who holds
it (process id, command, start time) for the message a second writer gets. Locks are re-entrant
within a process: `train` holds its run's lock and the evaluation it calls takes it again.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from autoencoder.errors import UserError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not protected from a second writer
    fcntl = None

LOCK = ".lock"

_held: dict[Path, list] = {}  # resolved run dir -> [open file, depth]
_guard = threading.Lock()


def holder(run_dir: str | Path) -> dict | None:
    """Who holds the run's lock now ({pid, command, since}), or None when nobody does."""
    path = Path(run_dir) / LOCK
    if fcntl is None or not path.is_file():
        return None
    key = Path(run_dir).resolve()
    if key in _held:
        return _read(path)
    try:
        # Opened to read: a run in a read-only folder (another user's) can still be read.
        handle = open(path)
    except OSError:  # unreadable, or gone meanwhile: no holder this process can know of
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(path) or {}
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def _read(path: Path) -> dict | None:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def in_use_message(run_dir: str | Path, who: dict | None) -> str:
    """`RUN is in use by process 4242 (autoencoder train, since 14:03:12); ...`."""
    who = who or {}
    pid, command, since = who.get("pid"), who.get("command"), who.get("since")
    by = f"process {pid}" if pid else "another process"
    details = []
    if command:
        details.append(str(command))
    if isinstance(since, (int, float)):
        same_day = time.strftime("%Y-%m-%d", time.localtime(since)) == time.strftime("%Y-%m-%d")
        details.append(
            "since "
            + time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", time.localtime(since))
        )
    what = f" ({', '.join(details)})" if details else ""
    return f"{run_dir} is in use by {by}{what}; wait for it to finish, or stop it"


@contextlib.contextmanager
def hold(run_dir: str | Path, command: str) -> Iterator[None]:
    """Hold RUN/.lock for the block, or raise UserError naming who holds it.

    Args:
      run_dir: an existing run (or sweep) directory.
      command: what this process is doing there, for the message another writer gets.
    Raises:
      UserError: another process holds the lock; nothing was written.
    """
    acquire(run_dir, command)
    try:
        yield
    finally:
        release(run_dir)


def acquire(run_dir: str | Path, command: str) -> None:
    """Take the run's lock (re-entrant in this process); UserError if another process has it."""
    key = Path(run_dir).resolve()
    with _guard:
        if key in _held:
            _held[key][1] += 1
            return
        if fcntl is None:
            _held[key] = [None, 1]
            return
        path = key / LOCK
        try:
            # Not truncated on open: the holder's record stays readable until we own the lock.
            handle = open(path, "a+")
        except OSError as exc:
            raise UserError(
                f"{path}: cannot open the run's lock file ({exc.strerror or exc}); check that "
                f"{run_dir} is writable"
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise UserError(in_use_message(run_dir, _read(path))) from None
        record = {"pid": os.getpid(), "command": command, "since": time.time()}
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        _held[key] = [handle, 1]


def release(run_dir: str | Path) -> None:
    """Give back one acquire(); the lock is released with the last."""
    key = Path(run_dir).resolve()
    with _guard:
        entry = _held.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _held[key]
        handle = entry[0]
    if handle is not None:
        # The record is left behind: unlocked, it says nothing (holder() checks the lock).
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
