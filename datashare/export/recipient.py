"""Verifying an export directory the way a recipient (or the custodian) would.

Keys come from ``--pubkey`` or ``--allowed-signers``, else from the workspace.
Where the workspace is at hand, the export's audit receipt must also be in
its log, and the verification itself is logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datashare.audit.log import audited
from datashare.audit.query import scan_entries
from datashare.core.progress import SILENT, Progress
from datashare.errors import InputError, UsageError, VerificationError
from datashare.export.bundle import AuditCheck, VerifyReport, verify_export
from datashare.export.digest import compare_content
from datashare.governance.roles import workspace_actor
from datashare.signing import KeyInfo, keys_from_file
from datashare.signing.keystore import load_public_keys
from datashare.workspace import Workspace, is_initialised, resolve_home

FOUND = "audit receipt found in the workspace's log"
RELEASES = ("export", "synthesize")  # the actions whose entries vouch for a signed folder


def receipt_checker(audit_path: Path, own_key_ids: set[str]) -> AuditCheck:
    """A check that the receipt's entry is in the log with the receipt's hash, and vouches for this content.

    The export's entry records the SHA-256 of the manifest's content
    (``manifest_sha256``): an export forged with the workspace key but
    keeping a real export's receipt names an entry that vouches for other
    content. Only exports signed by one of this workspace's keys (current or
    rotated) have their receipt in this log; another custodian's export is
    not looked for here, and the report says so.
    """

    def check(receipt: dict[str, Any] | None, signer_key_id: str, content_sha256: str) -> list[str]:
        if signer_key_id not in own_key_ids:
            return ["audit receipt not checked: the export was signed by another workspace's key"]
        if not isinstance(receipt, dict) or not isinstance(receipt.get("seq"), int) \
                or not isinstance(receipt.get("hash"), str):
            raise VerificationError("receipt not in log: the manifest has no audit receipt")
        entry = _logged_entry(audit_path, receipt["seq"], receipt["hash"])
        if entry is None:
            raise VerificationError(f"receipt not in log: entry {receipt['seq']} with that hash is not in this "
                                    "workspace's audit log")
        if entry.get("action") not in RELEASES or entry.get("outcome") != "ok":
            raise VerificationError(f"receipt does not match: entry {receipt['seq']} is not an export")
        recorded = (entry.get("details") or {}).get("manifest_sha256")
        if recorded is None:
            return [FOUND, "content not compared with the receipt: an export made before 2026-11-30, whose entry "
                           "records no content hash"]
        if recorded != content_sha256:
            raise VerificationError(f"receipt does not match: entry {receipt['seq']} records an export with "
                                    "other content than this manifest's")
        return [FOUND, "the receipt's entry records this manifest's content (SHA-256)"]

    return check


def _logged_entry(audit_path: Path, seq: int, digest: str) -> dict[str, Any] | None:
    """The log's entry ``seq`` if its hash is ``digest``."""
    entry = next(scan_entries(audit_path, seqs=[seq]), None)
    return entry if entry is not None and entry.get("hash") == digest else None


def verify_directory(directory: Path, *, pubkey: Path | None = None, allowed_signers: Path | None = None,
                     home: Path | None = None, actor: str | None = None,
                     principal: str | None = None, same_content: Path | None = None,
                     recipient: str | None = None, progress: Progress = SILENT) -> dict[str, Any]:
    """Verify an export (see :func:`verify_export`); with ``same_content``, verify that other export with the
    same keys too and check the two hold the same rows (a DuckDB and a Spark export of one policy, say). With
    ``recipient``, the export must have been made for that recipient: one key signs every export, so a genuine
    export sent to the wrong recipient verifies otherwise."""

    if pubkey is not None and allowed_signers is not None:
        raise UsageError("give --pubkey or --allowed-signers, not both")
    if principal is not None and allowed_signers is None:
        raise UsageError("--principal applies to --allowed-signers only")

    def given_keys() -> list[KeyInfo] | None:
        if pubkey is not None:
            return keys_from_file(pubkey)
        if allowed_signers is None:
            return None
        return keys_from_file(allowed_signers, allowed_signers=True, principal=principal)

    path = resolve_home(home)
    if not is_initialised(path):
        explicit = given_keys()
        if explicit is None:
            raise InputError("no key to verify with: give --pubkey or --allowed-signers (no workspace here)")
        report = _with_other(verify_export(directory, explicit, progress=progress), explicit, same_content)
        return _for_recipient(report, recipient).to_dict()
    ws = Workspace(path)
    who = workspace_actor(ws, actor)
    with audited(ws, "verify", who, output=str(Path(directory).absolute())) as record:
        explicit = given_keys()  # inside the block: an unreadable key file is logged like any failure
        own = load_public_keys(ws)
        checker = receipt_checker(ws.audit_path, {key.key_id for key in own})
        report = verify_export(directory, explicit if explicit is not None else own, audit_check=checker,
                               progress=progress)
        report = _with_other(report, explicit if explicit is not None else own, same_content)
        record.target["dataset"] = (report.manifest.get("dataset") or {}).get("name")
        report = _for_recipient(report, recipient)
        record.ok(signer=report.signer)
    return report.to_dict()


def _for_recipient(report: VerifyReport, recipient: str | None) -> VerifyReport:
    """``report``, with the check that its export was made for ``recipient`` (when one is given)."""
    if recipient is None:
        return report
    made_for = report.manifest.get("recipient")
    if made_for != recipient:
        raise VerificationError(f"made for another recipient: the manifest names {made_for!r}, not {recipient!r}")
    report.checks.append(f"made for recipient {recipient}")
    return report


def _with_other(report: VerifyReport, keys: list[KeyInfo], other: Path | None) -> VerifyReport:
    """``report`` with the check that ``other`` (verified with ``keys``) holds the same content."""
    if other is None:
        return report
    theirs = verify_export(Path(other), keys)
    report.checks.append(f"{other}: signature by {theirs.signer}, files match its manifest")
    report.checks.append(compare_content(Path(report.directory), report.manifest, Path(other), theirs.manifest))
    return report
