"""init, register, datasets, show and classify through the real CLI; what show gives away to an analyst; hostile
JSON and Parquet sources."""

from __future__ import annotations

import gzip
import json
import os
import pty
import re
import resource
import select
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from datashare.core.locking import workspace_lock

from .conftest import FIXTURES, SAMPLE_CSV, cli_env, make_workspace, run_cli

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
    registered_classes = {c["name"]: c["class"] for c in reg.json()["columns"]}  # as the table shows them
    assert registered_classes["hkid"] == "direct" and registered_classes["diagnosis"] == "sensitive"

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
    assert {c["name"] for c in again.json()["columns"]} >= {"hkid", "name_en"}


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
    assert wrong.code == 2 and "unknown class" in wrong.stderr  # not one of the choices: a usage error
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


# --- show: what it gives away (catalog/store.py): date ranges to the year for anyone but a custodian.

@pytest.fixture(scope="module")
def show_ws(tmp_path_factory):
    home = tmp_path_factory.mktemp("show") / "ws"
    make_workspace(home)
    for args in (["register", str(SAMPLE_CSV), "--name", "patients"], ["roles", "grant", "ana", "analyst"],
                 ["roles", "service-accounts", "on"]):
        assert run_cli(*args, home=home).code == 0, args
    return home


def shown_columns(home, *actor: str) -> dict[str, dict]:
    shown = run_cli("show", "patients", "--json", *actor, home=home)
    assert shown.code == 0, shown.stderr
    return {column["name"]: column for column in shown.json()["columns"]}


def test_an_analyst_sees_date_ranges_to_the_year_only(show_ws):
    analyst = shown_columns(show_ws, "--actor", "ana")
    custodian = shown_columns(show_ws)
    for name in ("dob", "admission_date", "discharge_date"):
        assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", custodian[name]["min"]), custodian[name]
        assert analyst[name]["min"] == custodian[name]["min"][:4] and analyst[name]["max"] == custodian[name]["max"][:4]
        assert set(analyst[name]) == set(custodian[name])  # the same fields, coarser values
    assert analyst["hba1c"]["min"] == custodian["hba1c"]["min"]  # numbers are no date of birth
    table = run_cli("show", "patients", "--actor", "ana", home=show_ws).stdout
    assert custodian["dob"]["min"] not in table and custodian["dob"]["max"] not in table


# --- hostile JSON and Parquet sources (catalog/sources.py): checked before DuckDB reads them, outside the lock.

@pytest.fixture
def empty_ws(tmp_path):
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
def test_deeply_nested_json_is_refused_before_the_lock_is_taken(empty_ws, tmp_path, body):
    hostile = tmp_path / "deep.json"
    hostile.write_bytes(body)
    # The workspace stays locked by this test throughout: the refusal must come from the check that runs first.
    with workspace_lock(empty_ws):
        result = run_cli("register", str(hostile), "--name", "deep", "--json", home=empty_ws,
                         env=cli_env(empty_ws, DATASHARE_LOCK_TIMEOUT="0"), timeout=60)
    assert result.code == 1, result.stderr
    assert "nested more than 64 levels deep" in result.stderr
    assert result.json()["ok"] is False and "Traceback" not in result.stderr
    assert registered(empty_ws) == []


def test_gzipped_deeply_nested_json_is_refused_too(empty_ws, tmp_path):
    # DuckDB decompresses a .json.gz as it reads it: the scan must see the decompressed bytes (this crashed DuckDB).
    ws = empty_ws
    hostile = tmp_path / "deep.json.gz"
    hostile.write_bytes(gzip.compress(b'{"a":' * 20_000 + b"1" + b"}" * 20_000))
    result = run_cli("register", str(hostile), "--format", "json", "--name", "deep", "--json", home=ws, timeout=60)
    assert result.code == 1 and "nested more than 64 levels deep" in result.stderr, result.stderr
    assert registered(ws) == []
    fine = tmp_path / "fine.json.gz"
    fine.write_bytes(gzip.compress(b'{"id": 1, "ward": "A"}\n'))
    assert run_cli("register", str(fine), "--format", "json", "--name", "fine", home=ws).code == 0
    damaged = tmp_path / "damaged.json.gz"
    damaged.write_bytes(fine.read_bytes()[:-6])
    result = run_cli("register", str(damaged), "--format", "json", "--name", "damaged", home=ws, timeout=60)
    assert result.code == 1 and "gzip compression is damaged" in result.stderr and "Traceback" not in result.stderr


def test_zstd_compressed_json_is_refused(empty_ws, tmp_path):
    packed = tmp_path / "deep.json.zst"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 1 AS a) TO '{packed}' (FORMAT json, COMPRESSION zstd)")
    con.close()
    result = run_cli("register", str(packed), "--format", "json", "--name", "deep", home=empty_ws, timeout=60)
    assert result.code == 1 and "zstd-compressed" in result.stderr, result.stderr
    # A skippable frame of a quote before and after hides the frame's magic, and the bytes scan as one string.
    def skippable(data: bytes) -> bytes:
        return struct.pack("<II", 0x184D2A50, len(data)) + data
    hidden = tmp_path / "hidden.json.zst"
    hidden.write_bytes(skippable(b'"') + packed.read_bytes() + skippable(b'"'))
    disguised = tmp_path / "plain.json"
    disguised.write_bytes(hidden.read_bytes())
    for path in (hidden, disguised):
        result = run_cli("register", str(path), "--format", "json", "--name", "hidden", home=empty_ws, timeout=60)
        assert result.code == 1 and "zstd-compressed" in result.stderr, result.stderr
    assert registered(empty_ws) == []


def test_a_gzipped_parquet_file_is_refused_cleanly(empty_ws, tmp_path):
    # Parquet compresses inside the file (pages); DuckDB does not decompress a whole .parquet.gz, so the schema
    # check cannot be bypassed this way: the file is simply not Parquet.
    flat = parquet(tmp_path / "flat.parquet", "1 AS a")
    packed = tmp_path / "packed.parquet.gz"
    packed.write_bytes(gzip.compress(flat.read_bytes()))
    result = run_cli("register", str(packed), "--format", "parquet", "--name", "packed", home=empty_ws, timeout=60)
    assert result.code == 1 and "Traceback" not in result.stderr, result.stderr
    assert registered(empty_ws) == []


def test_json_within_the_limit_is_registered(empty_ws, tmp_path):
    fine = tmp_path / "fine.ndjson"
    fine.write_text("".join(json.dumps({"id": i, "visit": {"ward": "A[1]", "codes": [[i]]}}) + "\n"
                            for i in range(50)), encoding="utf-8")
    assert run_cli("register", str(fine), "--name", "fine", home=empty_ws).code == 0
    assert registered(empty_ws) == ["fine"]


def test_a_deeply_nested_parquet_schema_is_refused(empty_ws, tmp_path):
    value = "1"
    for _ in range(70):
        value = f"{{'f': {value}}}"
    deep = parquet(tmp_path / "deep.parquet", f"{value} AS deep")
    result = run_cli("register", str(deep), "--name", "deep", home=empty_ws, timeout=60)
    assert result.code == 1 and "nested more than 64 levels deep" in result.stderr, result.stderr
    assert registered(empty_ws) == []


@pytest.mark.parametrize("kind, make, where", [
    ("json", lambda p: p.write_text('{"A123456(3)": 1, "b": 2}\n', encoding="utf-8"), "column 1"),
    ("json", lambda p: p.write_text('{"id": 1, "next_of_kin": {"CHAN Tai Man": "+852 9123 4567"}}\n',
                                    encoding="utf-8"), "inside column 2"),
    ("json", lambda p: p.write_text('{"id": 1, "9123 4567": 2}\n', encoding="utf-8"), "column 2"),
    ("parquet", lambda p: parquet(p, "1 AS id, 2 AS \"patient@example.com\""), "column 2"),
    ("parquet", lambda p: parquet(p, "1 AS id, {'1931-04-02': 1} AS s"), "inside column 2"),
])
def test_identifier_shaped_names_are_refused_in_every_format(empty_ws, tmp_path, kind, make, where):
    source = tmp_path / f"source.{kind}"
    make(source)
    result = run_cli("register", str(source), "--name", "t", home=empty_ws)
    assert result.code == 1, result.stderr
    assert "looks like data" in result.stderr and where in result.stderr
    for value in ("A123456", "CHAN Tai Man", "9123 4567", "patient@example.com", "1931-04-02"):
        assert value not in result.stderr and value not in (empty_ws / "audit.log").read_text(encoding="utf-8")
    assert registered(empty_ws) == []


def test_control_characters_in_parquet_names_are_refused(empty_ws, tmp_path):
    source = parquet(tmp_path / "ctl.parquet", "1 AS id, 2 AS \"ward\tname\"")
    result = run_cli("register", str(source), "--name", "t", home=empty_ws)
    assert result.code == 1 and "control character" in result.stderr, result.stderr
    assert registered(empty_ws) == []


def test_a_full_disk_at_commit_is_named_as_such(empty_ws, tmp_path):
    """The load fits in memory; only COMMIT writes, and fails: DuckDB says TransactionException."""
    source = tmp_path / "mid.csv"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT range AS id, range * 1.5 AS score FROM range(100000)) TO '{source}' (HEADER)")
    con.close()
    limit = (empty_ws / "catalog.duckdb").stat().st_size + 64 * 1024

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "datashare", "register", str(source), "--name", "t", "--json"],
                          env=cli_env(empty_ws), capture_output=True, text=True, preexec_fn=limit_file_size,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "the catalog could not be written (disk full?)" in proc.stderr
    assert "TransactionException" not in proc.stderr + proc.stdout
    assert json.loads(proc.stdout)["ok"] is False
    assert registered(empty_ws) == []
