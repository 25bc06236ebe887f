"""Signing: Ed25519 keys kept in the workspace, and OpenSSH signatures (SSHSIG) over bytes.

Callers sign and verify through :func:`sign` and :func:`verify`, so another
signature format would change this package only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datashare.signing.keystore import (
    NEW_PASSPHRASE_ENV,
    PASSPHRASE_ENV,
    KeyLoading,
    current_key,
    has_key,
    load_private_key,
    load_public_keys,
    passphrase_at_hand,
    read_passphrase,
)
from datashare.signing.sshsig import (
    NAMESPACE,
    KeyInfo,
    allowed_signers_line,
    check_principal,
    keys_from_file,
    sign_sshsig,
    verify_sshsig,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def sign(message: bytes, private_key: Ed25519PrivateKey) -> str:
    """An armored signature over ``message`` that ``ssh-keygen -Y verify -n datashare`` accepts."""
    return sign_sshsig(message, private_key)


def verify(message: bytes, signature: str, trusted: list[KeyInfo]) -> KeyInfo:
    """The trusted key that made ``signature`` over ``message``, or :class:`VerificationError` naming the check."""
    return verify_sshsig(message, signature, trusted)


__all__ = [
    "NAMESPACE", "NEW_PASSPHRASE_ENV", "PASSPHRASE_ENV", "KeyInfo", "KeyLoading", "allowed_signers_line",
    "check_principal", "current_key", "has_key", "keys_from_file", "load_private_key", "load_public_keys",
    "passphrase_at_hand", "read_passphrase", "sign", "verify",
]
