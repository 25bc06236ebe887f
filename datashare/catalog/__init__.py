"""The catalog: versioned, fingerprinted datasets in DuckDB (``store``; registered by ``load``), read from files
(``sources``), with each column's class detected (``detect``)."""

from __future__ import annotations

from datashare.catalog.load import RegisterResult, register
from datashare.catalog.store import (
    ColumnInfo,
    DatasetVersion,
    classify,
    datasets,
    list_datasets,
    list_versions,
    resolve,
    show,
    validate_name,
)

__all__ = ["ColumnInfo", "DatasetVersion", "RegisterResult", "classify", "datasets", "list_datasets", "list_versions",
           "register", "resolve", "show",
           "validate_name"]
