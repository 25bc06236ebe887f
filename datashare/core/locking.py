"""The workspace lock: one ``flock`` around every change to the workspace.

DuckDB lets only one process open the catalog read-write, and the audit hash
chain needs appends serialised across processes (``O_APPEND`` alone loses
records). Every change — catalog write, audit append, key change — therefore
happens inside :func:`workspace_lock`. The lock is re-entrant within a
process, so a command holding it can append its audit entry without
deadlocking on itself.
"""

from __future__ import annotations

import fcntl
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from datashare.errors import InputError, WorkspaceBusyError, WorkspaceError

LOCK_FILE_NAME = "lock"
DEFAULT_TIMEOUT_SECONDS = 10.0
TIMEOUT_ENV = "DATASHARE_LOCK_TIMEOUT"
_POLL_SECONDS = 0.05

_held: dict[str, tuple[int, int]] = {}  # lock path -> (fd, depth)
_guard = threading.RLock()


def lock_timeout() -> float:
    """Seconds to wait for a busy workspace (``DATASHARE_LOCK_TIMEOUT``)."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InputError(f"{TIMEOUT_ENV} must be a number of seconds (0 or more), not {raw!r}",
                         hint=f"Set {TIMEOUT_ENV}=10, for example, or unset it for the default of "
                              f"{DEFAULT_TIMEOUT_SECONDS:g}s.")
    return value


@contextmanager
def workspace_lock(home: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the exclusive workspace lock for the duration of the block.

    Waits up to ``timeout`` seconds (default :func:`lock_timeout`), telling the
    user on stderr (once per command) that it is waiting, then raises
    :class:`WorkspaceBusyError`.
    """
    path = str(Path(home) / LOCK_FILE_NAME)
    with _guard:
        if path in _held:
            fd, depth = _held[path]
            _held[path] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _guard:
                fd, depth = _held[path]
                _held[path] = (fd, depth - 1)
        return

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:  # a read-only workspace, a folder of someone else's: one message, not a traceback
        raise WorkspaceError(
            f"cannot use the workspace {Path(home)}: its lock file cannot be opened for writing "
            f"({exc.strerror or type(exc).__name__})",
            hint="Every command writes the audit log: the workspace must be on a writable disk and yours.",
        ) from None
    try:
        _acquire(fd, timeout if timeout is not None else lock_timeout())
    except BaseException:
        os.close(fd)
        raise
    with _guard:
        _held[path] = (fd, 1)
    try:
        yield
    finally:
        with _guard:
            del _held[path]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class _Waiting:
    told = False  # the "waiting" message is said once per command, however many times it waits


def forget_waiting() -> None:
    """Start a new command: its first wait for the lock is said again (the CLI calls this for each command)."""
    _Waiting.told = False


def _acquire(fd: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if time.monotonic() >= deadline:
            raise WorkspaceBusyError(
                f"workspace busy: another datashare command held it for more than {timeout:g}s",
                hint=f"Wait for it to finish and try again, or raise {TIMEOUT_ENV}.",
            )
        if not _Waiting.told:
            print("datashare: workspace busy, waiting…", file=sys.stderr)
            _Waiting.told = True
        time.sleep(_POLL_SECONDS)
