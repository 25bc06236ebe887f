"""Keys derived from the workspace secret: deterministic, per recipient where asked, bound never spliced."""

from __future__ import annotations

import hashlib
import hmac
import os

import duckdb

from datashare.policy.keys import KEY_PADS, KEYS_TABLE, SHIFT_KEY, key_parameters, keys_table_sql

SECRET = os.urandom(32)


def named(secret: bytes, recipient: str | None) -> dict[str, bytes]:
    names = [f"{pad}_{kind}" for pad in KEY_PADS for kind in ("ipad", "opad")] + [SHIFT_KEY]
    return dict(zip(names, key_parameters(secret, recipient), strict=True))


def test_the_same_secret_and_recipient_give_the_same_keys():
    assert key_parameters(SECRET, "cicor") == key_parameters(SECRET, "cicor")


def test_only_the_recipient_pads_depend_on_the_recipient():
    alice, bob = named(SECRET, "alice"), named(SECRET, "bob")
    assert alice["recipient_ipad"] != bob["recipient_ipad"] and alice["recipient_opad"] != bob["recipient_opad"]
    for name in ("pseudonym_ipad", "pseudonym_opad", SHIFT_KEY):
        assert alice[name] == bob[name]
    assert named(SECRET, None)["recipient_ipad"] != named(SECRET, None)["pseudonym_ipad"]


def test_another_workspace_secret_changes_every_key():
    mine, theirs = named(SECRET, "cicor"), named(os.urandom(32), "cicor")
    assert all(mine[name] != theirs[name] for name in mine)


def test_the_pads_compute_hmac_sha256_with_the_derived_key():
    keys = named(SECRET, "cicor")
    for pad, label in (("pseudonym", b"datashare/pseudonym"), ("recipient", b"datashare/pseudonym/cicor")):
        ipad, opad = keys[f"{pad}_ipad"], keys[f"{pad}_opad"]
        assert len(ipad) == len(opad) == 64
        message = b"HK123456(7)"
        by_pads = hashlib.sha256(opad + hashlib.sha256(ipad + message).digest()).hexdigest()
        derived = hmac.new(SECRET, label, hashlib.sha256).digest()
        assert by_pads == hmac.new(derived, message, hashlib.sha256).hexdigest()
    assert keys[SHIFT_KEY] == hmac.new(SECRET, b"datashare/date_shift", hashlib.sha256).digest()


def test_the_keys_table_is_filled_from_bound_parameters_only():
    params = key_parameters(SECRET, "cicor")
    sql = keys_table_sql()
    assert sql.count("?") == len(params)
    assert SECRET.hex() not in sql and all(value.hex() not in sql for value in params)
    con = duckdb.connect()
    con.execute(sql, params)
    row = con.execute(f"SELECT * FROM {KEYS_TABLE}").fetchone()
    assert [bytes(value) for value in row] == params
    assert [c[0] for c in con.execute(f"SELECT * FROM {KEYS_TABLE}").description] == list(named(SECRET, None))
