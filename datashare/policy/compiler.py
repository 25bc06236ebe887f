"""The compiler: policy + dataset schema → SQL. A pure function, with golden tests.

The privacy gate needs the size of every equivalence class before a row is
written, so a run has two steps over the same pipeline (row filter, then
transforms):

* ``classes_sql`` aggregates the quasi-identifiers (and the sensitive column)
  into the temporary table ``ds_classes``: one row per class, with its size and
  its number of distinct sensitive values. Only the columns the gate needs are
  transformed for it; everything the gate decides is read from that table
  (``stats_sql``, ``distribution_sql``).
* ``export_sql`` is the one query that ``COPY`` streams into the file: every
  transform, then a semi-join against the classes that pass. A hash join with
  the small classes table keeps memory flat in the row count, where a window
  over all rows would hold them all.

Rows whose quasi-identifier combination occurs fewer than k times (or whose
class has fewer than l distinct sensitive values) are suppressed. Transforms
on the gate's columns must be deterministic (``policy`` refuses ``noise``
there), so both steps see the same classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from datashare.core.sql import quote_ident
from datashare.policy.model import LoadedPolicy
from datashare.policy.rowfilter import compile_where
from datashare.policy.transforms import RESERVED_PREFIX, TRANSFORMS, RowIdentifiers
from datashare.redaction import (
    OwnIdentifier,
    OwnSpellings,
    own_parts,
    own_spellings,
    sql_compact,
    sql_fold,
    sql_leak_checks,
    sql_leak_guard,
)

CLASSES_TABLE = "ds_classes"  # temporary: one row per equivalence class of the current run
CLASS_SIZE = f"{RESERVED_PREFIX}class_size"
CLASS_DIVERSITY = f"{RESERVED_PREFIX}class_diversity"


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
    pipeline_sql: str  # WITH source AS (…), transformed AS (…): the filtered, transformed rows (synthesize models them)
    classes_sql: str  # CREATE TEMP TABLE ds_classes AS …: the equivalence classes
    stats_sql: str  # one row from ds_classes: rows in, suppressed, k and l measured, failing classes
    distribution_sql: str  # class size, diversity and number of classes, from ds_classes
    export_sql: str  # the rows that pass the gate, every transform applied
    uses_keys: bool = False
    notes: list[str] = field(default_factory=list)
    leak_scan_sql: str | None = None  # one row of counts per identifier type left in the free text, or None


FREE_TEXT_TRANSFORMS = ("redact_identifiers",)


def compile_policy(loaded: LoadedPolicy, table: str, columns: list[tuple[str, str]],
                   direct: Sequence[tuple[str, str]] = ()) -> CompiledPolicy:
    """Plan and SQL for applying ``loaded`` to ``table`` (an already-quoted name) with ``columns``.

    ``direct`` names the columns classified direct, with their identifier type (NAME, HKID…): free text is
    cleaned of the values its own row holds in them.
    """
    policy = loaded.policy
    names = [name for name, _ in columns]
    plan: list[ColumnPlan] = []
    uses_keys = False
    for name in names:  # dataset order, so output order is stable
        rule = policy.columns.get(name)
        if rule is None:
            continue
        transform = TRANSFORMS[rule.transform]
        params = loaded.params[name]
        if transform.build is None:
            sql = None
        elif transform.row_aware:
            sql = transform.build(quote_ident(name), params, _row_identifiers(name, names, direct))
        else:
            sql = transform.build(quote_ident(name), params)
        uses_keys = uses_keys or (transform.uses_keys and sql is not None)
        plan.append(ColumnPlan(name, rule.transform, params, sql))
    dropped = [name for name in names if name not in policy.columns]
    output = [p.column for p in plan if p.sql is not None]
    where_sql = compile_where(loaded.where, names) if loaded.where is not None else None
    qis = list(policy.privacy.quasi_identifiers)
    diversity = policy.privacy.l_diversity
    sensitive = diversity.sensitive if diversity and qis else None
    k = policy.privacy.k_anonymity if qis else 1
    l_min = diversity.l if sensitive else 1

    selected = ",\n        ".join(f"{p.sql} AS {quote_ident(p.column)}" for p in plan if p.sql is not None)
    source = _source_sql(plan, names, direct, table, where_sql)
    pipeline = (f"WITH source AS (\n    {source}\n), transformed AS (\n    SELECT\n        {selected}\n"
                "    FROM source\n)")
    if any(p.transform in FREE_TEXT_TRANSFORMS and p.sql is not None for p in plan):
        pipeline = _guarded_pipeline(plan, source, selected, direct)

    qi_list = ", ".join(quote_ident(q) for q in qis)
    diversity_sql = f"count(DISTINCT {quote_ident(sensitive)})" if sensitive else "1"
    measures = f"count(*) AS {CLASS_SIZE}, {diversity_sql} AS {CLASS_DIVERSITY}"
    # Without quasi-identifiers every row is one class; HAVING keeps an empty selection at no class.
    grouping = f"{qi_list}, {measures}\nFROM transformed\nGROUP BY ALL" if qis else \
        f"{measures}\nFROM transformed\nHAVING count(*) > 0"
    classes_sql = f"CREATE OR REPLACE TEMP TABLE {CLASSES_TABLE} AS\n{pipeline}\nSELECT {grouping}"

    keep = f"{CLASS_SIZE} >= {int(k)} AND {CLASS_DIVERSITY} >= {int(l_min)}"
    stats_sql = (
        f"SELECT coalesce(sum({CLASS_SIZE}), 0) AS rows_in,\n"
        f"       coalesce(sum({CLASS_SIZE}) FILTER (WHERE NOT ({keep})), 0) AS suppressed,\n"
        f"       min({CLASS_SIZE}) FILTER (WHERE {keep}) AS k_out,\n"
        f"       min({CLASS_DIVERSITY}) FILTER (WHERE {keep}) AS l_out,\n"
        f"       count(*) FILTER (WHERE NOT ({keep})) AS failing_classes\n"
        f"FROM {CLASSES_TABLE}"
    )
    distribution_sql = (
        f"SELECT {CLASS_SIZE} AS class_size, {CLASS_DIVERSITY} AS diversity, count(*) AS classes\n"
        f"FROM {CLASSES_TABLE} GROUP BY ALL ORDER BY class_size, diversity"
    )
    out_columns = ", ".join(f"transformed.{quote_ident(c)}" for c in output)
    if qis:
        on = "\n  AND ".join(f"transformed.{quote_ident(q)} IS NOT DISTINCT FROM passing.{quote_ident(q)}" for q in qis)
        export_sql = (f"{pipeline}\nSELECT {out_columns}\nFROM transformed\n"
                      f"SEMI JOIN (SELECT {qi_list} FROM {CLASSES_TABLE} WHERE {keep}) AS passing\n  ON {on}")
    else:
        export_sql = f"{pipeline}\nSELECT {out_columns}\nFROM transformed"
    notes = [] if qis else ["no quasi-identifiers named: the k-anonymity gate is not applied"]
    return CompiledPolicy(plan, dropped, output, where_sql, qis, int(k), int(l_min), sensitive, pipeline,
                          classes_sql, stats_sql, distribution_sql, export_sql, uses_keys, notes,
                          _leak_scan_sql(plan, source, direct))


# --- free text: the row's own identifiers, prepared once per row in the source ------------------------------------
def own_spelling_column(n: int, k: int) -> str:
    """The source column holding the k-th spelling of the row's n-th direct identifier."""
    return f"{RESERVED_PREFIX}own_{n}_{k}"


def _parts_column(n: int) -> str:
    return f"{RESERVED_PREFIX}parts_{n}"


def _folded_column(position: int) -> str:
    return f"{RESERVED_PREFIX}folded_{position}"


def _own(column: str, direct: Sequence[tuple[str, str]]) -> list[tuple[int, str, str]]:
    """(index, name, type) of the row's direct identifiers other than ``column`` itself."""
    return [(n, name, kind) for n, (name, kind) in enumerate(direct) if name != column]


def _row_identifiers(column: str, names: list[str], direct: Sequence[tuple[str, str]]) -> RowIdentifiers:
    spellings = tuple(OwnSpellings(kind, tuple(quote_ident(own_spelling_column(n, k))
                                               for k in range(len(own_spellings(kind, "x")))))
                      for n, _, kind in _own(column, direct))
    return RowIdentifiers(spellings, quote_ident(_folded_column(names.index(column))))


def _guarded_pipeline(plan: list[ColumnPlan], source: str, selected: str, direct: Sequence[tuple[str, str]]) -> str:
    """The pipeline with free text behind the leak guard: redacted first, then each cell checked against its row.

    The checks read the redacted text many times: a CTE of its own makes it a column, computed once.
    """
    hidden = [quote_ident(_parts_column(n)) for n in range(len(direct))]
    texts = [p.column for p in plan if p.transform in FREE_TEXT_TRANSFORMS and p.sql is not None]
    measures = "".join(f",\n        {sql_fold(quote_ident(t))} AS {quote_ident(_measure(t, 'f'))}"
                       f",\n        {sql_compact(quote_ident(t))} AS {quote_ident(_measure(t, 'c'))}" for t in texts)
    guarded = ",\n        ".join(
        (sql_leak_guard(quote_ident(p.column), _own_with_parts(p.column, direct), quote_ident(_measure(p.column, "f")),
                        quote_ident(_measure(p.column, "c")))
         if p.column in texts else quote_ident(p.column)) + f" AS {quote_ident(p.column)}"
        for p in plan if p.sql is not None)
    carried = "".join(f",\n        {column}" for column in hidden)
    return (f"WITH source AS (\n    {source}\n), redacted AS (\n    SELECT\n        {selected}{carried}\n"
            f"    FROM source\n), measured AS (\n    SELECT *{measures}\n    FROM redacted\n), transformed AS (\n"
            f"    SELECT\n        {guarded}\n    FROM measured\n)")


def _measure(column: str, what: str) -> str:
    """The column holding free text ``column`` folded (f) or compacted (c), for the leak guard."""
    return f"{RESERVED_PREFIX}{what}_{column}"


def _own_with_parts(column: str, direct: Sequence[tuple[str, str]]) -> list[OwnIdentifier]:
    return [OwnIdentifier(quote_ident(name), kind, quote_ident(_parts_column(n)))
            for n, name, kind in _own(column, direct)]


def _source_sql(plan: list[ColumnPlan], names: list[str], direct: Sequence[tuple[str, str]], table: str,
                where_sql: str | None) -> str:
    """The selected rows; when free text is redacted, with what each row's redaction needs, computed once per row:
    the text folded, and the spellings of each of the row's direct identifiers (made from their parsed parts)."""
    rows = f"SELECT * FROM {table}" + (f" WHERE {where_sql}" if where_sql else "")
    texts = [p.column for p in plan if p.transform in FREE_TEXT_TRANSFORMS and p.sql is not None]
    if not texts:
        return rows
    parts = ", ".join(f"{own_parts(OwnIdentifier(quote_ident(name), kind))} AS {quote_ident(_parts_column(n))}"
                      for n, (name, kind) in enumerate(direct))
    prepared = [f"{spelt} AS {quote_ident(own_spelling_column(n, k))}"
                for n, (_, kind) in enumerate(direct)
                for k, spelt in enumerate(own_spellings(kind, quote_ident(_parts_column(n))))]
    for text in texts:
        folded = sql_fold(f"CAST({quote_ident(text)} AS VARCHAR)")
        prepared.append(f"{folded} AS {quote_ident(_folded_column(names.index(text)))}")
    inner = f"SELECT *, {parts} FROM ({rows})" if parts else rows
    return f"SELECT *, {', '.join(prepared)} FROM ({inner})"


def _leak_scan_sql(plan: list[ColumnPlan], source: str, direct: Sequence[tuple[str, str]]) -> str | None:
    """One query over the source: per identifier type, how many free-text cells of the output still hold one.

    It recomputes each free-text column with the export's own expression, next to the row's direct columns,
    so no row key needs to travel through the export (whose rows may come out in any order).
    """
    texts = [p for p in plan if p.transform in FREE_TEXT_TRANSFORMS and p.sql is not None]
    if not texts:
        return None
    outputs = [f"{RESERVED_PREFIX}text_{n}" for n in range(len(texts))]
    checks: dict[str, list[str]] = {}
    for entry, out in zip(texts, outputs, strict=True):
        for kind, check in sql_leak_checks(quote_ident(out), _own_with_parts(entry.column, direct)).items():
            checks.setdefault(kind, []).append(f"({check})")
    computed = ", ".join(f"{p.sql} AS {quote_ident(out)}" for p, out in zip(texts, outputs, strict=True))
    counts = ",\n       ".join(f"count(*) FILTER (WHERE {' OR '.join(found)}) AS {quote_ident(kind)}"
                                for kind, found in checks.items())
    return f"WITH source AS (\n    {source}\n)\nSELECT {counts}\nFROM (SELECT *, {computed} FROM source)"


