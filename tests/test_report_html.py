"""What both reports share: bar charts as data for SVG, the templates' escaping, and where a report may go."""

from __future__ import annotations

import pytest

from datashare.errors import InputError
from datashare.report.html import CHART_WIDTH, Bar, bar_rows, check_out, render, stacked_columns


def test_bars_are_scaled_to_the_largest_or_a_given_scale_and_a_withheld_one_has_none():
    rows = bar_rows([Bar("a", 10, "10"), Bar("b", 5, "5"), Bar("c", None, "<5")])
    assert [r["length"] for r in rows] == [CHART_WIDTH, CHART_WIDTH / 2, 0]
    assert [r["withheld"] for r in rows] == [False, False, True] and [r["top"] for r in rows] == [0, 22, 44]
    assert [r["length"] for r in bar_rows([Bar("share", 0.25, "25%"), Bar("over", 3.0, "")], scale=1.0)] == [
        CHART_WIDTH / 4, CHART_WIDTH]
    assert bar_rows([Bar("none", 0, "0")])[0]["length"] == 0  # nothing to scale by: no division by zero


def test_stacked_columns_put_each_series_on_the_last_and_label_without_overlap():
    chart = stacked_columns(["d1", "d2"], {"a": {"d1": 2, "d2": 1}, "b": {"d1": 2}})
    first, second = chart["columns"]
    assert (first["total"], second["total"], chart["largest"]) == (4, 1, 4)
    assert [s["height"] for s in first["segments"]] == [100.0, 100.0] and first["segments"][1]["y"] == 0
    assert [s["series"] for s in second["segments"]] == ["a"]
    many = stacked_columns([f"p{n}" for n in range(40)], {"a": {"p0": 1}})
    labels = [c["label"] for c in many["columns"]]
    assert labels[0] == "p0" and 0 < sum(1 for label in labels if label) < 40


def test_the_templates_escape_every_value(tmp_path):
    hostile = '<img src=x onerror="alert(1)">'
    page = render("base.html.j2", generated=hostile, datashare_version="1")
    assert "<img" not in page and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page


def test_a_report_goes_to_a_file_in_an_existing_folder(tmp_path):
    assert check_out(tmp_path / "r.html") == tmp_path / "r.html"
    with pytest.raises(InputError, match="is a folder"):
        check_out(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        check_out(tmp_path / "no" / "r.html")
