"""Staging the policy's rows and encoding columns: the split, identifiers kept out, values round-tripped."""

from __future__ import annotations

import duckdb
import numpy as np

from datashare.synth.columns import (
    HOLDOUT,
    ROWS_TABLE,
    TOKEN,
    ColumnSpec,
    add_back,
    as_differences,
    count_marginals,
    kind_of,
)


def test_kinds_follow_duckdb_types():
    assert [kind_of(t) for t in ("DOUBLE", "DECIMAL(8,2)", "DATE", "TIMESTAMP", "VARCHAR", "BOOLEAN")] == [
        "number", "number", "date", "timestamp", "category", "category"]


def test_encode_and_decode_round_trip_in_duckdb():
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT DATE '2024-02-29' AS d, 42::INTEGER AS n, 1.25::DOUBLE AS f, "
                "true AS b, TIMESTAMP '2024-01-01 10:00:00' AS ts")
    specs = [ColumnSpec("d", "DATE", "date"), ColumnSpec("n", "INTEGER", "number"),
             ColumnSpec("f", "DOUBLE", "number"), ColumnSpec("b", "BOOLEAN", "category"),
             ColumnSpec("ts", "TIMESTAMP", "timestamp")]
    encoded = con.execute(f"SELECT {', '.join(s.encode_sql() for s in specs)} FROM t").fetchone()
    decoded = con.execute("SELECT " + ", ".join(s.decode_sql(repr(v) if not isinstance(v, str) else f"'{v}'", 2)
                                                for s, v in zip(specs, encoded, strict=True))).fetchone()
    assert decoded == con.execute("SELECT * FROM t").fetchone()
    token = con.execute(f"SELECT {ColumnSpec('id', 'VARCHAR', TOKEN).decode_sql('255::BIGINT')}").fetchone()[0]
    assert token == "syn-00000000000000ff"


def test_a_column_inequality_is_modelled_as_a_difference():
    a, b = ColumnSpec("discharge", "DATE", "date"), ColumnSpec("admission", "DATE", "date")
    modelled = as_differences([b, a], ["discharge >= admission", "admission > discharge", "x IS NULL"])
    assert modelled[0].minus is None and modelled[1].minus == b  # each column in one pair only
    assert "date_diff" in modelled[1].encode_sql() and " - " in modelled[1].encode_sql()
    arrays = add_back(modelled, {"admission": np.array([10.0, np.nan]), "discharge": np.array([2.0, 1.0])})
    assert arrays["discharge"][0] == 12.0 and np.isnan(arrays["discharge"][1])


def test_marginal_counts_come_from_one_grouping_sets_query():
    con = duckdb.connect()
    con.execute(f"CREATE TEMP TABLE {ROWS_TABLE} AS SELECT i % 2 AS c0, i % 3 AS c1, i % 4 AS c2, false AS "
                f"{HOLDOUT} FROM range(24) t(i)")
    one, two = count_marginals(con, ROWS_TABLE, [2, 3, 4])
    assert [list(m) for m in one] == [[12, 12], [8, 8, 8], [6, 6, 6, 6]]
    assert two[(0, 1)].sum() == 24 and two[(1, 2)].shape == (3, 4) and two[(0, 2)][0, 1] == 0
