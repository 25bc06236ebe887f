"""The one identifier quoter and the one string-literal builder, checked against DuckDB itself; type kinds."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datashare.core.sql import base_type, quote_ident, sql_string_literal, value_kind
from datashare.errors import InputError

HOSTILE = ["x'); DROP TABLE t; --", "it's", "''", "'", '"', 'a""b', "\\", "\\'", "名前 👩‍⚕️", "line\nbreak", "[red]x[/]"]
no_nul = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))  # any UTF-8 text


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


@pytest.mark.parametrize("value", HOSTILE)
def test_a_literal_reads_back_as_the_very_string(con, value):
    assert con.execute(f"SELECT {sql_string_literal(value)}").fetchone()[0] == value


@pytest.mark.parametrize("name", HOSTILE)
def test_a_quoted_name_is_one_identifier_spelled_as_given(con, name):
    con.execute(f"CREATE OR REPLACE TEMP TABLE {quote_ident(name)} ({quote_ident(name)} INTEGER)")
    assert con.execute(f"SELECT {quote_ident(name)} FROM {quote_ident(name)}").description[0][0] == name
    con.execute(f"DROP TABLE {quote_ident(name)}")


@settings(max_examples=300, deadline=None)
@given(no_nul)
def test_duckdb_round_trips_any_string_through_the_literal(con, value):
    assert con.execute(f"SELECT {sql_string_literal(value)}").fetchone()[0] == value


@settings(max_examples=300, deadline=None)
@given(no_nul.filter(bool))
def test_duckdb_round_trips_any_name_through_the_quoter(con, name):
    assert con.execute(f"SELECT 1 AS {quote_ident(name)}").description[0][0] == name


def test_text_holding_nul_is_refused_not_cut_short():
    with pytest.raises(InputError, match="NUL"):
        sql_string_literal("before\x00' OR 1=1 --")


@pytest.mark.parametrize(("duckdb_type", "kind"), [
    ("INTEGER", "number"), ("bigint", "number"), ("DECIMAL(18,3)", "number"), ("decimal(18, 3)", "number"),
    ("DOUBLE", "number"), ("UHUGEINT", "number"), ("DATE", "date"), ("TIMESTAMP", "date"),
    ("TIMESTAMP WITH TIME ZONE", "date"), ("TIMESTAMP_NS", "date"), ("VARCHAR", "text"), ("BOOLEAN", "boolean"),
    ("BLOB", "other"), ("INTEGER[]", "other"), ("STRUCT(a INTEGER)", "other"), ("TIME", "other"),
])
def test_value_kind(duckdb_type, kind):
    assert value_kind(duckdb_type) == kind


def test_base_type_drops_parameters_and_case():
    assert base_type("decimal(18, 3)") == "DECIMAL"
    assert base_type(" varchar ") == "VARCHAR"
