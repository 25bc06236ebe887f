"""The audit report: what left, to whom and when, what was refused, and whether the record of it holds.

For an auditor or a data protection officer: exports (and syntheses) per
recipient over time, the denials, the verification of the log's hash chain,
and for each export its receipt: its entry is in the verified chain, it did or
did not complete, and — where its folder is still on this machine — that the
folder verifies against the workspace's keys and its receipt names this entry
(:func:`datashare.export.recipient.receipt_checker`, as ``datashare verify``).
Reading the log is an access, logged as ``report.audit``.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from datashare import __version__
from datashare.audit.log import FAILED_AFTER, OUTCOME_DENIED, OUTCOME_ERROR, OUTCOME_OK, audited
from datashare.audit.query import AuditFilter, list_entries, parse_time, scan_entries, validate_filter
from datashare.audit.verify import ChainError, verify_chain
from datashare.errors import VerificationError
from datashare.export.bundle import AuditCheck, verify_export
from datashare.export.recipient import RELEASES, receipt_checker
from datashare.report.html import Bar, bar_rows, check_out, publish, render, stacked_columns
from datashare.signing import KeyInfo
from datashare.signing.keystore import load_public_keys
from datashare.workspace import Workspace, utc_now

SECTIONS = ["chain", "exports_over_time", "receipts", "denials"]
MAX_DAYS_BY_DAY = 45  # a period of up to this many days is drawn day by day; a longer one month by month
MAX_DENIALS_LISTED = 500  # the denials table lists the latest this many (the chart counts them all)
NOT_HERE = "folder not on this machine (sent to the recipient); the entry alone is checked"


def audit_report(ws: Workspace, actor: str, out: Path, *, since: str | None = None,
                 until: str | None = None) -> dict[str, Any]:
    """Read and verify the log, write the report to ``out``; what was written."""
    validate_filter(AuditFilter(since=since, until=until))
    out = check_out(out)
    with audited(ws, "report.audit", actor, output=str(out.absolute())) as record:
        chain = chain_status(ws.audit_path)
        entries = list_entries(ws.audit_path, AuditFilter(since=since, until=until))
        in_range = {entry["seq"] for entry in entries}
        releases = [e for e in scan_entries(ws.audit_path, actions=RELEASES) if e.get("seq") in in_range]
        exports = receipts(ws, releases, chain)
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


def chain_status(path: Path) -> dict[str, Any]:
    """The hash chain verified (``audit verify``'s check): entries and last hash, or the first bad entry."""
    try:
        report = verify_chain(path)
    except ChainError as exc:
        return {"ok": False, "message": exc.message, "seq": exc.seq, "problem": exc.problem}
    return {"ok": True, "entries": report.entries, "last_seq": report.last_seq, "last_hash": report.last_hash,
            "notes": report.notes}


def receipts(ws: Workspace, releases: list[dict[str, Any]], chain: dict[str, Any]) -> list[dict[str, Any]]:
    """Each successful export or synthesis in range with its receipt's status (see the module's docstring)."""
    undone = {(e.get("details") or {}).get(FAILED_AFTER) for e in releases if e.get("outcome") == OUTCOME_ERROR}
    keys = load_public_keys(ws)
    checker = receipt_checker(ws.audit_path, {key.key_id for key in keys})
    rows = []
    for entry in releases:
        if entry.get("outcome") != OUTCOME_OK:
            continue
        target, details = entry.get("target") or {}, entry.get("details") or {}
        in_chain = chain["ok"] or (chain["seq"] is not None and entry["seq"] < chain["seq"])
        row = {"seq": entry["seq"], "time": entry["time"], "actor": entry["actor"], "action": entry["action"],
               "dataset": target.get("dataset"), "version": target.get("version"), "policy": target.get("policy"),
               "policy_version": target.get("policy_version"), "recipient": entry.get("recipient") or "",
               "purpose": entry.get("purpose") or "", "rows_out": details.get("rows_out"),
               "completed": entry["seq"] not in undone, "in_chain": in_chain,
               "entry": "in the verified chain" if in_chain else "after the chain's first bad entry: not vouched for"}
        row["folder"], row["folder_ok"] = _folder_status(target.get("output"), entry, keys, checker)
        rows.append(row)
    return rows


def _folder_status(output: str | None, entry: dict[str, Any], keys: list[KeyInfo],
                   checker: AuditCheck) -> tuple[str, bool | None]:
    """Whether the export's folder is here and verifies with its receipt naming ``entry``; None: not here."""
    if not output or not Path(output).is_dir():
        return NOT_HERE, None
    try:
        report = verify_export(Path(output), keys, audit_check=checker)
    except VerificationError as exc:
        return f"the folder at {output} fails verification: {exc.message}", False
    except OSError as exc:  # another account's export, its files private to it
        return f"the folder at {output} cannot be read here ({exc.strerror or type(exc).__name__})", None
    receipt = report.manifest.get("audit_receipt") or {}
    if receipt.get("seq") != entry["seq"] or receipt.get("hash") != entry["hash"]:
        return f"the folder at {output} now holds another export (audit entry {receipt.get('seq')})", None
    return f"the folder at {output} verifies: signature, files and receipt", True


def exports_over_time(exports: list[dict[str, Any]]) -> dict[str, Any]:
    """Exports per recipient per day (a span of up to :data:`MAX_DAYS_BY_DAY` days) or per month, gaps included."""
    done = [e for e in exports if e["completed"]]
    if not done:
        return stacked_columns([], {})
    moments = [parse_time(e["time"], end_of_day=False) for e in done]
    by_day = (max(moments) - min(moments)).days < MAX_DAYS_BY_DAY
    periods = _periods(min(moments), max(moments), by_day=by_day)
    series: dict[str, Counter[str]] = {}
    for entry, moment in zip(done, moments, strict=True):
        period = moment.strftime("%Y-%m-%d" if by_day else "%Y-%m")
        series.setdefault(entry["recipient"], Counter())[period] += 1
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
        if not entry["completed"]:
            continue
        item = totals.setdefault(entry["recipient"], {"recipient": entry["recipient"], "exports": 0, "rows": 0})
        item["exports"] += 1
        item["rows"] += entry["rows_out"] if isinstance(entry["rows_out"], int) else 0
    return sorted(totals.values(), key=lambda item: item["recipient"])


def denial_bars(denials: list[dict[str, Any]]) -> list[Bar]:
    """Denials counted by action, the commonest first."""
    counts = Counter(entry["action"] for entry in denials)
    return [Bar(action, count, f"{count:,}") for action, count in counts.most_common()]
