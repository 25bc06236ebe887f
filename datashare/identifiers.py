"""Hong Kong identifier rules, usable from Python and inside DuckDB SQL.

One place for every pattern datashare recognises: HKID (with its check
digit), Hong Kong phone numbers, e-mail addresses, English and Chinese names,
dates of birth, addresses and the 18 districts. The regular expressions are
written in the common subset of Python's ``re`` and RE2 (DuckDB's engine):
no look-arounds, no ``\\u`` escapes (non-ASCII characters are written as
themselves), scoped flags only. Python compiles them with ``re.ASCII`` so
``\\b`` and ``\\s`` mean what they mean in RE2, and the same rule gives the same
answer in a test and in a query over ten million rows.

The ``sql_*`` builders take an already-quoted SQL expression and return a SQL
expression; they need no macro, UDF or extension, so they work on any DuckDB
connection.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Protocol

from datashare.core.sql import sql_string_literal
from datashare.errors import InputError

# Spaces and brackets as they occur in real extracts, including full-width ones typed with a Chinese IME.
_SPACE = " \t\u00a0\u3000"
_OPEN, _CLOSE = "(\uff08", ")\uff09"
_GAP = " \u3000"  # the one space sometimes typed before a bracketed check digit

# --- HKID --------------------------------------------------------------------------------------------
# One or two letters, six digits, a check digit 0-9 or A, with or without brackets: A123456(3), ab9876543.
HKID_PATTERN = rf"[A-Za-z]{{1,2}}[0-9]{{6}}[{_GAP}]?[{_OPEN}]?[0-9Aa][{_CLOSE}]?"
# The whole value is one HKID; groups: prefix, six digits, check digit.
HKID_FULL_PATTERN = rf"[{_SPACE}]*([A-Za-z]{{1,2}})([0-9]{{6}})[{_GAP}]?[{_OPEN}]?([0-9Aa])[{_CLOSE}]?[{_SPACE}]*"
_SPACE_VALUE = 36  # a one-letter HKID is checked as if a space worth 36 came before the letter
_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2)
# Check character indexed by (weighted sum mod 11): 11 - r, where 11 is written 0 and 10 is written A.
_CHECK_BY_REMAINDER = "0A987654321"

# --- Phones, e-mail, names ------------------------------------------------------------------------------
# Eight digits: fixed lines start with 2 or 3; mobiles with 4, 5, 6, 7 or 9 (8 is for special services).
PHONE_PATTERN = r"(?:(?:\+|00)?852[ -]?|\(\+?852\) ?)?[2-79][0-9]{3}[ -]?[0-9]{4}"
EMAIL_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
# "CHAN Tai Man", "AU-YEUNG Siu Ming", "CHAN, Tai-man": a surname in capitals, then given names.
NAME_EN_PATTERN = r"[A-Z]{2,}(?:[ -][A-Z]{2,})?,? [A-Z][a-z]+(?: [A-Z][a-z]+|-[A-Za-z][a-z]+){0,2}"
# "CHAN TAI MAN", "CHAN, TAI-MAN": all capitals, as clinical systems print them; only known surnames, so
# capitalised abbreviations ("HT DM", "ICU") are not taken for names. Surnames that are common English
# words in capitals ("TO", "SO", "MA") are left out.
HK_SURNAMES_EN = (
    "AU", "AU-YEUNG", "AUYEUNG", "CHAN", "CHAU", "CHENG", "CHEUNG", "CHIU", "CHOI", "CHOW", "CHU", "CHUI", "CHUNG",
    "FAN", "FONG", "FUNG", "HO", "HON", "HUI", "HUNG", "IP", "KAM", "KO", "KONG", "KWAN", "KWOK", "KWONG", "LAI",
    "LAM", "LAU", "LAW", "LEE", "LEUNG", "LI", "LIU", "LO", "LUI", "LUK", "MAK", "MAN", "MOK", "NG", "PANG", "POON",
    "SHEK", "SIU", "SZE", "SZETO", "TAM", "TANG", "TSANG", "TSE", "TSO", "TSUI", "WAN", "WONG", "WOO", "WU",
    "YAU", "YEUNG", "YIP", "YU", "YUEN", "YUNG",
)
NAME_EN_CAPS_PATTERN = (
    r"(?:" + "|".join(HK_SURNAMES_EN) + r")(?:,? [A-Z]{2,}(?:-[A-Z]{2,})?){1,2}"
)
# "Dr LEE", "Mrs. WONG": a title followed by a surname in capitals.
TITLED_SURNAME_PATTERN = r"\b(Mr|Mrs|Ms|Miss|Mdm|Madam|Dr|Prof)\.? [A-Z]{2,}(?:-[A-Z]{2,})?\b"
CHINESE_SURNAMES = (
    "歐陽", "司徒", "上官", "諸葛", "司馬", "陳", "李", "張", "黃", "何", "林", "王", "梁", "吳", "劉", "蔡", "楊",
    "鄭", "許", "謝", "郭", "曾", "羅", "鄧", "馮", "周", "朱", "胡", "葉", "潘", "蘇", "盧", "麥", "余", "伍", "譚",
    "徐", "袁", "彭", "馬", "莫", "唐", "區", "關", "方", "鄺", "簡", "廖", "江", "石", "姚", "顏", "孔", "鍾", "韋",
    "趙", "孫", "高", "杜", "施", "湯", "文", "范", "容", "雷", "賴", "龍", "岑", "戴", "崔", "丁", "邱", "黎", "侯",
)
# CJK ideographs: Extension A, the basic block, and Extensions B-F (where many HKSCS characters live).
CJK_CLASS = "[\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0002ebef]"
NAME_ZH_PATTERN = f"(?:{'|'.join(CHINESE_SURNAMES)}){CJK_CLASS}{{1,2}}"

# --- Dates, sex, addresses, diagnoses -----------------------------------------------------------------------
_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
_TITLE_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_DAY = r"(?:0?[1-9]|[12][0-9]|3[01])"
# 1936-12-04, 4/12/1936, 4 Dec 1936 (4th December, 4-DEC-1936), Dec 4, 1936 (the month in title case: "primary 4,
# 2020" holds no date), 1936年12月4日 (號, spaces between).
DATE_PATTERN = (
    rf"(?:(?:18|19|20)[0-9]{{2}}[-/.](?:0?[1-9]|1[0-2])[-/.]{_DAY}(?:[ T][0-9:.]{{5,15}})?"
    rf"|{_DAY}[-/.](?:0?[1-9]|1[0-2])[-/.](?:18|19|20)[0-9]{{2}}"
    rf"|{_DAY}(?i:st|nd|rd|th)?[- ](?i:(?:{_MONTHS})[a-z]*)[- ,]+(?:18|19|20)[0-9]{{2}}"
    rf"|(?:{_TITLE_MONTHS})[a-z]*\.? {_DAY}(?i:st|nd|rd|th)?,? (?:18|19|20)[0-9]{{2}}"
    r"|(?:18|19|20)[0-9]{2} ?年 ?[0-9]{1,2} ?月 ?[0-9]{1,2} ?[日號])"
)
SEX_PATTERN = r"(?i:m|f|male|female|u|unknown|x|男|女)"
ADDRESS_PATTERN = (
    r"(?i:\b(?:flat|rm|room|unit|blk|block|floor|tower|road|rd|street|st|avenue|ave|estate|building|bldg|house|"
    r"court|garden|gardens|terrace|lane|path|chuen|village|mansion|centre|plaza)\b|\b[0-9]+/f\b|\bg/f\b)"
    r"|邨|苑|大廈|樓|室|街|道|號|村"
)
ICD10_PATTERN = r"[A-TV-Z][0-9][0-9AB](?:\.?[0-9A-TV-Z]{1,4})?"

# --- Districts ----------------------------------------------------------------------------------------------
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
# Canonical English and Chinese names -> region. Use district_region() for a forgiving lookup.
DISTRICT_REGION: dict[str, str] = {
    **{english: region for english, (_, region) in DISTRICTS.items()},
    **{chinese: region for chinese, region in DISTRICTS.values()},
}
# Spellings seen in extracts, lower case, after " district" is dropped.
_DISTRICT_ALIASES: dict[str, str] = {
    "central & western": "Central and Western", "central/western": "Central and Western",
    "central western": "Central and Western", "central": "Central and Western", "wanchai": "Wan Chai",
    "shamshuipo": "Sham Shui Po", "kowloon city": "Kowloon City", "shatin": "Sha Tin", "taipo": "Tai Po",
    "saikung": "Sai Kung", "tsuenwan": "Tsuen Wan", "tuenmun": "Tuen Mun", "yuenlong": "Yuen Long",
    "kwuntong": "Kwun Tong", "outlying islands": "Islands", "northern": "North",
}
_DISTRICT_KEYS: dict[str, str] = {}  # lookup key -> region
for _english, (_chinese, _region) in DISTRICTS.items():
    _DISTRICT_KEYS[_english.lower()] = _region
    _DISTRICT_KEYS[_chinese] = _region
    if len(_chinese) > 2:  # 沙田 for 沙田區, but not 東 for 東區
        _DISTRICT_KEYS[_chinese.removesuffix("區")] = _region
for _alias, _english in _DISTRICT_ALIASES.items():
    _DISTRICT_KEYS[_alias] = DISTRICTS[_english][1]
DISTRICT_PATTERN = "(?i:" + "|".join(
    re.escape(key).replace(r"\ ", " ") for key in sorted(_DISTRICT_KEYS, key=len, reverse=True)
) + ")(?i: district)?"


# --- HKID check digit --------------------------------------------------------------------------------------
_HKID_FULL = re.compile(HKID_FULL_PATTERN, re.ASCII)


def hkid_check_digit(prefix: str, digits: str) -> str:
    """The check digit of an HKID: weights 9..2 over [letter-or-space, letter, six digits], modulus 11.

    Letters count A=10..Z=35; a one-letter prefix is preceded by a space worth 36.
    The check is 11 minus the remainder, with 10 written A and 11 written 0.
    """
    prefix = prefix.upper()
    if not re.fullmatch(r"[A-Z]{1,2}", prefix) or not re.fullmatch(r"[0-9]{6}", digits):
        raise ValueError("an HKID has a one- or two-letter prefix and six digits")
    values = [_SPACE_VALUE] if len(prefix) == 1 else []
    values += [ord(letter) - ord("A") + 10 for letter in prefix] + [int(d) for d in digits]
    return _CHECK_BY_REMAINDER[sum(w * v for w, v in zip(_WEIGHTS, values, strict=True)) % 11]


def normalize_hkid(text: str | None) -> str | None:
    """``A123456(3)`` for any accepted spelling of a valid HKID, else None."""
    parts = _HKID_FULL.fullmatch(text or "")
    if not parts:
        return None
    prefix, digits, check = parts.group(1).upper(), parts.group(2), parts.group(3).upper()
    if hkid_check_digit(prefix, digits) != check:
        return None
    return f"{prefix}{digits}({check})"


def is_valid_hkid(text: str | None) -> bool:
    """True for an HKID in any usual spelling (brackets or not, any case, stray spaces) whose check digit is right.

    A reference implementation in Python: datashare itself checks HKIDs in SQL (:func:`sql_is_valid_hkid`); tests
    and benchmarks hold the SQL to this."""
    return normalize_hkid(text) is not None


class TextDialect(Protocol):
    """What the SQL builders need of an engine's dialect (``datashare.policy.dialects`` has DuckDB's and Spark's)."""

    def literal(self, text: str) -> str: ...
    def text(self, expr: str) -> str: ...
    def length(self, expr: str) -> str: ...
    def byte_length(self, expr: str) -> str: ...
    def lower(self, expr: str) -> str: ...
    def contains(self, expr: str, needle: str) -> str: ...
    def regexp_replace(self, expr: str, pattern: str, replacement: str, *, every: bool = True) -> str: ...
    def regexp_matches(self, expr: str, pattern: str) -> str: ...
    def regexp_full_match(self, expr: str, pattern: str) -> str: ...
    def regexp_extract(self, expr: str, pattern: str) -> str: ...
    def split_regex(self, expr: str, pattern: str) -> str: ...
    def upper(self, expr: str) -> str: ...
    def caseless(self, char: str) -> str: ...
    def all_but_last(self, expr: str) -> str: ...
    def split(self, expr: str, needle: str) -> str: ...
    def spaced_characters(self, expr: str) -> str: ...
    def join(self, items: str, sep: str) -> str: ...
    def array(self, items: list[str]) -> str: ...
    def item(self, items: str, k: int | str) -> str: ...
    def size(self, items: str) -> str: ...
    def array_contains(self, items: str, value: str) -> str: ...
    def struct(self, fields: dict[str, str]) -> str: ...
    def let(self, value: str, var: str, body: str) -> str: ...
    def transform_indexed(self, items: str, var: str, index: str, body: object) -> str: ...
    def raise_error(self, message: str) -> str: ...


# --- SQL builders ----------------------------------------------------------------------------------------------
def sql_hkid_check_digit(prefix: str, digits: str) -> str:
    """SQL: the check digit (a one-character VARCHAR) for SQL expressions of the prefix and the six digits."""
    padded = f"lpad(upper({prefix}), 2, ' ')"
    letters = [f"substr({padded}, {k}, 1)" for k in (1, 2)]
    terms = [f"{w} * (CASE WHEN {ch} = ' ' THEN {_SPACE_VALUE} ELSE ascii({ch}) - 55 END)"
             for w, ch in zip(_WEIGHTS[:2], letters, strict=True)]
    terms += [f"{w} * (ascii(substr({digits}, {k + 1}, 1)) - 48)" for k, w in enumerate(_WEIGHTS[2:])]
    checks = "[" + ", ".join(sql_string_literal(c) for c in _CHECK_BY_REMAINDER) + "]"
    return f"{checks}[1 + ({' + '.join(terms)}) % 11]"


def sql_is_valid_hkid(expr: str) -> str:
    """SQL: true when ``expr`` is an HKID in an accepted spelling with a correct check digit, else false.

    The check digit is computed by DuckDB itself; the value is parsed once and
    bound to a lambda so the expression stays cheap on millions of rows.
    """
    pattern = sql_string_literal(f"^{HKID_FULL_PATTERN}$")
    parts = f"regexp_extract(TRY_CAST({expr} AS VARCHAR), {pattern}, ['p', 'd', 'c'])"
    check = sql_hkid_check_digit("hkid_parts.p", "hkid_parts.d")
    return (f"coalesce(list_transform([{parts}], lambda hkid_parts: "
            f"hkid_parts.p <> '' AND {check} = upper(hkid_parts.c))[1], false)")


# Free text is written less carefully than a field, and what a redaction misses leaks: inside text an HKID
# may have a space after its letters or a hyphen before the check digit (A 123456-3), a phone dots
# (9123.4567), and either may be typed in full-width characters (Ａ１２３４５６（３）), which are folded to
# ASCII first.
# A space after the letters is taken only with a bracketed or hyphenated check digit: "to 91234567" is a phone.
HKID_IN_TEXT_PATTERN = (rf"[A-Za-z]{{1,2}}(?:[0-9]{{6}}(?:[{_GAP}]?[{_OPEN}]?[0-9Aa][{_CLOSE}]?|-[0-9Aa])"
                        rf"|[{_GAP}][0-9]{{6}}(?:[{_GAP}]?[{_OPEN}][0-9Aa][{_CLOSE}]|-[0-9Aa]))")
PHONE_IN_TEXT_PATTERN = r"(?:(?:\+|00)?852[ .-]?|\(\+?852\) ?)?[2-79][0-9]{3}[ .-]?[0-9]{4}"
_FULL_WIDTH = "".join(chr(code) for code in range(0xFF01, 0xFF5F)) + "\u3000"
_HALF_WIDTH = "".join(chr(code) for code in range(0x21, 0x7F)) + " "
_FOLD_WIDTH = str.maketrans(_FULL_WIDTH, _HALF_WIDTH)
_FULL_WIDTH_CLASS = "[\uFF01-\uFF5E\u3000]"

# Replacement order matters: e-mails first (a local part can hold digits or a name), then HKIDs, then phones.
# Phones are bounded by non-digits on both sides (RE2 has no look-around, so the neighbours are captured and
# put back); a match consumes the character after it, so the phone rule runs twice to catch adjacent numbers.
# Names in capitals run after mixed-case ones: in one alternation, a capitals match starting earlier would take
# the surname a mixed-case name needs ("HO, CHAN Tai Man"). Chinese names share a pass with the mixed-case
# ones (each pass is a scan of every text): they match only ideographs, the others only ASCII, so they never
# compete. A title keeps its word, so it comes last.
_PHONE_IN_TEXT = rf"(^|[^0-9])(?:{PHONE_IN_TEXT_PATTERN})([^0-9]|$)"


class _Redaction(NamedTuple):
    kind: str  # the token's word: [EMAIL]
    pattern: str
    replacement: str  # with {token}
    needs: tuple[str, ...] = ()  # a text holding none of these (before folding) cannot match: the pass is skipped


_REDACTIONS: tuple[_Redaction, ...] = (
    _Redaction("EMAIL", EMAIL_PATTERN, "{token}", needs=("@", "\uff20")),  # a search for "@" is far cheaper
    _Redaction("HKID", HKID_IN_TEXT_PATTERN, "{token}"),
    _Redaction("PHONE", _PHONE_IN_TEXT, r"\1{token}\2"),
    _Redaction("PHONE", _PHONE_IN_TEXT, r"\1{token}\2"),
    _Redaction("NAME", rf"\b(?:{NAME_EN_PATTERN})\b|{NAME_ZH_PATTERN}", "{token}"),
    _Redaction("NAME", rf"\b(?:{NAME_EN_CAPS_PATTERN})\b", "{token}"),
    _Redaction("NAME", TITLED_SURNAME_PATTERN, r"\1 {token}"),
)
# One regex that finds any identifier the redaction would replace (for classification).
IDENTIFIER_IN_TEXT_PATTERN = "|".join(dict.fromkeys(f"(?:{r.pattern})" for r in _REDACTIONS))
_MIRROR = str.maketrans("[<{(", "]>})")
_TOKEN_PREFIX = re.compile(r"[\[<{(#*~|:=!]{1,4}")


def _token(kind: str, replacement_prefix: str) -> str:
    if not _TOKEN_PREFIX.fullmatch(replacement_prefix):
        raise InputError("replacement_prefix must be 1-4 of the characters [ < { ( # * ~ | : = !")
    return f"{replacement_prefix}{kind}{replacement_prefix[::-1].translate(_MIRROR)}"


def sql_redact_identifiers(expr: str, d: TextDialect, replacement_prefix: str = "[") -> str:
    """SQL: ``expr`` (a column, as it is read more than once) as text with HKIDs, phones, e-mails and names
    replaced by tokens such as ``[HKID]``, written by the dialect ``d``.

    Tokens hold no digits, ``@`` or lower-case letters, so a replacement can
    never form a new HKID, phone or e-mail with the text around it.
    """
    text = d.text(expr)
    # translate() costs far more than a scan, so it runs only on the rare text that holds full-width characters;
    # a text whose byte length equals its character length is ASCII and is not even scanned.
    fold = f"translate({text}, {d.literal(_FULL_WIDTH)}, {d.literal(_HALF_WIDTH)})"
    result = (f"CASE WHEN {d.byte_length(text)} = {d.length(text)} THEN {text} "
              f"WHEN {d.regexp_matches(text, _FULL_WIDTH_CLASS)} THEN {fold} ELSE {text} END")
    for redaction in _REDACTIONS:
        token = redaction.replacement.format(token=_token(redaction.kind, replacement_prefix))
        step = d.regexp_replace(result, redaction.pattern, token)
        if redaction.needs:
            found = " OR ".join(d.contains(text, d.literal(needed)) for needed in redaction.needs)
            step = f"CASE WHEN {found} THEN {step} ELSE {result} END"
        result = step
    return result


def redact_identifiers(text: str, replacement_prefix: str = "[") -> str:
    """The same redaction in Python, for checking a single value.

    A reference implementation: datashare redacts in SQL (:func:`sql_redact_identifiers`); tests hold the SQL to
    this, and the benchmarks use it as the baseline."""
    text = text.translate(_FOLD_WIDTH)
    for redaction in _REDACTIONS:
        token = redaction.replacement.format(token=_token(redaction.kind, replacement_prefix))
        text = re.sub(redaction.pattern, token, text, flags=re.ASCII)
    return text


# --- Districts -------------------------------------------------------------------------------------------
def _district_key(name: str) -> str:
    key = re.sub(r"\s+", " ", name.strip().lower())
    return key.removesuffix(" district")


def district_region(name: str | None) -> str | None:
    """The region of a district written in English (any case, with or without "District") or Chinese.

    A reference implementation: datashare maps districts in SQL (:func:`sql_district_region`); tests hold the SQL
    to this, and the benchmarks use it as the baseline."""
    return _DISTRICT_KEYS.get(_district_key(name)) if name else None


def sql_district_region(expr: str, d: TextDialect) -> str:
    """SQL: the region (Hong Kong Island / Kowloon / New Territories) of a district, else NULL."""
    spaced = d.regexp_replace(d.lower(f"trim({d.text(expr)})"), "\\s+", " ")
    key = d.regexp_replace(spaced, " district$", "", every=False)
    whens = " ".join(f"WHEN {d.literal(name)} THEN {d.literal(region)}" for name, region in _DISTRICT_KEYS.items())
    return f"CASE {key} {whens} ELSE NULL END"
