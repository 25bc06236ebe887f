"""Purging a dataset version: its rows leave the workspace for good, its record stays.

What stays is the version's metadata (source path, size and SHA-256, row count, schema, column classes, who
and when), a purge record (who, when, the reason as given) and the audit trail, as retention under the PDPO
asks: what was held, and when it stopped being held. What goes is the version's table.

A ``DROP TABLE`` alone is not enough: DuckDB marks the table's blocks free but leaves their bytes in the file
until something overwrites them. So the purge writes a fresh catalog file beside the catalog, holding every
table but the purged one (the schema copied by DuckDB's ``COPY FROM DATABASE … (SCHEMA)``, then each table's
rows), adds the purge record to it, and renames it over the catalog. Either the rename happened (no rows, the
record says purged) or it did not (the rows, no purge record): the catalog never claims data it does not
have. A copy left by a killed purge holds personal data and is removed by the next connection to the catalog.
The audit entry is written before the rename; a rename that then fails is logged as such (``failed_after``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from datashare.audit.log import audited
from datashare.catalog.schema import DATA_SCHEMA, META_SCHEMA, create_schema
from datashare.catalog.store import DatasetVersion, resolve
from datashare.core.fs import fsync_dir, fsync_file
from datashare.core.sql import quote_ident, sql_string_literal
from datashare.errors import InputError, WorkspaceError
from datashare.workspace import PURGE_STAGING_FILE, Workspace, private_umask, remove_purge_staging, utc_now

if TYPE_CHECKING:
    import duckdb

MAX_REASON_CHARS = 2000
_OLD, _NEW = "ds_catalog", "ds_purged"  # the two catalogs' names while the fresh one is written


def purge(workspace: Workspace, actor: str, name: str, version: int, reason: str) -> DatasetVersion:
    """Remove the rows of ``name`` v``version`` from the workspace, keeping its record; custodians only, logged.

    Returns the version as the catalog now records it (``purged`` set). Refuses (:class:`InputError`) an empty
    or overlong reason and a version purged already.
    """
    with audited(workspace, "purge", actor, dataset=name, version=version) as record:
        reason = _checked_reason(reason)
        with workspace.lock(), private_umask():
            with workspace.connect() as con:
                dataset = resolve(con, name, version, with_columns=False, purged_ok=True)
                if dataset.purged is not None:
                    raise InputError(f"{name} v{version} was purged already ({dataset.purged['at'][:19]} by "
                                     f"{dataset.purged['by']})")
                con.execute("CHECKPOINT")  # everything in the catalog file itself: no write-ahead log to carry
            catalog = workspace.catalog_path
            if catalog.with_name(catalog.name + ".wal").exists():
                raise WorkspaceError("the catalog has a write-ahead log that DuckDB did not fold in: nothing purged",
                                     hint="Run any other command (it opens and closes the catalog) and try again.")
            staging = workspace.home / PURGE_STAGING_FILE
            remove_purge_staging(workspace.home)
            try:
                _write_catalog_without(catalog, staging, dataset, actor, reason)
                # The entry first: no purge without its entry (the reason is the custodian's text, no cell value).
                record.ok(rows=dataset.rows, reason=reason)
                os.replace(staging, catalog)
                fsync_dir(workspace.home)
            finally:
                remove_purge_staging(workspace.home)
            with workspace.connect(read_only=True) as con:
                return resolve(con, name, version, purged_ok=True)


def _checked_reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise InputError("a purge needs a reason", hint='Say why with --reason "…" (it is kept and logged).')
    if len(text) > MAX_REASON_CHARS:
        raise InputError(f"the reason is {len(text):,} characters long: at most {MAX_REASON_CHARS:,}")
    return text


def _write_catalog_without(catalog: Path, staging: Path, dataset: DatasetVersion, actor: str, reason: str) -> None:
    """Write at ``staging`` a catalog holding every table of ``catalog`` but ``dataset``'s, with its purge record."""
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
    import duckdb

    # What DuckDB spills while copying goes where the catalog's own spills go (removed by the next connection),
    # never into the current folder, DuckDB's default for an in-memory database.
    con = duckdb.connect(":memory:", config={"temp_directory": str(catalog) + ".tmp"})
    try:
        con.execute(f"ATTACH {sql_string_literal(str(catalog))} AS {_OLD} (READ_ONLY)")
        con.execute(f"ATTACH {sql_string_literal(str(staging))} AS {_NEW}")
        con.execute(f"COPY FROM DATABASE {_OLD} TO {_NEW} (SCHEMA)")
        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ?",
                             [_OLD]).fetchall()
        for schema, table in tables:
            qualified = f"{quote_ident(schema)}.{quote_ident(table)}"
            if schema == DATA_SCHEMA and f"{DATA_SCHEMA}.{quote_ident(table)}" == dataset.table:
                con.execute(f"DROP TABLE {_NEW}.{qualified}")  # created empty by the schema copy: no rows to leave
                continue
            _copy_rows(con, qualified)
        con.execute(f"USE {_NEW}")
        create_schema(con)  # a workspace made before purging existed gets its purge table now
        con.execute(f"INSERT INTO {META_SCHEMA}.purges VALUES (?, ?, ?, ?, ?)",
                    [dataset.name, dataset.version, actor, utc_now(), reason])
        # A number's or date's range is two of its values (the earliest date of birth): they go with the rows.
        con.execute(f"UPDATE {META_SCHEMA}.columns SET min_value = NULL, max_value = NULL "
                    "WHERE name = ? AND version = ?", [dataset.name, dataset.version])
        con.execute(f"USE {_OLD}")
        con.execute(f"CHECKPOINT {_NEW}")
        con.execute(f"DETACH {_NEW}")
    except duckdb.Error as exc:
        raise WorkspaceError(f"could not write the catalog without {dataset.name} v{dataset.version} "
                             f"({type(exc).__name__}): nothing was purged",
                             hint="Check that the disk has room for a second copy of the catalog.") from None
    finally:
        con.close()
    fsync_file(staging)


def _copy_rows(con: duckdb.DuckDBPyConnection, qualified: str) -> None:
    """Copy one table's rows into the fresh catalog, and check that they all arrived."""
    con.execute(f"INSERT INTO {_NEW}.{qualified} SELECT * FROM {_OLD}.{qualified}")
    before, after = con.execute(f"SELECT (SELECT count(*) FROM {_OLD}.{qualified}), "
                                f"(SELECT count(*) FROM {_NEW}.{qualified})").fetchone()
    if before != after:
        raise WorkspaceError(f"copying {qualified} gave {after:,} rows of {before:,}: nothing was purged")
