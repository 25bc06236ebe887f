"""OpenSSH signatures (SSHSIG) over bytes, and public-key files, as ``ssh-keygen -Y`` reads and writes them.

Signatures are armored SSHSIG (namespace ``datashare``, hash sha512), which a
recipient checks with ``ssh-keygen -Y verify`` and no datashare at all.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datashare.errors import InputError, VerificationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

NAMESPACE = "datashare"


_MAGIC = b"SSHSIG"


_SIG_VERSION = 1


_HASH_ALG = "sha512"


_ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"


_ARMOR_END = "-----END SSH SIGNATURE-----"


KEY_TYPE = b"ssh-ed25519"


@dataclass(frozen=True)
class KeyInfo:
    """A public key datashare knows: its id (as ssh-keygen prints it), OpenSSH line, comment, dates."""

    key_id: str
    public_key: str  # "ssh-ed25519 AAAA… comment"
    comment: str
    created: str
    retired: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def blob(self) -> bytes:
        return base64.b64decode(self.public_key.split()[1])


# --- key ids and wire format -----------------------------------------------------------
def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _read_string(data: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(data):
        raise VerificationError("bad signature: truncated")
    (length,) = struct.unpack(">I", data[offset:offset + 4])
    end = offset + 4 + length
    if end > len(data):
        raise VerificationError("bad signature: truncated")
    return data[offset + 4:end], end


def key_id_of_blob(blob: bytes) -> str:
    """``SHA256:…`` exactly as ``ssh-keygen -l`` prints a key's fingerprint."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def public_blob(public_key: Ed25519PublicKey) -> bytes:
    # deferred: only commands that sign or verify need cryptography
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _string(KEY_TYPE) + _string(raw)


def parse_public_key_line(line: str) -> tuple[bytes, str]:
    """(blob, comment) of an ``ssh-ed25519 AAAA… comment`` line."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2 or parts[0] != KEY_TYPE.decode():
        raise InputError("not an ssh-ed25519 public key line")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError as exc:
        raise InputError("not an ssh-ed25519 public key line (bad base64)") from exc
    return blob, parts[2] if len(parts) > 2 else ""


# --- SSHSIG -------------------------------------------------------------------------------------
def _signed_data(message: bytes, namespace: str) -> bytes:
    digest = hashlib.sha512(message).digest()
    return _MAGIC + _string(namespace.encode()) + _string(b"") + _string(_HASH_ALG.encode()) + _string(digest)


def sign_sshsig(message: bytes, private_key: Ed25519PrivateKey, namespace: str = NAMESPACE) -> str:
    """An armored SSHSIG signature over ``message``, as ``ssh-keygen -Y sign`` makes."""
    blob = public_blob(private_key.public_key())
    raw_sig = private_key.sign(_signed_data(message, namespace))
    signature = _string(KEY_TYPE) + _string(raw_sig)
    body = (_MAGIC + struct.pack(">I", _SIG_VERSION) + _string(blob) + _string(namespace.encode())
            + _string(b"") + _string(_HASH_ALG.encode()) + _string(signature))
    text = base64.b64encode(body).decode()
    lines = [text[i:i + 70] for i in range(0, len(text), 70)]
    return "\n".join([_ARMOR_BEGIN, *lines, _ARMOR_END]) + "\n"


def verify_sshsig(message: bytes, armored: str, public_keys: list[KeyInfo], namespace: str = NAMESPACE) -> KeyInfo:
    """Return the key that made this signature over ``message``, or raise naming the failed check."""
    # deferred: only commands that sign or verify need cryptography
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = armored.strip()
    if not (text.startswith(_ARMOR_BEGIN) and text.endswith(_ARMOR_END)):
        raise VerificationError("bad signature: not an armored SSH signature")
    try:
        body = base64.b64decode("".join(text[len(_ARMOR_BEGIN):-len(_ARMOR_END)].split()), validate=True)
    except ValueError as exc:
        raise VerificationError("bad signature: not valid base64") from exc
    if not body.startswith(_MAGIC) or len(body) < 10:
        raise VerificationError("bad signature: not an SSHSIG blob")
    (version,) = struct.unpack(">I", body[6:10])
    if version != _SIG_VERSION:
        raise VerificationError(f"bad signature: unsupported SSHSIG version {version}")
    blob, offset = _read_string(body, 10)
    sig_namespace, offset = _read_string(body, offset)
    _, offset = _read_string(body, offset)
    hash_alg, offset = _read_string(body, offset)
    signature, offset = _read_string(body, offset)
    if sig_namespace.decode(errors="replace") != namespace:
        raise VerificationError(f"bad signature: namespace {sig_namespace.decode(errors='replace')!r}, "
                                f"expected {namespace!r}")
    if hash_alg != _HASH_ALG.encode():
        raise VerificationError(f"bad signature: hash {hash_alg.decode(errors='replace')!r}, expected sha512")
    signer = next((key for key in public_keys if key.blob == blob), None)
    if signer is None:
        raise VerificationError(f"unknown key: signed by {key_id_of_blob(blob)}, which is not a trusted key")
    sig_type, inner = _read_string(signature, 0)
    raw_sig, _ = _read_string(signature, inner)
    key_type, rest = _read_string(blob, 0)
    raw_key, _ = _read_string(blob, rest)
    if sig_type != KEY_TYPE or key_type != KEY_TYPE:
        raise VerificationError("bad signature: only ssh-ed25519 signatures are accepted")
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(raw_sig, _signed_data(message, namespace))
    except InvalidSignature as exc:
        raise VerificationError("bad signature: the signature does not match the signed file") from exc
    return signer


# --- public key files ---------------------------------------------------------------------
def allowed_signers_line(info: KeyInfo, principal: str | None = None) -> str:
    """A line for ssh-keygen's allowed_signers file."""
    key_type, key_b64 = info.public_key.split()[:2]
    return f'{principal or info.comment or "datashare"} namespaces="{NAMESPACE}" {key_type} {key_b64}'


def keys_from_file(path: Path, *, allowed_signers: bool = False) -> list[KeyInfo]:
    """Trusted keys from a ``.pub`` file or an ssh-keygen allowed_signers file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    keys = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if allowed_signers:
            fields = line.split()
            starts = [i for i, item in enumerate(fields) if item == KEY_TYPE.decode()]
            if not starts:
                continue
            line = " ".join(fields[starts[0]:starts[0] + 2] + fields[:1])
        blob, comment = parse_public_key_line(line)
        keys.append(KeyInfo(key_id_of_blob(blob), f"{KEY_TYPE.decode()} {base64.b64encode(blob).decode()}",
                            comment, ""))
    if not keys:
        raise InputError(f"no ssh-ed25519 public key in {path}")
    return keys
