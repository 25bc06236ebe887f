"""The declared regex subset: every pattern an engine runs is within it, the rest is refused, and the Java
rewrite keeps RE2's meaning."""

from __future__ import annotations

import re

import pytest

from datashare import identifiers, redaction
from datashare.policy.dialects import DUCKDB
from datashare.policy.javaregex import RegexSubsetError, check_regex, java_regex, java_replacement


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
