"""Durable file writes: temp file, fsync, rename, fsync the directory.

A reader never sees a half-written file under its final name, and a crash
leaves either the old content or the new, never a mix.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HASH_CHUNK = 1 << 20  # bytes read at a time when hashing a file


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (a rename or a new file) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _synced_temp(path: Path, data: bytes, mode: int) -> str:
    """``data`` in a new temporary file beside ``path``, with ``mode``, flushed to disk; its name."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return tmp


@contextmanager
def staged_writes(files: dict[Path, tuple[bytes, int]]) -> Iterator[None]:
    """Write each file (content, mode) to a synced temporary file beside it; rename all into place on leaving.

    The block runs between the two (that is where an audit entry is appended):
    if it raises, or a temporary file cannot be written, no file is replaced.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, (data, mode) in files.items():
            staged.append((_synced_temp(Path(path), data, mode), Path(path)))
        yield
        for tmp, path in staged:
            os.replace(tmp, path)
        for parent in {path.parent for _, path in staged}:
            fsync_dir(parent)
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` atomically with the given file mode (set explicitly: the umask does not apply)."""
    with staged_writes({Path(path): (data, mode)}):
        pass


def atomic_write_text(path: Path, text: str, *, mode: int) -> None:
    """Write UTF-8 text to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def fsync_file(path: Path) -> None:
    """Flush one file's content to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
