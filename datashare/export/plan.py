"""Planning a policy's run: check the policy against the dataset, compile; ``check`` and ``explain``.

Python plans, DuckDB executes: only counts and metadata come back to Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datashare.audit.log import AuditRecorder, audited
from datashare.catalog.store import DatasetVersion, resolve
from datashare.errors import InputError, RefusedError
from datashare.governance.approvals import require_approved, require_fit_everywhere
from datashare.permissions import CUSTODIAN, roles_of
from datashare.policy.compiler import CompiledPolicy, compile_policy
from datashare.policy.dialects import DUCKDB, Dialect
from datashare.policy.fit import classification_problems, require_classification, require_valid_for
from datashare.policy.keys import key_parameters, keys_table_sql
from datashare.policy.model import LoadedPolicy, load_policy
from datashare.policy.rowfilter import where_columns
from datashare.policy.use import check_use, is_expired
from datashare.redaction import own_identifier_columns
from datashare.workspace import Workspace

if TYPE_CHECKING:
    import duckdb


class DirectFilterRefused(RefusedError):
    """A ``rows.where`` naming a direct identifier, refused; ``columns`` are the columns the filter names."""

    def __init__(self, message: str, *, hint: str | None = None, columns: list[str]) -> None:
        super().__init__(message, hint=hint)
        self.columns = columns


def prepare(loaded: LoadedPolicy, dataset: DatasetVersion, *, direct_filter_allowed: bool = False,
            enforce: bool = True, dialect: Dialect = DUCKDB, table: str | None = None) -> CompiledPolicy:
    """The policy checked against the dataset's columns (:class:`PolicyError` listing every misfit), then compiled.

    ``dataset`` is resolved once by the caller, with its columns, and used for the whole run. A
    ``rows.where`` naming a column the catalog classes as a direct identifier is refused unless
    ``direct_filter_allowed`` (a custodian's export): elsewhere the counts it yields would tell whether a
    named person is in the data, and with what values (``hkid = '…' AND diagnosis = '…'``). ``enforce``:
    refuse (exit 3) what the catalog's classes forbid the policy to release (``explain`` shows it instead).
    ``dialect`` and ``table``: the engine's SQL and its name for the rows (another engine reads a copy).
    """
    columns = [(c.name, c.type) for c in dataset.columns]
    require_valid_for(loaded, dict(columns))
    if enforce:
        require_classification(loaded, dataset.classes, dataset.name, dataset.free_text_columns)
    if loaded.where is not None and not direct_filter_allowed:
        direct = {c.name for c in dataset.columns if c.cls == "direct"}
        named = [column for column in where_columns(loaded.where) if column in direct]
        if named:
            raise DirectFilterRefused(
                f"rows.where names {named[0]!r}, a direct identifier of {dataset.name}: a filter on direct "
                "identifiers is allowed only in a custodian's export",
                hint="Filter on other columns, or have a custodian run the export.",
                columns=sorted(set(where_columns(loaded.where))))
    own = own_identifier_columns([(c.name, c.cls, c.detected) for c in dataset.columns])
    return compile_policy(loaded, table or dataset.table, columns, own, dialect)


def is_custodian(ws: Workspace, actor: str) -> bool:
    return CUSTODIAN in roles_of(ws, actor)


@contextmanager
def data_errors(loaded: LoadedPolicy, dataset: str) -> Iterator[None]:
    """DuckDB errors while the policy's queries run, as a message that quotes no data.

    DuckDB's own text for a failed conversion quotes the value; a disk that
    fills up is worth naming as such.
    """
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
    import duckdb

    try:
        yield
    except duckdb.IOException as exc:
        raise InputError(f"cannot write the export: {str(exc).splitlines()[0][:300]}") from None
    except duckdb.OutOfMemoryException:
        raise InputError("DuckDB ran out of memory applying the policy",
                         hint="Free memory, or export a filtered subset (rows.where).") from None
    except duckdb.Error as exc:
        raise InputError(
            f"DuckDB could not apply policy {loaded.name} v{loaded.version} to {dataset} ({type(exc).__name__}; "
            "its message is withheld because it can quote a cell value)",
            hint=f"`datashare policy check {loaded.path} --dataset {dataset}` checks the policy against the "
                 "dataset's column types.") from None


def install_keys(con: duckdb.DuckDBPyConnection, secret: bytes, recipient: str | None, dataset: str | None = None,
                 group: str | None = None) -> None:
    """Fill the run's ``ds_keys`` table with the keys derived from the workspace secret for this recipient and
    dataset (or link group) and a fresh order nonce, as bound parameters."""
    con.execute(keys_table_sql(), key_parameters(secret, recipient, dataset, group))


def check(ws: Workspace, actor: str, policy_path: Path, dataset: str | None = None) -> dict[str, Any]:
    """Validate a policy file and its fit to ``dataset``, or without one to every registered dataset it applies
    to (as approving it does); return a summary."""
    with audited(ws, "policy.check", actor, dataset=dataset, policy_file=str(policy_path)) as record:
        loaded = load_policy(policy_path)
        record.name_policy(loaded)
        expires = loaded.policy.expires
        summary: dict[str, Any] = {"policy": loaded.name, "version": loaded.version, "sha256": loaded.sha256,
                                   "valid": True, "columns": len(loaded.policy.columns),
                                   "expires": expires.isoformat() if expires else None,
                                   "expired": is_expired(expires)}
        if dataset is not None:
            with ws.connect(read_only=True) as con:
                resolved = resolve(con, dataset)
            # a policy for synthesis is held to the classes when it exports, not when it is checked
            compiled = prepare(loaded, resolved, enforce=loaded.policy.synthetic is None)
            summary.update(dataset=dataset, dataset_version=resolved.version,
                           dropped_by_default=compiled.dropped_by_default,
                           applies=dataset in loaded.policy.applies_to)
        else:  # what approve checks: every registered dataset the policy applies to
            summary["checked_against"] = require_fit_everywhere(ws, loaded)
        record.ok()
    return summary


def explain(ws: Workspace, actor: str, policy_path: Path, dataset: str, version: int | None = None) -> dict[str, Any]:
    """Column by column: what happens, and the SQL (secrets are never in it)."""
    with audited(ws, "policy.explain", actor, dataset=dataset) as record:
        loaded = load_policy(policy_path)
        record.name_policy(loaded)
        with ws.connect(read_only=True) as con:
            resolved = resolve(con, dataset, version)
        compiled = prepare(loaded, resolved, enforce=False)
        record.target["version"] = resolved.version
        refusals = classification_problems(loaded, resolved.classes, resolved.free_text_columns)
        record.ok()
    return {
        "policy": loaded.name, "version": loaded.version, "sha256": loaded.sha256,
        "dataset": dataset, "dataset_version": resolved.version,
        "columns": [p.to_dict() for p in compiled.plan],
        "dropped_by_default": compiled.dropped_by_default,
        "where": compiled.where_sql,
        "privacy": {"quasi_identifiers": compiled.quasi_identifiers, "k": compiled.k, "l": compiled.l,
                    "sensitive": compiled.sensitive, "max_suppression": loaded.policy.privacy.max_suppression,
                    "subject": compiled.subject, "k_unit": compiled.k_unit},
        "classes": resolved.classes,
        "waivers": dict(loaded.policy.waivers),
        "link_group": loaded.link_group,
        "refused": refusals,
        "sql": compiled.export_sql,
        "classes_sql": compiled.classes_sql,
        "notes": compiled.notes + [f"refused: {problem}" for problem in refusals],
    }


def release_checks(ws: Workspace, record: AuditRecorder, policy_path: Path, dataset: str, version: int | None, *,
                   purpose: str, recipient: str) -> tuple[LoadedPolicy, DatasetVersion, dict[str, Any]]:
    """What every release (an export, a synthesis) checks first, in this order: the policy file, the dataset (an
    unknown one is a mistake, not a refusal), the policy's use (dataset, purpose, recipient, expiry), its approval.

    Returns the loaded policy, the dataset version and the approval that allows it.
    """
    loaded = load_policy(policy_path)
    record.name_policy(loaded)
    with ws.connect(read_only=True) as con:
        resolved = resolve(con, dataset, version)
    check_use(loaded, dataset=dataset, purpose=purpose, recipient=recipient)
    return loaded, resolved, require_approved(ws, loaded)
