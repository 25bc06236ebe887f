"""Automatic column classification: direct, quasi, sensitive or other.

Values decide for identifiers: one SQL query over a sample of the table
counts, for every column, how many non-null values match each rule of
:mod:`datashare.identifiers` (an HKID with a right check digit, a phone, an
e-mail, a name, a district...). Column names and types decide the rest: a
``dob`` DATE is a quasi-identifier, ``hba1c`` is sensitive. Nothing leaves
DuckDB but counts, so no cell value can reach a log or a message.

Classification fails closed: a column is ``direct`` when its values look like
identifiers whatever its name says, and free text in which a few rows mention
a name, HKID, phone or e-mail is ``direct`` too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datashare import identifiers as ids
from datashare.core.sql import quote_ident, value_kind

if TYPE_CHECKING:
    import duckdb

DIRECT = "direct"
QUASI = "quasi"
SENSITIVE = "sensitive"
OTHER = "other"
CLASSES = (DIRECT, QUASI, SENSITIVE, OTHER)

SAMPLE_ROWS = 20_000
SAMPLE_SEED = 42
FULL_MATCH_SHARE = 0.6  # a column whose values are mostly identifiers is an identifier column
CONTAINS_SHARE = 0.05  # free text where a few values mention identifiers must be treated as identifying
VALID_HKID_SHARE = 0.5  # of the HKID-shaped values, how many need a right check digit to be called HKIDs
COLUMNS_PER_QUERY = 150  # keeps one query's expression list to a size DuckDB plans quickly


def _full_match(pattern: str) -> Callable[[str], str]:
    literal = ids.sql_string_literal(rf"\s*(?:{pattern})\s*")
    return lambda text: f"regexp_full_match({text}, {literal})"


def _search(pattern: str) -> Callable[[str], str]:
    literal = ids.sql_string_literal(pattern)
    return lambda text: f"regexp_matches({text}, {literal})"


def _any_of(*builders: Callable[[str], str]) -> Callable[[str], str]:
    return lambda text: " OR ".join(f"({build(text)})" for build in builders)


# Rules counted in SQL on each value read as text: (rule, builder of a boolean SQL expression).
_RULES: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("hkid_shape", _full_match(ids.HKID_FULL_PATTERN)),
    ("hkid", ids.sql_is_valid_hkid),
    ("phone", _full_match(ids.PHONE_PATTERN)),
    ("email", _full_match(ids.EMAIL_PATTERN)),
    ("name_en", _any_of(_full_match(ids.NAME_EN_PATTERN), _full_match(ids.NAME_EN_CAPS_PATTERN))),
    ("name_zh", _full_match(ids.NAME_ZH_PATTERN)),
    ("district", _full_match(ids.DISTRICT_PATTERN)),
    ("sex", _full_match(ids.SEX_PATTERN)),
    ("date", _full_match(ids.DATE_PATTERN)),
    ("icd10", _full_match(ids.ICD10_PATTERN)),
    ("address", _search(ids.ADDRESS_PATTERN)),
    ("contains", _search(ids.IDENTIFIER_IN_TEXT_PATTERN)),
)
_IDENTIFIER_RULES = ("phone", "email", "name_en", "name_zh")  # full-match rules that make a column direct
_SHAPE_RULES = (("district", QUASI, "district"), ("sex", QUASI, "sex"), ("date", QUASI, "date"),
                ("icd10", SENSITIVE, "diagnosis"), ("address", DIRECT, "address"))

# (regex on the column name, lower-cased with spaces/dots/hyphens as "_", class, detected); first match wins.
_NAME_HINTS: tuple[tuple[str, str, str], ...] = (
    (r"(^|_)(hkid|hk_?id|id_?card|id_?no|passport|ssn|nric)($|_)|身份證", DIRECT, "hkid"),
    (r"^(id|pid|mrn|hn|prn|uid)$|(^|_)(patient|pt|subject|person|member|client|case|record|episode)_?"
     r"(id|no|num|number|key)$|病人編號", DIRECT, "record_id"),
    (r"(^|_)(diagnosis|diagnoses|dx|icd|icd_?9|icd_?10|condition|disease|procedure|medication|medicine|drug|"
     r"prescription|allergy|allergies)($|_)|診斷|藥", SENSITIVE, "diagnosis"),
    (r"^(name|full_?name|patient_?name|surname|given_?names?|first_?name|last_?name|english_?name|"
     r"chinese_?name|name_(en|zh|eng|chi|chinese|english))$|姓名|名字", DIRECT, "name"),
    (r"(^|_)(phone|mobile|tel|telephone|fax|contact_?no)($|_)|電話|手提", DIRECT, "phone"),
    (r"(^|_)(email|e_mail)($|_)|電郵", DIRECT, "email"),
    (r"(^|_)(address|addr|street)($|_)|地址", DIRECT, "address"),
    (r"(^|_)(dob|date_of_birth|birth_?date|birthday|birth_?year|year_of_birth)($|_)|出生", QUASI, "dob"),
    (r"(^|_)(sex|gender)($|_)|性別", QUASI, "sex"),
    (r"(^|_)(age|age_?band|age_?group)($|_)|年齡", QUASI, "age"),
    (r"(^|_)(district|region|postcode|post_?code|zip|zip_?code|area|estate)($|_)|地區", QUASI, "district"),
    (r"(^|_)(hba1c|ldl|hdl|glucose|creatinine|egfr|cholesterol|triglycerides?|lab|result|bp|sbp|dbp|weight|"
     r"height|bmi|potassium|sodium|haemoglobin|hemoglobin|hb|wbc|platelets?|alt|ast|crp|inr)($|_)|化驗",
     SENSITIVE, "lab_value"),
    (r"(^|_)(note|notes|comment|comments|remark|remarks|free_?text|narrative|history|summary)($|_)|備註|病歷",
     SENSITIVE, "clinical_note"),
)


@dataclass(frozen=True)
class ColumnClassification:
    """The class a column was given, what was recognised in it, and how much of the sample matched.

    ``match_rate`` is the share of non-null sampled values that matched the
    rule which decided; it is 0.0 when the column's name or type decided.
    """

    cls: str
    detected: str | None = None
    match_rate: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.cls, "detected": self.detected, "match_rate": self.match_rate}


_NUMERIC_RULES = ("phone",)  # a number can be a phone; it cannot be an HKID, a name or an e-mail


def _rules_for(column_type: str) -> list[tuple[str, Callable[[str], str]]]:
    if value_kind(column_type) in ("number", "boolean"):
        return [(rule, build) for rule, build in _RULES if rule in _NUMERIC_RULES]
    return list(_RULES)


def _value_rates(con: duckdb.DuckDBPyConnection, relation: str, columns: list[tuple[str, str]],
                 sample_rows: int) -> dict[str, dict[str, float]]:
    """Per column: the share of non-null sampled values matching each rule, in one query per batch of columns.

    The sample is drawn once into a temporary table; numbers are only checked against the rules a number
    can match, which keeps a table of thousands of numeric columns quick to classify.
    """
    sample = "__ds_classify_sample"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {sample} AS SELECT * FROM {relation} "
                f"USING SAMPLE reservoir({int(sample_rows)} ROWS) REPEATABLE ({SAMPLE_SEED})")
    rates: dict[str, dict[str, float]] = {}
    try:
        for start in range(0, len(columns), COLUMNS_PER_QUERY):
            batch = columns[start:start + COLUMNS_PER_QUERY]
            aggregates, layout = [], []
            for name, column_type in batch:
                text = f"TRY_CAST({quote_ident(name)} AS VARCHAR)"
                rules = _rules_for(column_type)
                aggregates.append(f"count({text})")
                aggregates += [f"count_if({build(text)})" for _, build in rules]
                layout.append((name, [rule for rule, _ in rules]))
            row = iter(con.execute(f"SELECT {', '.join(aggregates)} FROM {sample}").fetchone())
            for name, rules in layout:
                present = next(row) or 0
                found = {rule: 0.0 for rule, _ in _RULES}
                for rule in rules:
                    count = next(row)
                    found[rule] = count / present if present else 0.0
                found["present"] = float(present)
                rates[name] = found
    finally:
        con.execute(f"DROP TABLE IF EXISTS {sample}")
    return rates


def _name_hint(column: str) -> tuple[str, str] | None:
    key = re.sub(r"[\s.\-]+", "_", column.strip().lower())
    for pattern, cls, detected in _NAME_HINTS:
        if re.search(pattern, key):
            return cls, detected
    return None


def _decide(column: str, column_type: str, rates: dict[str, float]) -> ColumnClassification:
    """Identifier values first, then an identifier's name, then value shapes, then other names and the type."""
    hint = _name_hint(column)
    if rates.get("present"):
        if rates["hkid_shape"] >= FULL_MATCH_SHARE:
            if rates["hkid"] >= rates["hkid_shape"] * VALID_HKID_SHARE:
                return ColumnClassification(DIRECT, "hkid", round(rates["hkid"], 4))
            # HKID-shaped codes with wrong check digits: record numbers, or mistyped HKIDs. Direct either way.
            detected = hint[1] if hint is not None and hint[0] == DIRECT else "hkid_format"
            return ColumnClassification(DIRECT, detected, round(rates["hkid_shape"], 4))
        best_rate, best = max((rates[rule], rule) for rule in _IDENTIFIER_RULES)
        if best_rate >= FULL_MATCH_SHARE:
            return ColumnClassification(DIRECT, best, round(best_rate, 4))
        if hint is not None and hint[0] == DIRECT:  # the name says identifier: values cannot make it less
            rate = max(rates.get(hint[1], 0.0), rates["contains"] if rates["contains"] >= CONTAINS_SHARE else 0.0)
            return ColumnClassification(DIRECT, hint[1], round(rate, 4))
        for rule, cls, detected in _SHAPE_RULES:
            if rates[rule] >= FULL_MATCH_SHARE:
                if rule == "date" and hint is not None and hint[1] == "dob":
                    detected = "dob"
                return ColumnClassification(cls, detected, round(rates[rule], 4))
        if rates["contains"] >= CONTAINS_SHARE:
            return ColumnClassification(DIRECT, "free_text_with_identifiers", round(rates["contains"], 4))
    if hint is not None:
        return ColumnClassification(hint[0], hint[1])
    if value_kind(column_type) == "date":
        return ColumnClassification(QUASI, "date")
    return ColumnClassification(OTHER)


def classify_columns(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: list[tuple[str, str]],
    sample_rows: int = SAMPLE_ROWS,
) -> dict[str, ColumnClassification]:
    """Classify every column of ``relation`` (an already-quoted table name) from a sample of its rows.

    ``columns`` are (name, DuckDB type) pairs as DESCRIBE gives them. Every
    value is read as text, so a phone column loaded as BIGINT or a STRUCT
    holding names is still recognised.
    """
    if sample_rows < 1:
        raise ValueError("sample_rows must be at least 1")
    rates = _value_rates(con, relation, columns, sample_rows) if columns else {}
    return {name: _decide(name, column_type, rates.get(name, {})) for name, column_type in columns}
