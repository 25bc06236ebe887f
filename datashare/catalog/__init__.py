"""The catalog: versioned, fingerprinted datasets in DuckDB (``store``), read from files (``sources``), with
each column's class detected (``detect``)."""

from __future__ import annotations

from datashare.catalog.store import (
    ColumnInfo,
    DatasetVersion,
    RegisterResult,
    classify,
    datasets,
    list_datasets,
    list_versions,
    register,
    resolve,
    show,
    validate_name,
)

__all__ = ["ColumnInfo", "DatasetVersion", "RegisterResult", "classify", "datasets", "list_datasets", "list_versions",
           "register", "resolve", "show",
           "validate_name"]
