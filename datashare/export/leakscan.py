"""The leak scan: free text is checked again as it is written, before anything is signed.

Every free-text cell of the export is checked against its own source row's
direct identifiers (compacted: no case, spaces or punctuation) and against
the third-party patterns (:func:`datashare.leakcheck.sql_leak_checks`), in
the query that writes the file. One hit refuses the export (exit 3) and
nothing is published. Only counts per identifier type leave DuckDB: no
message, log entry or JSON holds a value.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from datashare.errors import RefusedError
from datashare.leakcheck import LEAK_GUARD_MESSAGE
from datashare.policy.compiler import CompiledPolicy


class LeakFoundError(RefusedError):
    """Free text in the output still holds identifiers; ``counts`` gives how many cells per identifier type."""

    def __init__(self, counts: dict[str, int]) -> None:
        found = ", ".join(f"{kind} {count}" for kind, count in counts.items())
        super().__init__(f"the leak scan found identifiers left in the free text ({found} cells); "
                         "nothing was published",
                         hint="Drop the free-text column, or have its notes cleaned at the source.")
        self.counts = counts


def scan_free_text(con: Any, compiled: CompiledPolicy) -> dict[str, int]:
    """Cells per identifier type still found in the policy's free-text columns (empty: none, or no free text).

    Runs on any connection holding the dataset and the ``ds_keys`` table, so a test can run it on any policy.
    """
    if compiled.leak_scan_sql is None:
        return {}
    cursor = con.execute(compiled.leak_scan_sql)
    row = cursor.fetchone()
    names = [d[0] for d in cursor.description]
    return {kind: int(count) for kind, count in zip(names, row, strict=True) if count}


@contextmanager
def leak_guarded(con: Any, compiled: CompiledPolicy, details: dict[str, Any]) -> Iterator[None]:
    """Around the query that writes the export: a cell stopped by the leak guard becomes a refusal with counts.

    The export query checks every free-text cell as it writes it (:func:`datashare.leakcheck.sql_leak_guard`);
    when one hits, the query stops, this scan counts the hits per identifier type, the counts go into the
    log's ``details``, and :class:`LeakFoundError` is raised before anything is signed or published.
    """
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
    import duckdb

    try:
        yield
    except duckdb.Error as exc:
        if LEAK_GUARD_MESSAGE not in str(exc):
            raise
        counts = scan_free_text(con, compiled) or {"UNCOUNTED": 1}
        details["leaks"] = counts
        raise LeakFoundError(counts) from None
