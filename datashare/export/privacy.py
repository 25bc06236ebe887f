"""The privacy gate and ``risk``: equivalence classes built in DuckDB, and the decision taken on their counts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from datashare.audit.log import audited
from datashare.catalog.store import resolve
from datashare.core.sql import sql_string_literal
from datashare.errors import RefusedError
from datashare.export.plan import data_errors, install_keys, prepare
from datashare.policy.compiler import CompiledPolicy
from datashare.policy.model import LoadedPolicy, load_policy
from datashare.workspace import Workspace

if TYPE_CHECKING:
    import duckdb

# DuckDB keeps every block it reads while memory is free, so unbounded, an export's memory grows with the table
# (550 MB at 10M rows) though it needs far less. A limit bounds it; DuckDB spills what does not fit (the classes
# of a policy whose quasi-identifiers are nearly unique). The Parquet writer holds a row group of every output
# column on each thread: measured, about 12 MB a column keeps it at full speed.
MEMORY_FLOOR_MB = 128
MEMORY_PER_COLUMN_MB = 12


def memory_limit_mb(con: duckdb.DuckDBPyConnection, output_columns: int) -> int:
    """The memory limit for a policy's queries: :data:`MEMORY_FLOOR_MB`, or more for a wide output."""
    threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
    return max(MEMORY_FLOOR_MB, MEMORY_PER_COLUMN_MB * output_columns * threads)


def execute_bounded(con: duckdb.DuckDBPyConnection, sql: str, output_columns: int) -> None:
    """Run ``sql`` under :func:`memory_limit_mb`; a query that needs more runs again under the connection's own."""
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
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


def classify_rows(con: duckdb.DuckDBPyConnection, compiled: CompiledPolicy) -> dict[str, Any]:
    """Build the run's equivalence classes (``ds_classes``) and read the gate's numbers from them."""
    execute_bounded(con, compiled.classes_sql, len(compiled.output_columns))
    rows, suppressed, k_out, l_out, failing = con.execute(compiled.stats_sql).fetchone()
    return {"rows_selected": rows, "suppressed": suppressed, "rows_out": rows - suppressed,
            "k": k_out, "l": l_out if compiled.sensitive else None, "failing_classes": failing}


def gate(loaded: LoadedPolicy, compiled: CompiledPolicy, stats: dict[str, Any]) -> None:
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
    with audited(ws, "risk", actor, dataset=dataset) as record:
        loaded = load_policy(policy_path)
        record.name_policy(loaded)
        with ws.connect(read_only=True) as con, data_errors(loaded, dataset):
            resolved = resolve(con, dataset, version)
            compiled = prepare(loaded, resolved)
            install_keys(con, ws, None)
            stats = classify_rows(con, compiled)
            classes = con.execute(compiled.distribution_sql).fetchall()
        record.target["version"] = resolved.version
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
        "dataset": dataset, "dataset_version": resolved.version, "policy": loaded.name,
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
