"""The catalog's own tables: made once, and making them again changes nothing."""

from __future__ import annotations

import duckdb

from datashare.catalog.schema import DATA_SCHEMA, META_SCHEMA, create_schema


def test_create_schema_makes_the_meta_tables_and_can_run_again():
    con = duckdb.connect()
    create_schema(con)
    con.execute(f"INSERT INTO {META_SCHEMA}.purges VALUES ('t', 1, 'tester', '2026-01-01T00:00:00Z', 'retention')")
    create_schema(con)  # idempotent: nothing recreated, nothing lost
    tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL").fetchall()
    assert tables == [(META_SCHEMA, "columns"), (META_SCHEMA, "purges"), (META_SCHEMA, "versions")]
    assert con.execute(f"SELECT count(*) FROM {META_SCHEMA}.purges").fetchone()[0] == 1
    schemas = {row[0] for row in con.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()}
    assert {META_SCHEMA, DATA_SCHEMA} <= schemas
