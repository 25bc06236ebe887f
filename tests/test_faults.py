"""Fault injection with real processes: kill -9 during exports and audit appends, then check nothing is
half-done; and a full run grepped for every identifier and secret."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from .conftest import PROJECT_ROOT, SAMPLE_CSV, TEST_PASSPHRASE, cli_env, run_cli

RESEARCH = PROJECT_ROOT / "policies" / "hk-clinical-research.yaml"


def ready_workspace(home: Path, csv: Path = SAMPLE_CSV) -> None:
    assert run_cli("init", home=home).code == 0
    assert run_cli("register", str(csv), "--name", "patients", home=home).code == 0
    assert run_cli("policy", "approve", str(RESEARCH), home=home).code == 0


def check_workspace_sound(home: Path, out_parent: Path) -> None:
    """After a crash: the catalog opens, versions read back, exports are complete or absent, the log verifies."""
    shown = run_cli("show", "patients", "--json", home=home)
    assert shown.code == 0, shown.stderr
    version = shown.json()
    con = duckdb.connect(str(home / "catalog.duckdb"), read_only=True)
    try:
        assert con.execute('SELECT count(*) FROM data."patients__v1"').fetchone()[0] == version["rows"]
    finally:
        con.close()
    for folder in out_parent.iterdir():
        if folder.name.startswith("run"):
            assert run_cli("verify", str(folder), home=home).code == 0, f"{folder} is under its final name but broken"
    verified = run_cli("audit", "verify", "--json", home=home)
    if verified.code != 0:
        assert json.loads(verified.stdout)["first_error"]["problem"] == "torn", verified.stdout


def test_kill_during_export_leaves_complete_exports_or_none(tmp_path):
    from datashare.fakedata import generate_patients

    big = tmp_path / "big.csv"
    generate_patients(big, 150_000, seed=3)
    home = tmp_path / "ws"
    ready_workspace(home, big)
    exports = tmp_path / "exports"
    exports.mkdir()
    rng = random.Random(7)
    for attempt in range(4):
        out = exports / f"run{attempt}"
        proc = subprocess.Popen([sys.executable, "-m", "datashare", "export", "patients", "--policy", str(RESEARCH),
                                 "--out", str(out), "--purpose", "clinical-research", "--recipient", "cicor"],
                                env=cli_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 2.5))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        check_workspace_sound(home, exports)
    final = run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(exports / "run-final"),
                    "--purpose", "clinical-research", "--recipient", "cicor", home=home)
    assert final.code == 0, final.stderr


HAMMER = """
import sys
from pathlib import Path
from datashare import audit
from datashare.workspace import Workspace
ws = Workspace(Path(sys.argv[1]))
while True:
    audit.append(ws, actor="hammer", action="test", details={"pad": "x" * 2000})
"""


def test_kill_during_audit_appends_leaves_at_most_a_torn_line(tmp_path):
    home = tmp_path / "ws"
    assert run_cli("init", home=home).code == 0
    rng = random.Random(11)
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-c", HAMMER, str(home)])
        time.sleep(rng.uniform(0.3, 0.8))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        result = run_cli("audit", "verify", "--json", home=home)
        report = json.loads(result.stdout)
        assert result.code == 0 or report["first_error"]["problem"] == "torn", report
    assert run_cli("datasets", home=home).code == 0  # the next command works, and acknowledges any torn line
    final = run_cli("audit", "verify", "--json", home=home)
    assert final.code == 0, final.stdout


def test_a_full_run_leaves_no_identifier_or_secret_behind(tmp_path):
    home = tmp_path / "ws"
    ready_workspace(home)
    out = tmp_path / "run1"
    assert run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(out), "--purpose",
                   "clinical-research", "--recipient", "cicor", home=home).code == 0
    outputs = [run_cli(*args, home=home) for args in (
        ["risk", "patients", "--policy", str(RESEARCH), "--json"], ["policy", "explain", str(RESEARCH), "--dataset",
        "patients", "--json"], ["audit", "--json"], ["audit", "summary", "--json"], ["verify", str(out), "--json"],
        ["keys", "show", "--json"], ["policy", "list", "--json"], ["register", str(tmp_path / "missing.csv"),
        "--name", "x"], ["export", "patients", "--policy", str(RESEARCH), "--out", str(out), "--purpose", "spying",
        "--recipient", "cicor"])]
    written = (home / "audit.log").read_text(encoding="utf-8") + (out / "manifest.json").read_text(encoding="utf-8")
    written += "".join(r.stdout + r.stderr for r in outputs)
    con = duckdb.connect()
    identifiers = con.execute(f"""SELECT DISTINCT v FROM (
        SELECT unnest([hkid, name_en, name_zh, phone, email, address]) AS v FROM read_csv('{SAMPLE_CSV}'))
        WHERE v IS NOT NULL AND length(trim(v)) > 3""").fetchall()
    leaked = [v for (v,) in identifiers if v.strip() in written]
    assert leaked == []
    secret = (home / "secret.key").read_bytes()
    assert secret.hex() not in written and TEST_PASSPHRASE not in written
    assert "PRIVATE KEY" not in written
