"""A 32-byte secret sealed under a passphrase: scrypt derives a key-encryption key, AES-256-GCM wraps the secret.

The sealed form is a small JSON document, versioned::

    {"format": "datashare-secret", "version": 1,
     "kdf": {"name": "scrypt", "n": 32768, "r": 8, "p": 1, "salt": "<base64, 16 bytes>"},
     "cipher": "aes-256-gcm", "nonce": "<base64, 12 bytes>", "ciphertext": "<base64, 32 + 16 bytes>"}

The format, version and KDF parameters are the AES-GCM associated data, so
changing any of them (say, a lower cost) makes the seal fail to open. The KDF
parameters read from a file are bounded before use: a hostile file cannot ask
for gigabytes of scrypt memory.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from datashare.errors import SigningKeyError, WorkspaceError

SEAL_FORMAT = "datashare-secret"
SEAL_VERSION = 1
SCRYPT_N = 1 << 15  # 32 MiB and about 0.1 s; the passphrase also guards the signing key (bcrypt KDF, 64 rounds)
SCRYPT_R = 8
SCRYPT_P = 1
_SCRYPT_N_RANGE = (1 << 1, 1 << 20)  # what a sealed file may ask for (1 GiB of memory at the top)
_SALT_BYTES = 16
_NONCE_BYTES = 12
_KEY_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _associated_data(kdf: dict[str, Any]) -> bytes:
    head = {"format": SEAL_FORMAT, "version": SEAL_VERSION, "kdf": kdf, "cipher": "aes-256-gcm"}
    return json.dumps(head, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _kek(passphrase: str, salt: bytes, n: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt  # deferred: a heavy import

    return Scrypt(salt=salt, length=_KEY_BYTES, n=n, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase.encode("utf-8"))


def seal(secret: bytes, passphrase: str, *, scrypt_n: int = SCRYPT_N) -> bytes:
    """The sealed form of ``secret`` (file content). ``scrypt_n`` exists for tests; commands use :data:`SCRYPT_N`."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # deferred: a heavy import

    if not passphrase:
        raise SigningKeyError("an empty passphrase would leave the workspace secret unprotected")
    salt, nonce = os.urandom(_SALT_BYTES), os.urandom(_NONCE_BYTES)
    kdf = {"name": "scrypt", "n": scrypt_n, "r": SCRYPT_R, "p": SCRYPT_P, "salt": _b64(salt)}
    ciphertext = AESGCM(_kek(passphrase, salt, scrypt_n)).encrypt(nonce, secret, _associated_data(kdf))
    document = {"format": SEAL_FORMAT, "version": SEAL_VERSION, "kdf": kdf, "cipher": "aes-256-gcm",
                "nonce": _b64(nonce), "ciphertext": _b64(ciphertext)}
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` is a sealed secret (as opposed to the raw bytes of an older workspace's secret)."""
    return data.lstrip().startswith(b"{") and SEAL_FORMAT.encode() in data


def unseal(data: bytes, passphrase: str, *, where: str = "the workspace secret") -> bytes:
    """The secret inside a sealed document; a wrong passphrase or a damaged file is a clear error."""
    # deferred: heavy imports
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        document = json.loads(data)
        if (document["format"], document["version"], document["cipher"]) != (SEAL_FORMAT, SEAL_VERSION,
                                                                               "aes-256-gcm"):
            raise ValueError("unknown format")
        kdf = document["kdf"]
        n = kdf["n"]
        if kdf["name"] != "scrypt" or (kdf["r"], kdf["p"]) != (SCRYPT_R, SCRYPT_P) or type(n) is not int \
                or not _SCRYPT_N_RANGE[0] <= n <= _SCRYPT_N_RANGE[1] or n & (n - 1):
            raise ValueError("unsupported KDF parameters")
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(document["nonce"], validate=True)
        ciphertext = base64.b64decode(document["ciphertext"], validate=True)
        if len(salt) != _SALT_BYTES or len(nonce) != _NONCE_BYTES:
            raise ValueError("wrong salt or nonce length")
    except (ValueError, KeyError, TypeError) as exc:
        raise WorkspaceError(f"{where} is damaged (not a sealed secret this datashare reads)") from exc
    try:
        return AESGCM(_kek(passphrase, salt, n)).decrypt(nonce, ciphertext, _associated_data(kdf))
    except InvalidTag:
        raise SigningKeyError(f"wrong passphrase for {where} (or the file was changed)",
                              hint="It is sealed with the signing key's passphrase: check DATASHARE_PASSPHRASE "
                                   "or what you typed.") from None
