"""The release ledger: every export is recorded, and a new export that joins an earlier one below k is refused."""

from __future__ import annotations

import json

import pytest
import yaml

from datashare import governance
from datashare.errors import RefusedError
from datashare.export.releases import list_releases, read_ledger
from datashare.export.run import export

from .conftest import TEST_PASSPHRASE, cli_env, generated_workspace, run_cli

ACTOR = "custodian"


def _policy(name: str, quasi: list[str]) -> dict:
    return {
        "policy": name, "version": 1, "applies_to": ["patients"], "purposes": ["research"], "recipients": ["*"],
        "columns": {
            "patient_id": {"transform": "pseudonymize"},
            "dob": {"transform": "generalize", "to": "age_band", "width": 10, "reference": "2026-01-01"},
            "sex": {"transform": "keep"} if "sex" in quasi else {"transform": "drop"},
            "district": {"transform": "generalize", "to": "region"} if "district" in quasi else {"transform": "drop"},
        },
        "privacy": {"quasi_identifiers": quasi, "k_anonymity": 5, "max_suppression": 0.3, "subject": "patient_id"},
    }


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    base = tmp_path_factory.mktemp("ledger")
    workspace, _ = generated_workspace(base, ACTOR, 2000, 11)
    paths = {}
    for name, quasi in (("by-sex", ["dob", "sex"]), ("by-region", ["dob", "district"])):
        paths[name] = base / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(_policy(name, quasi)), encoding="utf-8")
        governance.approve(workspace, ACTOR, paths[name], passphrase=TEST_PASSPHRASE)
    return workspace, base, paths


def _export(ws, path, out, recipient, **kwargs):
    return export(ws, ACTOR, "patients", path, out, purpose="research", recipient=recipient,
                  passphrase=TEST_PASSPHRASE, **kwargs)


def test_every_export_is_recorded_with_what_it_released(ws):
    workspace, base, paths = ws
    manifest = _export(workspace, paths["by-sex"], base / "first", "ivy")
    release = read_ledger(workspace)[-1]
    assert manifest["privacy"]["release"] == release["id"]
    assert (release["recipient"], release["dataset"], release["policy"], release["subject"]) == \
        ("ivy", "patients", "by-sex", "patient_id")
    assert [q["column"] for q in release["quasi_identifiers"]] == ["dob", "sex"]
    assert release["quasi_identifiers"][0]["params"]["width"] == 10
    assert release["classes"]["k_measured"] == manifest["privacy"]["k_measured"] >= 5
    assert release["classes"]["count"] > 0 and release["dataset_version"] == 1


def test_the_same_release_again_passes_and_other_quasi_identifiers_are_refused(ws):
    workspace, base, paths = ws
    _export(workspace, paths["by-sex"], base / "again", "jack")
    _export(workspace, paths["by-sex"], base / "again-2", "jack")  # the same columns: the union adds nothing
    first = next(r for r in read_ledger(workspace) if r["recipient"] == "jack")["id"]
    with pytest.raises(RefusedError, match=f"joined with release {first} .*below the k=5"):
        _export(workspace, paths["by-region"], base / "joined", "jack")
    assert not (base / "joined").exists()
    _export(workspace, paths["by-region"], base / "elsewhere", "kate")  # other keys: nothing joins


def test_a_custodian_may_accept_the_linkage_with_a_reason(ws):
    workspace, base, paths = ws
    _export(workspace, paths["by-sex"], base / "lin-1", "lena")
    reason = "the same team holds both extracts under one agreement"
    manifest = _export(workspace, paths["by-region"], base / "lin-2", "lena", accept_linkage=reason)
    assert manifest["privacy"]["accepted_linkage"] == reason and manifest["privacy"]["linked_releases"]
    assert read_ledger(workspace)[-1]["accepted_linkage"] == reason
    logged = [json.loads(line) for line in workspace.audit_path.read_text(encoding="utf-8").splitlines()]
    assert logged[-1]["details"]["accepted_linkage"] == reason


def test_only_a_custodian_may_accept_linkage(ws):
    workspace, base, paths = ws
    _export(workspace, paths["by-sex"], base / "ana-1", "mona")
    governance.grant(workspace, ACTOR, "ann", "analyst")
    with pytest.raises(RefusedError, match="needs the custodian role"):
        export(workspace, "ann", "patients", paths["by-region"], base / "ana-2", purpose="research",
               recipient="mona", passphrase=TEST_PASSPHRASE, accept_linkage="I say so")


def test_releases_command_lists_the_ledger(ws):
    workspace, base, paths = ws
    _export(workspace, paths["by-sex"], base / "listed", "nina")
    env = cli_env(workspace.home, DATASHARE_ACTOR=ACTOR)
    result = run_cli("releases", "--recipient", "nina", "--json", home=workspace.home, env=env)
    assert result.code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert len(listed) == 1 and listed[0]["recipient"] == "nina"
    assert listed == list_releases(workspace, ACTOR, "nina")
    shown = run_cli("releases", home=workspace.home, env=env)
    assert shown.code == 0 and "by-sex v1" in shown.stdout
