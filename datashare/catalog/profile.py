"""Column profiles made at registration: null counts, ranges and distinct counts.

They let ``show`` describe a column without showing a value of it: how many nulls, how many distinct values
and, for numbers and dates, the range. Nulls and ranges are counted inside the registration's transaction
(:func:`profile_columns`); distinct counts after its commit (:func:`fill_distinct_counts`), exactly where that
is cheap and estimated elsewhere, each labelled which (``distinct_exact``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from datashare.catalog.schema import META_SCHEMA
from datashare.core.sql import quote_ident, value_kind

if TYPE_CHECKING:
    import duckdb

_APPROX_UNIQUE = re.compile(r"\[Approx Unique: (\d+)\]")
EXACT_DISTINCT_UP_TO = 100_000  # columns DuckDB's statistics put at this many values or fewer are counted exactly
EXACT_DISTINCT_MAX_COLUMNS = 500  # wider versions get estimates only (see fill_distinct_counts)
_EXACT_PER_SCAN = 64
_ESTIMATED_PER_SCAN = 1024
# Kinds of column whose min/max say something about the distribution without being an identifier.
_PROFILED_RANGE_KINDS = ("number", "date")


def profile_columns(con: duckdb.DuckDBPyConnection, table: str, columns: list[tuple[str, str]]) -> dict[str, dict]:
    """Per-column null counts (one scan) and, for numbers and dates, the range (from DuckDB's zone maps).

    Distinct counts are filled in after the commit by :func:`fill_distinct_counts`.
    """
    quoted = [quote_ident(column) for column, _ in columns]
    counts = con.execute(f"SELECT count(*), {', '.join(f'count({q})' for q in quoted)} FROM {table}").fetchone()
    ranged = [(i, q) for i, ((_, column_type), q) in enumerate(zip(columns, quoted, strict=True))
              if value_kind(column_type) in _PROFILED_RANGE_KINDS]
    bounds: dict[int, tuple] = {}
    if ranged:
        parts = ", ".join(f"CAST(min({q}) AS VARCHAR), CAST(max({q}) AS VARCHAR)" for _, q in ranged)
        values = con.execute(f"SELECT {parts} FROM {table}").fetchone()
        bounds = {i: (values[2 * n], values[2 * n + 1]) for n, (i, _) in enumerate(ranged)}
    return {column: {"nulls": counts[0] - counts[index + 1], "distinct": None,
                     "min": bounds.get(index, (None, None))[0], "max": bounds.get(index, (None, None))[1]}
            for index, (column, _) in enumerate(columns)}


def fill_distinct_counts(con: duckdb.DuckDBPyConnection, name: str, version: int, table: str,
                          columns: list[tuple[str, str]]) -> None:
    """Each column's count of distinct values, exact or estimated, and which (``distinct_exact``).

    DuckDB's statistics of a committed table (``stats()``: free, but off by up to 2x) only choose the method: a
    column they put at :data:`EXACT_DISTINCT_UP_TO` values or fewer is counted exactly (``count(DISTINCT)``,
    cheap for few values); a larger one is estimated with ``approx_count_distinct`` (HyperLogLog), as an exact
    count of millions of values costs seconds per column. A version of more than
    :data:`EXACT_DISTINCT_MAX_COLUMNS` columns is estimated throughout: DuckDB sets up each exact count at
    about half a millisecond, which is seconds for 10,000 columns even of one row. A scan counts a batch of
    columns: a few exactly (each holds a hash table of its values), many more estimated (a few kilobytes each).
    """
    quoted = [quote_ident(column) for column, _ in columns]
    stats = con.execute(f"SELECT {', '.join(f'stats({q})' for q in quoted)} FROM {table} LIMIT 1").fetchone()
    estimates = [_APPROX_UNIQUE.search(text or "") for text in (stats or [None] * len(quoted))]
    few_columns = len(quoted) <= EXACT_DISTINCT_MAX_COLUMNS
    exact = [few_columns and found is not None and int(found.group(1)) <= EXACT_DISTINCT_UP_TO for found in estimates]
    counts: list[int] = [0] * len(quoted)
    for kind, function, per_scan in ((True, "count(DISTINCT {})", _EXACT_PER_SCAN),
                                     (False, "approx_count_distinct({})", _ESTIMATED_PER_SCAN)):
        positions = [i for i, is_exact in enumerate(exact) if is_exact is kind]
        for start in range(0, len(positions), per_scan):  # each count holds its own state while the scan runs
            batch = positions[start:start + per_scan]
            found = con.execute(f"SELECT {', '.join(function.format(quoted[i]) for i in batch)} FROM {table}")
            for i, value in zip(batch, found.fetchone(), strict=True):
                counts[i] = value
    con.execute(f"ALTER TABLE {META_SCHEMA}.columns ADD COLUMN IF NOT EXISTS distinct_exact BOOLEAN")  # older catalogs
    con.execute(
        f"""UPDATE {META_SCHEMA}.columns SET distinct_approx = v.d, distinct_exact = v.e
            FROM (SELECT unnest(?::INTEGER[]) AS pos, unnest(?::BIGINT[]) AS d, unnest(?::BOOLEAN[]) AS e) v
            WHERE name = ? AND version = ? AND position = v.pos""",
        [list(range(len(quoted))), list(counts), exact, name, version],
    )


def distinct_exact(con: duckdb.DuckDBPyConnection) -> str:
    """The column saying how distinct counts were made; NULL in a catalog that has not registered since it came."""
    found = con.execute("SELECT count(*) FROM duckdb_columns() WHERE schema_name = ? AND table_name = 'columns' "
                        "AND column_name = 'distinct_exact'", [META_SCHEMA]).fetchone()[0]
    return "distinct_exact" if found else "NULL"
