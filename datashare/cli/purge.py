"""Purging a dataset version's rows (its record and the audit trail stay)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from datashare.catalog.purge import purge as purge_version
from datashare.cli.app import app
from datashare.cli.common import ActorOption, DatasetArgument, HomeOption, workspace_and_actor
from datashare.cli.output import Message, Result, output_options
from datashare.errors import UsageError


@app.command()
@output_options()
def purge(
    name: DatasetArgument,
    version: Annotated[int, typer.Option("--version", metavar="N", min=1,
                                         help="The version whose rows to remove (required).")],
    reason: Annotated[str, typer.Option("--reason", metavar="REASON", help="Why (kept with the record and logged).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation (needed without a terminal).")]
    = False,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Remove a dataset version's rows for good; keep its record (schema, classes, fingerprint) and the log.

    Custodians only. Exports, risk and synthesis of a purged version are refused (exit 3).

    Examples:

    \b
      datashare purge patients --version 1 --reason "retention period ended"
      datashare purge patients --version 2 --reason "consent withdrawn (ticket 4411)" --yes --json
    """

    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"purging removes the rows of {name} v{version} for good: confirm with --yes")
        if not typer.confirm(f"Remove the rows of {name} v{version} for good?", default=False, err=True):
            raise typer.Abort()
    ws, who = workspace_and_actor(home, actor)
    dataset = purge_version(ws, who, name, version, reason)
    return Result(dataset.to_dict(with_columns=False), [
        Message(f"Purged {dataset.name} v{dataset.version}: its {dataset.rows:,} rows are gone from the workspace; "
                "its record and the audit trail stay."),
    ])
