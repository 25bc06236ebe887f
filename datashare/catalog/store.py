"""The catalog: versioned datasets in the workspace's DuckDB file, as read back (listed, shown, resolved) and
classified by hand.

Each registration of a name (:mod:`datashare.catalog.load`) adds a version: the rows go into their own table
(``data."<name>__v<N>"``) and the metadata — source path, size, SHA-256, row count, schema, column classes,
who and when — into ``meta`` tables, in one DuckDB transaction, so an interrupted load leaves no
half-registered version. Versions are never overwritten.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from datashare.audit.log import audited
from datashare.catalog.profile import distinct_exact
from datashare.catalog.schema import META_SCHEMA
from datashare.core.hints import did_you_mean
from datashare.core.sql import value_kind
from datashare.errors import InputError, RefusedError, UsageError
from datashare.permissions import CUSTODIAN, roles_of
from datashare.workspace import Workspace

if TYPE_CHECKING:
    import duckdb


NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CLASSES = ("direct", "quasi", "sensitive", "other")
_YEAR = re.compile(r"-?[0-9]+")  # what of an ISO date (or timestamp) a non-custodian sees in `show`: the year


def validate_name(name: str) -> str:
    """Dataset names are lower-case identifiers: ``[a-z][a-z0-9_]{0,62}``."""
    if not NAME_PATTERN.fullmatch(name or ""):
        raise InputError(
            f"invalid dataset name {name!r}",
            hint="Use a lower-case letter followed by up to 62 lower-case letters, digits or _ (e.g. patients_2026).",
        )
    return name


# What the classifier calls a column of free text: with identifiers found in it, or named as a note.
FREE_TEXT_KINDS = ("free_text_with_identifiers", "clinical_note")


@dataclass(frozen=True)
class ColumnInfo:
    """One column of a dataset version, with its class and profile."""

    name: str
    type: str
    cls: str
    detected: str | None = None
    match_rate: float | None = None
    overridden: bool = False
    nulls: int | None = None
    distinct: int | None = None
    min: str | None = None
    max: str | None = None
    distinct_exact: bool | None = None  # distinct is count(DISTINCT) (true) or HyperLogLog's estimate (None: unknown)

    @property
    def free_text(self) -> bool:
        """Whether the column was recognised as free text (a note, a comment): it may say anything of anyone."""
        return self.detected in FREE_TEXT_KINDS

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["class"] = data.pop("cls")
        return data


@dataclass(frozen=True)
class DatasetVersion:
    """One registered version of a dataset."""

    name: str
    version: int
    table: str  # already-quoted SQL identifier of the rows' table
    rows: int
    source_path: str
    source_format: str
    source_encoding: str | None
    source_size: int
    source_sha256: str
    registered_by: str
    registered_at: str
    description: str | None = None
    owner: str | None = None
    columns: list[ColumnInfo] = field(default_factory=list)
    n_columns: int | None = None  # as recorded; known even when ``columns`` were not read
    purged: dict[str, str] | None = None  # {"by", "at", "reason"} once its rows were purged (its record stays)

    @property
    def column_count(self) -> int:
        return self.n_columns if self.n_columns is not None else len(self.columns)

    @property
    def types(self) -> dict[str, str]:
        """``{column: DuckDB type}``, what a policy is fitted to."""
        return {column.name: column.type for column in self.columns}

    @property
    def classes(self) -> dict[str, str]:
        """``{column: class}``, after the custodian's ``classify`` overrides."""
        return {column.name: column.cls for column in self.columns}

    @property
    def free_text_columns(self) -> set[str]:
        """The columns recognised as free text, which leave only through ``redact_identifiers``."""
        return {column.name for column in self.columns if column.free_text}

    def to_dict(self, *, with_columns: bool = True) -> dict[str, Any]:
        data = {
            "name": self.name,
            "version": self.version,
            "rows": self.rows,
            "n_columns": self.column_count,
            "source": {
                "path": self.source_path,
                "format": self.source_format,
                "encoding": self.source_encoding,
                "size": self.source_size,
                "sha256": self.source_sha256,
            },
            "source_sha256": self.source_sha256,
            "registered_by": self.registered_by,
            "registered_at": self.registered_at,
            "description": self.description,
            "owner": self.owner,
            "purged": self.purged,
        }
        if with_columns:
            data["columns"] = [column.to_dict() for column in self.columns]
        return data


def latest_version(con: duckdb.DuckDBPyConnection, name: str) -> int | None:
    row = con.execute(f"SELECT max(version) FROM {META_SCHEMA}.versions WHERE name = ?", [name]).fetchone()
    return row[0] if row and row[0] is not None else None


def list_datasets(con: duckdb.DuckDBPyConnection) -> list[DatasetVersion]:
    """The latest version of every dataset, by name."""
    rows = con.execute(
        f"""SELECT name, max(version) FROM {META_SCHEMA}.versions GROUP BY name ORDER BY name"""
    ).fetchall()
    return [resolve(con, name, version, purged_ok=True) for name, version in rows]


def list_versions(con: duckdb.DuckDBPyConnection, name: str) -> list[DatasetVersion]:
    """Every version of one dataset, oldest first."""
    rows = con.execute(
        f"SELECT version FROM {META_SCHEMA}.versions WHERE name = ? ORDER BY version", [name]
    ).fetchall()
    return [resolve(con, name, version, with_columns=False, purged_ok=True) for (version,) in rows]


def datasets(workspace: Workspace, actor: str) -> list[DatasetVersion]:
    """``datashare datasets``: the latest version of every dataset; the listing is logged."""
    with audited(workspace, "datasets", actor) as record:
        with workspace.connect(read_only=True) as con:
            found = list_datasets(con)
        record.ok(count=len(found))
    return found


def show(workspace: Workspace, actor: str, name: str, version: int | None = None
         ) -> tuple[DatasetVersion, list[DatasetVersion]]:
    """``datashare show``: one version with its columns, and every version of the dataset; logged.

    Only a custodian sees the exact range of a date column: for anyone else
    ``min`` and ``max`` hold the year alone (the earliest and latest dates of
    birth would point at two people).
    """
    with audited(workspace, "show", actor, dataset=name, version=version) as record:
        with workspace.connect(read_only=True) as con:
            dataset = resolve(con, name, version, purged_ok=True)  # a purged version's record is shown
            versions = list_versions(con, name)
        record.target["version"] = dataset.version
        record.ok()
    if CUSTODIAN not in roles_of(workspace, actor):
        dataset = replace(dataset, columns=[_year_range(column) for column in dataset.columns])
    return dataset, versions


def _year_range(column: ColumnInfo) -> ColumnInfo:
    """A date column's profile with its range cut to years (``1931-04-02`` → ``1931``); other columns as they are."""
    if value_kind(column.type) != "date":
        return column

    def year(text: str | None) -> str | None:
        found = _YEAR.match(text or "")
        return found.group() if found else None

    return replace(column, min=year(column.min), max=year(column.max))


def resolve(
    con: duckdb.DuckDBPyConnection, name: str, version: int | None = None, *, with_columns: bool = True,
    purged_ok: bool = False,
) -> DatasetVersion:
    """One version of a dataset (the latest by default), or an :class:`InputError`.

    A purged version is refused (:class:`RefusedError`, exit 3) unless ``purged_ok`` (its record is shown,
    never its rows). Without a version that means the latest *registered* version: when it was purged, the
    caller is told so and which version still has data, never given an older version silently.
    """
    validate_name(name)
    if version is None:
        version = latest_version(con, name)
        if version is None:
            raise InputError(f"no dataset named {name!r}", hint="`datashare datasets` lists what is registered.")
    row = con.execute(
        f"""SELECT name, version, table_name, rows, source_path, source_format, source_encoding,
                   source_size, source_sha256, registered_by, registered_at, description, owner, n_columns
            FROM {META_SCHEMA}.versions WHERE name = ? AND version = ?""",
        [name, version],
    ).fetchone()
    if row is None:
        latest = latest_version(con, name)
        if latest is None:
            raise InputError(f"no dataset named {name!r}", hint="`datashare datasets` lists what is registered.")
        raise InputError(f"dataset {name!r} has no version {version}", hint=f"Versions run from 1 to {latest}.")
    columns: list[ColumnInfo] = []
    if with_columns:
        columns = [
            ColumnInfo(*values)
            for values in con.execute(
                f"""SELECT column_name, column_type, class, detected, match_rate, overridden,
                           nulls, distinct_approx, min_value, max_value, {distinct_exact(con)}
                    FROM {META_SCHEMA}.columns WHERE name = ? AND version = ? ORDER BY position""",
                [name, version],
            ).fetchall()
        ]
    purged = purge_record(con, name, version)
    if purged is not None and not purged_ok:
        _refuse_purged(con, name, version, purged)
    return DatasetVersion(
        name=row[0], version=row[1], table=row[2], rows=row[3], source_path=row[4], source_format=row[5],
        source_encoding=row[6], source_size=row[7], source_sha256=row[8], registered_by=row[9],
        registered_at=row[10], description=row[11], owner=row[12], columns=columns, n_columns=row[13],
        purged=purged,
    )


def _has_purges(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the catalog has its purge table (a workspace made before purging existed has none until a purge)."""
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
                      "AND schema_name = ? AND table_name = 'purges'", [META_SCHEMA]).fetchone()
    return bool(row and row[0])


def purge_record(con: duckdb.DuckDBPyConnection, name: str, version: int) -> dict[str, str] | None:
    """Who purged a version's rows, when and why (``{"by", "at", "reason"}``); None while it has its rows."""
    if not _has_purges(con):
        return None
    row = con.execute(f"SELECT purged_by, purged_at, reason FROM {META_SCHEMA}.purges WHERE name = ? AND version = ?",
                      [name, version]).fetchone()
    return None if row is None else {"by": row[0], "at": row[1], "reason": row[2]}


def _refuse_purged(con: duckdb.DuckDBPyConnection, name: str, version: int, purged: dict[str, str]) -> None:
    """Refuse to use a purged version, naming the latest version that still has its rows, if any."""
    kept = []
    if _has_purges(con):
        kept = con.execute(
            f"""SELECT max(v.version) FROM {META_SCHEMA}.versions v
                WHERE v.name = ? AND NOT EXISTS (SELECT 1 FROM {META_SCHEMA}.purges p
                                                 WHERE p.name = v.name AND p.version = v.version)""",
            [name]).fetchone() or []
    other = kept[0] if kept else None
    hint = (f"Give --version {other} for the latest version that still has its rows, or register the data again."
            if other is not None else "Register the data again to add a new version.")
    raise RefusedError(f"{name} v{version} was purged ({purged['at'][:19]} by {purged['by']}): its rows are gone, "
                       "only its record is kept", hint=hint)


def duckdb_error() -> type[Exception]:
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
    import duckdb

    return duckdb.Error


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back, if DuckDB still has a transaction to roll back after a failure."""
    try:
        con.execute("ROLLBACK")
    except duckdb_error():
        pass


def classify(
    workspace: Workspace,
    name: str,
    assignments: dict[str, str],
    *,
    actor: str,
    version: int | None = None,
) -> DatasetVersion:
    """Override the automatic class of some columns (carried to later versions)."""

    with audited(workspace, "classify", actor, dataset=name) as record:
        for column, cls in assignments.items():
            if cls not in CLASSES:  # a value that is not one of the choices: a usage error, as for an option
                raise UsageError(
                    f"unknown class {cls!r} for column {column!r}", hint=f"Use one of: {', '.join(CLASSES)}."
                )
        with workspace.connect() as con:
            dataset = resolve(con, name, version)
            record.target["version"] = dataset.version
            known = {column.name for column in dataset.columns}
            missing = [column for column in assignments if column not in known]
            if missing:
                named = [f"{column!r}{did_you_mean(column, known, before=' (', after=')')}" for column in missing]
                raise InputError(f"{name} v{dataset.version} has no column {', '.join(named)}")
            con.execute("BEGIN TRANSACTION")
            try:
                for column, cls in assignments.items():
                    con.execute(
                        f"""UPDATE {META_SCHEMA}.columns SET class = ?, overridden = true,
                                min_value = CASE WHEN ? = 'direct' THEN NULL ELSE min_value END,
                                max_value = CASE WHEN ? = 'direct' THEN NULL ELSE max_value END
                            WHERE name = ? AND version = ? AND column_name = ?""",
                        [cls, cls, cls, name, dataset.version, column],
                    )
                updated = resolve(con, name, dataset.version)
                # The entry first: if the log cannot be written, nothing changes.
                record.ok(columns=dict(assignments))
                con.execute("COMMIT")
            except BaseException:
                rollback(con)
                raise
        return updated
