"""`datashare audit` end to end: listings, filters, summary, verify and head, and every kind of tampering."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from .conftest import SAMPLE_CSV


@pytest.fixture
def logged(cli, workspace, home):
    """A workspace with a few entries of different kinds."""
    assert cli("register", SAMPLE_CSV, "--name", "patients").code == 0
    assert cli("register", SAMPLE_CSV, "--name", "BAD").code == 1
    assert cli("show", "patients").code == 0
    return home / "audit.log"


def lines_of(log: Path) -> list[bytes]:
    return log.read_bytes().split(b"\n")[:-1]


def write_lines(log: Path, lines: list[bytes]) -> None:
    log.write_bytes(b"".join(line + b"\n" for line in lines))


def rehash(line: bytes) -> bytes:
    """What an attacker does to make an edited entry consistent with itself."""
    entry = json.loads(line)
    member = b',"hash":"' + entry["hash"].encode() + b'"}'
    body = line[: -len(member)] + b"}"
    return body[:-1] + b',"hash":"' + hashlib.sha256(body).hexdigest().encode() + b'"}'


def test_listing_filters_and_formats(cli, logged):
    rows = [json.loads(line) for line in cli("audit", "--json").stdout.splitlines()]
    assert [r["action"] for r in rows[:4]] == ["init", "keys.generate", "register", "register"]
    denied_or_error = cli("audit", "--json", "--action", "register", "--outcome", "error").stdout.splitlines()
    assert len(denied_or_error) == 1 and json.loads(denied_or_error[0])["dataset"] == "BAD"
    patients = [json.loads(x) for x in cli("audit", "--json", "--dataset", "patients").stdout.splitlines()]
    assert {r["action"] for r in patients} == {"register", "show"}
    assert cli("audit", "--json", "--since", "2999-01-01").stdout == ""
    assert len(cli("audit", "--json", "--until", "2000-01-01").stdout) == 0
    today = json.loads(cli("audit", "--json").stdout.splitlines()[0])["time"][:10]
    assert cli("audit", "--json", "--since", today, "--until", today).stdout.count("\n") >= 5
    csv_out = cli("audit", "--csv").stdout.splitlines()
    assert csv_out[0].startswith("seq,time,actor,action,outcome")
    bad = cli("audit", "--since", "yesterday")
    assert bad.code == 2 and "ISO timestamp" in bad.stderr


def test_reading_the_log_is_logged(cli, logged):
    cli("audit")
    cli("audit", "summary")
    cli("audit", "verify")
    actions = [json.loads(line)["action"] for line in logged.read_text().splitlines()]
    assert actions[-3:] == ["audit.read", "audit.summary", "audit.verify"]


def test_summary(cli, logged):
    rows = {r["dataset"]: r for r in cli("audit", "summary", "--json").json()}
    assert rows["patients"]["accesses"] == 2 and rows["patients"]["exports"] == 0
    assert rows["BAD"]["errors"] == 1


def test_verify_ok_and_head_is_signed(cli, logged, tmp_path):
    ok = cli("audit", "verify", "--json")
    assert ok.code == 0 and ok.json()["ok"] is True and ok.json()["entries"] == 5
    head = cli("audit", "head")
    assert head.code == 0
    data = head.json()
    assert data["signature"].startswith("-----BEGIN SSH SIGNATURE-----") and data["key_id"].startswith("SHA256:")
    saved = tmp_path / "head.json"
    saved.write_text(head.stdout)
    assert cli("audit", "verify", "--head", saved).code == 0
    data["seq"] = data["seq"] - 1  # a forged head no longer matches its signature
    saved.write_text(json.dumps(data))
    forged = cli("audit", "verify", "--head", saved)
    assert forged.code == 4 and "bad signature" in forged.stderr


def edit_field_keep_hash(lines):
    lines[2] = lines[2].replace(b'"register"', b'"registr"')
    return lines


def edit_field_and_rehash(lines):
    lines[2] = rehash(lines[2].replace(b'"outcome":"ok"', b'"outcome":"denied"'))
    return lines


def delete_line(lines):
    del lines[2]
    return lines


def insert_forged_line(lines):
    forged = lines[2].replace(b'"seq":3,', b'"seq":4,')
    return lines[:3] + [rehash(forged)] + lines[3:]


def swap_lines(lines):
    lines[2], lines[3] = lines[3], lines[2]
    return lines


@pytest.mark.parametrize(("tamper", "problem"), [
    (edit_field_keep_hash, "edited"),
    (edit_field_and_rehash, "inserted"),
    (delete_line, "deleted"),
    (insert_forged_line, "inserted"),
    (swap_lines, "deleted"),
])
def test_tampering_is_detected(cli, logged, tamper, problem):
    write_lines(logged, tamper(lines_of(logged)))
    result = cli("audit", "verify", "--json")
    assert result.code == 4, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["first_error"]["problem"] == problem
    assert "Traceback" not in result.stderr


def test_truncation_and_rollback_are_caught_by_a_saved_head(cli, logged, tmp_path):
    saved = tmp_path / "head.json"
    saved.write_text(cli("audit", "head").stdout)
    assert cli("show", "patients").code == 0
    lines = lines_of(logged)
    head_seq = json.loads(saved.read_text())["seq"]
    write_lines(logged, lines[: head_seq - 2])  # cut the tail: the chain itself is still valid
    assert cli("audit", "verify").code == 0
    truncated = cli("audit", "verify", "--head", saved, "--json")
    assert truncated.code == 4 and json.loads(truncated.stdout)["first_error"]["problem"] == "truncated"


def test_torn_last_line_is_reported(cli, logged):
    with logged.open("ab") as handle:
        handle.write(b'{"seq":99,"prev":"00')
    result = cli("audit", "verify")
    assert result.code == 4 and "torn last line" in result.stderr
    again = cli("audit", "verify", "--json")  # the previous verify's own entry acknowledged the fragment
    assert again.code == 0 and len(again.json()["notes"]) == 1
