"""The auditor's operations: each reads the log as it was, then logs itself; signed heads."""

from __future__ import annotations

import json

import pytest

from datashare import audit
from datashare.audit.commands import make_head, read_log, summary, verify_log
from datashare.audit.query import AuditFilter
from datashare.audit.verify import ChainError
from datashare.errors import InputError, RefusedError, VerificationError
from datashare.signing.keystore import PASSPHRASE_ENV
from datashare.workspace import open_workspace, os_user

from .conftest import TEST_PASSPHRASE, make_workspace


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, TEST_PASSPHRASE)
    workspace = open_workspace(make_workspace(tmp_path / "ws"))
    for dataset in ("p", "q", "p"):
        audit.append(workspace, actor=os_user(), action="export", target={"dataset": dataset},
                     recipient="cicor", purpose="research")
    return workspace


def last_entry(ws) -> dict:
    return json.loads(ws.audit_path.read_text(encoding="utf-8").splitlines()[-1])


def test_reading_the_log_returns_what_was_there_and_logs_the_reading(ws):
    before = len(ws.audit_path.read_text().splitlines())
    entries = read_log(ws, os_user(), AuditFilter(dataset="p"))
    assert [e["dataset"] for e in entries] == ["p", "p"]
    last = last_entry(ws)
    assert last["seq"] == before + 1 and last["action"] == "audit.read"
    assert last["details"] == {"filters": {"dataset": "p"}, "matched": 2}


def test_summary_is_logged(ws):
    assert [row["dataset"] for row in summary(ws, os_user())] == ["p", "q"]
    assert (last_entry(ws)["action"], last_entry(ws)["details"]) == ("audit.summary", {"datasets": 2, "other_names": 0})


def test_verify_reports_the_log_before_its_own_entry(ws):
    before = len(ws.audit_path.read_text().splitlines())
    result = verify_log(ws, os_user())
    assert result["ok"] and result["entries"] == before and result["head_seq"] is None
    assert last_entry(ws)["action"] == "audit.verify" and last_entry(ws)["details"]["entries"] == before


def test_a_broken_chain_is_raised_and_the_failure_logged(ws):
    lines = ws.audit_path.read_text().splitlines()
    lines[1] = lines[1].replace('"keys.generate"', '"keys.rotate"')
    ws.audit_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ChainError, match="entry 2 .* was edited"):
        verify_log(ws, os_user())
    assert (last_entry(ws)["action"], last_entry(ws)["outcome"]) == ("audit.verify", "error")


def test_a_signed_head_is_checked_and_catches_a_cut_log(ws, tmp_path):
    head = make_head(ws, os_user())
    assert head["signature"] and head["key_id"] and head["count"] == head["seq"]
    assert last_entry(ws)["action"] == "audit.head"
    path = tmp_path / "head.json"
    path.write_text(json.dumps(head))
    assert verify_log(ws, os_user(), path)["head_seq"] == head["seq"]

    path.write_text(json.dumps({**head, "count": head["count"] + 1}))  # not what was signed
    with pytest.raises(VerificationError, match="bad signature"):
        verify_log(ws, os_user(), path)

    path.write_text(json.dumps(head))
    lines = ws.audit_path.read_bytes().split(b"\n")
    ws.audit_path.write_bytes(b"\n".join(lines[:head["seq"] - 1]) + b"\n")
    with pytest.raises(ChainError, match="cut short"):
        verify_log(ws, os_user(), path)


def test_a_missing_head_file_and_files_that_are_no_head(ws, tmp_path):
    missing = tmp_path / "nothing.json"
    with pytest.raises(InputError, match="no such head file"):
        verify_log(ws, os_user(), missing)
    for text in ("not json", '{"seq": 1}', "[1, 2]"):
        missing.write_text(text)
        with pytest.raises(VerificationError, match="not a datashare audit head"):
            verify_log(ws, os_user(), missing)


def test_an_analyst_may_not_read_the_log_and_the_refusal_is_logged(ws):
    with pytest.raises(RefusedError, match="needs the auditor or custodian role"):
        read_log(ws, "ana", AuditFilter())
    assert (last_entry(ws)["actor"], last_entry(ws)["outcome"]) == ("ana", "denied")


def test_a_log_cut_short_below_an_approval_is_caught_without_a_head(ws):
    """Without --head a log cut at its end is a valid chain; an approval names its entry, and catches the cut."""
    from datashare import governance

    from .conftest import RESEARCH_POLICY

    approval = governance.approve(ws, os_user(), RESEARCH_POLICY, passphrase=TEST_PASSPHRASE)
    seq = approval["audit_receipt"]["seq"]
    assert governance.verify_audit_log(ws, os_user())["receipts_checked"] == 1
    whole = ws.audit_path.read_bytes()
    lines = whole.split(b"\n")
    ws.audit_path.write_bytes(b"\n".join(lines[:seq - 1]) + b"\n")  # the approval's entry and all after it gone
    with pytest.raises(ChainError, match=f"cut short: it ends at entry {seq - 1}, and the approval of "
                                         "hk-clinical-research v1 in approvals.json names entry"):
        governance.verify_audit_log(ws, os_user())
    # Cut, then written on: the entry of that number is another one
    audit.append(ws, actor=os_user(), action="export", target={"dataset": "p"})
    with pytest.raises(ChainError, match=f"entry {seq} differs from the one the approval"):
        governance.verify_audit_log(ws, os_user())
    # An approval whose receipt was edited to point below the cut is not trusted: its signature covers the receipt
    approvals = json.loads((ws.home / "approvals.json").read_text(encoding="utf-8"))
    approvals[0]["audit_receipt"]["seq"] = 1
    (ws.home / "approvals.json").write_text(json.dumps(approvals), encoding="utf-8")
    assert governance.signed_receipts(ws) == []
    (ws.home / "approvals.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="cannot read approvals.json"):
        governance.verify_audit_log(ws, os_user())
