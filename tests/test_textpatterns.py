"""Third-party patterns: every one stays within the declared regular-expression subset and means the same in
Python's ``re`` and DuckDB's RE2."""

from __future__ import annotations

import re

import duckdb
import pytest

from datashare import textpatterns as tp


@pytest.mark.parametrize("pattern", [p.pattern for p in tp.THIRD_PARTY_PATTERNS], ids=lambda p: p[:30])
def test_every_pattern_uses_only_the_declared_subset(pattern):
    assert tp.subset_violations(pattern) == []


@pytest.mark.parametrize("construct", [
    r"(?=x)", r"(?!x)", r"(?<=x)", r"(a)\1", r"\bword\b", r"\d", r"\w", r"\s", r"a*?", r"a+?", r"a.b", r"(?i)x",
    r"\p{Han}", r"\u4e00", r"(?>a)", r"a++",
])
def test_the_lint_refuses_what_the_subset_leaves_out(construct):
    assert tp.subset_violations(construct) != []


@pytest.mark.parametrize(("construct", "token", "example"), tp.REGEX_SUBSET)
def test_every_declared_construct_has_an_example_that_passes_the_lint(construct, token, example):
    for part in example.split("  "):
        assert tp.subset_violations(part) == [], construct


def test_every_pattern_agrees_in_python_and_duckdb():
    con = duckdb.connect()
    samples = ["Flat 24A, 38/F, Block 4, Yiu Tung Estate", "石硤尾邨3座12樓", "DOB 1936-12-04", "B486892.A",
               "27 60 74 32", "wong.siu[at]yahoo.com", "Mr. Chan", "Peter CHAN", "陳大文", "E11.9 HbA1c 7.2%",
               "石硤尾邨，好。", "BP 130/80"]
    for pattern in tp.THIRD_PARTY_PATTERNS:
        for sample in samples:
            python = bool(re.search(pattern.pattern, sample, re.ASCII))
            duck = con.execute("SELECT regexp_matches(?, ?)", [sample, pattern.pattern]).fetchone()[0]
            assert python == duck, (pattern.kind, sample)
