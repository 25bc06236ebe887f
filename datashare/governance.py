"""Governance: who may do what in a workspace, and which policies are approved.

Roles live in the workspace config and only a custodian changes them; the
actor that ran ``init`` is the first custodian. On one machine roles are an
accountability boundary, not a security boundary against root: what makes
tampering evident is the signed, hash-chained audit log.
"""

from __future__ import annotations

from typing import Any

from datashare.errors import InputError, RefusedError
from datashare.workspace import Workspace, os_user, resolve_actor

CUSTODIAN = "custodian"
ANALYST = "analyst"
AUDITOR = "auditor"
ROLES = (CUSTODIAN, ANALYST, AUDITOR)

# Which roles may perform each audited action. Actions not listed need no role
# (verifying an export, showing public keys): anyone may check a signature.
PERMISSIONS: dict[str, frozenset[str]] = {
    **{action: frozenset({CUSTODIAN}) for action in (
        "register", "classify", "policy.approve", "policy.revoke", "roles.grant", "roles.revoke",
        "roles.service_accounts", "keys.generate", "keys.rotate",
    )},
    **{action: frozenset({CUSTODIAN, ANALYST}) for action in (
        "export", "risk", "policy.check", "policy.explain", "datasets", "show",
    )},
    **{action: frozenset({CUSTODIAN, AUDITOR}) for action in (
        "audit.read", "audit.verify", "audit.head", "audit.summary",
    )},
    **{action: frozenset({CUSTODIAN, ANALYST, AUDITOR}) for action in ("policy.list", "roles.list")},
}


def roles_of(workspace: Workspace, actor: str) -> list[str]:
    """The roles an actor holds in this workspace."""
    return list(workspace.config().get("roles", {}).get(actor, []))


def authorize(workspace: Workspace, actor: str, action: str) -> None:
    """Raise :class:`RefusedError` unless ``actor`` holds a role allowed to do ``action``."""
    allowed = PERMISSIONS.get(action)
    if allowed is None:
        return
    held = set(roles_of(workspace, actor))
    if held & allowed:
        return
    need = " or ".join(sorted(allowed))
    raise RefusedError(
        f"{actor} may not {action.replace('.', ' ')}: it needs the {need} role",
        hint=f"A custodian can grant it: datashare roles grant {actor} {sorted(allowed)[0]}",
    )


def workspace_actor(workspace: Workspace, requested: str | None) -> str:
    """The acting identity: the OS user, or a named service account where the config allows it.

    ``--actor``/``DATASHARE_ACTOR`` naming someone other than the OS user is
    accepted only when the workspace allows service accounts.
    """
    actor = resolve_actor(requested)
    if actor != os_user() and not workspace.config().get("allow_service_accounts", False):
        raise RefusedError(
            f"acting as {actor!r} is not allowed in this workspace (you are {os_user()!r})",
            hint="A custodian can allow named service accounts: datashare roles service-accounts on",
        )
    return actor


def grant(workspace: Workspace, actor: str, who: str, role: str) -> dict[str, list[str]]:
    """Give ``who`` a role. Custodians only; logged."""
    return _change_roles(workspace, actor, who, role, add=True)


def revoke(workspace: Workspace, actor: str, who: str, role: str) -> dict[str, list[str]]:
    """Take a role away. The last custodian cannot be removed. Custodians only; logged."""
    return _change_roles(workspace, actor, who, role, add=False)


def _change_roles(workspace: Workspace, actor: str, who: str, role: str, *, add: bool) -> dict[str, list[str]]:
    from datashare import audit

    action = "roles.grant" if add else "roles.revoke"
    with audit.audited(workspace, action, actor, subject=who, role=role) as record:
        if role not in ROLES:
            from difflib import get_close_matches

            close = get_close_matches(role, ROLES, n=1)
            raise InputError(f"unknown role {role!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
                             hint=f"Roles: {', '.join(ROLES)}.")
        resolve_actor(who)
        with workspace.lock():
            config = workspace.config()
            roles: dict[str, list[str]] = config.setdefault("roles", {})
            current = set(roles.get(who, []))
            if add:
                current.add(role)
            else:
                current.discard(role)
                custodians = [name for name, held in roles.items() if CUSTODIAN in held and name != who]
                if role == CUSTODIAN and not custodians:
                    raise RefusedError("cannot remove the last custodian of the workspace")
            if current:
                roles[who] = sorted(current)
            else:
                roles.pop(who, None)
            workspace.save_config(config)
            record.ok()
        return dict(roles)


def set_service_accounts(workspace: Workspace, actor: str, allowed: bool) -> None:
    """Allow or forbid ``--actor``/``DATASHARE_ACTOR`` naming someone other than the OS user."""
    from datashare import audit

    with audit.audited(workspace, "roles.service_accounts", actor) as record, workspace.lock():
        config = workspace.config()
        config["allow_service_accounts"] = allowed
        workspace.save_config(config)
        record.ok(allowed=allowed)


def list_roles(workspace: Workspace, actor: str) -> dict[str, Any]:
    from datashare import audit

    with audit.audited(workspace, "roles.list", actor) as record:
        config = workspace.config()
        record.ok()
        return {"roles": config.get("roles", {}),
                "allow_service_accounts": bool(config.get("allow_service_accounts", False))}
