"""The release ledger: what each export released, to whom."""

from __future__ import annotations

from typing import Annotated

import typer

from datashare import export
from datashare.cli.app import app
from datashare.cli.common import ActorOption, HomeOption, JsonOption, emit_json, print_table, say, workspace_and_actor


@app.command()
def releases(
    recipient: Annotated[str | None, typer.Option("--recipient", help="Only this recipient (or link group).")] = None,
    home: HomeOption = None,
    actor: ActorOption = None,
    json_out: JsonOption = False,
) -> None:
    """List the release ledger: each export's recipient, dataset, policy, subject, quasi-identifiers and k.

    Example: datashare releases --recipient cicor
    """

    ws, me = workspace_and_actor(home, actor)
    ledger = export.list_releases(ws, me, recipient)
    if json_out:
        emit_json(ledger)
        return
    if not ledger:
        say("No release recorded yet.")
        return
    print_table("Releases", ["id", "time (UTC)", "to", "dataset", "policy", "subject", "quasi-identifiers", "k"],
                [[r["id"], str(r["time"])[:19], r.get("link_group") or r["recipient"],
                  f"{r['dataset']} v{r['dataset_version']}", f"{r['policy']} v{r['policy_version']}",
                  r.get("subject") or "(rows)", ", ".join(q["column"] for q in r["quasi_identifiers"]),
                  r["classes"].get("k_measured")] for r in ledger])
