"""Policy approvals: pinned by SHA-256, signed, logged; revocations that editing approvals.json cannot undo."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from datashare.errors import InputError, RefusedError, SigningKeyError
from datashare.governance.approvals import approve, list_approvals, require_approved, revoke_policy
from datashare.policy.model import load_policy
from datashare.workspace import open_workspace, os_user

from .conftest import RESEARCH_POLICY, TEST_PASSPHRASE, make_workspace


@pytest.fixture
def ws(tmp_path):
    return open_workspace(make_workspace(tmp_path / "ws"))


@pytest.fixture
def policy(tmp_path):
    return shutil.copy(RESEARCH_POLICY, tmp_path / "research.yaml")


def entries(ws) -> list[dict]:
    return [json.loads(line) for line in ws.audit_path.read_text(encoding="utf-8").splitlines()]


def approvals_file(ws):
    return ws.home / "approvals.json"


def test_an_approval_pins_the_file_is_signed_and_names_its_audit_entry(ws, policy):
    approval = approve(ws, os_user(), policy, passphrase=TEST_PASSPHRASE)
    assert approval["sha256"] == hashlib.sha256(policy.read_bytes()).hexdigest()
    assert (approval["policy"], approval["version"], approval["approved_by"]) == ("hk-clinical-research", 1,
                                                                                  os_user())
    assert approval["signature"].startswith("-----BEGIN SSH SIGNATURE-----") and approval["revoked"] is None
    entry = entries(ws)[-1]
    assert approval["audit_receipt"] == {"seq": entry["seq"], "hash": entry["hash"]}
    assert (entry["action"], entry["target"]["policy_sha256"]) == ("policy.approve", approval["sha256"])
    assert json.loads(approvals_file(ws).read_text()) == [approval]
    allowed = require_approved(ws, load_policy(policy))
    assert allowed["sha256"] == approval["sha256"] and allowed["key_id"] == approval["key_id"]


def test_approving_the_same_file_again_changes_nothing(ws, policy):
    first = approve(ws, os_user(), policy, passphrase=TEST_PASSPHRASE)
    assert approve(ws, os_user(), policy, passphrase=TEST_PASSPHRASE) == first
    assert entries(ws)[-1]["details"]["already"] is True
    assert len(json.loads(approvals_file(ws).read_text())) == 1


def test_changed_content_under_the_same_version_is_refused(ws, policy):
    approve(ws, os_user(), policy, passphrase=TEST_PASSPHRASE)
    policy.write_text(policy.read_text() + "# loosened later\n")
    with pytest.raises(RefusedError, match="already approved with different content"):
        approve(ws, os_user(), policy, passphrase=TEST_PASSPHRASE)
    with pytest.raises(RefusedError, match="no longer matches the approved policy"):
        require_approved(ws, load_policy(policy))


def test_a_policy_never_approved_is_refused(ws, policy):
    with pytest.raises(RefusedError, match="is not approved in this workspace"):
        require_approved(ws, load_policy(policy))


def test_a_wrong_passphrase_or_a_missing_role_approves_nothing(ws, policy):
    with pytest.raises(SigningKeyError, match="wrong passphrase"):
        approve(ws, os_user(), policy, passphrase="not it")
    with pytest.raises(RefusedError, match="needs the custodian role"):
        approve(ws, "ana", policy, passphrase=TEST_PASSPHRASE)
    assert not approvals_file(ws).exists()
    assert [(e["action"], e["outcome"]) for e in entries(ws)[-2:]] == [("policy.approve", "error"),
                                                                        ("policy.approve", "denied")]


def test_a_revoked_policy_is_refused_even_after_approvals_json_is_edited(ws, policy):
    approve(ws, os_user(), policy, passphrase=TEST_PASSPHRASE)
    [revoked] = revoke_policy(ws, os_user(), "hk-clinical-research", 1)
    assert revoked["revoked"]["by"] == os_user()
    with pytest.raises(RefusedError, match="was revoked on"):
        require_approved(ws, load_policy(policy))
    edited = json.loads(approvals_file(ws).read_text())
    edited[0]["revoked"] = None
    approvals_file(ws).write_text(json.dumps(edited))
    with pytest.raises(RefusedError, match="no longer says so: it was edited"):
        require_approved(ws, load_policy(policy))
    assert [a["status"] for a in list_approvals(ws, os_user())] == ["revoked"]


def test_revoking_what_is_not_approved_is_an_input_error(ws):
    with pytest.raises(InputError, match="no active approval for policy nosuch v2"):
        revoke_policy(ws, os_user(), "nosuch", 2)


def test_an_approval_whose_signed_fields_were_edited_does_not_verify(ws, policy):
    approve(ws, os_user(), policy, passphrase=TEST_PASSPHRASE)
    edited = json.loads(approvals_file(ws).read_text())
    edited[0]["approved_by"] = "someone-else"
    approvals_file(ws).write_text(json.dumps(edited))
    with pytest.raises(RefusedError, match="does not verify: bad signature"):
        require_approved(ws, load_policy(policy))


def test_list_approvals_gives_each_its_status(ws, policy, tmp_path):
    approve(ws, os_user(), policy, passphrase=TEST_PASSPHRASE)
    second = tmp_path / "v2.yaml"
    second.write_text(policy.read_text().replace("version: 1", "version: 2"))
    approve(ws, os_user(), second, passphrase=TEST_PASSPHRASE)
    revoke_policy(ws, os_user(), "hk-clinical-research", 2)
    listed = list_approvals(ws, os_user())
    assert [(a["version"], a["status"]) for a in listed] == [(1, "active"), (2, "revoked")]
    assert entries(ws)[-1]["action"] == "policy.list"


def test_a_forged_failed_after_entry_does_not_undo_a_logged_revocation(ws, policy):
    from datashare.audit.log import append

    approve(ws, os_user(), policy, passphrase=TEST_PASSPHRASE)
    revoke_policy(ws, os_user(), "hk-clinical-research", 1)
    revocation = entries(ws)[-1]
    edited = json.loads(approvals_file(ws).read_text())
    edited[0]["revoked"] = None
    approvals_file(ws).write_text(json.dumps(edited))
    # Anyone who can write the workspace can append a chain-valid entry: no passphrase needed.
    append(ws, actor=os_user(), action="policy.revoke", outcome="error", reason="forged",
           details={"failed_after": revocation["seq"]})
    with pytest.raises(RefusedError, match="was revoked"):
        require_approved(ws, load_policy(policy))
    assert [a["status"] for a in list_approvals(ws, os_user())] == ["revoked"]


def test_a_revoked_field_set_in_approvals_json_does_not_stop_the_revocation_being_logged(ws, policy):
    approve(ws, os_user(), policy, passphrase=TEST_PASSPHRASE)
    edited = json.loads(approvals_file(ws).read_text())
    edited[0]["revoked"] = {"by": "x", "at": "2026-01-01"}  # set so that revoke would find nothing active
    approvals_file(ws).write_text(json.dumps(edited))
    [hit] = revoke_policy(ws, os_user(), "hk-clinical-research", 1)
    assert entries(ws)[-1]["action"] == "policy.revoke" and entries(ws)[-1]["outcome"] == "ok"
    assert entries(ws)[-1]["details"]["approvals"] == [hit["audit_receipt"]["hash"]]
    cleared = json.loads(approvals_file(ws).read_text())
    cleared[0]["revoked"] = None  # clearing it later does not bring the policy back
    approvals_file(ws).write_text(json.dumps(cleared))
    with pytest.raises(RefusedError, match="was revoked"):
        require_approved(ws, load_policy(policy))
    with pytest.raises(InputError, match="no active approval"):  # the log has the revocation now
        revoke_policy(ws, os_user(), "hk-clinical-research", 1)
