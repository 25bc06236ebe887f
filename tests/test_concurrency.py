"""Eight processes at once on one workspace: every command succeeds or says "workspace busy";
the audit log ends with one entry per command, in a valid chain."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from pathlib import Path

from .conftest import PROJECT_ROOT, SAMPLE_CSV, cli_env, run_cli

RESEARCH = PROJECT_ROOT / "policies" / "hk-clinical-research.yaml"


def test_eight_processes_mixing_commands(tmp_path):
    home = tmp_path / "ws"
    assert run_cli("init", home=home).code == 0
    assert run_cli("register", str(SAMPLE_CSV), "--name", "patients", home=home).code == 0
    assert run_cli("policy", "approve", str(RESEARCH), home=home).code == 0
    before = len((home / "audit.log").read_text().splitlines())
    sources = []
    for i in range(2):
        src = tmp_path / f"extra{i}.csv"
        src.write_text("id,score\n" + "".join(f"{j},{i}\n" for j in range(50)), encoding="utf-8")
        sources.append(src)
    commands = [
        ["register", str(sources[0]), "--name", "extra0"],
        ["register", str(sources[1]), "--name", "extra1"],
        ["export", "patients", "--policy", str(RESEARCH), "--out", str(tmp_path / "e1"), "--purpose",
         "clinical-research", "--recipient", "cicor"],
        ["export", "patients", "--policy", str(RESEARCH), "--out", str(tmp_path / "e2"), "--purpose",
         "drug-safety", "--recipient", "incubatee-1"],
        ["risk", "patients", "--policy", str(RESEARCH), "--json"],
        ["risk", "patients", "--policy", str(RESEARCH), "--json"],
        ["audit", "--json"],
        ["audit", "verify"],
    ]
    env = cli_env(home, DATASHARE_LOCK_TIMEOUT="120")
    procs = [subprocess.Popen([sys.executable, "-m", "datashare", *args], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for args in commands]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for (code, stderr), args in zip(results, commands, strict=True):
        assert code == 0, (args, stderr)
        assert "Traceback" not in stderr and "IOException" not in stderr
    entries = [json.loads(line) for line in (home / "audit.log").read_text().splitlines()]
    assert len(entries) - before == len(commands)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert run_cli("audit", "verify", home=home).code == 0


def test_a_busy_workspace_is_a_clear_error_not_a_traceback(tmp_path):
    home = tmp_path / "ws"
    assert run_cli("init", home=home).code == 0
    with (home / "lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        result = run_cli("datasets", home=home, env=cli_env(home, DATASHARE_LOCK_TIMEOUT="1"))
    assert result.code == 1
    assert "workspace busy" in result.stderr and "Traceback" not in result.stderr


def test_a_catalog_held_open_by_another_program_is_busy_too(tmp_path):
    home = tmp_path / "ws"
    assert run_cli("init", home=home).code == 0
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('ready', flush=True); time.sleep(30)", str(home / "catalog.duckdb")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = run_cli("datasets", home=home, env=cli_env(home, DATASHARE_LOCK_TIMEOUT="1"))
    finally:
        holder.kill()
        holder.wait()
    assert result.code == 1 and "workspace busy" in result.stderr and "Traceback" not in result.stderr
    assert Path(home / "catalog.duckdb").exists()
