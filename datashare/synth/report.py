"""The fidelity and privacy report, measured on the written synthetic rows against a holdout the model never saw.

Every column is cut into the same bins for the real and the synthetic rows
(quantile bins of the holdout for numbers and dates, its commonest levels for
categories, NULL apart); the counts are taken in DuckDB over the whole
holdout and the whole synthetic table. Row-level figures (distance to the
closest record, membership inference, the downstream model) use bounded
samples in numpy.
"""

from __future__ import annotations

from typing import Any

from datashare.core.sql import sql_string_literal
from datashare.synth.columns import HOLDOUT, ROWS_TABLE, ColumnSpec, Staged, count_marginals
from datashare.synth.output import OUT_TABLE, Built

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
NUMERIC_BINS = 20
TOP_LEVELS = 30
DISTANCE_ROWS = 2000  # rows of each side for distances (DCR, membership inference)
MODEL_ROWS = 4000  # rows of each side for the downstream model

EXPLAINED = {
    "column_shape_mean": "How alike each column's distribution is in the synthetic and the real (holdout) rows: "
                         "1 minus the total variation distance between their histograms, averaged over columns. "
                         "1 is identical; 0 is nothing in common.",
    "column_pair_mean": "How alike the relationships between pairs of columns are: for two numbers or dates, "
                        "1 minus half the difference of their correlations; otherwise 1 minus the total variation "
                        "distance between their two-way tables. Averaged over all pairs.",
    "overall": "The mean of the column-shape and column-pair figures.",
    "downstream": "A logistic regression predicting one column from the others, trained once on real training "
                  "rows and once on synthetic rows, both tested on the real holdout. Close accuracies mean the "
                  "synthetic rows teach what the real ones teach.",
    "exact_row_copies": "Synthetic rows identical to a real row on every modelled column. Must be 0: such rows "
                        "were drawn again before release.",
    "quasi_identifier_copies": "Synthetic rows whose quasi-identifier combination is a rare one (fewer than k "
                               "people) in the real data. Must be 0: such rows were drawn again before release.",
    "dcr_share": "Distance to closest record: for each synthetic row, is its nearest real row a training row (the "
                 "model saw it) or a holdout row (it did not)? The share closer to training rows. About 0.5 means "
                 "the model did not memorise its training rows; well above 0.5 means it copies them.",
    "membership_auc": "A simple membership-inference attack: guess that real rows with a synthetic row very close "
                      "to them were in the training data. 0.5 means the attack does no better than a coin; 1.0 "
                      "means it always tells members apart.",
    "guarantee": "The only formal privacy guarantee, if any: the figures above are measurements on one release, "
                 "not promises.",
}


def statement(method: str, epsilon: float | None, delta: float | None) -> str:
    if method == "mst":
        return (f"Differentially private: ({epsilon:g}, {delta:g})-DP with respect to adding or removing one row "
                "of the dataset. This is the only formal guarantee; the report's figures are measurements, and "
                "are computed from real rows (not covered by ε).")
    return ("NOT differentially private: a Gaussian copula fitted to exact counts of the real rows. No formal "
            "guarantee; the report's privacy figures are measurements of this release only.")


def _bins(con: Any, columns: list[ColumnSpec]) -> list[tuple[str, int]]:
    """For each column, SQL giving its bin (0 = NULL) and the number of bins, set by all real rows alike.

    Train and holdout rows must be binned the same way: levels or cuts taken from one side only would put
    more of the other side's rows in the catch-all bin, and make them look closer to the synthetic rows.
    """
    held = f"FROM {ROWS_TABLE} WHERE true"
    binned = []
    for c in columns:
        x = c.encode_sql()
        if c.continuous:
            probs = [i / NUMERIC_BINS for i in range(1, NUMERIC_BINS)]
            cuts = con.execute(f"SELECT approx_quantile({x}, ?::FLOAT[]) {held}", [probs]).fetchone()[0] or []
            cuts = sorted(set(float(v) for v in cuts))
            steps = " + ".join(f"CAST({x} >= {v!r} AS INTEGER)" for v in cuts) or "0"
            binned.append((f"CASE WHEN {x} IS NULL THEN 0 ELSE 1 + {steps} END", len(cuts) + 2))
        else:
            top = [v for (v,) in con.execute(f"SELECT {x} AS v {held} AND v IS NOT NULL GROUP BY v "
                                             f"ORDER BY count(*) DESC, v LIMIT {TOP_LEVELS}").fetchall()]
            listed = "[" + ", ".join(sql_string_literal(v) for v in top) + "]::VARCHAR[]"
            binned.append((f"CASE WHEN {x} IS NULL THEN 0 ELSE coalesce(list_position({listed}, {x}), "
                           f"{len(top) + 1}) END", len(top) + 2))
    return binned


def _tvd(p: Any, q: Any) -> float:
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.sum() == 0 or q.sum() == 0:
        return 1.0
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def measure(con: Any, staged: Staged, built: Built, *, seed: int) -> dict[str, Any]:
    """Fidelity and privacy figures of :data:`OUT_TABLE` against the holdout of :data:`ROWS_TABLE`."""
    columns = staged.modelled
    bins = _bins(con, columns)
    select = ", ".join(f"{sql} AS c{i}" for i, (sql, _) in enumerate(bins))
    sizes = [size for _, size in bins]
    real_one, real_two = count_marginals(con, f"(SELECT {select} FROM {ROWS_TABLE} WHERE {HOLDOUT})", sizes)
    syn_one, syn_two = count_marginals(con, f"(SELECT {select} FROM {OUT_TABLE})", sizes)
    shapes = {c.name: 1 - _tvd(real_one[i], syn_one[i]) for i, c in enumerate(columns)}
    pairs = {}
    for (i, j), table in real_two.items():
        a, b = columns[i], columns[j]
        entry: dict[str, Any] = {"contingency": 1 - _tvd(table, syn_two[(i, j)])}
        if a.continuous and b.continuous:
            real_r, syn_r = (con.execute(f"SELECT corr({a.encode_sql()}, {b.encode_sql()}) FROM {source}")
                             .fetchone()[0] for source in (f"{ROWS_TABLE} WHERE {HOLDOUT}", OUT_TABLE))
            if real_r is not None and syn_r is not None:
                entry.update(real_correlation=real_r, synthetic_correlation=syn_r,
                             correlation=1 - abs(real_r - syn_r) / 2)
        entry["score"] = entry.get("correlation", entry["contingency"])
        pairs[f"{a.name} | {b.name}"] = entry
    shape_mean = _mean(shapes.values())
    pair_mean = _mean(p["score"] for p in pairs.values()) if pairs else None
    overall = shape_mean if pair_mean is None else (shape_mean + pair_mean) / 2
    rows = _row_samples(con, bins, columns, staged, seed)
    return {
        "fidelity": {"column_shapes": shapes, "column_shape_mean": shape_mean, "column_pairs": pairs,
                     "column_pair_mean": pair_mean, "overall": overall,
                     "downstream": _downstream(rows, columns, sizes)},
        "privacy": {"exact_row_copies": built.row_copies, "quasi_identifier_copies": built.qi_copies,
                    "constraint_breaches": built.constraint_breaches, **_distances(rows, columns)},
        "measured_on": {"holdout_rows": staged.holdout_rows, "synthetic_rows": built.rows,
                        "distance_rows": len(rows["holdout"]["codes"])},
    }


def _mean(values: Any) -> float:
    values = list(values)
    return float(sum(values) / len(values)) if values else 0.0


def _row_samples(con: Any, bins: list[tuple[str, int]], columns: list[ColumnSpec], staged: Staged,
                 seed: int) -> dict[str, Any]:
    """Bounded samples of train, holdout and synthetic rows: bin codes, and continuous values scaled."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    n = max(1, min(MODEL_ROWS, staged.train_rows, staged.holdout_rows))
    codes = ", ".join(f"{sql} AS c{i}" for i, (sql, _) in enumerate(bins))
    values = ", ".join(f"{c.encode_sql()} AS v{i}" for i, c in enumerate(columns))
    # the scale of each number: its 1st to 99th percentile over all real rows (no clipping: extremes stay apart)
    ranges = con.execute("SELECT " + ", ".join(f"approx_quantile({c.encode_sql()}, 0.01), approx_quantile("
                                               f"{c.encode_sql()}, 0.99)" if c.continuous else "NULL, NULL"
                                               for c in columns)
                         + f" FROM {ROWS_TABLE}").fetchone()
    out = {}
    for side, source in (("train", f"{ROWS_TABLE} WHERE NOT {HOLDOUT}"), ("holdout", f"{ROWS_TABLE} WHERE {HOLDOUT}"),
                         ("synthetic", OUT_TABLE)):
        # sample first, then bin: the bins' SQL runs on the sampled rows only
        fetched = con.execute(f"SELECT {codes}, {values} FROM (SELECT * FROM (SELECT * FROM {source}) USING SAMPLE "
                              f"reservoir({n} ROWS) REPEATABLE ({int(seed)}))").fetchnumpy()
        code_matrix = np.column_stack([np.asarray(fetched[f"c{i}"], dtype=np.int64) for i in range(len(columns))])
        scaled = np.full(code_matrix.shape, np.nan)
        for i, c in enumerate(columns):
            if c.continuous and ranges[2 * i] is not None:
                low, high = float(ranges[2 * i]), float(ranges[2 * i + 1])
                raw = np.ma.filled(np.ma.asarray(fetched[f"v{i}"], dtype=float), np.nan)
                scaled[:, i] = (raw - low) / (high - low if high > low else 1.0)
        out[side] = {"codes": code_matrix, "scaled": scaled}
    return out


def _gower(a: dict[str, Any], b: dict[str, Any], columns: list[ColumnSpec]) -> Any:
    """For each row of ``a``, the distance to its closest row of ``b`` (mean over columns, each in [0, 1])."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    continuous = np.array([c.continuous for c in columns])
    categorical = ~continuous
    closest = np.empty(len(a["codes"]))
    b_codes = b["codes"][:, categorical]
    b_scaled = b["scaled"][:, continuous].astype(np.float32)
    for start in range(0, len(a["codes"]), 256):
        stop = start + 256
        total = (a["codes"][start:stop, None, categorical] != b_codes[None, :, :]).sum(axis=2, dtype=np.float32)
        if continuous.any():
            sa, sb = a["scaled"][start:stop, None, continuous].astype(np.float32), b_scaled[None, :, :]
            gap = np.minimum(np.abs(sa - sb), np.float32(1.0))
            gap = np.where(np.isnan(gap), np.where(np.isnan(sa) & np.isnan(sb), np.float32(0), np.float32(1)), gap)
            total += gap.sum(axis=2)
        closest[start:stop] = total.min(axis=1) / len(columns)
    return closest


def _subsample(side: dict[str, Any], n: int) -> dict[str, Any]:
    return {key: value[:n] for key, value in side.items()}


def _distances(rows: dict[str, Any], columns: list[ColumnSpec]) -> dict[str, Any]:
    """DCR share (synthetic rows closer to training than to holdout rows) and a distance-based membership AUC."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    n = min(DISTANCE_ROWS, len(rows["train"]["codes"]), len(rows["holdout"]["codes"]),
            len(rows["synthetic"]["codes"]))
    train, holdout, synthetic = (_subsample(rows[s], n) for s in ("train", "holdout", "synthetic"))
    to_train, to_holdout = _gower(synthetic, train, columns), _gower(synthetic, holdout, columns)
    share = float(np.mean(np.where(to_train < to_holdout, 1.0, np.where(to_train == to_holdout, 0.5, 0.0))))
    members, others = _gower(train, synthetic, columns), _gower(holdout, synthetic, columns)
    return {"dcr_share": share, "membership_auc": _auc(-members, -others)}


def _auc(positive: Any, negative: Any) -> float:
    """P(a positive scores above a negative), ties counted half (the Mann–Whitney statistic)."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    scores = np.concatenate([positive, negative])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)) if n_pos and n_neg else 0.5


def _one_hot(codes: Any, sizes: list[int], skip: int) -> Any:
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    blocks = [np.eye(size)[np.clip(codes[:, i], 0, size - 1)] for i, size in enumerate(sizes) if i != skip]
    return np.column_stack([np.ones(len(codes)), *blocks])


def _logistic(x: Any, y: Any, rounds: int = 300, ridge: float = 1e-3) -> Any:
    """Weights of a ridge logistic regression, by gradient descent with a step safe for one-hot rows.

    No BLAS or LAPACK call: a threaded BLAS on a busy machine spins for seconds on matrices this small.
    """
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    w = np.zeros(x.shape[1])
    step = 4.0 / max(float(np.einsum("ij,ij->i", x, x).max()), 1.0)  # 1 / Lipschitz bound of the mean loss
    for _ in range(rounds):
        p = 1 / (1 + np.exp(-np.clip(np.einsum("ij,j->i", x, w), -30, 30)))
        w -= step * (np.einsum("ij,i->j", x, p - y) / len(y) + ridge * w)
    return w


def _downstream(rows: dict[str, Any], columns: list[ColumnSpec], sizes: list[int]) -> dict[str, Any] | None:
    """Predict the holdout's commonest level of a category column (else a number's top half) from the rest."""
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    if len(columns) < 2:
        return None
    target = next((i for i, c in enumerate(columns) if not c.continuous and sizes[i] > 2), 0)
    held = rows["holdout"]["codes"]
    values, counts = np.unique(held[:, target], return_counts=True)
    if columns[target].continuous:
        positive = held[:, target] > np.median(held[:, target])
        label = lambda codes: codes[:, target] > np.median(held[:, target])  # noqa: E731
    else:
        common = values[counts.argmax()]
        label = lambda codes: codes[:, target] == common  # noqa: E731
        positive = label(held)
    test_x, test_y = _one_hot(held, sizes, target), positive.astype(float)
    result: dict[str, Any] = {"target": columns[target].name, "task": "commonest level vs the rest"
                              if not columns[target].continuous else "above the median vs below",
                              "baseline_accuracy": float(max(test_y.mean(), 1 - test_y.mean()))}
    for side in ("train", "synthetic"):
        codes = rows[side]["codes"]
        y = label(codes).astype(float)
        w = _logistic(_one_hot(codes, sizes, target), y)
        result[f"accuracy_trained_on_{'real' if side == 'train' else 'synthetic'}"] = float(
            np.mean((np.einsum("ij,j->i", test_x, w) > 0) == (test_y > 0.5)))
    return result


def document(*, method: str, figures: dict[str, Any], privacy: dict[str, Any], dataset: str, policy: str,
             rows: int) -> dict[str, Any]:
    """The whole report: what was made, the figures, the guarantee, and what each figure means."""
    return {"dataset": dataset, "policy": policy, "method": method, "rows": rows,
            "differentially_private": method == "mst",
            "guarantee": statement(method, privacy.get("epsilon"), privacy.get("delta")),
            "privacy_accounting": privacy if method == "mst" else None,
            **figures, "explanations": EXPLAINED}


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report's headline figures, for the manifest."""
    fidelity, privacy = report["fidelity"], report["privacy"]
    return {"column_shape_mean": fidelity["column_shape_mean"], "column_pair_mean": fidelity["column_pair_mean"],
            "overall": fidelity["overall"], "exact_row_copies": privacy["exact_row_copies"],
            "quasi_identifier_copies": privacy["quasi_identifier_copies"], "dcr_share": privacy["dcr_share"],
            "membership_auc": privacy["membership_auc"], "differentially_private": report["differentially_private"],
            "files": [REPORT_JSON, REPORT_HTML]}


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Synthetic data report: {{ r.dataset }}</title>
<style>
body { font: 15px/1.45 system-ui, sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .5em 0; } td, th { padding: .2em .8em; border-bottom: 1px solid #eee;
text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.guarantee { padding: .8em 1em; background: {{ '#eef7ee' if r.differentially_private else '#fff4e5' }};
border-left: 4px solid {{ '#2e7d32' if r.differentially_private else '#ef6c00' }}; }
p.what { color: #555; font-size: .92em; margin: .2em 0 1em; }
</style></head><body>
<h1>Synthetic data report: {{ r.dataset }} ({{ r.method }})</h1>
<p>{{ "{:,}".format(r.rows) }} synthetic rows under policy {{ r.policy }}, measured against
{{ "{:,}".format(r.measured_on.holdout_rows) }} real holdout rows the model never saw.</p>
<p class="guarantee">{{ r.guarantee }}</p>
<h2>Fidelity</h2>
<table>
<tr><td>Column shapes</td><td class="n">{{ "%.3f"|format(r.fidelity.column_shape_mean) }}</td></tr>
{% if r.fidelity.column_pair_mean is not none %}
<tr><td>Column pairs</td><td class="n">{{ "%.3f"|format(r.fidelity.column_pair_mean) }}</td></tr>{% endif %}
<tr><td>Overall</td><td class="n">{{ "%.3f"|format(r.fidelity.overall) }}</td></tr>
</table>
<p class="what">{{ r.explanations.column_shape_mean }}</p>
<p class="what">{{ r.explanations.column_pair_mean }}</p>
<table><tr><th>column</th><th>shape similarity</th></tr>
{% for name, score in r.fidelity.column_shapes.items() %}
<tr><td>{{ name }}</td><td class="n">{{ "%.3f"|format(score) }}</td></tr>{% endfor %}
</table>
{% if r.fidelity.downstream %}{% set d = r.fidelity.downstream %}
<h3>Downstream check: predicting {{ d.target }} ({{ d.task }})</h3>
<table>
<tr><td>Trained on real rows</td><td class="n">{{ "%.3f"|format(d.accuracy_trained_on_real) }}</td></tr>
<tr><td>Trained on synthetic rows</td><td class="n">{{ "%.3f"|format(d.accuracy_trained_on_synthetic) }}</td></tr>
<tr><td>Always guessing the commoner answer</td><td class="n">{{ "%.3f"|format(d.baseline_accuracy) }}</td></tr>
</table>
<p class="what">{{ r.explanations.downstream }}</p>{% endif %}
<h2>Privacy</h2>
<table>
<tr><td>Exact copies of real rows</td><td class="n">{{ r.privacy.exact_row_copies }}</td></tr>
<tr><td>Rare quasi-identifier combinations copied</td><td class="n">{{ r.privacy.quasi_identifier_copies }}</td></tr>
<tr><td>Distance-to-closest-record share</td><td class="n">{{ "%.3f"|format(r.privacy.dcr_share) }}</td></tr>
<tr><td>Membership-inference AUC</td><td class="n">{{ "%.3f"|format(r.privacy.membership_auc) }}</td></tr>
</table>
{% for key in ("exact_row_copies", "quasi_identifier_copies", "dcr_share", "membership_auc", "guarantee") %}
<p class="what">{{ r.explanations[key] }}</p>{% endfor %}
{% if r.privacy_accounting %}{% set a = r.privacy_accounting %}
<h2>Privacy accounting</h2>
<p>The budget (ε = {{ a.epsilon }}, δ = {{ a.delta }}) is turned into a zero-concentrated DP budget
ρ = {{ "%.6f"|format(a.rho) }}: {{ a.formula }}; δ_c = {{ a.delta_conversion }}, δ_T = {{ a.delta_levels }}
for each of {{ a.category_columns }} category columns.
{% if a.private_ranges %}Ranges chosen privately (a noisy histogram over a public grid, in the levels step):
{{ a.private_ranges|join(", ") }}.{% endif %}</p>
<table><tr><th>measurement</th><th>ρ spent</th><th>noise σ</th></tr>
{% for step, spent in a.spent.items() %}
<tr><td>{{ step }}</td><td class="n">{{ "%.6f"|format(spent) }}</td><td class="n">{{ "%.2f"|format(a.sigma[step])
}}</td></tr>{% endfor %}
</table>{% endif %}
</body></html>
"""


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (inline CSS, no scripts, nothing fetched)."""
    # deferred: jinja2 is needed only to write a report
    import jinja2

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(_TEMPLATE).render(r=report)

