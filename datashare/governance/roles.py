"""Roles in a workspace: who is acting, granting and revoking roles, service accounts.

Roles live in the workspace config and only a custodian changes them; the
actor that ran ``init`` is the first custodian. Every change writes its audit
entry before the config changes.
"""

from __future__ import annotations

from typing import Any

from datashare.audit.log import append, audited
from datashare.core.hints import did_you_mean
from datashare.errors import InputError, RefusedError
from datashare.permissions import CUSTODIAN, ROLES
from datashare.workspace import Workspace, os_user, resolve_actor


def workspace_actor(workspace: Workspace, requested: str | None) -> str:
    """The acting identity: the OS user, or a named service account where the config allows it.

    ``--actor``/``DATASHARE_ACTOR`` naming someone other than the OS user is
    accepted only when the workspace allows service accounts.
    """
    actor = resolve_actor(requested)
    if actor != os_user() and not workspace.config().get("allow_service_accounts", False):
        refusal = RefusedError(
            f"acting as {actor!r} is not allowed in this workspace (you are {os_user()!r})",
            hint="A custodian can allow named service accounts: datashare roles service-accounts on",
        )
        append(workspace, actor=os_user(), action="act_as", outcome="denied", target={"as": actor},
                     reason=refusal.message)
        raise refusal
    return actor


def grant(workspace: Workspace, actor: str, who: str, role: str) -> dict[str, list[str]]:
    """Give ``who`` a role. Custodians only; logged."""
    return _change_roles(workspace, actor, who, role, add=True)


def revoke(workspace: Workspace, actor: str, who: str, role: str) -> dict[str, list[str]]:
    """Take a role away. The last custodian cannot be removed. Custodians only; logged."""
    return _change_roles(workspace, actor, who, role, add=False)


def _change_roles(workspace: Workspace, actor: str, who: str, role: str, *, add: bool) -> dict[str, list[str]]:
    action = "roles.grant" if add else "roles.revoke"
    with audited(workspace, action, actor, subject=who, role=role) as record:
        if role not in ROLES:
            raise InputError(f"unknown role {role!r}{did_you_mean(role, ROLES, before=' (', after=')')}",
                             hint=f"Roles: {', '.join(ROLES)}.")
        resolve_actor(who)
        with workspace.lock():
            config = workspace.config()
            roles: dict[str, list[str]] = config.setdefault("roles", {})
            current = set(roles.get(who, []))
            if add:
                current.add(role)
            else:
                if role not in current:
                    raise InputError(f"{who} does not hold the {role} role",
                                     hint="`datashare roles list` shows who holds which role.")
                current.discard(role)
                custodians = [name for name, held in roles.items() if CUSTODIAN in held and name != who]
                if role == CUSTODIAN and not custodians:
                    raise RefusedError("cannot remove the last custodian of the workspace")
            if current:
                roles[who] = sorted(current)
            else:
                roles.pop(who, None)
            record.ok()  # the entry first: if it cannot be written, the roles stay as they were
            workspace.save_config(config)
        return dict(roles)


SWITCH_VALUES = {"on": True, "off": False}


def set_service_accounts(workspace: Workspace, actor: str, allowed: bool | str) -> None:
    """Allow or forbid ``--actor``/``DATASHARE_ACTOR`` naming someone other than the OS user.

    ``allowed`` is a bool, or ``"on"``/``"off"`` as typed on the command line
    (anything else is an error, logged like any other).
    """

    with audited(workspace, "roles.service_accounts", actor) as record:
        if isinstance(allowed, str):
            if allowed not in SWITCH_VALUES:
                raise InputError(f"service accounts can be turned on or off, not {allowed!r}",
                                 hint="datashare roles service-accounts on  (or off)")
            allowed = SWITCH_VALUES[allowed]
        with workspace.lock():
            config = workspace.config()
            config["allow_service_accounts"] = allowed
            record.ok(allowed=allowed)  # the entry first: if it cannot be written, the setting stays
            workspace.save_config(config)


def list_roles(workspace: Workspace, actor: str) -> dict[str, Any]:
    with audited(workspace, "roles.list", actor) as record:
        config = workspace.config()
        record.ok()
        return {"roles": config.get("roles", {}),
                "allow_service_accounts": bool(config.get("allow_service_accounts", False))}
