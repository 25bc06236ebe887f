"""Hong Kong identifier rules, usable from Python and inside DuckDB SQL.

One place for every pattern datashare recognises: HKID (with its check
digit), +852 phone numbers, e-mail addresses, English and Chinese names,
addresses and the 18 districts. The regular expressions are written in the
common subset of Python's ``re`` and RE2 (DuckDB's engine), so the same rule
gives the same answer in a test and in a query over ten million rows.
"""

from __future__ import annotations

import re

# --- HKID --------------------------------------------------------------------
# One or two letters, six digits, a check digit 0-9 or A, with or without brackets.
HKID_PATTERN = r"[A-Za-z]{1,2}[0-9]{6} ?\(?[0-9Aa]\)?"
HKID_FULL = re.compile(rf"^\s*{HKID_PATTERN}\s*$")
_HKID_PARTS = re.compile(r"^([A-Z]{1,2})([0-9]{6})([0-9A])$")
_SPACE_VALUE = 36  # a one-letter HKID is checked as if preceded by a space worth 36
_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2)

# --- Phones, e-mail, names ------------------------------------------------------
# Hong Kong numbers: 8 digits, fixed lines start with 2 or 3, mobiles with 4, 5, 6, 7 or 9.
PHONE_PATTERN = r"(?:\+?852[ -]?)?[2-79][0-9]{3}[ -]?[0-9]{4}"
PHONE_FULL = re.compile(rf"^\s*{PHONE_PATTERN}\s*$")
EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
EMAIL_FULL = re.compile(rf"^\s*{EMAIL_PATTERN}\s*$")
# "CHAN Tai Man", "AU-YEUNG Siu Ming": a surname in capitals, then given names.
NAME_EN_PATTERN = r"[A-Z]{2,}(?:-[A-Z]{2,})? [A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2}"
NAME_EN_FULL = re.compile(rf"^\s*{NAME_EN_PATTERN}\s*$")
CHINESE_SURNAMES = (
    "歐陽", "司徒", "上官", "陳", "李", "張", "黃", "何", "林", "王", "梁", "吳", "劉", "蔡", "楊", "鄭", "許",
    "謝", "郭", "曾", "羅", "鄧", "馮", "周", "朱", "胡", "葉", "潘", "蘇", "盧", "麥", "余", "伍", "譚", "徐",
    "袁", "彭", "馬", "莫", "唐", "區", "關", "方", "鄺", "簡", "廖", "江", "石", "姚", "顏", "孔", "鍾", "韋",
)
CJK_CLASS = "[一-鿿]"
NAME_ZH_PATTERN = f"(?:{'|'.join(CHINESE_SURNAMES)}){CJK_CLASS}{{1,2}}"
NAME_ZH_FULL = re.compile(rf"^\s*{NAME_ZH_PATTERN}\s*$")
ADDRESS_PATTERN = (
    r"(?i)(?:\b(?:flat|rm|room|blk|block|floor|tower|road|rd|street|st|avenue|ave|estate|building|bldg|house|"
    r"court|garden|gardens|terrace|lane)\b|[0-9]+/f\b|邨|苑|大廈|樓|室|街|道)"
)
ICD10_PATTERN = r"^[A-TV-Z][0-9][0-9AB](?:\.[0-9A-TV-Z]{1,4})?$"

# --- Districts -------------------------------------------------------------------
HK_ISLAND = "Hong Kong Island"
KOWLOON = "Kowloon"
NEW_TERRITORIES = "New Territories"
DISTRICTS: dict[str, tuple[str, str]] = {  # English name -> (Chinese name, region)
    "Central and Western": ("中西區", HK_ISLAND),
    "Wan Chai": ("灣仔區", HK_ISLAND),
    "Eastern": ("東區", HK_ISLAND),
    "Southern": ("南區", HK_ISLAND),
    "Yau Tsim Mong": ("油尖旺區", KOWLOON),
    "Sham Shui Po": ("深水埗區", KOWLOON),
    "Kowloon City": ("九龍城區", KOWLOON),
    "Wong Tai Sin": ("黃大仙區", KOWLOON),
    "Kwun Tong": ("觀塘區", KOWLOON),
    "Kwai Tsing": ("葵青區", NEW_TERRITORIES),
    "Tsuen Wan": ("荃灣區", NEW_TERRITORIES),
    "Tuen Mun": ("屯門區", NEW_TERRITORIES),
    "Yuen Long": ("元朗區", NEW_TERRITORIES),
    "North": ("北區", NEW_TERRITORIES),
    "Tai Po": ("大埔區", NEW_TERRITORIES),
    "Sha Tin": ("沙田區", NEW_TERRITORIES),
    "Sai Kung": ("西貢區", NEW_TERRITORIES),
    "Islands": ("離島區", NEW_TERRITORIES),
}
DISTRICT_REGION: dict[str, str] = {}
for _english, (_chinese, _region) in DISTRICTS.items():
    DISTRICT_REGION[_english.lower()] = _region
    DISTRICT_REGION[_chinese] = _region
    DISTRICT_REGION[_chinese.rstrip("區")] = _region


def sql_string_literal(value: str) -> str:
    """A SQL string literal for any text (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


# --- HKID check digit --------------------------------------------------------------
def _letter_value(letter: str) -> int:
    return ord(letter) - ord("A") + 10


def hkid_check_digit(prefix: str, digits: str) -> str:
    """The check digit of an HKID: weights 9..2, modulus 11, 10 written as A."""
    prefix = prefix.upper()
    if not re.fullmatch(r"[A-Z]{1,2}", prefix) or not re.fullmatch(r"[0-9]{6}", digits):
        raise ValueError("an HKID has a one- or two-letter prefix and six digits")
    values = [_SPACE_VALUE] if len(prefix) == 1 else []
    values += [_letter_value(letter) for letter in prefix] + [int(d) for d in digits]
    remainder = sum(w * v for w, v in zip(_WEIGHTS, values, strict=True)) % 11
    check = (11 - remainder) % 11
    return "A" if check == 10 else str(check)


def normalize_hkid(text: str) -> str | None:
    """``A123456(3)`` for any accepted spelling of a valid HKID, else None."""
    compact = re.sub(r"[\s()]", "", text or "").upper()
    parts = _HKID_PARTS.match(compact)
    if not parts or hkid_check_digit(parts.group(1), parts.group(2)) != parts.group(3):
        return None
    return f"{parts.group(1)}{parts.group(2)}({parts.group(3)})"


def is_valid_hkid(text: str) -> bool:
    """True for an HKID in any usual spelling whose check digit is right."""
    return bool(HKID_FULL.match(text or "")) and normalize_hkid(text) is not None


# --- SQL -----------------------------------------------------------------------------
# Temporary macros: the check digit is computed by DuckDB itself, row by row in SQL.
_MACROS = r"""
CREATE OR REPLACE TEMP MACRO ds_hkid_char_value(c) AS
    CASE WHEN c = ' ' THEN 36 WHEN c BETWEEN 'A' AND 'Z' THEN ascii(c) - 55 ELSE TRY_CAST(c AS INTEGER) END;
CREATE OR REPLACE TEMP MACRO ds_hkid_compact(x) AS upper(regexp_replace(CAST(x AS VARCHAR), '[\s()]', '', 'g'));
CREATE OR REPLACE TEMP MACRO ds_hkid_expected(m) AS
    list_transform(
        [list_sum(list_transform(range(0, 8), k -> (9 - k) * ds_hkid_char_value(substr(lpad(m, 9, ' '), k + 1, 1))))],
        total -> CASE (11 - total % 11) % 11 WHEN 10 THEN 'A' ELSE CAST((11 - total % 11) % 11 AS VARCHAR) END)[1];
CREATE OR REPLACE TEMP MACRO ds_is_valid_hkid(x) AS
    coalesce(CASE WHEN regexp_full_match(CAST(x AS VARCHAR), '\s*HKID\s*') THEN
        list_transform([ds_hkid_compact(x)],
            m -> regexp_full_match(m, '[A-Z]{1,2}[0-9]{6}[0-9A]') AND ds_hkid_expected(m) = right(m, 1))[1]
    END, false);
""".replace("HKID", HKID_PATTERN)


def install_sql_macros(con) -> None:  # noqa: ANN001 - a duckdb connection
    """Define the temporary macros the SQL builders below rely on, on this connection."""
    con.execute(_MACROS)


def sql_is_valid_hkid(expr: str) -> str:
    """SQL: true when ``expr`` is an HKID with a correct check digit (needs :func:`install_sql_macros`)."""
    return f"ds_is_valid_hkid({expr})"


# Order matters: e-mails before names (an e-mail's local part can look like a name).
REDACTIONS: tuple[tuple[str, str], ...] = (
    ("EMAIL", EMAIL_PATTERN),
    ("HKID", HKID_PATTERN),
    ("PHONE", r"(?:\+?\b852[ -]?)?\b[2-79][0-9]{3}[ -]?[0-9]{4}\b"),
    ("NAME", r"\b" + NAME_EN_PATTERN + r"\b"),
    ("NAME", NAME_ZH_PATTERN),
)


def sql_redact_identifiers(expr: str) -> str:
    """SQL: ``expr`` with HKIDs, phones, e-mails and names replaced by ``[HKID]``-style tokens."""
    result = f"CAST({expr} AS VARCHAR)"
    for token, pattern in REDACTIONS:
        result = f"regexp_replace({result}, {sql_string_literal(pattern)}, {sql_string_literal(f'[{token}]')}, 'g')"
    return result


def redact_identifiers(text: str) -> str:
    """The same redaction in Python, for tests and for checking a single value."""
    for token, pattern in REDACTIONS:
        text = re.sub(pattern, f"[{token}]", text)
    return text


def sql_district_region(expr: str) -> str:
    """SQL: the region (Hong Kong Island / Kowloon / New Territories) of a district, else NULL."""
    key = f"lower(trim(CAST({expr} AS VARCHAR)))"
    whens = " ".join(
        f"WHEN {sql_string_literal(name)} THEN {sql_string_literal(region)}" for name, region in DISTRICT_REGION.items()
    )
    return f"CASE {key} {whens} ELSE NULL END"
