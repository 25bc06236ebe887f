"""Audit operations as an auditor runs them: each reading of the log is itself logged.

The result is computed first and the ``audit.*`` entry appended after, so that
a verification reports on the log as it was when the auditor asked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from datashare import signing
from datashare.audit.log import audited
from datashare.audit.query import AuditFilter, list_entries, summarise
from datashare.audit.verify import (
    ChainReport,
    Receipt,
    check_extends,
    check_receipts,
    head_body,
    head_signing_bytes,
    verify_chain,
)
from datashare.errors import InputError, VerificationError
from datashare.signing.keystore import has_key, load_private_key, load_public_keys, read_passphrase
from datashare.workspace import Workspace, utc_now


def read_log(workspace: Workspace, actor: str, where: AuditFilter) -> list[dict[str, Any]]:
    """Entries matching ``where``."""
    with audited(workspace, "audit.read", actor, dataset=where.dataset) as record:
        entries = list_entries(workspace.audit_path, where)
        record.ok(filters={k: v for k, v in vars(where).items() if v}, matched=len(entries))
    return entries


def summary(workspace: Workspace, actor: str) -> list[dict[str, Any]]:
    """Per-dataset access summary; names that are not datasets (failed or refused attempts) are marked apart."""
    with audited(workspace, "audit.summary", actor) as record:
        rows = summarise(workspace.audit_path)
        datasets = sum(1 for row in rows if row["is_dataset"])
        record.ok(datasets=datasets, other_names=len(rows) - datasets)
    return rows


def _load_head(path: Path) -> dict[str, Any]:
    try:
        head = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"no such head file: {path}") from exc
    except (OSError, ValueError) as exc:
        raise VerificationError(f"{path} is not a datashare audit head (not JSON)") from exc
    if not isinstance(head, dict) or "seq" not in head or "hash" not in head:
        raise VerificationError(f"{path} is not a datashare audit head")
    return head


def verify_log(workspace: Workspace, actor: str, head_path: Path | None = None,
               receipts: Callable[[], Sequence[Receipt]] = tuple) -> dict[str, Any]:
    """Verify the chain (and that it extends a saved head, and holds the entries ``receipts()`` name: see
    :func:`verify_with_receipts`); raise VerificationError on any failure."""
    with audited(workspace, "audit.verify", actor) as record:
        head = _load_head(head_path) if head_path is not None else None
        if head is not None:
            _check_head_signature(workspace, head)
        named = receipts()
        report = verify_with_receipts(workspace, named, {int(head["seq"])} if head is not None else set())
        if head is not None:
            check_extends(report, head)
        result = report.to_dict()
        result["head_seq"] = int(head["seq"]) if head is not None else None
        result["receipts_checked"] = len(named)
        record.ok(entries=report.entries, notes=len(report.notes), head_seq=result["head_seq"],
                  receipts_checked=len(named))
    return result


def verify_with_receipts(workspace: Workspace, receipts: Sequence[Receipt], capture: Collection[int] = ()
                         ) -> ChainReport:
    """The workspace's log verified (:func:`verify_chain`, keeping the hashes of ``capture`` too), and checked to
    hold each receipt's entry (:func:`check_receipts`): a log cut short at its end is a sound chain otherwise.
    The receipts come from above this layer (the approvals' signed ones: ``governance.signed_receipts``)."""
    report = verify_chain(workspace.audit_path, capture={*capture, *(seq for seq, _, _ in receipts)})
    check_receipts(report, receipts)
    return report


def make_head(workspace: Workspace, actor: str) -> dict[str, Any]:
    """The log's current length and last hash, signed with the workspace key when there is one."""
    with audited(workspace, "audit.head", actor) as record:
        report = verify_chain(workspace.audit_path)
        head = head_body(report, utc_now())
        head["key_id"], head["signature"] = _sign_head(workspace, head)
        record.ok(seq=head["seq"], signed=head["signature"] is not None)
    return head


def _sign_head(workspace: Workspace, head: dict[str, Any]) -> tuple[str | None, str | None]:
    if not has_key(workspace):
        return None, None
    key, info = load_private_key(workspace, read_passphrase(confirm=False))
    return info.key_id, signing.sign(head_signing_bytes(head), key)


def _check_head_signature(workspace: Workspace, head: dict[str, Any]) -> None:
    if not head.get("signature"):
        return

    try:
        signing.verify(head_signing_bytes(head), head["signature"], load_public_keys(workspace))
    except KeyError as exc:
        raise VerificationError("the head file is missing fields its signature covers") from exc
