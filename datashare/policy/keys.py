"""Keys derived from the workspace secret, and the one-row ``ds_keys`` table that carries them into a query.

The derived keys reach the engine only as bound parameters (HMAC pads as BLOBs),
never as SQL text, so no key appears in a plan, a log or ``policy explain``.
"""

from __future__ import annotations

import hashlib
import hmac

KEYS_TABLE = "ds_keys"  # BLOB columns <pad>_ipad and <pad>_opad for each of KEY_PADS, then SHIFT_KEY
KEY_PADS = ("pseudonym", "recipient")  # HMAC keys of pseudonyms: workspace-wide, per recipient
SHIFT_KEY = "shift_key"  # the date-shift key (32 bytes)
_BLOCK = 64  # SHA-256 block size, for the HMAC pads


def _pads(key: bytes) -> tuple[bytes, bytes]:
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def key_parameters(secret: bytes, recipient: str | None) -> list[bytes]:
    """The values of ``ds_keys``: keys derived from the workspace secret, one per purpose.

    Pseudonyms use one workspace-wide key (same input, same pseudonym across
    exports) or, with ``per_recipient``, a key per recipient (unlinkable
    between recipients), both as HMAC pads; date shifts use a key of their own.
    """
    def derive(label: bytes) -> bytes:
        return hmac.new(secret, label, hashlib.sha256).digest()

    labels = {"pseudonym": b"datashare/pseudonym", "recipient": b"datashare/pseudonym/" + (recipient or "").encode()}
    values: list[bytes] = []
    for pad in KEY_PADS:
        values.extend(_pads(derive(labels[pad])))
    return [*values, derive(b"datashare/date_shift")]


def keys_table_sql() -> str:
    """The temporary table the transforms read their keys from (filled with bound parameters)."""
    columns = ", ".join([*(f"?::BLOB AS {pad}_{kind}" for pad in KEY_PADS for kind in ("ipad", "opad")),
                         f"?::BLOB AS {SHIFT_KEY}"])
    return f"CREATE OR REPLACE TEMP TABLE {KEYS_TABLE} AS SELECT {columns}"
