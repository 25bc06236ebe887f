"""The leak check: the row's own values found in compacted output, whatever the redaction did."""

from __future__ import annotations

import duckdb
import pytest

from datashare.leakcheck import sql_leak_checks
from datashare.policy.dialects import DUCKDB

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
