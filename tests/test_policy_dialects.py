"""The engine seam: first-match-only replacement, Spark's literals and rules, and DuckDB's SQL as before."""

from __future__ import annotations

import duckdb
import pytest

from datashare.errors import InputError
from datashare.policy.dialects import DUCKDB, SPARK
from datashare.policy.javaregex import RegexSubsetError


def test_first_match_only_needs_an_anchored_pattern():
    assert DUCKDB.regexp_replace("x", " district$", "", every=False) == "regexp_replace(x, ' district$', '')"
    with pytest.raises(RegexSubsetError):
        DUCKDB.regexp_replace("x", "a|b$", "", every=False)
    with pytest.raises(RegexSubsetError):
        SPARK.regexp_replace("x", "ab", "", every=False)


def test_spark_literals_escape_backslashes_quotes_and_line_ends():
    assert SPARK.literal("it's a \\ b\nc") == "'it\\'s a \\\\ b\\nc'"
    assert SPARK.ident("we`ird") == "`we``ird`"
    with pytest.raises(InputError):
        SPARK.literal("nul\x00")


def test_duckdb_sql_is_what_it_was():
    assert DUCKDB.hmac_sha256_hex('CAST("v" AS VARCHAR)', "pseudonym") == (
        "sha256((SELECT pseudonym_opad FROM ds_keys) || unhex(sha256((SELECT pseudonym_ipad FROM ds_keys) || "
        "encode(CAST(\"v\" AS VARCHAR)))))")
    assert DUCKDB.null_safe_equal("a", "b") == "a IS NOT DISTINCT FROM b"
    assert SPARK.null_safe_equal("a", "b") == "a <=> b"
    assert (DUCKDB.semi_join(), SPARK.semi_join(), DUCKDB.anti_join(), SPARK.anti_join()) == \
        ("SEMI JOIN", "LEFT SEMI JOIN", "ANTI JOIN", "LEFT ANTI JOIN")


def test_spark_hmac_reads_the_pads_from_the_broadcast_table_not_the_text():
    sql = SPARK.hmac_sha256_hex("CAST(`v` AS STRING)", "pseudonym")
    assert sql == ("sha2(concat(ds_keys.__ds_key_pseudonym_opad, unhex(sha2(concat(ds_keys.__ds_key_pseudonym_ipad, "
                   "CAST(CAST(`v` AS STRING) AS BINARY)), 256))), 256)")
    assert SPARK.with_keys("source") == "source CROSS JOIN ds_keys"


def test_spark_rounds_doubles_by_duckdb_rule_and_other_numbers_as_they_are():
    d = SPARK.for_columns([("x", "DOUBLE"), ("n", "BIGINT")])
    assert d.round("`n`", 2) == "round(`n`, 2)"
    assert d.round("`x`", 0) == "round(`x`, 0)"
    assert "floor(abs((`x` * 100.0D)) + 0.5D)" in d.round("`x`", 2)


def test_the_duckdb_forms_of_the_spark_rules_agree_with_duckdb():
    # Spark's age rule, written with DuckDB's functions, counts years as date_sub does (Feb 29, dates to come).
    rule = SPARK.years_between("a", "2024-02-29").replace("`", '"').replace(" div ", " // ")
    rule = rule.replace("DATE '2024-02-29'", "DATE '2024-02-29'")
    with duckdb.connect() as con:
        wrong = con.execute(
            f"SELECT count(*) FILTER (WHERE {rule} <> date_sub('year', a, DATE '2024-02-29')), count(*) FROM "
            "(SELECT CAST(a AS DATE) AS a FROM range(DATE '1990-01-01', DATE '2032-01-01', INTERVAL 1 DAY) t(a))"
        ).fetchone()
    assert wrong[0] == 0 and wrong[1] > 15000


def test_noise_is_refused_on_spark_when_compiled_and_free_text_is_written_in_each_dialect():
    from datashare.errors import UsageError
    from datashare.policy.transforms import TRANSFORMS, RowIdentifiers, validate_params

    params, _ = validate_params("noise", {"scale": 1.0})
    with pytest.raises(UsageError, match="noise is not available on the spark engine"):
        TRANSFORMS["noise"].build("`x`", params, SPARK)
    assert "regexp_replace" in TRANSFORMS["redact_identifiers"].build('"x"', {}, RowIdentifiers(), DUCKDB)
    on_spark = TRANSFORMS["redact_identifiers"].build("`x`", {}, RowIdentifiers(), SPARK)
    assert "AS STRING" in on_spark and "VARCHAR" not in on_spark and "'g')" not in on_spark
