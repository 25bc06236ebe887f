"""The signing key's use cases: create or rotate it, and hand out the public key; each one logged."""

from __future__ import annotations

from pathlib import Path

from datashare.audit.log import audited
from datashare.core.fs import staged_writes
from datashare.errors import InputError
from datashare.signing import KeyInfo, allowed_signers_line
from datashare.signing.keystore import (
    KDF_ROUNDS,
    current_key,
    has_key,
    load_private_key,
    load_public_keys,
    prepare_key,
    read_index,
    read_new_passphrase,
    read_passphrase,
)
from datashare.workspace import Workspace


def export_public(ws: Workspace, actor: str, out: Path, principal: str | None = None) -> tuple[KeyInfo, Path]:
    """Write the public key to ``out`` and an allowed_signers file beside it; logged. Returns (key, that file)."""

    out = Path(out)
    with audited(ws, "keys.export_public", actor, output=str(out.absolute())) as record:
        info = current_key(ws)
        signers = out.with_name(out.name + ".allowed_signers")
        lines = [allowed_signers_line(key, principal) for key in load_public_keys(ws)]
        files = {out: ((info.public_key + "\n").encode("utf-8"), 0o644),
                 signers: (("\n".join(lines) + "\n").encode("utf-8"), 0o644)}
        try:
            with staged_writes(files):  # the entry first: if it cannot be written, no file appears
                record.ok(key_id=info.key_id)
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror or type(exc).__name__}") from exc
    return info, signers


def create_key(ws: Workspace, actor: str, *, comment: str | None = None, rotate: bool = False,
               passphrase: str | None = None, new_passphrase: str | None = None,
               kdf_rounds: int = KDF_ROUNDS) -> KeyInfo:
    """Generate (or rotate to) a new workspace key under the lock, with its audit entry.

    Rotating needs the current key's passphrase; the new key takes ``new_passphrase``
    (or ``DATASHARE_NEW_PASSPHRASE``), else keeps the current one.
    """

    action = "keys.rotate" if rotate else "keys.generate"
    with audited(ws, action, actor) as record:
        replacing = rotate and has_key(ws)
        secret = passphrase if passphrase is not None else read_passphrase(confirm=not replacing)
        if replacing:
            # Only whoever can unlock the current key may replace it: the passphrase is the second factor.
            load_private_key(ws, secret)
            secret = new_passphrase if new_passphrase is not None else read_new_passphrase(secret)
        with ws.lock():
            previous = read_index(ws).get("current")
            # A rotated key keeps the comment (the recipients' principal) unless a new one is given.
            kept = previous.get("comment") if previous and rotate else None
            info, files = prepare_key(ws, secret, comment or kept or f"{actor}@datashare", rotate=rotate,
                                      kdf_rounds=kdf_rounds)
            with staged_writes(files):  # the entry first: if it cannot be written, the keys stay as they were
                record.ok(key_id=info.key_id, previous_key_id=previous["key_id"] if previous else None)
    return info


def show_keys(ws: Workspace, actor: str) -> list[KeyInfo]:
    """``datashare keys show``: the current key and the retired ones, newest first; logged."""
    with audited(ws, "keys.show", actor) as record:
        keys = load_public_keys(ws)
        record.ok(keys=len(keys))
    return keys
