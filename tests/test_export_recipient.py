"""Verifying an export as a recipient (keys given, no workspace) and as the custodian (receipt in the log)."""

from __future__ import annotations

import json
import shutil

import pytest

from datashare.errors import InputError, RefusedError, UsageError, VerificationError
from datashare.export.recipient import verify_directory
from datashare.export.run import export
from datashare.governance.keys import export_public
from datashare.signing.keystore import current_key
from datashare.workspace import ACTOR_ENV, open_workspace, os_user

from .conftest import RESEARCH_POLICY, TEST_PASSPHRASE, make_workspace, run_cli, sample_workspace

NOT_CHECKED_HERE = "audit receipt not checked: no workspace here"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A workspace, an export from it, and its public key as a .pub and an allowed_signers file."""
    root = tmp_path_factory.mktemp("recipient")
    ws = open_workspace(sample_workspace(root / "ws"))
    out = root / "export"
    manifest = export(ws, os_user(), "patients", RESEARCH_POLICY, out, purpose="clinical-research",
                      recipient="cicor", passphrase=TEST_PASSPHRASE)
    pub = root / "cicor.pub"
    _, signers, _ = export_public(ws, os_user(), pub)
    return ws, out, manifest, pub, signers


@pytest.fixture(autouse=True)
def plain_actor(monkeypatch):
    monkeypatch.delenv(ACTOR_ENV, raising=False)


def last_entry(ws) -> dict:
    return json.loads(ws.audit_path.read_text(encoding="utf-8").splitlines()[-1])


def test_a_recipient_verifies_with_the_public_key_and_no_workspace(made, tmp_path):
    ws, out, manifest, pub, signers = made
    for keys in ({"pubkey": pub}, {"allowed_signers": signers}):
        report = verify_directory(out, home=tmp_path / "no-workspace", **keys)
        assert report["ok"] and report["signer"] == current_key(ws).key_id
        assert report["checks"][-1] == NOT_CHECKED_HERE
        assert report["audit_receipt"] == manifest["audit_receipt"]


def test_without_a_workspace_a_key_must_be_given(made, tmp_path):
    _, out, _, pub, signers = made
    with pytest.raises(InputError, match="no key to verify with"):
        verify_directory(out, home=tmp_path / "no-workspace")
    with pytest.raises(UsageError, match="not both"):
        verify_directory(out, pubkey=pub, allowed_signers=signers, home=tmp_path / "no-workspace")


def test_the_custodian_finds_the_receipt_in_the_log_and_the_check_is_logged(made):
    ws, out, manifest, _, _ = made
    report = verify_directory(out, home=ws.home)
    assert "audit receipt found in the workspace's log" in report["checks"]
    entry = last_entry(ws)
    assert (entry["action"], entry["outcome"], entry["target"]["dataset"]) == ("verify", "ok", "patients")
    assert entry["details"]["signer"] == report["signer"]


def test_a_tampered_export_fails_and_the_failure_is_logged(made, tmp_path):
    ws, out, _, pub, _ = made
    copy = shutil.copytree(out, tmp_path / "copy")
    data = copy / "patients.parquet"
    data.write_bytes(data.read_bytes()[:-1] + b"\x00")
    with pytest.raises(VerificationError, match="changed file patients.parquet"):
        verify_directory(copy, pubkey=pub, home=ws.home)
    assert (last_entry(ws)["action"], last_entry(ws)["outcome"]) == ("verify", "error")


def test_an_unreadable_key_file_is_logged_like_any_failure(made, tmp_path):
    ws, out, _, _, _ = made
    with pytest.raises(InputError, match="cannot read"):
        verify_directory(out, pubkey=tmp_path / "missing.pub", home=ws.home)
    assert last_entry(ws)["outcome"] == "error"


def test_someone_elses_name_is_refused(made):
    ws, out, _, _, _ = made
    with pytest.raises(RefusedError, match="acting as 'mallory'"):
        verify_directory(out, home=ws.home, actor="mallory")


def test_an_export_whose_receipt_is_not_in_the_log_fails(made, tmp_path):
    """The same workspace, its log cut before the export's entry: the export is not one this log knows."""
    ws, out, manifest, _, _ = made
    home = shutil.copytree(ws.home, tmp_path / "ws")
    lines = (home / "audit.log").read_bytes().split(b"\n")
    (home / "audit.log").write_bytes(b"".join(line + b"\n" for line in lines[:manifest["audit_receipt"]["seq"] - 1]))
    with pytest.raises(VerificationError, match=f"receipt not in log: entry {manifest['audit_receipt']['seq']} "):
        verify_directory(out, home=home)


def test_another_workspaces_export_is_verified_without_its_receipt(made, tmp_path):
    _, out, _, pub, _ = made
    other = make_workspace(tmp_path / "other")
    report = verify_directory(out, pubkey=pub, home=other)
    assert "audit receipt not checked: the export was signed by another workspace's key" in report["checks"]


def test_principal_restricts_an_allowed_signers_file_to_the_lines_naming_it(made, tmp_path):
    ws, out, _, _, signers = made
    line = signers.read_text(encoding="utf-8").strip()
    principal = line.split()[0]
    # One file trusting two people: without --principal, a signature by either key verifies (unlike ssh-keygen -I).
    shared = tmp_path / "allowed_signers"
    shared.write_text(line.replace(principal, "someone-else@hospital", 1) + "\n", encoding="utf-8")
    no_workspace = tmp_path / "no-workspace"
    assert verify_directory(out, allowed_signers=shared, home=no_workspace)["ok"]
    with pytest.raises(VerificationError, match="unknown key: .* as 'custodian@hospital'"):
        verify_directory(out, allowed_signers=shared, principal="custodian@hospital", home=no_workspace)
    assert verify_directory(out, allowed_signers=signers, principal=principal, home=no_workspace)["ok"]
    with pytest.raises(UsageError, match="--principal applies to --allowed-signers only"):
        verify_directory(out, pubkey=signers.with_suffix(""), principal=principal, home=no_workspace)
    cli = run_cli("verify", str(out), "--allowed-signers", str(shared), "--principal", "custodian@hospital",
                  home=no_workspace)
    assert cli.code == 4 and "unknown key" in cli.stderr, cli.stderr
