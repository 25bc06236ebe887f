"""Generalisation hierarchies: the refinement order they claim holds on real values, computed by the transforms."""

from __future__ import annotations

import datetime as dt
import itertools

import duckdb
import pytest

from datashare.core.sql import quote_ident
from datashare.policy.hierarchies import Level, bin_widths, hierarchy_for, kept, refines
from datashare.policy.transforms import TRANSFORMS, validate_params

REFERENCE = dt.date(2026, 1, 1)


def _claims_hold(hierarchy, column_type: str, values: list) -> None:
    """For every pair the hierarchy says refines, the coarse value is a function of the fine one, on ``values``."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t (v {column_type})")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values])
    levels = [lv for lv in hierarchy.levels if lv.transform != "drop"]
    for level in levels:  # every level is a policy rule that validates
        assert validate_params(level.transform, level.params)[1] == []
    assert all(refines(level, level) for level in hierarchy.levels)  # the order is reflexive
    exprs = [TRANSFORMS[lv.transform].build(quote_ident("v"), lv.params) for lv in levels]
    con.execute("CREATE TABLE g AS SELECT " + ", ".join(f"{e} AS l{i}" for i, e in enumerate(exprs)) + " FROM t")
    for (i, fine), (j, coarse) in itertools.permutations(enumerate(levels), 2):
        split = con.execute(f"SELECT count(*) FROM (SELECT l{i} FROM g GROUP BY l{i} "
                            f"HAVING count(DISTINCT l{j}) > 1)").fetchone()[0]
        if refines(fine, coarse):
            assert split == 0, (fine.label(), coarse.label())
        elif fine.to == coarse.to == "age_band" or {fine.to, coarse.to} <= {"week", "month", "year"}:
            assert split > 0, (fine.label(), coarse.label())  # and where it is not claimed, it is false


def test_age_bands_refine_exactly_where_they_nest():
    hierarchy = hierarchy_for("dob", "date", "dob", reference=REFERENCE)
    assert [lv.label() for lv in hierarchy.levels][:4] == ["as it is", "age band 1 year", "age band 1 year, 90+",
                                                           "age band 2 years"]
    days = [REFERENCE - dt.timedelta(days=d) for d in range(0, 110 * 366, 5)]
    _claims_hold(hierarchy, "DATE", days)
    band = {(lv.params.get("width"), lv.params.get("top")): lv for lv in hierarchy.levels}
    assert refines(band[(10, None)], band[(20, None)]) and not refines(band[(2, None)], band[(5, None)])
    assert refines(band[(10, None)], band[(10, 90)]) and not refines(band[(10, 90)], band[(10, None)])
    assert not refines(band[(20, 90)], band[(20, None)])


def test_dates_week_month_quarter_year():
    hierarchy = hierarchy_for("admitted", "date", "date", reference=REFERENCE)
    assert [lv.label() for lv in hierarchy.levels] == ["as it is", "week", "month", "quarter", "year", "dropped"]
    _claims_hold(hierarchy, "DATE", [dt.date(2023, 12, 1) + dt.timedelta(days=d) for d in range(800)])
    week, month, year = hierarchy.levels[1], hierarchy.levels[2], hierarchy.levels[4]
    assert hierarchy.coarser(1) == (1, 5) and refines(month, year) and not refines(week, month)


def test_districts_codes_numbers_and_kept_columns():
    assert [lv.label() for lv in hierarchy_for("district", "text", "district", reference=REFERENCE).levels] == \
        ["as it is", "region", "dropped"]
    assert [lv.label() for lv in hierarchy_for("sex", "text", "sex", reference=REFERENCE).levels] == \
        ["as it is", "dropped"]
    codes = hierarchy_for("code", "text", None, reference=REFERENCE)
    assert [lv.label() for lv in codes.levels] == ["as it is", "first 3 characters", "first 1 character", "dropped"]
    _claims_hold(codes, "VARCHAR", ["E11.9", "E11.2", "E78.5", "I10", None])
    ages = hierarchy_for("age", "number", "age", reference=REFERENCE)
    _claims_hold(ages, "INTEGER", list(range(0, 100)))
    numbers = hierarchy_for("hb", "number", None, reference=REFERENCE, low=3.0, high=14.5)
    assert [lv.params.get("width") for lv in numbers.levels[1:-1]] == bin_widths(3.0, 14.5) == [0.2, 0.5, 1, 2, 5]
    _claims_hold(numbers, "DOUBLE", [3 + i * 0.037 for i in range(320)])
    assert kept("sex").levels == (Level("keep"),)


@pytest.mark.parametrize(("low", "high"), [(0, 0), (5, 1), (float("nan"), 1.0)])
def test_no_bins_for_an_empty_range(low, high):
    assert bin_widths(low, high) == []
