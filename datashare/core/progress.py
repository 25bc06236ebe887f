"""How a long operation says what it is doing, without knowing who (if anyone) shows it.

The library reports phases ("reading", "classifying", "writing") and, where it
can measure one, how far a phase has got; the command line shows them on a
terminal (:mod:`datashare.cli.progress`). The default reporter, :data:`SILENT`,
shows nothing, so library callers (tests, the demo) need not pass one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

_POLL_SECONDS = 0.1  # how often DuckDB is asked how far a query has got


class Progress:
    """A phase reporter. This base class shows nothing; a subclass that shows something overrides its methods.

    Its methods may be called from another thread (a watcher polling DuckDB's
    progress), so a subclass that shows something must be thread-safe.
    """

    def phase(self, label: str) -> None:
        """A new phase starts (the previous one is over). ``label`` is plain text, never markup."""

    def update(self, percent: float) -> None:
        """How far the current phase has got, from 0 to 100, where that can be measured."""

    def pause(self) -> None:
        """Show nothing until the next phase: a prompt (a passphrase) needs the terminal."""

    @property
    def on_percent(self) -> Callable[[float], None] | None:
        """:meth:`update` for code that polls a percentage, or None when nothing is shown (no polling needed)."""
        return None if type(self).update is Progress.update else self.update


SILENT = Progress()


@contextmanager
def watching(con: duckdb.DuckDBPyConnection, on_percent: Callable[[float], None] | None) -> Iterator[None]:
    """While the block runs one query on ``con``, report how far DuckDB says it has got (then 100).

    DuckDB measures progress only with its progress bar on; its own printing of the bar stays off. Nothing
    is polled when ``on_percent`` is None.
    """
    if on_percent is None:
        yield
        return
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(con, on_percent, stop), daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
    on_percent(100.0)


def _watch(con: duckdb.DuckDBPyConnection, on_percent: Callable[[float], None], stop: threading.Event) -> None:
    while not stop.wait(_POLL_SECONDS):
        try:
            value = con.query_progress()
        except Exception:  # any failure: progress is cosmetic
            return
        if value is not None and value >= 0:
            on_percent(min(float(value), 100.0))
