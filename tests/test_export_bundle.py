"""The signed export folder: published whole, verified file by file, and every tampering named."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datashare import signing
from datashare.errors import InputError, VerificationError
from datashare.export.bundle import (
    MANIFEST,
    SIGNATURE,
    SUMS,
    check_destination,
    manifest_bytes,
    publish_export,
    staging_dir_for,
    verify_export,
)
from datashare.signing.sshsig import KeyInfo, key_id_of_blob, public_blob

DATA = {"patients.csv": b"patient_id,sex\nP1,F\n", "notes.txt": "名前\n".encode()}


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def trusted(key) -> list[KeyInfo]:
    blob = public_blob(key.public_key())
    return [KeyInfo(key_id_of_blob(blob), f"ssh-ed25519 {base64.b64encode(blob).decode()} c", "c", "")]


def publish(final: Path, key, trusted, **kwargs) -> dict:
    staging = staging_dir_for(final)
    for name, data in DATA.items():
        (staging / name).write_bytes(data)
    return publish_export(staging, final, {"dataset": {"name": "patients", "version": 1}}, key,
                          trusted[0].key_id, **kwargs)


@pytest.fixture
def export_dir(tmp_path, key, trusted) -> Path:
    publish(tmp_path / "out", key, trusted)
    return tmp_path / "out"


def test_publish_writes_data_sums_manifest_and_signature_and_nothing_else(export_dir, key, trusted):
    assert sorted(os.listdir(export_dir)) == sorted([MANIFEST, SIGNATURE, SUMS, "notes.txt", "patients.csv"])
    assert [p.name for p in export_dir.parent.iterdir()] == ["out"]  # the staging folder became the export
    manifest = json.loads((export_dir / MANIFEST).read_bytes())
    assert manifest["signer_key_id"] == trusted[0].key_id and manifest["dataset"]["name"] == "patients"
    assert [item["name"] for item in manifest["files"]] == [SUMS, "notes.txt", "patients.csv"]
    assert (export_dir / MANIFEST).read_bytes() == manifest_bytes(manifest)
    sums = subprocess.run(["sha256sum", "-c", SUMS], cwd=export_dir, capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout


def test_an_intact_export_verifies(export_dir, trusted):
    report = verify_export(export_dir, trusted, audit_check=lambda receipt, key_id: f"receipt {receipt} by {key_id}")
    assert report.signer == trusted[0].key_id
    assert report.files == [SUMS, "notes.txt", "patients.csv"]
    assert report.checks == [f"signature by {trusted[0].key_id}", "3 files: sizes and SHA-256 match the manifest",
                             "no missing or extra files", f"{SUMS} agrees with the manifest",
                             f"receipt None by {trusted[0].key_id}"]
    assert report.to_dict()["dataset"] == {"name": "patients", "version": 1}
    assert verify_export(export_dir, trusted).checks[-1] == "audit receipt not checked: no workspace here"


def tamper_change(d: Path) -> None:
    (d / "patients.csv").write_bytes(b"patient_id,sex\nP1,M\n")


def tamper_grow(d: Path) -> None:
    with (d / "notes.txt").open("ab") as handle:
        handle.write(b"x")


@pytest.mark.parametrize(("tamper", "message"), [
    (tamper_change, "changed file patients.csv"),
    (tamper_grow, "changed file notes.txt"),
    (lambda d: (d / "notes.txt").unlink(), "missing file notes.txt"),
    (lambda d: (d / "extra.csv").write_text("more"), "extra file extra.csv"),
    (lambda d: (d / SIGNATURE).unlink(), f"missing file {SIGNATURE}"),
    (lambda d: (d / MANIFEST).unlink(), f"missing file {MANIFEST}"),
    (lambda d: (d / MANIFEST).write_bytes((d / MANIFEST).read_bytes().replace(b"patients", b"others")),
     "bad signature"),
    (lambda d: (d / SIGNATURE).write_bytes(b"\xff\xfe"), "bad signature: not text"),
])
def test_each_tampering_is_named(export_dir, trusted, tamper, message):
    tamper(export_dir)
    with pytest.raises(VerificationError, match=message):
        verify_export(export_dir, trusted)


def test_a_key_not_trusted_and_a_missing_folder(export_dir, tmp_path):
    other = Ed25519PrivateKey.generate()
    blob = public_blob(other.public_key())
    stranger = [KeyInfo(key_id_of_blob(blob), f"ssh-ed25519 {base64.b64encode(blob).decode()}", "", "")]
    with pytest.raises(VerificationError, match="unknown key"):
        verify_export(export_dir, stranger)
    with pytest.raises(VerificationError, match="missing export"):
        verify_export(tmp_path / "nothing", stranger)


def test_a_signed_manifest_naming_a_file_outside_the_folder_is_refused(export_dir, key, trusted):
    manifest = json.loads((export_dir / MANIFEST).read_bytes())
    manifest["files"].append({"name": "../secret.key", "size": 32, "sha256": "0" * 64})
    body = manifest_bytes(manifest)
    (export_dir / MANIFEST).write_bytes(body)
    (export_dir / SIGNATURE).write_text(signing.sign(body, key))
    with pytest.raises(VerificationError, match="missing file ../secret.key"):
        verify_export(export_dir, trusted)


def test_a_sums_file_that_disagrees_with_the_signed_manifest(export_dir, key, trusted):
    (export_dir / SUMS).write_text(f"{'0' * 64}  patients.csv\n")
    manifest = json.loads((export_dir / MANIFEST).read_bytes())
    manifest["files"] = [item if item["name"] != SUMS else
                         {**item, "size": (export_dir / SUMS).stat().st_size,
                          "sha256": hashlib.sha256((export_dir / SUMS).read_bytes()).hexdigest()}
                         for item in manifest["files"]]
    body = manifest_bytes(manifest)
    (export_dir / MANIFEST).write_bytes(body)
    (export_dir / SIGNATURE).write_text(signing.sign(body, key))
    with pytest.raises(VerificationError, match=f"changed file {SUMS}: its entry for patients.csv"):
        verify_export(export_dir, trusted)


def test_destinations_that_are_refused(tmp_path, export_dir, trusted):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="exists and is not a folder"):
        check_destination(tmp_path / "file", overwrite=True)
    (tmp_path / "link").symlink_to(export_dir)
    with pytest.raises(InputError, match="symbolic link"):
        check_destination(tmp_path / "link", overwrite=True)
    with pytest.raises(InputError, match="already exists and is not empty"):
        check_destination(export_dir, overwrite=False)
    documents = tmp_path / "documents"
    documents.mkdir()
    (documents / "thesis.docx").write_text("years of work")
    with pytest.raises(InputError, match="is not a datashare export"):
        check_destination(documents, overwrite=True)
    check_destination(export_dir, overwrite=True, trusted_keys=trusted)  # signed by a trusted key: replaceable
    (export_dir / SIGNATURE).write_text("forged")
    with pytest.raises(InputError, match="not an export signed by this workspace's key"):
        check_destination(export_dir, overwrite=True, trusted_keys=trusted)


def test_destinations_that_are_accepted(tmp_path):
    (tmp_path / "empty").mkdir()
    check_destination(tmp_path / "empty", overwrite=False)
    check_destination(tmp_path / "new" / "deeper" / "out", overwrite=False)
    assert (tmp_path / "new" / "deeper").is_dir() and not (tmp_path / "new" / "deeper" / "out").exists()


def test_overwrite_replaces_an_earlier_export_and_leaves_nothing_aside(export_dir, key, trusted):
    before = json.loads((export_dir / MANIFEST).read_bytes())
    with pytest.raises(InputError, match="already exists and is not empty"):
        publish(export_dir, key, trusted)
    [staging] = export_dir.parent.glob(".out.tmp-*")  # the caller removes its staging folder on failure
    shutil.rmtree(staging)
    publish(export_dir, key, trusted, overwrite=True)
    verify_export(export_dir, trusted)
    assert json.loads((export_dir / MANIFEST).read_bytes())["files"] == before["files"]
    assert [p.name for p in export_dir.parent.iterdir()] == ["out"]


def test_staging_left_by_a_dead_process_is_removed_and_a_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    stale = tmp_path / f".out.tmp-{dead}-abcd1234"
    live = tmp_path / f".out.tmp-{os.getpid()}-efgh5678"
    other = tmp_path / f".other.tmp-{dead}-abcd1234"
    for folder in (stale, live, other):
        folder.mkdir()
    staging = staging_dir_for(tmp_path / "out")
    assert staging.name.startswith(f".out.tmp-{os.getpid()}-")
    assert not stale.exists() and live.exists() and other.exists()


def test_an_earlier_export_moved_aside_by_a_killed_overwrite_comes_back(tmp_path, key, trusted):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    publish(tmp_path / "aside", key, trusted)
    (tmp_path / "aside").rename(tmp_path / f".out.old-{dead}")
    staging_dir_for(tmp_path / "out")
    verify_export(tmp_path / "out", trusted)
