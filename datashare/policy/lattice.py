"""The generalisation lattice and its search: the least information loss that passes the privacy gate.

A *node* picks one level per quasi-identifier (a tuple of level indices). Node A is below node B when each of
A's levels refines B's (:func:`datashare.policy.hierarchies.refines`). Passing the gate is monotone in this
order: generalising merges classes, so a class that fails afterwards is made of classes that failed before,
and the people suppressed can only shrink. So one evaluation tags many nodes: a node that passes tags every
node above it as passing, one that fails every node below it as failing.

The search (after ARX's Flash) walks the lattice bottom-up: from the lowest untagged node it builds a path
upwards through untagged nodes and binary-searches it for the lowest node that passes, tagging as it goes,
until every node is tagged. The loss of a node is the mean of its levels' losses, and a level's loss never
falls as it is generalised, so the optimum is the passing node of least loss; the runner-up is the best
passing node that is not a generalisation of it (another trade-off, not the optimum with more lost).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from datashare.policy.hierarchies import Hierarchy

Node = tuple[int, ...]


class Lattice:
    """Every node of the hierarchies' product, with the loss of each level (``losses[qi][level]``)."""

    def __init__(self, hierarchies: Sequence[Hierarchy], losses: Sequence[Sequence[float]]) -> None:
        self.hierarchies, self.losses = hierarchies, losses
        # per quasi-identifier and level: the levels it refines, those refining it, and how many do
        self._up = [[h.coarser(i) for i in range(len(h.levels))] for h in hierarchies]
        self._down = [[h.finer(i) for i in range(len(h.levels))] for h in hierarchies]
        self._rank = [[len(d) - 1 for d in downs] for downs in self._down]

    @property
    def size(self) -> int:
        size = 1
        for h in self.hierarchies:
            size *= len(h.levels)
        return size

    def nodes(self) -> list[Node]:
        return list(itertools.product(*(range(len(h.levels)) for h in self.hierarchies)))

    def loss(self, node: Node) -> float:
        """The mean over quasi-identifiers of their levels' losses (0: nothing lost; 1: everything)."""
        return sum(self.losses[q][level] for q, level in enumerate(node)) / len(node) if node else 0.0

    def height(self, node: Node) -> int:
        return sum(self._rank[q][level] for q, level in enumerate(node))

    def above(self, node: Node) -> itertools.product:
        """Every node ``node`` is below (itself included)."""
        return itertools.product(*(self._up[q][level] for q, level in enumerate(node)))

    def below(self, node: Node) -> itertools.product:
        return itertools.product(*(self._down[q][level] for q, level in enumerate(node)))

    def successors(self, node: Node) -> list[Node]:
        """The nodes directly above ``node``: one quasi-identifier one step coarser (nothing in between)."""
        found = []
        for q, level in enumerate(node):
            ups = [j for j in self._up[q][level] if j != level]
            for j in ups:
                if not any(k != j and j in self._up[q][k] for k in ups):
                    found.append((*node[:q], j, *node[q + 1:]))
        return found

    def order_key(self, node: Node) -> tuple[float, int, Node]:
        """How nodes of equal loss are ranked: the less generalised first, then by their levels (deterministic)."""
        return (self.loss(node), self.height(node), node)


@dataclass(frozen=True)
class Outcome:
    """The optimum and runner-up (``None`` when no node passes), and how many nodes were evaluated."""

    optimum: Node | None
    runner_up: Node | None
    evaluated: int
    passing: int


def _choose(lattice: Lattice, passing: list[Node], evaluated: int) -> Outcome:
    if not passing:
        return Outcome(None, None, evaluated, 0)
    optimum = min(passing, key=lattice.order_key)
    generalisations = set(lattice.above(optimum))
    others = [n for n in passing if n not in generalisations]
    return Outcome(optimum, min(others, key=lattice.order_key) if others else None, evaluated, len(passing))


def exhaustive(lattice: Lattice, passes: Callable[[Node], bool]) -> Outcome:
    """Evaluate every node (no pruning): the reference the pruned search must agree with."""
    nodes = lattice.nodes()
    return _choose(lattice, [n for n in nodes if passes(n)], len(nodes))


def search(lattice: Lattice, passes: Callable[[Node], bool]) -> Outcome:
    """The pruned search: binary search along upward paths, tagging what monotonicity implies."""
    tags: dict[Node, bool] = {}
    evaluated = 0

    def evaluate(node: Node) -> bool:
        nonlocal evaluated
        if node in tags:
            return tags[node]
        evaluated += 1
        result = passes(node)
        for other in (lattice.above(node) if result else lattice.below(node)):
            tags[other] = result
        return result

    for start in sorted(lattice.nodes(), key=lambda n: (lattice.height(n), lattice.order_key(n))):
        if start in tags:
            continue
        path = [start]
        while True:
            ahead = [n for n in lattice.successors(path[-1]) if n not in tags]
            if not ahead:
                break
            path.append(min(ahead, key=lattice.order_key))
        low, high = 0, len(path) - 1
        while low <= high:
            middle = (low + high) // 2
            if evaluate(path[middle]):
                high = middle - 1
            else:
                low = middle + 1
    return _choose(lattice, [n for n, passed in tags.items() if passed], evaluated)
