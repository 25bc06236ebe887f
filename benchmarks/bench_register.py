"""`datashare register` beside DuckDB's own CREATE TABLE … AS SELECT * FROM read_csv(…).

Usage: python benchmarks/bench_register.py [--rows 100000 1000000] [--big]
(--big adds 10M rows). Prints time, peak memory and the ratio for each size.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from measure import DATASHARE, bench_env, measure, print_rows, python_snippet, rows_label

DATA = Path(__file__).resolve().parent / "data"


def dataset(rows: int) -> Path:
    """A generated CSV of that many rows, cached under benchmarks/data/."""
    from datashare.fakedata import generate_patients

    DATA.mkdir(exist_ok=True)
    path = DATA / f"patients_{rows}.csv"
    if not path.exists():
        generate_patients(path, rows, seed=7, fmt="csv")
    return path


def run(sizes: list[int]) -> list[list[str]]:
    table = []
    for rows in sizes:
        csv = dataset(rows)
        work = Path(tempfile.mkdtemp(prefix="ds-bench-"))
        try:
            env = bench_env(work / "ws")
            measure([*DATASHARE, "init"], env=env)
            ours = measure([*DATASHARE, "register", str(csv), "--name", "patients"], env=env)
            base = measure(python_snippet(
                "import duckdb,sys; con=duckdb.connect(sys.argv[1]); "
                "con.execute(\"CREATE TABLE t AS SELECT * FROM read_csv(?)\", [sys.argv[2]])"
            ) + [str(work / "raw.duckdb"), str(csv)])
        finally:
            shutil.rmtree(work, ignore_errors=True)
        table.append([rows_label(rows), f"{csv.stat().st_size / 1e6:.0f} MB", f"{ours.seconds:.2f}s",
                      f"{base.seconds:.2f}s", f"{ours.seconds / base.seconds:.2f}x",
                      f"{ours.peak_mb:.0f} MB", f"{base.peak_mb:.0f} MB"])
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--big", action="store_true", help="also 10M rows")
    args = parser.parse_args()
    sizes = args.rows + ([10_000_000] if args.big else [])
    print_rows("register vs DuckDB raw load (target: ratio <= 1.3x, memory flat)",
               ["rows", "file", "datashare", "duckdb raw", "ratio", "peak datashare", "peak raw"], run(sizes))


if __name__ == "__main__":
    main()
