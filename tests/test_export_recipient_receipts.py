"""`datashare verify` in the workspace: the audit receipt must vouch for the export's content.

The attack: someone holding the passphrase forges an export (other data), signs
it with the workspace key and keeps a real export's receipt. The receipt's
entry records the SHA-256 of the real manifest's content, so verify fails.
"""

from __future__ import annotations

import json
import shutil

import pytest

from datashare import signing
from datashare.audit.log import append
from datashare.core.fs import sha256_file
from datashare.export.bundle import MANIFEST, SIGNATURE, SUMS, SUMS_SIGNATURE, content_sha256
from datashare.init import initialise
from datashare.signing.keystore import load_private_key
from datashare.workspace import Workspace

from .conftest import RESEARCH_POLICY, SAMPLE_CSV, TEST_PASSPHRASE, run_cli


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("receipt")
    home = base / "ws"
    initialise(home, None, passphrase=TEST_PASSPHRASE, kdf_rounds=1)
    assert run_cli("register", str(SAMPLE_CSV), "--name", "patients", home=home).code == 0
    assert run_cli("policy", "approve", str(RESEARCH_POLICY), home=home).code == 0
    out = base / "run1"
    result = run_cli("export", "patients", "--policy", str(RESEARCH_POLICY), "--out", str(out), "--format", "csv",
                     "--purpose", "clinical-research", "--recipient", "cicor", home=home)
    assert result.code == 0, result.stderr
    return home, out


def manifest_bytes(manifest) -> bytes:
    """manifest.json's encoding: sorted keys, two-space indent, UTF-8, a final newline."""
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def resign(directory, home, manifest):
    """Rewrite the manifest, SHA256SUMS and both signatures with the workspace key, as the custodian's tool would."""
    key, _ = load_private_key(Workspace(home), TEST_PASSPHRASE)
    body = manifest_bytes(manifest)
    (directory / MANIFEST).write_bytes(body)
    (directory / SIGNATURE).write_text(signing.sign(body, key))
    names = [item["name"] for item in manifest["files"]] + [MANIFEST, SIGNATURE]
    sums = "".join(f"{sha256_file(directory / name)}  {name}\n" for name in names).encode()
    (directory / SUMS).write_bytes(sums)
    (directory / SUMS_SIGNATURE).write_text(signing.sign(sums, key))


def test_the_entry_records_the_manifest_content(exported):
    home, out = exported
    manifest = json.loads((out / MANIFEST).read_text())
    entry = json.loads((home / "audit.log").read_text().splitlines()[manifest["audit_receipt"]["seq"] - 1])
    assert entry["details"]["manifest_sha256"] == content_sha256(manifest)
    result = run_cli("verify", str(out), "--json", home=home)
    assert result.code == 0, result.stderr
    assert "the receipt's entry records this manifest's content (SHA-256)" in result.json()["checks"]


def test_a_forged_export_keeping_the_receipt_fails(exported, tmp_path):
    home, out = exported
    forged = tmp_path / "forged"
    shutil.copytree(out, forged)
    manifest = json.loads((forged / MANIFEST).read_text())
    data = forged / "patients.csv"
    data.write_text(data.read_text().splitlines()[0] + "\n")  # other data: the header only
    for codebook in forged.glob("codebook.*"):
        codebook.unlink()
    manifest["files"] = [{"name": data.name, "size": data.stat().st_size, "sha256": sha256_file(data)}]
    manifest["rows"]["out"] = 0
    resign(forged, home, manifest)
    # Everything a recipient can check passes; only the workspace's log knows.
    signers = tmp_path / "custodian.pub"
    assert run_cli("keys", "export-public", "--out", str(signers), home=home).code == 0
    assert run_cli("verify", str(forged), "--pubkey", str(signers), home=tmp_path / "nowhere").code == 0
    result = run_cli("verify", str(forged), home=home)
    assert result.code == 4, result.stderr
    assert "receipt does not match" in result.stderr
    last = json.loads((home / "audit.log").read_text().splitlines()[-1])
    assert (last["action"], last["outcome"]) == ("verify", "error")


def test_a_receipt_naming_another_entry_fails(exported, tmp_path):
    home, out = exported
    forged = tmp_path / "forged"
    shutil.copytree(out, forged)
    manifest = json.loads((forged / MANIFEST).read_text())
    first = json.loads((home / "audit.log").read_text().splitlines()[0])  # init: not an export
    manifest["audit_receipt"] = {"seq": first["seq"], "hash": first["hash"]}
    resign(forged, home, manifest)
    result = run_cli("verify", str(forged), home=home)
    assert result.code == 4 and "is not an export" in result.stderr, result.stderr


def test_an_export_from_before_content_hashes_verifies_with_a_note(exported, tmp_path):
    """An entry without manifest_sha256 (older exports): found, and the report says content was not compared."""
    home, out = exported
    manifest = json.loads((out / MANIFEST).read_text())
    older = tmp_path / "older"
    shutil.copytree(out, older)
    # A later export entry without the content hash stands in for one an older datashare wrote.
    receipt = append(Workspace(home), actor="someone", action="export", details={"rows_out": 1})
    manifest["audit_receipt"] = receipt.to_dict()
    resign(older, home, manifest)
    result = run_cli("verify", str(older), "--json", home=home)
    assert result.code == 0, result.stderr
    assert any(check.startswith("content not compared") for check in result.json()["checks"])


@pytest.mark.parametrize(("options", "code", "message"), [
    ('namespaces="git"', 4, "unknown key"),
    ('valid-before="20200101"', 4, "unknown key"),
    ('valid-after="20991231Z"', 4, "unknown key"),
    ("cert-authority", 1, "cert-authority is not supported"),
    ('namespaces="datashare",valid-after="20200101"', 0, ""),
])
def test_allowed_signers_options_are_honoured(exported, tmp_path, options, code, message):
    home, out = exported
    pub = tmp_path / "custodian.pub"
    assert run_cli("keys", "export-public", "--out", str(pub), home=home).code == 0
    key = " ".join(pub.read_text().split()[:2])
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"custodian@hospital {options} {key}\n")
    result = run_cli("verify", str(out), "--allowed-signers", str(signers), home=tmp_path / "no-workspace")
    assert result.code == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
