"""Policy approvals: a custodian pins a policy file's SHA-256, signs the approval and logs it; revocations.

An export runs only under an approval that is active, unrevoked in the log,
signed by a workspace key and still matching the file's content.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datashare import signing
from datashare.audit.log import FAILED_AFTER, audited
from datashare.catalog.store import resolve
from datashare.core.fs import atomic_write_text
from datashare.errors import InputError, RefusedError, VerificationError
from datashare.policy.model import LoadedPolicy, is_expired, load_policy, require_classification, require_unexpired
from datashare.signing.keystore import load_private_key, load_public_keys, read_passphrase
from datashare.workspace import APPROVALS_FILE, FILE_MODE, Workspace, utc_now

# --- policy approvals ---------------------------------------------------------------------


def _approvals_path(workspace: Workspace) -> Path:
    return workspace.home / APPROVALS_FILE


def _read_approvals(workspace: Workspace) -> list[dict[str, Any]]:
    path = _approvals_path(workspace)
    if not path.exists():
        return []
    return json.loads(path.read_text(encoding="utf-8"))


def _write_approvals(workspace: Workspace, approvals: list[dict[str, Any]]) -> None:
    atomic_write_text(_approvals_path(workspace), json.dumps(approvals, indent=2, ensure_ascii=False) + "\n",
                      mode=FILE_MODE)


def _approval_statement(approval: dict[str, Any]) -> bytes:
    body = {key: approval[key] for key in ("policy", "version", "sha256", "approved_by", "approved_at", "expires")}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def approve(workspace: Workspace, actor: str, policy_path: Path, passphrase: str | None = None) -> dict[str, Any]:
    """Pin a policy file's SHA-256 as approved (custodians only); the approval is signed and logged."""

    with audited(workspace, "policy.approve", actor, policy_file=str(policy_path)) as record:
        loaded = load_policy(policy_path)
        record.name_policy(loaded)
        require_unexpired(loaded)
        _require_classification_everywhere(workspace, loaded)
        key, info = load_private_key(workspace, passphrase if passphrase is not None
                                             else read_passphrase(confirm=False))
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
            approval["signature"] = signing.sign(_approval_statement(approval), key)
            receipt = record.ok(approved_by=actor, key_id=info.key_id)
            approval["audit_receipt"] = receipt.to_dict()
            approvals.append(approval)
            _write_approvals(workspace, approvals)
        return approval


def _require_classification_everywhere(workspace: Workspace, loaded: LoadedPolicy) -> None:
    """Refuse (exit 3) a policy that releases what the catalog's classes forbid in any dataset it applies to.

    A dataset named in ``applies_to`` that is not registered yet is checked at export time.
    """
    with workspace.connect(read_only=True) as con:
        for name in loaded.policy.applies_to:
            try:
                dataset = resolve(con, name)
            except InputError:  # not registered (or not a dataset name): nothing to check against yet
                continue
            require_classification(loaded, {column.name: column.cls for column in dataset.columns}, name)


def revoke_policy(workspace: Workspace, actor: str, name: str, version: int | None = None) -> list[dict[str, Any]]:
    """Revoke the approval of a policy (all versions, or one). Custodians only; logged."""

    with audited(workspace, "policy.revoke", actor, policy=name, policy_version=version) as record, \
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

    with audited(workspace, "policy.list", actor) as record:
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


def require_approved(workspace: Workspace, loaded: LoadedPolicy) -> dict[str, Any]:
    """The approval that allows this exact policy file, or :class:`RefusedError` saying why not."""

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
        signing.verify(_approval_statement(approval), approval["signature"], load_public_keys(workspace))
    except (VerificationError, KeyError) as exc:
        raise RefusedError(f"the approval of {loaded.name} v{loaded.version} does not verify: {exc}") from exc
    return {key: approval[key] for key in ("approved_by", "approved_at", "sha256", "key_id", "audit_receipt")}
