"""The compiler: policy + dataset schema → SQL. A pure function, with golden tests.

The privacy gate counts *people*: the subject column (``privacy.subject``, by
default the date shifts' subject) names the person behind each row, and a
class's size is its number of distinct subjects. Without a subject every row
is its own person. A run has these steps over one pipeline (date shifts, row
filter on the shifted values, then transforms):

* ``members_sql`` (with a subject) aggregates the pipeline into ``ds_members``:
  one row per subject and quasi-identifier combination (and sensitive value),
  with its number of rows.
* ``classes_sql`` builds ``ds_classes``: one row per class, with its rows, its
  size (people) and its number of distinct sensitive values, leaving out the
  subjects already in ``ds_suppressed``.
* ``suppress_sql`` adds to ``ds_suppressed`` every subject with a row in a class
  that fails k or l. A subject is suppressed whole, with all their rows, which
  can make another class fail: the run repeats classes and suppression until
  nothing changes (without a subject, classes are suppressed directly).
* ``stats_sql`` and ``distribution_sql`` read the gate's numbers.
* ``export_sql`` is the one query that ``COPY`` writes: every transform, a
  semi-join against the passing classes, an anti-join against the suppressed
  subjects, in an order given by a keyed hash of each row with a per-export
  nonce, so nothing in the output lines up with the source or another export.

Transforms on the gate's columns must give one value per input (``policy``
refuses ``noise`` there), so every step sees the same classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from datashare.core.sql import quote_ident, value_kind
from datashare.leakcheck import sql_leak_checks, sql_leak_guard, sql_unspaced
from datashare.policy.coarsen import Coarsening, coarser
from datashare.policy.dialects import DUCKDB, Dialect
from datashare.policy.keys import ORDER_KEY
from datashare.policy.model import LoadedPolicy
from datashare.policy.rowfilter import compile_where
from datashare.policy.transforms import RESERVED_PREFIX, ROW_HASH, TRANSFORMS, RowIdentifiers
from datashare.redaction import (
    OwnIdentifier,
    OwnSpellings,
    compact_folded,
    own_parts,
    own_spellings,
    own_value,
    sql_fold,
)

CLASSES_TABLE = "ds_classes"  # temporary: one row per equivalence class of the current run
MEMBERS_TABLE = "ds_members"  # temporary: one row per subject and class (with a subject)
SUPPRESSED_TABLE = "ds_suppressed"  # temporary: the subjects suppressed whole
CLASS_ROWS = f"{RESERVED_PREFIX}class_rows"
CLASS_SIZE = f"{RESERVED_PREFIX}class_size"  # people (distinct subjects); rows when there is no subject
CLASS_DIVERSITY = f"{RESERVED_PREFIX}class_diversity"
MEMBER_ROWS = f"{RESERVED_PREFIX}rows"
SUBJECT = f"{RESERVED_PREFIX}subject"
SOURCE_ROW = f"{RESERVED_PREFIX}src"  # the source row, as a whole, for its hash
ROW_ORDER = f"{RESERVED_PREFIX}order"  # a hash of the whole source row: with the export's nonce, the output order
BEFORE = f"{RESERVED_PREFIX}before"  # the preview's column holding the whole source row, as a struct
DRIVERS_TABLE = "ds_drivers"  # temporary: one row per subject, quasi-identifiers and their coarser levels (risk)
COARSE_PREFIX = f"{RESERVED_PREFIX}coarse_"  # the drivers table's column holding a quasi-identifier one level coarser


@dataclass(frozen=True)
class ColumnPlan:
    """What happens to one column: its transform, parameters, and the SQL that does it."""

    column: str
    transform: str
    params: dict
    sql: str | None  # None when dropped
    output: str | None = None  # its name in the export (None when dropped)

    def to_dict(self) -> dict:
        return {"column": self.column, "transform": self.transform,
                "params": {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in self.params.items()},
                "sql": self.sql, "output": self.output}


@dataclass(frozen=True)
class CompiledPolicy:
    plan: list[ColumnPlan]
    dropped_by_default: list[str]
    output_columns: list[str]  # the source columns exported, in order (:attr:`output_names`: as named in the export)
    where_sql: str | None
    quasi_identifiers: list[str]
    k: int
    l: int  # noqa: E741
    sensitive: str | None
    pipeline_sql: str  # WITH source AS (…), transformed AS (…): the filtered, transformed rows (synthesize models them)
    classes_sql: str  # CREATE TEMP TABLE ds_classes AS …: the equivalence classes
    stats_sql: str  # one row: rows in, suppressed, k and l measured, failing classes, people in and suppressed
    distribution_sql: str  # class size, diversity and number of classes, from ds_classes
    export_sql: str  # the rows that pass the gate, every transform applied, in a keyed order
    notes: list[str] = field(default_factory=list)
    subject: str | None = None  # the column naming the person behind each row; None: every row is one
    members_sql: str | None = None  # with a subject: CREATE TEMP TABLE ds_members, and an empty ds_suppressed
    suppress_sql: str | None = None  # with a subject: INSERT INTO ds_suppressed the subjects of failing classes
    failing_sql: str = ""  # the number of classes that fail k or l now
    passing_sql: str = ""  # the quasi-identifier values of the classes that pass
    leak_scan_sql: str | None = None  # one row of counts per identifier type left in the free text, or None
    # The queries inside the statements above, for an engine that keeps its tables itself (Spark): the members
    # (with a subject), the classes, and the subjects the next suppression round adds.
    members_query: str | None = None
    classes_query: str = ""
    suppress_query: str | None = None
    dialect: str = "duckdb"
    drivers_sql: str = ""  # CREATE TEMP TABLE ds_drivers: the members with each quasi-identifier one level coarser
    coarsened: dict[str, Coarsening] = field(default_factory=dict)  # quasi-identifier -> its next level (drivers)
    preview_sql: str = ""  # export_sql's rows, each with its source row as a struct first (column BEFORE)

    @property
    def output_names(self) -> list[str]:
        """The exported columns' names in the export (``output_columns`` are their source columns)."""
        return [p.output or p.column for p in self.plan if p.sql is not None]

    @property
    def k_unit(self) -> str:
        return "people" if self.subject is not None else "rows"


def _shifted(plan: list[ColumnPlan]) -> list[ColumnPlan]:
    return [p for p in plan if p.transform == "date_shift" and p.sql is not None]


FREE_TEXT_TRANSFORMS = ("redact_identifiers",)


def _free_texts(plan: list[ColumnPlan]) -> list[str]:
    return [p.column for p in plan if p.transform in FREE_TEXT_TRANSFORMS and p.sql is not None]


def _source(table: str, plan: list[ColumnPlan], where_sql: str | None, names: list[str],
            direct: Sequence[tuple[str, str]], d: Dialect, *, carry_source: bool = False) -> str:
    """Date shifts first, then ``rows.where`` (so a filter on a shifted date sees the shifted value).

    Each row also carries a hash of its whole content (the output order's, never written), and the SHA-256 of
    the whole source row when ``noise`` needs it (stable across versions, for the keyed noise). When free text
    is redacted, it carries what each row's redaction needs too, computed once per row: the parsed parts of
    each of its direct identifiers (from the values as stored, before any shift), their spellings, and the
    text folded. ``carry_source`` carries the whole source row, before any transform, as a struct (``BEFORE``:
    the preview's before side).
    """
    shifted = _shifted(plan)
    star = d.star_replacing([d.ident(n) for n in names], {d.ident(p.column): p.sql for p in shifted})
    identities = [f"{d.row_order_hash(SOURCE_ROW, [d.ident(n) for n in names])} AS {ROW_ORDER}"]
    if any(p.transform == "noise" for p in plan):
        identities.append(f"sha256(CAST({SOURCE_ROW} AS VARCHAR)) AS {ROW_HASH}")
    if carry_source:
        identities.append(f"{SOURCE_ROW} AS {BEFORE}")
    texts = _free_texts(plan)
    parsed = ["*"]
    if texts:  # the direct values as stored, before any shift, folded once; parsed after the filter
        identities += [f"{own_value(d.ident(name), d)} AS {d.ident(_value_column(n))}"
                       for n, (name, _) in enumerate(direct)]
        parsed += [f"{own_parts(OwnIdentifier(d.ident(name), kind), d, d.ident(_value_column(n)))} AS "
                   f"{d.ident(_parts_column(n))}" for n, (name, kind) in enumerate(direct)]
    inner = f"SELECT {star}, {', '.join(identities)} FROM {d.with_keys(f'{table} AS {SOURCE_ROW}')}"
    source = f"SELECT {', '.join(parsed)} FROM ({inner})" + (f" WHERE {where_sql}" if where_sql else "")
    if not texts:
        return source
    prepared = [f"{spelt} AS {d.ident(own_spelling_column(n, k))}"
                for n, (_, kind) in enumerate(direct)
                for k, spelt in enumerate(own_spellings(kind, d.ident(_parts_column(n)), d))]
    for text in texts:
        folded = sql_fold(d.text(d.ident(text)), d)
        prepared.append(f"{folded} AS {d.ident(_folded_column(names.index(text)))}")
    return f"SELECT *, {', '.join(prepared)} FROM ({source})"


def _pipeline(source: str, plan: list[ColumnPlan], subject: str | None, direct: Sequence[tuple[str, str]],
              d: Dialect, extra: Sequence[tuple[str, str]] = ()) -> str:
    """The source, then every transform; with a subject, the subject as text (a missing subject counts as one
    person with every other missing one); free text behind the leak guard (:func:`_guarded_pipeline`).
    ``extra`` are more (expression, name) over the source, after its date shifts, carried to ``transformed``."""
    shifted = _shifted(plan)
    selected = [f"{d.ident(p.column) if p in shifted else p.sql} AS {d.ident(p.column)}"
                for p in plan if p.sql is not None]
    carried = [SUBJECT] if subject is not None else []
    if subject is not None:
        selected.append(f"coalesce({d.text(d.ident(subject))}, '') AS {SUBJECT}")
    selected += [f"{expression} AS {name}" for expression, name in extra]
    carried += [name for _, name in extra]
    selected.append(ROW_ORDER)
    carried.append(ROW_ORDER)
    if _free_texts(plan):
        return _guarded_pipeline(plan, source, selected, carried, direct, d)
    columns = ",\n        ".join(selected)
    return (f"WITH source AS (\n    {source}\n), transformed AS (\n    SELECT\n        {columns}\n"
            f"    FROM {d.with_keys('source')}\n)")


def compile_policy(loaded: LoadedPolicy, table: str, columns: list[tuple[str, str]],
                   direct: Sequence[tuple[str, str]] = (), dialect: Dialect = DUCKDB) -> CompiledPolicy:
    """Plan and SQL for applying ``loaded`` to ``table`` (an already-quoted name) with ``columns``, in ``dialect``.

    ``direct`` names the columns classified direct, with their identifier type (NAME, HKID…): free text is
    cleaned of the values its own row holds in them.
    """
    d = dialect.for_columns(columns)
    quote_ident = d.ident  # in this function every name is quoted by the dialect
    policy = loaded.policy
    names = [name for name, _ in columns]
    plan: list[ColumnPlan] = []
    for name in names:  # dataset order, so output order is stable
        rule = policy.columns.get(name)
        if rule is None:
            continue
        transform = TRANSFORMS[rule.transform]
        params = loaded.params[name]
        if transform.build is None:
            sql = None
        elif transform.row_aware:
            sql = transform.build(quote_ident(name), params, _row_identifiers(name, names, direct, d), d)
        else:
            sql = transform.build(quote_ident(name), params, d)
        plan.append(ColumnPlan(name, rule.transform, params, sql, None if sql is None else loaded.outputs[name]))
    dropped = [name for name in names if name not in policy.columns]
    output = [p.column for p in plan if p.sql is not None]
    where_sql = compile_where(loaded.where, names, d.name) if loaded.where is not None else None
    qis = list(policy.privacy.quasi_identifiers)
    diversity = policy.privacy.l_diversity
    sensitive = diversity.sensitive if diversity and qis else None
    k = policy.privacy.k_anonymity if qis else 1
    l_min = diversity.l if sensitive else 1
    subject = loaded.subject
    source = _source(table, plan, where_sql, names, direct, d)
    pipeline = _pipeline(source, plan, subject, direct, d)

    qi_list = ", ".join(quote_ident(q) for q in qis)
    keep = f"{CLASS_SIZE} >= {int(k)} AND {CLASS_DIVERSITY} >= {int(l_min)}"
    gate_columns = [quote_ident(q) for q in qis] + ([quote_ident(sensitive)] if sensitive else [])
    diversity_sql = f"count(DISTINCT {quote_ident(sensitive)})" if sensitive else "1"

    def grouped(measures: str, source: str) -> str:
        # Without quasi-identifiers every row is one class; HAVING keeps an empty selection at no class.
        return (f"SELECT {qi_list}, {measures}\nFROM {source}\nGROUP BY ALL" if qis else
                f"SELECT {measures}\nFROM {source}\nHAVING count(*) > 0")

    members_sql = suppress_sql = members_query = suppress_query = None
    if subject is not None:
        member_columns = ", ".join([SUBJECT, *gate_columns])
        members_query = (f"{pipeline}\nSELECT {member_columns}, count(*) AS {MEMBER_ROWS}\nFROM transformed\n"
                         "GROUP BY ALL")
        members_sql = (f"CREATE OR REPLACE TEMP TABLE {MEMBERS_TABLE} AS\n{members_query};\n"
                       f"CREATE OR REPLACE TEMP TABLE {SUPPRESSED_TABLE} ({SUBJECT} VARCHAR PRIMARY KEY)")
        measures = (f"sum({MEMBER_ROWS}) AS {CLASS_ROWS}, count(DISTINCT {SUBJECT}) AS {CLASS_SIZE}, "
                    f"{diversity_sql} AS {CLASS_DIVERSITY}")
        kept_members = f"{MEMBERS_TABLE} {d.anti_join()} {SUPPRESSED_TABLE} USING ({SUBJECT})"
        classes_query = grouped(measures, kept_members)
        failing_on = " AND ".join(d.null_safe_equal(f"m.{q}", f"failing.{q}") for q in map(quote_ident, qis)) \
            or "true"
        suppress_query = (
            f"SELECT DISTINCT m.{SUBJECT}\nFROM {MEMBERS_TABLE} AS m\n"
            f"{d.semi_join()} (SELECT {qi_list or '1'} FROM {CLASSES_TABLE} WHERE NOT ({keep})) AS failing "
            f"ON {failing_on}\n"
            f"{d.anti_join()} {SUPPRESSED_TABLE} AS gone ON m.{SUBJECT} = gone.{SUBJECT}"
        )
        suppress_sql = f"INSERT INTO {SUPPRESSED_TABLE}\n{suppress_query}"
        stats_sql = (
            f"SELECT (SELECT coalesce(sum({MEMBER_ROWS}), 0) FROM {MEMBERS_TABLE}) AS rows_in,\n"
            f"       (SELECT coalesce(sum({MEMBER_ROWS}), 0) FROM {MEMBERS_TABLE} {d.semi_join()} {SUPPRESSED_TABLE} "
            f"USING ({SUBJECT}))\n"
            f"         + (SELECT coalesce(sum({CLASS_ROWS}) FILTER (WHERE NOT ({keep})), 0) FROM {CLASSES_TABLE})"
            " AS suppressed,\n"
            f"       (SELECT min({CLASS_SIZE}) FILTER (WHERE {keep}) FROM {CLASSES_TABLE}) AS k_out,\n"
            f"       (SELECT min({CLASS_DIVERSITY}) FILTER (WHERE {keep}) FROM {CLASSES_TABLE}) AS l_out,\n"
            f"       (SELECT count(*) FILTER (WHERE NOT ({keep})) FROM {CLASSES_TABLE}) AS failing_classes,\n"
            f"       (SELECT count(DISTINCT {SUBJECT}) FROM {MEMBERS_TABLE}) AS people_in,\n"
            f"       (SELECT count(*) FROM {SUPPRESSED_TABLE}) AS people_suppressed"
        )
    else:
        measures = f"count(*) AS {CLASS_ROWS}, count(*) AS {CLASS_SIZE}, {diversity_sql} AS {CLASS_DIVERSITY}"
        classes_query = f"{pipeline}\n{grouped(measures, 'transformed')}"
        stats_sql = (
            f"SELECT coalesce(sum({CLASS_ROWS}), 0) AS rows_in,\n"
            f"       coalesce(sum({CLASS_ROWS}) FILTER (WHERE NOT ({keep})), 0) AS suppressed,\n"
            f"       min({CLASS_SIZE}) FILTER (WHERE {keep}) AS k_out,\n"
            f"       min({CLASS_DIVERSITY}) FILTER (WHERE {keep}) AS l_out,\n"
            f"       count(*) FILTER (WHERE NOT ({keep})) AS failing_classes,\n"
            f"       NULL AS people_in, NULL AS people_suppressed\n"
            f"FROM {CLASSES_TABLE}"
        )
    classes_sql = f"CREATE OR REPLACE TEMP TABLE {CLASSES_TABLE} AS\n{classes_query}"
    failing_sql = f"SELECT count(*) FROM {CLASSES_TABLE} WHERE NOT ({keep})"
    passing_sql = f"SELECT {qi_list or '1'} FROM {CLASSES_TABLE} WHERE {keep}"
    distribution_sql = (
        f"SELECT {CLASS_SIZE} AS class_size, {CLASS_DIVERSITY} AS diversity, count(*) AS classes, "
        f"sum({CLASS_ROWS}) AS records\n"
        f"FROM {CLASSES_TABLE} GROUP BY ALL ORDER BY class_size, diversity"
    )
    out_columns = ", ".join(f"transformed.{quote_ident(p.column)}" + ("" if p.output == p.column else
                                                                     f" AS {quote_ident(p.output)}")
                            for p in plan if p.sql is not None)

    def released(source_pipeline: str, selected: str) -> str:
        query = f"{source_pipeline}\nSELECT {selected}\nFROM transformed"
        if qis:
            on = "\n  AND ".join(d.null_safe_equal(f"transformed.{quote_ident(q)}", f"passing.{quote_ident(q)}")
                                 for q in qis)
            query += f"\n{d.semi_join()} (SELECT {qi_list} FROM {CLASSES_TABLE} WHERE {keep}) AS passing\n  ON {on}"
        if subject is not None:
            query += f"\n{d.anti_join()} {SUPPRESSED_TABLE} AS gone ON transformed.{SUBJECT} = gone.{SUBJECT}"
        # The order reveals nothing of the source's: a hash of each row's content and a nonce of this export (a
        # 64-bit hash suffices: it is a function of the content, and the nonce makes every export's order another).
        return query + d.with_keys("") + f"\nORDER BY {d.order_by_key(f'transformed.{ROW_ORDER}', ORDER_KEY)}"

    export_sql = released(pipeline, out_columns)
    # The preview: the same rows, each with its whole source row (a struct) beside it.
    carrying = _source(table, plan, where_sql, names, direct, d, carry_source=True)
    preview_sql = released(_pipeline(carrying, plan, subject, direct, d, [(BEFORE, BEFORE)]),
                           f"transformed.{BEFORE}, {out_columns}")
    notes = [] if qis else ["no quasi-identifiers named: the k-anonymity gate is not applied"]
    if subject is None:
        notes.append("no subject column (privacy.subject, or a date shift's subject): k counts rows, and a person "
                     "with several rows counts several times")
    for column, reason in policy.waivers.items():
        notes.append(f"waiver for {column}: {reason}")
    kinds = {name: value_kind(kind) for name, kind in columns}
    rules = {p.column: p for p in plan}
    coarsened = {q: level for q in qis if q in rules
                 and (level := coarser(rules[q].transform, rules[q].params, kinds.get(q, "other"))) is not None}
    return CompiledPolicy(plan, dropped, output, where_sql, qis, int(k), int(l_min), sensitive, pipeline,
                          classes_sql, stats_sql, distribution_sql, export_sql, notes, subject,
                          members_sql, suppress_sql, failing_sql, passing_sql, _leak_scan_sql(plan, source, direct, d),
                          members_query, classes_query, suppress_query, d.name,
                          drivers_sql=_drivers_sql(source, plan, subject, direct, qis, coarsened, d),
                          coarsened=coarsened, preview_sql=preview_sql)


def coarse_column(position: int) -> str:
    """The drivers table's name for the ``position``-th quasi-identifier one level coarser (quoted)."""
    return quote_ident(f"{COARSE_PREFIX}{position}")


def _drivers_sql(source: str, plan: list[ColumnPlan], subject: str | None, direct: Sequence[tuple[str, str]],
                 qis: list[str], coarsened: dict[str, Coarsening], d: Dialect) -> str:
    """``ds_drivers``: the pipeline's quasi-identifiers, each one also one level coarser, and the subject, with
    their rows; ``risk`` groups it once per quasi-identifier removed or coarsened (classes below k)."""
    extra = [(TRANSFORMS[level.transform].build(d.ident(q), level.params, d), coarse_column(i))
             for i, q in enumerate(qis) if (level := coarsened.get(q)) is not None]
    pipeline = _pipeline(source, plan, subject, direct, d, extra)
    kept = [quote_ident(q) for q in qis] + [name for _, name in extra]
    kept += [SUBJECT] if subject is not None else []
    return (f"CREATE OR REPLACE TEMP TABLE {DRIVERS_TABLE} AS\n{pipeline}\n"
            f"SELECT {', '.join(kept) or '1 AS one'}, count(*) AS {MEMBER_ROWS}\nFROM transformed\nGROUP BY ALL")


def driver_sql(compiled: CompiledPolicy, group: list[str]) -> str:
    """Classes below k over ``group`` (quoted columns of ``ds_drivers``): one row of classes, records and people."""
    size = f"count(DISTINCT {SUBJECT})" if compiled.subject is not None else f"sum({MEMBER_ROWS})"
    keys = ", ".join(group)
    classes = (f"SELECT {keys}, {size} AS size, sum({MEMBER_ROWS}) AS records FROM {DRIVERS_TABLE} GROUP BY ALL"
               if group else f"SELECT {size} AS size, sum({MEMBER_ROWS}) AS records FROM {DRIVERS_TABLE} "
                             "HAVING count(*) > 0")
    failing = f"failing AS (SELECT * FROM classes WHERE size < {int(compiled.k)})"
    if compiled.subject is None:
        people = "(SELECT coalesce(sum(records), 0) FROM failing)"
    else:
        on = " AND ".join(f"m.{c} IS NOT DISTINCT FROM f.{c}" for c in group) or "true"
        people = f"(SELECT count(DISTINCT m.{SUBJECT}) FROM {DRIVERS_TABLE} AS m SEMI JOIN failing AS f ON {on})"
    return (f"WITH classes AS ({classes}), {failing}\n"
            f"SELECT (SELECT count(*) FROM failing), (SELECT coalesce(sum(records), 0) FROM failing), {people}")


# --- free text: the row's own identifiers, prepared once per row in the source ------------------------------------
def own_spelling_column(n: int, k: int) -> str:
    """The source column holding the k-th spelling of the row's n-th direct identifier."""
    return f"{RESERVED_PREFIX}own_{n}_{k}"


def _value_column(n: int) -> str:
    return f"{RESERVED_PREFIX}value_{n}"


def _parts_column(n: int) -> str:
    return f"{RESERVED_PREFIX}parts_{n}"


def _folded_column(position: int) -> str:
    return f"{RESERVED_PREFIX}folded_{position}"


def _own(column: str, direct: Sequence[tuple[str, str]]) -> list[tuple[int, str, str]]:
    """(index, name, type) of the row's direct identifiers other than ``column`` itself."""
    return [(n, name, kind) for n, (name, kind) in enumerate(direct) if name != column]


def _row_identifiers(column: str, names: list[str], direct: Sequence[tuple[str, str]], d: Dialect
                     ) -> RowIdentifiers:
    spellings = tuple(OwnSpellings(kind, tuple(d.ident(own_spelling_column(n, k))
                                               for k in range(len(own_spellings(kind, "x", d)))))
                      for n, _, kind in _own(column, direct))
    return RowIdentifiers(spellings, d.ident(_folded_column(names.index(column))))


def _guarded_pipeline(plan: list[ColumnPlan], source: str, selected: list[str], carried: list[str],
                      direct: Sequence[tuple[str, str]], d: Dialect) -> str:
    """The pipeline with free text behind the leak guard: redacted first, then each cell checked against its row.

    The checks read the redacted text many times: a CTE of its own makes it a column, computed once.
    ``carried`` are the compiler's own columns the steps after the pipeline read (subject, order).
    """
    hidden = [d.ident(_parts_column(n)) for n in range(len(direct))]
    texts = _free_texts(plan)
    # Folded once; compacted and unspaced from the folded column.
    folds = "".join(f",\n        {sql_fold(d.ident(t), d)} AS {d.ident(_measure(t, 'f'))}" for t in texts)
    measures = "".join(f",\n        {compact_folded(d.ident(_measure(t, 'f')), d)} AS {d.ident(_measure(t, 'c'))}"
                       f",\n        {sql_unspaced(d.ident(_measure(t, 'f')), d)} AS {d.ident(_measure(t, 'u'))}"
                       for t in texts)
    guarded = [(sql_leak_guard(d.ident(p.column), _own_with_parts(p.column, direct, d),
                               d.ident(_measure(p.column, "f")), d.ident(_measure(p.column, "c")),
                               d.ident(_measure(p.column, "u")), d=d)
                if p.column in texts else d.ident(p.column)) + f" AS {d.ident(p.column)}"
               for p in plan if p.sql is not None]
    redacted = ",\n        ".join(selected + hidden)
    checked = ",\n        ".join(guarded + carried)
    return (f"WITH source AS (\n    {source}\n), redacted AS (\n    SELECT\n        {redacted}\n"
            f"    FROM {d.with_keys('source')}\n), folded AS (\n    SELECT *{folds}\n    FROM redacted\n), "
            f"measured AS (\n    SELECT *{measures}\n    FROM folded\n), "
            "transformed AS (\n"
            f"    SELECT\n        {checked}\n    FROM measured\n)")


def _measure(column: str, what: str) -> str:
    """The column holding free text ``column`` folded (f), compacted (c) or unspaced (u), for the leak guard."""
    return f"{RESERVED_PREFIX}{what}_{column}"


def _own_with_parts(column: str, direct: Sequence[tuple[str, str]], d: Dialect) -> list[OwnIdentifier]:
    return [OwnIdentifier(d.ident(name), kind, d.ident(_parts_column(n)))
            for n, name, kind in _own(column, direct)]


def _leak_scan_sql(plan: list[ColumnPlan], source: str, direct: Sequence[tuple[str, str]], d: Dialect
                   ) -> str | None:
    """One query over the source: per identifier type, how many free-text cells of the output still hold one.

    It recomputes each free-text column with the export's own expression, next to the row's direct columns,
    so no row key needs to travel through the export (whose rows come out in a keyed order).
    """
    texts = [p for p in plan if p.transform in FREE_TEXT_TRANSFORMS and p.sql is not None]
    if not texts:
        return None
    outputs = [f"{RESERVED_PREFIX}text_{n}" for n in range(len(texts))]
    checks: dict[str, list[str]] = {}
    for entry, out in zip(texts, outputs, strict=True):
        for kind, check in sql_leak_checks(d.ident(out), _own_with_parts(entry.column, direct, d), d=d).items():
            checks.setdefault(kind, []).append(f"({check})")
    computed = ", ".join(f"{p.sql} AS {d.ident(out)}" for p, out in zip(texts, outputs, strict=True))
    counts = ",\n       ".join(f"count(*) FILTER (WHERE {' OR '.join(found)}) AS {d.ident(kind)}"
                                for kind, found in checks.items())
    return f"WITH source AS (\n    {source}\n)\nSELECT {counts}\nFROM (SELECT *, {computed} FROM source)"
