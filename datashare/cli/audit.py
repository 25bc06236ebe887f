"""The audit trail: list, summarise, verify, and sign the log's head."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer

from datashare.audit.commands import make_head, read_log, summary, verify_log
from datashare.audit.query import LIST_COLUMNS, AuditFilter, validate_filter
from datashare.audit.verify import ChainError
from datashare.cli.app import app
from datashare.cli.common import (
    HomeOption,
    JsonOption,
    emit_json,
    emit_json_lines,
    print_table,
    say,
    workspace_and_actor,
)
from datashare.cli.common import report as report_line
from datashare.errors import UsageError, VerificationError

audit_app = typer.Typer(invoke_without_command=True)
app.add_typer(audit_app, name="audit")



@audit_app.callback()
def audit_list(
    ctx: typer.Context,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Only entries about this dataset.")] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Only entries by this actor.")] = None,
    action: Annotated[str | None, typer.Option("--action", help="Only this action (export, register…).")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="ok, denied or error.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this date or ISO timestamp (UTC).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Up to this date (inclusive) or timestamp.")] = None,
    csv_out: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
    home: HomeOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line on stdout.")] = False,
) -> None:
    """Read and verify the append-only, tamper-evident audit log: list entries (filters combine), or
    use the subcommands summary, verify and head.

    Reading the log is itself an access: it is logged after the listing is made.
    The acting identity comes from DATASHARE_ACTOR or the OS user (--actor here is a filter).

    Example: datashare audit --dataset patients --action export --outcome denied --since 2026-01-01
    """
    if ctx.invoked_subcommand is not None:
        return

    if json_out and csv_out:
        raise UsageError("give --json or --csv, not both")
    where = AuditFilter(dataset, actor, action, outcome, since, until)
    validate_filter(where)
    ws, me = workspace_and_actor(home, None)
    entries = read_log(ws, me, where)
    if json_out:
        emit_json_lines(entries)
    elif csv_out:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(LIST_COLUMNS)
        for entry in entries:
            writer.writerow([entry[c] if c != "target" else _target_text(entry[c]) for c in LIST_COLUMNS])
    elif not entries:
        say("No audit entries match.")
    else:
        print_table(
            "Audit log",
            ["seq", "time (UTC)", "actor", "action", "outcome", "target", "purpose", "recipient", "reason"],
            [[e["seq"], e["time"][:19], e["actor"], e["action"], e["outcome"], _target_text(e["target"]),
              e["purpose"] or "", e["recipient"] or "", e["reason"] or ""] for e in entries],
        )


def _target_text(target: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(target.items()) if k != "source_sha256")


@audit_app.command("summary")
def audit_summary(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Per dataset: exports by recipient and purpose, denials, errors and last access.

    Example: datashare audit summary --json
    """

    ws, me = workspace_and_actor(home, None)
    rows = summary(ws, me)
    if json_out:
        emit_json(rows)
        return
    if not rows:
        say("No dataset has been accessed yet.")
        return
    print_table("Access by dataset", ["dataset", "accesses", "exports", "denials", "errors", "last access (UTC)"],
                [[r["dataset"], r["accesses"], r["exports"], r["denials"], r["errors"], r["last_access"][:19]]
                 for r in rows])
    exports = [[r["dataset"], e["recipient"], e["purpose"], e["exports"]]
               for r in rows for e in r["exports_by_recipient_purpose"]]
    if exports:
        print_table("Exports by recipient and purpose", ["dataset", "recipient", "purpose", "exports"], exports)


@audit_app.command("verify")
def audit_verify(
    head: Annotated[Path | None, typer.Option(
        "--head", help="A head saved earlier (`datashare audit head > head.json`): prove the log extends it.")] = None,
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Recompute the hash chain; report OK with the count or the first bad entry (exit 4).

    Example: datashare audit verify --head head.json
    """

    ws, me = workspace_and_actor(home, None)
    try:
        report = verify_log(ws, me, head)
    except VerificationError as exc:
        if json_out:
            problem = exc.to_dict() if isinstance(exc, ChainError) else {"seq": None, "line": None,
                                                                         "problem": exc.message}
            emit_json({"ok": False, "entries": None, "first_error": problem, "message": exc.message, "notes": []})
        raise
    if json_out:
        emit_json(report)
        return
    for note in report["notes"]:
        report_line(f"note: {note}")
    extra = f", extends the head at entry {report['head_seq']}" if report.get("head_seq") is not None else ""
    report_line(f"OK: {report['entries']} entries, chain intact{extra}; last entry {report['last_seq']} "
               f"hash {report['last_hash'][:16]}…")


@audit_app.command("head")
def audit_head(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Print a signed statement of the log's current length and last hash, to keep elsewhere.

    The statement is JSON whether or not --json is given (it is meant to be saved and read back).

    Example: datashare audit head > head.json
    """

    del json_out  # accepted like on every command that shows something: the head is always JSON
    ws, me = workspace_and_actor(home, None)
    emit_json(make_head(ws, me))
