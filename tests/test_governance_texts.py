"""Approved policies read back: the exact text approved, checked against its approval, and two versions compared."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from datashare.errors import InputError, RefusedError, VerificationError
from datashare.governance.approvals import approve
from datashare.governance.texts import diff_policies, show_policy
from datashare.workspace import open_workspace, os_user

from .conftest import RESEARCH_POLICY, TEST_PASSPHRASE, make_workspace


@pytest.fixture
def approved(tmp_path):
    """A workspace with hk-clinical-research v1 and v2 approved (v2 with a larger k), and the two files."""
    ws = open_workspace(make_workspace(tmp_path / "ws"))
    v1 = shutil.copy(RESEARCH_POLICY, tmp_path / "v1.yaml")
    v2 = tmp_path / "v2.yaml"
    v2.write_text(RESEARCH_POLICY.read_text().replace("version: 1", "version: 2").replace("k_anonymity: 5",
                                                                                           "k_anonymity: 10"))
    for path in (v1, v2):
        approve(ws, os_user(), path, passphrase=TEST_PASSPHRASE)
    return ws, v1, v2


def log(ws) -> list[dict]:
    return [json.loads(line) for line in ws.audit_path.read_text().splitlines()]


def test_show_gives_the_exact_text_approved_even_after_the_file_changed(approved):
    ws, v1, _ = approved
    original = v1.read_bytes()
    v1.write_text("changed on disk since\n")
    shown = show_policy(ws, os_user(), "hk-clinical-research", 1)
    assert shown["text"].encode() == original and shown["sha256"] == hashlib.sha256(original).hexdigest()
    assert (shown["policy"], shown["version"], shown["approved_by"]) == ("hk-clinical-research", 1, os_user())
    assert show_policy(ws, os_user(), "hk-clinical-research")["version"] == 2  # the latest by default
    entry = log(ws)[-1]
    assert (entry["action"], entry["outcome"], entry["target"]["policy_version"]) == ("policy.show", "ok", 2)


def test_diff_compares_two_approved_versions(approved):
    ws, _, _ = approved
    compared = diff_policies(ws, os_user(), "hk-clinical-research", 1, 2)
    assert compared["diff"].startswith("--- hk-clinical-research v1\n+++ hk-clinical-research v2\n")
    assert "-version: 1\n+version: 2\n" in compared["diff"] and "+  k_anonymity: 10\n" in compared["diff"]
    assert not compared["identical"] and compared["from"]["version"] == 1 and compared["to"]["version"] == 2
    same = diff_policies(ws, os_user(), "hk-clinical-research", 2, 2)
    assert same["identical"] and same["diff"] == ""
    assert log(ws)[-1]["details"]["versions"] == [2, 2]


def test_a_tampered_text_or_approval_is_a_verification_failure_and_logged(approved):
    ws, v1, _ = approved
    stored = ws.policy_texts_dir / f"{hashlib.sha256(v1.read_bytes()).hexdigest()}.yaml"
    stored.write_bytes(stored.read_bytes().replace(b"k_anonymity: 5", b"k_anonymity: 1"))
    with pytest.raises(VerificationError, match="the stored text of hk-clinical-research v1 does not match"):
        show_policy(ws, os_user(), "hk-clinical-research", 1)
    assert (log(ws)[-1]["action"], log(ws)[-1]["outcome"]) == ("policy.show", "error")
    with pytest.raises(VerificationError):
        diff_policies(ws, os_user(), "hk-clinical-research", 1, 2)
    approvals = json.loads((ws.home / "approvals.json").read_text())
    approvals[1]["sha256"] = approvals[0]["sha256"]  # point v2 at v1's text: its signature no longer covers it
    (ws.home / "approvals.json").write_text(json.dumps(approvals))
    with pytest.raises(VerificationError, match="the approval of hk-clinical-research v2 does not verify"):
        show_policy(ws, os_user(), "hk-clinical-research", 2)


def test_an_approval_made_before_texts_were_stored_says_so_and_approving_again_stores_it(approved):
    ws, v1, _ = approved
    shutil.rmtree(ws.policy_texts_dir)
    with pytest.raises(InputError, match="the text of hk-clinical-research v1 is not stored: it was approved before"):
        show_policy(ws, os_user(), "hk-clinical-research", 1)
    approve(ws, os_user(), v1, passphrase=TEST_PASSPHRASE)  # the same file: nothing new approved, the text kept
    assert show_policy(ws, os_user(), "hk-clinical-research", 1)["text"] == v1.read_text()


def test_unknown_names_and_versions_are_named(approved):
    ws, _, _ = approved
    with pytest.raises(InputError, match=r"no approved policy is named 'hk-clinical-reserch' \(did you mean"):
        show_policy(ws, os_user(), "hk-clinical-reserch")
    with pytest.raises(InputError, match=r"has no approved version 3 \(approved: v1, v2\)"):
        diff_policies(ws, os_user(), "hk-clinical-research", 1, 3)


def test_who_may_read_approved_policies(approved):
    ws, _, _ = approved
    with pytest.raises(RefusedError, match="needs the analyst or auditor or custodian role"):
        show_policy(ws, "nobody-at-all", "hk-clinical-research")
    assert (log(ws)[-1]["action"], log(ws)[-1]["outcome"]) == ("policy.show", "denied")
