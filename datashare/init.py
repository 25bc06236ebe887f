"""The ``init`` use case: create a workspace (secret, catalog, config), log it, and make its signing key.

The CLI and the demo both call :func:`initialise`, so every workspace's log
starts with its ``init`` entry. The passphrase is settled before anything is
created: a refused or mistyped one leaves no half-made workspace.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datashare.audit.log import append
from datashare.catalog.schema import create_schema
from datashare.core.locking import lock_timeout
from datashare.core.secretbox import SCRYPT_N
from datashare.errors import InputError, RefusedError, SigningKeyError, WorkspaceError
from datashare.governance.keys import create_key
from datashare.governance.roles import workspace_actor
from datashare.signing import KeyInfo
from datashare.signing.keystore import (
    KDF_ROUNDS,
    PASSPHRASE_ENV,
    current_key,
    has_key,
    passphrase_at_hand,
    read_passphrase,
)
from datashare.workspace import (
    FOLDER_MODE,
    WORKSPACE_FORMAT,
    Workspace,
    check_folder,
    is_initialised,
    os_user,
    resolve_actor,
    resolve_home,
    tighten_modes,
    utc_now,
)


@dataclass(frozen=True)
class InitResult:
    """What ``init`` did: the workspace, whether it was new, its signing key (None without a passphrase), and the
    modes it tightened in a folder that had looser ones."""

    workspace: Workspace
    created: bool
    key: KeyInfo | None
    tightened: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"home": str(self.workspace.home), "created": self.created,
                "key_id": self.key.key_id if self.key else None, "modes_tightened": self.tightened}


def initialise(home: Path | str | None, requested_actor: str | None, *, passphrase: str | None = None,
               ask: bool = True, comment: str | None = None, kdf_rounds: int = KDF_ROUNDS,
               secret_kdf_n: int = SCRYPT_N, named_actor: bool = False) -> InitResult:
    """Create the workspace if it does not exist, log ``init``, and create its key if a passphrase is at hand.

    The passphrase is ``passphrase``, else ``DATASHARE_PASSPHRASE``, else (with
    ``ask`` and a terminal) a prompt typed twice; with none, no key is made —
    and no HMAC secret either: it is sealed under the key's passphrase, so it is
    made with the key. ``kdf_rounds`` and ``secret_kdf_n`` exist for tests;
    commands use the defaults.

    A new workspace's first custodian is the OS user: naming anyone else is
    refused, as it is in a workspace whose service accounts are off (they are
    off in a new one). Only ``named_actor`` (the demo's) lifts that.
    """
    path = resolve_home(home, discover=False)
    # Everything is checked before anything is created or changed: the lock timeout, the folder, the actor, and
    # the passphrase (typed twice on a terminal).
    lock_timeout()
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} exists and is not a folder")
    check_folder(path)
    if is_initialised(path):
        # Someone else's workspace may not be entered under another name: the same check as every command.
        ws, created = Workspace(path), False
        actor = workspace_actor(ws, requested_actor)
        secret = None if has_key(ws) else _new_key_passphrase(passphrase, ask)
        tightened = tighten_modes(path)
    else:
        actor = resolve_actor(requested_actor)
        if actor != os_user() and not named_actor:
            raise RefusedError(
                f"acting as {actor!r} is not allowed in a new workspace (you are {os_user()!r}): "
                "its first custodian is the account that creates it",
                hint="Run init without --actor (and without DATASHARE_ACTOR); a custodian can then allow named "
                     "service accounts: datashare roles service-accounts on")
        secret = _new_key_passphrase(passphrase, ask)  # asked before anything is created
        tightened = tighten_modes(path) if path.is_dir() else []
        ws, created = init_workspace(path, actor)
    append(ws, actor=actor, action="init", details={"created": created, "modes_tightened": tightened})
    if has_key(ws):
        key: KeyInfo | None = current_key(ws)
    elif secret is not None:
        key = create_key(ws, actor, comment=comment, passphrase=secret, kdf_rounds=kdf_rounds,
                         secret_kdf_n=secret_kdf_n)
    else:
        key = None
    return InitResult(ws, created, key, tightened)


def _new_key_passphrase(given: str | None, ask: bool) -> str | None:
    """The passphrase for the key init creates: given, from the environment, typed twice, or None (no key).

    An empty one is refused here, before anything is created: it would leave the key and the secret unprotected.
    """
    if given is None:
        given = passphrase_at_hand()
    if given is None and ask and sys.stdin.isatty():
        given = read_passphrase(confirm=True)
    if given == "":
        raise SigningKeyError("an empty passphrase would leave the signing key unprotected",
                              hint=f"Set {PASSPHRASE_ENV} to a passphrase, or unset it to create the key later.")
    return given


def init_workspace(home: Path | str | None, actor: str) -> tuple[Workspace, bool]:
    """Create the workspace's files if it does not exist. Returns it and whether it was new.

    The actor that creates the workspace becomes its first custodian. An
    existing folder with looser modes (0755, a catalog left 0644) is made
    0700, and the workspace's files in it 0600, before anything is written.
    """
    path = resolve_home(home, discover=False)
    lock_timeout()
    if is_initialised(path):
        tighten_modes(path)
        return Workspace(path), False
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
        tighten_modes(path)  # an existing folder's modes, and mkdir's, which pass through the umask
        workspace = Workspace(path)
        with workspace.lock():
            if is_initialised(path):
                return workspace, False
            _create_files(workspace, actor)
            tighten_modes(path)  # what DuckDB created, with the umask's mode
    except OSError as exc:
        raise WorkspaceError(
            f"cannot create the workspace at {path}: {exc.strerror or type(exc).__name__}",
            hint="Choose a folder you can write to with --home or DATASHARE_HOME.",
        ) from exc
    return workspace, True


def _create_files(workspace: Workspace, actor: str) -> None:
    """The workspace's catalog and config; the config last, as it marks the workspace as made.

    The HMAC secret is made with the signing key (:func:`governance.keys.create_key`), sealed under its passphrase.
    """
    import duckdb  # deferred: a heavy import that commands without a catalog do not need

    workspace.keys_dir.mkdir(exist_ok=True, mode=FOLDER_MODE)
    try:
        con = duckdb.connect(str(workspace.catalog_path))
    except duckdb.Error as exc:
        raise WorkspaceError(f"cannot create the catalog {workspace.catalog_path} ({type(exc).__name__})") from exc
    try:
        create_schema(con)
    finally:
        con.close()
    workspace.save_config(
        {
            "format": WORKSPACE_FORMAT,
            "created_at": utc_now(),
            "created_by": actor,
            "roles": {actor: ["custodian"]},
            "allow_service_accounts": False,
        }
    )
