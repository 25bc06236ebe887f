"""The report's measures: TVD, AUC, the downstream model, and an HTML page that escapes what it shows."""

from __future__ import annotations

import numpy as np

from datashare.synth.report import _auc, _logistic, _one_hot, _tvd, document, render_html, statement, summary


def test_total_variation_distance():
    assert _tvd([1, 1], [1, 1]) == 0 and _tvd([1, 0], [0, 1]) == 1 and abs(_tvd([3, 1], [1, 1]) - 0.25) < 1e-12
    assert _tvd([0, 0], [1, 1]) == 1.0


def test_auc_is_the_mann_whitney_statistic_with_ties_halved():
    assert _auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert _auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert _auc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5


def test_the_downstream_model_learns_a_real_signal():
    rng = np.random.default_rng(0)
    codes = np.column_stack([rng.integers(1, 3, 3000), rng.integers(0, 10, 3000)])
    y = (codes[:, 1] > 4).astype(float)
    codes[:, 0] = np.where(rng.random(3000) < 0.9, 1 + y, 2 - y)
    x = _one_hot(codes, [4, 12], 0)
    w = _logistic(x, (codes[:, 0] == 1).astype(float))
    assert np.mean((x @ w > 0) == (codes[:, 0] == 1)) > 0.85


def figures():
    return {"fidelity": {"column_shapes": {"<script>alert(1)</script>": 0.99}, "column_shape_mean": 0.99,
                         "column_pairs": {}, "column_pair_mean": None, "overall": 0.99, "downstream": None},
            "privacy": {"exact_row_copies": 0, "quasi_identifier_copies": 0, "constraint_breaches": 0,
                        "dcr_share": 0.5, "membership_auc": 0.5},
            "measured_on": {"holdout_rows": 10, "synthetic_rows": 10, "distance_rows": 10}}


def test_the_html_report_escapes_names_and_fetches_nothing():
    report = document(method="copula", figures=figures(), privacy={}, dataset="d", policy="p", rows=10)
    page = render_html(report)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "src=" not in page and "href=" not in page and "NOT differentially private" in page
    assert summary(report)["differentially_private"] is False


def test_the_statement_names_the_guarantee_or_its_absence():
    assert "(1, 1e-06)-DP" in statement("mst", 1.0, 1e-6) and "only formal guarantee" in statement("mst", 1, 1e-6)
    assert statement("copula", None, None).startswith("NOT differentially private")
