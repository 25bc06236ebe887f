"""The catalog's own tables in the workspace's DuckDB file.

``meta`` holds what is known of each dataset version: ``versions`` (the source's path, format, size and
SHA-256, the row count, who registered it and when), ``columns`` (each column's type, class and profile) and
``purges`` (who purged a version's rows, when and why). ``data`` holds the rows, a table per version. A catalog
made before a table or column existed gains it when it is first needed (``purges`` at the first purge,
``columns.distinct_exact`` at the next registration).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

META_SCHEMA = "meta"
DATA_SCHEMA = "data"

_SCHEMA_SQL = f"""
CREATE SCHEMA IF NOT EXISTS {META_SCHEMA};
CREATE SCHEMA IF NOT EXISTS {DATA_SCHEMA};
CREATE TABLE IF NOT EXISTS {META_SCHEMA}.versions (
    name VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    table_name VARCHAR NOT NULL,
    source_path VARCHAR NOT NULL,
    source_format VARCHAR NOT NULL,
    source_encoding VARCHAR,
    source_size BIGINT NOT NULL,
    source_sha256 VARCHAR NOT NULL,
    rows BIGINT NOT NULL,
    n_columns INTEGER NOT NULL,
    registered_by VARCHAR NOT NULL,
    registered_at VARCHAR NOT NULL,
    description VARCHAR,
    owner VARCHAR,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS {META_SCHEMA}.columns (
    name VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    column_name VARCHAR NOT NULL,
    column_type VARCHAR NOT NULL,
    class VARCHAR NOT NULL,
    detected VARCHAR,
    match_rate DOUBLE,
    overridden BOOLEAN NOT NULL DEFAULT false,
    nulls BIGINT,
    distinct_approx BIGINT,
    min_value VARCHAR,
    max_value VARCHAR,
    distinct_exact BOOLEAN,
    PRIMARY KEY (name, version, position)
);
CREATE TABLE IF NOT EXISTS {META_SCHEMA}.purges (
    name VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    purged_by VARCHAR NOT NULL,
    purged_at VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    PRIMARY KEY (name, version)
);
"""


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the catalog's metadata tables (idempotent)."""
    con.execute(_SCHEMA_SQL)
