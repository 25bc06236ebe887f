"""Progress on stderr while a long command runs: the phases the library reports, shown on a terminal only.

A command wraps its one library call in :func:`progress_shown` and passes the reporter it yields. Nothing is
shown when stderr is not a terminal (a pipe, a file, a test) or with ``datashare --quiet``: stdout carries
the data alone either way, and the display is transient, so a finished command leaves only its result.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from datashare.cli.output import quiet_requested, stderr_console, visible
from datashare.core.progress import SILENT, Progress

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID


class _Shown(Progress):
    """One line on stderr: a spinner, the current phase, a bar (pulsing until a percentage is known), the time.

    The display starts with the first phase and stops while a prompt has the terminal (:meth:`pause`).
    """

    def __init__(self, shown: RichProgress) -> None:
        self._shown = shown
        self._task: TaskID | None = None
        self._lock = threading.Lock()
        self._live = False

    def phase(self, label: str) -> None:
        with self._lock:
            self._drop_task()
            if not self._live:
                self._shown.start()
                self._live = True
            # The label may hold a file name: it is escaped here and shown as plain text (markup=False below).
            self._task = self._shown.add_task(visible(label), total=None)
            self._shown.refresh()

    def update(self, percent: float) -> None:
        with self._lock:
            if self._task is not None:
                self._shown.update(self._task, total=100, completed=percent)

    def pause(self) -> None:
        with self._lock:
            self._drop_task()
            self.stop()

    def stop(self) -> None:
        if self._live:
            self._shown.stop()
            self._live = False

    def _drop_task(self) -> None:
        if self._task is not None:
            self._shown.remove_task(self._task)
            self._task = None


def shows_progress() -> bool:
    """Whether progress is shown: stderr is a terminal and ``--quiet`` was not given."""
    return not quiet_requested() and sys.stderr.isatty()


@contextmanager
def progress_shown() -> Iterator[Progress]:
    """A reporter for one command: a transient progress line on a terminal, :data:`SILENT` otherwise."""
    if not shows_progress():
        yield SILENT
        return
    # deferred: rich is imported only when something is shown
    from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn

    shown = _Shown(Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(),
                            TaskProgressColumn(), TimeElapsedColumn(), transient=True, console=stderr_console()))
    try:
        yield shown
    finally:
        shown.stop()
