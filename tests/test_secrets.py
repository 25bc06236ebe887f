"""Secrets stay secret: a full run through the real CLI, then every byte it wrote is searched.

The signing key is stored 0600 and encrypted (OpenSSH format, bcrypt KDF); the HMAC secret is 0600 and sealed under
the same passphrase (scrypt, AES-256-GCM). Neither
of them in any encoding, nor any passphrase, appears in the stdout or stderr of any command, the audit log,
manifests, config.json, approvals.json, the catalog file or anything else the run wrote.
"""

from __future__ import annotations

import base64
import os
import stat
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
from cryptography.hazmat.primitives import serialization

from datashare.workspace import Workspace

from .conftest import RESEARCH_POLICY as RESEARCH
from .conftest import SAMPLE_CSV, TEST_PASSPHRASE, cli_env, run_cli

NEW_PASSPHRASE = "rotated: tr0ub4dor & 3"
WRONG_PASSPHRASE = "not the passphrase at all"
EXPORT_ARGS = ["--purpose", "clinical-research", "--recipient", "cicor", "--json"]


@dataclass
class FullRun:
    home: Path
    root: Path
    outputs: dict[str, str] = field(default_factory=dict)  # command -> its stdout and stderr
    secrets: dict[str, bytes] = field(default_factory=dict)  # what must not appear -> its bytes
    key_files: list[bytes] = field(default_factory=list)  # the encrypted key files as they were


def encodings(value: bytes) -> list[bytes]:
    """The ways a secret could show up in text or bytes."""
    b64 = base64.b64encode(value)
    return [value, value.hex().encode(), value.hex().upper().encode(), b64, b64.rstrip(b"="),
            base64.urlsafe_b64encode(value).rstrip(b"=")]


def key_secrets(home: Path, passphrase: str, label: str) -> dict[str, bytes]:
    """The private key's seed and the armored file's body lines: none of it may leave the key file."""
    armored = (home / "keys" / "signing_key").read_bytes()
    key = serialization.load_ssh_private_key(armored, password=passphrase.encode())
    found = {f"{label} seed": key.private_bytes_raw()}
    body = [line for line in armored.splitlines() if line and not line.startswith(b"-----")]
    found.update({f"{label} armored line {i}": line for i, line in enumerate(body)})
    return found


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> FullRun:
    root = tmp_path_factory.mktemp("secrets")
    home = root / "ws"
    run = FullRun(home, root)
    current = [TEST_PASSPHRASE]  # the signing key's passphrase: it changes with the rotation

    def cli(*args, passphrase: str | None = None, expect: int = 0, **extra: str) -> None:
        passphrase = passphrase or current[0]
        env = cli_env(home, DATASHARE_PASSPHRASE=passphrase, **extra)
        result = run_cli(*[str(a) for a in args], home=home, env=env)
        run.outputs[" ".join(str(a) for a in args)] = result.stdout + result.stderr
        expected = 1 if passphrase == WRONG_PASSPHRASE else expect
        assert result.code == expected, (args, result.stderr)

    cli("init")
    run.key_files.append((home / "keys" / "signing_key").read_bytes())
    run.secrets.update(key_secrets(home, TEST_PASSPHRASE, "first key"))
    cli("register", SAMPLE_CSV, "--name", "patients", "--json")
    cli("policy", "approve", RESEARCH, "--json")
    cli("export", "patients", "--policy", RESEARCH, "--out", root / "exports" / "one", *EXPORT_ARGS)
    cli("keys", "generate", "--rotate", "--json", DATASHARE_NEW_PASSPHRASE=NEW_PASSPHRASE)
    run.key_files.append((home / "keys" / "signing_key").read_bytes())
    run.secrets.update(key_secrets(home, NEW_PASSPHRASE, "second key"))
    current[0] = NEW_PASSPHRASE
    for args in (["keys", "show"], ["keys", "export-public", "--out", root / "pub.key"],
                 ["show", "patients", "--json"], ["policy", "explain", RESEARCH, "--dataset", "patients", "--json"],
                 ["risk", "patients", "--policy", RESEARCH, "--json"]):
        cli(*args)
    cli("export", "patients", "--policy", RESEARCH, "--out", root / "exports" / "two", *EXPORT_ARGS)
    cli("--debug", "export", "patients", "--policy", RESEARCH, "--out", root / "exports" / "four", "--format", "csv",
        *EXPORT_ARGS, passphrase=WRONG_PASSPHRASE)
    cli("register", root / "missing.csv", "--name", "x", expect=1)
    cli("export", "patients", "--policy", RESEARCH, "--out", root / "exports" / "five", "--purpose", "spying",
        "--recipient", "cicor", expect=3)
    cli("audit", "summary", "--json")
    cli("policy", "list", "--json")
    for args in (["verify", root / "exports" / "one", "--json"], ["verify", root / "exports" / "two", "--json"],
                 ["audit", "head"], ["audit", "--json"], ["audit", "verify", "--json"]):
        cli(*args)
    run.secrets["HMAC secret"] = Workspace(home).secret(NEW_PASSPHRASE)  # sealed again by the rotation
    for label, phrase in (("passphrase", TEST_PASSPHRASE), ("new passphrase", NEW_PASSPHRASE),
                          ("wrong passphrase", WRONG_PASSPHRASE)):
        run.secrets[label] = phrase.encode()
    return run


def secret_files(run: FullRun) -> set[Path]:
    return {run.home / "secret.key", run.home / "keys" / "signing_key"}


def test_the_run_wrote_what_is_searched(full_run):
    """The search below covers real output: the files it names exist and hold what they should."""
    written = {p.relative_to(full_run.root).as_posix() for p in full_run.root.rglob("*") if p.is_file()}
    for name in ("ws/audit.log", "ws/config.json", "ws/approvals.json", "ws/catalog.duckdb",
                 "exports/one/manifest.json", "exports/two/manifest.json", "pub.key"):
        assert name in written, sorted(written)
    assert not any(name.startswith(("exports/four", "exports/five")) for name in written)
    assert len(full_run.outputs) == 21 and all(full_run.outputs.values())
    assert full_run.key_files[0] != full_run.key_files[1]
    # the search finds a secret where it is meant to be: in its own file (the HMAC secret only sealed)
    secret_bytes = b"".join(p.read_bytes() for p in secret_files(full_run))
    assert full_run.secrets["second key armored line 1"] in secret_bytes
    assert full_run.secrets["HMAC secret"] not in secret_bytes
    assert Workspace(full_run.home).secret(NEW_PASSPHRASE) == full_run.secrets["HMAC secret"]


def test_the_secret_files_are_private(full_run):
    for path in secret_files(full_run):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert len((full_run.home / "secret.key").read_bytes()) >= 32


def test_the_private_key_is_encrypted_with_bcrypt(full_run):
    for armored in full_run.key_files:
        body = base64.b64decode(b"".join(line for line in armored.splitlines() if not line.startswith(b"-----")))
        magic = b"openssh-key-v1\0"
        assert body.startswith(magic)
        fields, pos = [], len(magic)
        for _ in range(3):  # cipher name, KDF name, KDF options
            (length,) = struct.unpack(">I", body[pos:pos + 4])
            fields.append(body[pos + 4:pos + 4 + length])
            pos += 4 + length
        cipher, kdf, options = fields
        assert cipher != b"none" and cipher.startswith(b"aes") and kdf == b"bcrypt"
        (salt_length,) = struct.unpack(">I", options[:4])
        (rounds,) = struct.unpack(">I", options[4 + salt_length:8 + salt_length])
        assert rounds >= 16
    armored = (full_run.home / "keys" / "signing_key").read_bytes()
    with pytest.raises(TypeError):
        serialization.load_ssh_private_key(armored, password=None)
    with pytest.raises(ValueError):
        serialization.load_ssh_private_key(armored, password=TEST_PASSPHRASE.encode())
    public = subprocess.run(["ssh-keygen", "-y", "-P", NEW_PASSPHRASE, "-f", str(full_run.home / "keys" /
                            "signing_key")], capture_output=True, text=True, check=True).stdout.split()[:2]
    assert public == (full_run.home / "keys" / "signing_key.pub").read_text().split()[:2]


def test_no_secret_in_any_command_output(full_run):
    leaks = [(label, command) for command, text in full_run.outputs.items()
             for label, secret in full_run.secrets.items()
             for form in encodings(secret) if form.decode("latin-1") in text]
    assert leaks == []
    assert not any("PRIVATE KEY" in text for text in full_run.outputs.values())
    assert not any("Traceback" in text for command, text in full_run.outputs.items() if "--debug" not in command)


def test_no_secret_in_any_file_the_run_wrote(full_run):
    files = [p for p in full_run.root.rglob("*") if p.is_file() and p not in secret_files(full_run)]
    assert len(files) >= 10
    leaks = []
    for path in files:
        data = path.read_bytes()
        leaks += [(label, str(path)) for label, secret in full_run.secrets.items()
                  for form in encodings(secret) if form in data]
        if b"PRIVATE KEY" in data:
            leaks.append(("private key armour", str(path)))
    assert leaks == []


def test_the_key_file_is_never_readable_by_others_even_after_rotation(full_run):
    keys = full_run.home / "keys"
    private = [p for p in keys.iterdir() if p.is_file() and not p.name.endswith((".pub", ".json"))]
    assert private == [keys / "signing_key"]
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in private)
    assert stat.S_IMODE(os.stat(keys).st_mode) & 0o077 == 0


def test_no_identifier_of_the_data_in_any_output_log_or_manifest(full_run):
    """No cell value of a direct identifier column appears in what the commands printed, the log or a manifest."""
    written = "".join(full_run.outputs.values()) + (full_run.home / "audit.log").read_text(encoding="utf-8")
    written += "".join(p.read_text(encoding="utf-8") for p in full_run.root.glob("exports/*/manifest.json"))
    con = duckdb.connect()
    identifiers = con.execute(f"""SELECT DISTINCT v FROM (
        SELECT unnest([hkid, name_en, name_zh, phone, email, address]) AS v FROM read_csv('{SAMPLE_CSV}'))
        WHERE v IS NOT NULL AND length(trim(v)) > 3""").fetchall()
    assert len(identifiers) > 1000
    assert [v for (v,) in identifiers if v.strip() in written] == []
