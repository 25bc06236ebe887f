"""The workspace: one folder holding the catalog, the audit log, keys and config.

``./.datashare`` by default, or ``--home`` / ``DATASHARE_HOME``. Commands other
than ``init`` refuse to run before the workspace exists.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datashare.core import secretbox
from datashare.core.fs import atomic_write_text
from datashare.core.locking import LOCK_FILE_NAME, lock_timeout, workspace_lock
from datashare.errors import InputError, WorkspaceBusyError, WorkspaceError

if TYPE_CHECKING:
    import duckdb

HOME_ENV = "DATASHARE_HOME"
ACTOR_ENV = "DATASHARE_ACTOR"
DEFAULT_HOME = Path(".datashare")
CATALOG_FILE = "catalog.duckdb"
AUDIT_FILE = "audit.log"
CONFIG_FILE = "config.json"
SECRET_FILE = "secret.key"
KEYS_DIR = "keys"
SECRET_BYTES = 32
WORKSPACE_FORMAT = 1
# The workspace holds personal data (the catalog) and secrets: its folder is its owner's alone, whatever umask
# or earlier modes say. Every file the workspace writes gets FILE_MODE explicitly.
FOLDER_MODE = 0o700
FILE_MODE = 0o600
APPROVALS_FILE = "approvals.json"
# The workspace's own entries (datashare writes nothing else in its folder): what :func:`tighten_modes` fixes.
_OWN_FILES = (CATALOG_FILE, CATALOG_FILE + ".wal", AUDIT_FILE, CONFIG_FILE, SECRET_FILE, APPROVALS_FILE,
              LOCK_FILE_NAME)
_OWN_FOLDERS = (KEYS_DIR, CATALOG_FILE + ".tmp")

_ACTOR_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")
_DUCKDB_LOCK_MARKERS = ("Could not set lock", "Conflicting lock")


def tighten_modes(home: Path) -> list[str]:
    """Take every permission for group and others off the workspace folder and its own files; the entries changed.

    The folder becomes 0700 and its files 0600 (their owner's bits are kept:
    a workspace its owner made read-only stays read-only). Only the
    workspace's own entries are touched (never symbolic links, never what else
    a folder given as ``--home`` holds). A file system that refuses (read-only)
    leaves the modes as they were.
    """
    changed: list[str] = []

    def fix(path: Path, allowed: int, label: str) -> None:
        try:
            found = path.lstat()
        except (FileNotFoundError, NotADirectoryError):
            return
        current = stat.S_IMODE(found.st_mode)
        wanted = current & allowed
        if stat.S_ISLNK(found.st_mode) or wanted == current:
            return
        with contextlib.suppress(OSError):
            os.chmod(path, wanted)
            changed.append(f"{label} {current:04o} -> {wanted:04o}")

    fix(home, FOLDER_MODE, ".")
    for name in _OWN_FILES:
        fix(home / name, FILE_MODE, name)
    for name in _OWN_FOLDERS:
        folder = home / name
        fix(folder, FOLDER_MODE, name + "/")
        if folder.is_dir() and not folder.is_symlink():
            with contextlib.suppress(OSError):
                for entry in sorted(folder.iterdir()):
                    if entry.is_file() and not entry.is_symlink():
                        fix(entry, FILE_MODE, f"{name}/{entry.name}")
    return changed


def utc_now() -> str:
    """The current UTC time as an ISO 8601 string with a ``Z`` suffix."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def resolve_home(home: Path | str | None) -> Path:
    """The workspace folder: the argument, else ``DATASHARE_HOME``, else ``./.datashare``."""
    if home is None or str(home) == "":
        env = os.environ.get(HOME_ENV)
        home = Path(env) if env else DEFAULT_HOME
    return Path(home).expanduser().absolute()


def os_user() -> str:
    """The operating-system account running this process, from its effective uid.

    Never from ``LOGNAME``/``USER``/``USERNAME`` (what ``getpass.getuser`` reads):
    anyone can set those, and the actor decides roles and what the log says.
    """
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid-{uid}"


def resolve_actor(actor: str | None) -> str:
    """Who is acting: ``--actor``, else ``DATASHARE_ACTOR``, else the OS user."""
    value = actor or os.environ.get(ACTOR_ENV) or os_user()
    if not _ACTOR_RE.match(value):
        raise InputError(
            "actor names may use letters, digits and _ . @ - (at most 64 characters)",
            hint="Pass a plain account name with --actor or DATASHARE_ACTOR.",
        )
    return value


@dataclass(frozen=True)
class Workspace:
    """An initialised workspace folder. Create one with :func:`init` or :func:`open_workspace`."""

    home: Path

    @property
    def catalog_path(self) -> Path:
        return self.home / CATALOG_FILE

    @property
    def audit_path(self) -> Path:
        return self.home / AUDIT_FILE

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_FILE

    @property
    def secret_path(self) -> Path:
        return self.home / SECRET_FILE

    @property
    def keys_dir(self) -> Path:
        return self.home / KEYS_DIR

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the workspace lock (re-entrant within this process)."""
        with workspace_lock(self.home):
            yield

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived catalog connection, opened under the workspace lock.

        DuckDB refuses a second process even read-only while one holds the file
        read-write, so every connection is taken under the lock, and a lock
        held by a process outside datashare is retried until the timeout and
        then reported as "workspace busy".
        """
        # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
        import duckdb

        with self.lock():
            # DuckDB spills to <catalog>.tmp; what a killed process left there is stale, and under the lock no
            # other connection is open to use it.
            shutil.rmtree(self.catalog_path.with_name(self.catalog_path.name + ".tmp"), ignore_errors=True)
            deadline = time.monotonic() + lock_timeout()
            while True:
                try:
                    con = duckdb.connect(str(self.catalog_path), read_only=read_only)
                    break
                except duckdb.IOException as exc:
                    if not any(marker in str(exc) for marker in _DUCKDB_LOCK_MARKERS):
                        raise WorkspaceError(
                            f"cannot open the catalog {self.catalog_path}: {exc}"
                        ) from exc
                    if time.monotonic() >= deadline:
                        raise WorkspaceBusyError(
                            "workspace busy: another program holds the catalog open",
                            hint="Close it (or wait for it to finish) and try again.",
                        ) from exc
                    time.sleep(0.1)
            try:
                # DuckDB creates the catalog, its write-ahead log and its spill folder with the umask's mode: they are
                # made private when the connection opens and again when it closes.
                tighten_modes(self.home)
                yield con
            finally:
                con.close()
                tighten_modes(self.home)

    def config(self) -> dict[str, Any]:
        """The workspace configuration (roles, settings)."""
        try:
            return json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WorkspaceError(f"cannot read workspace config {self.config_path}: {exc}") from exc

    def save_config(self, config: dict[str, Any]) -> None:
        """Replace the configuration atomically (caller holds the lock)."""
        atomic_write_text(self.config_path, json.dumps(config, indent=2, sort_keys=True) + "\n", mode=FILE_MODE)

    def has_secret(self) -> bool:
        return self.secret_path.exists()

    def secret_file(self) -> bytes:
        """The bytes of ``secret.key`` as stored: sealed (see :mod:`datashare.core.secretbox`), or an older
        workspace's raw 32 bytes."""
        try:
            return self.secret_path.read_bytes()
        except FileNotFoundError:
            raise WorkspaceError(
                "this workspace has no secret yet (it is made with the signing key)",
                hint="Create the key and the secret: datashare keys generate") from None
        except OSError as exc:
            raise WorkspaceError(f"cannot read the workspace secret {self.secret_path}: {exc.strerror}") from exc

    def secret_is_sealed(self) -> bool:
        return secretbox.is_sealed(self.secret_file())

    def secret(self, passphrase: str) -> bytes:
        """The workspace HMAC secret used for pseudonyms and date shifts, unsealed with the passphrase. Never exported.

        An older workspace's unsealed secret is returned as it is; sealing it is
        the caller's business (it is logged: see ``governance.keys.unlock_secret``).
        """
        data = self.secret_file()
        if secretbox.is_sealed(data):
            data = secretbox.unseal(data, passphrase, where=f"the workspace secret {self.secret_path}")
        if len(data) != SECRET_BYTES:
            raise WorkspaceError(f"the workspace secret {self.secret_path} is damaged (wrong length)")
        return data


def is_initialised(home: Path) -> bool:
    return (home / CONFIG_FILE).is_file() and (home / CATALOG_FILE).is_file()


def open_workspace(home: Path | str | None = None) -> Workspace:
    """Open an existing workspace, or explain how to create one."""
    path = resolve_home(home)
    lock_timeout()  # a bad DATASHARE_LOCK_TIMEOUT is reported before anything is touched
    if not is_initialised(path):
        raise WorkspaceError(
            f"no datashare workspace at {path}",
            hint="Run `datashare init` first (or point --home / DATASHARE_HOME at an existing workspace).",
        )
    tighten_modes(path)  # whatever modes it had: the workspace is its owner's alone (init says what it changed)
    return Workspace(path)


