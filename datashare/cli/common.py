"""What every command shares: the workspace and actor options. Output is in :mod:`datashare.cli.output`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datashare.governance.roles import workspace_actor
from datashare.workspace import Workspace, open_workspace

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home", metavar="FOLDER",
        envvar="DATASHARE_HOME",
        help="Workspace folder (default: the nearest .datashare workspace here or in a parent folder, else "
             "./.datashare).",
        show_default=False,
    ),
]
ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor", metavar="ACCOUNT",
        envvar="DATASHARE_ACTOR",
        help="Who is acting (default: the OS user).",
        show_default=False,
    ),
]

# What every release (an export, a synthesis) names: the policy must allow both.
PurposeOption = Annotated[str, typer.Option("--purpose", metavar="PURPOSE",
    help="Purpose of use; the policy must allow it.")]
RecipientOption = Annotated[str, typer.Option("--recipient", metavar="RECIPIENT",
    help="Who receives it; the policy must allow it.")]

# What the commands that read a dataset share.
DatasetArgument = Annotated[str, typer.Argument(metavar="DATASET", help="Dataset name.")]
VersionOption = Annotated[int | None, typer.Option("--version", metavar="N", min=1,
    help="Dataset version (default: latest).")]
PolicyFileOption = Annotated[Path, typer.Option("--policy", metavar="FILE", help="Policy file (YAML).")]
PopulationFractionOption = Annotated[float, typer.Option(
    "--population-fraction", metavar="SHARE", min=0.000001, max=1.0,
    help="Share of the population the dataset holds (default 1: all of it), for journalist and marketer risk.")]


def workspace_and_actor(home: Path | None, actor: str | None) -> tuple[Workspace, str]:
    """The workspace a command works on and who is acting in it (see governance.workspace_actor)."""
    ws = open_workspace(home)
    return ws, workspace_actor(ws, actor)


def any_case(value: str | None) -> str | None:
    """An option's callback for a choice (a format, a method, a role): ``CSV`` is ``csv``.

    The library still checks the value, where a refusal is logged and a typo gets a suggestion.
    """
    return value.lower() if value is not None else None
