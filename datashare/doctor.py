"""``datashare doctor``: is this workspace in working order? One check per line, each passed, failed or not run.

The checks, in order: the workspace is found; its modes (group and others have no access to the folder or any
of its own files; nothing is changed, unlike every other command, which takes such bits off); the lock is free;
the signing key is present and unlocks, and the workspace secret unseals, with the passphrase at hand; the
audit log's chain verifies; no active approval expires within the given days; and the catalog holds what its
records say (a table with the recorded rows and columns for each version that has its rows, none for a
purged one, and every purge the log records).

The run is logged (``doctor``) before the catalog is read. When it cannot be logged, the audit-log check fails
and the catalog is not read: no access without a trace. A check that cannot run is reported as not run
(``ok`` is None) with the reason; only the key can be left unchecked without another check failing (no
passphrase and no terminal). Details name files, datasets, versions, policies and counts, never a cell value.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datashare.audit.commands import verify_with_receipts
from datashare.audit.log import FAILED_AFTER, OUTCOME_ERROR, OUTCOME_OK, audited
from datashare.audit.query import scan_entries
from datashare.catalog.schema import DATA_SCHEMA, META_SCHEMA
from datashare.catalog.store import purge_record
from datashare.core.locking import workspace_lock
from datashare.core.sql import quote_ident
from datashare.errors import DatashareError, InputError, RefusedError, VerificationError, WorkspaceBusyError
from datashare.governance.approvals import approvals_with_status, signed_receipts
from datashare.governance.roles import workspace_actor
from datashare.signing.keystore import current_key, has_key, load_private_key, passphrase_at_hand, read_passphrase
from datashare.workspace import Workspace, check_folder, is_initialised, loose_modes, resolve_home

if TYPE_CHECKING:
    import duckdb

CHECKS = ("workspace", "modes", "lock", "key", "audit_log", "policies", "catalog")
DEFAULT_EXPIRING_DAYS = 30
_MAX_LISTED = 5  # problems named in a check's detail; the count says how many more


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``ok`` is True (passed), False (failed) or None (not run, ``detail`` says why)."""

    name: str
    ok: bool | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class Diagnosis:
    """Every check, in the order of :data:`CHECKS`."""

    home: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed (a check not run does not fail)."""
        return all(check.ok is not False for check in self.checks)

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if check.ok is False]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "home": self.home, "checks": [check.to_dict() for check in self.checks]}


class DoctorFindings(DatashareError):
    """At least one check failed (exit 1); the checks were shown first."""


def diagnose(home: Path | str | None, actor: str | None = None, *,
             expiring_within: int = DEFAULT_EXPIRING_DAYS) -> Diagnosis:
    """Run every check on the workspace at ``home`` (as the CLI finds it) and return what each found.

    Raises only when the actor may not act here (:class:`RefusedError`, logged as denied, as for any command).
    """
    path = resolve_home(home)
    found = Diagnosis(str(path))
    if not is_initialised(path):
        found.checks.append(Check("workspace", False, f"no datashare workspace at {path}"))
        found.checks.extend(Check(name, None, "not run: no workspace") for name in CHECKS[1:])
        return found
    found.checks.append(Check("workspace", True, f"found at {path}"))
    found.checks.append(_modes(path))
    lock = _lock(path)
    found.checks.append(lock)
    ws = Workspace(path)
    unlogged = "the workspace is busy" if not lock.ok else _log_run(ws, workspace_actor(ws, actor), expiring_within)
    found.checks.append(_key(ws))
    found.checks.append(_audit_log(ws, unlogged if lock.ok else None))
    found.checks.append(_policies(ws, expiring_within))
    if unlogged is not None:
        found.checks.append(Check("catalog", None, f"not run: this run could not be logged ({unlogged})"))
    else:
        found.checks.append(_catalog(ws))
    return found


def _modes(path: Path) -> Check:
    try:
        check_folder(path)
    except RefusedError as exc:
        return Check("modes", False, exc.message)
    loose = loose_modes(path)
    if loose:
        return Check("modes", False, f"open to group or others: {_listed(loose)} (any other datashare command "
                                     "takes those bits off)")
    return Check("modes", True, "group and others have no access to the folder or its files")


def _lock(path: Path) -> Check:
    try:
        with workspace_lock(path, timeout=0):
            pass
    except WorkspaceBusyError:
        return Check("lock", False, "held by another process: a datashare command is running (or hangs)")
    except DatashareError as exc:
        return Check("lock", False, exc.message)
    return Check("lock", True, "free")


def _log_run(ws: Workspace, actor: str, expiring_within: int) -> str | None:
    """Write this run's entry; None, or why it could not be written. A refusal (no role) is raised."""
    try:
        with audited(ws, "doctor", actor) as record:
            record.ok(expiring_within=expiring_within)
    except RefusedError:
        raise
    except DatashareError as exc:
        return exc.message
    return None


def _key(ws: Workspace) -> Check:
    if not has_key(ws):
        return Check("key", False, "no signing key: create one with `datashare keys generate`")
    try:
        key_id = current_key(ws).key_id
        passphrase = passphrase_at_hand()
        if passphrase is None and not sys.stdin.isatty():
            return Check("key", None, f"{key_id} is present; not unlocked: no passphrase (set "
                                      "DATASHARE_PASSPHRASE, or run on a terminal to be asked)")
        passphrase = passphrase if passphrase is not None else read_passphrase(confirm=False)
        load_private_key(ws, passphrase)
        if not ws.has_secret():
            return Check("key", False, f"{key_id} unlocks, but the workspace has no secret (datashare keys generate "
                                       "makes it)")
        ws.secret(passphrase)
    except DatashareError as exc:
        return Check("key", False, exc.message)
    return Check("key", True, f"{key_id} unlocks, and the workspace secret unseals")


def _audit_log(ws: Workspace, unlogged: str | None) -> Check:
    try:
        report = verify_with_receipts(ws, signed_receipts(ws))
    except (VerificationError, InputError) as exc:  # a broken chain; approvals that cannot be read
        return Check("audit_log", False, exc.message)
    if unlogged is not None:
        return Check("audit_log", False, f"this run could not be logged: {unlogged}")
    notes = f" ({'; '.join(report.notes)})" if report.notes else ""
    return Check("audit_log", True, f"{report.entries:,} entries, the chain is intact{notes}")


def _policies(ws: Workspace, within: int) -> Check:
    try:
        approvals = approvals_with_status(ws)
    except (DatashareError, OSError, ValueError) as exc:
        return Check("policies", False, f"cannot read the approvals: {getattr(exc, 'message', type(exc).__name__)}")
    today = dt.datetime.now(dt.UTC).date()
    active = [a for a in approvals if a.get("status") == "active"]
    soon = []
    for approval in active:
        if approval.get("expires"):
            try:
                days = (dt.date.fromisoformat(str(approval["expires"])) - today).days
            except ValueError:
                soon.append(f"{approval.get('policy')} v{approval.get('version')} has no valid expiry date")
                continue
            if days <= within:
                soon.append(f"{approval.get('policy')} v{approval.get('version')} expires {approval['expires']} "
                            f"(in {days} day{'' if days == 1 else 's'})")
    if soon:
        return Check("policies", False, _listed(soon))
    return Check("policies", True, f"{len(active)} active approval{'' if len(active) == 1 else 's'}; none expires "
                                   f"within {within} days")


def _catalog(ws: Workspace) -> Check:
    try:
        with ws.connect(read_only=True) as con:
            problems, versions, purged = _catalog_problems(con)
    except DatashareError as exc:
        return Check("catalog", False, exc.message)
    problems += _unrecorded_purges(ws, purged)
    if problems:
        return Check("catalog", False, _listed(problems))
    names = len({name for name, _ in versions})
    return Check("catalog", True, f"{names} dataset{'' if names == 1 else 's'}, {len(versions)} version"
                                  f"{'' if len(versions) == 1 else 's'} ({len(purged)} purged): tables, row counts "
                                  "and columns match their records")


def _catalog_problems(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[tuple[str, int]], set]:
    """What does not match the records, each version, and the purged ones."""
    tables = {f"{DATA_SCHEMA}.{quote_ident(table)}" for (table,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = ?",
        [DATA_SCHEMA]).fetchall()}
    rows = con.execute(f"SELECT name, version, table_name, rows FROM {META_SCHEMA}.versions "
                       "ORDER BY name, version").fetchall()
    problems, purged = [], set()
    for name, version, table, recorded in rows:
        label = f"{name} v{version}"
        if purge_record(con, name, version) is not None:
            purged.add((name, version))
            if table in tables:
                problems.append(f"{label} is recorded as purged but its table is still there")
            continue
        if table not in tables:
            problems.append(f"{label}: its table is missing")
            continue
        (count,) = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        if count != recorded:
            problems.append(f"{label}: {count:,} rows, its record says {recorded:,}")
        described = [(str(c[0]), str(c[1])) for c in con.execute(f"DESCRIBE {table}").fetchall()]
        listed = con.execute(f"SELECT column_name, column_type FROM {META_SCHEMA}.columns WHERE name = ? AND "
                             "version = ? ORDER BY position", [name, version]).fetchall()
        if described != [tuple(c) for c in listed]:
            problems.append(f"{label}: its columns differ from its record")
    return problems, [(name, version) for name, version, _, _ in rows], purged


def _unrecorded_purges(ws: Workspace, purged: set) -> list[str]:
    """Purges the log records as done that the catalog does not show (a purge killed before its rename)."""
    entries = list(scan_entries(ws.audit_path, actions=["purge"]))
    undone = {(e.get("details") or {}).get(FAILED_AFTER) for e in entries if e.get("outcome") == OUTCOME_ERROR}
    problems = []
    for entry in entries:
        target = entry.get("target") or {}
        if entry.get("outcome") == OUTCOME_OK and entry.get("seq") not in undone and \
                (target.get("dataset"), target.get("version")) not in purged:
            problems.append(f"the log records a purge of {target.get('dataset')} v{target.get('version')} (entry "
                            f"{entry.get('seq')}) that the catalog does not show: run the purge again")
    return problems


def _listed(items: list[str]) -> str:
    more = len(items) - _MAX_LISTED
    return "; ".join(items[:_MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")
