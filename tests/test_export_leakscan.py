"""The leak scan between writing and signing: a hit refuses the export (exit 3), publishes nothing, and reports
counts per identifier type, never a value; free text stays out unless the policy names it."""

from __future__ import annotations

import json

import duckdb
import pytest

from datashare.catalog.load import register
from datashare.catalog.store import resolve
from datashare.export.leakscan import LeakFoundError, scan_free_text
from datashare.export.plan import install_keys, prepare
from datashare.export.run import export
from datashare.governance.approvals import approve
from datashare.governance.keys import unlock_secret
from datashare.init import initialise
from datashare.policy.model import load_policy

from .conftest import TEST_KDF_ROUNDS, TEST_PASSPHRASE, run_cli

HEADER = "patient_id,hkid,name_en,phone,diagnosis,note\n"
ROWS = [
    ("P0000001", "A123456(3)", "CHAN Tai Man", "9123 4567", "E11.9", "Chan Tai Man seen, A123456(3), tel 9123 4567."),
    ("P0000002", "C668668(E)", "LEE Siu Ming", "6123 4567", "I10", "Stable; BP 130/80."),
    ("P0000003", "G123456(A)", "WONG Mei Ling", "2760 7432", "J18.9", "Mr. Wong on amoxicillin."),
]
MISSED = ("P0000004", "D288754(2)", "HO Ka Yan", "5123 4567", "I10", "ID D 2 8 8 7 5 4 2 and d-288-754 noted.")
POLICY = """policy: notes
version: 1
applies_to: [notes]
purposes: [research]
recipients: [uni]
columns:
  diagnosis: {transform: keep}
  note: {transform: redact_identifiers}
"""


def workspace_with(tmp_path, rows):
    csv = tmp_path / "notes.csv"
    csv.write_text(HEADER + "".join(",".join(f'"{v}"' for v in row) + "\n" for row in rows), encoding="utf-8")
    ws = initialise(tmp_path / "ws", None, passphrase=TEST_PASSPHRASE, ask=False,
                    kdf_rounds=TEST_KDF_ROUNDS).workspace
    actor = ws.config()["created_by"]
    register(ws, csv, "notes", actor=actor)
    policy = tmp_path / "notes.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    approve(ws, actor, policy, passphrase=TEST_PASSPHRASE)
    return ws, actor, policy


def run_export(ws, actor, policy, out):
    return export(ws, actor, "notes", policy, out, purpose="research", recipient="uni", passphrase=TEST_PASSPHRASE)


def test_a_clean_export_passes_the_scan(tmp_path):
    ws, actor, policy = workspace_with(tmp_path, ROWS)
    run_export(ws, actor, policy, tmp_path / "out")
    notes = [r[0] for r in duckdb.connect().execute(
        f"SELECT note FROM read_parquet('{tmp_path / 'out' / 'notes.parquet'}') ORDER BY 1").fetchall()]
    assert notes == ["Mr. [NAME] on amoxicillin.", "Stable; BP 130/80.", "[NAME] seen, [HKID], tel [PHONE]."]


def test_a_leak_refuses_the_export_with_counts_and_publishes_nothing(tmp_path):
    ws, actor, policy = workspace_with(tmp_path, [*ROWS, MISSED])
    out = tmp_path / "out"
    with pytest.raises(LeakFoundError) as refused:
        run_export(ws, actor, policy, out)
    assert refused.value.exit_code == 3 and refused.value.counts == {"HKID": 1}
    assert "HKID 1" in refused.value.message and "288754" not in refused.value.message
    assert not out.exists() and not list(tmp_path.glob("*.staging*"))
    entry = json.loads(ws.audit_path.read_text(encoding="utf-8").splitlines()[-1])
    assert entry["outcome"] == "denied" and entry["details"]["leaks"] == {"HKID": 1}
    assert "288754" not in json.dumps(entry)


def test_the_cli_gives_the_counts_as_json_and_exit_3(tmp_path):
    ws, _, policy = workspace_with(tmp_path, [*ROWS, MISSED])
    result = run_cli("export", "notes", "--policy", str(policy), "--out", str(tmp_path / "out"), "--purpose",
                     "research", "--recipient", "uni", "--json", home=ws.home)
    assert result.code == 3
    assert json.loads(result.stdout)["leaks"] == {"HKID": 1}
    assert "288754" not in result.stdout + result.stderr


def test_any_policy_can_be_scanned_by_a_test(tmp_path):
    ws, _, policy = workspace_with(tmp_path, [*ROWS, MISSED])
    with ws.connect(read_only=True) as con:
        compiled = prepare(load_policy(policy), resolve(con, "notes", None))
        install_keys(con, unlock_secret(ws, ws.config()["created_by"], TEST_PASSPHRASE), "uni")
        assert scan_free_text(con, compiled) == {"HKID": 1}
        no_text = tmp_path / "no-text.yaml"
        no_text.write_text(POLICY.replace("  note: {transform: redact_identifiers}\n", ""), encoding="utf-8")
        assert scan_free_text(con, prepare(load_policy(no_text), resolve(con, "notes", None))) == {}


def test_free_text_stays_out_unless_the_policy_names_it(tmp_path):
    ws, actor, policy = workspace_with(tmp_path, ROWS)
    policy.write_text(POLICY.replace("  note: {transform: redact_identifiers}\n", "").replace("version: 1",
                                                                                          "version: 2"),
                      encoding="utf-8")
    approve(ws, actor, policy, passphrase=TEST_PASSPHRASE)
    manifest = run_export(ws, actor, policy, tmp_path / "out")
    assert "note" in manifest["columns_dropped_by_default"] and "note" not in manifest["columns_out"]
