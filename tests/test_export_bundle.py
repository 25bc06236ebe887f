"""The signed export folder: published whole, verified file by file, and every tampering named.

The folders come from :func:`datashare.export.run.export`, which stages, lists and publishes them.
"""

from __future__ import annotations

import base64
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
    staging_dir_for,
    verify_export,
)
from datashare.export.run import export
from datashare.signing.keystore import load_private_key, load_public_keys
from datashare.signing.sshsig import KeyInfo, key_id_of_blob, public_blob
from datashare.workspace import open_workspace, os_user

from .conftest import RESEARCH_POLICY, TEST_PASSPHRASE, sample_workspace

DATA = "patients.parquet"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A workspace and one export of the sample made with it."""
    root = tmp_path_factory.mktemp("bundle")
    ws = open_workspace(sample_workspace(root / "ws"))
    export(ws, os_user(), "patients", RESEARCH_POLICY, root / "export", purpose="clinical-research",
           recipient="cicor", passphrase=TEST_PASSPHRASE)
    return ws, root / "export"


@pytest.fixture
def trusted(made) -> list[KeyInfo]:
    return load_public_keys(made[0])


@pytest.fixture
def export_dir(made, tmp_path) -> Path:
    """A copy of the export, to tamper with."""
    return shutil.copytree(made[1], tmp_path / "out")


def key_info(key: Ed25519PrivateKey) -> KeyInfo:
    blob = public_blob(key.public_key())
    return KeyInfo(key_id_of_blob(blob), f"ssh-ed25519 {base64.b64encode(blob).decode()} c", "c", "")


def test_the_export_is_published_whole_from_its_staging_folder(made):
    ws, out = made
    assert sorted(p.name for p in out.parent.iterdir()) == ["export", "ws"]  # the staging folder became the export
    assert {MANIFEST, SIGNATURE, SUMS, DATA} <= set(os.listdir(out))
    manifest = json.loads((out / MANIFEST).read_bytes())
    assert manifest["signer_key_id"] == load_public_keys(ws)[0].key_id and manifest["dataset"]["name"] == "patients"
    assert DATA in [item["name"] for item in manifest["files"]]


def test_an_intact_export_verifies_and_sha256sum_agrees(export_dir, trusted):
    report = verify_export(export_dir, trusted)
    assert report.signer == trusted[0].key_id and DATA in report.files
    assert report.checks[0] == f"signature by {trusted[0].key_id}" and "no missing or extra files" in report.checks
    assert report.checks[-1] == "audit receipt not checked: no workspace here"
    assert report.to_dict()["dataset"]["name"] == "patients"
    sums = subprocess.run(["sha256sum", "-c", SUMS], cwd=export_dir, capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout


def tamper_data(d: Path) -> None:
    data = (d / DATA).read_bytes()
    (d / DATA).write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])


def tamper_sums(d: Path) -> None:
    text = (d / SUMS).read_text()
    (d / SUMS).write_text(("1" if text[0] != "1" else "2") + text[1:])


@pytest.mark.parametrize(("tamper", "message"), [
    (tamper_data, f"changed file {DATA}"),
    (lambda d: (d / DATA).write_bytes((d / DATA).read_bytes() + b"\0"), f"changed file {DATA}"),
    (lambda d: (d / DATA).unlink(), f"missing file {DATA}"),
    (lambda d: (d / "extra.csv").write_text("more"), "extra file extra.csv"),
    (lambda d: (d / ".hidden").write_text("more"), "extra file .hidden"),
    (lambda d: (d / SIGNATURE).unlink(), f"missing file {SIGNATURE}"),
    (lambda d: (d / MANIFEST).unlink(), f"missing file {MANIFEST}"),
    (lambda d: (d / MANIFEST).write_bytes((d / MANIFEST).read_bytes().replace(b"patients", b"others")),
     "bad signature"),
    (lambda d: (d / SIGNATURE).write_bytes(b"\xff\xfe"), "bad signature"),
    (tamper_sums, SUMS),
])
def test_each_tampering_is_named(export_dir, trusted, tamper, message):
    tamper(export_dir)
    with pytest.raises(VerificationError, match=message):
        verify_export(export_dir, trusted)


def fifo_for(name: str):
    def tamper(d: Path) -> None:
        (d / name).unlink()
        os.mkfifo(d / name)
    return tamper


def device_for(name: str):
    def tamper(d: Path) -> None:
        (d / name).unlink()
        (d / name).symlink_to("/dev/zero")
    return tamper


def loop_for(name: str):
    def tamper(d: Path) -> None:
        (d / name).unlink()
        (d / name).symlink_to(d / name)  # a link to itself: "too many levels of symbolic links"
    return tamper


@pytest.mark.parametrize(("tamper", "message"), [
    (fifo_for(MANIFEST), f"changed file {MANIFEST}: not a regular file"),  # a reader would wait for ever
    (fifo_for(SUMS), f"changed file {SUMS}: not a regular file"),
    (device_for(MANIFEST), f"changed file {MANIFEST}: not a regular file"),  # a reader would never end
    (loop_for(SUMS), f"changed file {SUMS}: not a regular file"),
    (lambda d: (d / SIGNATURE).write_bytes((d / SIGNATURE).read_bytes() + b" " * 20_000),
     f"changed file {SIGNATURE}: larger than datashare writes it"),
])
def test_a_file_that_cannot_be_read_whole_is_refused_before_it_is_read(export_dir, trusted, tamper, message):
    tamper(export_dir)
    with pytest.raises(VerificationError, match=message):
        verify_export(export_dir, trusted)


def test_a_key_not_trusted_and_a_missing_folder(export_dir, tmp_path):
    stranger = [key_info(Ed25519PrivateKey.generate())]
    with pytest.raises(VerificationError, match="unknown key"):
        verify_export(export_dir, stranger)
    with pytest.raises(VerificationError, match="missing export"):
        verify_export(tmp_path / "nothing", stranger)


def test_a_signed_manifest_naming_a_file_outside_the_folder_is_refused(made, export_dir, trusted):
    manifest = json.loads((export_dir / MANIFEST).read_bytes())
    manifest["files"].append({"name": "../secret.key", "size": 32, "sha256": "0" * 64})
    body = json.dumps(manifest).encode()
    (export_dir / MANIFEST).write_bytes(body)
    (export_dir / SIGNATURE).write_text(signing.sign(body, load_private_key(made[0], TEST_PASSPHRASE)[0]))
    with pytest.raises(VerificationError, match="missing file ../secret.key"):
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
    check_destination(export_dir, overwrite=True, trusted_keys=trusted)  # an export signed by a trusted key
    (export_dir / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not part of its export.*notes.txt"):
        check_destination(export_dir, overwrite=True, trusted_keys=trusted)
    (export_dir / "notes.txt").unlink()
    (export_dir / SIGNATURE).write_text("forged")
    with pytest.raises(InputError, match="not an export signed by this workspace's key"):
        check_destination(export_dir, overwrite=True, trusted_keys=trusted)


def test_destinations_that_are_accepted(tmp_path):
    (tmp_path / "empty").mkdir()
    check_destination(tmp_path / "empty", overwrite=False)
    check_destination(tmp_path / "new" / "deeper" / "out", overwrite=False)
    assert (tmp_path / "new" / "deeper").is_dir() and not (tmp_path / "new" / "deeper" / "out").exists()


def dead_pid() -> str:
    """The id of a process that has ended."""
    return subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_staging_left_by_a_dead_process_is_removed_and_a_live_ones_kept(tmp_path):
    dead = dead_pid()
    stale = tmp_path / f".out.tmp-{dead}-abcd1234"
    live = tmp_path / f".out.tmp-{os.getpid()}-efgh5678"
    other = tmp_path / f".other.tmp-{dead}-abcd1234"
    for folder in (stale, live, other):
        folder.mkdir()
    staging = staging_dir_for(tmp_path / "out")
    assert staging.name.startswith(f".out.tmp-{os.getpid()}-")
    assert not stale.exists() and live.exists() and other.exists()


def test_an_earlier_export_moved_aside_by_a_killed_overwrite_comes_back(made, tmp_path, trusted):
    shutil.copytree(made[1], tmp_path / f".out.old-{dead_pid()}")
    staging_dir_for(tmp_path / "out")
    verify_export(tmp_path / "out", trusted)
