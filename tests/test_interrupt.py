"""Ctrl-C in the middle of real work (a real process sent SIGINT once its progress shows the work under way):
"interrupted" and exit 130, the audit entry says interrupted, and nothing is half-written."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from datashare.governance import approve
from datashare.workspace import Workspace

from .conftest import RESEARCH_POLICY, TEST_PASSPHRASE, cli_env, generated_workspace, make_workspace, run_cli


def interrupt_when_shown(args: list[str], env: dict[str, str], label: str, limit: float = 120) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal; send SIGINT as soon as ``label`` shows there.

    Returns the exit code and what stderr showed. Every wait is bounded by ``limit``; a command that ends
    before the label shows fails the test (it was never interrupted mid-way).
    """
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "datashare", *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    shown, sent = "", False
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline and select.select([leader], [], [], max(deadline - time.monotonic(), 0))[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closes when the process ends
                break
            if not chunk:
                break
            shown += chunk.decode(errors="replace")
            if not sent and label in shown:
                assert proc.poll() is None
                os.kill(proc.pid, signal.SIGINT)
                sent = True
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    assert sent, f"{label!r} never showed: {shown[-2000:]}"
    return code, shown


def last_entry(home: Path) -> dict:
    return json.loads((home / "audit.log").read_text(encoding="utf-8").splitlines()[-1])


def assert_interrupted(code: int, shown: str, home: Path, action: str, env: dict[str, str]) -> None:
    assert code == 130, shown[-2000:]
    assert "datashare: error: interrupted" in shown and "internal error" not in shown
    entry = last_entry(home)
    assert (entry["action"], entry["outcome"], entry["reason"]) == (action, "error", "interrupted")
    verified = run_cli("audit", "verify", home=home, env=env)
    assert verified.code == 0, verified.stderr


def test_ctrl_c_during_a_load_registers_nothing(tmp_path):
    home = make_workspace(tmp_path / "ws")
    big = tmp_path / "big.csv"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT i AS id, i * 7 % 1000 AS score, 'row ' || i AS label FROM range(6000000) t(i)) "
                f"TO '{big}' (FORMAT csv, HEADER true)")
    con.close()
    env = cli_env(home, TERM="xterm")
    code, shown = interrupt_when_shown(["register", str(big), "--name", "big"], env, "Loading big.csv")
    assert_interrupted(code, shown, home, "register", env)
    assert run_cli("datasets", "--json", home=home).json() == []
    catalog = duckdb.connect(str(home / "catalog.duckdb"), read_only=True)
    try:
        tables = {row[0] for row in catalog.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    finally:
        catalog.close()
    assert not [t for t in tables if "big" in t], tables  # no half-loaded table


@pytest.fixture(scope="module")
def export_ws(tmp_path_factory) -> Workspace:
    """Enough generated patients that an export's gate and writing take a moment; the research policy approved."""
    ws, _ = generated_workspace(tmp_path_factory.mktemp("interrupt"), "custodian", 150_000, seed=5)
    approve(ws, "custodian", RESEARCH_POLICY, passphrase=TEST_PASSPHRASE)
    return ws


@pytest.mark.parametrize("label", ["Measuring the classes", "Writing patients.parquet"])
def test_ctrl_c_during_an_export_leaves_no_export(export_ws, tmp_path, label):
    ws = export_ws
    out = tmp_path / "exports" / "run1"
    out.parent.mkdir()
    env = cli_env(ws.home, TERM="xterm", DATASHARE_ACTOR="custodian")
    code, shown = interrupt_when_shown(
        ["export", "patients", "--policy", str(RESEARCH_POLICY), "--out", str(out), "--purpose", "clinical-research",
         "--recipient", "cicor"], env, label)
    assert_interrupted(code, shown, ws.home, "export", env)
    assert list(out.parent.iterdir()) == []  # neither the export nor its staging folder
