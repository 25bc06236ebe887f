"""The one output switch (datashare.cli.output): JSON, CSV or a person's tables and lines, from one Result;
failures under --json in one shape; and every value shown literally, whatever markup or control characters
it holds."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datashare import audit
from datashare.cli import output
from datashare.cli.output import Format, Line, Message, Result, Table, render, visible
from datashare.core import locking
from datashare.workspace import open_workspace

from .conftest import RESEARCH_POLICY, SAMPLE_CSV, CliResult, cli_env, run_cli, run_cli_on_terminal, sample_workspace

# Strings a person, a file or an attacker may put where datashare shows them: rich markup, control characters
# (escape sequences, bells, carriage returns), bidirectional overrides, CJK, and long ones.
HOSTILE = [
    "[/]", "[bold]x[/bold]", "[link=https://example.org]click[/link]", "[red", "x]", "\\[/]", "[/]\\",
    "\x1b[31mred\x1b[0m", "bell\x07", "over\rwrite", "tab\there", "nul\x00", "\u202eevil", "line\u2028sep",
    "病人資料 [九龍城]", ":warning: :smile:", "{task.description} {0}", "%s %(x)s", "x" * 3000,
    "\U000e0000", "zero\u200bwidth", "\ufeffbom", "\ue000private", "soft\u00adhyphen",
]
hostile_text = st.one_of(st.sampled_from(HOSTILE), st.text(min_size=1, max_size=200),
                         st.text(alphabet="[]/\\=#@abc \x1b\x07\r\n", min_size=1, max_size=60))


def shown_lines(text: str) -> list[str]:
    """What must appear literally: each line of the value, with control characters as escapes."""
    return [line for line in visible(text).split("\n") if line.strip()]


@pytest.fixture
def run(workspace: Path):
    """The real CLI, in process, on an initialised workspace: run("datasets", "--json") -> CliResult."""

    def _run(*args: object) -> CliResult:
        return run_cli(*[str(a) for a in args], home=workspace)

    return _run


@pytest.fixture
def catalogued(workspace: Path) -> Path:
    """A workspace with the sample registered as ``patients`` and the research policy approved."""
    return sample_workspace(workspace)


# --- the renderer ------------------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=hostile_text, header=hostile_text)
def test_every_renderer_shows_hostile_text_literally(capsys, monkeypatch, value, header):
    monkeypatch.setenv("NO_COLOR", "1")
    capsys.readouterr()
    result = Result({"value": value}, [Table([header, "n"], [[value, 1], [None, 2]], title=value), Line(value),
                                       Message(value)],
                    csv=Table([header, "n"], [[value, 1]]))
    render(result, Format.HUMAN)
    out, err = capsys.readouterr()
    for line in shown_lines(value):
        assert out.count(line) >= 3, (line, out)  # the title, the cell and the line
        assert line in err
    for line in shown_lines(header):
        assert line in out
    assert "\x1b" not in out + err and "\x07" not in out + err

    render(result, Format.CSV)
    assert list(csv.reader(io.StringIO(capsys.readouterr().out, newline=""))) == [[header, "n"], [value, "1"]]
    render(result, Format.JSON)
    assert json.loads(capsys.readouterr().out) == {"value": value}


def test_visible_escapes_what_a_terminal_would_obey_and_keeps_the_rest():
    assert visible("[/] 病人 :smile:") == "[/] 病人 :smile:"
    assert visible("a\x1b[31mb\x07c\rd\te") == "a\\x1b[31mb\\x07c\\x0dd\\x09e"
    assert visible("\u202eabc\u2028") == "\\u202eabc\\u2028"
    assert visible("two\nlines") == "two\nlines"
    assert visible("a\u200bb\U000e0000") == "a\\u200bb\\U000e0000"


def test_a_result_with_no_table_refuses_csv():
    with pytest.raises(Exception, match="no table"):
        render(Result({"a": 1}, [Line("a")]), Format.CSV)


# --- hostile values through the CLI ------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recipient=hostile_text, purpose=hostile_text, output=hostile_text, reason=hostile_text)
def test_audit_and_its_summary_show_hostile_values_literally(run, home, recipient, purpose, output, reason):
    ws = open_workspace(home)
    audit.append(ws, actor="custodian", action="export", target={"dataset": "patients", "output": output},
                 purpose=purpose, recipient=recipient)
    audit.append(ws, actor="custodian", action="export", outcome="denied", target={"dataset": "patients"},
                 purpose=purpose, recipient=recipient, reason=reason)

    listed = run("audit", "--home", home)
    assert listed.code == 0, listed.stderr
    for value in (recipient, purpose, output, reason):
        for line in shown_lines(value):
            assert line in listed.stdout
    summary = run("audit", "summary", "--home", home)
    assert summary.code == 0, summary.stderr
    for value in (recipient, purpose):
        for line in shown_lines(value):
            assert line in summary.stdout

    as_csv = list(csv.DictReader(io.StringIO(run("audit", "--csv", "--home", home).stdout, newline="")))
    # The log ends: export (ok), export (denied), audit.read, audit.summary; a listing is logged after it is made.
    assert (as_csv[-3]["recipient"], as_csv[-3]["purpose"]) == (recipient, purpose)
    # One object per line, split on "\n" only: a value may hold U+2028, which str.splitlines() also splits on.
    as_json = [json.loads(line) for line in run("audit", "--json", "--home", home).stdout.split("\n") if line]
    assert as_json[-4]["reason"] == reason


# --- --csv ---------------------------------------------------------------------------------------------------------

def rows_of(result: CliResult) -> list[dict[str, str]]:
    assert result.code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout, newline="")))


def test_csv_of_datasets_show_policies_roles_risk_and_summary(run, catalogued):
    home = catalogued
    datasets = rows_of(run("datasets", "--csv", "--home", home))
    as_json = run("datasets", "--json", "--home", home).json()
    assert [(d["name"], int(d["version"]), int(d["rows"]), int(d["n_columns"])) for d in datasets] == \
        [(d["name"], d["version"], d["rows"], d["n_columns"]) for d in as_json] == [("patients", 1, 1000, 16)]

    columns = rows_of(run("show", "patients", "--csv", "--home", home))
    shown = run("show", "patients", "--json", "--home", home).json()["columns"]
    assert [(c["name"], c["class"], c["type"]) for c in columns] == [(c["name"], c["class"], c["type"]) for c in shown]

    policies = rows_of(run("policy", "list", "--csv", "--home", home))
    assert [(p["policy"], p["version"], p["status"], len(p["sha256"])) for p in policies] == \
        [("hk-clinical-research", "1", "active", 64)]

    roles = rows_of(run("roles", "list", "--csv", "--home", home))
    assert len(roles) == 1 and roles[0]["role"] == "custodian"

    risk_json = run("risk", "patients", "--policy", RESEARCH_POLICY, "--json", "--home", home).json()
    sizes = rows_of(run("risk", "patients", "--policy", RESEARCH_POLICY, "--csv", "--home", home))
    # a count of records below k is withheld in both ("<5")
    assert [{k: int(v) if v.isdigit() else v for k, v in row.items()} for row in sizes] == risk_json["class_sizes"]

    explained = rows_of(run("policy", "explain", RESEARCH_POLICY, "--dataset", "patients", "--csv", "--home", home))
    assert {row["column"] for row in explained} == {c["name"] for c in shown}

    summary = rows_of(run("audit", "summary", "--csv", "--home", home))
    assert [(s["dataset"], s["exports"]) for s in summary] == [("patients", "0")]


def test_the_commands_that_only_said_something_answer_json_too(run, catalogued, tmp_path):
    generated = run("generate", "--rows", "5", "--out", tmp_path / "p.csv", "--json").json()
    assert generated == {"out": str(tmp_path / "p.csv"), "rows": 5, "format": "csv", "seed": 42}
    assert run("roles", "service-accounts", "off", "--json", "--home", catalogued).json() == \
        {"allow_service_accounts": False}
    exported = run("keys", "export-public", "--out", tmp_path / "k.pub", "--json", "--home", catalogued).json()
    assert exported["public_key_file"] == str(tmp_path / "k.pub") and exported["key"]["key_id"].startswith("SHA256:")
    assert (tmp_path / "k.pub").read_text(encoding="utf-8").strip() == exported["key"]["public_key"].strip()
    revoked = run("policy", "revoke", "hk-clinical-research", "--json", "--home", catalogued).json()
    assert [(a["policy"], a["version"]) for a in revoked] == [("hk-clinical-research", 1)]


def test_register_and_classify_write_their_columns_as_csv(run, home):
    registered = rows_of(run("register", SAMPLE_CSV, "--name", "patients", "--csv", "--home", home))
    assert {"name", "type", "class", "nulls"} <= registered[0].keys()
    classified = rows_of(run("classify", "patients", f"{registered[0]['name']}=sensitive", "--csv", "--home", home))
    assert [r["name"] for r in classified] == [r["name"] for r in registered]
    assert classified[0]["class"] == "sensitive" and classified[0]["overridden"] == "True"


def test_json_and_csv_together_is_a_usage_error(run, catalogued):
    both = run("datasets", "--json", "--csv", "--home", catalogued)
    assert both.code == 2 and "not both" in both.stderr
    assert json.loads(both.stdout) == {"ok": False, "error": both.stdout and json.loads(both.stdout)["error"],
                                       "exit_code": 2}
    assert run("datasets", "--csv", "--nosuch", "--home", catalogued).stdout == ""  # no JSON unless asked


@pytest.mark.parametrize("args", [["show"], ["datasets", "--nosuch"], ["risk", "patients", "--k", "x"]])
def test_a_usage_error_under_json_is_the_base_failure_answer(run, catalogued, args):
    wrong = run(*args, "--json", "--home", catalogued)
    assert wrong.code == 2
    assert json.loads(wrong.stdout) == {"ok": False, "error": json.loads(wrong.stdout)["error"], "exit_code": 2}
    assert json.loads(wrong.stdout)["error"]


def test_an_empty_table_as_csv_is_its_header(run, home):
    assert run("datasets", "--csv", "--home", home).stdout == \
        "name,version,rows,n_columns,registered_by,registered_at,source_sha256,description,owner\n"


# --- failures under --json -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["datasets"], ["show", "nosuch"], ["roles", "grant", "x", "nosuchrole"], ["audit", "summary"],
    ["risk", "nosuch", "--policy", RESEARCH_POLICY], ["keys", "show"],
])
def test_a_failure_under_json_has_one_shape(run, tmp_path, args):
    missing = run(*args, "--json", "--home", tmp_path / "nowhere")
    assert missing.code == 1
    failure = json.loads(missing.stdout)
    assert failure == {"ok": False, "error": failure["error"], "exit_code": 1}
    assert failure["error"] in missing.stderr
    plain = run(*args, "--home", tmp_path / "nowhere")
    assert plain.code == 1 and plain.stdout == ""


def test_policy_check_and_audit_verify_keep_their_own_failure_answer(run, home, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy: x\nversion: 1\ncolums: {}\n", encoding="utf-8")
    checked = run("policy", "check", bad, "--json", "--home", home)
    assert checked.code == 1
    answer = json.loads(checked.stdout)  # one document: the problems, not a second generic failure
    assert answer["valid"] is False and answer["problems"] and answer["policy_file"] == str(bad)
    assert answer["ok"] is False and answer["exit_code"] == 1 and answer["error"] in checked.stderr

    log = home / "audit.log"
    log.write_bytes(log.read_bytes().replace(b'"init"', b'"tini"', 1))
    verified = run("audit", "verify", "--json", "--home", home)
    assert verified.code == 4
    answer = json.loads(verified.stdout)
    assert answer["ok"] is False and answer["first_error"]["seq"] == 1
    assert answer["exit_code"] == 4 and answer["error"] == answer["message"]
    assert {"entries", "notes"} <= answer.keys()


def test_each_call_in_one_process_starts_afresh(run, home, tmp_path):
    assert run("datasets", "--json", "--home", home).json() == []  # wrote its JSON answer
    failed = run("show", "nosuch", "--json", "--home", home)
    assert failed.code == 1 and json.loads(failed.stdout)["ok"] is False  # so this one's failure is JSON too
    plain = run("show", "nosuch", "--home", home)
    assert plain.code == 1 and plain.stdout == ""  # and a call without --json writes no JSON


def test_debug_and_the_waiting_message_last_one_call(run, home):
    assert "Traceback" in run("--debug", "show", "nosuch", "--home", home).stderr
    after = run("show", "nosuch", "--home", home)
    assert after.code == 1 and "Traceback" not in after.stderr
    assert "DATASHARE_DEBUG" not in os.environ
    locking._Waiting.told = True  # an earlier command waited for the lock and said so
    output.reset()  # what main does at each call
    assert locking._Waiting.told is False


# --- markup in a path, end to end ----------------------------------------------------------------------------------

def test_an_export_into_a_folder_named_with_markup_and_the_audit_after_it(tmp_path):
    home = sample_workspace(tmp_path / "ws")
    out = tmp_path / "run[/]1 [bold]"
    exported = run_cli("export", "patients", "--policy", str(RESEARCH_POLICY), "--out", str(out), "--purpose",
                       "clinical-research", "--recipient", "cicor", home=home, process=True)
    assert exported.code == 0, exported.stderr
    assert str(out) in exported.stderr
    listed = run_cli("audit", home=home, process=True)
    assert listed.code == 0, listed.stderr
    assert f"output={out}" in listed.stdout
    summary = run_cli("audit", "summary", home=home, process=True)
    assert summary.code == 0, summary.stderr
    assert "cicor" in summary.stdout
    assert run_cli("verify", str(out), home=home).code == 0


def test_an_error_message_shows_control_characters_as_escapes(run, home, tmp_path):
    missing = tmp_path / "no\x1b[2Jsuch.csv"
    failed = run("register", missing, "--name", "x", "--home", home)
    assert failed.code == 1
    assert "\x1b" not in failed.stderr and "no\\x1b[2Jsuch.csv" in failed.stderr


def test_markup_in_a_description_owner_and_file_name_is_shown_as_text(run, home, tmp_path):
    source = tmp_path / "in[" / "]extract[bold].csv"  # the path holds "[/]"
    source.parent.mkdir()
    source.write_bytes(SAMPLE_CSV.read_bytes())
    description, owner = "[/] ward [link=x]7[/link] \x1b[5m", "[red]Dr Chan[/red] 陳"
    registered = run("register", source, "--name", "ward", "--description", description, "--owner", owner,
                     "--home", home)
    assert registered.code == 0, registered.stderr
    again = run("register", source, "--name", "ward", "--home", home)
    assert again.code == 0 and "]extract[bold].csv is identical" in again.stderr
    shown = run("show", "ward", "--home", home)
    assert shown.code == 0, shown.stderr
    assert visible(description) in shown.stdout and owner in shown.stdout and str(source) in shown.stdout


def test_the_progress_bar_shows_a_file_name_with_markup_and_braces_as_text(workspace, tmp_path):
    source = tmp_path / "[bold]ward {0} {task.total}[.csv"
    source.write_bytes(SAMPLE_CSV.read_bytes())
    code, shown = run_cli_on_terminal(["register", str(source), "--name", "ward"], cli_env(workspace),
                                      stream="stderr", timeout=120)
    assert code == 0, shown
    assert "internal error" not in shown and "Registered ward v1" in shown


def test_piped_tables_are_plain_columns_and_a_terminal_gets_the_boxes(workspace):
    assert run_cli("register", SAMPLE_CSV, "--name", "patients", home=workspace).code == 0
    piped = run_cli("show", "patients", home=workspace)
    assert piped.code == 0, piped.stderr
    assert not re.search("[\u2500-\u257f]", piped.stdout), piped.stdout  # no line-drawing character
    header = next(line for line in piped.stdout.splitlines() if line.startswith("column"))
    assert header.split() == ["column", "type", "class", "detected", "nulls", "distinct", "min", "max"]
    code, shown = run_cli_on_terminal(["datasets"], cli_env(workspace, TERM="xterm"), stream="stdout", columns=120)
    assert code == 0 and re.search("[\u2500-\u257f]", shown)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("terminal", "expected"), [(False, "a:\tb\r\n\u202ec\n"), (True, "a:\tb\\x0d\n\\u202ec\n")])
def test_verbatim_text_is_written_exactly_and_escaped_only_on_a_terminal(monkeypatch, terminal, expected):
    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    render(Result({}, [output.Verbatim("a:\tb\r\n\u202ec\n")]), Format.HUMAN)
    assert stream.getvalue() == expected
