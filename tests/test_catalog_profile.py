"""Column profiles at registration: null counts, ranges of numbers and dates, distinct counts exact or estimated."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from datashare import catalog
from datashare.catalog.profile import EXACT_DISTINCT_UP_TO, distinct_exact, profile_columns
from datashare.catalog.schema import META_SCHEMA, create_schema
from datashare.init import init_workspace

ACTOR = "tester"


@pytest.fixture
def ws(tmp_path: Path):
    return init_workspace(tmp_path / "ws", ACTOR)[0]


def test_nulls_are_counted_and_only_numbers_and_dates_get_a_range():
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (1, 'b', DATE '2024-01-02'), (NULL, 'a', NULL), "
                "(7, NULL, DATE '1931-04-02')) v(\"n o\", label, seen)")
    profile = profile_columns(con, "t", [("n o", "INTEGER"), ("label", "VARCHAR"), ("seen", "DATE")])
    assert profile == {
        "n o": {"nulls": 1, "distinct": None, "min": "1", "max": "7"},
        "label": {"nulls": 1, "distinct": None, "min": None, "max": None},  # text: no range, it could be a name
        "seen": {"nulls": 1, "distinct": None, "min": "1931-04-02", "max": "2024-01-02"},
    }


def test_a_catalog_without_the_distinct_exact_column_reads_it_as_null():
    con = duckdb.connect()
    create_schema(con)
    assert distinct_exact(con) == "distinct_exact"
    con.execute(f"ALTER TABLE {META_SCHEMA}.columns DROP COLUMN distinct_exact")  # as a catalog made before it
    assert distinct_exact(con) == "NULL"


def test_distinct_counts_are_exact_where_cheap_and_labelled_estimates_elsewhere(ws, tmp_path):
    source = tmp_path / "wide.csv"
    rows = 3 * EXACT_DISTINCT_UP_TO
    con = duckdb.connect()
    con.execute(f"COPY (SELECT i AS id, i % 97 AS ward, CASE WHEN i % 5 = 0 THEN NULL ELSE 'x' || (i % 1000) END AS "
                f"code FROM range({rows}) t(i)) TO '{source}' (FORMAT csv, HEADER true)")
    con.close()
    dataset = catalog.register(ws, source, "wide", actor=ACTOR).dataset
    by_name = {c.name: c for c in dataset.columns}
    assert (by_name["ward"].distinct, by_name["ward"].distinct_exact) == (97, True)  # count(DISTINCT)
    assert (by_name["code"].distinct, by_name["code"].distinct_exact) == (800, True)  # NULL is no value
    assert by_name["id"].distinct_exact is False  # too many to count on every register: estimated, and said so
    assert 0.5 * rows < by_name["id"].distinct < 1.5 * rows
    assert by_name["id"].to_dict()["distinct_exact"] is False
