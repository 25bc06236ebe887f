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
# Every action an audit entry can name: the ones above and those anyone may do.
AUDITED_ACTIONS: tuple[str, ...] = tuple(sorted({*PERMISSIONS, "init", "act_as", "verify", "keys.show",
                                                 "keys.export_public"}))


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


def workspace_actor(workspace: Workspace, requested: str | None) -> str:
    """The acting identity: the OS user, or a named service account where the config allows it.

    ``--actor``/``DATASHARE_ACTOR`` naming someone other than the OS user is
    accepted only when the workspace allows service accounts.
    """
    actor = resolve_actor(requested)
    if actor != os_user() and not workspace.config().get("allow_service_accounts", False):
        from datashare import audit

        refusal = RefusedError(
            f"acting as {actor!r} is not allowed in this workspace (you are {os_user()!r})",
            hint="A custodian can allow named service accounts: datashare roles service-accounts on",
        )
        audit.append(workspace, actor=os_user(), action="act_as", outcome="denied", target={"as": actor},
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
    from datashare import audit

    with audit.audited(workspace, "roles.service_accounts", actor) as record:
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
    from datashare import audit

    with audit.audited(workspace, "roles.list", actor) as record:
        config = workspace.config()
        record.ok()
        return {"roles": config.get("roles", {}),
                "allow_service_accounts": bool(config.get("allow_service_accounts", False))}


# --- policy approvals ---------------------------------------------------------------------
APPROVALS_FILE = "approvals.json"


def _approvals_path(workspace: Workspace):  # noqa: ANN202
    return workspace.home / APPROVALS_FILE


def _read_approvals(workspace: Workspace) -> list[dict[str, Any]]:
    import json

    path = _approvals_path(workspace)
    if not path.exists():
        return []
    return json.loads(path.read_text(encoding="utf-8"))


def _write_approvals(workspace: Workspace, approvals: list[dict[str, Any]]) -> None:
    import json

    from datashare.fsutil import atomic_write_text

    atomic_write_text(_approvals_path(workspace), json.dumps(approvals, indent=2, ensure_ascii=False) + "\n")


def _approval_statement(approval: dict[str, Any]) -> bytes:
    import json

    body = {key: approval[key] for key in ("policy", "version", "sha256", "approved_by", "approved_at", "expires")}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def approve(workspace: Workspace, actor: str, policy_path, passphrase: str | None = None) -> dict[str, Any]:  # noqa: ANN001
    """Pin a policy file's SHA-256 as approved (custodians only); the approval is signed and logged."""
    from datashare import audit, signing
    from datashare.policy import load_policy, require_unexpired
    from datashare.workspace import utc_now

    with audit.audited(workspace, "policy.approve", actor, policy_file=str(policy_path)) as record:
        loaded = load_policy(policy_path)
        record.name_policy(loaded)
        require_unexpired(loaded)
        key, info = signing.load_private_key(workspace, passphrase if passphrase is not None
                                             else signing.read_passphrase(confirm=False))
        with workspace.lock():
            approvals = _read_approvals(workspace)
            for existing in approvals:
                if (existing["policy"], existing["version"]) == (loaded.name, loaded.version) and \
                        not existing.get("revoked"):
                    if existing["sha256"] == loaded.sha256:
                        record.ok(already=True)
                        return existing
                    raise RefusedError(
                        f"policy {loaded.name} v{loaded.version} is already approved with different content",
                        hint="Give the changed policy a new version number, or revoke the old approval first.")
            approval = {
                "policy": loaded.name, "version": loaded.version, "sha256": loaded.sha256,
                "approved_by": actor, "approved_at": utc_now(),
                "expires": loaded.policy.expires.isoformat() if loaded.policy.expires else None,
                "key_id": info.key_id, "revoked": None,
            }
            approval["signature"] = signing.sign_sshsig(_approval_statement(approval), key)
            receipt = record.ok(approved_by=actor, key_id=info.key_id)
            approval["audit_receipt"] = receipt.to_dict()
            approvals.append(approval)
            _write_approvals(workspace, approvals)
        return approval


def revoke_policy(workspace: Workspace, actor: str, name: str, version: int | None = None) -> list[dict[str, Any]]:
    """Revoke the approval of a policy (all versions, or one). Custodians only; logged."""
    from datashare import audit
    from datashare.workspace import utc_now

    with audit.audited(workspace, "policy.revoke", actor, policy=name, policy_version=version) as record, \
            workspace.lock():
        approvals = _read_approvals(workspace)
        hit = [a for a in approvals if a["policy"] == name and (version is None or a["version"] == version)
               and not a.get("revoked")]
        if not hit:
            raise InputError(f"no active approval for policy {name}" + (f" v{version}" if version else ""),
                             hint="`datashare policy list` shows the approved policies.")
        for approval in hit:
            approval["revoked"] = {"by": actor, "at": utc_now()}
        record.ok(versions=[a["version"] for a in hit])  # the entry first: if it cannot be written, nothing is revoked
        _write_approvals(workspace, approvals)
        return hit


def list_approvals(workspace: Workspace, actor: str) -> list[dict[str, Any]]:
    """Every approval, with its ``status`` today: active, expired or revoked."""
    from datashare import audit
    from datashare.policy import is_expired

    with audit.audited(workspace, "policy.list", actor) as record:
        approvals = _read_approvals(workspace)
        record.ok(count=len(approvals))
    revocations = _logged_revocations(workspace) if approvals else []
    for approval in approvals:  # a revocation in the log counts even where approvals.json was edited
        revoked = approval.get("revoked") or _revocation_of(revocations, approval)
        approval["status"] = ("revoked" if revoked else
                              "expired" if is_expired(approval.get("expires")) else "active")
    return approvals


_REVOKE_MARK = b'"action":"policy.revoke"'
_SCAN_BLOCK = 1 << 22


def _logged_revocations(workspace: Workspace) -> list[dict[str, Any]]:
    """Every ok ``policy.revoke`` entry of the log that completed, oldest first.

    The signed approval does not cover its revocation, so approvals.json alone
    could be edited to un-revoke a policy; the append-only log is the witness.
    Only lines holding the action's exact bytes are parsed, so this is a fast scan.
    """
    import json

    from datashare.audit import FAILED_AFTER

    revocations: list[dict[str, Any]] = []
    failed: set[int] = set()  # ok entries of revocations that did not complete (see audit.audited)
    rest = b""
    try:
        handle = workspace.audit_path.open("rb")
    except FileNotFoundError:
        return []
    with handle:
        while block := handle.read(_SCAN_BLOCK):
            data = rest + block
            cut = data.rfind(b"\n") + 1
            data, rest = data[:cut], data[cut:]
            pos = data.find(_REVOKE_MARK)
            while pos >= 0:
                start, end = data.rfind(b"\n", 0, pos) + 1, data.find(b"\n", pos)
                try:
                    entry = json.loads(data[start:end])
                except ValueError:
                    entry = {}
                details = entry.get("details") or {}
                if entry.get("outcome") == "error" and isinstance(details.get(FAILED_AFTER), int):
                    failed.add(details[FAILED_AFTER])
                elif (entry.get("action") == "policy.revoke" and entry.get("outcome") == "ok"
                        and isinstance(entry.get("seq"), int)):
                    revocations.append(entry)
                pos = data.find(_REVOKE_MARK, end)
    return [entry for entry in revocations if entry["seq"] not in failed]


def _revocation_of(revocations: list[dict[str, Any]], approval: dict[str, Any]) -> dict[str, Any] | None:
    """The latest of ``revocations`` that revokes ``approval`` (a later entry than the approval's), if any."""
    after = int((approval.get("audit_receipt") or {}).get("seq", 0))
    return next((entry for entry in reversed(revocations)
                 if (entry.get("target") or {}).get("policy") == approval["policy"]
                 and approval["version"] in ((entry.get("details") or {}).get("versions") or [])
                 and entry["seq"] > after), None)


def require_approved(workspace: Workspace, loaded) -> dict[str, Any]:  # noqa: ANN001 - a LoadedPolicy
    """The approval that allows this exact policy file, or :class:`RefusedError` saying why not."""
    from datashare import signing
    from datashare.errors import VerificationError

    matching = [a for a in _read_approvals(workspace) if (a["policy"], a["version"]) == (loaded.name, loaded.version)]
    if not matching:
        raise RefusedError(f"policy {loaded.name} v{loaded.version} is not approved in this workspace",
                           hint=f"A custodian approves it: datashare policy approve {loaded.path}")
    active = [a for a in matching if not a.get("revoked")]
    if not active:
        raise RefusedError(f"policy {loaded.name} v{loaded.version} was revoked on {matching[-1]['revoked']['at']}")
    approval = active[-1]
    revoked = _revocation_of(_logged_revocations(workspace), approval)
    if revoked is not None:
        raise RefusedError(
            f"policy {loaded.name} v{loaded.version} was revoked on {revoked.get('time')} (audit entry "
            f"{revoked.get('seq')}), but {APPROVALS_FILE} no longer says so: it was edited",
            hint="A custodian approves the policy again if it is to be used.")
    if approval["sha256"] != loaded.sha256:
        raise RefusedError(
            f"{loaded.path} no longer matches the approved policy {loaded.name} v{loaded.version} "
            "(its SHA-256 changed since approval)",
            hint="Restore the approved file, or have a custodian approve the new version.")
    try:
        signing.verify_sshsig(_approval_statement(approval), approval["signature"], signing.load_public_keys(workspace))
    except (VerificationError, KeyError) as exc:
        raise RefusedError(f"the approval of {loaded.name} v{loaded.version} does not verify: {exc}") from exc
    return {key: approval[key] for key in ("approved_by", "approved_at", "sha256", "key_id", "audit_receipt")}
