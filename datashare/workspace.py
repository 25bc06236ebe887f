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
from datashare.errors import InputError, RefusedError, WorkspaceBusyError, WorkspaceError

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
LEDGER_FILE = "releases.jsonl"
POLICY_TEXTS_DIR = "policy-texts"  # every approved policy file's exact bytes, named by their SHA-256
# A purge writes the catalog without the purged rows here, then renames it over the catalog. One left by a killed
# purge holds personal data, so the next connection removes it (with its write-ahead log).
PURGE_STAGING_FILE = CATALOG_FILE + ".purging"
# The workspace's own entries (datashare writes nothing else in its folder): what :func:`tighten_modes` fixes.
_OWN_FILES = (CATALOG_FILE, CATALOG_FILE + ".wal", AUDIT_FILE, CONFIG_FILE, SECRET_FILE, APPROVALS_FILE,
              LOCK_FILE_NAME, LEDGER_FILE, PURGE_STAGING_FILE, PURGE_STAGING_FILE + ".wal")
_OWN_FOLDERS = (KEYS_DIR, CATALOG_FILE + ".tmp", POLICY_TEXTS_DIR)

_ACTOR_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")
_DUCKDB_LOCK_MARKERS = ("Could not set lock", "Conflicting lock")


SECRET_SEALED = "secret_sealed"  # in the config: the secret is sealed, so a plain one was planted or damaged
_TEXT_BYTES = re.compile(rb"[\x20-\x7e\t\r\n]*")
PRIVATE_UMASK = 0o077  # what every file datashare (or DuckDB inside it) creates passes through


def check_folder(home: Path) -> None:
    """Refuse a workspace folder that is not its user's own (as ssh does a key file).

    A folder owned by another uid is refused; so is a shared one (world-writable
    or sticky, such as ``/tmp``), which is never chmod-ed: choose a folder of
    your own. A folder that does not exist yet passes (it is made private).
    """
    try:
        found = home.stat()
    except OSError:
        return
    uid = os.geteuid()
    if found.st_uid != uid:
        raise RefusedError(f"the workspace folder {home} is owned by uid {found.st_uid}, not you (uid {uid})",
                           hint="Use a workspace folder of your own with --home or DATASHARE_HOME.")
    if stat.S_ISDIR(found.st_mode) and found.st_mode & (stat.S_ISVTX | stat.S_IWOTH):
        raise RefusedError(f"{home} is a shared folder (world-writable or sticky): choose a folder of your own",
                           hint="Pass --home a new folder inside it (e.g. --home /tmp/mine): init makes it 0700.")


def tighten_modes(home: Path) -> list[str]:
    """Take every permission for group and others off the workspace folder and its own files; the entries changed.

    The folder becomes 0700 and its files 0600 (their owner's bits are kept:
    a workspace its owner made read-only stays read-only). Only the
    workspace's own entries are touched (never symbolic links, never what else
    a folder given as ``--home`` holds). A file system that refuses (read-only)
    leaves the modes as they were.
    """
    check_folder(home)  # never chmod someone else's folder, or a shared one such as /tmp
    changed: list[str] = []
    for path, label, current, wanted in _loose_entries(home):
        with contextlib.suppress(OSError):
            os.chmod(path, wanted)
            changed.append(f"{label} {current:04o} -> {wanted:04o}")
    return changed


def loose_modes(home: Path) -> list[str]:
    """The workspace's own entries open to group or others, as ``"catalog.duckdb 0644"``; nothing is changed."""
    return [f"{label} {current:04o}" for _, label, current, _ in _loose_entries(home)]


def _loose_entries(home: Path) -> Iterator[tuple[Path, str, int, int]]:
    """(path, label, mode, mode without group and other bits) of each of the workspace's own entries that has
    such bits: the folder, its files, and the files of its own folders (never a symbolic link)."""

    def check(path: Path, allowed: int, label: str) -> Iterator[tuple[Path, str, int, int]]:
        try:
            found = path.lstat()
        except (FileNotFoundError, NotADirectoryError):
            return
        current = stat.S_IMODE(found.st_mode)
        if not stat.S_ISLNK(found.st_mode) and current & allowed != current:
            yield path, label, current, current & allowed

    yield from check(home, FOLDER_MODE, ".")
    for name in _OWN_FILES:
        yield from check(home / name, FILE_MODE, name)
    for name in _OWN_FOLDERS:
        folder = home / name
        yield from check(folder, FOLDER_MODE, name + "/")
        if folder.is_dir() and not folder.is_symlink():
            with contextlib.suppress(OSError):
                for entry in sorted(folder.iterdir()):
                    if entry.is_file() and not entry.is_symlink():
                        yield from check(entry, FILE_MODE, f"{name}/{entry.name}")


def utc_now() -> str:
    """The current UTC time as an ISO 8601 string with a ``Z`` suffix."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def resolve_home(home: Path | str | None, *, discover: bool = True) -> Path:
    """The workspace folder: the argument, else ``DATASHARE_HOME``, else (with ``discover``) the nearest
    ``.datashare`` workspace in the current folder or one of its parents, as git finds its repository, else
    ``./.datashare``. ``init`` does not discover: it makes the workspace where it is asked to."""
    if home is None or str(home) == "":
        env = os.environ.get(HOME_ENV)
        home = Path(env) if env else (find_workspace(Path.cwd()) if discover else None) or DEFAULT_HOME
    return Path(home).expanduser().resolve()  # a symbolic link stands for the real folder, which is checked


def find_workspace(start: Path) -> Path | None:
    """The nearest folder named ``.datashare`` holding a workspace (its config and catalog), in ``start`` or
    a parent of it; None if there is none up to the root. Whose it is is checked when it is opened."""
    for folder in (start, *start.parents):
        candidate = folder / DEFAULT_HOME
        try:
            if is_initialised(candidate):
                return candidate
        except OSError:  # another account's folder, closed to us: not a workspace we could use
            continue
    return None


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
    if not _ACTOR_RE.fullmatch(value):
        raise InputError(
            "actor names may use letters, digits and _ . @ - (at most 64 characters)",
            hint="Pass a plain account name with --actor or DATASHARE_ACTOR.",
        )
    return value


@contextmanager
def private_umask() -> Iterator[None]:
    """Run with umask 0077 (every file and folder created is its owner's alone), then restore the caller's."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


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

    @property
    def policy_texts_dir(self) -> Path:
        return self.home / POLICY_TEXTS_DIR

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

        with self.lock(), private_umask():
            # DuckDB spills to <catalog>.tmp; what a killed process left there is stale, and under the lock no
            # other connection is open to use it.
            shutil.rmtree(self.catalog_path.with_name(self.catalog_path.name + ".tmp"), ignore_errors=True)
            remove_purge_staging(self.home)
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
                # What DuckDB creates meanwhile (its write-ahead log, its spill folder) is private by the umask.
                yield con
            finally:
                con.close()

    def config(self) -> dict[str, Any]:
        """The workspace configuration (roles, settings)."""
        try:
            return json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WorkspaceError(f"cannot read workspace config {self.config_path}: {exc}") from exc

    def save_config(self, config: dict[str, Any]) -> None:
        """Replace the configuration atomically (caller holds the lock)."""
        atomic_write_text(self.config_path, config_text(config), mode=FILE_MODE)

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
        else:
            self.check_plain_secret(data)
        if len(data) != SECRET_BYTES:
            raise WorkspaceError(f"the workspace secret {self.secret_path} is damaged (wrong length)")
        return data


    def check_plain_secret(self, data: bytes) -> None:
        """Refuse a plain (unsealed) secret unless it can be an older workspace's, which is sealed on first use.

        Not where the config says the secret is sealed (set when it was made or
        sealed): anyone who can write the folder could plant one and choose the
        pseudonyms. Nor where it is text, as a damaged sealed file is (an older
        workspace's secret is 32 random bytes).
        """
        if self.config().get(SECRET_SEALED) or _TEXT_BYTES.fullmatch(data):
            raise WorkspaceError(
                f"the workspace secret {self.secret_path} was replaced or damaged: it is not sealed, "
                "and this workspace's secret is",
                hint="Restore secret.key from a backup of this workspace; nothing was exported with it.")


def remove_purge_staging(home: Path) -> None:
    """Remove what a killed purge left (a copy of the catalog, with personal data); the caller holds the lock."""
    for name in (PURGE_STAGING_FILE, PURGE_STAGING_FILE + ".wal"):
        with contextlib.suppress(FileNotFoundError):
            (home / name).unlink()


def config_text(config: dict[str, Any]) -> str:
    """The configuration file's text."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


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


