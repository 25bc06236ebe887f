"""Purging a version: its rows leave every file of the workspace, its record and the audit trail stay, and nothing
uses it afterwards without saying so."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest

from datashare.catalog import register
from datashare.catalog.purge import purge
from datashare.catalog.store import resolve
from datashare.errors import InputError, RefusedError
from datashare.governance import approve, grant
from datashare.workspace import PURGE_STAGING_FILE, Workspace

from .conftest import RESEARCH_POLICY, SAMPLE_CSV, TEST_PASSPHRASE, generated_workspace, run_cli

ACTOR = "keeper"
CANARY = b"ZQXCANARY-7731-ZEBRA"  # a value of version 1 only: after the purge no file of the workspace holds it


def _write(path: Path, rows: int, note: str) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["visit", "note", "score"])
        out.writerows([i, CANARY.decode() if note == "canary" and i == 7 else f"{note} {i}", i * 3]
                      for i in range(rows))
    return path


def _files_holding(home: Path, needle: bytes) -> list[str]:
    return sorted(p.name for p in home.rglob("*") if p.is_file() and needle in p.read_bytes())


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    base = tmp_path_factory.mktemp("purge")
    workspace, _ = generated_workspace(base, ACTOR, 50, 3)
    register(workspace, _write(base / "v1.csv", 300, "canary"), "visits", actor=ACTOR)
    register(workspace, _write(base / "v2.csv", 3000, "later"), "visits", actor=ACTOR)
    return base


@pytest.fixture
def ws(template, tmp_path):
    """A copy of the template: each test purges in a workspace of its own."""
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    return Workspace(tmp_path / "ws")


def test_the_rows_leave_every_file_of_the_workspace_and_the_record_stays(ws):
    assert _files_holding(ws.home, CANARY) == ["catalog.duckdb"]  # DuckDB keeps the value's bytes as they are
    purged = purge(ws, ACTOR, "visits", 1, "retention period ended")
    assert _files_holding(ws.home, CANARY) == []  # a DROP TABLE alone leaves them in the file's free blocks
    assert purged.purged["by"] == ACTOR and purged.purged["reason"] == "retention period ended"
    with ws.connect(read_only=True) as con:
        kept = resolve(con, "visits", 1, purged_ok=True)
        assert (kept.rows, kept.source_sha256, [c.name for c in kept.columns]) == \
            (300, purged.source_sha256, ["visit", "note", "score"])
        assert [(c.min, c.max) for c in kept.columns] == [(None, None)] * 3  # a range is two of the rows' values
        assert resolve(con, "visits", 2).columns[2].max == "8997"
        assert con.execute(f"SELECT count(*) FROM {resolve(con, 'visits', 2).table}").fetchone() == (3000,)
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'visits__v1'").fetchone() == (0,)
    entry = json.loads(ws.audit_path.read_text(encoding="utf-8").splitlines()[-1])
    assert (entry["action"], entry["outcome"], entry["target"], entry["details"]["reason"]) == \
        ("purge", "ok", {"dataset": "visits", "version": 1}, "retention period ended")
    assert not [name for name in os.listdir(ws.home) if name.startswith(PURGE_STAGING_FILE)]


def test_a_purged_version_is_refused_and_the_latest_never_falls_back_silently(ws):
    purge(ws, ACTOR, "visits", 2, "withdrawn")
    with ws.connect(read_only=True) as con:
        with pytest.raises(RefusedError, match="visits v2 was purged") as refused:
            resolve(con, "visits")  # the latest registered version, not v1 behind the caller's back
        assert "--version 1" in refused.value.hint
        assert resolve(con, "visits", 1).rows == 300
    with pytest.raises(InputError, match="purged already"):
        purge(ws, ACTOR, "visits", 2, "again")
    # registering the same file again adds a version: a purged one is never "unchanged"
    again = register(ws, ws.home.parent / "v2.csv", "visits", actor=ACTOR)
    assert (again.unchanged, again.dataset.version) == (False, 3)


def test_a_failed_rename_leaves_the_catalog_whole_and_the_log_says_so(ws, monkeypatch):
    def refuse(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("datashare.catalog.purge.os.replace", refuse)
    with pytest.raises(OSError):
        purge(ws, ACTOR, "visits", 1, "retention")
    monkeypatch.undo()
    with ws.connect(read_only=True) as con:
        assert resolve(con, "visits", 1).purged is None
    assert not (ws.home / PURGE_STAGING_FILE).exists()
    last = json.loads(ws.audit_path.read_text(encoding="utf-8").splitlines()[-1])
    assert (last["action"], last["outcome"]) == ("purge", "error") and "failed_after" in last["details"]


def test_a_copy_left_by_a_killed_purge_is_removed_by_the_next_connection(ws):
    (ws.home / PURGE_STAGING_FILE).write_bytes(b"copy " + CANARY)
    (ws.home / (PURGE_STAGING_FILE + ".wal")).write_bytes(CANARY)
    with ws.connect(read_only=True):
        pass
    assert _files_holding(ws.home, CANARY) == ["catalog.duckdb"]


def test_purge_on_the_command_line_needs_a_custodian_a_reason_and_confirmation(ws):
    grant(ws, ACTOR, "ana", "analyst")
    home = ws.home

    def cli(*args, actor=ACTOR):
        return run_cli("purge", "visits", *args, "--actor", actor, home=home)

    assert cli("--version", "1", "--reason", "r").code == 2  # no terminal to confirm on: --yes is needed
    refused = cli("--version", "1", "--reason", "r", "--yes", actor="ana")
    assert refused.code == 3 and "custodian" in refused.stderr
    assert cli("--version", "1", "--reason", " ", "--yes").code == 1
    done = cli("--version", "1", "--reason", "[bold]ended[/]\x1b[31m", "--yes", "--json")
    assert done.code == 0 and done.json()["purged"]["reason"] == "[bold]ended[/]\x1b[31m"
    shown = run_cli("show", "visits", "--version", "1", "--actor", ACTOR, home=home)
    assert shown.code == 0 and "[bold]ended[/]\\x1b[31m" in shown.stdout and "1 (purged), 2" in shown.stdout
    assert CANARY.decode() not in done.stdout + done.stderr + shown.stdout


def test_export_and_risk_of_a_purged_version_are_refused(tmp_path):
    workspace, _ = generated_workspace(tmp_path, ACTOR, 50, 4)
    register(workspace, SAMPLE_CSV, "patients", actor=ACTOR, source_format="csv")
    approve(workspace, ACTOR, RESEARCH_POLICY, passphrase=TEST_PASSPHRASE)
    purge(workspace, ACTOR, "patients", 2, "consent withdrawn")
    common = ["--policy", RESEARCH_POLICY, "--actor", ACTOR]
    for args in (["export", "patients", *common, "--out", tmp_path / "out", "--purpose", "clinical-research",
                  "--recipient", "cicor"], ["risk", "patients", *common]):
        result = run_cli(*args, home=workspace.home)
        assert result.code == 3 and "patients v2 was purged" in result.stderr, args
        assert "--version 1" in result.stderr
    assert not (tmp_path / "out").exists()

