"""Registering under a full disk, and the progress bar on a real terminal, through the CLI in a subprocess."""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
from pathlib import Path

import duckdb

from .conftest import cli_env, run_cli, run_cli_on_terminal


def big_csv(path: Path, rows: int) -> Path:
    con = duckdb.connect()
    con.execute(f"COPY (SELECT range AS id, range * 1.5 AS score, 'ward_' || (range % 97) AS ward "
                f"FROM range({rows})) TO '{path}' (HEADER)")
    con.close()
    return path


def test_a_full_disk_says_so_and_leaves_the_catalog_as_it_was(tmp_path):
    home = tmp_path / "ws"
    assert run_cli("init", home=home).code == 0
    small = tmp_path / "small.csv"
    small.write_text("id,score\n1,2\n3,4\n", encoding="utf-8")
    first = run_cli("register", str(small), "--name", "t", "--json", home=home)
    assert first.code == 0, first.stderr
    recorded = first.json()
    big = big_csv(tmp_path / "big.csv", 600_000)
    # Writes past the catalog's present size fail as they would on a full disk (the audit log stays smaller).
    limit = (home / "catalog.duckdb").stat().st_size + 64 * 1024

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "datashare", "register", str(big), "--name", "t"],
                          env=cli_env(home), capture_output=True, text=True, preexec_fn=limit_file_size,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "catalog could not be written (disk full?)" in proc.stderr
    assert "IOException" not in proc.stderr and "Traceback" not in proc.stderr
    last = json.loads((home / "audit.log").read_text(encoding="utf-8").splitlines()[-1])
    assert (last["action"], last["outcome"]) == ("register", "error")

    shown = run_cli("show", "t", "--json", home=home)
    assert shown.code == 0, shown.stderr
    data = shown.json()
    assert [v["version"] for v in data["versions"]] == [1]
    assert (data["rows"], data["source_sha256"]) == (recorded["rows"], recorded["source_sha256"]) == (
        2, recorded["source"]["sha256"])
    con = duckdb.connect(str(home / "catalog.duckdb"), read_only=True)
    try:
        assert con.execute('SELECT * FROM data."t__v1" ORDER BY id').fetchall() == [(1, 2), (3, 4)]
    finally:
        con.close()
    again = run_cli("register", str(big), "--name", "t", "--json", home=home)
    assert again.code == 0 and again.json()["version"] == 2 and again.json()["rows"] == 600_000


def test_progress_moves_on_a_terminal_and_stays_quiet_when_piped(tmp_path):
    home = tmp_path / "ws"
    assert run_cli("init", home=home).code == 0
    big = big_csv(tmp_path / "big.csv", 3_000_000)
    env = cli_env(home, TERM="xterm", COLUMNS="100")
    code, shown = run_cli_on_terminal(["register", str(big), "--name", "big"], env)
    assert code == 0, shown
    assert "Loading big.csv" in shown
    percentages = {int(p) for p in re.findall(r"(\d{1,3})%", shown)}
    assert percentages & set(range(1, 100)), shown  # the bar moved between 0% and 100%

    piped = run_cli("register", str(big), "--name", "piped", home=home)
    assert piped.code == 0, piped.stderr
    assert "Loading" not in piped.stderr and "%" not in piped.stderr and "\x1b" not in piped.stderr
