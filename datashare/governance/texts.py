"""Approved policies read back: ``policy show`` (the exact text approved) and ``policy diff`` (two versions).

A committee reads what it approved, not the file on disk today: the text comes
from the workspace's store (:mod:`datashare.governance.textstore`), after the
approval's signature and the text's SHA-256 are checked (exit 4 otherwise).
An approval made before texts were stored has none, and says so.
Every read is logged, like every other access.
"""

from __future__ import annotations

import difflib
from typing import Any

from datashare.audit.log import audited
from datashare.errors import InputError
from datashare.governance.approvals import find_approval, verify_approval
from datashare.governance.textstore import stored_text
from datashare.signing.keystore import load_public_keys
from datashare.workspace import Workspace

_SHOWN = ("policy", "version", "sha256", "approved_by", "approved_at")  # what show and diff say of an approval


def show_policy(workspace: Workspace, actor: str, name: str, version: int | None = None) -> dict[str, Any]:
    """The approved text of policy ``name`` (its latest approved version, or ``version``), checked; logged.

    ``{policy, version, sha256, approved_by, approved_at, text}``.
    """
    with audited(workspace, "policy.show", actor, policy=name, policy_version=version) as record:
        approval = find_approval(workspace, name, version)
        record.target.update(policy_version=approval["version"], policy_sha256=approval["sha256"])
        text = _approved_text(workspace, approval)
        record.ok()
    return {**{key: approval[key] for key in _SHOWN}, "text": text}


def diff_policies(workspace: Workspace, actor: str, name: str, old: int, new: int) -> dict[str, Any]:
    """The unified diff from the approved text of ``name`` v``old`` to v``new``, both checked; logged.

    ``{policy, from: {version, sha256, approved_by, approved_at}, to: {…}, identical, diff}``.
    """
    with audited(workspace, "policy.diff", actor, policy=name) as record:
        approvals = [find_approval(workspace, name, version) for version in (old, new)]
        texts = [_approved_text(workspace, approval) for approval in approvals]
        record.ok(versions=[old, new], sha256=[approval["sha256"] for approval in approvals])
    lines = difflib.unified_diff(texts[0].splitlines(keepends=True), texts[1].splitlines(keepends=True),
                                 fromfile=f"{name} v{old}", tofile=f"{name} v{new}")
    diff = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
    ends = [{key: approval[key] for key in _SHOWN if key != "policy"} for approval in approvals]
    return {"policy": name, "from": ends[0], "to": ends[1], "identical": texts[0] == texts[1], "diff": diff}


def _approved_text(workspace: Workspace, approval: dict[str, Any]) -> str:
    """The stored text of ``approval``, after checking the approval's signature and the text's SHA-256."""
    label = f"{approval['policy']} v{approval['version']}"
    verify_approval(approval, load_public_keys(workspace))
    data = stored_text(workspace, approval["sha256"], label)
    if data is None:
        raise InputError(f"the text of {label} is not stored: it was approved before approved policy texts were "
                         "kept in the workspace",
                         hint=f"A custodian stores it by approving the same file again (SHA-256 {approval['sha256']}).")
    return data.decode("utf-8")
