"""The lattice search: with any monotone gate it finds what evaluating every node finds, with fewer evaluations."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from datashare.policy.hierarchies import hierarchy_for, kept
from datashare.policy.lattice import Lattice, exhaustive, search

REFERENCE = dt.date(2026, 1, 1)
HIERARCHIES = [hierarchy_for("dob", "date", "dob", reference=REFERENCE),
               hierarchy_for("admitted", "date", "date", reference=REFERENCE),
               hierarchy_for("district", "text", "district", reference=REFERENCE),
               hierarchy_for("sex", "text", "sex", reference=REFERENCE), kept("kept")]


def _monotone_losses(draw, hierarchy) -> list[float]:
    """A loss per level that never falls from a level to one it refines into (as information loss behaves)."""
    losses = [0.0] * len(hierarchy.levels)
    for i in range(1, len(hierarchy.levels)):
        floor = max(losses[j] for j in hierarchy.finer(i) if j != i)
        losses[i] = floor + draw(st.sampled_from([0.0, 0.05, 0.1, 0.3]))
    return losses


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_pruned_search_agrees_with_evaluating_every_node(data):
    chosen = data.draw(st.lists(st.sampled_from(range(len(HIERARCHIES))), min_size=1, max_size=3, unique=True))
    hierarchies = [HIERARCHIES[i] for i in sorted(chosen)]
    lattice = Lattice(hierarchies, [_monotone_losses(data.draw, h) for h in hierarchies])
    nodes = lattice.nodes()
    # a monotone gate: a node passes when it generalises one of a few random "just passing" nodes
    generators = data.draw(st.lists(st.sampled_from(nodes), max_size=4))
    passing = {above for g in generators for above in lattice.above(g)}
    calls = []

    def passes(node):
        calls.append(node)
        return node in passing

    pruned = search(lattice, passes)
    assert len(calls) == len(set(calls)) == pruned.evaluated  # no node is evaluated twice
    full = exhaustive(lattice, lambda node: node in passing)
    assert (pruned.optimum, pruned.runner_up, pruned.passing) == (full.optimum, full.runner_up, full.passing)
    assert pruned.passing == len(passing) and full.evaluated == lattice.size
    if pruned.optimum is not None:
        assert pruned.runner_up is None or pruned.runner_up not in set(lattice.above(pruned.optimum))
        assert min(lattice.loss(n) for n in passing) == lattice.loss(pruned.optimum)


def test_pruning_evaluates_a_fraction_of_a_large_lattice():
    lattice = Lattice(HIERARCHIES[:4], [[i / len(h.levels) for i in range(len(h.levels))] for h in HIERARCHIES[:4]])
    threshold = (5, 2, 1, 0)  # passes from 5-year bands, months, regions, sex as it is, and what generalises them
    passing = set(lattice.above(threshold))
    outcome = search(lattice, lambda node: node in passing)
    assert outcome.optimum == threshold and outcome.passing == len(passing)
    assert outcome.evaluated * 5 < lattice.size  # 432 nodes


def test_successors_are_one_step_up_and_nothing_passes_when_nothing_can():
    lattice = Lattice(HIERARCHIES[:1], [[0.0] * 12])
    assert lattice.successors((0,)) == [(1,)]  # 1-year bands cover the exact date; every band refines into them
    assert sorted(lattice.successors((1,))) == [(2,), (3,), (5,)]  # top-coded, 2-year, 5-year
    assert search(lattice, lambda node: False).optimum is None
