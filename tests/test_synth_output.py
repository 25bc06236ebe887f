"""The guards on synthetic rows: copies of real rows and rare quasi-identifier combinations are drawn again,
constraints hold, and a release that cannot avoid copies is refused."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from datashare.errors import RefusedError
from datashare.synth.columns import HOLDOUT, ROWS_TABLE, TOKEN, ColumnSpec
from datashare.synth.output import OUT_TABLE, Guards, build

COLUMNS = [ColumnSpec("id", "VARCHAR", TOKEN), ColumnSpec("sex", "VARCHAR", "category"),
           ColumnSpec("age", "INTEGER", "number"), ColumnSpec("start", "DATE", "date"),
           ColumnSpec("stop", "DATE", "date")]


@pytest.fixture
def con():
    connection = duckdb.connect()
    connection.execute(f"""CREATE TEMP TABLE {ROWS_TABLE} AS SELECT
        CASE WHEN i % 2 = 0 THEN 'F' ELSE 'M' END AS sex, CAST(20 + i % 50 AS INTEGER) AS age,
        DATE '2020-01-01' + CAST(i % 300 AS INTEGER) AS start, DATE '2020-01-01' + CAST(i % 300 + 3 AS INTEGER)
        AS stop, false AS {HOLDOUT} FROM range(400) t(i)""")
    return connection


def sampler(rng, copy_share=0.0):
    """Rows of random values, a share of them copied from real rows (i = 0…)."""

    def sample(n):
        i = rng.integers(0, 400, n)
        copy = rng.random(n) < copy_share
        fresh_start = rng.integers(18000, 18500, n).astype(float)
        start = np.where(copy, 18262 + i % 300, fresh_start)
        return {"sex": np.where(i % 2 == 0, "F", "M").astype(object),
                "age": np.where(copy, 20 + i % 50, rng.integers(0, 100, n)).astype(float),
                "start": start, "stop": np.where(copy, start + 3, start + rng.integers(-5, 20, n))}

    return sample


def test_copies_and_breaches_are_drawn_again_until_none_is_left(con):
    guards = Guards([], 5, ["stop >= start"])
    built = build(con, COLUMNS, sampler(np.random.default_rng(1), copy_share=0.3), 2000, guards, {}, seed=1)
    assert built.redrawn > 600 and built.row_copies == 0 and built.constraint_breaches == 0
    assert built.rows + built.left_out == 2000
    on = " AND ".join(f"o.{c} = r.{c}" for c in ("sex", "age", "start", "stop"))
    assert con.execute(f"SELECT count(*) FROM {OUT_TABLE} o SEMI JOIN {ROWS_TABLE} r ON {on}").fetchone()[0] == 0
    assert con.execute(f"SELECT count(*) FROM {OUT_TABLE} WHERE stop < start").fetchone()[0] == 0
    tokens = con.execute(f"SELECT count(DISTINCT id), bool_and(id LIKE 'syn-%') FROM {OUT_TABLE}").fetchone()
    assert tokens == (built.rows, True)


def test_rare_quasi_identifier_combinations_are_not_repeated(con):
    guards = Guards(["sex", "age"], 10, [])  # every real (sex, age) occurs 8 times: all are rare
    sample = sampler(np.random.default_rng(2))

    def with_age(age):
        return lambda n: {**sample(n), "sex": np.full(n, "F", dtype=object), "age": np.full(n, age)}

    with pytest.raises(RefusedError, match="rare quasi-identifier"):
        build(con, COLUMNS, with_age(20.0), 500, guards, {}, seed=1)  # (F, 20) is a real, rare combination
    built = build(con, COLUMNS, with_age(150.0), 500, guards, {}, seed=1)
    assert built.qi_copies == 0 and built.redrawn == 0 and built.rows == 500


def test_a_category_drawn_as_all_null_keeps_its_type(con):
    guards = Guards([], 5, [])
    sample = sampler(np.random.default_rng(3))
    built = build(con, COLUMNS, lambda n: {**sample(n), "sex": np.full(n, None, dtype=object)}, 50, guards, {},
                  seed=1)
    assert built.rows == 50
    assert con.execute(f"SELECT typeof(sex), count(sex) FROM {OUT_TABLE} GROUP BY ALL").fetchall() == [("VARCHAR", 0)]
