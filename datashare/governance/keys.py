"""The signing key's use cases: create or rotate it, and hand out the public key; each one logged."""

from __future__ import annotations

import secrets
from pathlib import Path

from datashare.audit.log import append, audited
from datashare.core import secretbox
from datashare.core.fs import staged_writes
from datashare.errors import InputError
from datashare.signing import KeyInfo, allowed_signers_line, check_principal
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
from datashare.workspace import FILE_MODE, SECRET_BYTES, SECRET_SEALED, Workspace, config_text

SECRET_MIGRATE_ACTION = "secret.migrate"
PRINCIPAL_KEY = "principal"  # the workspace configuration's record of the last principal export-public named


def export_public(ws: Workspace, actor: str, out: Path, principal: str | None = None) -> tuple[KeyInfo, Path, str]:
    """Write the public key to ``out`` and an allowed_signers file beside it; logged. Returns (key, that file, the
    principal it names).

    The principal is ``principal``, else the one given the last time (kept in the workspace's configuration:
    recipients verify with ``-I`` it, and an export after a rotation must not quietly name another), else the
    key's comment.
    """

    out = Path(out)
    with audited(ws, "keys.export_public", actor, output=str(out.absolute())) as record:
        if principal is not None:
            check_principal(principal, "--principal")
        info = current_key(ws)
        remembered = ws.config().get(PRINCIPAL_KEY)
        named = principal or remembered  # else each key's own comment
        signers = out.with_name(out.name + ".allowed_signers")
        lines = [allowed_signers_line(key, named) for key in load_public_keys(ws)]
        chosen = named or info.comment
        files = {out: ((info.public_key + "\n").encode("utf-8"), 0o644),
                 signers: (("\n".join(lines) + "\n").encode("utf-8"), 0o644)}
        try:
            with staged_writes(files):  # the entry first: if it cannot be written, no file appears
                record.ok(key_id=info.key_id, principal=chosen)
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror or type(exc).__name__}") from exc
        if principal is not None and principal != remembered:
            with ws.lock():
                config = ws.config()
                config[PRINCIPAL_KEY] = principal
                ws.save_config(config)
    return info, signers, chosen


def create_key(ws: Workspace, actor: str, *, comment: str | None = None, rotate: bool = False,
               passphrase: str | None = None, new_passphrase: str | None = None,
               kdf_rounds: int = KDF_ROUNDS, secret_kdf_n: int = secretbox.SCRYPT_N) -> KeyInfo:
    """Generate (or rotate to) a new workspace key under the lock, with its audit entry.

    Rotating needs the current key's passphrase; the new key takes ``new_passphrase``
    (or ``DATASHARE_NEW_PASSPHRASE``), else keeps the current one. The HMAC
    secret goes with the key's passphrase: the first key makes it (sealed),
    a rotation seals it again under the new passphrase, and an older
    workspace's unsealed secret is sealed now (logged as ``secret.migrate``).
    ``kdf_rounds`` and ``secret_kdf_n`` exist for tests; commands use the defaults.
    """

    action = "keys.rotate" if rotate else "keys.generate"
    with audited(ws, action, actor) as record:
        replacing = rotate and has_key(ws)
        current = passphrase if passphrase is not None else read_passphrase(confirm=not replacing)
        chosen = current
        if replacing:
            # Only whoever can unlock the current key may replace it: the passphrase is the second factor.
            load_private_key(ws, current)
            chosen = new_passphrase if new_passphrase is not None else read_new_passphrase(current)
        with ws.lock():
            previous = read_index(ws).get("current")
            # A rotated key keeps the comment (the recipients' principal) unless a new one is given.
            kept = previous.get("comment") if previous and rotate else None
            if comment is not None:
                check_principal(comment, "--comment")
            info, files = prepare_key(ws, chosen, comment or kept or f"{actor}@datashare", rotate=rotate,
                                      kdf_rounds=kdf_rounds)
            secret, migrating = _secret_for_new_key(ws, current)
            files[ws.secret_path] = (secretbox.seal(secret, chosen, scrypt_n=secret_kdf_n), FILE_MODE)
            files.update(_sealed_in_config(ws))
            with staged_writes(files):  # the entry first: if it cannot be written, the keys stay as they were
                if migrating:
                    append(ws, actor=actor, action=SECRET_MIGRATE_ACTION, details={"with": action})
                record.ok(key_id=info.key_id, previous_key_id=previous["key_id"] if previous else None)
    return info


def _secret_for_new_key(ws: Workspace, passphrase: str) -> tuple[bytes, bool]:
    """The HMAC secret to seal under a new key's passphrase, and whether it was stored unsealed until now.

    A workspace made without a passphrase has no secret yet: it is made here.
    """
    if not ws.has_secret():
        return secrets.token_bytes(SECRET_BYTES), False
    return ws.secret(passphrase), not ws.secret_is_sealed()


def unlock_secret(ws: Workspace, actor: str, passphrase: str, *, secret_kdf_n: int = secretbox.SCRYPT_N) -> bytes:
    """The workspace's HMAC secret, unsealed with the passphrase.

    An older workspace's secret, stored unsealed, is sealed on this first use:
    the passphrase is checked against the signing key first (a mistyped one
    would lock the secret away), the ``secret.migrate`` entry is appended,
    then the file is replaced atomically. ``secret_kdf_n`` exists for tests.
    """
    if ws.secret_is_sealed():
        secret = ws.secret(passphrase)
        if not ws.config().get(SECRET_SEALED):  # sealed before the config said so: say so now
            with ws.lock():
                ws.save_config({**ws.config(), SECRET_SEALED: True})
        return secret
    with ws.lock():
        if ws.secret_is_sealed():  # another process sealed it meanwhile
            return ws.secret(passphrase)
        load_private_key(ws, passphrase)
        secret = ws.secret(passphrase)  # refused where the config says the secret is sealed (planted or damaged)
        with staged_writes({ws.secret_path: (secretbox.seal(secret, passphrase, scrypt_n=secret_kdf_n),
                                             FILE_MODE), **_sealed_in_config(ws)}):
            append(ws, actor=actor, action=SECRET_MIGRATE_ACTION, details={"sealed": True})
    return secret


def _sealed_in_config(ws: Workspace) -> dict[Path, tuple[bytes, int]]:
    """The config file saying that the secret is sealed, to write with the sealed secret (none if it says so)."""
    config = ws.config()
    if config.get(SECRET_SEALED):
        return {}
    return {ws.config_path: (config_text({**config, SECRET_SEALED: True}).encode("utf-8"), FILE_MODE)}


def show_keys(ws: Workspace, actor: str) -> list[KeyInfo]:
    """``datashare keys show``: the current key and the retired ones, newest first; logged."""
    with audited(ws, "keys.show", actor) as record:
        keys = load_public_keys(ws)
        record.ok(keys=len(keys))
    return keys
