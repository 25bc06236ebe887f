"""`datashare export` under the research policy, beside raw DuckDB and beside pandas + hashlib.

Baselines, in the same run on the same data:
- raw: DuckDB's `COPY (SELECT * FROM t) TO 'x.parquet'` of the same catalog table (no de-identification);
- pandas: the same de-identification written the way a user would without datashare
  (pandas for the table, hmac per value, the same identifier patterns and district map applied per
  value with Python's re, a groupby for k and l, zstd Parquet out).

Usage: python benchmarks/bench_export.py [--rows 1000000] [--big]   (--big adds 10M rows)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench_register import dataset
from measure import BASELINE_PYTHON, DATASHARE, ROOT, bench_env, measure, print_rows, python_snippet, rows_label

POLICY = ROOT / "policies" / "hk-clinical-research.yaml"

PANDAS_DEIDENTIFY = r'''
import hashlib, hmac, sys
import pandas as pd
from datashare.identifiers import district_region, redact_identifiers  # the same patterns and district map
src, out = sys.argv[1], sys.argv[2]
pseudonym_key, shift_key = b"p" * 32, b"s" * 32
def pseudo(v):
    return None if pd.isna(v) else hmac.new(pseudonym_key, str(v).encode(), hashlib.sha256).hexdigest()[:16]
def shift(subject):
    return int(hmac.new(shift_key, str(subject).encode(), hashlib.sha256).hexdigest()[:12], 16) % 61 - 30
def mask(phone):
    return None if pd.isna(phone) else "*" * max(len(str(phone)) - 2, 0) + str(phone)[-2:]
df = pd.read_csv(src, parse_dates=["dob", "admission_date"], dtype={"phone": str})
df = df[df["admission_date"] >= "2020-01-01"]
age = (pd.Timestamp("2026-01-01") - df["dob"]).dt.days // 365.25
band = (age // 10 * 10).astype("Int64")
out_df = pd.DataFrame({
    "patient_id": df["patient_id"].map(pseudo),
    "sex": df["sex"],
    "dob": band.astype(str) + "-" + (band + 9).astype(str),
    "phone": df["phone"].map(mask),
    "district": df["district"].map(district_region),
    "admission_date": df["admission_date"] + pd.to_timedelta(df["patient_id"].map(shift), unit="D"),
    "diagnosis": df["diagnosis"].str[:3],
    "hba1c": df["hba1c"].round(0),
    "note": df["note"].map(lambda t: t if pd.isna(t) else redact_identifiers(t)),
})
qis = ["dob", "sex", "district"]
groups = out_df.groupby(qis, dropna=False)["diagnosis"]
keep = (groups.transform("size") >= 5) & (groups.transform("nunique") >= 2)
if (~keep).mean() > 0.05:
    sys.exit("refused by k")
out_df[keep].to_parquet(out, compression="zstd", index=False)
'''


def run(sizes: list[int], with_pandas: bool) -> list[list[str]]:
    table = []
    for rows in sizes:
        csv = dataset(rows)
        work = Path(tempfile.mkdtemp(prefix="ds-bench-export-"))
        try:
            env = bench_env(work / "ws")
            measure([*DATASHARE, "init"], env=env)
            measure([*DATASHARE, "register", str(csv), "--name", "patients"], env=env)
            measure([*DATASHARE, "policy", "approve", str(POLICY)], env=env)
            ours = measure([*DATASHARE, "export", "patients", "--policy", str(POLICY), "--out", str(work / "out"),
                            "--purpose", "clinical-research", "--recipient", "cicor"], env=env)
            raw = measure(python_snippet(
                "import duckdb,sys; con=duckdb.connect(sys.argv[1], read_only=True); "
                "con.execute(f\"COPY (SELECT * FROM data.patients__v1) TO '{sys.argv[2]}' (FORMAT parquet)\")"
            ) + [str(work / "ws" / "catalog.duckdb"), str(work / "raw.parquet")])
            baseline = python_snippet(PANDAS_DEIDENTIFY, BASELINE_PYTHON)
            pandas = measure([*baseline, str(csv), str(work / "pandas.parquet")]) if with_pandas else None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        table.append([
            rows_label(rows), f"{ours.seconds:.2f}s", f"{raw.seconds:.2f}s", f"{ours.seconds / raw.seconds:.2f}x",
            f"{pandas.seconds:.2f}s" if pandas else "-", f"{pandas.seconds / ours.seconds:.1f}x" if pandas else "-",
            f"{ours.peak_mb:.0f} MB", f"{raw.peak_mb:.0f} MB", f"{pandas.peak_mb:.0f} MB" if pandas else "-",
        ])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--big", action="store_true", help="also 10M rows")
    parser.add_argument("--no-pandas", action="store_true", help="skip the (slow) pandas baseline")
    args = parser.parse_args()
    if not args.no_pandas and not BASELINE_PYTHON.exists():
        raise SystemExit(f"no pandas baseline environment at {BASELINE_PYTHON}: run benchmarks/run, or --no-pandas")
    sizes = args.rows + ([10_000_000] if args.big else [])
    print_rows("export under hk-clinical-research (targets: <= 3x raw copy, >= 10x faster than pandas, flat memory)",
               ["rows", "datashare", "raw COPY", "vs raw", "pandas", "pandas/ours", "peak ours", "peak raw",
                "peak pandas"], run(sizes, not args.no_pandas))


if __name__ == "__main__":
    main()
