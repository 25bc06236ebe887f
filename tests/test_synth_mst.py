"""MST's pieces: the budget conversion, the tree, the consistent conditionals, and vectorised tree sampling."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from datashare.errors import PolicyError
from datashare.synth.columns import HOLDOUT, ROWS_TABLE, ColumnSpec
from datashare.synth.mst import (
    Accounting,
    Domain,
    MSTModel,
    _conditional,
    _maximum_spanning_tree,
    _private_range,
    _tree_order,
    epsilon_for,
    rho_for,
)


@pytest.mark.parametrize(("epsilon", "delta"), [(1.0, 1e-6), (0.1, 1e-9), (8.0, 1e-5)])
def test_rho_converts_back_to_the_same_epsilon(epsilon, delta):
    rho = rho_for(epsilon, delta)
    assert 0 < rho < epsilon
    assert epsilon_for(rho, delta) == pytest.approx(epsilon)


def test_the_tree_takes_the_strongest_pairs_without_a_cycle():
    scores = {(0, 1): 100, (1, 2): 90, (0, 2): 95, (2, 3): 5, (0, 3): 1, (1, 3): 2}
    edges = _maximum_spanning_tree(4, scores)
    assert edges == [(0, 1), (0, 2), (2, 3)]
    order, parent = _tree_order(4, edges)
    assert order[0] == 0 and sorted(order) == [0, 1, 2, 3] and parent == {1: 0, 2: 0, 3: 2}


def test_conditionals_are_row_stochastic_and_match_the_one_way_marginals():
    rng = np.random.default_rng(1)
    table = np.abs(rng.normal(50, 30, size=(4, 5)))
    parent, child = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.5, 0.2, 0.1, 0.1, 0.1])
    conditional = _conditional(table, parent, child)
    assert np.allclose(conditional.sum(axis=1), 1.0)
    assert np.allclose(parent @ conditional, child, atol=1e-3)


def _category(name: str, levels: list[str]) -> Domain:
    return Domain(ColumnSpec(name, "VARCHAR", "category"), len(levels) + 2, levels=levels)


def test_sampling_follows_root_then_conditionals():
    domains = [_category("a", ["x", "y"]), _category("b", ["p", "q"])]
    # b copies a: x -> p, y -> q
    conditional = np.zeros((4, 4))
    conditional[0, 0] = conditional[3, 3] = 1.0
    conditional[1, 1] = conditional[2, 2] = 1.0
    model = MSTModel(domains, [0, 1], {1: 0}, np.array([0.0, 0.7, 0.3, 0.0]), {1: conditional}, 10,
                     Accounting(1.0, 1e-6, 0.01, 5e-7, 0.0, 2), [("a", "b")])
    rows = model.sample(20_000, np.random.default_rng(2))
    assert set(rows["a"]) == {"x", "y"}
    assert np.all((rows["a"] == "x") == (rows["b"] == "p"))
    assert abs(np.mean(rows["a"] == "x") - 0.7) < 0.02


def test_bins_decode_inside_their_range_and_null_as_nan():
    domain = Domain(ColumnSpec("v", "DOUBLE", "number"), 5, low=0.0, width=2.5)
    model = MSTModel([domain], [0], {}, np.array([0.2, 0.2, 0.2, 0.2, 0.2]), {}, 10,
                     Accounting(1.0, 1e-6, 0.01, 1e-6, 0.0, 0), [])
    values = model.sample(5000, np.random.default_rng(3))["v"]
    present = values[~np.isnan(values)]
    assert 0.15 < np.isnan(values).mean() < 0.25 and present.min() >= 0 and present.max() < 10


def test_a_range_is_found_privately_on_a_public_grid():
    con = duckdb.connect()
    con.execute(f"CREATE TEMP TABLE {ROWS_TABLE} AS SELECT 5 + (i % 100) / 10.0 AS v, -3.0 - i % 2 AS neg, "
                f"DATE '2019-03-01' + CAST(i % 700 AS INTEGER) AS d, false AS {HOLDOUT} FROM range(5000) t(i)")
    low, high = _private_range(con, ColumnSpec("v", "DOUBLE", "number"), 4.0, 10)
    assert (low, high) == (3.0, 15.0)  # 5.0–14.9 lies in the cells [3, 7) and [7, 15)
    assert _private_range(con, ColumnSpec("neg", "DOUBLE", "number"), 4.0, 10) == (-7.0, -3.0)
    days = _private_range(con, ColumnSpec("d", "DATE", "date"), 4.0, 10)
    assert days == (17897.0, 18993.0)  # 2019-01-01 to 2022-01-01: the years 2019 to 2021
    with pytest.raises(PolicyError, match="could not find the range of 'v' privately"):
        _private_range(con, ColumnSpec("v", "DOUBLE", "number"), 1e8, 10)  # the noise drowns every count
