"""The engine seam: the declared regex subset, its Java rewrite, Spark's literals, and DuckDB's SQL as before."""

from __future__ import annotations

import re

import duckdb
import pytest

from datashare import identifiers, redaction
from datashare.errors import InputError
from datashare.policy.dialects import (
    DUCKDB,
    SPARK,
    RegexSubsetError,
    check_regex,
    java_regex,
    java_replacement,
)


def every_declared_pattern() -> list[str]:
    """Every pattern datashare hands an engine's regexp functions."""
    patterns = [r.pattern for r in identifiers._REDACTIONS]
    patterns += [identifiers._FULL_WIDTH_CLASS, r"\s+", " district$"]
    patterns += [p.pattern for p in redaction.THIRD_PARTY_PATTERNS]
    return patterns


def test_lint_every_pattern_an_engine_runs_is_in_the_declared_subset():
    # The lint: a pattern with a construct outside the subset (look-around, flags, \p, backreference) would raise.
    for pattern in every_declared_pattern():
        assert check_regex(pattern) == pattern
        re.compile(java_regex(pattern).replace("\\z", "\\Z"))  # a valid regex (Python spells \z as \Z)


@pytest.mark.parametrize("pattern", [
    r"(?=a)", r"(?<!a)b", r"(?i)abc", r"(?s:a.b)", r"(?P<n>a)", r"\p{Han}", r"a\1", r"\Bx", r"[[:alpha:]]", r"a**",
    r"a{2,x}", r"(a", r"a)", r"\v", r"\u4e00", "*a",
])
def test_constructs_outside_the_subset_are_refused(pattern):
    with pytest.raises(RegexSubsetError):
        check_regex(pattern)
    with pytest.raises(RegexSubsetError):
        DUCKDB.regexp_replace("x", pattern, "")


def test_java_rewrite_keeps_re2_meaning():
    word = "[0-9A-Za-z_]"
    assert java_regex(r"\bAB\b") == f"(?:(?<={word})(?!{word})|(?<!{word})(?={word}))AB" \
                                    f"(?:(?<={word})(?!{word})|(?<!{word})(?={word}))"
    assert java_regex(r"a\sb") == "a[\\t\\n\\f\\r ]b"  # RE2's \s has no \v
    assert java_regex(r"[\s,]") == "[\\t\\n\\f\\r ,]"
    assert java_regex("a.b$") == "a[^\\n]b\\z"  # Java's dot and $ stop at more line ends
    assert java_regex("[a&&b[c]") == "[a\\&\\&b\\[c]"  # && and [ are special inside a Java class
    assert java_regex("[A-Za-z0-9._%+-]+") == "[A-Za-z0-9._%+\\-]+"
    assert java_regex("陳[㐀-䶿𠀀-𮯯]{1,2}?") == "陳[㐀-䶿𠀀-𮯯]{1,2}?"
    assert java_regex("\\[(?i:at)\\]") == "\\[(?iu:at)\\]"
    assert java_replacement(r"\1[PHONE]\2 $5") == "$1[PHONE]$2 \\$5"
    with pytest.raises(RegexSubsetError):
        java_replacement(r"\n")


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
