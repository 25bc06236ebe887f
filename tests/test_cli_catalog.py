"""init, register, datasets, show and classify through the real CLI in a subprocess."""

from __future__ import annotations

import json

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
