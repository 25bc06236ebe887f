"""The Gaussian copula: marginals counted in DuckDB, one correlation matrix over normal scores, numpy sampling.

Each column keeps its own distribution (its marginal): category frequencies,
a grid of quantiles for numbers and dates (dates as days), and its share of
NULLs. What ties the columns together is the correlation of their *normal
scores* — each value replaced by the standard-normal quantile of its rank —
measured on a sample of training rows. Sampling draws correlated normals, turns
each back into a rank (Φ) and the rank into a value through the column's
marginal. Fast and faithful, but **not** differentially private: the marginals
are exact counts.

Rare values are never emitted: a category level seen fewer than ``min_count``
times is merged into ``(other)`` (itself emitted only when it is that common),
at most ``max_levels`` levels are kept, and the quantile grid stops
``min_count`` rows short of each end, so no extreme real value is reproduced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from datashare.core.sql import quote_ident
from datashare.synth.columns import HOLDOUT, ROWS_TABLE, ColumnSpec, add_back, fetch_encoded

OTHER = "(other)"
QUANTILES = 1001  # grid points of a numeric marginal
CORRELATION_SAMPLE = 50_000  # training rows whose normal scores give the copula's correlation
MAX_DIGITS = 4
EXACT_DISTINCT = 100_000  # up to this many distinct values, quantiles come from exact counts
QUANTILE_SAMPLE = 200_000  # numbers are rounded to the fewest decimals (up to this) that every training value has


@dataclass
class Categorical:
    """Codes 0 = NULL, 1…L = ``levels``, L+1 = :data:`OTHER`; ``probs`` over those codes."""

    levels: list[str]
    probs: Any  # numpy array, len(levels) + 2
    other_emitted: bool

    def labels(self) -> Any:
        # deferred: numpy is heavy to import and only synthesis needs it
        import numpy as np

        return np.array([None, *self.levels, OTHER if self.other_emitted else None], dtype=object)


@dataclass
class Continuous:
    """A quantile grid (``values`` at ``probs``) for the non-NULL values, and the NULL share."""

    probs: Any
    values: Any
    null_share: float
    digits: int | None


@dataclass
class CopulaModel:
    columns: list[ColumnSpec]
    marginals: dict[str, Categorical | Continuous]
    cholesky: Any
    correlation: Any
    notes: list[str] = field(default_factory=list)

    def sample(self, n: int, rng: Any) -> dict[str, Any]:
        """``n`` rows: categories as object arrays of text (None for NULL), the rest as floats (NaN for NULL)."""
        # deferred: numpy is heavy to import and only synthesis needs it
        import numpy as np

        z = np.einsum("ij,kj->ik", rng.standard_normal((n, len(self.columns))), self.cholesky)  # no BLAS threads
        u = normal_cdf(z)
        out = {}
        for j, column in enumerate(self.columns):
            out[column.name] = draw_from_marginal(self.marginals[column.name], u[:, j])
        return add_back(self.columns, out)


def draw_from_marginal(marginal: Categorical | Continuous, u: Any) -> Any:
    """Values for uniforms ``u`` through the marginal's inverse CDF."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    if isinstance(marginal, Categorical):
        cumulative = np.cumsum(marginal.probs)
        codes = np.minimum(np.searchsorted(cumulative, u, side="right"), len(marginal.probs) - 1)
        return marginal.labels()[codes]
    p = marginal.null_share
    rescaled = np.clip((u - p) / max(1.0 - p, 1e-12), 0.0, 1.0)
    values = np.interp(rescaled, marginal.probs, marginal.values)
    return np.where(u < p, np.nan, values)


def fit_categorical(con: Any, column: ColumnSpec, *, min_count: int, max_levels: int) -> Categorical:
    """Exact level counts of the training rows (rare levels merged, kept only when common enough)."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    value = column.encode_sql()
    counted = f"SELECT {value} AS v, count(*) AS n FROM {ROWS_TABLE} WHERE NOT {HOLDOUT} GROUP BY ALL"
    kept = con.execute(f"SELECT v, n FROM ({counted}) WHERE v IS NOT NULL AND n >= ? ORDER BY n DESC, v LIMIT ?",
                       [min_count, max_levels]).fetchall()
    nulls, total = con.execute(f"SELECT count(*) FILTER (WHERE {quote_ident(column.name)} IS NULL), count(*) "
                               f"FROM {ROWS_TABLE} WHERE NOT {HOLDOUT}").fetchone()
    other = total - nulls - sum(n for _, n in kept)
    counts = np.array([nulls, *(n for _, n in kept), other if other >= min_count else 0], dtype=float)
    return Categorical([v for v, _ in kept], counts / max(counts.sum(), 1.0), other >= min_count)


def fit_continuous(con: Any, columns: list[ColumnSpec], *, min_count: int, seed: int) -> dict[str, Continuous]:
    """Quantile grids, NULL shares and decimals of every numeric and date column of the training rows.

    Quantiles come from DuckDB's counts of each distinct value (exact), or, for a column with more than
    :data:`EXACT_DISTINCT` distinct values, from a :data:`QUANTILE_SAMPLE`-row sample of it. The grid stops
    ``min_count`` values short of both ends: the extremes are single people's values.
    """
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    if not columns:
        return {}
    train = f"FROM {ROWS_TABLE} WHERE NOT {HOLDOUT}"
    parts = [f"count({c.encode_sql()})" for c in columns]
    parts += [f"bool_and({c.encode_sql()} = round({c.encode_sql()}, {d}))" for c in columns
              for d in range(MAX_DIGITS + 1)]
    row = con.execute(f"SELECT count(*), {', '.join(parts)} {train}").fetchone()
    total, counts, exact = row[0], row[1:1 + len(columns)], row[1 + len(columns):]
    grid = np.linspace(0.0, 1.0, QUANTILES)
    fitted = {}
    for i, c in enumerate(columns):
        x = c.encode_sql()
        tail = min(min_count / max(int(counts[i]), 1), 0.5)
        probs = np.linspace(tail, 1.0 - tail, QUANTILES)
        found = con.execute(f"SELECT v, n FROM (SELECT {x} AS v, count(*) AS n {train} AND v IS NOT NULL "
                            f"GROUP BY v) ORDER BY v LIMIT {EXACT_DISTINCT + 1}").fetchnumpy()
        if len(found["v"]) <= EXACT_DISTINCT:
            values = _weighted_quantiles(np.asarray(found["v"], float), np.asarray(found["n"], float), probs)
        else:
            sampled = con.execute(f"SELECT * FROM (SELECT {x} AS v {train} AND v IS NOT NULL) USING SAMPLE "
                                  f"reservoir({QUANTILE_SAMPLE} ROWS) REPEATABLE ({int(seed)})").fetchnumpy()
            values = np.quantile(np.asarray(sampled["v"], float), probs)
        digits = next((d for d, ok in enumerate(exact[i * (MAX_DIGITS + 1):(i + 1) * (MAX_DIGITS + 1)]) if ok),
                      None)
        fitted[c.name] = Continuous(grid, values, 1.0 - counts[i] / total if total else 1.0, digits)
    return fitted


def _weighted_quantiles(values: Any, counts: Any, probs: Any) -> Any:
    """``quantile_cont`` of the data in which each of the sorted ``values`` occurs ``counts`` times."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    if len(values) == 0:
        return np.zeros(len(probs))
    ends = np.cumsum(counts)  # 0-based position of each value's last copy is ends - 1
    position = probs * (ends[-1] - 1)
    below = np.searchsorted(ends, np.floor(position), side="right")
    above = np.searchsorted(ends, np.ceil(position), side="right")
    low, high = values[np.minimum(below, len(values) - 1)], values[np.minimum(above, len(values) - 1)]
    return low + (high - low) * (position - np.floor(position))


def fit_copula(con: Any, columns: list[ColumnSpec], *, min_count: int, max_levels: int, seed: int) -> CopulaModel:
    """Marginals from exact counts (DuckDB), the correlation from normal scores of a training sample (numpy).

    ``columns`` are the staged columns to model, some maybe as differences (:func:`columns.as_differences`).
    """
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    marginals: dict[str, Categorical | Continuous] = dict(
        fit_continuous(con, [c for c in columns if c.continuous], min_count=min_count, seed=seed))
    for c in columns:
        if not c.continuous:
            marginals[c.name] = fit_categorical(con, c, min_count=min_count, max_levels=max_levels)
    sample = fetch_encoded(con, columns, holdout=False, limit=CORRELATION_SAMPLE, seed=seed)
    rng = np.random.default_rng(seed)
    scores = np.column_stack([normal_quantile(_uniform_scores(sample[c.name], marginals[c.name], rng))
                              for c in columns]) if columns else np.zeros((0, 0))
    correlation = _nearest_correlation(np.corrcoef(scores, rowvar=False) if len(columns) > 1
                                       else np.ones((len(columns), len(columns))))
    return CopulaModel(columns, marginals, np.linalg.cholesky(correlation), correlation)


def _uniform_scores(values: Any, marginal: Categorical | Continuous, rng: Any) -> Any:
    """Each sampled value as a uniform in (0, 1) consistent with how :func:`draw_from_marginal` reads it."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    n = len(values)
    if isinstance(marginal, Categorical):
        codes = level_codes(values, marginal.levels)
        cumulative = np.concatenate([[0.0], np.cumsum(marginal.probs)])
        low, high = cumulative[codes], cumulative[codes + 1]
        return np.clip(low + (high - low) * rng.random(n), 1e-9, 1 - 1e-9)
    missing = np.isnan(values)
    p = marginal.null_share
    order = np.lexsort((rng.random(n), np.where(missing, np.inf, values)))
    ranks = np.empty(n)
    ranks[order] = np.arange(n)
    present = max(int((~missing).sum()), 1)
    u = np.where(missing, rng.random(n) * p, p + (1 - p) * (ranks + 0.5) / present)
    return np.clip(u, 1e-9, 1 - 1e-9)


def level_codes(values: Any, levels: list[str]) -> Any:
    """Codes of text values (an object array, None for NULL): 0 for NULL, i + 1 for ``levels[i]``, and
    len(levels) + 1 for any other value; by sorting and binary search, not a lookup per value."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    missing = np.equal(values, None)
    text = np.where(missing, "", values).astype(str)
    if not levels:
        return np.where(missing, 0, 1)
    order = np.argsort(np.array(levels, dtype=str))
    ordered = np.array(levels, dtype=str)[order]
    position = np.minimum(np.searchsorted(ordered, text), len(levels) - 1)
    found = ordered[position] == text
    return np.where(missing, 0, np.where(found, order[position] + 1, len(levels) + 1)).astype(np.int64)


def _nearest_correlation(matrix: Any) -> Any:
    """A valid (positive definite) correlation matrix close to ``matrix``: eigenvalues floored, diagonal 1."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    matrix = np.nan_to_num(np.asarray(matrix, dtype=float), nan=0.0)
    np.fill_diagonal(matrix, 1.0)
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    fixed = vectors @ np.diag(np.maximum(values, 1e-6)) @ vectors.T
    scale = np.sqrt(np.diag(fixed))
    return fixed / np.outer(scale, scale)


def normal_cdf(z: Any) -> Any:
    """Φ(z), from the complementary error function (Numerical Recipes' erfcc, fractional error < 1.2e-7)."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    x = -np.asarray(z, dtype=float) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.5 * np.abs(x))
    poly = -x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return 0.5 * np.where(x >= 0, erfc, 2.0 - erfc)


# Acklam's rational approximation of the normal quantile (relative error < 1.15e-9).
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
      -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
      -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
      4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_LOW = 0.02425


def normal_quantile(p: Any) -> Any:
    """Φ⁻¹(p) for p in (0, 1), vectorised."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    q = np.sqrt(-2 * np.log(np.minimum(p, 1 - p)))
    tail = (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / \
        ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1)
    r = (p - 0.5) ** 2
    central = (p - 0.5) * (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) / \
        (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1)
    return np.where(p < _LOW, tail, np.where(p > 1 - _LOW, -tail, central))
