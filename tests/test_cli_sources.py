"""Hostile JSON and Parquet sources (catalog/sources.py): checked before DuckDB reads them, outside the lock."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import duckdb
import pytest

from datashare.core.locking import workspace_lock

from .conftest import cli_env, make_workspace, run_cli


@pytest.fixture
def ws(tmp_path):
    home = tmp_path / "ws"
    make_workspace(home)
    return home


def parquet(path, select: str):
    con = duckdb.connect()
    con.execute(f"COPY (SELECT {select}) TO '{path}' (FORMAT parquet)")
    con.close()
    return path


def registered(home) -> list[str]:
    return [d["name"] for d in run_cli("datasets", "--json", home=home).json()]


@pytest.mark.parametrize("body", [
    b"[" * 10_000 + b"]" * 10_000,  # took 6 minutes and 1.8 GB under the lock
    b'{"a":' * 20_000 + b"1" + b"}" * 20_000,  # crashed DuckDB
])
def test_deeply_nested_json_is_refused_before_the_lock_is_taken(ws, tmp_path, body):
    hostile = tmp_path / "deep.json"
    hostile.write_bytes(body)
    # The workspace stays locked by this test throughout: the refusal must come from the check that runs first.
    with workspace_lock(ws):
        result = run_cli("register", str(hostile), "--name", "deep", "--json", home=ws,
                         env=cli_env(ws, DATASHARE_LOCK_TIMEOUT="0"), timeout=60)
    assert result.code == 1, result.stderr
    assert "nested more than 64 levels deep" in result.stderr
    assert result.json()["ok"] is False and "Traceback" not in result.stderr
    assert registered(ws) == []


def test_json_within_the_limit_is_registered(ws, tmp_path):
    fine = tmp_path / "fine.ndjson"
    fine.write_text("".join(json.dumps({"id": i, "visit": {"ward": "A[1]", "codes": [[i]]}}) + "\n"
                            for i in range(50)), encoding="utf-8")
    assert run_cli("register", str(fine), "--name", "fine", home=ws).code == 0
    assert registered(ws) == ["fine"]


def test_a_deeply_nested_parquet_schema_is_refused(ws, tmp_path):
    value = "1"
    for _ in range(70):
        value = f"{{'f': {value}}}"
    deep = parquet(tmp_path / "deep.parquet", f"{value} AS deep")
    result = run_cli("register", str(deep), "--name", "deep", home=ws, timeout=60)
    assert result.code == 1 and "nested more than 64 levels deep" in result.stderr, result.stderr
    assert registered(ws) == []


@pytest.mark.parametrize("kind, make, where", [
    ("json", lambda p: p.write_text('{"A123456(3)": 1, "b": 2}\n', encoding="utf-8"), "column 1"),
    ("json", lambda p: p.write_text('{"id": 1, "next_of_kin": {"CHAN Tai Man": "+852 9123 4567"}}\n',
                                    encoding="utf-8"), "inside column 2"),
    ("json", lambda p: p.write_text('{"id": 1, "9123 4567": 2}\n', encoding="utf-8"), "column 2"),
    ("parquet", lambda p: parquet(p, "1 AS id, 2 AS \"patient@example.com\""), "column 2"),
    ("parquet", lambda p: parquet(p, "1 AS id, {'1931-04-02': 1} AS s"), "inside column 2"),
])
def test_identifier_shaped_names_are_refused_in_every_format(ws, tmp_path, kind, make, where):
    source = tmp_path / f"source.{kind}"
    make(source)
    result = run_cli("register", str(source), "--name", "t", home=ws)
    assert result.code == 1, result.stderr
    assert "looks like data" in result.stderr and where in result.stderr
    for value in ("A123456", "CHAN Tai Man", "9123 4567", "patient@example.com", "1931-04-02"):
        assert value not in result.stderr and value not in (ws / "audit.log").read_text(encoding="utf-8")
    assert registered(ws) == []


def test_control_characters_in_parquet_names_are_refused(ws, tmp_path):
    source = parquet(tmp_path / "ctl.parquet", "1 AS id, 2 AS \"ward\tname\"")
    result = run_cli("register", str(source), "--name", "t", home=ws)
    assert result.code == 1 and "control character" in result.stderr, result.stderr
    assert registered(ws) == []


def test_a_full_disk_at_commit_is_named_as_such(ws, tmp_path):
    """The load fits in memory; only COMMIT writes, and fails: DuckDB says TransactionException."""
    source = tmp_path / "mid.csv"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT range AS id, range * 1.5 AS score FROM range(100000)) TO '{source}' (HEADER)")
    con.close()
    limit = (ws / "catalog.duckdb").stat().st_size + 64 * 1024

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "datashare", "register", str(source), "--name", "t", "--json"],
                          env=cli_env(ws), capture_output=True, text=True, preexec_fn=limit_file_size, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "the catalog could not be written (disk full?)" in proc.stderr
    assert "TransactionException" not in proc.stderr + proc.stdout
    assert json.loads(proc.stdout)["ok"] is False
    assert registered(ws) == []
