"""Automatic column classification: direct, quasi, sensitive or other.

Values decide for identifiers: for every text column, one SQL query over a
sample counts how many values match each identifier rule of
:mod:`datashare.identifiers`. Column names and types help for the rest (a
``dob`` DATE is a quasi-identifier, ``diagnosis`` is sensitive). Nothing
leaves DuckDB but counts.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from datashare import identifiers as ids

if TYPE_CHECKING:
    import duckdb

DIRECT = "direct"
QUASI = "quasi"
SENSITIVE = "sensitive"
OTHER = "other"

SAMPLE_ROWS = 20_000
FULL_MATCH_SHARE = 0.6  # a column whose values are mostly identifiers is an identifier column
CONTAINS_SHARE = 0.05  # free text where some values mention identifiers must be treated as identifying
COLUMNS_PER_QUERY = 200

# (detected, full-match regex) — checked on the whole trimmed value.
_VALUE_RULES: tuple[tuple[str, str], ...] = (
    ("hkid", rf"\s*{ids.HKID_PATTERN}\s*"),
    ("phone", rf"\s*{ids.PHONE_PATTERN}\s*"),
    ("email", rf"\s*{ids.EMAIL_PATTERN}\s*"),
    ("name_en", rf"\s*{ids.NAME_EN_PATTERN}\s*"),
    ("name_zh", rf"\s*{ids.NAME_ZH_PATTERN}\s*"),
    ("diagnosis", ids.ICD10_PATTERN.strip("^$")),
)
_CONTAINS_IDENTIFIER = "|".join(f"(?:{pattern})" for _, pattern in ids.REDACTIONS)

_NAME_HINTS: tuple[tuple[str, str, str], ...] = (  # (regex on the column name, class, detected)
    (r"(^|_)(hkid|id_?card|passport|ssn|nric)($|_)", DIRECT, "hkid"),
    (r"(^|_)(patient_?id|mrn|hn|record_?no|case_?no|subject_?id|id)$", DIRECT, "record_id"),
    (r"(^|_)(name|surname|given_?name|full_?name|name_en|name_zh)($|_)|姓名", DIRECT, "name"),
    (r"(^|_)(phone|mobile|tel|telephone|fax)($|_)|電話", DIRECT, "phone"),
    (r"(^|_)(email|e_mail)($|_)", DIRECT, "email"),
    (r"(^|_)(address|addr)($|_)|地址", DIRECT, "address"),
    (r"(^|_)(dob|date_of_birth|birth_?date|birthday)($|_)|出生", QUASI, "dob"),
    (r"(^|_)(sex|gender)($|_)|性別", QUASI, "sex"),
    (r"(^|_)(age|age_band|year_of_birth)($|_)", QUASI, "age"),
    (r"(^|_)(district|region|postcode|zip|area)($|_)|地區", QUASI, "district"),
    (r"(^|_)(diagnosis|icd|icd10|icd_10|condition|disease|procedure|medication|drug)", SENSITIVE, "diagnosis"),
    (r"(^|_)(hba1c|ldl|hdl|glucose|creatinine|cholesterol|lab|result|bp|weight|bmi)($|_)", SENSITIVE, "lab_value"),
    (r"(^|_)(note|notes|comment|remarks|free_?text|narrative)($|_)", SENSITIVE, "free_text"),
)
_DATE_TYPES = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S")
_TEXT_TYPES = ("VARCHAR",)


@dataclass(frozen=True)
class ColumnClassification:
    """The class a column was given, what was recognised in it, and how much of the sample matched."""

    cls: str
    detected: str | None = None
    match_rate: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["class"] = data.pop("cls")
        return data


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sample_relation(con: duckdb.DuckDBPyConnection, relation: str, sample_rows: int) -> str:
    total = con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
    if total <= sample_rows * 2:
        return relation
    return f"(SELECT * FROM {relation} USING SAMPLE reservoir({int(sample_rows)} ROWS) REPEATABLE (42))"


def _value_rates(con: duckdb.DuckDBPyConnection, sample: str, text_columns: list[str]) -> dict[str, dict[str, float]]:
    """Per text column: share of non-null values fully matching each rule, and containing identifiers."""
    rates: dict[str, dict[str, float]] = {}
    for start in range(0, len(text_columns), COLUMNS_PER_QUERY):
        batch = text_columns[start:start + COLUMNS_PER_QUERY]
        parts = []
        for column in batch:
            q = _quote(column)
            parts.append(f"count({q})")
            for _, pattern in _VALUE_RULES:
                parts.append(f"count_if(regexp_full_match({q}, {ids.sql_string_literal(pattern)}))")
            parts.append(f"count_if(regexp_matches({q}, {ids.sql_string_literal(_CONTAINS_IDENTIFIER)}))")
            parts.append(f"count_if({ids.sql_is_valid_hkid(q)})")
        row = con.execute(f"SELECT {', '.join(parts)} FROM {sample}").fetchone()
        width = len(_VALUE_RULES) + 3
        for index, column in enumerate(batch):
            values = row[index * width:(index + 1) * width]
            present = values[0] or 0
            shares = {name: (values[1 + i] / present if present else 0.0) for i, (name, _) in enumerate(_VALUE_RULES)}
            shares["contains"] = values[-2] / present if present else 0.0
            shares["valid_hkid"] = values[-1] / present if present else 0.0
            rates[column] = shares
    return rates


def _name_hint(column: str) -> tuple[str, str] | None:
    lowered = column.lower().strip()
    for pattern, cls, detected in _NAME_HINTS:
        if re.search(pattern, lowered):
            return cls, detected
    return None


def _decide(column: str, column_type: str, rates: dict[str, float] | None) -> ColumnClassification:
    hint = _name_hint(column)
    if rates:
        ranked = sorted(
            ((rates[name], name) for name, _ in _VALUE_RULES if name != "diagnosis"), reverse=True
        )
        best_rate, best = ranked[0]
        if best == "hkid":
            best_rate = rates["valid_hkid"]
        if best_rate >= FULL_MATCH_SHARE:
            return ColumnClassification(DIRECT, best, round(best_rate, 4))
        if rates["diagnosis"] >= FULL_MATCH_SHARE:
            return ColumnClassification(SENSITIVE, "diagnosis", round(rates["diagnosis"], 4))
        if rates["contains"] >= CONTAINS_SHARE and (hint is None or hint[0] != QUASI):
            detected = hint[1] if hint is not None and hint[0] == DIRECT else "free_text_with_identifiers"
            return ColumnClassification(DIRECT, detected, round(rates["contains"], 4))
    base_type = column_type.split("(")[0].upper()
    if hint is not None:
        return ColumnClassification(hint[0], hint[1], None)
    if base_type in _DATE_TYPES:
        return ColumnClassification(QUASI, "date", None)
    return ColumnClassification(OTHER, None, None)


def classify_columns(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: list[tuple[str, str]],
    sample_rows: int = SAMPLE_ROWS,
) -> dict[str, ColumnClassification]:
    """Classify every column of ``relation`` (an already-quoted table name)."""
    ids.install_sql_macros(con)
    text_columns = [name for name, column_type in columns if column_type.upper() in _TEXT_TYPES]
    rates = _value_rates(con, _sample_relation(con, relation, sample_rows), text_columns) if text_columns else {}
    return {name: _decide(name, column_type, rates.get(name)) for name, column_type in columns}
