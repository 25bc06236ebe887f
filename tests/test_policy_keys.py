"""Keys are scoped: derived from the workspace secret and the recipient and dataset, or a link group."""

from __future__ import annotations

import os

import duckdb

from datashare.policy.keys import KEY_PADS, NONCE_BYTES, key_parameters, key_scope, keys_table_sql

SECRET = os.urandom(32)


def test_keys_differ_by_recipient_dataset_and_group_and_repeat_for_the_same_scope():
    fixed = b"n" * NONCE_BYTES
    scopes = [("alice", "patients", None), ("bob", "patients", None), ("alice", "visits", None),
              ("alice", "patients", "consortium"), ("a", "b/c", None), ("a/b", "c", None)]
    derived = [tuple(key_parameters(SECRET, *scope, nonce=fixed)[:-1]) for scope in scopes]
    assert len(set(derived)) == len(scopes)  # "a" + "b/c" and "a/b" + "c" do not collide
    assert key_parameters(SECRET, "alice", "patients", nonce=fixed) == key_parameters(SECRET, "alice", "patients",
                                                                                        nonce=fixed)
    assert key_parameters(os.urandom(32), "alice", "patients", nonce=fixed)[:-1] != list(derived[0])


def test_a_link_group_gives_every_member_the_same_keys():
    fixed = b"n" * NONCE_BYTES
    assert key_parameters(SECRET, "alice", "patients", "g", nonce=fixed) == \
        key_parameters(SECRET, "bob", "patients", "g", nonce=fixed)
    assert key_scope("alice", "patients", "g") == {"link_group": "g"}
    assert key_scope("alice", "patients", None) == {"recipient": "alice", "dataset": "patients"}


def test_the_order_nonce_is_fresh_for_every_export_and_the_table_takes_every_key():
    first, second = (key_parameters(SECRET, "alice", "patients") for _ in range(2))
    assert first[:-1] == second[:-1] and first[-1] != second[-1] and len(first[-1]) == NONCE_BYTES
    con = duckdb.connect()
    con.execute(keys_table_sql(), first)
    columns = [row[0] for row in con.execute("DESCRIBE ds_keys").fetchall()]
    assert columns == [*(f"{pad}_{kind}" for pad in KEY_PADS for kind in ("ipad", "opad")), "shift_key", "noise_key",
                       "order_key"]
