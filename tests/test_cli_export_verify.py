"""Signed exports end to end: export, then every tampering a recipient could meet, checked by
`datashare verify` and, as a recipient would, by ssh-keygen and sha256sum."""

from __future__ import annotations

import base64
import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from .conftest import RESEARCH_POLICY as RESEARCH
from .conftest import SAMPLE_CSV, TEST_PASSPHRASE, cli_env, make_workspace, run_cli

PRINCIPAL = "custodian@hospital"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("signed")
    home = base / "ws"

    def cli(*args, **kwargs):
        return run_cli(*[str(a) for a in args], home=home, **kwargs)

    assert cli("init", "--json").code == 0
    assert cli("keys", "generate", "--comment", PRINCIPAL, "--rotate").code == 0
    assert cli("register", SAMPLE_CSV, "--name", "patients").code == 0
    assert cli("policy", "approve", RESEARCH).code == 0
    out = base / "run1"
    result = cli("export", "patients", "--policy", RESEARCH, "--out", out, "--purpose", "clinical-research",
                 "--recipient", "cicor", "--json")
    assert result.code == 0, result.stderr
    assert cli("keys", "export-public", "--out", base / "custodian.pub").code == 0
    return base, home, out, cli


# The README's check that the folder holds nothing but the files SHA256SUMS lists and the two it cannot list
# (tests/test_recipe.py runs the README's whole recipe as written).
LISTING_CHECK = ("diff <(ls -A | LC_ALL=C sort) <( (sed 's/^[0-9a-f]*  //' SHA256SUMS; "
                 "printf 'SHA256SUMS\\nSHA256SUMS.sig\\n') | LC_ALL=C sort)")


def recipient_checks(directory: Path, signers: Path) -> tuple[int, int, int]:
    """What a recipient without datashare runs: ssh-keygen on SHA256SUMS, sha256sum on the files, the listing."""
    with (directory / "SHA256SUMS").open("rb") as sums_file:
        sig = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", PRINCIPAL, "-n", "datashare",
                              "-s", str(directory / "SHA256SUMS.sig")], stdin=sums_file, capture_output=True)
    sums = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=directory, capture_output=True)
    listing = subprocess.run(["bash", "-c", LISTING_CHECK], cwd=directory, capture_output=True)
    return sig.returncode, sums.returncode, listing.returncode


def test_export_directory_contract(exported):
    base, home, out, cli = exported
    names = sorted(p.name for p in out.iterdir())
    assert names == ["SHA256SUMS", "SHA256SUMS.sig", "codebook.json", "codebook.md", "manifest.json",
                     "manifest.json.sig", "patients.parquet"]
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("format", "dataset", "policy", "transforms", "rows", "privacy", "purpose", "recipient", "actor",
                "time", "datashare_version", "signer_key_id", "audit_receipt", "files"):
        assert key in manifest, key
    assert manifest["dataset"]["name"] == "patients" and len(manifest["dataset"]["source_sha256"]) == 64
    assert manifest["policy"]["name"] == "hk-clinical-research" and manifest["policy"]["approval"]["approved_by"]
    assert manifest["transforms"]["dob"] == {"transform": "generalize", "to": "age_band", "width": 20,
                                             "reference": "2026-01-01", "output": "age_band"}
    assert manifest["transforms"]["hkid"] == {"transform": "drop"}  # not exported: no name in the export
    assert {"in", "out", "suppressed"} <= set(manifest["rows"])
    assert manifest["privacy"]["k_measured"] >= 5 and manifest["privacy"]["l_measured"] >= 2
    assert (manifest["privacy"]["subject"], manifest["privacy"]["k_unit"]) == ("patient_id", "people")
    assert set(manifest["privacy"]["waivers"]) == {"admission_date"}
    assert {f["name"] for f in manifest["files"]} == {"codebook.json", "codebook.md", "patients.parquet"}
    sums = (out / "SHA256SUMS").read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in sums) == ["codebook.json", "codebook.md", "manifest.json",
                                                            "manifest.json.sig", "patients.parquet"]
    entry = json.loads((home / "audit.log").read_text().splitlines()[manifest["audit_receipt"]["seq"] - 1])
    assert (entry["action"], entry["outcome"], entry["hash"]) == ("export", "ok", manifest["audit_receipt"]["hash"])
    assert entry["purpose"] == "clinical-research" and entry["recipient"] == "cicor"
    # What was written, measured on the file: its rows and a digest independent of files and order.
    assert manifest["engine"] == "duckdb"
    assert manifest["content"]["rows"] == manifest["rows"]["out"] and len(manifest["content"]["digest"]) == 16
    same = cli("verify", out, "--same-content", out, "--json")
    assert same.code == 0 and any("same content" in check for check in same.json()["checks"])


@pytest.mark.parametrize("options, message", [
    (["--spark-master", "local[1]"], "go with --engine spark"),
    (["--engine", "spark", "--spark-conf", "nokey"], "spark.<name>=<value>"),
    (["--engine", "flink"], "unknown engine"),
])
def test_engine_options_are_checked_before_anything_runs(exported, tmp_path, options, message):
    base, home, out, cli = exported
    result = cli("export", "patients", "--policy", RESEARCH, "--out", tmp_path / "x", "--purpose",
                 "clinical-research", "--recipient", "cicor", *options)
    assert result.code == 2 and message in result.stderr
    assert not (tmp_path / "x").exists()


def test_good_export_verifies_everywhere(exported):
    base, home, out, cli = exported
    assert recipient_checks(out, base / "custodian.pub.allowed_signers") == (0, 0, 0)
    ours = cli("verify", out, "--json")
    assert ours.code == 0 and ours.json()["ok"] is True
    assert any("audit receipt" in check for check in ours.json()["checks"])
    assert cli("verify", out, "--pubkey", base / "custodian.pub").code == 0
    assert cli("verify", out, "--allowed-signers", base / "custodian.pub.allowed_signers").code == 0
    elsewhere = run_cli("verify", str(out), "--pubkey", str(base / "custodian.pub"), home=base / "no-workspace")
    assert elsewhere.code == 0, elsewhere.stderr


def test_verify_says_whom_the_export_was_made_for_and_checks_it_when_asked(exported):
    """One key signs every export: a genuine export sent to the wrong recipient verified without a word."""
    base, home, out, cli = exported
    shown = cli("verify", out, "--pubkey", base / "custodian.pub")
    assert shown.code == 0 and "made for cicor (clinical-research) at " in shown.stdout and "None" not in shown.stdout
    assert " UTC of patients v1 under hk-clinical-research v1" in shown.stdout
    ours = cli("verify", out, "--pubkey", base / "custodian.pub", "--recipient", "cicor", "--json")
    assert ours.code == 0 and ours.json()["recipient"] == "cicor" and ours.json()["purpose"] == "clinical-research"
    assert "made for recipient cicor" in ours.json()["checks"]
    other = run_cli("verify", str(out), "--pubkey", str(base / "custodian.pub"), "--recipient", "pharma-x",
                    home=base / "no-workspace")
    assert other.code == 4 and "made for another recipient: the manifest names 'cicor', not 'pharma-x'" in other.stderr


def flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def tamper_data(d):
    flip_byte(d / "patients.parquet", 200)


def tamper_manifest(d):
    text = (d / "manifest.json").read_text().replace('"cicor"', '"evil"')
    (d / "manifest.json").write_text(text)


def tamper_signature(d):
    lines = (d / "manifest.json.sig").read_text().splitlines()
    last = lines[-2]  # the signature bytes end the blob
    lines[-2] = last[:5] + ("A" if last[5] != "A" else "B") + last[6:]
    (d / "manifest.json.sig").write_text("\n".join(lines) + "\n")


def remove_file(d):
    (d / "patients.parquet").unlink()


def add_file(d):
    (d / "extra.csv").write_text("x\n")


@pytest.mark.parametrize(("tamper", "message", "recipient_fails"), [
    (tamper_data, "changed file patients.parquet", "sums"),
    (tamper_manifest, "bad signature", "sums"),
    (tamper_signature, "bad signature", "sums"),
    (remove_file, "missing file patients.parquet", "sums"),
    (add_file, "extra file extra.csv", "listing"),
])
def test_tampering_fails_verify_and_the_recipient_tools(exported, tmp_path, tamper, message, recipient_fails):
    base, home, out, cli = exported
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    tamper(copy)
    result = cli("verify", copy)
    assert result.code == 4, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    sig, sums, listing = recipient_checks(copy, base / "custodian.pub.allowed_signers")
    failed = {name for name, code in (("sig", sig), ("sums", sums), ("listing", listing)) if code != 0}
    assert recipient_fails in failed


def test_signed_by_another_key_or_resigned(exported, tmp_path):
    base, home, out, cli = exported
    other_home = tmp_path / "other"
    make_workspace(other_home)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    # An attacker edits the manifest and re-signs it with their own key.
    from datashare import signing
    from datashare.workspace import open_workspace

    tamper_manifest(copy)
    key, _ = signing.load_private_key(open_workspace(other_home), TEST_PASSPHRASE)
    (copy / "manifest.json.sig").write_text(signing.sign((copy / "manifest.json").read_bytes(), key))
    result = cli("verify", copy)
    assert result.code == 4 and "unknown key" in result.stderr
    assert recipient_checks(copy, base / "custodian.pub.allowed_signers")[1] != 0  # SHA256SUMS names the manifest
    # And a whole export made by another workspace is not trusted here.
    other_env = cli_env(other_home)
    assert run_cli("register", str(SAMPLE_CSV), "--name", "patients", home=other_home, env=other_env).code == 0
    assert run_cli("policy", "approve", str(RESEARCH), home=other_home, env=other_env).code == 0
    foreign = tmp_path / "foreign"
    assert run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(foreign), "--purpose",
                   "clinical-research", "--recipient", "cicor", home=other_home, env=other_env).code == 0
    refused = cli("verify", foreign)
    assert refused.code == 4 and "unknown key: signed by" in refused.stderr
    assert recipient_checks(foreign, base / "custodian.pub.allowed_signers")[0] != 0


def test_receipt_must_be_in_the_log(exported, tmp_path):
    base, home, out, cli = exported
    other_home = tmp_path / "other"
    make_workspace(other_home)
    shutil.copy(home / "keys" / "keys.json", other_home / "keys" / "keys.json")  # trusts the same public key
    result = run_cli("verify", str(out), home=other_home)
    assert result.code == 4 and "receipt not in log" in result.stderr


def test_a_recipient_with_a_workspace_of_their_own_can_verify(exported, tmp_path):
    """The receipt is looked for only in the log of the workspace whose key signed the export."""
    base, home, out, cli = exported
    recipient_home = tmp_path / "recipient"
    make_workspace(recipient_home)
    result = run_cli("verify", str(out), "--pubkey", str(base / "custodian.pub"), "--json", home=recipient_home)
    assert result.code == 0, result.stderr
    assert "audit receipt not checked: the export was signed by another workspace's key" in result.json()["checks"]
    own = cli("verify", out, "--json")
    assert own.code == 0 and "audit receipt found in the workspace's log" in own.json()["checks"]


def test_keys_are_protected_and_show_matches_ssh_keygen(exported):
    base, home, out, cli = exported
    key_file = home / "keys" / "signing_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "secret.key").stat().st_mode) == 0o600
    body = base64.b64decode("".join(key_file.read_text().splitlines()[1:-1]))
    assert body.startswith(b"openssh-key-v1\0\0\0\0\naes256-ctr\0\0\0\x06bcrypt")  # encrypted, bcrypt KDF
    loaded = subprocess.run(["ssh-keygen", "-y", "-f", str(key_file), "-P", TEST_PASSPHRASE], capture_output=True)
    assert loaded.returncode == 0
    assert subprocess.run(["ssh-keygen", "-y", "-f", str(key_file), "-P", ""], capture_output=True).returncode != 0
    shown = cli("keys", "show", "--json").json()
    fingerprint = subprocess.run(["ssh-keygen", "-lf", str(home / "keys" / "signing_key.pub")],
                                 capture_output=True, text=True).stdout.split()[1]
    assert shown["current"]["key_id"] == fingerprint
    assert len(shown["retired"]) == 1  # the key init made, rotated away by `keys generate --rotate`


def test_wrong_passphrase_and_no_passphrase(exported, tmp_path):
    base, home, out, cli = exported
    args = ["export", "patients", "--policy", RESEARCH, "--out", tmp_path / "x", "--purpose", "clinical-research",
            "--recipient", "cicor"]
    wrong = cli(*args, env=cli_env(home, DATASHARE_PASSPHRASE="not it"))
    assert wrong.code == 1 and "wrong passphrase" in wrong.stderr and "Traceback" not in wrong.stderr
    env = cli_env(home)
    env.pop("DATASHARE_PASSPHRASE")
    missing = cli(*args, env=env)
    assert missing.code == 1 and "DATASHARE_PASSPHRASE" in missing.stderr
    assert not (tmp_path / "x").exists()


def test_rotation_keeps_old_exports_verifiable(exported, tmp_path):
    base, home, out, cli = exported
    copy_home = tmp_path / "ws"
    shutil.copytree(home, copy_home)
    rotated = run_cli("keys", "generate", "--rotate", home=copy_home)
    assert rotated.code == 0
    assert run_cli("verify", str(out), home=copy_home).code == 0
    actions = [json.loads(line)["action"] for line in (copy_home / "audit.log").read_text().splitlines()]
    assert "keys.rotate" in actions
    again = run_cli("keys", "generate", home=copy_home)
    assert again.code == 1 and "--rotate" in again.stderr


def test_rotation_needs_the_current_passphrase(exported, tmp_path):
    base, home, out, cli = exported
    copy_home = tmp_path / "ws"
    shutil.copytree(home, copy_home)
    before = (copy_home / "keys" / "signing_key").read_bytes()
    wrong = run_cli("keys", "generate", "--rotate", home=copy_home,
                    env=cli_env(copy_home, DATASHARE_PASSPHRASE="a guess"))
    assert wrong.code == 1 and "wrong passphrase" in wrong.stderr
    assert (copy_home / "keys" / "signing_key").read_bytes() == before
    last = json.loads((copy_home / "audit.log").read_text().splitlines()[-1])
    assert (last["action"], last["outcome"]) == ("keys.rotate", "error")
    changed = run_cli("keys", "generate", "--rotate", home=copy_home,
                      env=cli_env(copy_home, DATASHARE_NEW_PASSPHRASE="a new and longer passphrase"))
    assert changed.code == 0, changed.stderr
    key_file = str(copy_home / "keys" / "signing_key")
    assert subprocess.run(["ssh-keygen", "-y", "-f", key_file, "-P", "a new and longer passphrase"],
                          capture_output=True).returncode == 0
    assert subprocess.run(["ssh-keygen", "-y", "-f", key_file, "-P", TEST_PASSPHRASE],
                          capture_output=True).returncode != 0
    kept = run_cli("keys", "generate", "--rotate", "--json", home=copy_home,
                   env=cli_env(copy_home, DATASHARE_PASSPHRASE="a new and longer passphrase",
                               DATASHARE_NEW_PASSPHRASE=""))
    assert kept.code == 0, kept.stderr
    assert kept.json()["comment"] == PRINCIPAL  # the principal recipients use stays with the rotated key
    assert subprocess.run(["ssh-keygen", "-y", "-f", key_file, "-P", "a new and longer passphrase"],
                          capture_output=True).returncode == 0
