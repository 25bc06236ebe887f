"""The audit trail: list, summarise, verify, and sign the log's head."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from datashare import governance
from datashare.audit.commands import make_head, read_log, summary
from datashare.audit.query import AuditFilter, flat_columns, flat_entry, validate_filter
from datashare.audit.verify import ChainError
from datashare.cli.app import app
from datashare.cli.common import HomeOption, any_case, workspace_and_actor
from datashare.cli.output import Line, Message, Part, Result, Table, output_options
from datashare.errors import DatashareError, VerificationError

audit_app = typer.Typer(invoke_without_command=True)
app.add_typer(audit_app, name="audit")


@audit_app.callback()
@output_options(csv=True, json_help="One JSON object per line on stdout.")
def audit_list(
    ctx: typer.Context,
    dataset: Annotated[str | None, typer.Option("--dataset", metavar="DATASET",
        help="Only entries about this dataset.")] = None,
    actor: Annotated[str | None, typer.Option("--actor", metavar="ACCOUNT", help="Only entries by this actor.")] = None,
    action: Annotated[str | None, typer.Option("--action", metavar="ACTION", callback=any_case,
        help="Only this action (export, register…).")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", metavar="ok|denied|error", callback=any_case,
        help="ok, denied or error.")] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="DATE",
        help="From this date or ISO timestamp (UTC).")] = None,
    until: Annotated[str | None, typer.Option("--until", metavar="DATE",
        help="Up to this date (inclusive) or timestamp.")] = None,
    home: HomeOption = None,
) -> Result | None:
    """Read and verify the append-only, tamper-evident audit log: list entries (filters combine), or
    use the subcommands summary, verify and head.

    Reading the log is itself an access: it is logged after the listing is made.
    The acting identity comes from DATASHARE_ACTOR or the OS user (--actor here is a filter).

    Examples:

    \b
      datashare audit --dataset patients --action export --outcome denied --since 2026-01-01
      datashare audit --action export --since 2026-01-01 --csv > exports.csv
    """
    if ctx.invoked_subcommand is not None:
        return None

    where = AuditFilter(dataset, actor, action, outcome, since, until)
    validate_filter(where)
    ws, me = workspace_and_actor(home, None)
    entries = read_log(ws, me, where)
    shown = [Table(
        ["seq", "time (UTC)", "actor", "action", "outcome", "target", "purpose", "recipient", "reason"],
        [[e["seq"], e["time"][:19], e["actor"], e["action"], e["outcome"], _target_text(e["target"]),
          e["purpose"] or "", e["recipient"] or "", e["reason"] or ""] for e in entries],
        "Audit log",
    )] if entries else [Message("No audit entries match.")]
    columns = flat_columns(entries)
    flat = [flat_entry(entry) | {"target": _target_text(entry["target"])} for entry in entries]
    csv = Table(columns, [[row.get(c) for c in columns] for row in flat])
    return Result(entries, shown, csv=csv, json_lines=True)


def _target_text(target: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(target.items()) if k != "source_sha256" and v is not None)


@audit_app.command("summary")
@output_options(csv=True)
def audit_summary(home: HomeOption = None) -> Result:
    """Per dataset: exports by recipient and purpose, denials, errors and last access (--csv: the per-dataset counts).

    Examples:

    \b
      datashare audit summary
      datashare audit summary --json
    """

    ws, me = workspace_and_actor(home, None)
    rows = summary(ws, me)
    counts = ["dataset", "accesses", "exports", "denials", "errors", "last_access", "is_dataset"]
    csv = Table(counts, [[r[c] for c in counts] for r in rows])
    if not rows:
        return Result(rows, [Message("No dataset has been accessed yet.")], csv=csv)
    datasets = [r for r in rows if r["is_dataset"]]
    others = [r for r in rows if not r["is_dataset"]]
    shown: list[Part] = []
    if datasets:
        shown.append(Table(["dataset", "accesses", "exports", "denials", "errors", "last access (UTC)"],
                           [[r["dataset"], r["accesses"], r["exports"], r["denials"], r["errors"],
                             r["last_access"][:19]] for r in datasets], "Access by dataset"))
    else:
        shown.append(Message("No dataset has been registered yet."))
    exports = [[r["dataset"], e["recipient"], e["purpose"], e["exports"]]
               for r in datasets for e in r["exports_by_recipient_purpose"]]
    if exports:
        shown.append(Table(["dataset", "recipient", "purpose", "exports"], exports, "Exports by recipient and purpose"))
    if others:
        shown.append(Table(["name", "attempts", "denials", "errors", "last attempt (UTC)"],
                           [[r["dataset"], r["accesses"], r["denials"], r["errors"], r["last_access"][:19]]
                            for r in others], "Names that are not datasets (refused or failed attempts)"))
    return Result(rows, shown, csv=csv)


def _verify_failure(exc: DatashareError, arguments: dict[str, Any]) -> dict[str, Any] | None:
    """``audit verify --json``'s own answer when the log does not verify."""
    del arguments
    if not isinstance(exc, VerificationError):
        return None
    problem = exc.to_dict() if isinstance(exc, ChainError) else {"seq": None, "line": None, "problem": exc.message}
    return {"ok": False, "entries": None, "first_error": problem, "message": exc.message, "notes": []}


@audit_app.command("verify")
@output_options(json_failure=_verify_failure)
def audit_verify(
    head: Annotated[Path | None, typer.Option(
        "--head", metavar="FILE",
        help="A head saved earlier (`datashare audit head > head.json`): prove the log extends it.")] = None,
    home: HomeOption = None,
) -> Result:
    """Recompute the hash chain; report OK with the count or the first bad entry (exit 4).

    Examples:

    \b
      datashare audit verify
      datashare audit verify --head head.json
    """

    ws, me = workspace_and_actor(home, None)
    report = governance.verify_audit_log(ws, me, head)
    extra = f", extends the head at entry {report['head_seq']}" if report.get("head_seq") is not None else ""
    return Result(report, [
        *(Line(f"note: {note}") for note in report["notes"]),
        Line(f"OK: {report['entries']} entries, chain intact{extra}; last entry {report['last_seq']} "
             f"hash {report['last_hash'][:16]}…" + (f"; it holds the entries its {report['receipts_checked']} "
                                                    "approval(s) name" if report["receipts_checked"] else "")),
    ])


@audit_app.command("head")
@output_options()
def audit_head(home: HomeOption = None) -> Result:
    """Print a signed statement of the log's current length and last hash, to keep elsewhere.

    The statement is JSON whether or not --json is given (it is meant to be saved and read back).

    Examples:

    \b
      datashare audit head > head.json
      datashare audit head --home /srv/datashare > /media/usb/head.json
    """

    ws, me = workspace_and_actor(home, None)
    return Result(make_head(ws, me), shown=None)
