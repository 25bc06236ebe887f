"""The synthetic rows as a DuckDB table, with no copy of a real row and every policy constraint met.

Sampled arrays go to DuckDB once; the values are decoded there into the
columns' own types (so what is checked is what is written). Rows that copy a
real row on every modelled column, rows whose quasi-identifier combination is
a rare one in the real data, and rows that break a ``synthetic.constraints``
rule are drawn again, a few rounds; what still fails after that is left out,
unless it is more than :data:`MAX_LEFT_OUT` of the rows: then the release is
refused, since leaving out that much would change the data's shape.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datashare.core.sql import quote_ident
from datashare.errors import RefusedError
from datashare.policy.rowfilter import compile_where, parse_where
from datashare.synth.columns import ROWS_TABLE, TOKEN, ColumnSpec

OUT_TABLE = "ds_synth_out"  # temporary: the synthetic rows, decoded
_ARRAYS = "ds_synth_arrays"
_CANDIDATES = "ds_synth_candidates"
INDEX = "__ds_i"
ROUNDS = 10
MAX_LEFT_OUT = 0.01


@dataclass(frozen=True)
class Guards:
    """What a synthetic row may not be: a copy of a real row, a rare real quasi-identifier combination, a
    breach of a constraint."""

    quasi_identifiers: list[str]
    rare_below: int
    constraints: list[str]


@dataclass(frozen=True)
class Built:
    rows: int
    redrawn: int
    left_out: int
    row_copies: int
    qi_copies: int
    constraint_breaches: int


def build(con: Any, columns: list[ColumnSpec], sample: Callable[[int], dict[str, Any]], n: int, guards: Guards,
          digits: dict[str, int | None], seed: int) -> Built:
    """Sample ``n`` rows into :data:`OUT_TABLE`, redrawing the ones the guards catch."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    modelled = [c for c in columns if c.kind != TOKEN]
    arrays = sample(n)
    _load(con, _CANDIDATES, columns, arrays, np.arange(n), digits)
    bad = _failing(con, _CANDIDATES, modelled, guards)
    redrawn = 0
    for _ in range(ROUNDS):
        if len(bad) == 0:
            break
        redrawn += len(bad)
        fresh = sample(len(bad))
        for name, values in fresh.items():
            arrays[name][bad] = values
        _load(con, _CANDIDATES, columns, {k: v[bad] for k, v in arrays.items()}, bad, digits)
        bad = bad[np.isin(bad, _failing(con, _CANDIDATES, modelled, guards))]
    if len(bad) > MAX_LEFT_OUT * n:
        raise RefusedError(
            f"refused: {len(bad):,} of {n:,} synthetic rows still copy a real row, repeat a rare quasi-identifier "
            f"combination or break a constraint after {ROUNDS} redraws",
            hint="Model more detailed columns (exact values rather than bands), coarsen the quasi-identifiers, or "
                 "check synthetic.constraints.")
    keep = np.ones(n, dtype=bool)
    keep[bad] = False
    _load(con, OUT_TABLE, columns, {k: v[keep] for k, v in arrays.items()}, np.arange(int(keep.sum())), digits)
    copies, qi_copies, breaches = _counts(con, OUT_TABLE, modelled, guards)
    if copies or qi_copies:  # the loop above removed them: a count here is a fault, and nothing is released
        raise RefusedError("refused: the synthetic rows still hold copies of real rows")
    return Built(int(keep.sum()), redrawn, len(bad), copies, qi_copies, breaches)


def _load(con: Any, table: str, columns: list[ColumnSpec], arrays: dict[str, Any], index: Any,
          digits: dict[str, int | None]) -> None:
    """Decode sampled arrays into ``table`` in DuckDB; identifiers get fresh random tokens."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    n = len(index)
    tokens = np.random.default_rng(secrets.randbits(128))  # never the seed: tokens must not be reproducible
    data = {INDEX: np.asarray(index, dtype=np.int64)}
    selected = [quote_ident(INDEX)]
    for i, c in enumerate(columns):
        key = f"c{i}"
        source = f"{_ARRAYS}.{key}"
        if c.kind == TOKEN:
            data[key] = tokens.integers(0, 2**63 - 1, size=n, dtype=np.int64)
            value = c.decode_sql(source)
        elif c.continuous:
            data[key] = np.asarray(arrays[c.name], dtype=float)
            value = f"CASE WHEN isnan({source}) THEN NULL ELSE {c.decode_sql(source, digits.get(c.name))} END"
        else:
            data[key] = np.asarray(arrays[c.name], dtype=object)
            value = c.decode_sql(f"CAST({source} AS VARCHAR)")  # all-NULL object arrays arrive typed INTEGER
        selected.append(f"{value} AS {quote_ident(c.name)}")
    con.register(_ARRAYS, data)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {', '.join(selected)} FROM {_ARRAYS}")
    finally:
        con.unregister(_ARRAYS)


def _conditions(table: str, modelled: list[ColumnSpec], guards: Guards) -> list[tuple[str, str]]:
    """(name, SQL selecting the index of every failing row of ``table``) for each guard."""
    same = " AND ".join(f"o.{quote_ident(c.name)} IS NOT DISTINCT FROM r.{quote_ident(c.name)}" for c in modelled)
    checks = [("row_copies", f"SELECT o.{INDEX} FROM {table} o SEMI JOIN {ROWS_TABLE} r ON {same}")]
    qis = [q for q in guards.quasi_identifiers if any(c.name == q for c in modelled)]
    if qis:
        listed = ", ".join(quote_ident(q) for q in qis)
        on = " AND ".join(f"o.{quote_ident(q)} IS NOT DISTINCT FROM rare.{quote_ident(q)}" for q in qis)
        checks.append(("qi_copies", f"SELECT o.{INDEX} FROM {table} o SEMI JOIN (SELECT {listed} FROM {ROWS_TABLE} "
                                    f"GROUP BY ALL HAVING count(*) < {int(guards.rare_below)}) rare ON {on}"))
    names = [c.name for c in modelled]
    rules = [f"({compile_where(parse_where(text), names)}) IS FALSE" for text in guards.constraints]
    if rules:
        checks.append(("constraint_breaches", f"SELECT {INDEX} FROM {table} WHERE {' OR '.join(rules)}"))
    return checks


def _failing(con: Any, table: str, modelled: list[ColumnSpec], guards: Guards) -> Any:
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    union = " UNION ".join(sql for _, sql in _conditions(table, modelled, guards)) if modelled else ""
    if not union:
        return np.zeros(0, dtype=np.int64)
    return np.sort(con.execute(union).fetchnumpy()[INDEX].astype(np.int64))


def _counts(con: Any, table: str, modelled: list[ColumnSpec], guards: Guards) -> tuple[int, int, int]:
    found = {name: con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
             for name, sql in _conditions(table, modelled, guards)} if modelled else {}
    return found.get("row_copies", 0), found.get("qi_copies", 0), found.get("constraint_breaches", 0)
