"""Reading the audit log: filtered listings and per-dataset summaries.

DuckDB reads the log file itself (``read_json``), so a filter over a million
entries takes seconds. Filter values are bound as parameters. A torn last
line is skipped when listing (``audit verify`` is what reports it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from datashare.audit.log import FAILED_AFTER, OUTCOME_DENIED, OUTCOME_ERROR, OUTCOME_OK
from datashare.core.hints import did_you_mean
from datashare.core.sql import sql_string_literal
from datashare.errors import UsageError
from datashare.permissions import AUDITED_ACTIONS

LIST_COLUMNS = ("seq", "time", "actor", "action", "outcome", "dataset", "version", "policy", "purpose",
                "recipient", "reason", "target", "hash")
# Every other field of an entry, as it is in the log: ``details`` (rows out, k, signer…), the previous entry's hash,
# and what a torn line before the entry held (null for almost every entry).
ENTRY_FIELDS = ("details", "prev", "torn_before")
_NESTED_FIELDS = ("target", "details", "torn_before")
_JSON_COLUMNS = (
    "{seq: 'BIGINT', time: 'VARCHAR', actor: 'VARCHAR', action: 'VARCHAR', target: 'JSON', purpose: 'VARCHAR', "
    "recipient: 'VARCHAR', outcome: 'VARCHAR', reason: 'VARCHAR', details: 'JSON', prev: 'VARCHAR', "
    "torn_before: 'JSON', hash: 'VARCHAR'}"
)
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SCAN_BLOCK = 1 << 22


@dataclass(frozen=True)
class AuditFilter:
    """Conditions on entries; all given conditions must hold."""

    dataset: str | None = None
    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: str | None = None
    until: str | None = None


OUTCOMES = (OUTCOME_OK, OUTCOME_DENIED, OUTCOME_ERROR)


def validate_filter(where: AuditFilter) -> None:
    """Refuse (as a usage error) an outcome or action no entry can have, with a suggestion; check the times."""

    for option, value, allowed in (("outcome", where.outcome, OUTCOMES), ("action", where.action, AUDITED_ACTIONS)):
        if value is not None and value not in allowed:
            suggestion = did_you_mean(value, allowed, before=" (", after=")")
            raise UsageError(f"unknown {option} {value!r}{suggestion}", hint=f"--{option} takes: {', '.join(allowed)}.")
    if where.since:
        parse_time(where.since, end_of_day=False)
    if where.until:
        parse_time(where.until, end_of_day=True)


def parse_time(value: str, *, end_of_day: bool) -> datetime:
    """A date (``2026-01-01``) or ISO timestamp; a bare date as ``--until`` covers that whole day."""
    try:
        if _DATE_ONLY.fullmatch(value):
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day)
            return moment + timedelta(days=1) if end_of_day else moment
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"not a date or ISO timestamp: {value!r} (e.g. 2026-01-01 or 2026-01-01T08:00:00Z)") from exc
    if parsed.tzinfo is not None:  # the log is in UTC
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _relation(path: Path) -> str:
    return (f"read_json({sql_string_literal(str(path))}, format='newline_delimited', columns={_JSON_COLUMNS}, "
            "ignore_errors=true)")


def list_entries(path: Path, where: AuditFilter) -> list[dict[str, Any]]:
    """Entries matching the filter, oldest first."""
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
    import duckdb

    if not path.exists() or path.stat().st_size == 0:
        return []
    conditions, params = ["seq IS NOT NULL"], []
    if where.dataset:
        conditions.append("json_extract_string(target, '$.dataset') = ?")
        params.append(where.dataset)
    for column in ("actor", "action", "outcome"):
        value = getattr(where, column)
        if value:
            conditions.append(f"{column} = ?")
            params.append(value)
    moment = "CAST(replace(time, 'Z', '') AS TIMESTAMP)"
    if where.since:
        conditions.append(f"{moment} >= ?")
        params.append(parse_time(where.since, end_of_day=False))
    if where.until:
        until = parse_time(where.until, end_of_day=True)
        conditions.append(f"{moment} {'<' if _DATE_ONLY.fullmatch(where.until) else '<='} ?")
        params.append(until)
    query = f"""
        SELECT seq, time, actor, action, outcome,
               json_extract_string(target, '$.dataset') AS dataset,
               TRY_CAST(json_extract(target, '$.version') AS BIGINT) AS version,
               json_extract_string(target, '$.policy') AS policy,
               purpose, recipient, reason, CAST(target AS VARCHAR) AS target, hash,
               CAST(details AS VARCHAR) AS details, prev, CAST(torn_before AS VARCHAR) AS torn_before
        FROM {_relation(path)} WHERE {' AND '.join(conditions)} ORDER BY seq"""
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")  # stdout carries the result only
        rows = con.execute(query, params).fetchall()
    finally:
        con.close()

    result = []
    for row in rows:
        entry = dict(zip(LIST_COLUMNS + ENTRY_FIELDS, row, strict=True))
        for name in _NESTED_FIELDS:
            entry[name] = json.loads(entry[name]) if entry[name] else ({} if name != "torn_before" else None)
        result.append(entry)
    return result


def flat_columns(entries: list[dict[str, Any]]) -> list[str]:
    """The columns of a flat listing (CSV): the listing's own, ``prev``, then every nested key of ``target``,
    ``details`` and ``torn_before`` as a dotted name (``target.output``, ``details.rows_out``,
    ``details.waivers.dob``), the union over ``entries``, sorted."""
    nested = sorted({key for entry in entries for name in _FLATTENED for key in _flatten(entry[name], name)})
    return [*LIST_COLUMNS, "prev", *nested]


def flat_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """One entry as a flat row under :func:`flat_columns`' names; a list is written as JSON text."""
    row = {name: entry[name] for name in (*LIST_COLUMNS, "prev")}
    for name in _FLATTENED:
        row.update(_flatten(entry[name], name))
    return row


_FLATTENED = ("target", *(name for name in ENTRY_FIELDS if name != "prev"))  # also whole: target, as text


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}"))
        return flat
    if value is None and prefix in _NESTED_FIELDS:  # an entry without the field at all
        return {}
    if isinstance(value, list):
        return {prefix: json.dumps(value, ensure_ascii=False)}
    return {prefix: value}


def summarise(path: Path) -> list[dict[str, Any]]:
    """Per dataset name: exports by recipient and purpose, denials, last access, and whether it is a dataset at all.

    Reading the log (``audit.*``) or listing the exports (``exports``), which may filter on any name, is no access
    of a dataset and is left out.
    ``is_dataset`` is true for a name a command succeeded on (an ok entry not undone by a later error; verifying
    an export, whose manifest may come from elsewhere, does not count). A name seen only in refused or failed
    commands (a typo, a register that failed) is not a dataset, and is listed apart rather than counted as one.
    """
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
    import duckdb

    if not path.exists() or path.stat().st_size == 0:
        return []
    # An ok entry followed by an error entry naming it (failed_after) is an operation that did not complete:
    # it is not counted; the error entry stands for that access. The log is read once, into a temporary table.
    # Reading or verifying the log, or listing the exports, is no access of a dataset, though either may name one
    # as its filter.
    base = """(SELECT * FROM summary_log WHERE dataset IS NOT NULL AND action NOT LIKE 'audit.%'
                    AND action != 'exports' AND seq NOT IN (
                    SELECT failed_after FROM summary_log WHERE outcome = 'error' AND failed_after IS NOT NULL))"""
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")  # stdout carries the result only
        con.execute(f"""
            CREATE TEMP TABLE summary_log AS
            SELECT seq, json_extract_string(target, '$.dataset') AS dataset, action, outcome, recipient, purpose,
                   time, TRY_CAST(json_extract(details, '$.{FAILED_AFTER}') AS BIGINT) AS failed_after
            FROM {_relation(path)} WHERE seq IS NOT NULL""")
        totals = con.execute(f"""
            SELECT dataset, count(*) AS accesses,
                   count_if(action = 'export' AND outcome = 'ok') AS exports,
                   count_if(outcome = 'denied') AS denials,
                   count_if(outcome = 'error') AS errors,
                   max(time) AS last_access,
                   count_if(outcome = 'ok' AND action != 'verify') > 0 AS is_dataset
            FROM {base} GROUP BY dataset ORDER BY dataset""").fetchall()
        exports = con.execute(f"""
            SELECT dataset, coalesce(recipient, '') , coalesce(purpose, ''), count(*)
            FROM {base} WHERE action = 'export' AND outcome = 'ok'
            GROUP BY ALL ORDER BY 1, 2, 3""").fetchall()
    finally:
        con.close()
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for dataset, recipient, purpose, count in exports:
        by_dataset.setdefault(dataset, []).append({"recipient": recipient, "purpose": purpose, "exports": count})
    return [
        {"dataset": dataset, "accesses": accesses, "exports": exports_ok, "denials": denials, "errors": errors,
         "last_access": last, "exports_by_recipient_purpose": by_dataset.get(dataset, []), "is_dataset": is_dataset}
        for dataset, accesses, exports_ok, denials, errors, last, is_dataset in totals
    ]


def scan_entries(path: Path, *, seqs: Collection[int] = (), actions: Collection[str] = ()) -> Iterator[dict[str, Any]]:
    """The entries of the log at ``path`` numbered ``seqs`` (the first line of each number) or recording one of
    ``actions`` (any outcome), in log order, streamed; nothing for a log that does not exist.

    This is the one place outside the chain's own reading that knows the line format: an entry's line starts with
    ``{"seq":N,"prev":`` and holds ``"action":"NAME"``; JSON escapes a quote inside a string, so those bytes are
    found only where the format puts them. Only the lines holding them are parsed, so a lookup in a large log is a
    fast scan of bytes. A line that does not parse (a torn last line) is skipped, and counts as its number's first line;
    ``audit verify`` reports it.
    """
    starts = {f'{{"seq":{int(seq)},"prev":'.encode(): int(seq) for seq in seqs}
    marks = [json.dumps({"action": action}, separators=(",", ":"))[1:-1].encode() for action in actions]
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    rest = b""
    with handle:
        while starts or marks:
            block = handle.read(_SCAN_BLOCK)
            if not block:
                break
            data = rest + block
            cut = data.rfind(b"\n") + 1
            data, rest = data[:cut], data[cut:]
            lines: dict[int, bytes | None] = {}  # line start -> the seq mark it starts with, if any
            for mark in [*marks, *starts]:
                pos = data.find(mark)
                while pos >= 0:
                    start = data.rfind(b"\n", 0, pos) + 1
                    if mark in starts:
                        if start == pos:
                            lines[start] = mark
                            break
                    else:
                        lines.setdefault(start, None)
                    pos = data.find(mark, data.find(b"\n", pos))
            for start in sorted(lines):
                numbered = lines[start] is not None and starts.pop(lines[start], None) is not None  # the first only
                try:
                    entry = json.loads(data[start:data.find(b"\n", start)])
                except ValueError:
                    continue
                if isinstance(entry, dict) and (numbered or entry.get("action") in actions):
                    yield entry
