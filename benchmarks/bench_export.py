"""`datashare export` under the research policy, beside raw DuckDB and beside pandas + hashlib.

Baselines, in the same run on the same data:
- raw: DuckDB's `COPY (SELECT * FROM t) TO 'x.parquet'` of the same catalog table (no de-identification);
- pandas: the same de-identification written the way a user would without datashare
  (pandas for the table, hashlib/hmac per value, regular expressions per note, a groupby for k).

Usage: python benchmarks/bench_export.py [--rows 1000000] [--big]   (--big adds 10M rows)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench_register import dataset
from measure import DATASHARE, ROOT, bench_env, measure, print_rows, python_snippet, rows_label

POLICY = ROOT / "policies" / "hk-clinical-research.yaml"

PANDAS_DEIDENTIFY = r'''
import hashlib, hmac, re, sys
import pandas as pd
src, out = sys.argv[1], sys.argv[2]
key = b"k" * 32
REGION = {"central and western": "Hong Kong Island", "wan chai": "Hong Kong Island", "eastern": "Hong Kong Island",
          "southern": "Hong Kong Island", "yau tsim mong": "Kowloon", "sham shui po": "Kowloon",
          "kowloon city": "Kowloon", "wong tai sin": "Kowloon", "kwun tong": "Kowloon"}
PATTERNS = [(re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[EMAIL]"),
            (re.compile(r"[A-Za-z]{1,2}[0-9]{6} ?\(?[0-9Aa]\)?"), "[HKID]"),
            (re.compile(r"(?:\+?\b852[ -]?)?\b[2-79][0-9]{3}[ -]?[0-9]{4}\b"), "[PHONE]"),
            (re.compile(r"\b[A-Z]{2,}(?:-[A-Z]{2,})? [A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2}\b"), "[NAME]")]
def pseudo(v):
    return None if pd.isna(v) else hmac.new(key, str(v).encode(), hashlib.sha256).hexdigest()[:16]
def shift(subject):
    return int(hmac.new(key, str(subject).encode(), hashlib.sha256).hexdigest()[:12], 16) % 61 - 30
def redact(text):
    if pd.isna(text):
        return text
    for pattern, token in PATTERNS:
        text = pattern.sub(token, text)
    return text
df = pd.read_csv(src, parse_dates=["dob", "admission_date"])
df = df[df["admission_date"] >= "2020-01-01"]
out_df = pd.DataFrame({
    "patient_id": df["patient_id"].map(pseudo),
    "sex": df["sex"],
    "dob": ((pd.Timestamp("2026-01-01") - df["dob"]).dt.days // 3652 * 10).astype(str),
    "phone": df["phone"].astype(str).map(lambda p: "*" * (len(p) - 2) + p[-2:]),
    "district": df["district"].str.lower().map(REGION).fillna("New Territories"),
    "admission_date": df["admission_date"] + pd.to_timedelta(df["patient_id"].map(shift), unit="D"),
    "diagnosis": df["diagnosis"].str[:3],
    "hba1c": df["hba1c"].round(0),
    "note": df["note"].map(redact),
})
sizes = out_df.groupby(["dob", "sex", "district"])["sex"].transform("size")
out_df[sizes >= 5].to_parquet(out)
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
            pandas = (measure(python_snippet(PANDAS_DEIDENTIFY) + [str(csv), str(work / "pandas.parquet")])
                      if with_pandas else None)
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
    sizes = args.rows + ([10_000_000] if args.big else [])
    print_rows("export under hk-clinical-research (targets: <= 3x raw copy, >= 10x faster than pandas, flat memory)",
               ["rows", "datashare", "raw COPY", "vs raw", "pandas", "pandas/ours", "peak ours", "peak raw",
                "peak pandas"], run(sizes, not args.no_pandas))


if __name__ == "__main__":
    main()
