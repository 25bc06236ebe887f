"""The store of approved policy texts: each approved file's exact bytes, named by their SHA-256.

``policy-texts/<sha256>.yaml`` in the workspace: content-addressed (the same
text is stored once, whatever policy or version names it), written atomically,
0600 in a 0700 folder. A stored text is read back only through
:func:`stored_text`, which checks its SHA-256: a changed file is a
verification failure, never shown.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from datashare.core.fs import atomic_write_bytes
from datashare.errors import VerificationError
from datashare.policy.model import MAX_POLICY_BYTES
from datashare.workspace import FILE_MODE, FOLDER_MODE, Workspace

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _path(workspace: Workspace, sha256: str) -> Path:
    if not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):  # approvals.json names it: never a path of its own
        raise VerificationError(f"{sha256!r} is not a SHA-256 (approvals.json was edited?)")
    return workspace.policy_texts_dir / f"{sha256}.yaml"


def store_text(workspace: Workspace, sha256: str, data: bytes) -> None:
    """Keep ``data`` (an approved policy file's bytes, whose SHA-256 is ``sha256``); a no-op when it is kept."""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise VerificationError("the policy text to store does not match its SHA-256")
    path = _path(workspace, sha256)
    path.parent.mkdir(mode=FOLDER_MODE, exist_ok=True)
    os.chmod(path.parent, FOLDER_MODE)
    if _read(path) != data:  # absent, or changed since: written whole again
        atomic_write_bytes(path, data, mode=FILE_MODE)


def stored_text(workspace: Workspace, sha256: str, label: str) -> bytes | None:
    """The stored bytes whose SHA-256 is ``sha256``, checked (``label`` names them in a failure); None if absent."""
    data = _read(_path(workspace, sha256))
    if data is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise VerificationError(f"the stored text of {label} does not match its approved SHA-256 (changed after "
                                "approval?)", hint="A custodian stores it anew by approving the approved file again.")
    return data


def _read(path: Path) -> bytes | None:
    """A stored text's bytes (a regular file, never through a symbolic link; bounded), or None if there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise VerificationError(f"the stored policy text {path.name} cannot be read: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        return handle.read(MAX_POLICY_BYTES + 1)
