"""One level coarser: each transform's next generalisation, and none where there is none."""

from __future__ import annotations

from datashare.policy.coarsen import coarser


def test_age_bands_widen_then_top_code_then_stop():
    band = {"to": "age_band", "width": 5, "reference": "2026-01-01"}
    assert coarser("generalize", band, "date").params["width"] == 10
    widest = coarser("generalize", {**band, "width": 20}, "date")
    assert (widest.params["width"], widest.params["top"], widest.description) == (20, 80, "age bands of 20 years, 80+")
    assert coarser("generalize", {**band, "width": 20, "top": 80}, "date") is None


def test_dates_climb_month_quarter_year_and_a_kept_or_shifted_date_starts_at_the_month():
    assert coarser("generalize", {"to": "month"}, "date").params == {"to": "quarter"}
    assert coarser("generalize", {"to": "quarter"}, "date").params == {"to": "year"}
    assert coarser("generalize", {"to": "year"}, "date") is None
    for transform in ("keep", "date_shift"):
        assert coarser(transform, {"max_days": 30, "subject": "p"}, "date").params == {"to": "month"}
    assert coarser("keep", {}, "text") is None  # a category has no level of its own: removing it is the driver


def test_codes_numbers_and_rare_values_coarsen_by_their_own_parameter():
    assert coarser("generalize", {"to": "prefix", "length": 3}, "text").params == {"to": "prefix", "length": 2}
    assert coarser("generalize", {"to": "prefix", "length": 1}, "text") is None
    assert coarser("generalize", {"to": "bins", "width": 2.5}, "number").params["width"] == 5
    assert coarser("round", {"digits": 1}, "number").params == {"digits": 0}
    assert coarser("suppress_rare", {"min_count": 5, "value": "Other"}, "text").params["min_count"] == 10
    assert coarser("generalize", {"to": "region"}, "text") is None
