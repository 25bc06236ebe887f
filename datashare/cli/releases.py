"""The release ledger: what each export released, to whom."""

from __future__ import annotations

from typing import Annotated

import typer

from datashare import export
from datashare.cli.app import app
from datashare.cli.common import ActorOption, HomeOption, workspace_and_actor
from datashare.cli.output import Message, Result, Table, output_options

_COLUMNS = ["id", "time (UTC)", "to", "dataset", "policy", "subject", "quasi-identifiers", "k"]


@app.command()
@output_options()
def releases(
    recipient: Annotated[str | None, typer.Option("--recipient", help="Only this recipient (or link group).")] = None,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """List the release ledger: each export's recipient, dataset, policy, subject, quasi-identifiers and k.

    Example: datashare releases --recipient cicor
    """

    ws, me = workspace_and_actor(home, actor)
    ledger = export.list_releases(ws, me, recipient)
    rows = [[r["id"], str(r["time"])[:19], r.get("link_group") or r["recipient"],
             f"{r['dataset']} v{r['dataset_version']}", f"{r['policy']} v{r['policy_version']}",
             r.get("subject") or "(rows)", ", ".join(q["column"] for q in r["quasi_identifiers"]),
             r["classes"].get("k_measured")] for r in ledger]
    shown = [Table(_COLUMNS, rows, "Releases")] if ledger else [Message("No release recorded yet.")]
    return Result(ledger, shown)
