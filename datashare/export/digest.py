"""The content digest of an export: its rows, whatever files and order they are written in.

Two exports of the same policy, one written by DuckDB as one file and one by
Spark as many part files in another order, hold the same content when their
digests are equal. The digest is the row count and the sum, modulo 2^64, of a
60-bit prefix of the SHA-256 of each row's canonical text (a JSON array of its
values as text): a sum does not depend on the order, and a row repeated counts
each time. It is measured with DuckDB on the files as written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from datashare.core.sql import quote_ident, sql_string_literal
from datashare.errors import VerificationError

if TYPE_CHECKING:
    import duckdb

DIGEST_METHOD = "rows + sum of 60-bit SHA-256 prefixes of to_json([values as text]) mod 2^64"
_PREFIX_HEX = 15  # 60 bits: 2^64 / 2^60 rows fit before the sum wraps more than the modulus says


def _reader(files: list[Path], fmt: str) -> str:
    paths = "[" + ", ".join(sql_string_literal(str(p)) for p in files) + "]"
    if fmt == "csv":
        return f"read_csv({paths}, header = true, all_varchar = true)"
    return f"read_parquet({paths})"


def content_digest(con: duckdb.DuckDBPyConnection, files: list[Path], fmt: str, columns: list[str]
                   ) -> dict[str, Any]:
    """``{"rows", "digest", "method"}`` of the data ``files`` (``fmt`` parquet or csv) with ``columns``."""
    values = ", ".join(f"CAST({quote_ident(c)} AS VARCHAR)" for c in columns)
    prefix = f"CAST('0x' || left(sha256(to_json([{values}])), {_PREFIX_HEX}) AS UBIGINT)"
    rows, digest = con.execute(
        f"SELECT count(*), CAST(coalesce(sum({prefix}), 0) % 18446744073709551616 AS UBIGINT) "
        f"FROM {_reader(files, fmt)}").fetchone()
    return {"rows": int(rows), "digest": f"{int(digest):016x}", "method": DIGEST_METHOD}


def measured_content(directory: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """The content digest of a verified export's data files (as listed by its manifest), measured again."""
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
    import duckdb

    files = [Path(directory) / item["name"] for item in manifest.get("files") or []
             if str(item["name"]).endswith((".parquet", ".csv"))]  # the data, not the codebook
    formats = {p.suffix.lstrip(".") for p in files}
    if len(formats) != 1:
        raise VerificationError(f"cannot compare the content of {directory}: its data files are not all Parquet or "
                                "all CSV")
    with duckdb.connect() as con:
        return content_digest(con, files, formats.pop(), list(manifest.get("columns_out") or []))


def compare_content(first: Path, first_manifest: dict[str, Any], second: Path, second_manifest: dict[str, Any]
                    ) -> str:
    """A sentence saying two verified exports hold the same rows, or :class:`VerificationError` naming how they
    differ. Each digest is measured on the files; a manifest that claims another one is a failure too."""
    measured = []
    for directory, manifest in ((first, first_manifest), (second, second_manifest)):
        content = measured_content(directory, manifest)
        claimed = manifest.get("content") or {}
        if claimed and (claimed.get("rows"), claimed.get("digest")) != (content["rows"], content["digest"]):
            raise VerificationError(f"changed content: the rows of {directory} do not give its manifest's digest")
        measured.append(content)
    if first_manifest.get("columns_out") != second_manifest.get("columns_out"):
        raise VerificationError(f"different content: {first} and {second} have different columns")
    if (measured[0]["rows"], measured[0]["digest"]) != (measured[1]["rows"], measured[1]["digest"]):
        raise VerificationError(f"different content: {first} has {measured[0]['rows']:,} rows (digest "
                                f"{measured[0]['digest']}), {second} {measured[1]['rows']:,} (digest "
                                f"{measured[1]['digest']})")
    return (f"same content as {second}: {measured[0]['rows']:,} rows, digest {measured[0]['digest']} "
            "(whatever the files and row order)")
