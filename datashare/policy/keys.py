"""Keys derived from the workspace secret, and the one-row ``ds_keys`` table that carries them into a query.

Every key is scoped: derived from the workspace secret *and* the recipient *and*
the dataset, so two recipients' extracts share no pseudonym, no shifted date
and no noise, while two exports of one dataset to one recipient stay consistent.
A policy's ``link: {group: NAME}`` scopes them to the group instead: every
export under that group name gets the same keys, so a consortium can join its
extracts. The output order's key is a fresh nonce for every export.

The derived keys reach the engine only as bound parameters (HMAC pads as BLOBs),
never as SQL text, so no key appears in a plan, a log or ``policy explain``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

_BLOCK = 64  # SHA-256 block size, for the HMAC pads

KEYS_TABLE = "ds_keys"  # BLOB columns <pad>_ipad and <pad>_opad for each of KEY_PADS, then the keys below
KEY_PADS = ("pseudonym",)  # HMAC keys of pseudonyms
SHIFT_KEY = "shift_key"  # the date-shift key (32 bytes)
NOISE_KEY = "noise_key"  # the key of the noise drawn for each row (32 bytes)
ORDER_KEY = "order_key"  # a nonce of this export: the output order (32 bytes)
NONCE_BYTES = 32
# The columns of the keys table, in the order of key_parameters' values.
KEY_NAMES = (*(f"{pad}_{kind}" for pad in KEY_PADS for kind in ("ipad", "opad")), SHIFT_KEY, NOISE_KEY, ORDER_KEY)


def _pads(key: bytes) -> tuple[bytes, bytes]:
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def key_scope(recipient: str | None, dataset: str | None, group: str | None) -> dict[str, str]:
    """Whose keys an export uses: a link group's, or the recipient's for this dataset (what the manifest says)."""
    if group is not None:
        return {"link_group": group}
    return {"recipient": recipient or "", "dataset": dataset or ""}


def key_parameters(secret: bytes, recipient: str | None, dataset: str | None = None, group: str | None = None,
                   nonce: bytes | None = None) -> list[bytes]:
    """The values of ``ds_keys``: keys derived from the workspace secret and the scope, one per purpose.

    The scope is encoded as JSON (no two scopes give the same label); the
    order key is ``nonce``, or fresh random bytes.
    """
    label = json.dumps(key_scope(recipient, dataset, group), sort_keys=True, separators=(",", ":")).encode()

    def derive(purpose: bytes) -> bytes:
        return hmac.new(secret, b"datashare/" + purpose + b"/" + label, hashlib.sha256).digest()

    values: list[bytes] = []
    for pad in KEY_PADS:
        values.extend(_pads(derive(pad.encode())))
    return [*values, derive(b"date_shift"), derive(b"noise"), nonce if nonce is not None else os.urandom(NONCE_BYTES)]


def keys_table_sql() -> str:
    """The temporary table the transforms read their keys from (filled with bound parameters)."""
    columns = ", ".join(f"?::BLOB AS {name}" for name in KEY_NAMES)
    return f"CREATE OR REPLACE TEMP TABLE {KEYS_TABLE} AS SELECT {columns}"
