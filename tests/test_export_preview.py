"""The preview (`export --preview`): the export's own rows, before and after for custodians, after only for anyone
else; nothing written or signed; logged; no control character shown raw."""

from __future__ import annotations

import csv
import json

import duckdb
import pytest

from datashare.export.preview import preview
from datashare.workspace import open_workspace

from .conftest import PROJECT_ROOT, RESEARCH_POLICY, SAMPLE_CSV, TEST_PASSPHRASE, run_cli, sample_workspace

RESEARCH = ["--policy", str(RESEARCH_POLICY), "--purpose", "clinical-research", "--recipient", "cicor"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = sample_workspace(tmp_path_factory.mktemp("preview") / "ws")
    for args in (["roles", "grant", "ana", "analyst"], ["roles", "service-accounts", "on"]):
        assert run_cli(*args, home=home).code == 0
    return home


def last_entry(home) -> dict:
    return json.loads((home / "audit.log").read_text(encoding="utf-8").splitlines()[-1])


def test_a_custodian_sees_before_and_after_of_the_rows_an_export_would_hold(home, tmp_path):
    result = run_cli("export", "patients", *RESEARCH, "--preview", "--rows", "3", "--json", home=home)
    assert result.code == 0, result.stderr
    shown = result.json()
    assert shown["before_shown"] is True and shown["written"] is False and len(shown["rows"]) == 3
    entry = last_entry(home)
    assert (entry["action"], entry["outcome"], entry["details"]["rows"], entry["details"]["before_shown"]) == (
        "export.preview", "ok", 3, True)
    assert not (home / "releases.jsonl").exists()  # nothing released: the ledger holds no entry
    assert run_cli("export", "patients", *RESEARCH, "--out", tmp_path / "real", home=home).code == 0
    exported = duckdb.connect().execute(
        f"SELECT patient_id, age_band, region FROM read_parquet('{tmp_path / 'real' / 'patients.parquet'}')").fetchall()
    source = {row["patient_id"]: row for row in csv.DictReader(SAMPLE_CSV.open(encoding="utf-8", newline=""))}
    for row in shown["rows"]:
        by_column = {c["column"]: c for c in row}
        # the recipient's keys: the pseudonym is the one the export gives this person
        after = (by_column["patient_id"]["after"], by_column["dob"]["after"], by_column["district"]["after"])
        assert after in exported
        assert by_column["dob"]["output"] == "age_band" and by_column["hkid"]["output"] is None
        # an empty cell in the CSV is NULL in the catalog
        assert by_column["hkid"]["before"] == (source[by_column["patient_id"]["before"]]["hkid"] or None)
        assert by_column["hkid"]["after"] is None


def test_anyone_but_a_custodian_sees_the_after_side_only(home):
    result = run_cli("export", "patients", *RESEARCH, "--preview", "--json", "--actor", "ana", home=home)
    assert result.code == 0, result.stderr
    shown = result.json()
    assert shown["before_shown"] is False and len(shown["rows"]) == 5  # the default
    assert all(c["before"] is None and c["output"] is not None for row in shown["rows"] for c in row)
    hkids = {row["hkid"] for row in csv.DictReader(SAMPLE_CSV.open(encoding="utf-8", newline="")) if row["hkid"]}
    assert not any(hkid in result.stdout for hkid in hkids)
    assert last_entry(home)["details"]["before_shown"] is False
    human = run_cli("export", "patients", *RESEARCH, "--preview", "--actor", "ana", home=home)
    assert human.code == 0 and "before" not in human.stdout and "custodians only" in human.stderr


def test_a_preview_is_refused_as_the_export_would_be_and_asks_for_no_folder(home, tmp_path):
    refused = PROJECT_ROOT / "policies" / "hk-refused-by-k.yaml"
    result = run_cli("export", "patients", "--policy", refused, "--purpose", "clinical-research", "--recipient",
                     "cicor", "--preview", home=home)
    assert result.code == 3 and "privacy gate" in result.stderr
    assert run_cli("export", "patients", *RESEARCH, "--preview", "--out", tmp_path / "x", home=home).code == 2
    assert not (tmp_path / "x").exists()
    assert run_cli("export", "patients", *RESEARCH, home=home).code == 2  # no --out and no --preview


def test_control_characters_in_values_are_shown_as_escapes(home, tmp_path):
    data = tmp_path / "notes.csv"
    data.write_text("id,label\n1,plain\n2,\x1b[31mred\x1b[0m \u202eevil\n", encoding="utf-8")
    assert run_cli("register", data, "--name", "notes", home=home).code == 0
    policy = tmp_path / "notes.yaml"
    policy.write_text("policy: notes\nversion: 1\napplies_to: [notes]\npurposes: [p]\nrecipients: [r]\n"
                      "columns:\n  label: {transform: keep}\n", encoding="utf-8")
    args = ["export", "notes", "--policy", policy, "--purpose", "p", "--recipient", "r", "--preview"]
    for fmt in ([], ["--json"]):
        result = run_cli(*args, *fmt, home=home)
        assert result.code == 0, result.stderr
        assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
        assert "\\x1b[31mred" in result.stdout.replace("\\\\", "\\")


def test_the_library_returns_values_as_duckdb_gives_them(home):
    ws = open_workspace(home)
    shown = preview(ws, ws.config()["created_by"], "patients", RESEARCH_POLICY, purpose="clinical-research",
                    recipient="cicor", rows=1, passphrase=TEST_PASSPHRASE)
    dob = next(c for c in shown["rows"][0] if c["column"] == "dob")
    assert hasattr(dob["before"], "isoformat") and isinstance(dob["after"], str)
