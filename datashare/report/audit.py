"""The audit report: what left, to whom and when, what was refused, and whether the record of it holds.

For an auditor or a data protection officer: exports (and syntheses) per
recipient over time, the denials, the verification of the log's hash chain,
and for each release its receipt: its entry is in the verified chain (or no
entry says it completed), and its folder's state today as ``datashare exports``
finds it (:func:`datashare.export.listing.release_states`: verified as
``datashare verify`` does, missing, replaced or altered). Reading the log is an
access, logged as ``report.audit``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from datashare import __version__
from datashare.audit.commands import verify_with_receipts
from datashare.audit.log import OUTCOME_DENIED, audited
from datashare.audit.query import AuditFilter, list_entries, parse_time, validate_filter
from datashare.audit.verify import ChainError
from datashare.errors import InputError
from datashare.export.listing import release_states
from datashare.governance.approvals import signed_receipts
from datashare.report.html import Bar, bar_rows, check_out, publish, render, stacked_columns
from datashare.workspace import Workspace, utc_now

SECTIONS = ["chain", "exports_over_time", "receipts", "denials"]
MAX_DAYS_BY_DAY = 45  # a period of up to this many days is drawn day by day; a longer one month by month
MAX_DENIALS_LISTED = 500  # the denials table lists the latest this many (the chart counts them all)


def audit_report(ws: Workspace, actor: str, out: Path, *, since: str | None = None,
                 until: str | None = None) -> dict[str, Any]:
    """Read and verify the log, write the report to ``out``; what was written."""
    validate_filter(AuditFilter(since=since, until=until))
    out = check_out(out)
    with audited(ws, "report.audit", actor, output=str(out.absolute())) as record:
        chain = chain_status(ws)
        entries = list_entries(ws.audit_path, AuditFilter(since=since, until=until))
        exports = receipts(ws, {entry["seq"] for entry in entries}, since, until, chain)
        denials = [e for e in entries if e["outcome"] == OUTCOME_DENIED]
        page = render("audit.html.j2", generated=utc_now(), datashare_version=__version__, chain=chain,
                      since=since, until=until, entries=len(entries), exports=exports,
                      over_time=exports_over_time(exports), by_recipient=recipient_totals(exports),
                      denials=denials[-MAX_DENIALS_LISTED:], denial_count=len(denials),
                      denials_by_action=bar_rows(denial_bars(denials)))
        record.details["filters"] = {k: v for k, v in (("since", since), ("until", until)) if v}
        record.details["chain_verified"] = chain["ok"]
        written = publish(record, out, page, SECTIONS)
    return {**written, "chain_verified": chain["ok"], "chain_error": None if chain["ok"] else chain["message"]}


def chain_status(ws: Workspace) -> dict[str, Any]:
    """The hash chain verified (``audit verify``'s check, the approvals' receipts included): entries and last hash,
    or the first bad entry."""
    try:
        report = verify_with_receipts(ws, signed_receipts(ws))
    except ChainError as exc:
        return {"ok": False, "message": exc.message, "seq": exc.seq, "problem": exc.problem}
    except InputError as exc:  # the approvals cannot be read: the log cannot be checked against them
        return {"ok": False, "message": exc.message, "seq": None, "problem": "receipts"}
    return {"ok": True, "entries": report.entries, "last_seq": report.last_seq, "last_hash": report.last_hash,
            "notes": report.notes}


def receipts(ws: Workspace, in_range: set[int], since: str | None, until: str | None,
             chain: dict[str, Any]) -> list[dict[str, Any]]:
    """Each release in range (``datashare exports``' list, its folder checked) with its entry's place in the chain.

    A release whose entry is missing (its export failed after the ledger line was written) is in range by the
    ledger line's time.
    """
    rows = []
    for release in release_states(ws):
        if release["seq"] is None:
            if not _within(release["time"], since, until):
                continue
            release["entry"] = "no audit entry says it completed"
        elif release["seq"] not in in_range:
            continue
        elif chain["ok"] or (chain["seq"] is not None and release["seq"] < chain["seq"]):
            release["entry"] = "in the verified chain"
        else:
            release["entry"] = "after the chain's first bad entry: not vouched for"
        rows.append(release)
    return rows


def _within(time: str | None, since: str | None, until: str | None) -> bool:
    """Whether a ledger line's time is in the period, as ``audit --since/--until`` reads it (a date as ``--until``
    covers that whole day)."""
    if not time:
        return False
    moment = parse_time(time, end_of_day=False)
    if since and moment < parse_time(since, end_of_day=False):
        return False
    if until:
        end = parse_time(until, end_of_day=True)
        return moment < end if len(until) == len("2026-01-01") else moment <= end
    return True


def exports_over_time(exports: list[dict[str, Any]]) -> dict[str, Any]:
    """Exports per recipient per day (a span of up to :data:`MAX_DAYS_BY_DAY` days) or per month, gaps included."""
    done = [e for e in exports if e["seq"] is not None]
    if not done:
        return stacked_columns([], {})
    moments = [parse_time(e["time"], end_of_day=False) for e in done]
    by_day = (max(moments) - min(moments)).days < MAX_DAYS_BY_DAY
    periods = _periods(min(moments), max(moments), by_day=by_day)
    series: dict[str, Counter[str]] = {}
    for entry, moment in zip(done, moments, strict=True):
        period = moment.strftime("%Y-%m-%d" if by_day else "%Y-%m")
        series.setdefault(entry["recipient"] or "", Counter())[period] += 1
    return stacked_columns(periods, {name: dict(counts) for name, counts in sorted(series.items())})


def _periods(first: datetime, last: datetime, *, by_day: bool) -> list[str]:
    """Every day (or month) from ``first`` to ``last``, as the chart labels them."""
    if by_day:
        start = first.date()
        return [(start + timedelta(days=n)).isoformat() for n in range((last.date() - start).days + 1)]
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def recipient_totals(exports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per recipient: completed exports and rows sent, for the table beside the chart."""
    totals: dict[str, dict[str, Any]] = {}
    for entry in exports:
        if entry["seq"] is None:
            continue
        name = entry["recipient"] or ""
        item = totals.setdefault(name, {"recipient": name, "exports": 0, "rows": 0})
        item["exports"] += 1
        item["rows"] += entry["rows"] if isinstance(entry["rows"], int) else 0
    return sorted(totals.values(), key=lambda item: item["recipient"])


def denial_bars(denials: list[dict[str, Any]]) -> list[Bar]:
    """Denials counted by action, the commonest first."""
    counts = Counter(entry["action"] for entry in denials)
    return [Bar(action, count, f"{count:,}") for action, count in counts.most_common()]
