"""``datashare exports``: every release this workspace made, from the audit log and the release ledger, with
the state of its folder today.

The log is the record of what happened: each ``export`` or ``synthesize`` entry with outcome ok (less those a
later ``failed_after`` entry says did not complete) is a release, with its recipient, purpose, dataset and
version, policy, rows out and folder. The ledger adds the release's id (an export's entry names it; an entry
written before it did is paired with the ledger line of the same recipient, dataset, version and policy, in
order). A ledger line no entry vouches for (its export failed after the line was written) is listed too, as
``not exported``. Each folder is checked as ``datashare verify`` checks it, with the workspace's keys and log:
``verified``, ``missing`` (no folder there now), ``replaced`` (the folder holds a later release to the same
path) or ``altered`` (with what failed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datashare.audit.log import FAILED_AFTER, OUTCOME_ERROR, OUTCOME_OK, audited
from datashare.audit.query import scan_entries
from datashare.errors import VerificationError
from datashare.export.bundle import verify_export
from datashare.export.recipient import RELEASES, receipt_checker
from datashare.export.releases import read_ledger
from datashare.signing.keystore import load_public_keys
from datashare.workspace import Workspace

VERIFIED, MISSING, REPLACED, ALTERED, NOT_CHECKED, NOT_EXPORTED = (
    "verified", "missing", "replaced", "altered", "not checked", "not exported")
COLUMNS = ("seq", "time", "kind", "actor", "recipient", "purpose", "dataset", "version", "policy", "policy_version",
           "rows", "path", "release", "state", "detail")
_PAIRING_KEYS = (("recipient", "recipient"), ("dataset", "dataset"), ("version", "dataset_version"),
                 ("policy", "policy"), ("policy_version", "policy_version"))


def list_exports(ws: Workspace, actor: str, *, recipient: str | None = None, dataset: str | None = None,
                 verify: bool = True) -> list[dict[str, Any]]:
    """The workspace's releases, oldest first (one dict per release, with the fields of :data:`COLUMNS`); logged.

    ``recipient`` and ``dataset`` keep only those releases; ``verify=False`` skips checking the folders.
    """
    with audited(ws, "exports", actor, dataset=dataset, recipient=recipient) as record:
        found = release_states(ws, recipient=recipient, dataset=dataset, verify=verify)
        record.ok(count=len(found))
    return found


def release_states(ws: Workspace, *, recipient: str | None = None, dataset: str | None = None,
                   verify: bool = True) -> list[dict[str, Any]]:
    """What :func:`list_exports` lists, unlogged: for a caller that logs the access itself (``report audit``)."""
    found = [r for r in _releases(ws) if (recipient is None or r["recipient"] == recipient)
             and (dataset is None or r["dataset"] == dataset)]
    if verify:
        keys = load_public_keys(ws)
        checker = receipt_checker(ws.audit_path, {key.key_id for key in keys})
        for release in found:
            if release["state"] != NOT_EXPORTED:
                release["state"], release["detail"] = _state(release, keys, checker)
    return found


def _releases(ws: Workspace) -> list[dict[str, Any]]:
    """Every release in the log, with its ledger id; then the ledger lines no entry vouches for."""
    entries = list(scan_entries(ws.audit_path, actions=RELEASES))
    undone = {(e.get("details") or {}).get(FAILED_AFTER) for e in entries if e.get("outcome") == OUTCOME_ERROR}
    done = [e for e in entries if e.get("outcome") == OUTCOME_OK and e.get("seq") not in undone]
    ledger = read_ledger(ws)
    unpaired = {str(line.get("id")): line for line in ledger}
    releases = []
    for entry in done:
        row = _from_entry(entry)
        if row["kind"] == "export":
            named = (entry.get("details") or {}).get("release")
            line = unpaired.pop(str(named), None) if named is not None else _pair(row, unpaired)
            row["release"] = line.get("id") if line is not None else named
        releases.append(row)
    for line in unpaired.values():
        releases.append({**dict.fromkeys(COLUMNS), "time": line.get("time"), "kind": "export",
                         "actor": line.get("actor"), "recipient": line.get("recipient"),
                         "dataset": line.get("dataset"), "version": line.get("dataset_version"),
                         "policy": line.get("policy"), "policy_version": line.get("policy_version"),
                         "rows": (line.get("classes") or {}).get("rows_out"), "release": line.get("id"),
                         "state": NOT_EXPORTED,
                         "detail": "in the release ledger, but no audit entry says the export completed"})
    return releases


def _from_entry(entry: dict[str, Any]) -> dict[str, Any]:
    target, details = entry.get("target") or {}, entry.get("details") or {}
    return {"seq": entry.get("seq"), "time": entry.get("time"), "kind": entry.get("action"),
            "actor": entry.get("actor"), "recipient": entry.get("recipient"), "purpose": entry.get("purpose"),
            "dataset": target.get("dataset"), "version": target.get("version"), "policy": target.get("policy"),
            "policy_version": target.get("policy_version"), "rows": details.get("rows_out"),
            "path": target.get("output"), "release": None, "state": NOT_CHECKED, "detail": None}


def _pair(row: dict[str, Any], unpaired: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The oldest ledger line not yet paired that records this release (an entry from before entries named it)."""
    for key, line in unpaired.items():
        if all(row[mine] == line.get(theirs) for mine, theirs in _PAIRING_KEYS) and \
                str(line.get("time") or "") <= str(row["time"] or ""):
            return unpaired.pop(key)
    return None


def _state(release: dict[str, Any], keys: list, checker: Any) -> tuple[str, str | None]:
    """The state of a release's folder today, and what failed when it does not verify."""
    path = release["path"]
    if not path or not Path(path).is_dir():
        return MISSING, f"no folder at {path}" if path else "the entry names no folder"
    try:
        report = verify_export(Path(path), keys, audit_check=checker)
    except VerificationError as exc:
        return ALTERED, exc.message
    except OSError as exc:  # another account's export, its files private to it
        return NOT_CHECKED, f"the folder cannot be read here ({exc.strerror or type(exc).__name__})"
    receipt = report.manifest.get("audit_receipt") or {}
    if receipt.get("seq") != release["seq"]:
        return REPLACED, f"the folder holds the release of entry {receipt.get('seq')}"
    return VERIFIED, None
