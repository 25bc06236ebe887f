"""Keys derived from the workspace secret: deterministic, scoped to the recipient, bound never spliced."""

from __future__ import annotations

import hashlib
import hmac
import os

import duckdb

from datashare.policy.keys import KEY_PADS, KEYS_TABLE, SHIFT_KEY, key_parameters, keys_table_sql

SECRET = os.urandom(32)
PADS = [f"{pad}_{kind}" for pad in KEY_PADS for kind in ("ipad", "opad")]
DERIVED = [*PADS, SHIFT_KEY]  # the keys derived from the secret (pseudonyms, date shifts)


def keys_table(secret: bytes, recipient: str | None) -> dict[str, bytes]:
    """The ``ds_keys`` row DuckDB holds after the keys table is filled: column name -> value."""
    con = duckdb.connect()
    con.execute(keys_table_sql(), key_parameters(secret, recipient))
    cursor = con.execute(f"SELECT * FROM {KEYS_TABLE}")
    names = [column[0] for column in cursor.description]
    return dict(zip(names, [bytes(value) for value in cursor.fetchone()], strict=True))


def test_the_keys_table_is_filled_from_bound_parameters_only():
    params = key_parameters(SECRET, "cicor")
    sql = keys_table_sql()
    assert sql.count("?") == len(params)
    assert SECRET.hex() not in sql and all(value.hex() not in sql for value in params)
    assert set(DERIVED) <= set(keys_table(SECRET, "cicor"))


def test_the_same_secret_and_recipient_give_the_same_keys():
    first, again = keys_table(SECRET, "cicor"), keys_table(SECRET, "cicor")
    assert all(first[name] == again[name] for name in DERIVED)


def test_another_recipient_gets_other_pseudonym_keys():
    alice, bob = keys_table(SECRET, "alice"), keys_table(SECRET, "bob")
    assert any(alice[name] != bob[name] for name in PADS)


def test_another_workspace_secret_changes_every_derived_key():
    mine, theirs = keys_table(SECRET, "cicor"), keys_table(os.urandom(32), "cicor")
    assert all(mine[name] != theirs[name] for name in DERIVED)
    assert len(mine[SHIFT_KEY]) == 32


def test_the_pads_are_the_rfc_2104_pads_of_one_key():
    keys = keys_table(SECRET, "cicor")
    for pad in KEY_PADS:
        ipad, opad = keys[f"{pad}_ipad"], keys[f"{pad}_opad"]
        assert len(ipad) == len(opad) == 64
        key = bytes(b ^ 0x36 for b in ipad)  # the derived key, zero-padded to the block
        assert opad == bytes(b ^ 0x5C for b in key)
        message = b"HK123456(7)"
        by_pads = hashlib.sha256(opad + hashlib.sha256(ipad + message).digest()).hexdigest()
        assert by_pads == hmac.new(key, message, hashlib.sha256).hexdigest()
        assert key != bytes(64)
