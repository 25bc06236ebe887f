"""`datashare export` under the research policy on DuckDB and on Spark local[2], in the same run.

The research policy's free-text note is dropped for both (free-text redaction runs in DuckDB only).

Both export the same generated rows under the same policy to the same recipient (so with the same keys); the
script prints both times and whether the two exports hold bit-equal rows: their manifests' content digests
(row count and the sum of 60-bit SHA-256 prefixes of each row's canonical text, whatever the part files and the
row order) are equal, and `datashare verify --same-content` measures both again. local[2] on one machine shows
the cost of the engine, not its gain: Spark pays off on a cluster whose executors read data that does not fit
one machine.

Usage: python benchmarks/bench_spark.py [--rows 1000000] [--spark-master local[2]]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml
from bench_register import dataset
from measure import DATASHARE, ROOT, bench_env, measure, print_rows, rows_label

RESEARCH = ROOT / "policies" / "hk-clinical-research.yaml"


def policy_without_free_text(folder: Path) -> Path:
    """The research policy with its free-text column dropped, under a name of its own."""
    policy = yaml.safe_load(RESEARCH.read_text(encoding="utf-8"))
    policy["policy"], policy["columns"]["note"] = "hk-clinical-research-spark", {"transform": "drop"}
    path = folder / "research-spark.yaml"
    path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    return path


def run(rows: int, master: str) -> list[str]:
    csv = dataset(rows)
    work = Path(tempfile.mkdtemp(prefix="ds-bench-spark-"))
    try:
        env = bench_env(work / "ws")
        policy = policy_without_free_text(work)
        measure([*DATASHARE, "init"], env=env)
        measure([*DATASHARE, "register", str(csv), "--name", "patients"], env=env)
        measure([*DATASHARE, "policy", "approve", str(policy)], env=env)
        common = ["export", "patients", "--policy", str(policy), "--purpose", "clinical-research",
                  "--recipient", "cicor"]
        duck = measure([*DATASHARE, *common, "--out", str(work / "duckdb")], env=env)
        spark = measure([*DATASHARE, *common, "--out", str(work / "spark"), "--engine", "spark",
                         "--spark-master", master, "--spark-conf", "spark.sql.shuffle.partitions=4"], env=env)
        digests = [json.loads((work / name / "manifest.json").read_text())["content"] for name in ("duckdb", "spark")]
        check = subprocess.run([*DATASHARE, "verify", str(work / "spark"), "--same-content", str(work / "duckdb")],
                               env=env, capture_output=True, text=True)
        equal = digests[0] == digests[1] and check.returncode == 0
        parts = len(list((work / "spark").glob("*.part-*")))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [rows_label(rows), f"{duck.seconds:.1f}s", f"{spark.seconds:.1f}s", f"{spark.seconds / duck.seconds:.1f}x",
            f"{digests[0]['rows']:,}", str(parts), "yes" if equal else "NO", digests[0]["digest"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--spark-master", default="local[2]")
    args = parser.parse_args()
    print_rows(f"export under hk-clinical-research: DuckDB and Spark {args.spark_master}",
               ["rows", "duckdb", "spark", "spark/duckdb", "rows out", "spark parts", "bit-equal", "digest"],
               [run(args.rows, args.spark_master)])


if __name__ == "__main__":
    main()
