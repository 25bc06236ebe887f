"""The Gaussian copula: Φ and Φ⁻¹, marginals from DuckDB counts, correlation kept, rare levels never emitted."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pytest

from datashare.synth.columns import HOLDOUT, ROWS_TABLE, ColumnSpec
from datashare.synth.model import OTHER, _weighted_quantiles, fit_copula, level_codes, normal_cdf, normal_quantile


def test_normal_cdf_and_quantile_match_the_exact_functions():
    z = np.linspace(-6, 6, 241)
    exact = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in z])
    assert np.max(np.abs(normal_cdf(z) - exact)) < 1e-7
    p = np.linspace(1e-6, 1 - 1e-6, 999)
    assert np.max(np.abs(normal_cdf(normal_quantile(p)) - p)) < 1e-6


def test_weighted_quantiles_equal_quantiles_of_the_expanded_data():
    data = np.array([3.0, 3, 3, 4, 8, 8, 10])
    values, counts = np.unique(data, return_counts=True)
    probs = np.linspace(0, 1, 25)
    assert np.allclose(_weighted_quantiles(values, counts.astype(float), probs), np.quantile(data, probs))


@pytest.fixture
def con():
    connection = duckdb.connect()
    # x and y correlated; kind has one common level per 4 rows, and a level seen 3 times
    connection.execute(f"""CREATE TEMP TABLE {ROWS_TABLE} AS
        SELECT x, x * 2 + (hash(i, 'e') % 1000) / 250.0 AS y,
               CASE WHEN i < 3 THEN 'rare' WHEN i % 4 = 0 THEN '甲' ELSE 'b' END AS kind,
               CASE WHEN i % 10 = 0 THEN NULL ELSE DATE '2020-01-01' + CAST(x * 100 AS INTEGER) END AS day,
               i % 5 = 1 AS {HOLDOUT}
        FROM (SELECT i, (hash(i) % 10000) / 1000.0 AS x FROM range(6000) t(i))""")
    return connection


def test_the_copula_keeps_shapes_correlation_and_null_shares(con):
    columns = [ColumnSpec("x", "DOUBLE", "number"), ColumnSpec("y", "DOUBLE", "number"),
               ColumnSpec("kind", "VARCHAR", "category"), ColumnSpec("day", "DATE", "date")]
    model = fit_copula(con, columns, min_count=10, max_levels=50, seed=1)
    rows = model.sample(20_000, np.random.default_rng(4))
    real = con.execute(f"SELECT corr(x, y), avg(x), avg(CAST(day IS NULL AS INTEGER)) FROM {ROWS_TABLE} "
                       f"WHERE NOT {HOLDOUT}").fetchone()
    assert abs(np.corrcoef(rows["x"], rows["y"])[0, 1] - real[0]) < 0.05
    assert abs(rows["x"].mean() - real[1]) < 0.15
    assert set(rows["kind"]) == {"甲", "b"}  # "rare" (3 rows) is below min_count, merged, never emitted
    assert OTHER not in set(rows["kind"])  # and so rare that the merged level is not emitted either
    assert abs(np.mean(rows["kind"] == "甲") - 0.25) < 0.02
    assert abs(np.isnan(rows["day"]).mean() - real[2]) < 0.02
    assert model.marginals["x"].digits == 3


def test_the_extremes_are_never_reproduced(con):
    model = fit_copula(con, [ColumnSpec("x", "DOUBLE", "number")], min_count=10, max_levels=50, seed=1)
    rows = model.sample(50_000, np.random.default_rng(5))["x"]
    low, high = con.execute(f"SELECT min(x), max(x) FROM {ROWS_TABLE} WHERE NOT {HOLDOUT}").fetchone()
    assert rows.min() > low and rows.max() < high


def test_thousands_of_levels_keep_only_common_ones_and_merge_the_rest():
    con = duckdb.connect()
    # 40 common levels (50 rows each) and 4000 levels seen once: those are merged into "(other)"
    con.execute(f"""CREATE TEMP TABLE {ROWS_TABLE} AS
        SELECT CASE WHEN i < 2000 THEN '區' || CAST(i % 40 AS VARCHAR) ELSE 'once-' || CAST(i AS VARCHAR) END AS place,
               false AS {HOLDOUT} FROM range(6000) t(i)""")
    model = fit_copula(con, [ColumnSpec("place", "VARCHAR", "category")], min_count=10, max_levels=30, seed=1)
    drawn = model.sample(20_000, np.random.default_rng(6))["place"]
    emitted = set(drawn)
    assert OTHER in emitted and not any(str(v).startswith("once-") for v in emitted)
    assert len(emitted - {OTHER}) == 30  # capped at max_levels; the 10 other common levels went to "(other)"
    assert abs(np.mean(drawn == OTHER) - 4500 / 6000) < 0.02


def test_level_codes_are_found_by_search_not_per_value():
    values = np.array(["b", None, "甲", "zzz", "b", ""], dtype=object)
    assert list(level_codes(values, ["甲", "b"])) == [2, 0, 1, 3, 2, 3]
    assert list(level_codes(values, [])) == [1, 0, 1, 1, 1, 1]
