"""Sealing the HMAC secret (core/secretbox.py): round trip, wrong passphrase, tampering, bounded KDF parameters."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datashare.core import secretbox
from datashare.errors import SigningKeyError, WorkspaceError

LOW_COST = 2 ** 4  # tests only: commands seal with secretbox.SCRYPT_N


@settings(max_examples=25, deadline=None)
@given(secret=st.binary(min_size=32, max_size=32), passphrase=st.text(min_size=1, max_size=40))
def test_a_sealed_secret_opens_with_its_passphrase_only(secret, passphrase):
    sealed = secretbox.seal(secret, passphrase, scrypt_n=LOW_COST)
    assert secretbox.is_sealed(sealed) and secret not in sealed
    assert secretbox.unseal(sealed, passphrase) == secret
    with pytest.raises(SigningKeyError, match="wrong passphrase"):
        secretbox.unseal(sealed, passphrase + "x")


def test_each_seal_is_fresh_and_the_default_cost_is_the_documented_one():
    first, second = (json.loads(secretbox.seal(b"k" * 32, "pass", scrypt_n=LOW_COST)) for _ in range(2))
    assert first["kdf"]["salt"] != second["kdf"]["salt"] and first["nonce"] != second["nonce"]
    default = json.loads(secretbox.seal(b"k" * 32, "pass"))
    assert {key: default["kdf"][key] for key in ("name", "n", "r", "p")} == {"name": "scrypt", "n": 2 ** 15, "r": 8,
                                                                          "p": 1}
    assert (default["format"], default["version"], default["cipher"]) == ("datashare-secret", 1, "aes-256-gcm")


def tampered(sealed: bytes, change) -> bytes:
    document = json.loads(sealed)
    change(document)
    return json.dumps(document).encode()


def flip_ciphertext(document):
    raw = bytearray(base64.b64decode(document["ciphertext"]))
    raw[0] ^= 1
    document["ciphertext"] = base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("change", [
    flip_ciphertext,
    lambda d: d["kdf"].update(n=2 ** 2),  # cheaper to guess: the KDF parameters are authenticated
    lambda d: d["kdf"].update(salt=base64.b64encode(b"\0" * 16).decode()),
])
def test_a_changed_seal_does_not_open(change):
    sealed = secretbox.seal(b"s" * 32, "pass", scrypt_n=LOW_COST)
    with pytest.raises(SigningKeyError):
        secretbox.unseal(tampered(sealed, change), "pass")


@pytest.mark.parametrize("change", [
    lambda d: d["kdf"].update(n=2 ** 40),  # a hostile file may not ask for terabytes of memory
    lambda d: d["kdf"].update(n=3),
    lambda d: d["kdf"].update(r=1),
    lambda d: d.update(version=2),
    lambda d: d.update(nonce="not base64!"),
    lambda d: d.pop("ciphertext"),
])
def test_a_damaged_or_unknown_seal_is_refused_before_any_work(change):
    sealed = secretbox.seal(b"s" * 32, "pass", scrypt_n=LOW_COST)
    with pytest.raises(WorkspaceError, match="damaged"):
        secretbox.unseal(tampered(sealed, change), "pass")


def test_an_empty_passphrase_seals_nothing():
    with pytest.raises(SigningKeyError):
        secretbox.seal(b"s" * 32, "")
    assert not secretbox.is_sealed(b"s" * 32)
