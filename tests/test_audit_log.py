"""The audit log library: encoding, chain, concurrency with real processes, failures that must be logged.

Verifying the chain (tampering, torn lines, heads) is in test_audit_verify.py."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from datashare import audit
from datashare.audit.verify import verify_chain
from datashare.init import init_workspace


@pytest.fixture
def ws(tmp_path: Path):
    return init_workspace(tmp_path / "ws", "tester")[0]


def auditor_recheck(path: Path) -> int:
    """The stand-alone check the README gives auditors, using only hashlib and json."""
    prev, count = "0" * 64, 0
    for number, raw in enumerate(path.read_bytes().split(b"\n")[:-1], start=1):
        entry = json.loads(raw)
        member = b',"hash":"' + entry["hash"].encode() + b'"'
        assert raw.endswith(member + b"}"), number
        body = raw[: -len(member) - 1] + b"}"
        assert hashlib.sha256(body).hexdigest() == entry["hash"], number
        assert entry["prev"] == prev and entry["seq"] == number
        prev, count = entry["hash"], count + 1
    return count


def test_entries_chain_and_match_the_documented_encoding(ws):
    for i in range(5):
        audit.append(ws, actor="tester", action="export", target={"dataset": "p", "version": i},
                     purpose="research", recipient="cicor", details={"rows": i, "名": "值"})
    lines = ws.audit_path.read_bytes().split(b"\n")
    assert lines[0].startswith(b'{"seq":1,"prev":"' + b"0" * 64 + b'"')
    assert auditor_recheck(ws.audit_path) == 5
    assert verify_chain(ws.audit_path).entries == 5
    assert "名" in ws.audit_path.read_text(encoding="utf-8")  # UTF-8, not \\u escapes


def test_audited_logs_refusals_and_errors(ws):
    from datashare.errors import InputError, RefusedError

    with pytest.raises(RefusedError), audit.audited(ws, "export", "tester", dataset="p"):
        raise RefusedError("not approved")
    with pytest.raises(InputError), audit.audited(ws, "register", "tester", dataset="p"):
        raise InputError("bad file")
    with pytest.raises(ZeroDivisionError), audit.audited(ws, "show", "tester"):
        1 / 0  # noqa: B018
    entries = [json.loads(line) for line in ws.audit_path.read_text().splitlines()]
    assert [(e["outcome"], e["reason"]) for e in entries] == [
        ("denied", "not approved"), ("error", "bad file"), ("error", "internal error (ZeroDivisionError)")]


APPENDER = """
import sys
from datashare import audit
from datashare.workspace import Workspace
ws = Workspace(__import__("pathlib").Path(sys.argv[1]))
for i in range(int(sys.argv[3])):
    audit.append(ws, actor="proc" + sys.argv[2], action="test", details={"i": i})
"""


def test_eight_processes_appending_in_parallel_keep_one_chain(ws):
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(ws.home), str(n), "200"]) for n in range(8)]
    assert [p.wait(timeout=300) for p in procs] == [0] * 8
    report = verify_chain(ws.audit_path)
    assert report.entries == 1600 and report.last_seq == 1600
    entries = [json.loads(line) for line in ws.audit_path.read_text().splitlines()]
    assert [e["seq"] for e in entries] == list(range(1, 1601))
    assert sorted({e["actor"] for e in entries}) == [f"proc{n}" for n in range(8)]


def replace_log_with_folder(ws) -> None:
    """What a careless admin (or a full restore gone wrong) leaves behind: a folder where the log was."""
    if ws.audit_path.exists():
        ws.audit_path.rename(ws.audit_path.with_name("audit.log.moved"))
    ws.audit_path.mkdir()


@pytest.mark.parametrize("breakage", ["folder", "disk full"])
def test_a_log_that_cannot_be_written_is_a_clear_workspace_error(ws, breakage):
    from datashare.errors import WorkspaceError

    if breakage == "folder":
        replace_log_with_folder(ws)
        expected = "Is a directory"
    else:
        ws.audit_path.symlink_to("/dev/full")  # Linux's always-full device: every write fails with ENOSPC
        expected = "No space left on device"
    with pytest.raises(WorkspaceError) as caught:
        audit.append(ws, actor="tester", action="test")
    assert caught.value.message == f"cannot write the audit log {ws.audit_path}: {expected}"


def test_an_operation_whose_log_cannot_be_written_reports_that_once(ws):
    replace_log_with_folder(ws)
    ran_after = []
    with pytest.raises(audit.AuditWriteError) as caught, audit.audited(ws, "show", "tester") as record:
        record.ok()
        ran_after.append(True)  # never reached: no change happens without its entry
    assert not ran_after
    assert caught.value.hint is not None and "could not be logged either" not in caught.value.hint


def test_a_failure_after_the_ok_entry_is_logged_and_names_that_entry(ws):
    from datashare.audit.query import summarise

    with pytest.raises(OSError), audit.audited(ws, "export", "tester", dataset="p") as record:
        record.purpose, record.recipient = "research", "cicor"
        receipt = record.ok(rows_out=10)
        raise OSError(28, "No space left on device")  # e.g. the export's final rename on a full disk
    with audit.audited(ws, "export", "tester", dataset="p") as record:
        record.purpose, record.recipient = "research", "cicor"
        record.ok(rows_out=10)
    entries = [json.loads(line) for line in ws.audit_path.read_text().splitlines()]
    failed = entries[receipt.seq]  # the entry right after the ok one
    assert (failed["action"], failed["outcome"]) == ("export", "error")
    assert failed["details"] == {"failed_after": receipt.seq}
    assert failed["reason"] == (f"the operation did not complete after entry {receipt.seq} was written: "
                                "internal error (OSError)")
    assert (failed["target"], failed["recipient"]) == ({"dataset": "p"}, "cicor")
    assert verify_chain(ws.audit_path).entries == 3
    [row] = summarise(ws.audit_path)
    assert (row["exports"], row["errors"], row["accesses"]) == (1, 1, 2)
    assert row["exports_by_recipient_purpose"] == [{"recipient": "cicor", "purpose": "research", "exports": 1}]
