"""Roles: who may register, export, approve and audit in this workspace."""

from __future__ import annotations

from typing import Annotated

import typer

from datashare import governance
from datashare.cli.app import app
from datashare.cli.common import ActorOption, HomeOption, any_case, workspace_and_actor
from datashare.cli.output import Message, Result, Table, output_options

roles_app = typer.Typer(help="Grant and list roles: custodian, analyst, auditor.", no_args_is_help=True)
app.add_typer(roles_app, name="roles")


@roles_app.command("grant")
@output_options()
def roles_grant(
    who: Annotated[str, typer.Argument(metavar="ACCOUNT", help="Account name (OS user or service account).")],
    role: Annotated[str, typer.Argument(metavar="ROLE", callback=any_case, help="custodian, analyst or auditor.")],
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Give an account a role (custodians only).

    Examples:

    \b
      datashare roles grant alice analyst
      datashare roles grant bob auditor
    """

    ws, me = workspace_and_actor(home, actor)
    roles = governance.grant(ws, me, who, role)
    return Result({"roles": roles}, [Message(f"{who} now holds: {', '.join(roles.get(who, []))}")])


@roles_app.command("revoke")
@output_options()
def roles_revoke(
    who: Annotated[str, typer.Argument(metavar="ACCOUNT", help="Account name.")],
    role: Annotated[str, typer.Argument(metavar="ROLE", callback=any_case, help="custodian, analyst or auditor.")],
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Take a role away from an account (custodians only; the last custodian stays).

    Examples:

    \b
      datashare roles revoke alice analyst
      datashare roles revoke bob auditor --json
    """

    ws, me = workspace_and_actor(home, actor)
    roles = governance.revoke(ws, me, who, role)
    return Result({"roles": roles}, [Message(f"{who} now holds: {', '.join(roles.get(who, [])) or 'no role'}")])


@roles_app.command("list")
@output_options(csv=True)
def roles_list(home: HomeOption = None, actor: ActorOption = None) -> Result:
    """List accounts and their roles (--csv: one row per account and role).

    Examples:

    \b
      datashare roles list
      datashare roles list --csv
    """

    ws, me = workspace_and_actor(home, actor)
    data = governance.list_roles(ws, me)
    held = sorted(data["roles"].items())
    allowed = "allowed" if data["allow_service_accounts"] else "not allowed"
    return Result(data, [Table(["account", "roles"], [[who, ", ".join(roles)] for who, roles in held], "Roles"),
                         Message(f"Service accounts (--actor / DATASHARE_ACTOR): {allowed}")],
                  csv=Table(["account", "role"], [[who, role] for who, roles in held for role in roles]))


@roles_app.command("service-accounts")
@output_options()
def roles_service_accounts(
    state: Annotated[str, typer.Argument(metavar="on|off", callback=any_case, help="on or off.")],
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Allow (on) or forbid (off) acting as a named account other than the OS user (custodians only).

    Examples:

    \b
      datashare roles service-accounts on
      datashare roles service-accounts off
    """

    ws, me = workspace_and_actor(home, actor)
    governance.set_service_accounts(ws, me, state)  # checked (on/off) inside its audited block, so a typo is logged
    allowed = state == "on"
    return Result({"allow_service_accounts": allowed},
                  [Message(f"Service accounts {'allowed' if allowed else 'not allowed'}.")])
