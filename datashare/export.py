"""Applying a policy: check, explain, risk, and the signed export itself.

Python plans, DuckDB executes: the compiled query streams from the catalog
table into the output file; only counts come back to Python.
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datashare import audit
from datashare.catalog import DatasetVersion, resolve
from datashare.compiler import CompiledPolicy, compile_policy, keys_table_sql
from datashare.errors import InputError, RefusedError, UsageError
from datashare.identifiers import sql_string_literal
from datashare.policy import LoadedPolicy, check_use, is_expired, load_policy, require_valid_for
from datashare.transforms import KEY_PADS
from datashare.workspace import Workspace, utc_now

if TYPE_CHECKING:
    from datashare.signing import KeyLoading

FORMATS = ("parquet", "csv")
_BLOCK = 64  # SHA-256 block size, for the HMAC pads
# DuckDB keeps every block it reads while memory is free, so unbounded, an export's memory grows with the table
# (550 MB at 10M rows) though it needs far less. A limit bounds it; DuckDB spills what does not fit (the classes
# of a policy whose quasi-identifiers are nearly unique). The Parquet writer holds a row group of every output
# column on each thread: measured, about 12 MB a column keeps it at full speed.
MEMORY_FLOOR_MB = 128
MEMORY_PER_COLUMN_MB = 12


def _pads(key: bytes) -> tuple[bytes, bytes]:
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def key_parameters(secret: bytes, recipient: str | None) -> list[bytes]:
    """The values of ``ds_keys``: keys derived from the workspace secret, one per purpose.

    Pseudonyms use one workspace-wide key (same input, same pseudonym across
    exports) or, with ``per_recipient``, a key per recipient (unlinkable
    between recipients), both as HMAC pads; date shifts use a key of their own.
    """
    def derive(label: bytes) -> bytes:
        return hmac.new(secret, label, hashlib.sha256).digest()

    labels = {"pseudonym": b"datashare/pseudonym", "recipient": b"datashare/pseudonym/" + (recipient or "").encode()}
    values: list[bytes] = []
    for pad in KEY_PADS:
        values.extend(_pads(derive(labels[pad])))
    return [*values, derive(b"datashare/date_shift")]


@dataclass(frozen=True)
class Prepared:
    loaded: LoadedPolicy
    dataset: DatasetVersion
    compiled: CompiledPolicy


def _prepare(con: Any, loaded: LoadedPolicy, name: str, version: int | None) -> Prepared:
    dataset = resolve(con, name, version)
    columns = [(c.name, c.type) for c in dataset.columns]
    require_valid_for(loaded, dict(columns))
    return Prepared(loaded, dataset, compile_policy(loaded, dataset.table, columns))


@contextmanager
def _data_errors(loaded: LoadedPolicy, dataset: str) -> Iterator[None]:
    """DuckDB errors while the policy's queries run, as a message that quotes no data.

    DuckDB's own text for a failed conversion quotes the value; a disk that
    fills up is worth naming as such.
    """
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


@contextmanager
def _key_errors_first(key_loading: KeyLoading) -> Iterator[None]:
    """A wrong passphrase is the error reported, before a gate refusal (as when the key was unlocked first) and
    instead of the interrupted query it stopped."""
    import duckdb

    try:
        yield
    except (RefusedError, duckdb.InterruptException):
        key_loading.result()
        raise


def memory_limit_mb(con: Any, output_columns: int) -> int:
    """The memory limit for a policy's queries: :data:`MEMORY_FLOOR_MB`, or more for a wide output."""
    threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
    return max(MEMORY_FLOOR_MB, MEMORY_PER_COLUMN_MB * output_columns * threads)


def _execute_bounded(con: Any, sql: str, output_columns: int) -> None:
    """Run ``sql`` under :func:`memory_limit_mb`; a query that needs more runs again under the connection's own."""
    import duckdb

    own_limit = sql_string_literal(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
    con.execute(f"SET memory_limit = '{memory_limit_mb(con, output_columns)}MB'")
    try:
        con.execute(sql)
    except duckdb.OutOfMemoryException:
        con.execute(f"SET memory_limit = {own_limit}")  # RESET leaves the buffer pool at the old limit
        con.execute(sql)
    finally:
        con.execute(f"SET memory_limit = {own_limit}")


def _install_keys(con: Any, ws: Workspace, recipient: str | None) -> None:
    con.execute(keys_table_sql(), key_parameters(ws.secret(), recipient))


def check(ws: Workspace, actor: str, policy_path: Path, dataset: str | None = None) -> dict[str, Any]:
    """Validate a policy file (and its fit to a dataset); return a summary."""
    with audit.audited(ws, "policy.check", actor, dataset=dataset, policy_file=str(policy_path)) as record:
        loaded = load_policy(policy_path)
        record.name_policy(loaded)
        expires = loaded.policy.expires
        summary: dict[str, Any] = {"policy": loaded.name, "version": loaded.version, "sha256": loaded.sha256,
                                   "valid": True, "columns": len(loaded.policy.columns),
                                   "expires": expires.isoformat() if expires else None,
                                   "expired": is_expired(expires)}
        if dataset is not None:
            with ws.connect(read_only=True) as con:
                prepared = _prepare(con, loaded, dataset, None)
            summary.update(dataset=dataset, dataset_version=prepared.dataset.version,
                           dropped_by_default=prepared.compiled.dropped_by_default,
                           applies=dataset in loaded.policy.applies_to)
        record.ok()
    return summary


def explain(ws: Workspace, actor: str, policy_path: Path, dataset: str, version: int | None = None) -> dict[str, Any]:
    """Column by column: what happens, and the SQL (secrets are never in it)."""
    with audit.audited(ws, "policy.explain", actor, dataset=dataset) as record:
        loaded = load_policy(policy_path)
        record.name_policy(loaded)
        with ws.connect(read_only=True) as con:
            prepared = _prepare(con, loaded, dataset, version)
        record.target["version"] = prepared.dataset.version
        compiled = prepared.compiled
        record.ok()
    return {
        "policy": loaded.name, "version": loaded.version, "sha256": loaded.sha256,
        "dataset": dataset, "dataset_version": prepared.dataset.version,
        "columns": [p.to_dict() for p in compiled.plan],
        "dropped_by_default": compiled.dropped_by_default,
        "where": compiled.where_sql,
        "privacy": {"quasi_identifiers": compiled.quasi_identifiers, "k": compiled.k, "l": compiled.l,
                    "sensitive": compiled.sensitive, "max_suppression": loaded.policy.privacy.max_suppression},
        "sql": compiled.export_sql,
        "classes_sql": compiled.classes_sql,
        "notes": compiled.notes,
    }


def _classify_rows(con: Any, compiled: CompiledPolicy) -> dict[str, Any]:
    """Build the run's equivalence classes (``ds_classes``) and read the gate's numbers from them."""
    _execute_bounded(con, compiled.classes_sql, len(compiled.output_columns))
    rows, suppressed, k_out, l_out, failing = con.execute(compiled.stats_sql).fetchone()
    return {"rows_selected": rows, "suppressed": suppressed, "rows_out": rows - suppressed,
            "k": k_out, "l": l_out if compiled.sensitive else None, "failing_classes": failing}


def _gate(loaded: LoadedPolicy, compiled: CompiledPolicy, stats: dict[str, Any]) -> None:
    """Refuse when suppressing the rows below k (or l) would exceed the policy's budget."""
    rows, suppressed = stats["rows_selected"], stats["suppressed"]
    budget = loaded.policy.privacy.max_suppression
    if rows and suppressed / rows > budget:
        what = f"k={compiled.k}" + (f" and l={compiled.l}" if compiled.sensitive else "")
        raise RefusedError(
            f"refused by the privacy gate: {suppressed:,} of {rows:,} rows ({suppressed / rows:.1%}) are in "
            f"{stats['failing_classes']:,} quasi-identifier combinations that fail {what}; the policy allows "
            f"suppressing at most {budget:.1%}",
            hint="Generalise the quasi-identifiers more (wider bands, regions), or see `datashare risk`.",
        )
    if rows == 0:
        raise RefusedError("nothing to export: no row passes rows.where")


def risk(ws: Workspace, actor: str, policy_path: Path, dataset: str, version: int | None = None) -> dict[str, Any]:
    """Re-identification risk of the dataset under the policy, computed in DuckDB."""
    with audit.audited(ws, "risk", actor, dataset=dataset) as record:
        loaded = load_policy(policy_path)
        record.name_policy(loaded)
        with ws.connect(read_only=True) as con, _data_errors(loaded, dataset):
            prepared = _prepare(con, loaded, dataset, version)
            _install_keys(con, ws, None)
            compiled = prepared.compiled
            stats = _classify_rows(con, compiled)
            classes = con.execute(compiled.distribution_sql).fetchall()
        record.target["version"] = prepared.dataset.version
        record.ok()
    records = stats["rows_selected"]
    distribution: dict[int, dict[str, int]] = {}
    by_l: dict[int, dict[str, int]] = {}
    for size, diversity, count in classes:
        for key, buckets, name in ((int(size), distribution, "class_size"), (int(diversity), by_l, "l")):
            bucket = buckets.setdefault(key, {name: key, "classes": 0, "records": 0})
            bucket["classes"] += count
            bucket["records"] += count * int(size)
    n_classes = sum(b["classes"] for b in distribution.values())
    below_k = sum(b["records"] for size, b in distribution.items() if size < compiled.k)
    unique = distribution.get(1, {"records": 0})["records"]
    return {
        "dataset": dataset, "dataset_version": prepared.dataset.version, "policy": loaded.name,
        "quasi_identifiers": compiled.quasi_identifiers, "k": compiled.k, "l": compiled.l,
        "sensitive": compiled.sensitive, "records": records, "equivalence_classes": n_classes,
        "class_sizes": sorted(distribution.values(), key=lambda b: b["class_size"]),
        "unique_records": unique, "share_unique": unique / records if records else 0.0,
        "records_below_k": below_k, "share_below_k": below_k / records if records else 0.0,
        "max_prosecutor_risk": 1 / min(distribution) if distribution else 0.0,
        "avg_prosecutor_risk": n_classes / records if records else 0.0,
        "rows_suppressed": stats["suppressed"], "share_suppressed": stats["suppressed"] / records if records else 0.0,
        "min_l": min(by_l) if by_l and compiled.sensitive else None,
        "l_values": sorted(by_l.values(), key=lambda b: b["l"]) if compiled.sensitive else [],
        "k_after_suppression": stats["k"], "l_after_suppression": stats["l"],
        "gate": "pass" if not records or stats["suppressed"] / records <= loaded.policy.privacy.max_suppression
        else "refused",
    }


def export(ws: Workspace, actor: str, dataset: str, policy_path: Path, out: Path, *, purpose: str, recipient: str,
           fmt: str = "parquet", version: int | None = None, overwrite: bool = False,
           passphrase: str | None = None) -> dict[str, Any]:
    """De-identify ``dataset`` under the policy into a signed export directory at ``out``."""
    from datashare import governance, signing
    from datashare.exportdir import check_destination, publish_export, staging_dir_for

    out = Path(out)
    with audit.audited(ws, "export", actor, dataset=dataset, version=version, output=str(out.absolute())) as record:
        record.purpose, record.recipient = purpose, recipient
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}: use parquet or csv")
        # The key's KDF is slow on purpose. With the passphrase at hand (argument or environment) it starts now,
        # on a thread of its own, and runs while the policy is checked and the data written; a passphrase that
        # must be typed is asked for once the checks have passed. A wrong one interrupts the export's query.
        at_hand = passphrase if passphrase is not None else signing.passphrase_at_hand()
        key_loading = signing.KeyLoading(ws, at_hand) if at_hand is not None else None
        loaded = load_policy(policy_path)
        record.name_policy(loaded)
        with ws.connect(read_only=True) as con:
            resolve(con, dataset, version, with_columns=False)  # an unknown dataset is a mistake, not a refusal
        check_use(loaded, dataset=dataset, purpose=purpose, recipient=recipient)
        approval = governance.require_approved(ws, loaded)
        check_destination(out, overwrite=overwrite, trusted_keys=signing.load_public_keys(ws))
        if key_loading is None:
            key_loading = signing.KeyLoading(ws, signing.read_passphrase(confirm=False))
        staging = staging_dir_for(out)
        try:
            with ws.connect(read_only=True) as con, _data_errors(loaded, dataset):
                prepared = _prepare(con, loaded, dataset, version)
                record.target["version"] = prepared.dataset.version
                compiled = prepared.compiled
                _install_keys(con, ws, recipient)
                stats = _classify_rows(con, compiled)
                data_file = staging / f"{dataset}.{fmt}"
                options = ("FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1" if fmt == "parquet"
                           else "FORMAT csv, HEADER true")
                with _key_errors_first(key_loading):
                    _gate(loaded, compiled, stats)
                    key_loading.on_failure(con.interrupt)
                    _execute_bounded(con, f"COPY ({compiled.export_sql}) TO {sql_string_literal(str(data_file))} "
                                          f"({options})", len(compiled.output_columns))
            key, key_info = key_loading.result()
            manifest = {
                "dataset": {"name": dataset, "version": prepared.dataset.version,
                            "source_sha256": prepared.dataset.source_sha256},
                "policy": {"name": loaded.name, "version": loaded.version, "sha256": loaded.sha256,
                           "approval": approval},
                "transforms": {p.column: {"transform": p.transform, **p.to_dict()["params"]}
                               for p in compiled.plan},
                "columns_out": compiled.output_columns,
                "columns_dropped_by_default": compiled.dropped_by_default,
                "rows": {"in": prepared.dataset.rows, "selected": stats["rows_selected"], "out": stats["rows_out"],
                         "suppressed": stats["suppressed"]},
                "privacy": {"quasi_identifiers": compiled.quasi_identifiers, "k_required": compiled.k,
                            "k_measured": stats["k"], "l_required": compiled.l if compiled.sensitive else None,
                            "l_measured": stats["l"], "max_suppression": loaded.policy.privacy.max_suppression},
                "purpose": purpose, "recipient": recipient, "actor": actor, "time": utc_now(),
            }
            # The log entry comes first: no export exists without its entry.
            receipt = record.ok(rows_out=stats["rows_out"], suppressed=stats["suppressed"], k=stats["k"],
                                signer=key_info.key_id)
            manifest["audit_receipt"] = receipt.to_dict()
            return publish_export(staging, out, manifest, key, key_info.key_id, overwrite=overwrite)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
