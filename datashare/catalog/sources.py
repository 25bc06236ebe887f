"""Reading source files into DuckDB: format detection, the header's checks, fingerprint, load.

DuckDB reads the file itself (no pandas, no Python row loop). Its CSV reader
knows UTF-8/UTF-16/Latin-1; Big5 and Big5-HKSCS come from the ``encodings``
extension shipped as the ``duckdb-extension-encodings`` wheel, loaded from the
installed package with no network. DuckDB's sniffer decides a CSV's delimiter
and whether its first line is a header, over a sample of rows; the first few
bytes decide which encoding to suggest when the chosen one is plainly wrong
(:mod:`datashare.catalog.encoding`). DuckDB's own error messages can quote a
line of the file, so they are never shown: they are translated into messages
that name the file, the line number and what to try.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from datashare import identifiers as ids
from datashare.catalog.encoding import (
    ENCODINGS,
    PYTHON_CODECS,
    check_encoding,
    encoding_hint,
    normalise_encoding,
    read_sample,
)
from datashare.catalog.nesting import MAX_JSON_DEPTH, NestingError, check_json_depth
from datashare.core.fs import sha256_file
from datashare.core.progress import watching
from datashare.core.sql import quote_ident, sql_string_literal
from datashare.errors import DatashareError, InputError, UsageError, WorkspaceError
from datashare.textpatterns import NAME_ZH_TEXT_PATTERN

if TYPE_CHECKING:
    import duckdb

FORMATS = ("csv", "parquet", "json")
_SUFFIX_FORMAT = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".json": "json", ".ndjson": "json", ".jsonl": "json",
}
_EXTENSION_ENCODINGS = {"glibc-BIG5HKSCS-2.3.3"}
_CSV_DELIMITERS = (",", "\t", ";", "|")
_SNIFF_ROWS = 20480
_LINE_RE = re.compile(r"on Line: (\d+)")
_WRITE_FAILURE_MARKERS = ("could not write", "no space left", "file too large", "disk is full", "disk full",
                          "could not fsync", "could not truncate", "could not extend")
_WRITE_FAILURE_TYPES = ("IOException", "TransactionException", "FatalException")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_NESTING_DEPTH = MAX_JSON_DEPTH  # levels of arrays and objects (JSON), or of groups (Parquet)


def looks_like_data(name: str) -> bool:
    """A would-be column name that is shaped like a value: an HKID, phone, e-mail, name (English or Chinese), date
    or number."""

    text = name.strip()
    patterns = (ids.HKID_FULL_PATTERN, ids.PHONE_PATTERN, ids.EMAIL_PATTERN, ids.NAME_EN_PATTERN,
                ids.NAME_EN_CAPS_PATTERN, ids.DATE_PATTERN, r"[-+]?[0-9][0-9.,]*")
    # A Chinese name of three characters or more, spaces aside: a surname and given-name characters (潘蓋榮, 陳 大 文;
    # not 高血壓, 姓名, and not two characters, which are as often a word: 高峰, 功 功).
    chinese_name = len(text.replace(" ", "")) >= 3 and re.fullmatch(NAME_ZH_TEXT_PATTERN, text) is not None
    return chinese_name or any(re.fullmatch(pattern, text) for pattern in patterns)


@dataclass(frozen=True)
class SourceFile:
    """A file about to be registered: where, what format, its size and SHA-256."""

    path: Path
    format: str
    encoding: str | None  # the user-facing name, for CSV only
    size: int
    sha256: str | None  # None until fingerprinted (see :func:`fingerprint`)
    delimiter: str | None = None
    stamp: tuple[int, ...] | None = None  # see :func:`file_stamp`, taken before any check read the file
    text_columns: tuple[str, ...] = ()  # CSV columns read as text, not as DuckDB guessed (see long_integer_columns)

    def require_unchanged(self) -> None:
        """Refuse a file changed (or replaced) since it was first looked at: the checks read it before the
        workspace lock, DuckDB after, and both must have read the same bytes."""
        if self.stamp is not None and file_stamp(self.path) != self.stamp:
            raise InputError(f"{self.path} changed while it was being registered",
                             hint="Register it again once nothing is writing to it.")

    @property
    def duckdb_encoding(self) -> str | None:
        return ENCODINGS[self.encoding] if self.encoding else None


def file_stamp(path: Path) -> tuple[int, ...]:
    """What changes when a file is written or replaced: its device, inode, size, and modification and change times
    (the change time no one can set back). A write of the same size within one tick of the file system's clock
    would pass unseen: the times are as fine as the file system keeps them (nanoseconds on ext4, xfs, btrfs)."""
    try:
        info = path.stat()
    except OSError:
        return ()
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns


def detect_format(path: Path, source_format: str | None) -> str:
    if source_format:
        if source_format not in FORMATS:
            raise UsageError(f"unknown format {source_format!r}", hint=f"Use one of: {', '.join(FORMATS)}.")
        return source_format
    found = _SUFFIX_FORMAT.get(path.suffix.lower())
    if found is None:
        raise InputError(
            f"cannot tell the format of {path.name} from its extension",
            hint="Use a .csv, .parquet or .json/.ndjson file, or pass --format.",
        )
    return found


def _header_majority(text: str) -> str | None:
    """The delimiter seen most often in the first line, if any is seen at all."""
    first = text.split("\n", 1)[0]
    counts = {delimiter: first.count(delimiter) for delimiter in _CSV_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else None


def _first_record(text: str, delimiter: str) -> list[str] | None:
    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"',
                               doublequote=True, strict=False), None)
    except csv.Error:
        return None


def _ragged(name: str, where: str = "") -> InputError:
    return InputError(
        f"{name} is not a well-formed CSV{where}: rows have different numbers of fields (ragged CSV)",
        hint="Check the delimiter and quoting, and that every row has as many fields as the header.",
    )


def _csv_options(source: SourceFile, delimiter: str | None) -> list[str]:
    options = [f"delim={sql_string_literal(delimiter)}"] if delimiter else []
    options += ["strict_mode=true", "null_padding=false", "quote='\"'", "escape='\"'",
                f"sample_size={_SNIFF_ROWS}"]
    if source.duckdb_encoding:
        options.append(f"encoding={sql_string_literal(source.duckdb_encoding)}")
    return options


def _sniff(con: duckdb.DuckDBPyConnection, source: SourceFile, delimiter: str | None) -> tuple[str, bool, list[str]]:
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
    import duckdb

    options = ", ".join(_csv_options(source, delimiter))
    try:
        found = con.execute(
            "SELECT Delimiter, HasHeader, [c.name FOR c IN Columns] "
            f"FROM sniff_csv({sql_string_literal(str(source.path))}, {options})"
        ).fetchone()
    except (duckdb.Error, UnicodeError) as exc:  # DuckDB hands back names it decoded that Python cannot
        raise _load_error(exc, source) from None
    return found[0], bool(found[1]), list(found[2])


def sniff_layout(source: SourceFile) -> SourceFile:
    """Decide a CSV's delimiter with DuckDB's sniffer and make sure its first line holds column names.

    The sniffer reads a sample of rows, so a tab-separated file whose header
    holds a comma is still read as tab-separated (``.tsv`` always is). A file
    whose first line looks like data is refused: its values would become
    column names in the catalog, the manifests and the audit log. When every
    column is text the sniffer cannot tell a header from data and assumes a
    header; then a would-be column name shaped like a value (an HKID, phone,
    e-mail, name, date or number) is refused too.
    """
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
    import duckdb

    name = source.path.name
    con = duckdb.connect()
    try:
        if source.duckdb_encoding in _EXTENSION_ENCODINGS:
            con.execute(f"LOAD {sql_string_literal(str(encodings_extension_path()))}")
        fixed = "\t" if source.path.suffix.lower() == ".tsv" else None
        text = read_sample(source.path).decode(PYTHON_CODECS[source.encoding or "utf-8"], errors="replace")
        text = text.removeprefix("\ufeff")
        delimiter, has_header, columns = _sniff(con, source, fixed)
        if fixed is None and len(columns) == 1:
            # One column, yet the first line holds a delimiter: the sniffer gave up on it (a ragged file).
            majority = _header_majority(text)
            if majority is not None and majority != delimiter:
                delimiter, has_header, columns = _sniff(con, source, majority)
    finally:
        con.close()
    header = _first_record(text, delimiter)
    if header is None or len(header) != len(columns):
        raise _ragged(name)
    if not has_header or any(looks_like_data(column) for column in columns):
        raise InputError(
            f"{name} has no header row: its first line looks like data, not column names",
            hint="datashare needs the column names in the first line; add a header line and register again.",
        )
    for position, column in enumerate(columns, start=1):
        if _CONTROL_CHARS.search(column):
            raise InputError(
                f"{name}: column {position} of the header holds a control character (such as NUL or a tab)",
                hint="Column names must be printable text; fix the header line and register again.",
            )
    return replace(source, delimiter=delimiter)


def _refuse_column_name(file_name: str, column: str, where: str) -> None:
    """The checks a CSV header gets, for any column or field name: no control characters, nothing shaped like data."""
    if _CONTROL_CHARS.search(column):
        raise InputError(f"{file_name}: {where} holds a control character (such as NUL or a tab)",
                         hint="Column names must be printable text; rename it and register again.")
    if looks_like_data(column):
        raise InputError(
            f"{file_name}: {where} looks like data (an identifier, phone, e-mail, name, date or number), not a name",
            hint="Keys become column names in the catalog, the manifests and the audit log: rename it and "
                 "register again.")


def _check_field_names(file_name: str, kind: duckdb.DuckDBPyType, column: int, depth: int = 1) -> None:
    """The names of the fields nested in a column's type (structs, and structs inside lists and maps)."""
    if depth > MAX_NESTING_DEPTH:
        raise InputError(f"{file_name}: column {column} is nested more than {MAX_NESTING_DEPTH} levels deep")
    if kind.id not in ("struct", "list", "map", "array", "union"):
        return
    for field_name, child in kind.children:
        if kind.id in ("struct", "union"):
            _refuse_column_name(file_name, str(field_name), f"a field name inside column {column}")
        if not isinstance(child, str):  # an array's size comes as a child too
            _check_field_names(file_name, child, column, depth + 1)


def _parquet_depth(con: duckdb.DuckDBPyConnection, source: SourceFile) -> int:
    """How deeply a Parquet file's schema nests (a flat file: 1), from its metadata alone (no data is read).

    ``parquet_schema`` lists the schema's elements depth first, each with its
    number of children: a stack of the children still to come gives each
    element's level.
    """
    rows = con.execute(f"SELECT num_children FROM parquet_schema({sql_string_literal(str(source.path))})").fetchall()
    deepest, pending = 0, []
    for (children,) in rows:
        deepest = max(deepest, len(pending))  # the root is level 0
        if pending:
            pending[-1] -= 1
        if children:
            pending.append(int(children))
        while pending and pending[-1] <= 0:
            pending.pop()
    return deepest


def check_nested_source(source: SourceFile) -> None:
    """Refuse a JSON or Parquet file that nests too deeply, or whose column or field names are not names.

    Runs before the workspace lock is taken and before DuckDB reads the data:
    a JSON file is scanned as bytes (see :mod:`datashare.catalog.nesting`), a
    Parquet file's depth read from its schema. Column and field names get the
    checks a CSV header gets (:func:`looks_like_data`, control characters).
    """
    import duckdb  # deferred: a heavy import

    name = source.path.name
    if source.format == "json":
        try:
            check_json_depth(source.path, MAX_NESTING_DEPTH)
        except NestingError as exc:
            raise InputError(f"{name} is not JSON datashare reads: {exc}",
                             hint=f"Nesting is limited to {MAX_NESTING_DEPTH} levels of arrays and objects; "
                                  "flatten the file first.") from None
        except OSError as exc:
            raise InputError(f"cannot read {name}: {exc.strerror}") from None
    con = duckdb.connect()
    try:
        if source.format == "parquet" and _parquet_depth(con, source) > MAX_NESTING_DEPTH:
            raise InputError(f"{name} is not Parquet datashare reads: its schema is nested more than "
                             f"{MAX_NESTING_DEPTH} levels deep", hint="Flatten the file first.")
        relation = con.sql(f"SELECT * FROM {load_sql(source)}")
        columns, kinds = relation.columns, relation.types
    except duckdb.Error as exc:
        raise _load_error(exc, source) from None
    finally:
        con.close()
    for position, (column, kind) in enumerate(zip(columns, kinds, strict=True), start=1):
        _refuse_column_name(name, column, f"the name of column {position}")
        _check_field_names(name, kind, position)


def describe_source(path: Path, *, encoding: str | None = None, source_format: str | None = None) -> SourceFile:
    """Check a source file exists and is readable; tell its format, encoding and size.

    The SHA-256 is left to :func:`fingerprint`, so that it can run beside the load.
    """
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if not path.is_file():
        raise InputError(f"{path} is not a regular file")
    stamp = file_stamp(path)
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
        raise UsageError("--encoding applies to CSV files only")
    if fmt != "csv":
        source = SourceFile(path.absolute(), fmt, None, size, None, stamp=stamp)
        check_nested_source(source)
        return source
    enc = check_encoding(path, enc)
    return sniff_layout(SourceFile(path.absolute(), fmt, enc, size, None, stamp=stamp))


def fingerprint(source: SourceFile) -> SourceFile:
    """The same source with its SHA-256 filled in."""
    return replace(source, sha256=sha256_file(source.path))


def encodings_extension_path() -> Path:
    """The DuckDB ``encodings`` extension file inside its installed wheel."""
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
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
    path = sql_string_literal(str(source.path))
    if source.format == "parquet":
        return f"read_parquet({path})"
    if source.format == "json":
        return f"read_json_auto({path})"
    options = ["header=true", "skip=0", *_csv_options(source, source.delimiter or ",")]
    if source.text_columns:
        options.append("types={" + ", ".join(f"{sql_string_literal(c)}: 'VARCHAR'" for c in source.text_columns)
                       + "}")
    return f"read_csv({path}, {', '.join(options)})"


# A whole number of more digits than a double holds exactly (2^53 has 16): DuckDB's CSV reader guesses DOUBLE for
# numbers past BIGINT's range, and an account number of 23 digits and its neighbour became one value.
EXACT_DOUBLE = 2 ** 53
_LONG_INTEGER = "[-+]?[0-9]{16,}"


def long_integer_columns(con: duckdb.DuckDBPyConnection, source: SourceFile, candidates: list[str]) -> list[str]:
    """Of ``candidates`` (CSV columns read as DOUBLE holding a value past :data:`EXACT_DOUBLE`), those whose text
    holds a whole number of 16 digits or more: read as numbers they are rounded, so they are kept as text."""
    path = sql_string_literal(str(source.path))
    options = ", ".join(["header=true", "skip=0", "all_varchar=true", *_csv_options(source, source.delimiter)])
    counts = ", ".join(f"count_if(regexp_full_match(trim({quote_ident(c)}), '{_LONG_INTEGER}'))" for c in candidates)
    found = con.execute(f"SELECT {counts} FROM read_csv({path}, {options})").fetchone()
    return [c for c, n in zip(candidates, found or (), strict=True) if n]


def run_load(
    con: duckdb.DuckDBPyConnection,
    statement: str,
    source: SourceFile,
    on_progress: Callable[[float], None] | None = None,
) -> int:
    """Run the CREATE TABLE … AS SELECT; return the row count. Errors are made safe to show."""
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
    import duckdb

    if source.duckdb_encoding in _EXTENSION_ENCODINGS:
        con.execute(f"LOAD {sql_string_literal(str(encodings_extension_path()))}")
    try:
        with watching(con, on_progress):
            result = con.execute(statement).fetchone()
    except duckdb.Error as exc:
        raise _load_error(exc, source) from None
    return int(result[0]) if result else 0


def is_write_failure(exc: BaseException) -> bool:
    """Whether a DuckDB error is a failed write (a full disk, a file-size limit), not a bad source.

    A write that fails while a query runs is an ``IOException``; one that fails
    at COMMIT comes as a ``TransactionException`` ("Failed to commit: Could not
    write…"), and the database DuckDB then closes reports a ``FatalException``.
    """
    text = str(exc).lower()
    return type(exc).__name__ in _WRITE_FAILURE_TYPES and any(marker in text for marker in _WRITE_FAILURE_MARKERS)


def write_failure_error() -> WorkspaceError:
    return WorkspaceError("the catalog could not be written (disk full?): nothing was registered",
                          hint="Free some space and register again; earlier versions are unchanged.")


def _load_error(exc: Exception, source: SourceFile) -> DatashareError:
    """Turn a DuckDB read error into a message that quotes no data."""
    if is_write_failure(exc):
        return write_failure_error()
    text = str(exc)
    line = _LINE_RE.search(text)
    where = f" (line {line.group(1)})" if line else ""
    name = source.path.name
    if isinstance(exc, UnicodeError) or "Invalid unicode" in text or "byte sequence mismatch" in text \
            or "is not latin-1 encoded" in text:
        current = source.encoding or "utf-8"
        return InputError(f"{name} is not valid {current}{where}",
                          hint=encoding_hint(read_sample(source.path), source.encoding))
    if "not possible to automatically detect the CSV parsing dialect" in text or "Expected Number of Columns" in text \
            or "too many columns" in text.lower() or "Maximum line size" in text:
        return _ragged(name, where)
    if source.format == "parquet":
        return InputError(f"{name} is not a readable Parquet file{where}")
    if source.format == "json":
        return InputError(f"{name} is not readable JSON or NDJSON{where}",
                          hint="Use one JSON object per line, or an array of objects.")
    return InputError(f"cannot read {name} as CSV{where} ({type(exc).__name__})")
