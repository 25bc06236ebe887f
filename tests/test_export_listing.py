"""``datashare exports``: every release from the log and the ledger, and the state of its folder today."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
import yaml

from datashare import governance
from datashare.audit.log import append
from datashare.errors import RefusedError
from datashare.export.listing import COLUMNS, list_exports
from datashare.export.releases import append_release
from datashare.export.run import export

from .conftest import TEST_PASSPHRASE, cli_env, generated_workspace, run_cli

ACTOR = "custodian"
POLICY = {
    "policy": "listed", "version": 1, "applies_to": ["patients"], "purposes": ["research"], "recipients": ["*"],
    "columns": {"patient_id": {"transform": "pseudonymize"},
                "dob": {"transform": "generalize", "to": "age_band", "width": 20, "reference": "2026-01-01"},
                "sex": {"transform": "keep"}},
    "privacy": {"quasi_identifiers": ["dob", "sex"], "k_anonymity": 5, "max_suppression": 0.3,
                "subject": "patient_id"},
}


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """Five exports: kept as written, removed, replaced by a later one to the same folder, and altered."""
    base = tmp_path_factory.mktemp("listing")
    workspace, _ = generated_workspace(base, ACTOR, 300, 5)
    policy = base / "listed.yaml"
    policy.write_text(yaml.safe_dump(POLICY), encoding="utf-8")
    governance.approve(workspace, ACTOR, policy, passphrase=TEST_PASSPHRASE)

    def release(out, recipient, **kwargs):
        return export(workspace, ACTOR, "patients", policy, base / out, purpose="research", recipient=recipient,
                      passphrase=TEST_PASSPHRASE, **kwargs)["audit_receipt"]["seq"]

    seqs = {"kept": release("kept", "ivy"), "removed": release("removed", "ivy"),
            "replaced": release("shared", "joe"), "replacing": release("shared", "joe", overwrite=True),
            "altered": release("altered", "kim")}
    shutil.rmtree(base / "removed")
    with (base / "altered" / "patients.parquet").open("ab") as handle:
        handle.write(b"\0")
    return workspace, base, seqs


def test_every_release_is_listed_with_its_folders_state(released):
    workspace, base, seqs = released
    found = {r["seq"]: r for r in list_exports(workspace, ACTOR)}
    states = {name: found[seq]["state"] for name, seq in seqs.items()}
    assert states == {"kept": "verified", "removed": "missing", "replaced": "replaced", "replacing": "verified",
                      "altered": "altered"}
    assert "changed file patients.parquet" in found[seqs["altered"]]["detail"]
    assert str(seqs["replacing"]) in found[seqs["replaced"]]["detail"]
    kept = found[seqs["kept"]]
    assert (kept["kind"], kept["recipient"], kept["dataset"], kept["version"], kept["policy"], kept["purpose"]) == \
        ("export", "ivy", "patients", 1, "listed", "research")
    assert kept["path"] == str(base / "kept") and kept["rows"] > 0 and kept["release"] == "R1"
    assert [found[seq]["release"] for seq in seqs.values()] == ["R1", "R2", "R3", "R4", "R5"]


def test_filters_and_a_ledger_line_no_entry_vouches_for(released):
    workspace, _, seqs = released
    assert [r["seq"] for r in list_exports(workspace, ACTOR, recipient="joe")] == \
        [seqs["replaced"], seqs["replacing"]]
    assert list_exports(workspace, ACTOR, dataset="other") == []
    unchecked = list_exports(workspace, ACTOR, recipient="ivy", verify=False)
    assert {r["state"] for r in unchecked} == {"not checked"}
    append_release(workspace, {"time": "2026-11-30T00:00:00Z", "recipient": "zed", "dataset": "patients",
                               "dataset_version": 1, "policy": "listed", "policy_version": 1,
                               "classes": {"rows_out": 12}})
    orphan = list_exports(workspace, ACTOR, recipient="zed")
    assert [(r["state"], r["seq"], r["rows"]) for r in orphan] == [("not exported", None, 12)]


def test_an_entry_that_names_no_release_is_paired_with_its_ledger_line(released):
    workspace, base, _ = released
    line = append_release(workspace, {"time": "2026-11-30T00:00:00Z", "recipient": "old", "dataset": "patients",
                                      "dataset_version": 1, "policy": "listed", "policy_version": 1})
    receipt = append(workspace, actor=ACTOR, action="export", recipient="old", purpose="research",
                     target={"dataset": "patients", "version": 1, "policy": "listed", "policy_version": 1,
                             "output": str(base / "gone")}, details={"rows_out": 7})
    listed = list_exports(workspace, ACTOR, recipient="old")
    assert [(r["seq"], r["release"], r["rows"], r["state"]) for r in listed] == \
        [(receipt.seq, line["id"], 7, "missing")]


def test_the_command_writes_json_and_csv_and_is_for_custodians_and_auditors(released):
    workspace, _, seqs = released
    env = cli_env(workspace.home, DATASHARE_ACTOR=ACTOR)
    as_json = run_cli("exports", "--recipient", "ivy", "--json", home=workspace.home, env=env)
    assert as_json.code == 0, as_json.stderr
    assert [r["state"] for r in as_json.json()] == ["verified", "missing"]
    as_csv = run_cli("exports", "--csv", "--no-verify", home=workspace.home, env=env)
    table = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert tuple(table[0]) == COLUMNS and len(table) > len(seqs)
    shown = run_cli("exports", "--dataset", "patients", home=workspace.home, env=env)
    assert shown.code == 0 and "altered: changed file patients.parquet" in shown.stdout
    governance.grant(workspace, ACTOR, "ana", "analyst")
    with pytest.raises(RefusedError, match="auditor or custodian role"):
        list_exports(workspace, "ana")
    entries = [json.loads(line) for line in workspace.audit_path.read_text(encoding="utf-8").splitlines()]
    assert [e["outcome"] for e in entries if e["action"] == "exports"][-1] == "denied"
