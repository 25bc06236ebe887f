"""`datashare policy suggest` through the CLI: from a dataset to a policy that `policy check` passes, that is
approved and exported with the very suppression the suggestion counted; custodians only."""

from __future__ import annotations

import pytest

from .conftest import SAMPLE_CSV, make_workspace, run_cli


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """The sample with its admission and discharge dates classed *other* (not released): a small lattice."""
    base = tmp_path_factory.mktemp("suggest-cli")
    home = base / "ws"

    def cli(*args, **kwargs):
        return run_cli(*[str(a) for a in args], home=home, **kwargs)

    make_workspace(home)
    assert cli("register", SAMPLE_CSV, "--name", "patients").code == 0
    assert cli("classify", "patients", "admission_date=other", "discharge_date=other").code == 0
    return base, cli


def test_suggest_writes_a_policy_that_is_checked_approved_and_exported_as_counted(ws):
    base, cli = ws
    out = base / "suggested.yaml"
    shown = cli("policy", "suggest", "patients", "--k", "5", "--l", "2", "--sensitive", "diagnosis",
                "--max-suppression", "0.05", "--keep", "sex", "--keep", "hba1c", "--purpose", "clinical-research",
                "--recipient", "cicor", "--out", out)
    assert shown.code == 0, shown.stderr
    assert "information loss" in shown.stdout and "runner-up" in shown.stdout and "dob" in shown.stdout
    assert f"Wrote {out}" in shown.stderr
    found = cli("policy", "suggest", "patients", "--k", "5", "--l", "2", "--sensitive", "diagnosis",
                "--max-suppression", "0.05", "--keep", "sex", "--keep", "hba1c", "--json").json()
    assert found["policy_file"] is None and found["optimum"]["loss"] <= found["runner_up"]["loss"]
    assert set(found["optimum"]["levels"]) == {"sex", "dob", "district"} and found["k_unit"] == "people"
    text = out.read_text(encoding="utf-8")
    assert "hba1c: {transform: keep}" in text and "hkid: {transform: drop}" in text
    assert "patient_id: {transform: pseudonymize}" in text and "note: {transform: drop}" in text
    checked = cli("policy", "check", out, "--dataset", "patients", "--json")
    assert checked.code == 0 and checked.json()["valid"], checked.stderr
    assert cli("policy", "approve", out).code == 0
    exported = cli("export", "patients", "--policy", out, "--out", base / "export", "--purpose",
                   "clinical-research", "--recipient", "cicor", "--json")
    assert exported.code == 0, exported.stderr
    manifest = exported.json()
    assert manifest["rows"]["suppressed"] == found["optimum"]["rows_suppressed"]
    assert manifest["privacy"]["people"]["suppressed"] == found["optimum"]["people_suppressed"]


def test_suggest_refuses_what_it_cannot_do(ws):
    base, cli = ws
    assert cli("policy", "suggest", "patients", "--k", "5", "--l", "2").code == 1  # l needs --sensitive
    assert cli("policy", "suggest", "patients", "--k", "5", "--keep", "hkid").code == 3  # a direct identifier
    none = cli("policy", "suggest", "patients", "--k", "100000", "--keep", "sex", "--json")
    assert none.code == 3 and "no generalisation" in none.json()["error"]
    assert cli("policy", "suggest", "patients", "--k", "5", "--out", SAMPLE_CSV).code == 1  # never over a file
    assert cli("roles", "grant", "ann", "analyst").code == 0
    assert cli("policy", "suggest", "patients", "--k", "5", "--actor", "ann").code == 3  # custodians only
