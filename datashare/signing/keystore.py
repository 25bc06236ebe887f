"""The workspace's Ed25519 signing key: key files, the keys index, passphrases.

The private key is stored in OpenSSH format, encrypted with the bcrypt KDF
(``ssh-keygen -y -f`` can load it; PKCS#8's default of 2,048 PBKDF2
iterations is too weak for a key that signs hospital data).
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datashare.errors import SigningKeyError
from datashare.signing.sshsig import KEY_TYPE, KeyInfo, key_id_of_blob, public_blob
from datashare.workspace import FILE_MODE, FOLDER_MODE, Workspace, utc_now

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PASSPHRASE_ENV = "DATASHARE_PASSPHRASE"
NEW_PASSPHRASE_ENV = "DATASHARE_NEW_PASSPHRASE"  # the new key's, when a rotation changes the passphrase
KDF_ROUNDS = 64  # bcrypt rounds; ssh-keygen's default is 16
PRIVATE_KEY_FILE = "signing_key"
PUBLIC_KEY_FILE = "signing_key.pub"
KEYS_INDEX_FILE = "keys.json"


# --- passphrases ---------------------------------------------------------------------------
def passphrase_at_hand() -> str | None:
    """``DATASHARE_PASSPHRASE`` when it is set: a passphrase that needs no prompt."""
    return os.environ.get(PASSPHRASE_ENV)


def read_passphrase(*, confirm: bool) -> str:
    """``DATASHARE_PASSPHRASE``, else a hidden prompt (twice when creating a key). Never an argument."""
    value = passphrase_at_hand()
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise SigningKeyError(
            "the signing key's passphrase is needed and there is no terminal to ask on",
            hint=f"Set {PASSPHRASE_ENV} in the environment.",
        )

    first = getpass.getpass("Passphrase for the signing key: ")
    if confirm and getpass.getpass("Same passphrase again: ") != first:
        raise SigningKeyError("the two passphrases differ")
    return first


def read_new_passphrase(current: str) -> str:
    """The passphrase for a rotated key: ``DATASHARE_NEW_PASSPHRASE``, a prompt, or the current one."""
    value = os.environ.get(NEW_PASSPHRASE_ENV)
    if value or not sys.stdin.isatty():
        return value or current  # set but empty: keep the current one, as Enter does at the prompt

    first = getpass.getpass("Passphrase for the new key (Enter keeps the current one): ")
    if not first:
        return current
    if getpass.getpass("Same passphrase again: ") != first:
        raise SigningKeyError("the two passphrases differ")
    return first


# --- the workspace's keys ------------------------------------------------------------------
def _index_path(ws: Workspace) -> Path:
    return ws.keys_dir / KEYS_INDEX_FILE


def read_index(ws: Workspace) -> dict[str, Any]:
    path = _index_path(ws)
    if not path.exists():
        return {"current": None, "retired": []}
    return json.loads(path.read_text(encoding="utf-8"))


def has_key(ws: Workspace) -> bool:
    return (ws.keys_dir / PRIVATE_KEY_FILE).is_file() and read_index(ws).get("current") is not None


def current_key(ws: Workspace) -> KeyInfo:
    index = read_index(ws)
    if not index.get("current"):
        raise SigningKeyError("this workspace has no signing key", hint="Create one: datashare keys generate")
    return KeyInfo(**index["current"])


def load_public_keys(ws: Workspace) -> list[KeyInfo]:
    """The current key and every retired one (so older exports still verify)."""
    index = read_index(ws)
    keys = [KeyInfo(**index["current"])] if index.get("current") else []
    return keys + [KeyInfo(**item) for item in index.get("retired", [])]


def prepare_key(ws: Workspace, passphrase: str, comment: str, *, rotate: bool = False,
                kdf_rounds: int = KDF_ROUNDS) -> tuple[KeyInfo, dict[Path, tuple[bytes, int]]]:
    """A new Ed25519 key and the files that install it (private key, public key, index), not yet written.

    Write them with :func:`staged_writes` after the audit entry, so a key never
    changes without its entry. ``kdf_rounds`` exists for tests, which make many
    keys; every command uses :data:`KDF_ROUNDS`.
    """
    # deferred: only commands that sign or verify need cryptography
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not passphrase:
        raise SigningKeyError("an empty passphrase would leave the signing key unprotected")
    index = read_index(ws)
    if index.get("current") and not rotate:
        raise SigningKeyError(
            f"this workspace already has a signing key ({index['current']['key_id']})",
            hint="To replace it and keep the old public key for older exports: datashare keys generate --rotate",
        )
    key = Ed25519PrivateKey.generate()
    encryption = serialization.PrivateFormat.OpenSSH.encryption_builder().kdf_rounds(kdf_rounds).build(
        passphrase.encode("utf-8"))
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, encryption)
    blob = public_blob(key.public_key())
    line = f"{KEY_TYPE.decode()} {base64.b64encode(blob).decode()} {comment}".strip()
    info = KeyInfo(key_id_of_blob(blob), line, comment, utc_now())
    ws.keys_dir.mkdir(exist_ok=True, mode=FOLDER_MODE)
    if index.get("current"):
        retired = dict(index["current"])
        retired["retired"] = info.created
        index.setdefault("retired", []).insert(0, retired)
    index["current"] = info.to_dict()
    files = {
        ws.keys_dir / PRIVATE_KEY_FILE: (private_pem, FILE_MODE),
        ws.keys_dir / PUBLIC_KEY_FILE: ((line + "\n").encode("utf-8"), FILE_MODE),
        _index_path(ws): ((json.dumps(index, indent=2) + "\n").encode("utf-8"), FILE_MODE),
    }
    return info, files


def load_private_key(ws: Workspace, passphrase: str) -> tuple[Ed25519PrivateKey, KeyInfo]:
    """The decrypted private key and its info; a wrong passphrase is a clear error."""
    # deferred: only commands that sign or verify need cryptography
    from cryptography.hazmat.primitives import serialization

    info = current_key(ws)
    path = ws.keys_dir / PRIVATE_KEY_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the signing key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_ssh_private_key(data, passphrase.encode("utf-8"))
    except ValueError as exc:
        raise SigningKeyError(f"wrong passphrase for the signing key {path}",
                              hint=f"Check {PASSPHRASE_ENV} or the passphrase you typed.") from exc
    if key_id_of_blob(public_blob(key.public_key())) != info.key_id:
        raise SigningKeyError(f"the signing key {path} does not match {info.key_id} in {KEYS_INDEX_FILE}")
    return key, info


class KeyLoading:
    """:func:`load_private_key` on a thread of its own, started at once.

    bcrypt's KDF releases the GIL, so its deliberate slowness overlaps other
    work (DuckDB's queries). :meth:`result` waits and returns what
    ``load_private_key`` returns, or raises what it raised.

    The thread is not a daemon: a command refused before it needed the key
    still waits for the KDF to finish before the interpreter exits. A daemon
    thread inside bcrypt's C code at shutdown aborted the process now and then
    ("FATAL: exception not rethrown", exit 134 instead of the refusal's 3).
    """

    def __init__(self, ws: Workspace, passphrase: str) -> None:
        self._lock = threading.Lock()
        self._key: tuple[Ed25519PrivateKey, KeyInfo] | None = None
        self._error: BaseException | None = None
        self._on_failure: Callable[[], object] | None = None
        self._thread = threading.Thread(target=self._run, args=(ws, passphrase), name="datashare-key")
        self._thread.start()

    def _run(self, ws: Workspace, passphrase: str) -> None:
        try:
            self._key = load_private_key(ws, passphrase)
        except BaseException as exc:  # any failure: it is handed to the thread that waits
            with self._lock:
                self._error, on_failure = exc, self._on_failure
            if on_failure is not None:
                with contextlib.suppress(Exception):  # best effort: what it would stop may have ended
                    on_failure()

    def on_failure(self, action: Callable[[], object]) -> None:
        """Run ``action`` (on the loading thread) if loading fails; raise now if it already has."""
        with self._lock:
            self._on_failure, error = action, self._error
        if error is not None:
            raise error

    def result(self) -> tuple[Ed25519PrivateKey, KeyInfo]:
        """Wait for the key: (private key, its info), or the error loading it raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._key  # type: ignore[return-value] - set whenever no error was


