"""SSHSIG signatures and public-key files, checked against ssh-keygen in both directions."""

from __future__ import annotations

import base64
import struct
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from datashare.errors import InputError, VerificationError
from datashare.signing.sshsig import (
    NAMESPACE,
    KeyInfo,
    allowed_signers_line,
    key_id_of_blob,
    keys_from_file,
    parse_public_key_line,
    public_blob,
    sign_sshsig,
    verify_sshsig,
)

MESSAGE = b'{"dataset": "patients", "rows": 1234}\n'


def info_of(key: Ed25519PrivateKey, comment: str = "custodian@cicor") -> KeyInfo:
    blob = public_blob(key.public_key())
    return KeyInfo(key_id_of_blob(blob), f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}", comment,
                   "2026-01-01T00:00:00Z")


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def test_a_signature_verifies_and_names_its_key(key):
    trusted = [info_of(Ed25519PrivateKey.generate()), info_of(key)]
    assert verify_sshsig(MESSAGE, sign_sshsig(MESSAGE, key), trusted) == trusted[1]


def test_a_changed_message_does_not_verify(key):
    with pytest.raises(VerificationError, match="does not match the signed file"):
        verify_sshsig(MESSAGE + b" ", sign_sshsig(MESSAGE, key), [info_of(key)])


def test_a_key_that_is_not_trusted_is_named(key):
    other = Ed25519PrivateKey.generate()
    with pytest.raises(VerificationError) as caught:
        verify_sshsig(MESSAGE, sign_sshsig(MESSAGE, other), [info_of(key)])
    assert caught.value.message.startswith(f"unknown key: signed by {info_of(other).key_id},")


def test_a_signature_for_another_namespace_is_refused(key):
    with pytest.raises(VerificationError, match="namespace 'git'"):
        verify_sshsig(MESSAGE, sign_sshsig(MESSAGE, key, namespace="git"), [info_of(key)])


def test_damaged_signatures_are_named_not_crashed_on(key):
    good = sign_sshsig(MESSAGE, key)
    lines = good.splitlines()
    body = base64.b64decode("".join(lines[1:-1]))

    def rearmor(raw: bytes) -> str:
        return "\n".join([lines[0], base64.b64encode(raw).decode(), lines[-1]])

    cases = {
        "not an armored SSH signature": "hello",
        "not valid base64": "\n".join([lines[0], "!!!", lines[-1]]),
        "not an SSHSIG blob": rearmor(b"SSHSIH" + body[6:]),
        "unsupported SSHSIG version 2": rearmor(body[:6] + b"\x00\x00\x00\x02" + body[10:]),
        "truncated": rearmor(body[:40]),
    }
    for message, armored in cases.items():
        with pytest.raises(VerificationError, match=message):
            verify_sshsig(MESSAGE, armored, [info_of(key)])


def test_a_reserved_field_holding_data_is_refused(key):
    """The signature does not cover the reserved field and ssh-keygen skips it: one byte there verified."""
    lines = sign_sshsig(MESSAGE, key).splitlines()
    body = base64.b64decode("".join(lines[1:-1]))
    offset = 10
    for _ in range(2):  # the public key and the namespace
        offset += 4 + struct.unpack(">I", body[offset:offset + 4])[0]
    assert body[offset:offset + 4] == b"\x00\x00\x00\x00"  # as datashare (and ssh-keygen) write it: empty
    riding = body[:offset] + b"\x00\x00\x00\x01x" + body[offset + 4:]
    armored = "\n".join([lines[0], base64.b64encode(riding).decode(), lines[-1]])
    with pytest.raises(VerificationError, match="its reserved field holds data"):
        verify_sshsig(MESSAGE, armored, [info_of(key)])


def unencrypted_key_file(key: Ed25519PrivateKey, path: Path) -> Path:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def test_ssh_keygen_verifies_our_signature_and_we_verify_its(key, tmp_path):
    info = info_of(key)
    signers = tmp_path / "allowed_signers"
    signers.write_text(allowed_signers_line(info, "recipient@cicor") + "\n")
    data = tmp_path / "manifest.json"
    data.write_bytes(MESSAGE)
    (tmp_path / "manifest.json.sig").write_text(sign_sshsig(MESSAGE, key))
    with data.open("rb") as stdin:
        checked = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", "recipient@cicor",
                                  "-n", NAMESPACE, "-s", str(tmp_path / "manifest.json.sig")],
                                 stdin=stdin, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    (tmp_path / "manifest.json.sig").unlink()
    subprocess.run(["ssh-keygen", "-Y", "sign", "-q", "-f", str(unencrypted_key_file(key, tmp_path / "id")),
                    "-n", NAMESPACE, str(data)], check=True, capture_output=True)
    assert verify_sshsig(MESSAGE, (tmp_path / "manifest.json.sig").read_text(), [info]) == info


def test_the_key_id_is_the_fingerprint_ssh_keygen_prints(key, tmp_path):
    pub = tmp_path / "key.pub"
    pub.write_text(info_of(key).public_key + "\n")
    printed = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout
    assert printed.split()[1] == info_of(key).key_id


def test_keys_from_a_pub_file_and_from_an_allowed_signers_file(key, tmp_path):
    info = info_of(key)
    pub = tmp_path / "key.pub"
    pub.write_text(f"# a comment\n\n{info.public_key}\n")
    [from_pub] = keys_from_file(pub)
    assert (from_pub.key_id, from_pub.comment) == (info.key_id, "custodian@cicor")
    signers = tmp_path / "signers"
    signers.write_text(allowed_signers_line(info) + "\nno key on this line\n")
    [from_signers] = keys_from_file(signers, allowed_signers=True)
    assert from_signers.key_id == info.key_id and from_signers.blob == info.blob
    key_type, key_b64 = info.public_key.split()[:2]
    assert allowed_signers_line(info) == f'custodian@cicor namespaces="datashare" {key_type} {key_b64}'


def test_files_without_a_usable_key_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        keys_from_file(tmp_path / "missing.pub")
    (tmp_path / "empty.pub").write_text("# nothing here\n")
    with pytest.raises(InputError, match="no ssh-ed25519 public key"):
        keys_from_file(tmp_path / "empty.pub")
    with pytest.raises(InputError, match="not an ssh-ed25519 public key line"):
        parse_public_key_line("ssh-rsa AAAAB3NzaC1yc2E= someone")
    with pytest.raises(InputError, match="bad base64"):
        parse_public_key_line("ssh-ed25519 not*base64 someone")
