"""Identifier rules: the HKID check digit in Python and in DuckDB, phones, redaction, districts."""

from __future__ import annotations

import re

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datashare import identifiers as ids
from datashare.errors import InputError
from datashare.policy.dialects import DUCKDB

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
prefixes = st.text(alphabet=LETTERS, min_size=1, max_size=2)
six_digits = st.text(alphabet="0123456789", min_size=6, max_size=6)
# How HKIDs are written in real extracts: brackets or not, a space, full-width brackets, padding.
SPELLINGS = ("{p}{d}({c})", "{p}{d}{c}", "{p}{d} ({c})", " {p}{d}({c}) ", "{p}{d}（{c}）", "\u3000{p}{d}({c})\t")
# A phone is a run of 8 digits (HK rules) not inside a longer run of digits.
PHONE_LEFT_IN_TEXT = re.compile(r"(?<![0-9])[2-79][0-9]{3}[ -]?[0-9]{4}(?![0-9])")
QUICK = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def sql_batch(con, expression_of_x: str, values: list) -> list:
    """Evaluate an expression of x for many values in ONE query, keeping their order."""
    rows = con.execute(
        f"SELECT {expression_of_x} FROM unnest(?::VARCHAR[]) WITH ORDINALITY AS t(x, n) ORDER BY n", [values]
    ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize(("hkid", "valid"), [
    ("A123456(3)", True),    # the worked example in published descriptions of the algorithm
    ("G123456(A)", True),    # check value 10 is written A
    ("L555555(0)", True),    # check value 11 is written 0
    ("C123456(9)", True),
    ("E364912(5)", True),
    ("D288754(2)", True),
    ("AB987654(3)", True),   # two-letter prefix: no space value
    ("AB123456(9)", True),
    ("a123456(3)", True),
    ("A1234563", True),
    ("A123456 (3)", True),
    ("A123456（3）", True),
    ("AB987654(2)", False),
    ("A123456(4)", False),
    ("A12345(3)", False),
    ("123456(3)", False),
    ("ABC123456(3)", False),
    ("A1(2)3456(3)", False),
    ("A123456(3) x", False),
    ("", False),
    (None, False),
])
def test_known_hkids_in_python_and_sql(con, hkid, valid):
    assert ids.is_valid_hkid(hkid) is valid
    assert (ids.normalize_hkid(hkid) is not None) is valid
    assert con.execute(f"SELECT {ids.sql_is_valid_hkid('?')}", [hkid]).fetchone()[0] is valid


def test_check_digit_arithmetic():
    # 36*9 + 10*8 + 1*7 + 2*6 + 3*5 + 4*4 + 5*3 + 6*2 = 481; 481 mod 11 = 8; 11 - 8 = 3
    assert ids.hkid_check_digit("A", "123456") == "3"
    assert ids.hkid_check_digit("ab", "987654") == "3"
    with pytest.raises(ValueError):
        ids.hkid_check_digit("A1", "123456")
    assert ids.normalize_hkid(" a123456 (3) ") == "A123456(3)"


@st.composite
def written_hkids(draw):
    prefix, digits = draw(prefixes), draw(six_digits)
    check = ids.hkid_check_digit(prefix, digits)
    wrong = draw(st.sampled_from([c for c in "0123456789A" if c != check]))
    spelling = draw(st.sampled_from(SPELLINGS))
    lower = draw(st.booleans())
    good = spelling.format(p=prefix, d=digits, c=check)
    bad = spelling.format(p=prefix, d=digits, c=wrong)
    return (good.lower(), bad.lower()) if lower else (good, bad), f"{prefix}{digits}({check})"


@settings(max_examples=60, deadline=None)
@given(st.lists(written_hkids(), min_size=1, max_size=40))
def test_generated_hkids_python_and_sql_agree(con, cases):
    goods = [good for (good, _), _ in cases]
    bads = [bad for (_, bad), _ in cases]
    for ((good, bad), normal) in cases:
        assert ids.is_valid_hkid(good) and ids.normalize_hkid(good) == normal
        assert not ids.is_valid_hkid(bad)
    sql = sql_batch(con, ids.sql_is_valid_hkid("x"), goods + bads)
    assert sql == [True] * len(goods) + [False] * len(bads)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.text(alphabet="ABXZab0123456789()（） \u3000\t", max_size=14), min_size=1, max_size=60))
def test_any_text_gets_the_same_answer_in_python_and_sql(con, texts):
    assert sql_batch(con, ids.sql_is_valid_hkid("x"), texts) == [ids.is_valid_hkid(t) for t in texts]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(prefixes, six_digits), min_size=1, max_size=50))
def test_sql_check_digit_matches_python(con, parts):
    got = sql_batch(con, ids.sql_hkid_check_digit("split_part(x, '/', 1)", "split_part(x, '/', 2)"),
                    [f"{p}/{d}" for p, d in parts])
    assert got == [ids.hkid_check_digit(p, d) for p, d in parts]


@pytest.mark.parametrize(("phone", "ok"), [
    ("+852 9123 4567", True), ("91234567", True), ("2345-6789", True), ("852 3123 4567", True),
    ("(852) 6123 4567", True), ("00852 51234567", True), ("4612 3456", True),
    ("8123 4567", False), ("1234 5678", False), ("9123 456", False), ("912345678", False),
])
def test_hong_kong_phones_in_python_and_sql(con, phone, ok):
    assert bool(re.fullmatch(ids.PHONE_PATTERN, phone, re.ASCII)) is ok
    assert con.execute("SELECT regexp_full_match(?, ?)", [phone, ids.PHONE_PATTERN]).fetchone()[0] is ok


@pytest.mark.parametrize("pattern", [
    ids.HKID_PATTERN, ids.HKID_FULL_PATTERN, ids.PHONE_PATTERN, ids.EMAIL_PATTERN, ids.NAME_EN_PATTERN,
    ids.NAME_EN_CAPS_PATTERN, ids.NAME_ZH_PATTERN, ids.TITLED_SURNAME_PATTERN, ids.DATE_PATTERN, ids.SEX_PATTERN,
    ids.ADDRESS_PATTERN, ids.ICD10_PATTERN, ids.DISTRICT_PATTERN, ids.IDENTIFIER_IN_TEXT_PATTERN,
])
def test_every_pattern_compiles_in_both_engines(con, pattern):
    re.compile(pattern, re.ASCII)
    assert con.execute("SELECT regexp_matches('', ?)", [pattern]).fetchone()[0] in (True, False)


@pytest.mark.parametrize(("value", "pattern", "ok"), [
    ("CHAN Tai Man", ids.NAME_EN_PATTERN, True), ("AU-YEUNG Siu Ming", ids.NAME_EN_PATTERN, True),
    ("CHAN, Tai-man", ids.NAME_EN_PATTERN, True), ("Chan Tai Man", ids.NAME_EN_PATTERN, False),
    ("CHAN TAI MAN", ids.NAME_EN_CAPS_PATTERN, True), ("HT DM", ids.NAME_EN_CAPS_PATTERN, False),
    ("陳大文", ids.NAME_ZH_PATTERN, True), ("歐陽小明", ids.NAME_ZH_PATTERN, True),
    ("家屬", ids.NAME_ZH_PATTERN, False),
    ("1985-03-02", ids.DATE_PATTERN, True), ("2/3/1985", ids.DATE_PATTERN, True),
    ("02-MARCH-1985", ids.DATE_PATTERN, True), ("1985年3月2日", ids.DATE_PATTERN, True),
    ("E11.9", ids.DATE_PATTERN, False),
    ("E11.9", ids.ICD10_PATTERN, True), ("I10", ids.ICD10_PATTERN, True), ("U07.1", ids.ICD10_PATTERN, False),
    ("sha tin district", ids.DISTRICT_PATTERN, True), ("觀塘區", ids.DISTRICT_PATTERN, True),
    ("Shenzhen", ids.DISTRICT_PATTERN, False), ("Female", ids.SEX_PATTERN, True), ("女", ids.SEX_PATTERN, True),
])
def test_value_patterns_agree_in_both_engines(con, value, pattern, ok):
    assert bool(re.fullmatch(pattern, value, re.ASCII)) is ok
    assert con.execute("SELECT regexp_full_match(?, ?)", [value, pattern]).fetchone()[0] is ok


prose = st.sampled_from(["patient", "seen", "by", "review", "stable", "家屬", "通知", "HbA1c", "7.2", "ward", "on",
                         "call", "and", "ok", "Tel:", "(", ")", ",", "-", "x", "Ref", "2024-01-15", "BP 130/80"])
glue = st.sampled_from([" ", "", ", ", "; ", "(", ":", "/", "\n", "Tel"])


FULL_WIDTH = str.maketrans("0123456789()+-", "０１２３４５６７８９（）＋－")


@st.composite
def notes_with_identifiers(draw):
    (hkid, _), _ = draw(written_hkids())
    if draw(st.booleans()):  # the looser ways people type an HKID into free text
        hkid = draw(st.sampled_from(["{p} {d}({c})", "{p}{d}-{c}", "{p} {d}-{c}", "{p} {d} ({c})"])).format(
            p=draw(prefixes), d=draw(six_digits), c=draw(st.sampled_from("0123456789A")))
    phone = draw(st.sampled_from(["+852 {a} {b}", "{a}{b}", "{a}-{b}", "(852) {a}{b}", "852-{a}-{b}", "{a}.{b}"])
                 ).format(a=draw(st.sampled_from("2345679")) + draw(st.text("0123456789", min_size=3, max_size=3)),
                          b=draw(st.text("0123456789", min_size=4, max_size=4)))
    if draw(st.booleans()):
        hkid, phone = hkid.translate(FULL_WIDTH), phone.translate(FULL_WIDTH)
    email = draw(st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9]{1,5})?@[a-z]{2,8}\.(com|hk|com\.hk)", fullmatch=True))
    pieces = draw(st.lists(prose, max_size=6)) + [hkid.strip(), phone, email] * draw(st.integers(1, 2))
    pieces = draw(st.permutations(pieces))
    text = ""
    for piece in pieces:
        joint = draw(glue)
        if not joint and text[-1:].isdigit() and piece[:1].isdigit():
            joint = " "  # digits run together are one longer number, not a phone
        text += joint + piece
    return text + draw(glue)


def leaks(text: str) -> list[str]:
    """An independent look for what must not survive: six digits after one or two letters, four and four
    digits with at most one separator, an e-mail address; after folding full-width characters (NFKC)."""
    import unicodedata

    plain = unicodedata.normalize("NFKC", text)
    return (re.findall(r"[A-Za-z]{1,2}\s?\d{6}", plain) + re.findall(r"[\w.%+-]+@[\w.-]+\.\w+", plain)
            + re.findall(r"(?<!\d)\d{4}[ .\-]?\d{4}(?!\d)", plain))


@settings(max_examples=40, deadline=None)
@given(st.lists(notes_with_identifiers(), min_size=1, max_size=25))
def test_redaction_leaves_no_hkid_phone_or_email(con, notes):
    redacted = sql_batch(con, ids.sql_redact_identifiers("x", DUCKDB), notes)
    for note, out in zip(notes, redacted, strict=True):
        assert out == ids.redact_identifiers(note)
        assert not re.search(ids.HKID_PATTERN, out), out
        assert not re.search(ids.EMAIL_PATTERN, out), out
        assert not PHONE_LEFT_IN_TEXT.search(out), out
        assert not leaks(out), (note, out)
        assert "[EMAIL]" in out


def test_redaction_of_names_and_adjacent_phones(con):
    note = ("Seen by Dr LEE. Pt CHAN Tai Man (A123456(3)) called from 9123 4567; alt 91234567 92345678. "
            "陳大文 aka CHAN, TAI MAN; HT DM stable.")
    expected = ("Seen by Dr [NAME]. Pt [NAME] ([HKID]) called from [PHONE]; alt [PHONE] [PHONE]. "
                "[NAME] aka [NAME]; HT DM stable.")
    assert ids.redact_identifiers(note) == expected
    assert con.execute(f"SELECT {ids.sql_redact_identifiers('$1', DUCKDB)}", [note]).fetchone()[0] == expected
    assert con.execute(f"SELECT {ids.sql_redact_identifiers('NULL', DUCKDB)}").fetchone()[0] is None


def test_redaction_tokens_can_be_chosen_but_not_abused(con):
    assert ids.redact_identifiers("call 91234567", replacement_prefix="<<") == "call <<PHONE>>"
    sql = ids.sql_redact_identifiers("$1", DUCKDB, replacement_prefix="{")
    assert con.execute(f"SELECT {sql}", ["x@y.com"]).fetchone()[0] == "{EMAIL}"
    for bad in ("", "9", "\\1", "'", "[[[[[", "a"):
        with pytest.raises(InputError):
            ids.sql_redact_identifiers("x", DUCKDB, replacement_prefix=bad)


def test_districts_map_to_three_regions_in_python_and_sql(con):
    assert len(ids.DISTRICTS) == 18
    assert {region for _, region in ids.DISTRICTS.values()} == {ids.HK_ISLAND, ids.KOWLOON, ids.NEW_TERRITORIES}
    names = [*ids.DISTRICTS, *(chinese for chinese, _ in ids.DISTRICTS.values())]
    spellings = names + ["wan chai", "SHA TIN", "Sha Tin District", "深水埗", "Central & Western", " Islands ",
                         "Mars", "東", ""]
    expected = [ids.DISTRICT_REGION[name] for name in names] + [
        ids.HK_ISLAND, ids.NEW_TERRITORIES, ids.NEW_TERRITORIES, ids.KOWLOON, ids.HK_ISLAND, ids.NEW_TERRITORIES,
        None, None, None]
    assert [ids.district_region(s) for s in spellings] == expected
    assert sql_batch(con, ids.sql_district_region("x", DUCKDB), spellings) == expected
    assert ids.DISTRICT_REGION["Kwun Tong"] == ids.KOWLOON and ids.DISTRICT_REGION["離島區"] == ids.NEW_TERRITORIES


@QUICK
@given(st.text(max_size=40).filter(lambda s: "\x00" not in s))
def test_sql_string_literal_round_trips_any_text(con, text):
    assert con.execute(f"SELECT {ids.sql_string_literal(text)}").fetchone()[0] == text


def test_sql_string_literal_refuses_nul():
    with pytest.raises(InputError):
        ids.sql_string_literal("a\x00b")


@pytest.mark.parametrize(("note", "expected"), [
    # a name in capitals that starts earlier must not take the surname a mixed-case name needs
    ("Pt LAU MAN, CHAN Mei Ling", "Pt [NAME], [NAME]"),
    ("HO, CHAN Tai Man", "HO, [NAME]"),
    ("NOK: WONG, CHEUNG Mei Ling", "NOK: WONG, [NAME]"),
    ("陳大文 and CHAN Tai Man; Dr LEE saw 李小明", "[NAME] and [NAME]; Dr [NAME] saw [NAME]"),
])
def test_name_passes_keep_their_order(con, note, expected):
    assert ids.redact_identifiers(note) == expected
    assert con.execute(f"SELECT {ids.sql_redact_identifiers('$1', DUCKDB)}", [note]).fetchone()[0] == expected
