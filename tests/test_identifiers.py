"""Identifier rules: the HKID check digit in Python and in DuckDB, phones, redaction, districts."""

from __future__ import annotations

import re

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datashare import identifiers as ids

prefixes = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=2)
six_digits = st.text(alphabet="0123456789", min_size=6, max_size=6)
SPELLINGS = ("{p}{d}({c})", "{p}{d}{c}", "{p}{d} ({c})", " {p}{d}({c}) ")


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    ids.install_sql_macros(connection)
    yield connection
    connection.close()


@pytest.mark.parametrize(("hkid", "valid"), [
    ("A123456(3)", True),   # the example printed on the HKID application guide
    ("G123456(A)", True),   # check digit 10 is written A
    ("AB987654(3)", True),
    ("a123456(3)", True),
    ("A1234563", True),
    ("A123456(4)", False),
    ("A12345(3)", False),
    ("123456(3)", False),
    ("", False),
])
def test_known_hkids(hkid, valid):
    assert ids.is_valid_hkid(hkid) is valid


@settings(max_examples=200, deadline=None)
@given(prefixes, six_digits, st.sampled_from(SPELLINGS), st.booleans())
def test_hkid_check_digit_python_and_sql_agree(con, prefix, digits, spelling, lower):
    check = ids.hkid_check_digit(prefix, digits)
    text = spelling.format(p=prefix, d=digits, c=check)
    if lower:
        text = text.lower()
    assert ids.is_valid_hkid(text)
    assert ids.normalize_hkid(text) == f"{prefix}{digits}({check})"
    wrong = "0123456789A"[("0123456789A".index(check) + 1) % 11]
    bad = spelling.format(p=prefix, d=digits, c=wrong)
    assert not ids.is_valid_hkid(bad)
    got = con.execute(f"SELECT {ids.sql_is_valid_hkid('?')}, {ids.sql_is_valid_hkid('?')}", [text, bad]).fetchone()
    assert got == (True, False)


def test_sql_check_digit_on_many_rows_matches_python(con):
    rows = con.execute(
        "SELECT x FROM (SELECT chr(CAST(65 + (i % 26) AS INTEGER))"
        " || lpad(CAST((i * 7919) % 1000000 AS VARCHAR), 6, '0')"
        " || CAST(i % 10 AS VARCHAR) AS x FROM range(2000) t(i))"
    ).fetchall()
    values = [r[0] for r in rows]
    sql = con.execute(
        f"SELECT x, {ids.sql_is_valid_hkid('x')} FROM unnest(?::VARCHAR[]) t(x)", [values]
    ).fetchall()
    assert all(flag == ids.is_valid_hkid(x) for x, flag in sql)
    assert 0 < sum(flag for _, flag in sql) < len(values)


@pytest.mark.parametrize(("phone", "ok"), [
    ("+852 9123 4567", True), ("91234567", True), ("2345-6789", True), ("852 3123 4567", True),
    ("8123 4567", False), ("1234 5678", False), ("9123 456", False),
])
def test_hong_kong_phones(phone, ok):
    assert bool(ids.PHONE_FULL.match(phone)) is ok


words = st.sampled_from(["patient", "seen", "by", "Dr", "review", "stable", "家屬", "通知", "HbA1c", "7.2", "ward",
                         "on", "call", "and", "ok"])


@st.composite
def notes_with_identifiers(draw):
    prefix = draw(prefixes)
    digits = draw(six_digits)
    hkid = draw(st.sampled_from(SPELLINGS)).format(p=prefix, d=digits, c=ids.hkid_check_digit(prefix, digits)).strip()
    phone = draw(st.sampled_from(["+852 {a} {b}", "{a}{b}", "{a}-{b}"])).format(
        a=draw(st.sampled_from("235679")) + draw(st.text("0123456789", min_size=3, max_size=3)),
        b=draw(st.text("0123456789", min_size=4, max_size=4)),
    )
    email = draw(st.from_regex(r"[a-z]{1,8}\.[a-z0-9]{1,5}@[a-z]{2,8}\.(com|hk|org)", fullmatch=True))
    pieces = draw(st.lists(words, min_size=0, max_size=6)) + [hkid, phone, email]
    return " ".join(draw(st.permutations(pieces)))


@settings(max_examples=150, deadline=None)
@given(notes_with_identifiers())
def test_redaction_leaves_no_identifier_pattern(con, note):
    redacted = con.execute(f"SELECT {ids.sql_redact_identifiers('?')}", [note]).fetchone()[0]
    assert redacted == ids.redact_identifiers(note)
    assert not re.search(ids.HKID_PATTERN, redacted)
    assert not re.search(ids.EMAIL_PATTERN, redacted)
    assert not re.search(r"(?<![0-9])[2-79][0-9]{3}[ -]?[0-9]{4}(?![0-9])", redacted)


def test_redaction_of_names():
    assert ids.redact_identifiers("Pt CHAN Tai Man and 陳大文 reviewed") == "Pt [NAME] and [NAME] reviewed"


def test_districts_map_to_three_regions(con):
    assert len(ids.DISTRICTS) == 18
    assert {region for _, region in ids.DISTRICTS.values()} == {ids.HK_ISLAND, ids.KOWLOON, ids.NEW_TERRITORIES}
    got = con.execute(
        f"SELECT {ids.sql_district_region('x')} FROM (VALUES ('Wan Chai'), ('SHA TIN'), ('深水埗區'), ('Mars')) t(x)"
    ).fetchall()
    assert [r[0] for r in got] == [ids.HK_ISLAND, ids.NEW_TERRITORIES, ids.KOWLOON, None]


def test_sql_string_literal_survives_quotes(con):
    tricky = "O'Brien'); DROP TABLE x; --"
    assert con.execute(f"SELECT {ids.sql_string_literal(tricky)}").fetchone()[0] == tricky
