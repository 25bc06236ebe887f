"""The README's stock-tool recipe, run as written, against every kind of tampering.

The recipe is read out of README.md, so the README and this test cannot drift apart.
"""

from __future__ import annotations

import base64
import re
import shutil
import struct
import subprocess

import pytest

from datashare.init import initialise

from .conftest import PROJECT_ROOT, RESEARCH_POLICY, SAMPLE_CSV, TEST_PASSPHRASE, run_cli

PRINCIPAL = "custodian@hospital"


def readme_recipe() -> str:
    """The ```sh block of "For recipients" that checks SHA256SUMS.sig."""
    section = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8").split("## For recipients", 1)[1]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    recipe = [block for block in blocks if "SHA256SUMS.sig" in block and "sha256sum -c --strict" in block]
    assert len(recipe) == 1, "README.md: the recipient's recipe is missing"
    return recipe[0]


@pytest.fixture(scope="module")
def genuine(tmp_path_factory):
    """A recipient's folder as the README describes it: the allowed_signers file and exports/run1."""
    base = tmp_path_factory.mktemp("recipe")
    home = base / "ws"
    initialise(home, None, passphrase=TEST_PASSPHRASE, kdf_rounds=1, comment=PRINCIPAL)
    assert run_cli("register", str(SAMPLE_CSV), "--name", "patients", home=home).code == 0
    assert run_cli("policy", "approve", str(RESEARCH_POLICY), home=home).code == 0
    export = base / "genuine"
    result = run_cli("export", "patients", "--policy", str(RESEARCH_POLICY), "--out", str(export), "--format",
                     "csv", "--purpose", "clinical-research", "--recipient", "cicor", home=home)
    assert result.code == 0, result.stderr
    recipient = base / "recipient"
    recipient.mkdir()
    assert run_cli("keys", "export-public", "--out", str(recipient / "custodian.pub"), "--principal", PRINCIPAL,
                   home=home).code == 0
    return recipient, export


def run_recipe(recipient, export, tamper=None):
    target = recipient / "exports" / "run1"
    shutil.rmtree(target.parent, ignore_errors=True)
    shutil.copytree(export, target)
    if tamper is not None:
        tamper(target)
    return subprocess.run(["bash", "-c", readme_recipe()], cwd=recipient, capture_output=True, text=True)


def change_data(d):
    data = bytearray((d / "patients.csv").read_bytes())
    data[-2] ^= 0x01
    (d / "patients.csv").write_bytes(bytes(data))


def replace_data_and_regenerate_sums(d):
    (d / "patients.csv").write_text("patient_id\nsomeone-else\n")
    sums = subprocess.run(["sha256sum", "patients.csv", "manifest.json", "manifest.json.sig"], cwd=d,
                          capture_output=True, check=True).stdout
    (d / "SHA256SUMS").write_bytes(sums)


def add_file(d):
    (d / "extra.csv").write_text("x\n")


def add_dotfile(d):
    (d / ".hidden").write_text("x\n")


def add_folder(d):
    (d / "more").mkdir()


def remove_data(d):
    (d / "patients.csv").unlink()


def change_manifest(d):
    (d / "manifest.json").write_text((d / "manifest.json").read_text().replace('"cicor"', '"evil"'))


def change_manifest_signature(d):
    (d / "manifest.json.sig").write_text("not a signature\n")


def remove_sums_signature(d):
    (d / "SHA256SUMS.sig").unlink()


def append_after_the_sums_signature(d):
    # ssh-keygen -Y verify ignores what follows the armor: a channel for data in a "verified" export.
    with (d / "SHA256SUMS.sig").open("a") as handle:
        handle.write("smuggled data\n")


def append_after_the_manifest_signature(d):
    with (d / "manifest.json.sig").open("a") as handle:
        handle.write("smuggled data\n")


def fill_the_reserved_field(d):
    """An SSHSIG's reserved field is not signed and ssh-keygen skips it: a patient (or a whole data file) fits."""
    lines = (d / "SHA256SUMS.sig").read_text().splitlines()
    body = base64.b64decode("".join(lines[1:-1]))
    offset = 10
    for _ in range(2):  # the public key and the namespace
        (length,) = struct.unpack(">I", body[offset:offset + 4])
        offset += 4 + length
    payload = b"CHAN Tai Man A123456(3)"  # small: the signature file stays far below any size limit
    body = body[:offset] + struct.pack(">I", len(payload)) + payload + body[offset + 4:]
    text = base64.b64encode(body).decode()
    armored = [lines[0], *(text[i:i + 70] for i in range(0, len(text), 70)), lines[-1]]
    (d / "SHA256SUMS.sig").write_text("\n".join(armored) + "\n")


def test_the_recipe_accepts_a_genuine_export(genuine):
    result = run_recipe(*genuine)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("export verified")


@pytest.mark.parametrize("tamper", [
    change_data, replace_data_and_regenerate_sums, add_file, add_dotfile, add_folder, remove_data, change_manifest,
    change_manifest_signature, remove_sums_signature, append_after_the_sums_signature,
    append_after_the_manifest_signature, fill_the_reserved_field,
])
def test_the_recipe_catches_tampering(genuine, tamper, tmp_path):
    recipient, export = genuine
    result = run_recipe(recipient, export, tamper=tamper)
    assert result.returncode != 0, f"{tamper.__name__} passed the README's recipe"
    assert "export verified" not in result.stdout
    ours = run_cli("verify", str(recipient / "exports" / "run1"), "--pubkey", str(recipient / "custodian.pub"),
                   home=tmp_path / "no-workspace")
    assert ours.code == 4, ours.stderr
