"""`datashare audit` end to end: listings, filters, summary, verify and head, and every kind of tampering."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from datashare.audit.log import GENESIS_HASH, encode_line, entry_hash

from .conftest import RESEARCH_POLICY, SAMPLE_CSV


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
    listed = cli("audit", "--json")
    assert listed.code == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["action"] for r in rows[:4]] == ["init", "keys.generate", "register", "register"]
    denied_or_error = cli("audit", "--json", "--action", "register", "--outcome", "error").stdout.splitlines()
    assert len(denied_or_error) == 1 and json.loads(denied_or_error[0])["dataset"] == "BAD"
    patients = [json.loads(x) for x in cli("audit", "--json", "--dataset", "patients").stdout.splitlines()]
    assert {r["action"] for r in patients} == {"register", "show"}
    assert cli("audit", "--json", "--since", "2999-01-01").stdout == ""
    assert len(cli("audit", "--json", "--until", "2000-01-01").stdout) == 0
    count = len(lines_of(logged))  # a day's entries, and one just before it: no test run lands across midnight
    pin_times(logged, ["2026-03-03T23:59:59.999999Z"] +
              [f"2026-03-04T{8 + i // 60:02d}:{i % 60:02d}:00.000000Z" for i in range(count - 1)])
    assert seqs(cli("audit", "--json", "--since", "2026-03-04", "--until", "2026-03-04")) == list(range(2, count + 1))
    csv_out = cli("audit", "--csv").stdout.splitlines()
    assert csv_out[0].startswith("seq,time,actor,action,outcome")


def seqs(result) -> list[int]:
    assert result.code == 0, result.stderr
    return [json.loads(line)["seq"] for line in result.stdout.splitlines()]


def pin_times(log: Path, times: list[str]) -> None:
    """Give the log's entries these times, re-chained: a log whose times do not depend on when the test ran."""
    entries = [json.loads(line) for line in lines_of(log)]
    prev = GENESIS_HASH
    lines = []
    for entry, time in zip(entries, times, strict=True):
        entry.update(time=time, prev=prev)
        entry["hash"] = entry_hash(entry)
        prev = entry["hash"]
        lines.append(encode_line(entry))
    write_lines(log, lines)


def test_iso_timestamps_filter_to_the_microsecond_in_any_offset(cli, logged):
    from datetime import datetime, timedelta, timezone

    # Entries 1 and 2 in the same second, 3, 4 and 5 in later ones, as a busy workspace writes them.
    times = ["2026-01-01T08:00:00.100000Z", "2026-01-01T08:00:00.600000Z", "2026-01-01T08:00:01.250000Z",
             "2026-01-01T08:00:02.000001Z", "2026-01-01T08:00:03.000000Z"]
    pin_times(logged, times)
    third = times[2]
    assert seqs(cli("audit", "--json", "--since", third, "--until", times[3])) == [3, 4]
    assert seqs(cli("audit", "--json", "--until", third)) == [1, 2, 3]
    assert seqs(cli("audit", "--json", "--until", "2026-01-01T08:00:01.249999Z")) == [1, 2]
    in_hong_kong = datetime.fromisoformat(third.replace("Z", "+00:00")).astimezone(timezone(timedelta(hours=8)))
    assert seqs(cli("audit", "--json", "--since", in_hong_kong.isoformat(), "--until", times[3])) == [3, 4]
    # The form people type, to the whole second, includes every entry within or before that second's start.
    assert seqs(cli("audit", "--json", "--until", "2026-01-01T08:00:01Z")) == [1, 2]
    assert seqs(cli("audit", "--json", "--since", "2026-01-01T08:00:01Z", "--until", "2026-01-01T08:00:01.9Z")) == [3]


def test_csv_holds_the_same_entries_as_json(cli, logged):
    import csv
    import io

    as_json = [json.loads(line) for line in cli("audit", "--json", "--action", "register").stdout.splitlines()]
    result = cli("audit", "--csv", "--action", "register")
    assert result.code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == len(as_json) == 2
    for row, entry in zip(rows, as_json, strict=True):
        assert (int(row["seq"]), row["time"], row["action"], row["outcome"], row["dataset"], row["hash"]) == (
            entry["seq"], entry["time"], "register", entry["outcome"], entry["dataset"], entry["hash"])
    assert rows[0]["version"] == "1" and rows[0]["target"] == "dataset=patients, version=1"
    assert rows[1]["reason"] == as_json[1]["reason"] and "BAD" in rows[1]["reason"]


@pytest.mark.parametrize(("args", "message"), [
    (["--outcome", "denid"], "unknown outcome 'denid' (did you mean 'denied'?)"),
    (["--outcome", "failed"], "unknown outcome 'failed'"),
    (["--action", "exprot"], "unknown action 'exprot' (did you mean 'export'?)"),
    (["--action", "policy.revok"], "unknown action 'policy.revok' (did you mean 'policy.revoke'?)"),
    (["--json", "--csv"], "give --json or --csv, not both"),
    (["--since", "yesterday"], "not a date or ISO timestamp"),
])
def test_bad_listing_options_are_usage_errors(cli, logged, args, message):
    before = logged.read_bytes()
    result = cli("audit", *args)
    assert result.code == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == "" if "--json" not in args else json.loads(result.stdout)["exit_code"] == 2
    assert logged.read_bytes() == before  # a command line that cannot run reads nothing


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


def test_summary_keeps_failed_names_apart_from_datasets(cli, logged):
    assert cli("export", "nosuch", "--policy", RESEARCH_POLICY, "--out", logged.parent / "x", "--purpose", "p",
               "--recipient", "r").code != 0
    assert cli("audit", "--dataset", "ghost").code == 0  # reading the log about a name is no access of it
    rows = {r["dataset"]: r for r in cli("audit", "summary", "--json").json()}
    assert {name: row["is_dataset"] for name, row in rows.items()} == {"patients": True, "BAD": False,
                                                                        "nosuch": False}
    assert json.loads(logged.read_text().splitlines()[-1])["details"] == {"datasets": 1, "other_names": 2}
    shown = cli("audit", "summary").stdout
    datasets, others = shown.split("Names that are not datasets")
    assert "patients" in datasets and "BAD" not in datasets and "nosuch" not in datasets
    assert "BAD" in others and "nosuch" in others and "patients" not in others
    table = cli("audit", "summary", "--csv").stdout.splitlines()
    assert table[0] == "dataset,accesses,exports,denials,errors,last_access,is_dataset"
    assert [line.split(",")[-1] for line in table[1:]] == ["False", "False", "True"]  # BAD, nosuch, patients


def test_json_and_csv_carry_every_field_of_an_entry(cli, logged):
    import csv
    import io

    in_log = [json.loads(line) for line in logged.read_text().splitlines()]
    listed = [json.loads(line) for line in cli("audit", "--json").stdout.splitlines()]
    for entry, shown in zip(in_log, listed, strict=False):
        assert {k: v for k, v in shown.items() if k in entry} == entry  # every field, as logged
        assert shown["torn_before"] is None
    register = next(e for e in listed if e["action"] == "register" and e["outcome"] == "ok")
    assert register["details"]["rows"] == 1000 and register["details"]["columns"] == 16
    rows = list(csv.DictReader(io.StringIO(cli("audit", "--csv").stdout)))
    header = list(rows[0])
    dotted = [name for name in header if name.startswith("details.")]
    assert dotted == sorted(dotted) and {"details.rows", "details.columns", "details.created"} <= set(dotted)
    assert header[:14] == ["seq", "time", "actor", "action", "outcome", "dataset", "version", "policy", "purpose",
                           "recipient", "reason", "target", "hash", "prev"]
    by_seq = {int(row["seq"]): row for row in rows}
    assert by_seq[register["seq"]]["details.rows"] == "1000"
    assert by_seq[register["seq"]]["prev"] == register["prev"]
    assert by_seq[1]["details.rows"] == ""  # init has no rows: an empty cell, never "None"
    # target's fields too, each in its column (a script picks the export folder out of target.output)
    assert by_seq[register["seq"]]["target.dataset"] == "patients"
    assert by_seq[register["seq"]]["target.version"] == str(register["target"]["version"])
    assert by_seq[register["seq"]]["target"].startswith("dataset=patients")


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


def delete_last_but_one(lines):
    del lines[-2]
    return lines


def insert_forged_line(lines):
    forged = lines[2].replace(b'"seq":3,', b'"seq":4,')
    return lines[:3] + [rehash(forged)] + lines[3:]


def insert_forged_copy_with_a_used_number(lines):
    forged = rehash(lines[1].replace(b'"outcome":"ok"', b'"outcome":"denied"'))
    return lines[:3] + [forged] + lines[3:]


def swap_lines(lines):
    lines[2], lines[3] = lines[3], lines[2]
    return lines


def swap_last_two(lines):
    lines[-2], lines[-1] = lines[-1], lines[-2]
    return lines


def move_entry_down(lines):
    return lines[:2] + lines[3:] + [lines[2]]


def duplicate_line(lines):
    return lines[:3] + [lines[2]] + lines[3:]


@pytest.mark.parametrize(("tamper", "problem", "line"), [
    (edit_field_keep_hash, "edited", 3),
    (edit_field_and_rehash, "inserted", 4),
    (delete_line, "deleted", 3),
    (delete_last_but_one, "deleted", 4),
    (insert_forged_line, "inserted", 4),
    (insert_forged_copy_with_a_used_number, "inserted", 4),
    (swap_lines, "reordered", 3),
    (swap_last_two, "reordered", 4),
    (move_entry_down, "reordered", 3),
    (duplicate_line, "duplicated", 4),
])
def test_tampering_is_detected(cli, logged, tamper, problem, line):
    write_lines(logged, tamper(lines_of(logged)))
    result = cli("audit", "verify", "--json")
    assert result.code == 4, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["first_error"]["problem"] == problem, report
    assert report["first_error"]["line"] == line
    assert problem in result.stderr and "Traceback" not in result.stderr


def test_truncation_and_rollback_are_caught_by_a_saved_head(cli, logged, tmp_path):
    saved = tmp_path / "head.json"
    head = cli("audit", "head", "--json")  # --json is accepted: a head is JSON anyway
    assert head.code == 0 and head.json()["seq"] == 5
    saved.write_text(head.stdout)
    assert cli("show", "patients").code == 0
    original = lines_of(logged)
    head_seq = json.loads(saved.read_text())["seq"]

    write_lines(logged, original[: head_seq - 2])  # cut the tail: the chain itself is still valid
    assert cli("audit", "verify").code == 0
    truncated = cli("audit", "verify", "--head", saved, "--json")
    assert truncated.code == 4 and json.loads(truncated.stdout)["first_error"]["problem"] == "truncated"

    # Roll back to before the head, then let the log grow again past it: every link is valid, but the
    # entry the head names is not the one that is there now.
    write_lines(logged, original[: head_seq - 2])
    for _ in range(3):
        assert cli("show", "patients").code == 0
    assert cli("audit", "verify").code == 0
    assert len(lines_of(logged)) > head_seq
    rolled_back = cli("audit", "verify", "--head", saved, "--json")
    assert rolled_back.code == 4, rolled_back.stderr
    assert json.loads(rolled_back.stdout)["first_error"] == {"seq": head_seq, "line": 0, "problem": "rewritten"}
    assert "rolled back" in rolled_back.stderr

    write_lines(logged, original)
    assert cli("audit", "verify", "--head", saved).code == 0


def test_a_torn_last_line_in_the_json_report(cli, logged):
    with logged.open("ab") as handle:
        handle.write(b'{"seq":99,"prev":"00')
    result = cli("audit", "verify", "--json")
    assert result.code == 4 and "torn last line" in result.stderr
    assert result.json()["first_error"] == {"seq": 6, "line": 6, "problem": "torn"}  # the CLI's shape of it
