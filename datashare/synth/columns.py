"""What is modelled: the policy's output columns, staged in DuckDB with a train/holdout split, and their kinds.

The synthesiser models the rows an export under the same policy would hold
(rows.where applied, every transform applied), minus what must never be
modelled: columns the policy drops (or does not name), and identifiers —
columns the catalog classes ``direct`` or the policy pseudonymises. Those come
out as fresh random tokens.

The rows are staged once in a temporary table, each with a holdout flag taken
from a hash of its values and the seed (so identical rows fall on the same
side): the model is fitted on the train side only, the report measures it on
the holdout.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from datashare.core.sql import base_type, quote_ident, sql_string_literal, value_kind
from datashare.policy.compiler import CompiledPolicy
from datashare.policy.rowfilter import column_inequality

ROWS_TABLE = "ds_synth_rows"  # temporary: the policy's output rows being modelled, with the split
HOLDOUT = "__ds_holdout"
TOKEN_PREFIX = "syn-"
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "UHUGEINT")
_SPLIT_BUCKETS = 10_000

CATEGORY, NUMBER, DATE, TIMESTAMP, TOKEN = "category", "number", "date", "timestamp", "token"


@dataclass(frozen=True)
class ColumnSpec:
    """One output column: its name, DuckDB type and how it is modelled."""

    name: str
    type: str
    kind: str  # category, number, date, timestamp, or token (never modelled)
    minus: ColumnSpec | None = None  # modelled as its difference from this column (a constraint ``self >= minus``)

    @property
    def integer(self) -> bool:
        return base_type(self.type) in INTEGER_TYPES

    @property
    def continuous(self) -> bool:
        return self.kind in (NUMBER, DATE, TIMESTAMP)

    def encode_sql(self) -> str:
        """The column as a DOUBLE (numbers; dates as days since 1970; timestamps as seconds) or VARCHAR."""
        if self.minus is not None:
            return f"({replace(self, minus=None).encode_sql()} - {self.minus.encode_sql()})"
        col = quote_ident(self.name)
        if self.kind == NUMBER:
            return f"CAST({col} AS DOUBLE)"
        if self.kind == DATE:
            return f"CAST(date_diff('day', DATE '1970-01-01', {col}) AS DOUBLE)"
        if self.kind == TIMESTAMP:
            return f"CAST(epoch({col}) AS DOUBLE)"
        return f"CAST({col} AS VARCHAR)"

    def decode_sql(self, expression: str, digits: int | None = None) -> str:
        """SQL turning an encoded value back into the column's type."""
        if self.kind == NUMBER:
            rounded = f"round({expression})" if self.integer else (
                f"round({expression}, {int(digits)})" if digits is not None else expression)
            return f"TRY_CAST({rounded} AS {self.type})"
        if self.kind == DATE:
            return f"CAST(DATE '1970-01-01' + CAST(round({expression}) AS INTEGER) AS {self.type})"
        if self.kind == TIMESTAMP:
            return f"TRY_CAST(to_timestamp({expression}) AS {self.type})"
        if self.kind == TOKEN:
            return f"{sql_string_literal(TOKEN_PREFIX)} || printf('%016x', {expression})"
        return expression if base_type(self.type) == "VARCHAR" else f"TRY_CAST({expression} AS {self.type})"


@dataclass(frozen=True)
class Staged:
    """The staged rows: the columns in output order, and how many rows each side holds."""

    columns: list[ColumnSpec]
    train_rows: int
    holdout_rows: int

    @property
    def modelled(self) -> list[ColumnSpec]:
        return [c for c in self.columns if c.kind != TOKEN]


def as_differences(columns: list[ColumnSpec], constraints: list[str]) -> list[ColumnSpec]:
    """``columns`` with each ``a >= b`` constraint between two numbers or dates turned into modelling a − b.

    A model of the (non-negative) difference meets the constraint by construction and keeps both shapes,
    where drawing rows again until it holds would bend them. Each column takes part in at most one such pair.
    """
    by_name = {c.name: c for c in columns}
    derived: dict[str, ColumnSpec] = {}
    used: set[str] = set()
    for text in constraints:
        pair = column_inequality(text)
        if pair is None:
            continue
        greater, lesser = (by_name.get(name) for name in pair)
        if (greater is None or lesser is None or not greater.continuous or greater.kind != lesser.kind
                or {greater.name, lesser.name} & used):
            continue
        used |= {greater.name, lesser.name}
        derived[greater.name] = replace(greater, minus=lesser)
    return [derived.get(c.name, c) for c in columns]


def add_back(columns: list[ColumnSpec], arrays: dict[str, Any]) -> dict[str, Any]:
    """Sampled differences (:func:`as_differences`) back to values: a = (a − b) + b."""
    for c in columns:
        if c.minus is not None:
            arrays[c.name] = arrays[c.name] + arrays[c.minus.name]
    return arrays


def kind_of(duckdb_type: str) -> str:
    kind = value_kind(duckdb_type)
    if kind == "number":
        return NUMBER
    if kind == "date":
        return DATE if base_type(duckdb_type) == "DATE" else TIMESTAMP
    return CATEGORY


def stage(con: Any, compiled: CompiledPolicy, identifiers: set[str], *, seed: int, holdout: float) -> Staged:
    """Create :data:`ROWS_TABLE` from the policy's pipeline; ``identifiers`` become tokens (never staged)."""
    output = compiled.output_columns
    modelled = [c for c in output if c not in identifiers]
    if not modelled:
        return Staged([ColumnSpec(c, "VARCHAR", TOKEN) for c in output], 0, 0)
    listed = ", ".join(quote_ident(c) for c in modelled)
    cut = int(round(holdout * _SPLIT_BUCKETS))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {ROWS_TABLE} AS\n{compiled.pipeline_sql}\n"
                f"SELECT {listed}, hash({int(seed)}, {listed}) % {_SPLIT_BUCKETS} < {cut} AS {HOLDOUT} "
                "FROM transformed")
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {ROWS_TABLE})").fetchall())
    columns = [ColumnSpec(c, "VARCHAR", TOKEN) if c in identifiers else ColumnSpec(c, types[c], kind_of(types[c]))
               for c in output]
    train, held = con.execute(f"SELECT count(*) FILTER (WHERE NOT {HOLDOUT}), count(*) FILTER (WHERE {HOLDOUT}) "
                              f"FROM {ROWS_TABLE}").fetchone()
    return Staged(columns, int(train), int(held))


def fetch_encoded(con: Any, columns: list[ColumnSpec], *, holdout: bool, limit: int, seed: int) -> dict[str, Any]:
    """Up to ``limit`` rows of one side, each column encoded (:meth:`ColumnSpec.encode_sql`), as numpy arrays.

    Numbers come as float arrays (NaN for NULL), categories as object arrays of text (None for NULL).
    """
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    selected = ", ".join(f"{c.encode_sql()} AS {quote_ident(c.name)}" for c in columns)
    side = HOLDOUT if holdout else f"NOT {HOLDOUT}"
    fetched = con.execute(f"SELECT * FROM (SELECT {selected} FROM {ROWS_TABLE} WHERE {side}) "
                          f"USING SAMPLE reservoir({int(limit)} ROWS) REPEATABLE ({int(seed)})").fetchnumpy()
    arrays = {}
    for c in columns:
        values = fetched[c.name]
        if c.continuous:
            arrays[c.name] = np.ma.filled(np.ma.asarray(values, dtype=float), np.nan)
        else:
            arrays[c.name] = np.ma.filled(np.ma.asarray(values, dtype=object), None)
    return arrays


def count_marginals(con: Any, source: str, sizes: list[int]) -> tuple[list[Any], dict[tuple[int, int], Any]]:
    """Exact 1-way and all 2-way count tables of integer codes ``c0…`` (``c_i`` in [0, sizes[i])) in ``source``
    (a table or a parenthesised query), in one grouping-sets query."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    d = len(sizes)
    names = [f"c{i}" for i in range(d)]
    sets = [f"({n})" for n in names] + [f"({names[i]}, {names[j]})" for i in range(d) for j in range(i + 1, d)]
    fetched = con.execute(f"SELECT {', '.join(names)}, GROUPING({', '.join(names)}) AS g, count(*) AS n "
                          f"FROM {source} GROUP BY GROUPING SETS ({', '.join(sets)})").fetchnumpy()
    g = np.asarray(fetched["g"])
    counts = np.asarray(fetched["n"], dtype=float)
    codes = [np.ma.filled(np.ma.asarray(fetched[n]), 0).astype(np.int64) for n in names]
    full = (1 << d) - 1

    def bit(i: int) -> int:  # GROUPING's first argument is its most significant bit; a set bit: not grouped
        return 1 << (d - 1 - i)

    one = []
    for i, size in enumerate(sizes):
        rows = g == full - bit(i)
        table = np.zeros(size)
        np.add.at(table, codes[i][rows], counts[rows])
        one.append(table)
    two = {}
    for i in range(d):
        for j in range(i + 1, d):
            rows = g == full - bit(i) - bit(j)
            table = np.zeros((sizes[i], sizes[j]))
            np.add.at(table, (codes[i][rows], codes[j][rows]), counts[rows])
            two[(i, j)] = table
    return one, two
