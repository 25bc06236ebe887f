"""Listing the audit log: each filter, times in UTC, bound values; summaries per dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from datashare.audit.log import GENESIS_HASH, encode_line, entry_hash
from datashare.audit.query import AuditFilter, list_entries, parse_time, scan_entries, summarise, validate_filter
from datashare.errors import UsageError

# (time, actor, action, outcome, dataset, recipient)
ENTRIES = [
    ("2026-01-01T08:00:00.000000Z", "alice", "export", "ok", "p", "cicor"),
    ("2026-01-01T23:59:59.500000Z", "bob", "export", "denied", "p", "cicor"),
    ("2026-01-02T00:00:00.000000Z", "alice", "register", "ok", "q", None),
    ("2026-01-03T10:00:00.000000Z", "carol", "audit.read", "ok", None, None),
    ("2026-01-03T11:00:00.000000Z", "alice", "export", "ok", "p", "incubatee-1"),
]


def write_log(path: Path, rows=ENTRIES) -> Path:
    """A chained log with chosen times (``append`` stamps the present)."""
    prev, lines = GENESIS_HASH, []
    for seq, (time, actor, action, outcome, dataset, recipient) in enumerate(rows, start=1):
        entry = {"seq": seq, "prev": prev, "time": time, "actor": actor, "action": action, "outcome": outcome,
                 "target": {"dataset": dataset, "version": 1} if dataset else {}, "purpose": "research",
                 "recipient": recipient, "reason": None, "details": {}}
        entry["hash"] = prev = entry_hash(entry)
        lines.append(encode_line(entry) + b"\n")
    path.write_bytes(b"".join(lines))
    return path


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    return write_log(tmp_path_factory.mktemp("query") / "audit.log")


def seqs(log: Path, **where) -> list[int]:
    return [entry["seq"] for entry in list_entries(log, AuditFilter(**where))]


@pytest.mark.parametrize(("where", "expected"), [
    ({}, [1, 2, 3, 4, 5]),
    ({"dataset": "p"}, [1, 2, 5]),
    ({"actor": "alice"}, [1, 3, 5]),
    ({"action": "export", "outcome": "ok"}, [1, 5]),
    ({"outcome": "denied"}, [2]),
    ({"until": "2026-01-01"}, [1, 2]),  # a bare date as --until covers that whole day
    ({"since": "2026-01-02"}, [3, 4, 5]),
    ({"until": "2026-01-02T00:00:00Z"}, [1, 2, 3]),  # a timestamp is inclusive
    ({"since": "2026-01-02T08:00:00+08:00"}, [3, 4, 5]),  # another zone is converted to UTC
    ({"since": "2026-01-02", "until": "2026-01-03T10:00:00Z", "actor": "carol"}, [4]),
    ({"dataset": "p' OR '1'='1"}, []),  # values are bound, not spliced
])
def test_each_filter_selects_its_entries(log, where, expected):
    assert seqs(log, **where) == expected


def test_an_entry_lists_its_fields(log):
    first = list_entries(log, AuditFilter(dataset="p"))[0]
    assert (first["actor"], first["dataset"], first["version"], first["recipient"]) == ("alice", "p", 1, "cicor")
    assert first["target"] == {"dataset": "p", "version": 1} and len(first["hash"]) == 64


def test_a_missing_or_empty_log_lists_nothing(tmp_path):
    assert list_entries(tmp_path / "none.log", AuditFilter()) == []
    (tmp_path / "empty.log").write_bytes(b"")
    assert list_entries(tmp_path / "empty.log", AuditFilter()) == summarise(tmp_path / "empty.log") == []


def test_a_torn_last_line_is_skipped(tmp_path):
    log = write_log(tmp_path / "audit.log", ENTRIES[:2])
    with log.open("ab") as handle:
        handle.write(b'{"seq":3,"prev":"ab')
    assert seqs(log) == [1, 2]


@pytest.mark.parametrize(("where", "message"), [
    (AuditFilter(outcome="okay"), "unknown outcome 'okay' (did you mean 'ok'?)"),
    (AuditFilter(action="exprot"), "unknown action 'exprot' (did you mean 'export'?)"),
    (AuditFilter(since="yesterday"), "not a date or ISO timestamp: 'yesterday'"),
    (AuditFilter(until="2026-13-01"), "not a date or ISO timestamp"),
])
def test_a_filter_no_entry_can_match_is_a_usage_error(where, message):
    with pytest.raises(UsageError) as caught:
        validate_filter(where)
    assert message in caught.value.message and caught.value.exit_code == 2


def test_parse_time():
    assert parse_time("2026-01-01", end_of_day=True).isoformat() == "2026-01-02T00:00:00"
    assert parse_time("2026-01-01", end_of_day=False).isoformat() == "2026-01-01T00:00:00"
    assert parse_time("2026-01-01T10:00:00+02:00", end_of_day=False).isoformat() == "2026-01-01T08:00:00"


def test_summary_per_dataset(log):
    by_name = {row["dataset"]: row for row in summarise(log)}
    assert sorted(by_name) == ["p", "q"]
    p = by_name["p"]
    assert (p["accesses"], p["exports"], p["denials"], p["errors"]) == (3, 2, 1, 0)
    assert p["last_access"] == "2026-01-03T11:00:00.000000Z"
    assert p["exports_by_recipient_purpose"] == [
        {"recipient": "cicor", "purpose": "research", "exports": 1},
        {"recipient": "incubatee-1", "purpose": "research", "exports": 1}]
    assert (by_name["q"]["accesses"], by_name["q"]["exports"]) == (1, 0)


def test_reading_the_log_is_no_access_of_the_dataset_it_filters_on(tmp_path):
    """`audit --dataset p` is logged naming p: it was counted as an access of p, its time as p's last access, and
    a name that is no dataset (`audit --dataset ghost`) was listed with successful "attempts"."""
    reads = [("2026-02-01T09:00:00.000000Z", "carol", action, "ok", name, None)
             for name in ("p", "ghost") for action in ("audit.read", "exports")]
    by_name = {row["dataset"]: row for row in summarise(write_log(tmp_path / "audit.log", [*ENTRIES, *reads]))}
    assert sorted(by_name) == ["p", "q"]
    assert (by_name["p"]["accesses"], by_name["p"]["last_access"]) == (3, "2026-01-03T11:00:00.000000Z")


def test_scan_entries_finds_entries_by_number_and_by_action_in_log_order(log, tmp_path):
    assert [e["seq"] for e in scan_entries(log, actions=["export"])] == [1, 2, 5]
    assert [e["seq"] for e in scan_entries(log, seqs=[4, 2])] == [2, 4]
    assert [e["seq"] for e in scan_entries(log, seqs=[3], actions=["audit.read"])] == [3, 4]
    assert list(scan_entries(log, seqs=[99], actions=["nosuch"])) == []
    assert list(scan_entries(tmp_path / "none.log", seqs=[1])) == []


def test_scan_entries_is_not_fooled_by_the_marks_inside_values_and_skips_a_torn_line(tmp_path):
    path = write_log(tmp_path / "audit.log", [(*ENTRIES[0][:2], "register", "ok", "p", '"action":"export" {"seq":1,')])
    assert list(scan_entries(path, actions=["export"])) == []
    with path.open("ab") as handle:
        handle.write(b'{"seq":2,"prev":"ab","action":"export"')  # torn: no end, no newline
    assert list(scan_entries(path, seqs=[2], actions=["export"])) == []
    assert [e["seq"] for e in scan_entries(path, seqs=[1])] == [1]
