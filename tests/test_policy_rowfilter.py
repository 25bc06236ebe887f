"""rows.where: the allowed grammar works; every injection attempt is refused."""

from __future__ import annotations

import duckdb
import pytest

from datashare.errors import PolicyError
from datashare.policy.rowfilter import MAX_WHERE_DEPTH, column_inequality, compile_where, parse_where, where_columns

COLUMNS = ["admission_date", "sex", "age", "district", "my col"]


@pytest.mark.parametrize(("text", "expected_rows"), [
    ("admission_date >= DATE '2020-01-01'", 2),
    ("sex = 'F' AND age BETWEEN 30 AND 60", 1),
    ("district IN ('Sha Tin', 'Wan Chai') OR age IS NULL", 2),
    ("NOT (sex = 'M') AND age IS NOT NULL", 1),
    ('"my col" <> 1', 2),
    ("age > -5", 2),
])
def test_allowed_expressions_filter_rows(text, expected_rows):
    con = duckdb.connect()
    con.execute("""CREATE TABLE t AS SELECT * FROM (VALUES
        (DATE '2021-01-01', 'F', 40, 'Sha Tin', 2), (DATE '2019-01-01', 'M', NULL, 'Islands', 1),
        (DATE '2022-06-01', 'M', 70, 'Tai Po', 3)) v(admission_date, sex, age, district, "my col")""")
    sql = compile_where(parse_where(text), COLUMNS)
    assert con.execute(f"SELECT count(*) FROM t WHERE {sql}").fetchone()[0] == expected_rows


@pytest.mark.parametrize("attack", [
    "1=1; DROP TABLE x",
    "sex = 'F'; SELECT * FROM meta.versions",
    "sex IN (SELECT sex FROM t)",
    "sex = (SELECT max(sex) FROM t)",
    "EXISTS (SELECT 1)",
    "read_csv('/etc/passwd') IS NOT NULL",
    "getenv('HOME') = 'x'",
    "sex = 'F' -- comment",
    "sex = 'F' /* comment */",
    "lower(sex) = 'f'",
    "sex = 'F' UNION SELECT 1",
    "CAST(age AS VARCHAR) = '1'",
    "t.sex = 'F'",
    "nonexistent = 1",
    "*",
    "age",
    "sex = 'F'); DROP TABLE x; --",
    "sex = ＇F＇",
    "",
    "x" * 5000,
    "sex IN ()",
    "-age > 1",
    "age > -(SELECT 1)",
    "admission_date > DATE '2020-13-45'",
])
def test_injection_attempts_are_refused(attack):
    with pytest.raises(PolicyError, match="rows.where"):
        compile_where(parse_where(attack), COLUMNS)


def test_output_quotes_every_column():
    assert compile_where(parse_where("sex = 'F'"), COLUMNS) == "\"sex\" = 'F'"


@pytest.mark.parametrize("text", [
    "(" * 100 + "age = 1" + ")" * 100,  # a RecursionError inside sqlglot before the limit
    "NOT " * 100 + "age = 1",
    "NOT (" * 13 + "age = 1" + ")" * 13,
])
def test_deep_nesting_is_a_policy_error_with_its_limit(text):
    with pytest.raises(PolicyError, match=f"nested too deeply \\(at most {MAX_WHERE_DEPTH} levels"):
        parse_where(text)


def test_nesting_up_to_the_limit_compiles_and_quoted_text_does_not_count():
    assert compile_where(parse_where("(" * MAX_WHERE_DEPTH + "age = 1" + ")" * MAX_WHERE_DEPTH), COLUMNS)
    words = " ".join(["not (((("] * 30)
    assert compile_where(parse_where(f"district = '{words}' AND \"my col\" = 1 AND nothing_else IS NULL"),
                         [*COLUMNS, "nothing_else"])
    with pytest.raises(PolicyError, match="longer than"):
        parse_where("age = 1 AND " * 400 + "age = 1")


def test_where_columns_names_each_column_once():
    assert where_columns(parse_where("age > 1 AND (sex = 'F' OR age IS NULL) AND NOT \"my col\" = 2")) == [
        "age", "my col", "sex"]


def test_a_comparison_of_two_columns_is_recognised_as_an_inequality():
    assert column_inequality("discharge >= admission") == ("discharge", "admission")
    assert column_inequality("(admission < discharge)") == ("discharge", "admission")
    assert column_inequality("discharge >= DATE '2020-01-01'") is None
    assert column_inequality("a = b") is None and column_inequality("a >= a") is None
    with pytest.raises(PolicyError):
        column_inequality("a >= now()")
