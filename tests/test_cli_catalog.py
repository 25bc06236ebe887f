"""init, register, datasets, show and classify through the real CLI in a subprocess."""

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

import pytest

from .conftest import FIXTURES, SAMPLE_CSV, cli_env, run_cli

CLASSES = {"direct", "quasi", "sensitive", "other"}


def test_commands_before_init_say_so(cli, home):
    for args in (["datasets"], ["show", "patients"], ["register", str(SAMPLE_CSV), "--name", "patients"]):
        result = cli(*args)
        assert result.code == 1, args
        assert "datashare init" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (home / "catalog.duckdb").exists()


def test_register_datasets_show_json_contract(cli, workspace):
    reg = cli("register", SAMPLE_CSV, "--name", "patients", "--description", "sample", "--owner", "ward", "--json")
    assert reg.code == 0, reg.stderr
    assert reg.json()["version"] == 1 and reg.json()["unchanged"] is False

    listed = cli("datasets", "--json")
    assert listed.code == 0
    [entry] = listed.json()
    assert entry["name"] == "patients" and entry["version"] == 1 and entry["rows"] == reg.json()["rows"] > 0

    shown = cli("show", "patients", "--json").json()
    assert {"name", "version", "rows", "columns"} <= set(shown)
    assert shown["name"] == "patients" and shown["version"] == 1
    for column in shown["columns"]:
        assert {"name", "type", "class"} <= set(column)
        assert column["class"] in CLASSES
    classes = {c["name"]: c["class"] for c in shown["columns"]}
    assert classes["hkid"] == "direct" and classes["phone"] == "direct"


def test_register_again_same_content_adds_nothing(cli, workspace):
    assert cli("register", SAMPLE_CSV, "--name", "patients").code == 0
    again = cli("register", SAMPLE_CSV, "--name", "patients", "--json")
    assert again.code == 0 and again.json()["unchanged"] is True and again.json()["version"] == 1


def test_show_older_version(cli, workspace, tmp_path):
    src = tmp_path / "t.csv"
    src.write_text("id\n1\n", encoding="utf-8")
    assert cli("register", src, "--name", "t").code == 0
    src.write_text("id\n1\n2\n", encoding="utf-8")
    assert cli("register", src, "--name", "t").code == 0
    assert cli("show", "t", "--version", "1", "--json").json()["rows"] == 1
    assert cli("show", "t", "--json").json()["rows"] == 2
    missing = cli("show", "t", "--version", "9")
    assert missing.code == 1 and "no version 9" in missing.stderr


def test_home_option_and_env_are_the_same_workspace(tmp_path):
    home = tmp_path / "elsewhere"
    assert run_cli("init", "--home", str(home), home=tmp_path / "unused").code == 0
    env = cli_env(home)
    result = run_cli("datasets", "--json", home=home, env=env)
    assert result.code == 0 and result.json() == []
    assert (home / "catalog.duckdb").is_file()


def test_bad_input_is_one_line_and_a_stable_exit_code(cli, workspace, tmp_path):
    bad_name = cli("register", SAMPLE_CSV, "--name", "Bad Name")
    assert bad_name.code == 1 and "invalid dataset name" in bad_name.stderr
    missing = cli("register", tmp_path / "nope.csv", "--name", "x")
    assert missing.code == 1 and "no such file" in missing.stderr
    big5 = cli("register", FIXTURES / "patients_big5.csv", "--name", "x")
    assert big5.code == 1 and "--encoding big5hkscs" in big5.stderr
    usage = cli("register", SAMPLE_CSV)
    assert usage.code == 2
    for result in (bad_name, missing, big5, usage):
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
    assert cli("datasets", "--json").json() == []


def test_big5_with_encoding_option(cli, workspace):
    result = cli("register", FIXTURES / "patients_big5.csv", "--name", "big5", "--encoding", "big5hkscs", "--json")
    assert result.code == 0, result.stderr


def test_classify_command(cli, workspace):
    assert cli("register", SAMPLE_CSV, "--name", "patients").code == 0
    result = cli("classify", "patients", "sex=sensitive", "hba1c=quasi", "--json")
    assert result.code == 0, result.stderr
    classes = {c["name"]: c["class"] for c in result.json()["columns"]}
    assert classes["sex"] == "sensitive" and classes["hba1c"] == "quasi"
    wrong = cli("classify", "patients", "sex=secret")
    assert wrong.code == 1 and "unknown class" in wrong.stderr
    malformed = cli("classify", "patients", "sex")
    assert malformed.code == 2


def test_every_command_leaves_an_audit_entry(cli, workspace, home):
    cli("register", SAMPLE_CSV, "--name", "patients")
    cli("register", SAMPLE_CSV, "--name", "BAD")
    cli("datasets")
    cli("show", "patients")
    entries = [json.loads(line) for line in (home / "audit.log").read_text(encoding="utf-8").splitlines()]
    seen = [(e["action"], e["outcome"]) for e in entries]
    assert seen == [("init", "ok"), ("keys.generate", "ok"), ("register", "ok"), ("register", "error"),
                    ("datasets", "ok"), ("show", "ok")]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))


def test_version_and_help(cli):
    version = cli("--version")
    assert version.code == 0 and version.stdout.startswith("datashare ")
    helped = cli("--help")
    assert helped.code == 0 and "register" in helped.stdout


def test_show_json_counts_the_columns_of_every_version(cli, workspace, tmp_path):
    src = tmp_path / "t.csv"
    src.write_text("id,score\n1,2\n", encoding="utf-8")
    assert cli("register", src, "--name", "t").code == 0
    src.write_text("id,score,ward\n1,2,A\n", encoding="utf-8")
    assert cli("register", src, "--name", "t").code == 0
    shown = cli("show", "t", "--json").json()
    assert [v["n_columns"] for v in shown["versions"]] == [2, 3]
    assert cli("datasets", "--json").json()[0]["n_columns"] == 3


def test_init_where_no_folder_can_be_made_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    for home in (Path("/proc/nope"), blocker / "ws"):
        result = run_cli("init", "--home", str(home), home=home)
        assert result.code == 1, result.stderr
        assert "cannot create the workspace" in result.stderr
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_init_on_a_terminal_asks_for_the_passphrase_before_creating_anything(tmp_path):
    home = tmp_path / "ws"
    env = {k: v for k, v in cli_env(home).items() if k != "DATASHARE_PASSPHRASE"}
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the CLI with the pseudo-terminal as its terminal
        os.execve(sys.executable, [sys.executable, "-m", "datashare", "init"], env)
    shown = b""
    answers = [b"first passphrase\n", b"second passphrase\n"]
    deadline = time.monotonic() + 120
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([terminal], [], [], left)[0]:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(terminal)
            pytest.fail(f"init did not finish within 120s on a terminal; it showed {shown!r}")
        try:
            chunk = os.read(terminal, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
        if answers and shown.count(b"assphrase") > 2 - len(answers):
            os.write(terminal, answers.pop(0))
    os.close(terminal)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1, shown
    assert b"differ" in shown
    assert not home.exists()


def test_init_on_an_existing_workspace_checks_the_actor(cli, workspace, home):
    result = cli("init", "--actor", "mallory")
    assert result.code == 3
    entries = [json.loads(line) for line in (home / "audit.log").read_text(encoding="utf-8").splitlines()]
    assert not [e for e in entries if e["actor"] == "mallory"]
    assert (entries[-1]["action"], entries[-1]["outcome"]) == ("act_as", "denied")
    assert entries[-1]["target"]["as"] == "mallory"


@pytest.mark.parametrize("value", ["abc", "-1", "nan"])
def test_a_bad_lock_timeout_is_an_error_naming_the_variable(cli, workspace, home, value):
    result = run_cli("datasets", home=home, env=cli_env(home, DATASHARE_LOCK_TIMEOUT=value))
    assert result.code == 1
    assert "DATASHARE_LOCK_TIMEOUT" in result.stderr and "Traceback" not in result.stderr
    assert run_cli("datasets", home=home, env=cli_env(home, DATASHARE_LOCK_TIMEOUT="2.5")).code == 0


def test_classify_with_a_malformed_pair_is_a_usage_error(cli, workspace, home):
    assert cli("register", SAMPLE_CSV, "--name", "patients").code == 0
    before = (home / "audit.log").read_text(encoding="utf-8")
    for bad in ("sex", "=direct"):
        result = cli("classify", "patients", bad)
        assert result.code == 2 and "COLUMN=CLASS" in result.stderr
    assert (home / "audit.log").read_text(encoding="utf-8") == before
    shown = {c["name"]: c for c in cli("show", "patients", "--json").json()["columns"]}
    assert not shown["sex"]["overridden"]


HEAVY_MODULES = ("duckdb", "pandas", "pyarrow", "cryptography", "sqlglot")


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_no_heavy_library(flag):
    code = (
        "import json, sys\n"
        "from datashare.cli import main\n"
        f"status = main([{flag!r}])\n"
        f"print(json.dumps([status, sorted(m for m in {HEAVY_MODULES!r} if sys.modules.get(m) is not None)]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    status, loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert status == 0 and loaded == []
