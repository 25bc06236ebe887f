"""Verifying the audit chain: every kind of tampering is named with its entry and line; heads kept elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datashare import audit
from datashare.audit.log import GENESIS_HASH, encode_line, entry_hash
from datashare.audit.verify import ChainError, ChainReport, check_extends, head_body, head_signing_bytes, verify_chain
from datashare.errors import VerificationError
from datashare.init import init_workspace


@pytest.fixture
def ws(tmp_path: Path):
    return init_workspace(tmp_path / "ws", "tester")[0]


def log_of(ws, count: int) -> list[bytes]:
    """Append ``count`` entries; the log's lines (without newlines)."""
    for i in range(count):
        audit.append(ws, actor="tester", action="export", target={"dataset": "p"}, details={"i": i})
    return ws.audit_path.read_bytes().split(b"\n")[:-1]


def write(ws, lines: list[bytes]) -> None:
    ws.audit_path.write_bytes(b"".join(line + b"\n" for line in lines))


def broken(ws) -> ChainError:
    with pytest.raises(ChainError) as caught:
        verify_chain(ws.audit_path)
    return caught.value


def forged(seq: int, prev: str, **fields) -> bytes:
    """A well-formed line whose hash matches its content: what someone who knows the format can write."""
    entry = {"seq": seq, "prev": prev, "actor": "mallory", "action": "export", **fields}
    entry["hash"] = entry_hash(entry)
    return encode_line(entry)


def test_an_intact_log_verifies_and_reports_its_last_entry(ws):
    lines = log_of(ws, 4)
    report = verify_chain(ws.audit_path, capture=2)
    assert (report.entries, report.last_seq, report.notes) == (4, 4, [])
    assert report.last_hash == json.loads(lines[-1])["hash"]
    assert report.captured == {2: json.loads(lines[1])["hash"]}
    assert report.to_dict()["ok"] is True and report.to_dict()["first_error"] is None


def test_a_missing_log_is_an_empty_chain(tmp_path):
    assert verify_chain(tmp_path / "audit.log").to_dict() == ChainReport().to_dict()
    assert ChainReport().last_hash == GENESIS_HASH


def test_an_edited_entry(ws):
    lines = log_of(ws, 3)
    lines[1] = lines[1].replace(b'"actor":"tester"', b'"actor":"someone"')
    write(ws, lines)
    error = broken(ws)
    assert (error.problem, error.seq, error.line) == ("edited", 2, 2)
    assert error.exit_code == 4 and error.to_dict() == {"seq": 2, "line": 2, "problem": "edited"}


def test_a_deleted_entry(ws):
    lines = log_of(ws, 4)
    write(ws, lines[:1] + lines[2:])
    error = broken(ws)
    assert (error.problem, error.seq, error.line) == ("deleted", 2, 2)
    assert "entry 2 deleted" in error.message
    write(ws, lines[:1] + lines[3:])
    assert "entries 2-3 deleted" in broken(ws).message


def test_reordered_entries(ws):
    lines = log_of(ws, 4)
    write(ws, [lines[0], lines[2], lines[1], lines[3]])
    error = broken(ws)
    assert (error.problem, error.line) == ("reordered", 2)


def test_a_duplicated_entry(ws):
    lines = log_of(ws, 3)
    write(ws, [*lines, lines[1]])
    error = broken(ws)
    assert (error.problem, error.seq, error.line) == ("duplicated", 2, 4)


def test_a_forged_entry_with_a_matching_hash_but_no_link(ws):
    lines = log_of(ws, 2)
    write(ws, [*lines, forged(3, "f" * 64)])
    error = broken(ws)
    assert (error.problem, error.seq, error.line) == ("inserted", 3, 3)


def test_a_forged_entry_reusing_a_number(ws):
    lines = log_of(ws, 3)
    write(ws, [*lines, forged(2, json.loads(lines[0])["hash"])])
    error = broken(ws)
    assert (error.problem, error.line) == ("inserted", 4)


def test_an_acknowledgement_of_a_torn_line_that_is_not_there(ws):
    lines = log_of(ws, 1)
    last = json.loads(lines[0])["hash"]
    write(ws, [lines[0], forged(2, last, torn_before={"bytes": 5, "sha256": "0" * 64})])
    error = broken(ws)
    assert (error.problem, error.seq) == ("deleted", 2)


def test_torn_last_line_is_reported_then_acknowledged_by_the_next_append(ws):
    for _ in range(3):
        audit.append(ws, actor="tester", action="test")
    with ws.audit_path.open("ab") as handle:
        handle.write(b'{"seq":4,"prev":"abc')  # a crash mid-write
    with pytest.raises(ChainError, match="torn last line after entry 3") as caught:
        verify_chain(ws.audit_path)
    assert caught.value.problem == "torn"
    audit.append(ws, actor="tester", action="test")
    report = verify_chain(ws.audit_path)
    assert report.entries == 4 and len(report.notes) == 1 and "acknowledged by entry 4" in report.notes[0]
    last = json.loads(ws.audit_path.read_text().splitlines()[-1])
    assert last["torn_before"]["bytes"] == len(b'{"seq":4,"prev":"abc')


def test_a_fragment_the_next_entry_does_not_acknowledge_is_damage(ws):
    audit.append(ws, actor="tester", action="test")
    audit.append(ws, actor="tester", action="test")
    lines = ws.audit_path.read_bytes().split(b"\n")
    forged_log = lines[0] + b"\n" + b"garbage line\n" + lines[1] + b"\n"
    ws.audit_path.write_bytes(forged_log)
    with pytest.raises(ChainError) as caught:
        verify_chain(ws.audit_path)
    assert caught.value.problem == "damaged" and caught.value.line == 2


def test_a_head_is_extended_by_a_longer_log_and_not_by_a_cut_or_rewritten_one(ws):
    lines = log_of(ws, 3)
    head = head_body(verify_chain(ws.audit_path), "2026-01-01T00:00:00Z")
    assert (head["seq"], head["count"], head["hash"]) == (3, 3, json.loads(lines[2])["hash"])
    log_of(ws, 2)
    check_extends(verify_chain(ws.audit_path, capture=3), head)
    write(ws, lines[:2])
    with pytest.raises(ChainError, match="cut short") as caught:
        check_extends(verify_chain(ws.audit_path, capture=3), head)
    assert caught.value.problem == "truncated"
    write(ws, lines[:2] + [forged(3, json.loads(lines[1])["hash"])])
    with pytest.raises(ChainError, match="rolled back or rewritten"):
        check_extends(verify_chain(ws.audit_path, capture=3), head)
    check_extends(verify_chain(ws.audit_path), {"seq": 0, "hash": GENESIS_HASH})  # the empty head


def test_a_head_that_is_not_a_head_is_a_verification_error():
    with pytest.raises(VerificationError, match="not a datashare audit head"):
        check_extends(ChainReport(), {"seq": "three", "hash": "x"})


def test_a_heads_signature_covers_its_body_only():
    head = {"format": 1, "seq": 3, "hash": "a" * 64, "count": 3, "time": "2026-01-01T00:00:00Z"}
    signed = head_signing_bytes(head)
    assert signed == b'{"count":3,"format":1,"hash":"' + b"a" * 64 + b'","seq":3,"time":"2026-01-01T00:00:00Z"}'
    assert head_signing_bytes({**head, "signature": "x", "key_id": "y"}) == signed
    assert head_signing_bytes({**head, "seq": 4}) != signed
