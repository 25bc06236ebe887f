"""Approvals and revocations: no edit of approvals.json brings a revoked policy back.

The approval's signature covers its audit receipt, and revocations are found in
the log by the approval's own entry, so the file cannot move an approval after
its revocation.
"""

from __future__ import annotations

import json

import pytest

from datashare import signing
from datashare.governance.approvals import _approval_statement, _legacy_statement
from datashare.init import initialise
from datashare.signing.keystore import load_private_key
from datashare.workspace import Workspace

from .conftest import RESEARCH_POLICY, SAMPLE_CSV, TEST_PASSPHRASE, run_cli

HUGE_SEQ = 10**12


@pytest.fixture
def ws(tmp_path):
    home = tmp_path / "ws"
    initialise(home, None, passphrase=TEST_PASSPHRASE, kdf_rounds=1)
    assert run_cli("register", str(SAMPLE_CSV), "--name", "patients", home=home).code == 0
    return home


def _export(home, out):
    return run_cli("export", "patients", "--policy", str(RESEARCH_POLICY), "--out", str(out),
                   "--purpose", "clinical-research", "--recipient", "cicor", home=home)


def _edit_approvals(home, change):
    path = home / "approvals.json"
    approvals = json.loads(path.read_text())
    for approval in approvals:
        change(approval)
    path.write_text(json.dumps(approvals))


def _unrevoke_behind_a_huge_receipt(approval):
    approval["revoked"] = None
    approval["audit_receipt"]["seq"] = HUGE_SEQ


def _last(home):
    return json.loads((home / "audit.log").read_text().splitlines()[-1])


def test_a_forged_receipt_does_not_hide_a_revocation(ws, tmp_path):
    """The attack: revoke, then clear `revoked` and move the receipt past the revocation."""
    assert run_cli("policy", "approve", str(RESEARCH_POLICY), home=ws).code == 0
    assert run_cli("policy", "revoke", "hk-clinical-research", home=ws).code == 0
    _edit_approvals(ws, _unrevoke_behind_a_huge_receipt)
    result = _export(ws, tmp_path / "out")
    assert result.code == 3, result.stderr
    assert "does not verify" in result.stderr
    assert not (tmp_path / "out").exists()
    assert (_last(ws)["action"], _last(ws)["outcome"]) == ("export", "denied")
    assert [a["status"] for a in run_cli("policy", "list", "--json", home=ws).json()] == ["revoked"]


def test_the_revocation_names_the_approval_it_ends(ws):
    approved = run_cli("policy", "approve", str(RESEARCH_POLICY), "--json", home=ws)
    receipt = approved.json()["audit_receipt"]
    assert run_cli("policy", "revoke", "hk-clinical-research", home=ws).code == 0
    assert _last(ws)["details"]["approvals"] == [receipt["hash"]]


def test_a_receipt_naming_another_entry_is_refused(ws, tmp_path):
    """Even signed with the workspace key, an approval must name its own entry in the log."""
    assert run_cli("policy", "approve", str(RESEARCH_POLICY), home=ws).code == 0
    key, _ = load_private_key(Workspace(ws), TEST_PASSPHRASE)
    init_entry = json.loads((ws / "audit.log").read_text().splitlines()[0])

    def point_at_init(approval):
        approval["audit_receipt"] = {"seq": init_entry["seq"], "hash": init_entry["hash"]}
        approval["signature"] = signing.sign(_approval_statement(approval), key)

    _edit_approvals(ws, point_at_init)
    result = _export(ws, tmp_path / "out")
    assert result.code == 3 and "not its approval" in result.stderr, result.stderr


def _make_legacy(home):
    """Turn the approval into one made before receipts were signed (its signature over the old statement)."""
    key, _ = load_private_key(Workspace(home), TEST_PASSPHRASE)

    def resign(approval):
        approval["signature"] = signing.sign(_legacy_statement(approval), key)

    _edit_approvals(home, resign)


def test_a_legacy_approval_still_works_until_revoked(ws, tmp_path):
    assert run_cli("policy", "approve", str(RESEARCH_POLICY), home=ws).code == 0
    _make_legacy(ws)
    exported = _export(ws, tmp_path / "before")
    assert exported.code == 0, exported.stderr
    assert run_cli("policy", "revoke", "hk-clinical-research", home=ws).code == 0
    _edit_approvals(ws, _unrevoke_behind_a_huge_receipt)
    refused = _export(ws, tmp_path / "after")
    assert refused.code == 3, refused.stderr
    assert "was revoked" in refused.stderr and "before 2026-11-30" in refused.stderr
    assert [a["status"] for a in run_cli("policy", "list", "--json", home=ws).json()] == ["revoked"]
    # Approving again makes a new, receipt-signed approval; the stale one does not count as "already approved".
    again = run_cli("policy", "approve", str(RESEARCH_POLICY), "--json", home=ws)
    assert again.code == 0 and "audit_receipt" in again.json(), again.stderr
    assert _export(ws, tmp_path / "again").code == 0


def test_an_approval_with_a_bad_signature_is_refused(ws, tmp_path):
    assert run_cli("policy", "approve", str(RESEARCH_POLICY), home=ws).code == 0
    _edit_approvals(ws, lambda approval: approval.update(approved_by="someone-else"))
    result = _export(ws, tmp_path / "out")
    assert result.code == 3 and "does not verify" in result.stderr
