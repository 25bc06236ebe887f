"""Who may do what: the roles, the permission each audited action needs, and :func:`authorize`.

On one machine roles are an accountability boundary, not a security boundary
against root: what makes tampering evident is the signed, hash-chained audit log.
"""

from __future__ import annotations

from datashare.errors import RefusedError
from datashare.workspace import Workspace

CUSTODIAN = "custodian"


ANALYST = "analyst"


AUDITOR = "auditor"


ROLES = (CUSTODIAN, ANALYST, AUDITOR)


# Which roles may perform each audited action. Actions not listed need no role
# (verifying an export, showing public keys): anyone may check a signature.
PERMISSIONS: dict[str, frozenset[str]] = {
    **{action: frozenset({CUSTODIAN}) for action in (
        "register", "classify", "policy.suggest", "policy.approve", "policy.revoke", "roles.grant", "roles.revoke",
        "roles.service_accounts", "keys.generate", "keys.rotate", "purge",
    )},
    **{action: frozenset({CUSTODIAN, ANALYST}) for action in (
        "export", "export.preview", "synthesize", "risk", "report.risk", "policy.check", "policy.explain", "datasets",
        "show",
    )},
    **{action: frozenset({CUSTODIAN, AUDITOR}) for action in (
        "audit.read", "audit.verify", "audit.head", "audit.summary", "exports", "report.audit",
    )},
    **{action: frozenset({CUSTODIAN, ANALYST, AUDITOR}) for action in (
        "policy.list", "roles.list", "releases", "doctor", "policy.show", "policy.diff",
    )},
}


# Every action an audit entry can name: the ones above and those anyone may do.
AUDITED_ACTIONS: tuple[str, ...] = tuple(sorted({*PERMISSIONS, "init", "act_as", "verify", "keys.show",
                                                 "keys.export_public", "secret.migrate"}))


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
        f"{actor} may not run `{_command_of(action)}`: it needs the {need} role",
        hint=f"A custodian can grant it: datashare roles grant {actor} {sorted(allowed)[0]}",
    )


def _command_of(action: str) -> str:
    """The command a person typed for an audited action (``roles.service_accounts`` → ``roles service-accounts``)."""
    return "audit" if action == "audit.read" else action.replace(".", " ").replace("_", "-")
