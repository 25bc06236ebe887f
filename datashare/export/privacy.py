"""The privacy gate and ``risk``: equivalence classes built in DuckDB, and the decision taken on their counts."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datashare.audit.log import AuditRecorder, audited
from datashare.catalog.store import resolve
from datashare.core.sql import quote_ident, sql_string_literal
from datashare.errors import RefusedError
from datashare.export.plan import DirectFilterRefused, data_errors, install_keys, is_custodian, prepare
from datashare.governance.approvals import require_approved
from datashare.governance.keys import unlock_secret
from datashare.policy.compiler import CompiledPolicy, coarse_column, driver_sql
from datashare.policy.keys import key_scope
from datashare.policy.model import LoadedPolicy, load_policy
from datashare.policy.rowfilter import where_columns
from datashare.policy.transforms import TRANSFORMS
from datashare.policy.use import require_applies_to
from datashare.signing.keystore import read_passphrase
from datashare.workspace import SECRET_BYTES, Workspace

if TYPE_CHECKING:
    import duckdb

# DuckDB keeps every block it reads while memory is free, so unbounded, an export's memory grows with the table
# (550 MB at 10M rows) though it needs far less. A limit bounds it; DuckDB spills what does not fit (the classes
# of a policy whose quasi-identifiers are nearly unique). The Parquet writer holds a row group of every output
# column on each thread: measured, about 12 MB a column keeps it at full speed.
MEMORY_FLOOR_MB = 128
MEMORY_PER_COLUMN_MB = 12
# The export's keyed order sorts the whole output. The sort spills, but merging what it spilled needs room that
# grows with the text it carries: 10M rows with a note of 166 bytes (1.7 GB of text) ran out of 128 MB after two
# minutes, to run again unbounded (the export took twice as long), and ran under 256 MB. A fifth of the text
# leaves room.
SORTED_TEXT_SHARE = 5


def memory_limit_mb(con: duckdb.DuckDBPyConnection, output_columns: int, text_bytes: int = 0) -> int:
    """The memory limit for a policy's queries: :data:`MEMORY_FLOOR_MB`, or more for a wide output, or for one that
    sorts ``text_bytes`` of text (:data:`SORTED_TEXT_SHARE`)."""
    threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
    return max(MEMORY_FLOOR_MB, MEMORY_PER_COLUMN_MB * output_columns * threads,
               -(-text_bytes // (SORTED_TEXT_SHARE * 1024 * 1024)))


def execute_bounded(con: duckdb.DuckDBPyConnection, sql: str, output_columns: int, text_bytes: int = 0) -> None:
    """Run ``sql`` under :func:`memory_limit_mb`; a query that needs more runs again under the connection's own."""
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
    import duckdb

    own_limit = sql_string_literal(con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
    con.execute(f"SET memory_limit = '{memory_limit_mb(con, output_columns, text_bytes)}MB'")
    try:
        con.execute(sql)
    except duckdb.OutOfMemoryException:
        con.execute(f"SET memory_limit = {own_limit}")  # RESET leaves the buffer pool at the old limit
        con.execute(sql)
    finally:
        con.execute(f"SET memory_limit = {own_limit}")


def output_text_bytes(con: duckdb.DuckDBPyConnection, compiled: CompiledPolicy, table: str,
                      types: dict[str, str]) -> int:
    """The bytes of text in the source columns the output carries (``types``: each column's DuckDB type), which
    its sort carries too: one scan of those columns' lengths, a fraction of a second at 10M rows."""
    texts = [p.column for p in compiled.plan if p.sql is not None and types.get(p.column) == "VARCHAR"]
    if not texts:
        return 0
    total = " + ".join(f"coalesce(sum(strlen({quote_ident(c)})), 0)" for c in dict.fromkeys(texts))
    return int(con.execute(f"SELECT {total} FROM {table}").fetchone()[0])


# Suppressing a subject whole can make another class fail; each round suppresses at least one more subject, and
# this many rounds without settling is refused rather than waited for.
MAX_SUPPRESSION_ROUNDS = 64


def build_classes(con: duckdb.DuckDBPyConnection, compiled: CompiledPolicy) -> None:
    """The run's equivalence classes (``ds_classes``) before any suppression (and ``ds_members`` with a subject)."""
    if compiled.members_sql is not None:
        execute_bounded(con, compiled.members_sql, len(compiled.output_columns))
        con.execute(compiled.classes_sql)
    else:
        execute_bounded(con, compiled.classes_sql, len(compiled.output_columns))


def classify_rows(con: duckdb.DuckDBPyConnection, compiled: CompiledPolicy, *, built: bool = False,
                  budget: float | None = None) -> dict[str, Any] | None:
    """Build the classes (unless ``built``), suppress whole subjects until every class left passes, and read the
    gate's numbers.

    With ``budget`` (a share of the rows), return None as soon as the rows bound to be suppressed pass it: the
    people suppressed so far, and those in a class failing now, whose class can only shrink. The gate would
    refuse; a caller that only asks whether it passes (``policy suggest``) is spared the remaining rounds.
    """
    if not built:
        build_classes(con, compiled)
    failing = con.execute(compiled.failing_sql).fetchone()[0]
    if compiled.suppress_sql is not None:
        for _ in range(MAX_SUPPRESSION_ROUNDS):
            if budget is not None and failing and _bound_to_suppress(con, compiled) > budget:
                return None
            added = con.execute(compiled.suppress_sql).fetchone()[0]
            if not added:
                break
            con.execute(compiled.classes_sql)
        else:
            raise RefusedError(f"refused by the privacy gate: suppressing whole subjects did not settle in "
                               f"{MAX_SUPPRESSION_ROUNDS} rounds",
                               hint="Generalise the quasi-identifiers more, or see `datashare risk`.")
    return gate_measures(compiled, failing, con.execute(compiled.stats_sql).fetchone())


def gate_measures(compiled: CompiledPolicy, failing: int, stats_row: tuple) -> dict[str, Any]:
    """The gate's numbers from ``stats_sql``'s row and the classes that failed before suppression (any engine)."""
    rows, suppressed, k_out, l_out, left, people, people_suppressed = stats_row
    return {"rows_selected": rows, "suppressed": suppressed, "rows_out": rows - suppressed,
            "k": k_out, "l": l_out if compiled.sensitive else None, "failing_classes": failing,
            # without a subject the failing classes are left out by the export's semi-join; with one, none is left
            "failing_after": left if compiled.suppress_sql is not None else 0,
            "people_selected": people, "people_suppressed": people_suppressed,
            "people_out": None if people is None else people - people_suppressed}


def _bound_to_suppress(con: duckdb.DuckDBPyConnection, compiled: CompiledPolicy) -> float:
    """The share of the rows that suppression will reach at least, from where it stands (see classify_rows)."""
    rows, suppressed = con.execute(compiled.stats_sql).fetchone()[:2]
    return suppressed / rows if rows else 0.0


def gate(loaded: LoadedPolicy, compiled: CompiledPolicy, stats: dict[str, Any]) -> None:
    """Refuse when suppressing the rows below k (or l) would exceed the policy's budget."""
    rows, suppressed = stats["rows_selected"], stats["suppressed"]
    budget = loaded.policy.privacy.max_suppression
    if rows and suppressed / rows > budget:
        what = f"k={compiled.k} {compiled.k_unit}" + (f" and l={compiled.l}" if compiled.sensitive else "")
        whole = (f" (with every row of the {stats['people_suppressed']:,} people in them)"
                 if compiled.subject is not None else "")
        raise RefusedError(
            f"refused by the privacy gate: {suppressed:,} of {rows:,} rows ({suppressed / rows:.1%}) are in "
            f"{stats['failing_classes']:,} quasi-identifier combinations that fail {what}{whole}; the policy allows "
            f"suppressing at most {budget:.1%}",
            hint="Generalise the quasi-identifiers more (wider bands, regions), or see `datashare risk`.",
        )
    if rows == 0:
        raise RefusedError("nothing to export: no row passes rows.where")
    if stats["failing_after"]:  # cannot happen once suppression settled; a gate that cannot tell refuses
        raise RefusedError("refused by the privacy gate: classes below k remain after suppression")


def manifest_privacy(loaded: LoadedPolicy, compiled: CompiledPolicy, stats: dict[str, Any], *, recipient: str,
                     dataset: str) -> dict[str, Any]:
    """What the privacy gate measured and what links, for the manifest's ``privacy`` block (added to it)."""
    return {
        "subject": compiled.subject, "k_unit": compiled.k_unit,
        "people": {"selected": stats["people_selected"], "suppressed": stats["people_suppressed"],
                   "out": stats["people_out"]},
        "waivers": dict(loaded.policy.waivers),
        "keys": {"scope": "link group" if loaded.link_group else "recipient and dataset",
                 **key_scope(recipient, dataset, loaded.link_group)},
        "noise": "fixed per row and recipient (the same at every export to this recipient)"
        if any(p.transform == "noise" for p in compiled.plan) else None,
        "row_order": "keyed hash of each row with a nonce of this export",
    }


def risk_drivers(con: duckdb.DuckDBPyConnection, compiled: CompiledPolicy) -> list[dict[str, Any]]:
    """For each quasi-identifier: the classes, records and people below k if it were removed, or coarsened one
    level (:mod:`datashare.policy.coarsen`), counted in DuckDB before any suppression.

    Runs on a connection whose ``ds_keys`` are installed. The counts are exact:
    :func:`withhold_small_counts` decides what a person may see of them.
    """
    if not compiled.quasi_identifiers:
        return []
    execute_bounded(con, compiled.drivers_sql, len(compiled.output_columns))
    qis = [quote_ident(q) for q in compiled.quasi_identifiers]
    drivers = []
    for i, qi in enumerate(compiled.quasi_identifiers):
        changes: list[tuple[str, str | None, list[str]]] = [("removed", None, qis[:i] + qis[i + 1:])]
        if (level := compiled.coarsened.get(qi)) is not None:
            changes.append(("coarsened", level.description, [*qis[:i], coarse_column(i), *qis[i + 1:]]))
        for change, to, group in changes:
            classes, records, people = con.execute(driver_sql(compiled, group)).fetchone()
            drivers.append({"quasi_identifier": qi, "change": change, "to": to, "classes_below_k": int(classes),
                            "records_below_k": int(records), "people_below_k": int(people)})
    return drivers


def risk(ws: Workspace, actor: str, policy_path: Path, dataset: str, version: int | None = None, *,
         passphrase: str | None = None, population_fraction: float = 1.0,
         record: AuditRecorder | None = None) -> dict[str, Any]:
    """Re-identification risk of the dataset under the policy, computed in DuckDB.

    ``risk`` answers with counts, so it is guarded against being used as an
    oracle: an analyst may run only approved policies, a ``rows.where`` on a
    direct identifier is refused (see :func:`prepare`), every count below k
    is shown as ``<k`` (see :func:`withhold_small_counts`), and the entry in the
    log holds the filter's text. ``population_fraction`` is the share of the
    population the dataset holds (1: all of it), for the journalist and
    marketer risks. The workspace secret (and so the passphrase)
    is needed only when a quasi-identifier or the l-diversity column is keyed
    (pseudonymised, date-shifted), or ``rows.where`` names a date-shifted column
    (it sees the shifted dates): the other columns do not reach the classes.

    A caller that logs the access under its own entry (a report) passes its
    ``record``, and records success itself.
    """
    owned = record is None
    with audited(ws, "risk", actor, dataset=dataset) if record is None else nullcontext(record) as record:
        loaded = load_policy(policy_path)
        record.name_policy(loaded)
        if loaded.policy.rows.where:
            record.details["where"] = loaded.policy.rows.where  # the user's own text, never a catalog value
        if not is_custodian(ws, actor):
            require_approved(ws, loaded)  # which refuses an expired policy too
        secret = bytes(SECRET_BYTES)  # stands in for the secret where no column the classes read uses it
        if _gate_uses_keys(loaded):
            secret = unlock_secret(ws, actor, passphrase if passphrase is not None else read_passphrase(confirm=False))
        with ws.connect(read_only=True) as con, data_errors(loaded, dataset):
            resolved = resolve(con, dataset, version)  # an unknown dataset is named as such first
            require_applies_to(loaded, dataset)  # for everyone, as export
            try:
                compiled = prepare(loaded, resolved)
            except DirectFilterRefused as exc:
                # Its literals would be personal data (hkid = '…'): the log keeps only the columns it names.
                record.details.pop("where", None)
                record.details["where_columns"] = exc.columns
                raise
            install_keys(con, secret, None, dataset, loaded.link_group)
            build_classes(con, compiled)
            classes = con.execute(compiled.distribution_sql).fetchall()  # before suppression
            stats = classify_rows(con, compiled, built=True)
            drivers = risk_drivers(con, compiled)
        record.target["version"] = resolved.version
        if owned:
            record.ok()
    records = stats["rows_selected"]
    distribution: dict[int, dict[str, int]] = {}
    by_l: dict[int, dict[str, int]] = {}
    for size, diversity, count, rows in classes:
        for key, buckets, name in ((int(size), distribution, "class_size"), (int(diversity), by_l, "l")):
            bucket = buckets.setdefault(key, {name: key, "classes": 0, "records": 0, "people": 0})
            bucket["classes"] += count
            bucket["records"] += int(rows)
            bucket["people"] += count * int(size) if compiled.subject is not None else int(rows)
    n_classes = sum(b["classes"] for b in distribution.values())
    below_k = sum(b["records"] for size, b in distribution.items() if size < compiled.k)
    unique = distribution.get(1, {"records": 0})["records"]
    people = sum(b["people"] for b in distribution.values())
    report = {
        "dataset": dataset, "dataset_version": resolved.version, "policy": loaded.name,
        "quasi_identifiers": compiled.quasi_identifiers, "k": compiled.k, "l": compiled.l,
        "sensitive": compiled.sensitive, "records": records, "equivalence_classes": n_classes,
        "subject": compiled.subject, "k_unit": compiled.k_unit,
        "people": stats["people_selected"] if compiled.subject is not None else records,
        "people_suppressed": stats["people_suppressed"] if compiled.subject is not None else stats["suppressed"],
        "class_sizes": sorted(distribution.values(), key=lambda b: b["class_size"]),
        "unique_records": unique, "share_unique": unique / records if records else 0.0,
        "records_below_k": below_k, "share_below_k": below_k / records if records else 0.0,
        "max_prosecutor_risk": 1 / min(distribution) if distribution else 0.0,
        # per person: a class of k people gives each a risk of 1/k
        "avg_prosecutor_risk": n_classes / people if people else 0.0,
        # a class of f people in the data stands for f / fraction in the population (README: risk)
        "population_fraction": population_fraction,
        "max_journalist_risk": population_fraction / min(distribution) if distribution else 0.0,
        "marketer_risk": population_fraction * n_classes / people if people else 0.0,
        "sample_uniques": distribution.get(1, {"classes": 0})["classes"],
        "drivers": drivers,
        "rows_suppressed": stats["suppressed"], "share_suppressed": stats["suppressed"] / records if records else 0.0,
        "min_l": min(by_l) if by_l and compiled.sensitive else None,
        "l_values": sorted(by_l.values(), key=lambda b: b["l"]) if compiled.sensitive else [],
        "k_after_suppression": stats["k"], "l_after_suppression": stats["l"],
        "gate": "pass" if not records or stats["suppressed"] / records <= loaded.policy.privacy.max_suppression
        else "refused",
    }
    return withhold_small_counts(report)


def _gate_uses_keys(loaded: LoadedPolicy) -> bool:
    """Whether a column the equivalence classes are built from gets a transform keyed by the workspace secret."""
    privacy = loaded.policy.privacy
    gated = list(privacy.quasi_identifiers)
    if privacy.l_diversity is not None and gated:
        gated.append(privacy.l_diversity.sensitive)
    if loaded.where is not None:  # rows.where sees the shifted dates: which rows it selects depends on the key
        gated += [c for c in where_columns(loaded.where)
                  if c in loaded.policy.columns and loaded.policy.columns[c].transform == "date_shift"]
    return any(TRANSFORMS[loaded.policy.columns[c].transform].uses_keys for c in gated if c in loaded.policy.columns)


def below_k(k: int) -> str:
    """How a count below k is shown: ``<5`` for k=5 (in JSON too, so a script cannot read it either)."""
    return f"<{k}"


WITHHELD = "withheld"  # a count of k or more withheld because it would give back a count below k


def withhold_small_counts(report: dict[str, Any]) -> dict[str, Any]:
    """``risk``'s report with every count of records below k — zero included — replaced by ``<k``.

    With a filter that leaves a handful of rows, an exact count says whether a
    given person is there (1 against 0). So a count of records below k is
    shown as ``<k`` (and the number of classes beside it, which would give it
    back); a share whose count is withheld becomes an upper bound
    (``<0.0066``); the largest prosecutor risk becomes ``>0.2`` (more than 1/k)
    when a class is smaller than k. When fewer than k records pass
    ``rows.where``, nothing but ``<k`` is shown: no share, no class table, no k
    or l after suppression, and the gate reads ``refused`` (there would be
    nothing to export). Counts that would give a withheld one back (the
    records of a class-size bucket whose people are fewer than k; the unique
    records, records below k and suppressed rows and people, which add up the
    small classes; the sample uniques) read ``withheld``. The drivers' counts
    below k read ``<k``; when a small class is withheld, the others read as the
    band of k values they fall in (``10-14`` for k=5): a driver whose change
    leaves the classes below k as they were would otherwise give back the
    withheld count of records below k.
    """
    k = int(report["k"])
    records = int(report["records"])
    hidden = below_k(k)
    out = dict(report)
    if records < k:
        for name in ("records", "equivalence_classes", "unique_records", "records_below_k", "rows_suppressed",
                     "people", "people_suppressed"):
            out[name] = hidden
        for name in ("share_unique", "share_below_k", "share_suppressed", "max_prosecutor_risk",
                     "avg_prosecutor_risk", "min_l", "k_after_suppression", "l_after_suppression",
                     "max_journalist_risk", "marketer_risk"):
            out[name] = None
        out.update(class_sizes=[], l_values=[], gate="refused", sample_uniques=hidden, drivers=[])
        return out
    bound = f"<{k / records:.2g}"

    def shown(value: int) -> int | str:  # a count withheld to protect a small one: "<k", or "withheld" if not small
        return hidden if value < k else WITHHELD

    for name in ("class_sizes", "l_values"):
        out[name] = [{**bucket, "classes": shown(bucket["classes"]), "records": shown(bucket["records"]),
                      "people": shown(bucket["people"])}
                     if bucket["records"] < k or bucket["people"] < k else bucket for bucket in report[name]]
    small_withheld = any(bucket["records"] < k or bucket["people"] < k for bucket in report["class_sizes"])
    for name, share in (("unique_records", "share_unique"), ("records_below_k", "share_below_k"),
                        ("rows_suppressed", "share_suppressed")):
        if report[name] < k:
            out[name], out[share] = hidden, bound
        elif small_withheld:  # these add up the small classes: shown, they would give a withheld count back
            out[name], out[share] = WITHHELD, None
    for name in ("people", "people_suppressed"):
        if report[name] < k:
            out[name] = hidden
        elif small_withheld and name == "people_suppressed":
            out[name] = WITHHELD
    if report["class_sizes"] and report["class_sizes"][0]["class_size"] < k:
        out["max_prosecutor_risk"] = f">{1 / k:.2g}"
        out["max_journalist_risk"] = f">{report['population_fraction'] / k:.2g}"
    uniques = report["sample_uniques"]
    out["sample_uniques"] = hidden if uniques < k else WITHHELD if small_withheld else uniques

    def banded(value: int) -> int | str:  # with a small class withheld, a band of k values (see the docstring)
        if value < k:
            return hidden
        low = value // k * k
        return f"{low}-{low + k - 1}" if small_withheld else value

    out["drivers"] = [{**driver, **{name: banded(driver[name])
                                    for name in ("classes_below_k", "records_below_k", "people_below_k")}}
                      for driver in report["drivers"]]
    return out
