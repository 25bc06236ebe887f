"""The compiler: policy + dataset schema → SQL. A pure function, with golden tests.

It produces three statements over the same pipeline:

* ``export_sql``: one query, from the catalog table through the row filter,
  the transforms and the privacy gate, that ``COPY`` streams into the file;
* ``stats_sql``: one aggregate row (rows in, suppressed, k and l measured) the
  gate is decided on before anything is written;
* ``classes_sql``: equivalence-class sizes for ``datashare risk``.

Rows whose quasi-identifier combination occurs fewer than k times (or whose
class has fewer than l distinct sensitive values) are suppressed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from datashare.policy import LoadedPolicy
from datashare.rowfilter import compile_where
from datashare.transforms import KEY_PADS, KEYS_TABLE, TRANSFORMS, Context

CLASS_SIZE = "__ds_class_size"
CLASS_DIVERSITY = "__ds_class_diversity"


@dataclass(frozen=True)
class ColumnPlan:
    """What happens to one column: its transform, parameters, and the SQL that does it."""

    column: str
    transform: str
    params: dict
    sql: str | None  # None when dropped

    def to_dict(self) -> dict:
        return {"column": self.column, "transform": self.transform,
                "params": {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in self.params.items()},
                "sql": self.sql}


@dataclass(frozen=True)
class CompiledPolicy:
    plan: list[ColumnPlan]
    dropped_by_default: list[str]
    output_columns: list[str]
    where_sql: str | None
    quasi_identifiers: list[str]
    k: int
    l: int  # noqa: E741
    sensitive: str | None
    pipeline_sql: str  # the transformed rows with class size and diversity, before the gate
    export_sql: str
    stats_sql: str
    classes_sql: str
    uses_keys: bool = False
    notes: list[str] = field(default_factory=list)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def compile_policy(loaded: LoadedPolicy, table: str, columns: list[tuple[str, str]]) -> CompiledPolicy:
    """Plan and SQL for applying ``loaded`` to ``table`` (an already-quoted name) with ``columns``."""
    policy = loaded.policy
    names = [name for name, _ in columns]
    context = Context(column_types=dict(columns))
    plan: list[ColumnPlan] = []
    uses_keys = False
    for name in names:  # dataset order, so output order is stable
        rule = policy.columns.get(name)
        if rule is None:
            continue
        transform = TRANSFORMS[rule.transform]
        params = loaded.params[name]
        sql = None if transform.build is None else transform.build(quote(name), params, context)
        uses_keys = uses_keys or (transform.uses_keys and sql is not None)
        plan.append(ColumnPlan(name, rule.transform, params, sql))
    dropped = [name for name in names if name not in policy.columns]
    output = [p.column for p in plan if p.sql is not None]
    where_sql = compile_where(policy.rows.where, names) if policy.rows.where else None
    qis = list(policy.privacy.quasi_identifiers)
    diversity = policy.privacy.l_diversity
    sensitive = diversity.sensitive if diversity else None
    k = policy.privacy.k_anonymity if qis else 1
    l_min = diversity.l if diversity and qis else 1

    selected = ",\n        ".join(f"{p.sql} AS {quote(p.column)}" for p in plan if p.sql is not None)
    source = f"SELECT * FROM {table}" + (f" WHERE {where_sql}" if where_sql else "")
    partition = f"PARTITION BY {', '.join(quote(q) for q in qis)}" if qis else ""
    diversity_sql = (f"count(DISTINCT {quote(sensitive)}) OVER ({partition})" if sensitive and qis else "1")
    pipeline = (
        f"WITH source AS (\n    {source}\n), transformed AS (\n    SELECT\n        {selected}\n    FROM source\n"
        f"), classed AS (\n    SELECT *, count(*) OVER ({partition}) AS {CLASS_SIZE}, {diversity_sql} AS "
        f"{CLASS_DIVERSITY}\n    FROM transformed\n)"
    )
    keep = f"{CLASS_SIZE} >= {int(k)} AND {CLASS_DIVERSITY} >= {int(l_min)}"
    out_columns = ", ".join(quote(c) for c in output)
    export_sql = f"{pipeline}\nSELECT {out_columns}\nFROM classed\nWHERE {keep}"
    stats_sql = (
        f"{pipeline}\nSELECT count(*) AS rows_in,\n       count_if(NOT ({keep})) AS suppressed,\n"
        f"       min({CLASS_SIZE}) FILTER (WHERE {keep}) AS k_out,\n"
        f"       min({CLASS_DIVERSITY}) FILTER (WHERE {keep}) AS l_out,\n"
        f"       count(DISTINCT ({', '.join(quote(q) for q in qis) or 'NULL'})) FILTER (WHERE NOT ({keep}))"
        f" AS failing_classes\nFROM classed"
    )
    classes_sql = (
        f"{pipeline}\nSELECT {CLASS_SIZE} AS class_size, {CLASS_DIVERSITY} AS diversity, count(*) AS records\n"
        f"FROM classed GROUP BY ALL ORDER BY class_size"
    )
    notes = [] if qis else ["no quasi-identifiers named: the k-anonymity gate is not applied"]
    return CompiledPolicy(plan, dropped, output, where_sql, qis, int(k), int(l_min), sensitive, pipeline,
                          export_sql, stats_sql, classes_sql, uses_keys, notes)


def keys_table_sql() -> str:
    """The temporary table the transforms read their HMAC pads from (filled with bound parameters)."""
    columns = ", ".join(f"?::BLOB AS {pad}_{kind}" for pad in KEY_PADS for kind in ("ipad", "opad"))
    return f"CREATE OR REPLACE TEMP TABLE {KEYS_TABLE} AS SELECT {columns}"
