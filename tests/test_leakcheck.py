"""The leak check: the row's own values found in compacted output, whatever the redaction did."""

from __future__ import annotations

import duckdb
import pytest

from datashare.leakcheck import sql_leak_checks
from datashare.policy.dialects import DUCKDB
from datashare.redaction import OwnIdentifier, own_parts

from .test_redaction import COLUMNS, OWN, ROW


@pytest.fixture
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def test_the_leak_check_finds_what_a_redaction_missed(con):
    checks = sql_leak_checks("out", OWN, d=DUCKDB)
    columns = ", ".join(f"? AS {c}" for c in COLUMNS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE l AS SELECT *, ? AS out FROM (SELECT {columns})",
                ["x", *[ROW[c] for c in COLUMNS]])  # the outer parameter comes first
    found = {kind: con.execute(f"SELECT {sql} FROM l").fetchone()[0] for kind, sql in checks.items()}
    assert not any(found.values())
    for text, kind in [("A 1 2 3 4 5 6 (3)", "HKID"), ("chan tai-man", "NAME"), ("call 9-1-2-3-4-5-6-7", "PHONE"),
                       ("Chan", "NAME"), ("大 文", "NAME"), ("x@y.com", "EMAIL"),
                       ("ref 0000123", "ID"), ("C\u200bhan", "NAME"), ("tel \u0669\u0661\u0662\u0663 4567", "PHONE")]:
        con.execute("UPDATE l SET out = ?", [text])
        assert con.execute(f"SELECT {checks[kind]} FROM l").fetchone()[0], text


@pytest.mark.parametrize("with_parts", [False, True])
def test_a_compound_surname_leaves_a_given_name_of_two_characters(con, with_parts):
    """歐陽家欣's given name is 家欣, as the redaction takes it (not 陽家欣): alone in the output, it is a leak."""
    parts = "p" if with_parts else None
    checks = sql_leak_checks("out", [OwnIdentifier("name_zh", "NAME", parts)], d=DUCKDB)
    parsed = own_parts(OwnIdentifier("name_zh", "NAME"), DUCKDB)
    con.execute(f"CREATE OR REPLACE TEMP TABLE c AS SELECT *, {parsed} AS p FROM "
                "(SELECT ?::VARCHAR AS name_zh, ?::VARCHAR AS out)", ["歐陽家欣", "x"])
    for name, text, found in [("歐陽家欣", "家欣 feels better", True), ("歐陽家欣", "歐陽 family informed", False),
                              ("欧阳家欣", "家欣 feels better", True), ("司徒明", "明 reviewed", False),
                              ("陳大文", "大文 reviewed", True), ("陳大文", "陳 reviewed", False),
                              ("穆罕默德·阿里", "穆罕默德阿里覆診", True), ("穆罕默德·阿里", "穆罕默德 阿里", True),
                              ("穆罕默德·阿里", "罕默德阿里覆診", True),  # its given name, compacted too
                              # across spaces and line breaks, not across punctuation (another sentence)
                              ("陳家明", "家 明\n覆診", True), ("陳家明", "病人已回家，明天覆診。", False)]:
        con.execute("UPDATE c SET name_zh = ?, out = ?", [name, text])
        con.execute(f"UPDATE c SET p = {parsed}")  # (an UPDATE's expressions read the row as it was)
        assert con.execute(f"SELECT {checks['NAME']} FROM c").fetchone()[0] is found, (name, text)


def test_an_e_mail_name_with_a_plus_is_found_compacted(con):
    """The output is compacted without its + (ky+clinic is kyclinic there), and so must the row's value be."""
    checks = sql_leak_checks("out", [OwnIdentifier("email", "EMAIL", "p")], d=DUCKDB)
    parsed = own_parts(OwnIdentifier("email", "EMAIL"), DUCKDB)
    con.execute(f"CREATE OR REPLACE TEMP TABLE e AS SELECT *, {parsed} AS p FROM "
                "(SELECT ?::VARCHAR AS email, ?::VARCHAR AS out)", ["ky+clinic@gmail.com", "mail ky+clinic at gmail"])
    assert con.execute(f"SELECT {checks['EMAIL']} FROM e").fetchone()[0] is True
    con.execute("UPDATE e SET email = 'a&b.smith@x.com', out = 'mail a&b.smith at x'")
    con.execute(f"UPDATE e SET p = {parsed}")
    assert con.execute(f"SELECT {checks['EMAIL']} FROM e").fetchone()[0] is True


@pytest.mark.parametrize("with_parts", [False, True])
def test_a_name_in_both_scripts_is_found_by_either(con, with_parts):
    """A value holding both scripts was compared whole (cheukpaklun(卓柏麟)), so neither name was ever found."""
    checks = sql_leak_checks("out", [OwnIdentifier("name", "NAME", "p" if with_parts else None)], d=DUCKDB,
                             with_patterns=False)  # the row's own value alone: no third-party pattern helps
    parsed = own_parts(OwnIdentifier("name", "NAME"), DUCKDB)
    con.execute(f"CREATE OR REPLACE TEMP TABLE m AS SELECT *, {parsed} AS p FROM "
                "(SELECT ?::VARCHAR AS name, ?::VARCHAR AS out)", ["CHEUK Pak Lun (卓柏麟)", "x"])
    for text, found in [("Cheuk Pak Lun seen", True), ("卓柏麟覆診", True), ("柏麟覆診", True), ("Cheuk seen", True),
                        ("cheukpaklun", True), ("seen by the nurse; 覆診", False), ("Pak seen", False)]:
        con.execute("UPDATE m SET out = ?", [text])
        assert con.execute(f"SELECT {checks['NAME']} FROM m").fetchone()[0] is found, text
