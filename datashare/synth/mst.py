"""MST: (ε, δ)-differentially private synthesis from noisy 1- and 2-way marginals on a maximum spanning tree.

After McKenna, Miklau and Sheldon, "Winning the NIST Contest: A scalable and
general approach to differentially private synthetic data" (2021), simplified:

1. **Domains.** Numbers and dates are cut into ``bins`` equal bins between the
   public ``synthetic.bounds`` of the policy, or a range chosen privately from a
   noisy histogram over a public grid (years; powers of two) — values outside
   are clamped; NULL is a value of its own. Category levels are chosen privately: each level seen
   at least ``min_count`` times gets discrete Gaussian noise and is kept only
   if its noisy count clears ``min_count`` plus a margin T that a level's
   noise passes with probability at most δ_T (a *stability histogram*); the
   rest are merged into ``(other)``.
2. **1-way marginals** of every column, measured with noise.
3. **The tree.** For every pair of columns, how far their true 2-way marginal
   is from what independence of the noisy 1-way marginals predicts (an L1
   distance; one row moves it by at most 1), measured with noise; the maximum
   spanning tree of those noisy scores picks the pairs that matter most.
4. **2-way marginals** of the tree's pairs, measured with noise.
5. **The model** is post-processing: each tree marginal is fitted to the
   noisy 1-way marginals (iterative proportional fitting), then rows are
   drawn root first, each column from its conditional on its parent.

Every measurement is a count vector of L2 sensitivity 1 under adding or
removing one row, with exact discrete Gaussian noise (:mod:`noise`): each is
ρᵢ-zCDP with ρᵢ = 1/(2σᵢ²), and they add up to ρ. zCDP converts to
(ε, δ_c)-DP with ε = ρ + 2·√(ρ·ln(1/δ_c)) (Bun and Steinke 2016, Prop. 1.3);
the level selection adds δ_T per category column. Everything else — the
tree, the model, the rows — is computed from the noisy counts only, so it
costs no privacy.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from datashare.core.sql import quote_ident
from datashare.errors import PolicyError
from datashare.policy.model import Synthetic
from datashare.synth.columns import (
    DATE,
    HOLDOUT,
    ROWS_TABLE,
    TIMESTAMP,
    ColumnSpec,
    Staged,
    add_back,
    as_differences,
    count_marginals,
)
from datashare.synth.model import OTHER
from datashare.synth.noise import add_discrete_gaussian, tail_threshold

CODES_TABLE = "ds_synth_codes"  # temporary: the training rows as integer codes
SHARES = {"levels": 0.1, "one_way": 0.2, "selection": 0.1, "two_way": 0.6}
IPF_ROUNDS = 20
FLOAT_DIGITS = 2
_EPOCH = dt.date(1970, 1, 1)


@dataclass
class Accounting:
    """The privacy budget and how it was spent, written out in the report."""

    epsilon: float
    delta: float
    rho: float
    delta_conversion: float
    delta_levels: float
    category_columns: int
    private_ranges: list[str] = field(default_factory=list)  # numbers and dates whose range was chosen privately
    spent: dict[str, float] = field(default_factory=dict)
    sigma: dict[str, float] = field(default_factory=dict)
    formula: str = ("ρ = (√(ε + ln(1/δ_c)) − √(ln(1/δ_c)))², so that ε = ρ + 2·√(ρ·ln(1/δ_c)); "
                    "δ = δ_c + (category columns) × δ_T")


def rho_for(epsilon: float, delta: float) -> float:
    """The zCDP budget ρ whose conversion to (ε, δ)-DP gives exactly ``epsilon`` at ``delta``."""
    log_term = math.log(1 / delta)
    return (math.sqrt(epsilon + log_term) - math.sqrt(log_term)) ** 2


def epsilon_for(rho: float, delta: float) -> float:
    return rho + 2 * math.sqrt(rho * math.log(1 / delta))


@dataclass
class Domain:
    """The codes of one column: 0 is NULL; then levels (+ other) or bins."""

    column: ColumnSpec
    size: int
    levels: list[str] = field(default_factory=list)
    low: float = 0.0
    width: float = 1.0

    def code_sql(self, levels_table: str | None) -> str:
        if self.column.continuous:
            x = self.column.encode_sql()
            bins = self.size - 1
            return (f"CASE WHEN {x} IS NULL THEN 0 ELSE 1 + least(greatest(CAST(floor(({x} - {self.low!r}) / "
                    f"{self.width!r}) AS BIGINT), 0), {bins - 1}) END")
        value = f"CAST({quote_ident(self.column.name)} AS VARCHAR)"
        return (f"CASE WHEN {value} IS NULL THEN 0 ELSE coalesce((SELECT code FROM {levels_table} "
                f"WHERE level = {value}), {self.size - 1}) END")


@dataclass
class MSTModel:
    domains: list[Domain]
    order: list[int]  # columns in sampling order, the root first
    parent: dict[int, int]
    root_probs: Any
    conditionals: dict[int, Any]  # child -> (parent size × child size) row-stochastic matrix
    noisy_rows: int
    accounting: Accounting
    edges: list[tuple[str, str]]
    digits: dict[str, int | None] = field(default_factory=dict)

    def sample(self, n: int, rng: Any) -> dict[str, Any]:
        """``n`` rows drawn root first, each column from its conditional on its parent, all vectorised."""
        # deferred: numpy is heavy to import and only synthesis needs it
        import numpy as np

        codes: dict[int, Any] = {}
        root = self.order[0]
        codes[root] = _draw(np.cumsum(self.root_probs), rng.random(n))
        for child in self.order[1:]:
            parent_codes = codes[self.parent[child]]
            table = np.cumsum(self.conditionals[child], axis=1)
            size = table.shape[1]
            flat = (table + np.arange(table.shape[0])[:, None]).ravel()
            found = np.searchsorted(flat, parent_codes + rng.random(n), side="right") - parent_codes * size
            codes[child] = np.clip(found, 0, size - 1)
        drawn = {d.column.name: _decode(d, codes[i], rng) for i, d in enumerate(self.domains)}
        return add_back([d.column for d in self.domains], drawn)


def _draw(cumulative: Any, u: Any) -> Any:
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    return np.minimum(np.searchsorted(cumulative, u * cumulative[-1], side="right"), len(cumulative) - 1)


def _decode(domain: Domain, codes: Any, rng: Any) -> Any:
    """Codes back to encoded values: a level's text, or a uniform point inside a bin (NaN for NULL)."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    if domain.column.continuous:
        values = domain.low + (codes - 1 + rng.random(len(codes))) * domain.width
        return np.where(codes == 0, np.nan, values)
    labels = np.array([None, *domain.levels, OTHER], dtype=object)
    return labels[codes]


def _encoded_bound(column: ColumnSpec, value: Any) -> float:
    """A public bound in the column's encoding (:meth:`ColumnSpec.encode_sql`)."""
    if column.kind == DATE:
        return float((value - _EPOCH).days)
    if column.kind == TIMESTAMP:
        return float((value - _EPOCH).days * 86400)
    return float(value)


def _public_range(column: ColumnSpec, synthetic: Synthetic) -> tuple[float, float] | None:
    """The column's range from the policy's public bounds, if they give one.

    A difference ``a − b`` (a constraint ``a >= b``) runs from 0 to a's upper bound less b's lower one.
    """
    bounds = synthetic.bounds
    if column.minus is None:
        return tuple(_encoded_bound(column, v) for v in bounds[column.name]) if column.name in bounds else None
    if column.name not in bounds or column.minus.name not in bounds:
        return None
    high = _encoded_bound(column, bounds[column.name][1]) - _encoded_bound(column.minus, bounds[column.minus.name][0])
    return 0.0, max(high, 1.0)


def fit_mst(con: Any, staged: Staged, synthetic: Synthetic, *, epsilon: float, delta: float) -> MSTModel:
    """Measure the noisy marginals of the training rows and build the tree model.

    A constraint ``a >= b`` between two numbers or dates is modelled as the difference a − b (its range
    chosen privately), so the rows meet it by construction.
    """
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    columns = as_differences(staged.modelled, list(synthetic.constraints))
    categories = [c for c in columns if not c.continuous]
    unbounded = [c for c in columns if c.continuous and _public_range(c, synthetic) is None]
    histograms = len(categories) + len(unbounded)  # the domain step: one noisy histogram each
    shares = dict(SHARES) if histograms else {k: v / (1 - SHARES["levels"]) for k, v in SHARES.items()
                                              if k != "levels"}
    delta_conversion = delta / 2 if categories else delta
    delta_levels = delta / (2 * len(categories)) if categories else 0.0
    rho = rho_for(epsilon, delta_conversion)
    accounting = Accounting(epsilon, delta, rho, delta_conversion, delta_levels, len(categories),
                            private_ranges=[c.name if c.minus is None else f"{c.name} − {c.minus.name}"
                                            for c in unbounded])
    d = len(columns)

    domains = []
    levels_sigma2 = histograms / (2 * rho * shares["levels"]) if histograms else 0.0
    for i, c in enumerate(columns):
        if c.continuous:
            public = _public_range(c, synthetic)
            low, high = public if public is not None else _private_range(con, c, levels_sigma2, synthetic.min_count)
            domains.append(Domain(c, synthetic.bins + 1, low=low, width=(high - low) / synthetic.bins))
        else:
            levels = _private_levels(con, c, levels_sigma2, delta_levels, synthetic)
            domains.append(Domain(c, len(levels) + 2, levels=levels))
            con.execute(f"CREATE OR REPLACE TEMP TABLE ds_synth_levels_{i} (level VARCHAR, code INTEGER)")
            if levels:
                con.executemany(f"INSERT INTO ds_synth_levels_{i} VALUES (?, ?)",
                                [[level, j + 1] for j, level in enumerate(levels)])
    codes = ", ".join(f"{d_.code_sql(f'ds_synth_levels_{i}')} AS c{i}" for i, d_ in enumerate(domains))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {CODES_TABLE} AS SELECT {codes} FROM {ROWS_TABLE} "
                f"WHERE NOT {HOLDOUT}")
    one_true, two_true = count_marginals(con, CODES_TABLE, [d_.size for d_ in domains])

    sigma_one = d / (2 * rho * shares["one_way"])
    one = [np.array(add_discrete_gaussian(list(m), sigma_one), dtype=float) for m in one_true]
    noisy_rows = max(1, int(round(float(np.median([m.sum() for m in one])))))
    probs = [_probabilities(m, domains[i], synthetic.min_count) for i, m in enumerate(one)]

    pairs = sorted(two_true)
    edges: list[tuple[int, int]] = []
    sigma_select = len(pairs) / (2 * rho * shares["selection"]) if pairs else 0.0
    if pairs:
        scores = [int(np.abs(two_true[(i, j)] - np.round(noisy_rows * np.outer(probs[i], probs[j]))).sum())
                  for i, j in pairs]
        noisy_scores = add_discrete_gaussian(scores, sigma_select)
        edges = _maximum_spanning_tree(d, dict(zip(pairs, noisy_scores, strict=True)))
    sigma_two = max(len(edges), 1) / (2 * rho * shares["two_way"])
    measured = {edge: np.array(add_discrete_gaussian(list(two_true[edge].ravel()), sigma_two), dtype=float)
                .reshape(two_true[edge].shape) for edge in edges}

    order, parent = _tree_order(d, edges)
    conditionals = {}
    for child in order[1:]:
        p = parent[child]
        table = measured[(p, child)] if (p, child) in measured else measured[(child, p)].T
        conditionals[child] = _conditional(np.clip(table, 0, None), probs[p], probs[child])
    accounting.spent = {k: rho * v for k, v in shares.items()}
    accounting.sigma = {"levels": math.sqrt(levels_sigma2), "one_way": math.sqrt(sigma_one),
                        "selection": math.sqrt(sigma_select), "two_way": math.sqrt(sigma_two)}
    digits = {c.name: (0 if c.integer else FLOAT_DIGITS) for c in columns if c.kind == "number"}
    return MSTModel(domains, order, parent, probs[order[0]], conditionals, noisy_rows, accounting,
                    [(columns[a].name, columns[b].name) for a, b in edges], digits)


YEARS = (1900, 2100)  # the public grid of a date column's private range: calendar years
SPURIOUS_CELL = 1e-6  # the chance that an empty cell of the grid stretches a private range (a utility margin)
MAGNITUDES = 64  # the public grid of a number's private range: ±[2^(k-1) - 1, 2^k - 1) for k = 1…64, and 0


def _private_range(con: Any, column: ColumnSpec, sigma2: float, min_count: int) -> tuple[float, float]:
    """A number's or date's range, chosen privately: a noisy histogram over a fixed public grid (years for
    dates, powers of two for numbers), every cell noised, empty or not; the range spans the cells whose noisy
    count clears ``min_count`` plus a margin that no empty cell's noise is likely to reach.
    """
    x = column.encode_sql() if column.minus is not None else quote_ident(column.name)
    by_year = column.continuous and column.kind != "number" and column.minus is None  # a difference: a number
    if by_year:
        cells = list(range(YEARS[0], YEARS[1] + 1))
        bucket = f"least(greatest(year({x}), {YEARS[0]}), {YEARS[1]})"
    else:
        cells = list(range(-MAGNITUDES, MAGNITUDES + 1))
        value = f"CAST({x} AS DOUBLE)"
        bucket = (f"CASE WHEN {value} = 0 THEN 0 ELSE CAST(sign({value}) * least(floor(log2(abs({value}) + 1)) + 1, "
                  f"{MAGNITUDES}) AS INTEGER) END")
    counted = dict(con.execute(f"SELECT {bucket} AS b, count(*) FROM {ROWS_TABLE} WHERE NOT {HOLDOUT} AND {x} IS "
                               "NOT NULL GROUP BY b").fetchall())
    noisy = add_discrete_gaussian([counted.get(cell, 0) for cell in cells], sigma2)
    # high enough that an empty cell's noise clears it with probability at most SPURIOUS_CELL over the grid
    bar = min_count + tail_threshold(sigma2, SPURIOUS_CELL / len(cells))
    kept = [cell for cell, n in zip(cells, noisy, strict=True) if n >= bar]
    if not kept:
        raise PolicyError(f"mst could not find the range of {column.name!r} privately (too few rows for the "
                          "noise)", hint=f"Give public bounds: synthetic.bounds.{column.name}: [low, high].")
    low, high = min(kept), max(kept)
    if by_year:
        days = [float((dt.date(year, 1, 1) - _EPOCH).days) for year in (low, high + 1)]
        return (days[0], days[1]) if column.kind == "date" else (days[0] * 86400, days[1] * 86400)

    def edge(cell: int, upper: bool) -> float:
        k = abs(cell) + (1 if upper == (cell >= 0) else 0)
        magnitude = 0.0 if cell == 0 else float(2 ** (k - 1) - 1)
        return magnitude if cell >= 0 else -magnitude

    return edge(low, upper=False), max(edge(high, upper=True), edge(low, upper=False) + 1.0)


def _private_levels(con: Any, column: ColumnSpec, sigma2: float, delta_levels: float,
                    synthetic: Synthetic) -> list[str]:
    """Levels whose noisy count clears ``min_count`` + T; only levels with ``min_count`` true rows are tried.

    A level just below ``min_count`` in one dataset and at it in a neighbour is tried in one only: the margin
    T makes its release there happen with probability at most δ_T.
    """
    value = column.encode_sql()
    found = con.execute(f"SELECT v, n FROM (SELECT {value} AS v, count(*) AS n FROM {ROWS_TABLE} WHERE NOT "
                        f"{HOLDOUT} GROUP BY ALL) WHERE v IS NOT NULL AND n >= ? ORDER BY v",
                        [synthetic.min_count]).fetchall()
    if not found:
        return []
    noisy = add_discrete_gaussian([n for _, n in found], sigma2)
    bar = synthetic.min_count + tail_threshold(sigma2, delta_levels)
    kept = sorted(((c, v) for (v, _), c in zip(found, noisy, strict=True) if c >= bar), reverse=True)
    return [v for _, v in kept[: synthetic.max_levels]]


def _probabilities(noisy: Any, domain: Domain, min_count: int) -> Any:
    """A noisy count vector as probabilities: negatives to 0; a level below min_count is never emitted."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    counts = np.clip(noisy, 0, None)
    if not domain.column.continuous:
        counts[1:] = np.where(counts[1:] < min_count, 0.0, counts[1:])
    total = counts.sum()
    return counts / total if total > 0 else np.full(len(counts), 1.0 / len(counts))


def _maximum_spanning_tree(d: int, scores: dict[tuple[int, int], int]) -> list[tuple[int, int]]:
    """Kruskal's algorithm on the noisy scores (post-processing: only noisy numbers are read)."""
    group = list(range(d))

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    edges = []
    for (i, j), _ in sorted(scores.items(), key=lambda item: (-item[1], item[0])):
        a, b = root(i), root(j)
        if a != b:
            group[a] = b
            edges.append((i, j))
    return edges


def _tree_order(d: int, edges: list[tuple[int, int]]) -> tuple[list[int], dict[int, int]]:
    """Breadth-first order of the tree from column 0, with each column's parent (the tree spans all columns)."""
    neighbours: dict[int, list[int]] = {i: [] for i in range(d)}
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    order, parent, seen = [0], {}, {0}
    for node in order:
        for nxt in sorted(neighbours[node]):
            if nxt not in seen:
                seen.add(nxt)
                parent[nxt] = node
                order.append(nxt)
    return order, parent


def _conditional(table: Any, parent_probs: Any, child_probs: Any) -> Any:
    """P(child | parent) from a noisy 2-way table made consistent with the noisy 1-way marginals (IPF)."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    joint = table + 1e-9
    for _ in range(IPF_ROUNDS):
        joint *= (parent_probs / np.maximum(joint.sum(axis=1), 1e-300))[:, None]
        joint *= (child_probs / np.maximum(joint.sum(axis=0), 1e-300))[None, :]
    joint[:, child_probs == 0] = 0.0
    rows = joint.sum(axis=1, keepdims=True)
    fallback = child_probs / child_probs.sum() if child_probs.sum() > 0 else np.full(len(child_probs),
                                                                                      1 / len(child_probs))
    return np.where(rows > 0, joint / np.where(rows > 0, rows, 1.0), fallback[None, :])
