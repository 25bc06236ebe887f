"""The workspace: one folder holding the catalog, the audit log, keys and config.

``./.datashare`` by default, or ``--home`` / ``DATASHARE_HOME``. Commands other
than ``init`` refuse to run before the workspace exists.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datashare.core.fs import atomic_write_text
from datashare.core.locking import lock_timeout, workspace_lock
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

_ACTOR_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")
_DUCKDB_LOCK_MARKERS = ("Could not set lock", "Conflicting lock")


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
    """The operating-system user running this process."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


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
        atomic_write_text(self.config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def secret(self) -> bytes:
        """The workspace HMAC secret used for pseudonyms and date shifts. Never exported."""
        try:
            data = self.secret_path.read_bytes()
        except OSError as exc:
            raise WorkspaceError(f"cannot read the workspace secret {self.secret_path}: {exc}") from exc
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
    return Workspace(path)


