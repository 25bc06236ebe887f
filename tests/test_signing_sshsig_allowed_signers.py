"""SSHSIG signatures and allowed_signers files: datashare decides as `ssh-keygen -Y verify` does.

A differential test generates allowed_signers lines (principals, options, keys)
and signatures (genuine or mutated) and runs both verifiers on each.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datashare.errors import InputError, VerificationError
from datashare.signing.sshsig import keys_from_file, verify_sshsig

PRINCIPAL = "custodian@hospital"
MESSAGE = b"a file a recipient checks\n"
SIGNER = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"signer").digest())
OTHER = ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"other").digest())
RSA_LINE = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_bytes(
    serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
DAY = 86400


def pub_line(key) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _s(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def sshsig(message: bytes = MESSAGE, *, key=SIGNER, namespace: str = "datashare", hash_alg: str = "sha512",
           label: str | None = None, version: int = 1, trailing: bytes = b"", inner_trailing: bytes = b"",
           flip: bool = False) -> str:
    """An armored SSHSIG made independently of datashare's code, with optional defects."""
    raw_pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    blob = _s(b"ssh-ed25519") + _s(raw_pub)
    digest = hashlib.new(hash_alg, message).digest()
    label = label or hash_alg
    signed = b"SSHSIG" + _s(namespace.encode()) + _s(b"") + _s(label.encode()) + _s(digest)
    raw_sig = bytearray(key.sign(signed))
    if flip:
        raw_sig[7] ^= 0x10
    signature = _s(b"ssh-ed25519") + _s(bytes(raw_sig)) + inner_trailing
    body = (b"SSHSIG" + struct.pack(">I", version) + _s(blob) + _s(namespace.encode()) + _s(b"")
            + _s(label.encode()) + _s(signature) + trailing)
    text = base64.b64encode(body).decode()
    return "-----BEGIN SSH SIGNATURE-----\n" + "\n".join(
        text[i:i + 70] for i in range(0, len(text), 70)) + "\n-----END SSH SIGNATURE-----\n"


def ssh_keygen_accepts(signers: Path, signature: str, message: bytes, tmp: Path) -> bool:
    sig_file = tmp / "message.sig"
    sig_file.write_text(signature)
    result = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", PRINCIPAL, "-n", "datashare",
                             "-s", str(sig_file)], input=message, capture_output=True)
    return result.returncode == 0


def datashare_accepts(signers: Path, signature: str, message: bytes) -> bool:
    try:
        verify_sshsig(message, signature, keys_from_file(signers, allowed_signers=True))
    except (InputError, VerificationError):
        return False
    return True


# --- generated allowed_signers lines ----------------------------------------------------------------
def _stamp(seconds: float, layout: str, utc: str) -> str:
    moment = time.gmtime(seconds) if utc else time.localtime(seconds)
    return time.strftime({"day": "%Y%m%d", "minute": "%Y%m%d%H%M", "second": "%Y%m%d%H%M%S"}[layout], moment) + utc


# Times at least two days from now, so neither tool's clock nor the time zone decides.
valid_times = st.builds(
    _stamp,
    st.one_of(st.integers(2 * DAY, 3000 * DAY).map(lambda d: time.time() + d),
              st.integers(2 * DAY, 3000 * DAY).map(lambda d: time.time() - d)),
    st.sampled_from(["day", "minute", "second"]),
    st.sampled_from(["", "Z", "UTC"]),
)
times = valid_times | valid_times | valid_times | st.sampled_from(
    ["20201301", "20200230", "2020010", "19700101", "20200101250000", "abcdefgh"])

names = st.sampled_from(["namespaces", "valid-after", "valid-before"]).flatmap(
    lambda name: st.sampled_from([name, name.upper(), name.title()]))
namespace_patterns = st.sampled_from([
    "datashare", "*", "data*", "datashar?", "git,datashare", "*,!git", "[d]atashare"]) | st.sampled_from([
    "git", "", "!datashare,*", "DATASHARE", "file,git", "data"])


@st.composite
def option(draw) -> str:
    name = draw(names)
    value = draw(namespace_patterns) if name.lower() == "namespaces" else draw(times)
    if draw(st.integers(0, 9)) == 0:
        return f"{name}={value}"  # unquoted: ssh-keygen skips the line
    return f'{name}="{value}"'


@st.composite
def signer_line(draw) -> str:
    principals = draw(st.sampled_from([PRINCIPAL, "*", "custodian@*", f"other@x,{PRINCIPAL}", f'"{PRINCIPAL}"']))
    options = draw(st.lists(option(), max_size=2))
    if draw(st.integers(0, 14)) == 0:
        options.append("unknown-option")
    key = draw(st.sampled_from([pub_line(SIGNER), pub_line(SIGNER), pub_line(OTHER), RSA_LINE]))
    fields = [principals, ",".join(options)] if options else [principals]
    return " ".join([*fields, key])


signers_files = st.lists(signer_line() | st.sampled_from(["# a comment", "", "   "]), min_size=1, max_size=4)

signatures = st.just({}) | st.sampled_from([  # half of them genuine
    {"hash_alg": "sha256"}, {"namespace": "git"}, {"key": OTHER}, {"trailing": b"\0"},
    {"trailing": b"extra bytes"}, {"inner_trailing": b"\0\0\0\0"}, {"flip": True}, {"version": 2},
    {"label": "sha1"}, {"message": MESSAGE + b"!"},
])


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=signers_files, defects=signatures)
def test_datashare_and_ssh_keygen_agree(tmp_path, lines, defects):
    signers = tmp_path / "allowed_signers"
    signers.write_text("\n".join(lines) + "\n")
    defects = dict(defects)
    message = defects.pop("message", MESSAGE)
    signature = sshsig(**defects)
    expected = ssh_keygen_accepts(signers, signature, message, tmp_path)
    assert datashare_accepts(signers, signature, message) == expected, (lines, defects)


# --- each attack on its own, through the CLI's code path ---------------------------------------------
def _signers(tmp_path, text: str) -> Path:
    path = tmp_path / "allowed_signers"
    path.write_text(text)
    return path


@pytest.mark.parametrize("line", [
    f'{PRINCIPAL} namespaces="git" {pub_line(SIGNER)}',
    f'{PRINCIPAL} valid-before="{_stamp(time.time() - 2 * DAY, "day", "Z")}" {pub_line(SIGNER)}',
    f'{PRINCIPAL} valid-after="{_stamp(time.time() + 2 * DAY, "day", "Z")}" {pub_line(SIGNER)}',
    f"{PRINCIPAL} namespaces=datashare {pub_line(SIGNER)}",
])
def test_a_line_that_does_not_allow_signing_now_is_not_trusted(tmp_path, line):
    signers = _signers(tmp_path, line + "\n")
    assert not ssh_keygen_accepts(signers, sshsig(), MESSAGE, tmp_path)
    with pytest.raises(VerificationError, match="unknown key"):
        verify_sshsig(MESSAGE, sshsig(), keys_from_file(signers, allowed_signers=True))


def test_a_line_that_allows_signing_now_is_trusted(tmp_path):
    past, future = (_stamp(time.time() + d * DAY, "second", "") for d in (-2, 2))
    signers = _signers(tmp_path, f'{PRINCIPAL} namespaces="git,datashare",valid-after="{past}",'
                                 f'valid-before="{future}" {pub_line(SIGNER)}\n')
    assert ssh_keygen_accepts(signers, sshsig(), MESSAGE, tmp_path)
    assert verify_sshsig(MESSAGE, sshsig(), keys_from_file(signers, allowed_signers=True)).comment == PRINCIPAL


def test_cert_authority_is_refused_clearly(tmp_path):
    signers = _signers(tmp_path, f"{PRINCIPAL} cert-authority {pub_line(SIGNER)}\n")
    with pytest.raises(InputError, match="cert-authority is not supported"):
        keys_from_file(signers, allowed_signers=True)


@pytest.mark.parametrize("defects", [{"trailing": b"\0"}, {"inner_trailing": b"\0"}])
def test_trailing_data_after_the_signature_is_refused(tmp_path, defects):
    signers = _signers(tmp_path, f"{PRINCIPAL} {pub_line(SIGNER)}\n")
    assert ssh_keygen_accepts(signers, sshsig(), MESSAGE, tmp_path)
    assert not ssh_keygen_accepts(signers, sshsig(**defects), MESSAGE, tmp_path)
    with pytest.raises(VerificationError, match="trailing data"):
        verify_sshsig(MESSAGE, sshsig(**defects), keys_from_file(signers, allowed_signers=True))


def test_a_public_key_file_for_an_allowed_signers_file_and_back_is_an_input_error(tmp_path):
    """Each was a mistyped option, not a forged export: the first was reported as an unknown key (exit 4)."""
    pub = tmp_path / "custodian.pub"
    pub.write_text(pub_line(SIGNER) + " custodian@hospital\n")
    with pytest.raises(InputError, match="is a public key file, not an allowed_signers file") as caught:
        keys_from_file(pub, allowed_signers=True)
    assert "--pubkey" in caught.value.hint
    signers = _signers(tmp_path, f'{PRINCIPAL} namespaces="datashare" {pub_line(SIGNER)}\n')
    with pytest.raises(InputError, match="is an allowed_signers file, not a public key file") as caught:
        keys_from_file(signers)
    assert "--allowed-signers" in caught.value.hint
