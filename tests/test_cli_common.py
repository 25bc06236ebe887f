"""What every command shares: JSON for scripts even on failure, and quiet ends when the reader leaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from datashare import audit
from datashare.workspace import open_workspace

from .conftest import cli_env, sample_workspace


def test_a_failure_under_json_is_json_too(cli, workspace, tmp_path):
    result = cli("verify", tmp_path / "nowhere", "--json")
    assert result.code == 4
    assert json.loads(result.stdout) == {"ok": False, "error": f"missing export: {tmp_path / 'nowhere'} is not a "
                                                               "folder", "exit_code": 4}
    assert "missing export" in result.stderr
    plain = cli("verify", tmp_path / "nowhere")
    assert plain.code == 4 and plain.stdout == ""


def test_a_reader_that_leaves_early_is_no_error(workspace):
    ws = open_workspace(workspace)
    for n in range(1000):  # about 250 KB, far more than a pipe holds (64 KB), so the writer meets the closed pipe
        audit.append(ws, actor="filler", action="datasets", details={"n": n})
    proc = subprocess.Popen([sys.executable, "-m", "datashare", "audit", "--json"], env=cli_env(workspace),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    code = proc.wait(timeout=120)
    assert json.loads(first)["seq"] == 1
    assert code == 0 and proc.stderr.read() == b""


@pytest.mark.parametrize("command", [["datasets"], ["roles", "list"], ["keys", "show"], ["audit", "summary"]])
def test_a_table_for_a_reader_that_is_already_gone_is_no_error(home, command):
    """Tables go through rich, which would exit 1 on a closed pipe: the CLI's rule (exit 0, no message) wins."""
    sample_workspace(home)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader left before a byte was written: every write meets a closed pipe
    try:
        proc = subprocess.run([sys.executable, "-m", "datashare", *command], env=cli_env(home),
                              stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr


def test_choices_are_taken_in_any_case(cli, workspace, tmp_path):
    from .conftest import SAMPLE_CSV

    made = cli("generate", "--rows", "5", "--out", tmp_path / "few.data", "--format", "CSV", "--json")
    assert made.code == 0 and made.json()["format"] == "csv", made.stderr
    registered = cli("register", SAMPLE_CSV, "--name", "patients", "--format", "Csv", "--encoding", "UTF-8",
                     "--json")
    assert registered.code == 0 and registered.json()["source"]["format"] == "csv", registered.stderr
    assert cli("roles", "grant", "someone", "Auditor").code == 0
    denied = cli("audit", "--outcome", "DENIED", "--action", "REGISTER", "--json")
    assert denied.code == 0, denied.stderr
    typo = cli("audit", "--outcome", "DENID")
    assert typo.code == 2 and "did you mean 'denied'" in typo.stderr  # still checked, with its suggestion
