"""How deeply a JSON file nests, found by streaming through its bytes before DuckDB reads it.

DuckDB infers a JSON file's types recursively: a few kilobytes of nested
arrays take minutes and gigabytes, and 20,000 levels crash the process. So a
JSON or NDJSON file is scanned first, in chunks, never held whole, and refused
past :data:`MAX_JSON_DEPTH` levels of ``[`` and ``{``. The scan stays in C
(regular expressions, ``bytes.translate``, ``itertools.accumulate``): no Python
step per byte.

Valid JSON has no raw newline inside a string (DuckDB refuses one), which
makes strings cheap to find: escaped quotes and backslashes are removed first, then every
byte but quotes, brackets and newlines; in what is left, an empty string ``""``
(or the gap between two strings) is dropped, and splitting at the quotes that
remain gives the parts outside strings and inside them. A part inside a
string that holds a newline means the quotes do not pair up (not valid JSON):
the file is refused rather than guessed at. A string still open at the end of
a chunk is carried as a lone ``"``: its content cannot matter.

DuckDB decompresses a ``.json.gz`` file as it reads it, so a gzip file (by its
magic bytes, whatever its name) is scanned through :func:`gzip.open`, still in
chunks; other compressions DuckDB would decompress (zstd) are refused.
"""

from __future__ import annotations

import gzip
import zlib
from itertools import accumulate
from pathlib import Path
from typing import BinaryIO

MAX_JSON_DEPTH = 64
_CHUNK = 1 << 22  # 4 MiB read at a time
_KEPT = b'"[]{}\n'
_OTHER_BYTES = bytes(b for b in range(256) if b not in _KEPT)
# Brackets become signed steps (+1, -1 as a signed byte); newlines are deleted.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_SAME_BRACKETS = bytes.maketrans(b"{}", b"[]")  # for depth, which kind of bracket does not matter
_LEAF_PASSES = 4  # records are shallow: a few passes of dropping "[]" leave little to count one by one


_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class NestingError(ValueError):
    """The file nests deeper than the limit, or its brackets or quotes do not pair up."""


def _open_json(path: Path) -> BinaryIO:
    """The file's JSON bytes as a stream: decompressed as DuckDB would for gzip; zstd refused."""
    with Path(path).open("rb") as probe:
        magic = probe.read(4)
    if magic.startswith(_GZIP_MAGIC):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    # A zstd frame, a skippable frame (which can hide the real one behind bytes that scan as JSON), or a name that
    # makes DuckDB decompress it as zstd whatever it starts with.
    skippable = len(magic) == 4 and magic[1:] == b"\x2a\x4d\x18" and magic[0] & 0xF0 == 0x50
    if magic == _ZSTD_MAGIC or skippable or Path(path).suffix.lower() in (".zst", ".zstd"):
        raise NestingError("it is zstd-compressed; decompress it first (gzip or no compression is read)")
    return Path(path).open("rb")


def _read(handle: BinaryIO, size: int) -> bytes:
    try:
        return handle.read(size)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise NestingError("its gzip compression is damaged") from exc


def check_json_depth(path: Path, limit: int = MAX_JSON_DEPTH, *, chunk_bytes: int = _CHUNK) -> None:
    """Refuse (:class:`NestingError`) a JSON or NDJSON file nested more than ``limit`` levels of ``[``/``{``.

    Stops reading as soon as the limit is passed, so a hostile file is refused
    after its first chunk. ``chunk_bytes`` exists for tests (chunk boundaries
    anywhere).
    """
    depth = 0
    carry = b""
    with _open_json(path) as handle:
        while True:
            chunk = _read(handle, chunk_bytes)
            buffer = carry + chunk
            carry = b""
            if b"\\" in buffer:
                trailing = len(buffer) - len(buffer.rstrip(b"\\"))
                if chunk and trailing % 2:  # an escape cut in two: finish it with the next chunk
                    buffer, carry = buffer[:-1], b"\\"
                # Escapes pair up from the left: a run of backslashes keeps one if it is odd, which escapes what
                # follows it; only an escaped quote matters here (the rest is inside a string, or invalid anyway).
                buffer = buffer.replace(b"\\\\", b"").replace(b'\\"', b"")
            parts = buffer.translate(None, _OTHER_BYTES).replace(b'""', b"").split(b'"')
            if b"\n" in b"".join(parts[1::2]):
                raise NestingError("a string is not closed before the end of its line")
            if len(parts) % 2 == 0:  # an odd number of quotes: a string is still open
                if not chunk:
                    raise NestingError("a string is not closed at the end of the file")
                carry = b'"' + carry
            depth = _deepen(b"".join(parts[0::2]).translate(_SAME_BRACKETS, b"\n"), depth, limit)
            if not chunk:
                return


def _deepen(brackets: bytes, depth: int, limit: int) -> int:
    """The depth after ``brackets`` (only ``[`` and ``]``), starting at ``depth``; refuse past ``limit``.

    Dropping every ``"[]"`` once lowers the deepest point by at most one and
    changes no other prefix: after a few passes, the deepest point of what is
    left, plus the passes, bounds the true one. Only when that bound is past
    the limit are the brackets counted one by one.
    """
    reduced = brackets
    for _ in range(_LEAF_PASSES):
        reduced = reduced.replace(b"[]", b"")
    for candidate, slack in ((reduced, _LEAF_PASSES), (brackets, 0)):
        steps = memoryview(candidate.translate(_STEPS)).cast("b")
        deepest = max(accumulate(steps, initial=depth))
        if deepest > limit:
            raise NestingError(f"nested more than {limit} levels deep")
        if deepest + slack <= limit:
            break
    if min(accumulate(steps, initial=depth)) < 0:
        raise NestingError("it closes a bracket it never opened")
    return depth + sum(steps)
