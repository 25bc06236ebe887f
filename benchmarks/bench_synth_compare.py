"""`datashare synthesize` (copula) beside a public synthesiser, `copulas`' GaussianMultivariate, on the same rows.

`copulas` (the Gaussian copula library behind SDV; Business Source License 1.1) runs in a virtualenv of its
own, `benchmarks/.venv-synth-baseline` (`benchmarks/run` makes it): it is measured here, never a dependency.
Both fit the same training rows (the policy's output, staged by datashare) and are scored by the same
report code against the same holdout. `copulas` takes numbers only, so categories go in as their codes and
dates as day numbers, the way a user of it would feed them.

Usage: python benchmarks/bench_synth_compare.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_register import dataset
from bench_synth import POLICIES
from measure import DATASHARE, ROOT, bench_env, measure, print_rows, rows_label

from datashare.catalog.store import resolve
from datashare.export.plan import install_keys, prepare
from datashare.policy.model import load_policy
from datashare.synth import report
from datashare.synth.columns import HOLDOUT, ROWS_TABLE, as_differences, stage
from datashare.synth.model import Continuous, fit_copula
from datashare.synth.output import OUT_TABLE, Built, Guards, _counts, build
from datashare.workspace import open_workspace

BASELINE = Path(ROOT / "benchmarks" / ".venv-synth-baseline" / "bin" / "python")

COPULAS = r'''
import sys, time
import numpy as np, pandas as pd
from copulas.multivariate import GaussianMultivariate
from copulas.univariate import GaussianKDE, Univariate
train, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
df = pd.read_parquet(train)
encoded, decoders = pd.DataFrame(index=df.index), {}
for name in df.columns:
    column = df[name]
    if pd.api.types.is_numeric_dtype(column):
        encoded[name] = column.astype(float).fillna(column.astype(float).median())
        decoders[name] = ("number", None)
    elif pd.api.types.is_datetime64_any_dtype(column) or str(column.dtype) == "object" and hasattr(
            column.dropna().iloc[0] if column.notna().any() else None, "toordinal"):
        days = pd.to_datetime(column).map(lambda d: d.toordinal() if pd.notna(d) else np.nan)
        encoded[name] = days.fillna(days.median())
        decoders[name] = ("date", None)
    else:
        codes, levels = pd.factorize(column.astype("string"))
        encoded[name] = codes.astype(float)
        decoders[name] = ("category", np.asarray(levels, dtype=object))
start = time.perf_counter()
model = GaussianMultivariate(distribution=Univariate)
model.fit(encoded)
sampled = model.sample(n)
seconds = time.perf_counter() - start
result = {}
for name, (kind, levels) in decoders.items():
    values = sampled[name].to_numpy()
    if kind == "number":
        result[name] = values
    elif kind == "date":
        result[name] = [pd.Timestamp.fromordinal(int(max(1, round(v)))).date() for v in values]
    else:
        result[name] = levels[np.clip(np.round(values), 0, max(len(levels) - 1, 0)).astype(int)]
pd.DataFrame(result).to_parquet(out, index=False)
print(seconds)
'''


def score(home: Path, policy: Path, synthetic: Path | None, seed: int = 1) -> tuple[float, dict]:
    """Stage the policy's rows; with ``synthetic``, score that file, else run datashare's copula."""
    loaded = load_policy(policy)
    settings = loaded.policy.synthetic
    ws = open_workspace(home)
    with ws.connect(read_only=True) as con:
        compiled = prepare(loaded, resolve(con, "patients"), enforce=False)  # as synthesize prepares it
        install_keys(con, os.urandom(32), "bench")  # any secret: the work is the same
        staged = stage(con, compiled, {"patient_id"}, seed=seed, holdout=settings.holdout)
        guards = Guards(list(loaded.policy.privacy.quasi_identifiers),
                        max(loaded.policy.privacy.k_anonymity, settings.min_count), list(settings.constraints))
        if synthetic is None:
            start = time.perf_counter()
            model = fit_copula(con, as_differences(staged.modelled, list(settings.constraints)),
                               min_count=settings.min_count, max_levels=settings.max_levels, seed=seed)
            digits = {n: m.digits for n, m in model.marginals.items() if isinstance(m, Continuous)}
            rng = np.random.default_rng(seed)
            built = build(con, staged.columns, lambda n: model.sample(n, rng), staged.train_rows, guards, digits,
                          seed)
            seconds = time.perf_counter() - start
        else:
            names = ", ".join(f'"{c.name}"' for c in staged.modelled)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {OUT_TABLE} AS SELECT row_number() OVER () AS __ds_i, "
                        f"{names} FROM read_parquet('{synthetic}')")
            copies, qi_copies, breaches = _counts(con, OUT_TABLE, staged.modelled, guards)
            rows = con.execute(f"SELECT count(*) FROM {OUT_TABLE}").fetchone()[0]
            built, seconds = Built(rows, 0, 0, copies, qi_copies, breaches), 0.0
        return seconds, report.measure(con, staged, built, seed=seed)


def export_training_rows(home: Path, policy: Path, out: Path, seed: int = 1) -> None:
    loaded = load_policy(policy)
    ws = open_workspace(home)
    with ws.connect(read_only=True) as con:
        compiled = prepare(loaded, resolve(con, "patients"), enforce=False)  # as synthesize prepares it
        install_keys(con, os.urandom(32), "bench")  # any secret: the work is the same
        staged = stage(con, compiled, {"patient_id"}, seed=seed, holdout=loaded.policy.synthetic.holdout)
        names = ", ".join(f'"{c.name}"' for c in staged.modelled)
        con.execute(f"COPY (SELECT {names} FROM {ROWS_TABLE} WHERE NOT {HOLDOUT}) TO '{out}' (FORMAT parquet)")


def run(sizes: list[int]) -> list[list[str]]:
    table = []
    policy = POLICIES["copula"]
    for rows in sizes:
        csv = dataset(rows)
        work = Path(tempfile.mkdtemp(prefix="ds-bench-synth-compare-"))
        try:
            env = bench_env(work / "ws")
            measure([*DATASHARE, "init"], env=env)
            measure([*DATASHARE, "register", str(csv), "--name", "patients"], env=env)
            ours_seconds, ours = score(work / "ws", policy, None)
            export_training_rows(work / "ws", policy, work / "train.parquet")
            n = ours["measured_on"]["synthetic_rows"]
            done = subprocess.run([str(BASELINE), "-c", COPULAS, str(work / "train.parquet"),
                                   str(work / "copulas.parquet"), str(n)], capture_output=True, text=True, check=True)
            theirs_seconds = float(done.stdout.strip().splitlines()[-1])
            _, theirs = score(work / "ws", policy, work / "copulas.parquet")
            for name, seconds, figures in (("datashare copula", ours_seconds, ours),
                                           ("copulas GaussianMultivariate", theirs_seconds, theirs)):
                fidelity, privacy = figures["fidelity"], figures["privacy"]
                table.append([rows_label(rows), name, f"{seconds:.1f}s", f"{fidelity['column_shape_mean']:.3f}",
                              f"{fidelity['column_pair_mean']:.3f}", f"{privacy['dcr_share']:.3f}",
                              str(privacy["exact_row_copies"]), str(privacy["constraint_breaches"])])
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000])
    args = parser.parse_args()
    if not BASELINE.exists():
        raise SystemExit(f"no baseline environment at {BASELINE}: run benchmarks/run")
    print_rows("synthesize beside copulas (same training rows, same report; fit + sample time)",
               ["rows", "synthesiser", "fit+sample", "shapes", "pairs", "DCR share", "exact copies",
                "constraint breaches"], run(args.rows))


if __name__ == "__main__":
    main()
