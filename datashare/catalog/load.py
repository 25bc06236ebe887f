"""Registering a version: the file checked, loaded into its own table, classified and profiled, with its
metadata and audit entry, in one DuckDB transaction (reading the catalog back is :mod:`datashare.catalog.store`'s).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from datashare.audit.log import audited
from datashare.catalog.detect import classify_columns
from datashare.catalog.profile import fill_distinct_counts, profile_columns
from datashare.catalog.schema import DATA_SCHEMA, META_SCHEMA
from datashare.catalog.sources import (
    EXACT_DOUBLE,
    SourceFile,
    describe_source,
    fingerprint,
    is_write_failure,
    load_sql,
    long_integer_columns,
    run_load,
    write_failure_error,
)
from datashare.catalog.store import (
    DatasetVersion,
    duckdb_error,
    latest_version,
    resolve,
    rollback,
    validate_name,
)
from datashare.core.progress import SILENT, Progress
from datashare.core.sql import quote_ident
from datashare.errors import DatashareError, InputError, WorkspaceError, is_interrupt
from datashare.workspace import Workspace, utc_now

if TYPE_CHECKING:
    import duckdb

    from datashare.audit.log import AuditRecorder

# The fields of a row of meta.columns a registration inserts, and their types (for inserting many rows as lists);
# distinct_exact is filled in with the distinct counts, after the commit.
_COLUMN_RECORD_FIELDS = ("name", "version", "position", "column_name", "column_type", "class", "detected",
                         "match_rate", "overridden", "nulls", "distinct_approx", "min_value", "max_value")
_COLUMN_RECORD_TYPES = ("VARCHAR", "INTEGER", "INTEGER", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "DOUBLE",
                        "BOOLEAN", "BIGINT", "BIGINT", "VARCHAR", "VARCHAR")



@dataclass(frozen=True)
class RegisterResult:
    """What a registration did: a new version, or nothing because the content was identical."""

    dataset: DatasetVersion
    unchanged: bool


def _table_name(name: str, version: int) -> str:
    return f"{DATA_SCHEMA}.{quote_ident(f'{name}__v{version}')}"


def register(
    workspace: Workspace,
    path: Path,
    name: str,
    *,
    actor: str,
    encoding: str | None = None,
    source_format: str | None = None,
    description: str | None = None,
    owner: str | None = None,
    progress: Progress = SILENT,
) -> RegisterResult:
    """Load a file as a new version of ``name`` and classify its columns.

    Identical content (same SHA-256 as the latest version) adds nothing. The
    load, metadata and classification commit in one transaction. ``progress``
    hears the phases (fingerprinting, loading with its percentage, classifying,
    profiling).
    """

    with audited(workspace, "register", actor, dataset=name) as record:
        validate_name(name)
        source = describe_source(Path(path), encoding=encoding, source_format=source_format)
        with workspace.connect() as con:
            latest = latest_version(con, name)
            previous = resolve(con, name, latest, with_columns=False, purged_ok=True) if latest is not None else None
            if previous is not None and previous.purged is None and previous.source_size == source.size:
                # Same size: it may be the same content, so fingerprint before loading anything.
                progress.phase(f"Fingerprinting {source.path.name}")
                source = fingerprint(source)
                record.target["source_sha256"] = source.sha256
                if previous.source_sha256 == source.sha256:
                    record.target["version"] = previous.version
                    record.ok(unchanged=True)
                    return RegisterResult(resolve(con, name, previous.version), unchanged=True)
            version = (latest or 0) + 1
            record.target["version"] = version
            dataset = _load_version(con, source, name, version, actor, description, owner, progress, record)
        return RegisterResult(dataset, unchanged=False)


def _long_integer_columns(con: duckdb.DuckDBPyConnection, table: str, source: SourceFile) -> list[str]:
    """The CSV columns DuckDB read as DOUBLE that hold whole numbers too long for it (see
    :func:`long_integer_columns`): a look at the loaded numbers first, the file's text only when one is past
    :data:`EXACT_DOUBLE`."""
    doubles = [str(row[0]) for row in con.execute(f"DESCRIBE {table}").fetchall() if str(row[1]) == "DOUBLE"]
    if not doubles:
        return []
    past = ", ".join(f"coalesce(max(abs({quote_ident(c)})) >= {EXACT_DOUBLE}, false)" for c in doubles)
    flags = con.execute(f"SELECT {past} FROM {table}").fetchone() or ()
    candidates = [c for c, flag in zip(doubles, flags, strict=True) if flag]
    return long_integer_columns(con, source, candidates) if candidates else []


def _load_version(
    con: duckdb.DuckDBPyConnection,
    source: SourceFile,
    name: str,
    version: int,
    actor: str,
    description: str | None,
    owner: str | None,
    progress: Progress,
    record: AuditRecorder,
) -> DatasetVersion:
    """Load, classify and profile one version inside a transaction.

    The audit entry is appended just before COMMIT: no version exists without
    its entry.
    """

    table = _table_name(name, version)
    hashing = None
    if source.sha256 is None:
        # Fingerprint the file on another thread while DuckDB loads it (hashlib releases the GIL).

        pool = ThreadPoolExecutor(max_workers=1)
        hashing = pool.submit(fingerprint, source)
        pool.shutdown(wait=False)
    con.execute("BEGIN TRANSACTION")
    try:
        progress.phase(f"Loading {source.path.name}")
        rows = run_load(con, f"CREATE TABLE {table} AS SELECT * FROM {load_sql(source)}", source,
                        progress.on_percent)
        if hashing is not None:
            progress.phase(f"Fingerprinting {source.path.name}")
            source = hashing.result()
            record.target["source_sha256"] = source.sha256
        if source.format == "csv":
            long = _long_integer_columns(con, table, source)
            if long:  # read again, those columns as text: as DOUBLE, distinct account numbers became one value
                con.execute(f"DROP TABLE {table}")
                source = replace(source, text_columns=tuple(long))
                progress.phase(f"Loading {source.path.name} again, {len(long)} column(s) of long numbers as text")
                rows = run_load(con, f"CREATE TABLE {table} AS SELECT * FROM {load_sql(source)}", source,
                                progress.on_percent)
        source.require_unchanged()  # what was checked, loaded and fingerprinted is one content
        if rows == 0:
            raise InputError(f"{source.path} has no rows", hint="Register a file with a header and at least one row.")
        schema = con.execute(f"DESCRIBE {table}").fetchall()
        columns = [(str(row[0]), str(row[1])) for row in schema]
        progress.phase(f"Classifying {len(columns):,} columns")
        classes = classify_columns(con, table, columns)
        progress.phase(f"Profiling {len(columns):,} columns")
        profile = profile_columns(con, table, columns)
        con.execute(
            f"INSERT INTO {META_SCHEMA}.versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [name, version, table, str(source.path), source.format, source.encoding, source.size,
             source.sha256, rows, len(columns), actor, utc_now(), description, owner],
        )
        carried = _carried_overrides(con, name, version - 1)
        rows_of_columns = []
        for position, (column, column_type) in enumerate(columns):
            found = classes[column]
            cls, overridden = found.cls, False
            if column in carried:
                cls, overridden = carried[column], True
            stats = profile[column]
            rows_of_columns.append(
                [name, version, position, column, column_type, cls, found.detected, found.match_rate,
                 overridden, stats["nulls"], stats["distinct"],
                 stats["min"] if cls != "direct" else None, stats["max"] if cls != "direct" else None])
        # One statement with a list per field: row-by-row inserts took seconds for a 10,000-column file.
        unnested = ", ".join(f"unnest(?::{kind}[])" for kind in _COLUMN_RECORD_TYPES)
        con.execute(f"INSERT INTO {META_SCHEMA}.columns ({', '.join(_COLUMN_RECORD_FIELDS)}) SELECT {unnested}",
                    [list(field) for field in zip(*rows_of_columns, strict=True)])
        record.ok(rows=rows, columns=len(columns), source_size=source.size,
                  **({"text_columns": list(source.text_columns)} if source.text_columns else {}))
        # A failed COMMIT after this is logged by audit.audited as an error naming the ok entry (failed_after).
        con.execute("COMMIT")
    except BaseException as exc:
        rollback(con)
        failure = _safe_failure(exc, source)
        if failure is not None:
            raise failure from None
        raise
    try:
        fill_distinct_counts(con, name, version, table, columns)
    except duckdb_error() as exc:
        if not (is_write_failure(exc) or type(exc).__name__ == "OutOfMemoryException"):
            raise
        # The version is committed and logged; only the distinct counts are missing (shown as none).
    return resolve(con, name, version)


def _safe_failure(exc: BaseException, source: SourceFile) -> DatashareError | None:
    """A DuckDB error raised while writing a version, as a message that quotes no data (None: not DuckDB's)."""
    if isinstance(exc, UnicodeError):  # text DuckDB decoded in the given encoding that Python cannot take
        return InputError(f"{source.path.name} is not valid {source.encoding or 'utf-8'}: nothing was registered",
                          hint="Give the file's real encoding with --encoding.")
    if not isinstance(exc, duckdb_error()) or is_interrupt(exc):  # Ctrl-C is reported as itself
        return None
    if is_write_failure(exc):
        return write_failure_error()
    return WorkspaceError(f"could not register {source.path.name} ({type(exc).__name__}): nothing was registered")


def _carried_overrides(con: duckdb.DuckDBPyConnection, name: str, version: int) -> dict[str, str]:
    """Classes a custodian set by hand on the previous version, carried to the next."""
    if version < 1:
        return {}
    rows = con.execute(
        f"SELECT column_name, class FROM {META_SCHEMA}.columns WHERE name = ? AND version = ? AND overridden",
        [name, version],
    ).fetchall()
    return dict(rows)
