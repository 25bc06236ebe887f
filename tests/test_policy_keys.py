"""Keys derived from the workspace secret and a scope (recipient and dataset, or a link group): deterministic for
one scope, unrelated between scopes, bound never spliced; the order key is a fresh nonce."""

from __future__ import annotations

import hashlib
import hmac
import json
import os

import duckdb

from datashare.policy.keys import (
    KEY_PADS,
    KEYS_TABLE,
    NOISE_KEY,
    NONCE_BYTES,
    ORDER_KEY,
    SHIFT_KEY,
    key_parameters,
    key_scope,
    keys_table_sql,
)

SECRET = os.urandom(32)
NONCE = b"n" * NONCE_BYTES
NAMES = [f"{pad}_{kind}" for pad in KEY_PADS for kind in ("ipad", "opad")] + [SHIFT_KEY, NOISE_KEY, ORDER_KEY]


def named(secret: bytes, recipient: str | None, dataset: str | None = "patients", group: str | None = None,
          nonce: bytes | None = NONCE) -> dict[str, bytes]:
    return dict(zip(NAMES, key_parameters(secret, recipient, dataset, group, nonce=nonce), strict=True))


def test_the_same_secret_and_scope_give_the_same_keys():
    assert key_parameters(SECRET, "cicor", "patients", nonce=NONCE) == \
        key_parameters(SECRET, "cicor", "patients", nonce=NONCE)


def test_every_key_depends_on_the_recipient_and_the_dataset():
    scopes = [("alice", "patients"), ("bob", "patients"), ("alice", "visits"), ("a", "b/c"), ("a/b", "c")]
    keys = [named(SECRET, *scope) for scope in scopes]
    for name in (*NAMES[:-1],):  # the order key is the nonce
        assert len({k[name] for k in keys}) == len(scopes), name  # "a" + "b/c" and "a/b" + "c" do not collide


def test_a_link_group_gives_every_member_the_same_keys():
    assert named(SECRET, "alice", group="g") == named(SECRET, "bob", group="g")
    assert named(SECRET, "alice", group="g") != named(SECRET, "alice")
    assert key_scope("alice", "patients", "g") == {"link_group": "g"}
    assert key_scope("alice", "patients", None) == {"recipient": "alice", "dataset": "patients"}


def test_another_workspace_secret_changes_every_derived_key():
    mine, theirs = named(SECRET, "cicor"), named(os.urandom(32), "cicor")
    assert all(mine[name] != theirs[name] for name in NAMES[:-1])


def test_the_order_nonce_is_fresh_for_every_export():
    first, second = named(SECRET, "cicor", nonce=None), named(SECRET, "cicor", nonce=None)
    assert first[ORDER_KEY] != second[ORDER_KEY] and len(first[ORDER_KEY]) == NONCE_BYTES
    assert {k: v for k, v in first.items() if k != ORDER_KEY} == {k: v for k, v in second.items() if k != ORDER_KEY}


def test_the_pads_compute_hmac_sha256_with_the_derived_key():
    keys = named(SECRET, "cicor")
    scope = json.dumps({"dataset": "patients", "recipient": "cicor"}, sort_keys=True, separators=(",", ":"))
    ipad, opad = keys["pseudonym_ipad"], keys["pseudonym_opad"]
    assert len(ipad) == len(opad) == 64
    message = b"HK123456(7)"
    by_pads = hashlib.sha256(opad + hashlib.sha256(ipad + message).digest()).hexdigest()
    derived = hmac.new(SECRET, b"datashare/pseudonym/" + scope.encode(), hashlib.sha256).digest()
    assert by_pads == hmac.new(derived, message, hashlib.sha256).hexdigest()
    assert keys[SHIFT_KEY] == hmac.new(SECRET, b"datashare/date_shift/" + scope.encode(), hashlib.sha256).digest()
    assert keys[NOISE_KEY] == hmac.new(SECRET, b"datashare/noise/" + scope.encode(), hashlib.sha256).digest()


def test_the_keys_table_is_filled_from_bound_parameters_only():
    params = key_parameters(SECRET, "cicor", "patients")
    sql = keys_table_sql()
    assert sql.count("?") == len(params)
    assert SECRET.hex() not in sql and all(value.hex() not in sql for value in params)
    con = duckdb.connect()
    con.execute(sql, params)
    row = con.execute(f"SELECT * FROM {KEYS_TABLE}").fetchone()
    assert [bytes(value) for value in row] == params
    assert [c[0] for c in con.execute(f"SELECT * FROM {KEYS_TABLE}").description] == NAMES
