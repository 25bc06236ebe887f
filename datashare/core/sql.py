"""SQL text built from values: the one identifier quoter, the one string-literal builder, DuckDB type kinds.

Every name and string that reaches SQL text goes through :func:`quote_ident` or
:func:`sql_string_literal`; values that are data are bound as parameters instead.
"""

from __future__ import annotations

from datashare.errors import InputError

# DuckDB's numeric types, by their base name (``DECIMAL(18,3)`` is ``DECIMAL``).
NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL")


def quote_ident(name: str) -> str:
    """A table or column name as a DuckDB identifier, whatever characters it holds: double quotes, doubled inside."""
    return '"' + name.replace('"', '""') + '"'


def sql_string_literal(value: str) -> str:
    """A SQL string literal for any text: single quotes doubled, so no value can end the literal."""
    if "\x00" in value:
        raise InputError("text holding a NUL character cannot be used in a query")
    return "'" + value.replace("'", "''") + "'"


def base_type(duckdb_type: str) -> str:
    """A DuckDB type's base name, upper case: ``decimal(18, 3)`` is ``DECIMAL``."""
    return duckdb_type.upper().split("(")[0].strip()


def value_kind(duckdb_type: str) -> str:
    """What a column holds, as far as transforms and comparisons care: number, date, text, boolean or other."""
    base = base_type(duckdb_type)
    if base in NUMERIC_TYPES:
        return "number"
    if base == "DATE" or base.startswith("TIMESTAMP"):
        return "date"
    if base == "VARCHAR":
        return "text"
    if base == "BOOLEAN":
        return "boolean"
    return "other"
