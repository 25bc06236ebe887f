"""The release ledger (what each export released, to whom) and the list of exports with their state."""

from __future__ import annotations

from typing import Annotated

import typer

from datashare import export
from datashare.cli.app import app
from datashare.cli.common import ActorOption, HomeOption, workspace_and_actor
from datashare.cli.output import Message, Result, Table, output_options
from datashare.export import listing

_COLUMNS = ["id", "time (UTC)", "to", "dataset", "policy", "subject", "quasi-identifiers", "k"]


@app.command()
@output_options()
def releases(
    recipient: Annotated[str | None, typer.Option("--recipient", metavar="RECIPIENT",
        help="Only this recipient (or link group).")] = None,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """List the release ledger: each export's recipient, dataset, policy, subject, quasi-identifiers and k.

    Examples:

    \b
      datashare releases
      datashare releases --recipient cicor --json
    """

    ws, me = workspace_and_actor(home, actor)
    ledger = export.list_releases(ws, me, recipient)
    rows = [[r["id"], str(r["time"])[:19], r.get("link_group") or r["recipient"],
             f"{r['dataset']} v{r['dataset_version']}", f"{r['policy']} v{r['policy_version']}",
             r.get("subject") or "(rows)", ", ".join(q["column"] for q in r["quasi_identifiers"]),
             r["classes"].get("k_measured")] for r in ledger]
    shown = [Table(_COLUMNS, rows, "Releases")] if ledger else [Message("No release recorded yet.")]
    return Result(ledger, shown)


@app.command()
@output_options(csv=True)
def exports(
    recipient: Annotated[str | None, typer.Option("--recipient", metavar="RECIPIENT",
                                                  help="Only releases to this recipient.")] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", metavar="DATASET",
                                                help="Only releases of this dataset.")] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Do not check the folders (state: not checked).")]
    = False,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """List every export and synthesis from the audit log and the release ledger, with its folder's state today.

    State: verified, missing, replaced (a later release to the same folder), altered, or not exported.

    Examples:

    \b
      datashare exports
      datashare exports --recipient cicor --no-verify --csv
    """

    ws, me = workspace_and_actor(home, actor)
    found = listing.list_exports(ws, me, recipient=recipient, dataset=dataset, verify=not no_verify)
    rows = [[r["seq"] or "", str(r["time"] or "")[:19], r["kind"], r["recipient"] or "",
             f"{r['dataset']} v{r['version']}",
             f"{r['policy']} v{r['policy_version']}", "" if r["rows"] is None else f"{r['rows']:,}", r["path"] or "",
             r["release"] or "", r["state"] + (f": {r['detail']}" if r["detail"] else "")] for r in found]
    shown = [Table(["seq", "time (UTC)", "kind", "to", "dataset", "policy", "rows", "folder", "release", "state"],
                   rows, "Exports")] if found else [Message("No export recorded yet.")]
    return Result(found, shown, csv=Table(listing.COLUMNS, [[r[c] for c in listing.COLUMNS] for r in found]))
