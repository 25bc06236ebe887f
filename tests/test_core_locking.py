"""The workspace lock: re-entrant in a process, exclusive between processes, bounded waits.

Another process holds the lock in a real subprocess that says ``ready`` once it
has it and lets go when told; no test depends on how long anything takes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from datashare.core.locking import DEFAULT_TIMEOUT_SECONDS, TIMEOUT_ENV, lock_timeout, workspace_lock
from datashare.errors import InputError, WorkspaceBusyError

HOLDER = """
import sys
from datashare.core.locking import workspace_lock
with workspace_lock(sys.argv[1], timeout=0):
    print("ready", flush=True)
    sys.stdin.readline()
"""

PROBE = """
import sys
from datashare.core.locking import workspace_lock
from datashare.errors import WorkspaceBusyError
for attempt in range(2):
    try:
        with workspace_lock(sys.argv[1], timeout=float(sys.argv[2])):
            pass
    except WorkspaceBusyError:
        code = 3
    else:
        code = 0
sys.exit(code)
"""


class Holder:
    """Another process holding the lock on ``home`` until :meth:`release`."""

    def __init__(self, home: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(home)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline() == "ready\n"

    def release(self) -> None:
        self.proc.communicate("go\n", timeout=60)
        assert self.proc.returncode == 0


def another_process_can_lock(home: Path, timeout: float = 0) -> bool:
    return probe(home, timeout)[0]


def probe(home: Path, timeout: float) -> tuple[bool, str]:
    """Whether another process gets the lock (trying twice, each within ``timeout``), and what it said."""
    done = subprocess.run([sys.executable, "-c", PROBE, str(home), str(timeout)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode in (0, 3), done.stderr
    return done.returncode == 0, done.stderr


def test_the_lock_is_re_entrant_within_a_process_and_held_until_the_outer_block_ends(tmp_path):
    with workspace_lock(tmp_path, timeout=0):
        with workspace_lock(tmp_path, timeout=0):  # no deadlock on itself
            pass
        assert not another_process_can_lock(tmp_path)  # leaving the inner block did not let go
    assert another_process_can_lock(tmp_path)


def test_a_second_process_is_refused_after_its_timeout_then_gets_the_lock(tmp_path):
    holder = Holder(tmp_path)
    try:
        with pytest.raises(WorkspaceBusyError, match="held it for more than 0.2s") as caught, \
                workspace_lock(tmp_path, timeout=0.2):
            pass
        assert TIMEOUT_ENV in caught.value.hint
        got, stderr = probe(tmp_path, 0.1)
        assert not got and stderr.count("workspace busy, waiting") == 1  # said once, however often it waits
    finally:
        holder.release()
    with workspace_lock(tmp_path, timeout=0):
        pass


def test_the_timeout_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "0.1")
    assert lock_timeout() == 0.1
    holder = Holder(tmp_path)
    try:
        with pytest.raises(WorkspaceBusyError, match="more than 0.1s"), workspace_lock(tmp_path):
            pass
    finally:
        holder.release()


def test_no_timeout_set_means_the_default(monkeypatch):
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert lock_timeout() == DEFAULT_TIMEOUT_SECONDS


@pytest.mark.parametrize("raw", ["soon", "-1", "nan", "inf", ""])
def test_a_bad_timeout_is_an_input_error_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv(TIMEOUT_ENV, raw)
    with pytest.raises(InputError, match=TIMEOUT_ENV):
        lock_timeout()


def test_the_lock_file_is_private(tmp_path):
    with workspace_lock(tmp_path, timeout=0):
        pass
    assert (tmp_path / "lock").stat().st_mode & 0o077 == 0
