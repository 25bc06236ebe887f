"""Approved policies read back: ``policy show`` and ``policy diff``."""

from __future__ import annotations

from typing import Annotated

import typer

from datashare import governance
from datashare.cli.common import ActorOption, HomeOption, workspace_and_actor
from datashare.cli.output import Message, Result, Verbatim, output_options
from datashare.cli.policy import policy_app

NameArg = Annotated[str, typer.Argument(metavar="POLICY", help="Policy name (the file's `policy:` key).")]


@policy_app.command("show")
@output_options()
def policy_show(
    name: NameArg,
    version: Annotated[int | None, typer.Option("--version", min=1, metavar="N",
                                                help="This version (default: the latest approved).")] = None,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Print the exact text of an approved policy, as stored at approval (its SHA-256 checked; exit 4 if changed).

    Examples:

    \b
      datashare policy show hk-clinical-research
      datashare policy show hk-clinical-research --version 1 > approved-v1.yaml
    """

    ws, me = workspace_and_actor(home, actor)
    shown = governance.show_policy(ws, me, name, version)
    return Result(shown, [Verbatim(shown["text"]),
                          Message(f"{shown['policy']} v{shown['version']} as approved by {shown['approved_by']} on "
                                  f"{shown['approved_at'][:19]} UTC (sha256 {shown['sha256']})")])


@policy_app.command("diff")
@output_options()
def policy_diff(
    name: NameArg,
    old: Annotated[int, typer.Argument(min=1, metavar="V1", help="The version to compare from.")],
    new: Annotated[int, typer.Argument(min=1, metavar="V2", help="The version to compare to.")],
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Compare the approved texts of two versions of a policy: a unified diff (exit 0 whether or not they differ).

    Examples:

    \b
      datashare policy diff hk-clinical-research 1 2
      datashare policy diff hk-open-data 2 3 --json
    """

    ws, me = workspace_and_actor(home, actor)
    compared = governance.diff_policies(ws, me, name, old, new)
    if compared["identical"]:
        return Result(compared, [Message(f"{name} v{old} and v{new} have the same text")])
    return Result(compared, [Verbatim(compared["diff"])])
