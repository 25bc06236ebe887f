"""Policy approvals: a custodian pins a policy file's SHA-256, signs the approval and logs it; revocations.

An export runs only under an approval that is active, unrevoked in the log,
signed by a workspace key and still matching the file's content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datashare import signing
from datashare.audit.commands import verify_log
from datashare.audit.log import audited
from datashare.audit.query import scan_entries
from datashare.audit.verify import Receipt
from datashare.catalog.store import resolve
from datashare.core.fs import atomic_write_text
from datashare.core.hints import did_you_mean
from datashare.errors import InputError, PolicyError, RefusedError, VerificationError
from datashare.governance.textstore import store_text
from datashare.policy.fit import require_classification, require_valid_for
from datashare.policy.model import LoadedPolicy, load_policy
from datashare.policy.use import is_expired, require_unexpired
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


_LEGACY_STATEMENT_KEYS = ("policy", "version", "sha256", "approved_by", "approved_at", "expires")


def _approval_statement(approval: dict[str, Any]) -> bytes:
    """What an approval's signature covers: the pinned policy, who, when, the key, and the audit receipt.

    The receipt is inside the statement so that no edit of approvals.json can
    move the approval after its revocation in the log: the entry is written
    first, then the statement naming it is signed.
    """
    body = {key: approval[key] for key in (*_LEGACY_STATEMENT_KEYS, "key_id", "audit_receipt")}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _legacy_statement(approval: dict[str, Any]) -> bytes:
    """The statement approvals made before 2026-11-30 signed: without the key and the audit receipt."""
    body = {key: approval[key] for key in _LEGACY_STATEMENT_KEYS}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def approve(workspace: Workspace, actor: str, policy_path: Path, passphrase: str | None = None) -> dict[str, Any]:
    """Pin a policy file's SHA-256 as approved (custodians only); the approval is signed and logged."""

    with audited(workspace, "policy.approve", actor, policy_file=str(policy_path)) as record:
        loaded = load_policy(policy_path)
        record.name_policy(loaded)
        require_unexpired(loaded)
        require_fit_everywhere(workspace, loaded)
        key, info = load_private_key(workspace, passphrase if passphrase is not None
                                             else read_passphrase(confirm=False))
        with workspace.lock():
            approvals = _read_approvals(workspace)
            standing = _standing_approvals(workspace, [a for a in approvals if not a.get("revoked") and
                                                      (a["policy"], a["version"]) == (loaded.name, loaded.version)])
            # The exact text approved is kept (by its SHA-256) before the entry, so no logged approval lacks it.
            store_text(workspace, loaded.sha256, loaded.source)
            for existing in standing:
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
            # The entry first, then the signature over a statement that names it (see _approval_statement).
            receipt = record.ok(approved_by=actor, key_id=info.key_id)
            approval["audit_receipt"] = receipt.to_dict()
            approval["signature"] = signing.sign(_approval_statement(approval), key)
            approvals.append(approval)
            _write_approvals(workspace, approvals)
        return approval


def require_fit_everywhere(workspace: Workspace, loaded: LoadedPolicy) -> list[str]:
    """Refuse a policy that does not fit a dataset it applies to (a column it lacks, a transform of the wrong
    type: :class:`PolicyError`, every problem listed), or (exit 3) that releases what the catalog's classes
    forbid there: an approval is signed and stays, and one no export could use would stand for nothing.

    A dataset named in ``applies_to`` that is not registered yet is checked at export time. A policy with a
    ``synthetic:`` section, which synthesis uses without releasing a real row, is not held to the classes.
    Returns the names of the datasets it was checked against.
    """
    with workspace.connect(read_only=True) as con:
        datasets = []
        for name in loaded.policy.applies_to:
            try:
                datasets.append(resolve(con, name, purged_ok=True))  # the columns are kept when rows are purged
            except InputError:  # not registered (or not a dataset name): nothing to check against yet
                continue
    misfits: list[PolicyError] = []
    for dataset in datasets:  # every dataset's problems, in one message
        try:
            require_valid_for(loaded, dataset.types, dataset.name)
        except PolicyError as exc:
            misfits.append(exc)
    if misfits:
        raise PolicyError("\n".join(exc.message for exc in misfits),
                          problems=[p for exc in misfits for p in exc.problems],
                          located=[p for exc in misfits for p in exc.located])
    if loaded.policy.synthetic is None:
        for dataset in datasets:
            require_classification(loaded, dataset.classes, dataset.name, dataset.free_text_columns)
    return [dataset.name for dataset in datasets]


def revoke_policy(workspace: Workspace, actor: str, name: str, version: int | None = None) -> list[dict[str, Any]]:
    """Revoke the approval of a policy (all versions, or one). Custodians only; logged.

    The entry names each revoked approval by its audit receipt's hash, so the
    log says which approval a revocation ended, whatever approvals.json says later.
    """

    with audited(workspace, "policy.revoke", actor, policy=name, policy_version=version) as record, \
            workspace.lock():
        approvals = _read_approvals(workspace)
        # What is active is decided by the log, not by approvals.json's ``revoked`` field (anyone who can write
        # the workspace can set it, and a revocation that was never logged would be undone by clearing it).
        keys, revocations = load_public_keys(workspace), _scan_log(workspace, set()).revocations
        hit = [a for a in approvals if a["policy"] == name and (version is None or a["version"] == version)
               and _revocation_of(revocations, a, _signed_receipt(a, keys)) is None]
        if not hit:
            raise InputError(f"no active approval for policy {name}" + (f" v{version}" if version else ""),
                             hint="`datashare policy list` shows the approved policies.")
        for approval in hit:
            approval["revoked"] = approval.get("revoked") or {"by": actor, "at": utc_now()}
        record.ok(versions=[a["version"] for a in hit],  # the entry first: if it cannot be written, nothing is revoked
                  approvals=[_receipt_hash(a) for a in hit if _receipt_hash(a)])
        _write_approvals(workspace, approvals)
        return hit


def list_approvals(workspace: Workspace, actor: str) -> list[dict[str, Any]]:
    """Every approval, with its ``status`` today: active, expired or revoked."""

    with audited(workspace, "policy.list", actor) as record:
        approvals = _read_approvals(workspace)
        record.ok(count=len(approvals))
    return approvals_with_status(workspace, approvals)


def approvals_with_status(workspace: Workspace, approvals: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The approvals (all of the workspace's by default), each with its ``status`` today: active, expired or
    revoked. Not logged: the caller's own entry says what it read."""
    approvals = _read_approvals(workspace) if approvals is None else approvals
    if not approvals:
        return approvals
    keys = load_public_keys(workspace)
    revocations = _scan_log(workspace, set()).revocations
    for approval in approvals:  # a revocation in the log counts even where approvals.json was edited
        revoked = approval.get("revoked") or _revocation_of(revocations, approval, _signed_receipt(approval, keys))
        approval["status"] = ("revoked" if revoked else
                              "expired" if is_expired(approval.get("expires")) else "active")
    return approvals


def find_approval(workspace: Workspace, name: str, version: int | None = None) -> dict[str, Any]:
    """The latest approval of policy ``name`` (of ``version``, else of its highest version), whatever its status."""
    approvals = _read_approvals(workspace)
    mine = [a for a in approvals if a.get("policy") == name and isinstance(a.get("version"), int)]
    if not mine:
        hint = did_you_mean(name, sorted({str(a.get("policy")) for a in approvals}), before=" (", after=")")
        raise InputError(f"no approved policy is named {name!r}{hint}",
                         hint="`datashare policy list` shows the approved policies.")
    versions = sorted({a["version"] for a in mine})
    wanted = version if version is not None else versions[-1]
    matching = [a for a in mine if a["version"] == wanted]
    if not matching:
        raise InputError(f"policy {name} has no approved version {version} (approved: "
                         f"{', '.join(f'v{v}' for v in versions)})")
    return matching[-1]


def verify_approval(approval: dict[str, Any], keys: list) -> None:
    """Raise :class:`VerificationError` unless the approval's signature (current or legacy statement) verifies."""
    if _signed_receipt(approval, keys) is not None:
        return
    try:
        signing.verify(_legacy_statement(approval), approval["signature"], keys)
    except (VerificationError, KeyError, TypeError) as exc:
        raise VerificationError(f"the approval of {approval.get('policy')} v{approval.get('version')} does not "
                                f"verify ({APPROVALS_FILE} was edited?)") from exc


def signed_receipts(workspace: Workspace) -> list[Receipt]:
    """The log entries the workspace's approvals name, ``(seq, hash, what)``, each from an approval whose signature
    covers its receipt (an edited approval's is not trusted, and `policy list` flags it). An approvals file that
    cannot be read is an error: the log cannot be checked against it."""
    try:
        approvals = _read_approvals(workspace)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {APPROVALS_FILE}: the log cannot be checked against the approvals' receipts"
                         ) from exc
    if not isinstance(approvals, list) or not approvals:
        return []
    keys = load_public_keys(workspace)
    receipts = []
    for approval in approvals:
        receipt = _signed_receipt(approval, keys) if isinstance(approval, dict) else None
        if receipt is not None:
            receipts.append((receipt["seq"], receipt["hash"], f"the approval of {approval.get('policy')} "
                                                               f"v{approval.get('version')} in {APPROVALS_FILE}"))
    return receipts


def verify_audit_log(workspace: Workspace, actor: str, head_path: Path | None = None) -> dict[str, Any]:
    """``audit verify``: the chain, the head if given, and the entries the approvals name (:func:`signed_receipts`)."""
    return verify_log(workspace, actor, head_path, receipts=lambda: signed_receipts(workspace))


def _receipt_hash(approval: dict[str, Any]) -> str | None:
    receipt = approval.get("audit_receipt")
    return receipt.get("hash") if isinstance(receipt, dict) and isinstance(receipt.get("hash"), str) else None


def _signed_receipt(approval: dict[str, Any], keys: list) -> dict[str, Any] | None:
    """The approval's audit receipt if its signature covers it (an approval made since 2026-11-30), else None."""
    receipt = approval.get("audit_receipt")
    if not (isinstance(receipt, dict) and isinstance(receipt.get("seq"), int) and _receipt_hash(approval)):
        return None
    try:
        signing.verify(_approval_statement(approval), approval["signature"], keys)
    except (VerificationError, KeyError, TypeError):
        return None
    return receipt


def _verified_receipt(approval: dict[str, Any], keys: list) -> dict[str, Any] | None:
    """The signed receipt of ``approval``; None for a legacy approval whose old statement verifies; else refused.

    A legacy approval's receipt is not covered by its signature, so nothing in
    it can be trusted: every logged revocation of its policy and version counts.
    """
    receipt = _signed_receipt(approval, keys)
    if receipt is not None:
        return receipt
    try:
        signing.verify(_legacy_statement(approval), approval["signature"], keys)
    except (VerificationError, KeyError, TypeError) as exc:
        reason = exc.message if isinstance(exc, VerificationError) else "it is incomplete"
        raise RefusedError(f"the approval of {approval.get('policy')} v{approval.get('version')} does not verify: "
                           f"{reason} ({APPROVALS_FILE} was edited?)",
                           hint="A custodian approves the policy again if it is to be used.") from exc
    return None


@dataclass
class _LogView:
    """What the audit log says about approvals: completed revocations, and the entries looked up by seq."""

    revocations: list[dict[str, Any]] = field(default_factory=list)
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)


def _scan_log(workspace: Workspace, seqs: set[int]) -> _LogView:
    """One pass over the log: every ok ``policy.revoke`` entry, and the entries numbered ``seqs``.

    Fail closed: a logged ok revocation revokes, whatever ``failed_after`` error
    entry follows it (a revocation whose approvals.json write failed is still a
    revocation, and anyone who can write the workspace can append a chain-valid
    error entry).
    """

    view = _LogView()
    for entry in scan_entries(workspace.audit_path, seqs=seqs, actions=[_REVOKE]):
        seq = entry.get("seq")
        if seq in seqs and seq not in view.entries:
            view.entries[seq] = entry
        if entry.get("action") == _REVOKE and entry.get("outcome") == "ok" and isinstance(seq, int):
            view.revocations.append(entry)
    return view


_REVOKE = "policy.revoke"


def _revocation_of(revocations: list[dict[str, Any]], approval: dict[str, Any],
                   receipt: dict[str, Any] | None) -> dict[str, Any] | None:
    """The latest of ``revocations`` that revokes ``approval``, if any.

    With a signed ``receipt``: a revocation naming the approval's receipt hash,
    or of its policy and version written after it. Without (a legacy approval):
    any revocation of its policy and version.
    """
    def revokes(entry: dict[str, Any]) -> bool:
        details = entry.get("details") or {}
        if receipt is not None and receipt["hash"] in (details.get("approvals") or []):
            return True
        return ((entry.get("target") or {}).get("policy") == approval["policy"]
                and approval["version"] in (details.get("versions") or [])
                and (receipt is None or entry["seq"] > receipt["seq"]))

    return next((entry for entry in reversed(revocations) if revokes(entry)), None)


def _standing_approvals(workspace: Workspace, candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of ``candidates`` (unrevoked in approvals.json), those whose signature verifies and the log does not revoke."""
    if not candidates:
        return []
    keys = load_public_keys(workspace)
    revocations = _scan_log(workspace, set()).revocations
    standing = []
    for approval in candidates:
        try:
            receipt = _verified_receipt(approval, keys)
        except RefusedError:
            continue
        if _revocation_of(revocations, approval, receipt) is None:
            standing.append(approval)
    return standing


def require_approved(workspace: Workspace, loaded: LoadedPolicy) -> dict[str, Any]:
    """The approval that allows this exact policy file, or :class:`RefusedError` saying why not.

    The approval's signature must verify; its own entry must be in the log
    (approvals since 2026-11-30, whose signature covers the entry); and no
    logged revocation may end it, whatever approvals.json says.
    """

    require_unexpired(loaded)  # an expired policy is refused whoever asks, whatever its approval says
    matching = [a for a in _read_approvals(workspace) if (a["policy"], a["version"]) == (loaded.name, loaded.version)]
    if not matching:
        raise RefusedError(f"policy {loaded.name} v{loaded.version} is not approved in this workspace",
                           hint=f"A custodian approves it: datashare policy approve {loaded.path}")
    active = [a for a in matching if not a.get("revoked")]
    if not active:
        raise RefusedError(f"policy {loaded.name} v{loaded.version} was revoked on {matching[-1]['revoked']['at']}")
    approval = active[-1]
    receipt = _verified_receipt(approval, load_public_keys(workspace))
    log = _scan_log(workspace, {receipt["seq"]} if receipt else set())
    if receipt is not None:
        entry = log.entries.get(receipt["seq"], {})
        target = entry.get("target") or {}
        if (entry.get("hash"), entry.get("action"), entry.get("outcome")) != (receipt["hash"], "policy.approve", "ok") \
                or (target.get("policy"), target.get("policy_version"), target.get("policy_sha256")) != \
                (approval["policy"], approval["version"], approval["sha256"]):
            raise RefusedError(
                f"the approval of {loaded.name} v{loaded.version} names audit entry {receipt['seq']}, which is not "
                "its approval in this workspace's log",
                hint="A custodian approves the policy again if it is to be used.")
    revoked = _revocation_of(log.revocations, approval, receipt)
    if revoked is not None:
        legacy = "" if receipt is not None else (
            " (an approval made before 2026-11-30, whose signature does not cover its audit entry: any logged "
            "revocation of its version ends it)")
        raise RefusedError(
            f"policy {loaded.name} v{loaded.version} was revoked on {revoked.get('time')} (audit entry "
            f"{revoked.get('seq')}), but {APPROVALS_FILE} no longer says so: it was edited{legacy}",
            hint="A custodian approves the policy again if it is to be used.")
    if approval["sha256"] != loaded.sha256:
        raise RefusedError(
            f"{loaded.path} no longer matches the approved policy {loaded.name} v{loaded.version} "
            "(its SHA-256 changed since approval)",
            hint="Restore the approved file, or have a custodian approve the new version.")
    return {key: approval[key] for key in ("approved_by", "approved_at", "sha256", "key_id", "audit_receipt")}
