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
