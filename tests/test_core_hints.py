"""The "did you mean" that follows every unknown name."""

from __future__ import annotations

from datashare.core.hints import closest, did_you_mean

DATASETS = ["patients", "admissions", "policies"]


def test_a_typo_gets_the_closest_name():
    assert closest("pateints", DATASETS) == "patients"
    assert did_you_mean("pateints", DATASETS) == "did you mean 'patients'?"


def test_nothing_close_says_nothing():
    assert closest("zzzz", DATASETS) is None
    assert did_you_mean("zzzz", DATASETS) == ""
    assert did_you_mean("patients", []) == ""


def test_choices_and_word_are_compared_as_text():
    assert closest(12, [121, 999]) == "121"


def test_the_suggestion_is_quoted_so_odd_names_stay_readable():
    assert did_you_mean("a b", ["a  b"]) == "did you mean 'a  b'?"
