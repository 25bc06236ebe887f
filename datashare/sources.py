"""Reading source files into DuckDB: format and encoding detection, fingerprint, load.

DuckDB reads the file itself (no pandas, no Python row loop). Its CSV reader
knows UTF-8/UTF-16/Latin-1; Big5 and Big5-HKSCS come from the ``encodings``
extension shipped as the ``duckdb-extension-encodings`` wheel, loaded from the
installed package with no network. DuckDB's own error messages can quote a
line of the file, so they are never shown: they are translated into messages
that name the file, the line number and what to try.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from datashare.errors import InputError

if TYPE_CHECKING:
    import duckdb

HASH_CHUNK = 1 << 20
FORMATS = ("csv", "parquet", "json")
_SUFFIX_FORMAT = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".json": "json", ".ndjson": "json", ".jsonl": "json",
}
# User-facing encoding names -> the name DuckDB (or its encodings extension) knows.
ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-8-sig": "utf-8",  # DuckDB skips a UTF-8 byte-order mark itself
    "utf-16": "utf-16",
    "latin-1": "latin-1",
    "big5": "glibc-BIG5HKSCS-2.3.3",  # Big5-HKSCS is a superset of Big5
    "big5hkscs": "glibc-BIG5HKSCS-2.3.3",
    "big5-hkscs": "glibc-BIG5HKSCS-2.3.3",
}
_EXTENSION_ENCODINGS = {"glibc-BIG5HKSCS-2.3.3"}
_CSV_DELIMITERS = (",", "\t", ";", "|")
_LINE_RE = re.compile(r"on Line: (\d+)")


@dataclass(frozen=True)
class SourceFile:
    """A file about to be registered: where, what format, its size and SHA-256."""

    path: Path
    format: str
    encoding: str | None  # the user-facing name, for CSV only
    size: int
    sha256: str | None  # None until fingerprinted (see :func:`fingerprint`)
    delimiter: str | None = None

    @property
    def duckdb_encoding(self) -> str | None:
        return ENCODINGS[self.encoding] if self.encoding else None


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def detect_format(path: Path, source_format: str | None) -> str:
    if source_format:
        if source_format not in FORMATS:
            raise InputError(f"unknown format {source_format!r}", hint=f"Use one of: {', '.join(FORMATS)}.")
        return source_format
    found = _SUFFIX_FORMAT.get(path.suffix.lower())
    if found is None:
        raise InputError(
            f"cannot tell the format of {path.name} from its extension",
            hint="Use a .csv, .parquet or .json/.ndjson file, or pass --format.",
        )
    return found


def normalise_encoding(encoding: str | None) -> str | None:
    if encoding is None:
        return None
    key = encoding.strip().lower().replace("_", "-")
    if key == "big5-hkscs" or key.replace("-", "") == "big5hkscs":
        key = "big5hkscs"
    if key not in ENCODINGS:
        raise InputError(
            f"unknown encoding {encoding!r}",
            hint="Use utf-8 (the default, with or without BOM), big5, big5hkscs, utf-16 or latin-1.",
        )
    return key


def _sniff_delimiter(path: Path, encoding: str | None) -> str:
    """The delimiter, judged from the header line only (never from data rows)."""
    with path.open("rb") as handle:
        head = handle.readline(1 << 20)
    python_codec = {"big5hkscs": "big5hkscs", "big5": "big5hkscs", "utf-16": "utf-16",
                    "latin-1": "latin-1"}.get(encoding or "", "utf-8-sig")
    text = head.decode(python_codec, errors="replace")
    counts = {delimiter: text.count(delimiter) for delimiter in _CSV_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def describe_source(path: Path, *, encoding: str | None = None, source_format: str | None = None) -> SourceFile:
    """Check a source file exists and is readable; tell its format, encoding and size.

    The SHA-256 is left to :func:`fingerprint`, so that it can run beside the load.
    """
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if not path.is_file():
        raise InputError(f"{path} is not a regular file")
    try:
        size = path.stat().st_size
        with path.open("rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    if size == 0:
        raise InputError(f"{path} is empty", hint="Register a file with a header and at least one row.")
    fmt = detect_format(path, source_format)
    enc = normalise_encoding(encoding)
    if enc is not None and fmt != "csv":
        raise InputError("--encoding applies to CSV files only")
    delimiter = _sniff_delimiter(path, enc) if fmt == "csv" else None
    return SourceFile(path.absolute(), fmt, enc if fmt == "csv" else None, size, None, delimiter)


def fingerprint(source: SourceFile) -> SourceFile:
    """The same source with its SHA-256 filled in."""
    return replace(source, sha256=sha256_file(source.path))


def encodings_extension_path() -> Path:
    """The DuckDB ``encodings`` extension file inside its installed wheel."""
    import duckdb
    import duckdb_extension_encodings

    root = Path(duckdb_extension_encodings.__file__).parent / "extensions"
    candidate = root / f"v{duckdb.__version__}" / "encodings.duckdb_extension"
    if not candidate.is_file():
        raise InputError(
            f"the DuckDB encodings extension for DuckDB {duckdb.__version__} is not installed",
            hint="Reinstall datashare so that duckdb and duckdb-extension-encodings match.",
        )
    return candidate


def load_sql(source: SourceFile) -> str:
    """The DuckDB table function call that reads the source."""
    path = _sql_string(str(source.path))
    if source.format == "parquet":
        return f"read_parquet({path})"
    if source.format == "json":
        return f"read_json_auto({path})"
    options = [
        f"delim={_sql_string(source.delimiter or ',')}",
        "header=true",
        "skip=0",
        "strict_mode=true",
        "null_padding=false",
        "quote='\"'",
        "escape='\"'",
        "sample_size=20480",
    ]
    if source.duckdb_encoding:
        options.append(f"encoding={_sql_string(source.duckdb_encoding)}")
    return f"read_csv({path}, {', '.join(options)})"


def run_load(
    con: duckdb.DuckDBPyConnection,
    statement: str,
    source: SourceFile,
    on_progress: Callable[[float], None] | None = None,
) -> int:
    """Run the CREATE TABLE … AS SELECT; return the row count. Errors are made safe to show."""
    import duckdb

    if source.duckdb_encoding in _EXTENSION_ENCODINGS:
        con.execute(f"LOAD {_sql_string(str(encodings_extension_path()))}")
    stop = threading.Event()
    watcher = None
    if on_progress is not None:
        watcher = threading.Thread(target=_watch_progress, args=(con, on_progress, stop), daemon=True)
        watcher.start()
    try:
        result = con.execute(statement).fetchone()
    except duckdb.Error as exc:
        raise _load_error(exc, source) from None
    finally:
        stop.set()
        if watcher is not None:
            watcher.join()
    return int(result[0]) if result else 0


def _watch_progress(con: duckdb.DuckDBPyConnection, on_progress: Callable[[float], None],
                    stop: threading.Event) -> None:
    while not stop.wait(0.2):
        try:
            value = con.query_progress()
        except Exception:  # noqa: BLE001 - progress is cosmetic
            return
        if value is not None and value >= 0:
            on_progress(min(float(value), 100.0))
    time.sleep(0)


def _load_error(exc: Exception, source: SourceFile) -> InputError:
    """Turn a DuckDB read error into a message that quotes no data."""
    text = str(exc)
    line = _LINE_RE.search(text)
    where = f" (line {line.group(1)})" if line else ""
    name = source.path.name
    if "Invalid unicode" in text or "byte sequence mismatch" in text:
        current = source.encoding or "utf-8"
        hint = (
            "If it comes from a Traditional Chinese system, try --encoding big5hkscs."
            if current.startswith("utf")
            else "Try --encoding utf-8 (the default), or the encoding the file was exported with."
        )
        return InputError(f"{name} is not valid {current}{where}", hint=hint)
    if "not possible to automatically detect the CSV parsing dialect" in text or "Expected Number of Columns" in text \
            or "too many columns" in text.lower() or "Maximum line size" in text:
        return InputError(
            f"{name} is not a well-formed CSV{where}: rows have different numbers of fields (ragged CSV)",
            hint="Check the delimiter and quoting, and that every row has as many fields as the header.",
        )
    if "No space left" in text or "disk" in text.lower() and "full" in text.lower():
        return InputError("the disk is full: nothing was registered", hint="Free some space and try again.")
    if source.format == "parquet":
        return InputError(f"{name} is not a readable Parquet file{where}")
    if source.format == "json":
        return InputError(f"{name} is not readable JSON or NDJSON{where}",
                          hint="Use one JSON object per line, or an array of objects.")
    return InputError(f"cannot read {name} as CSV{where} ({type(exc).__name__})")
