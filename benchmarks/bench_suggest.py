"""`policy suggest`'s pruned lattice search beside a brute-force search of the same lattice, in the same run.

On generated HK patients with four quasi-identifiers (date of birth, sex, district, admission date: the
discharge date is classed *other* so it is not one), both searches build the same level table and judge
nodes with the privacy gate's own code: the pruned one tags what monotonicity implies, the brute force
evaluates every node. Both must find the same optimum and runner-up; the script prints the time ratio. A third
run is the pruned search with every node's gate reading the rows (``fast=False``: no members table aggregated
once), which must agree too; the last column is its time over the pruned search's.

Usage: python benchmarks/bench_suggest.py [--rows 1000000] [--k 5] [--max-suppression 0.05]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_register import dataset
from measure import DATASHARE, bench_env, measure, print_rows, rows_label

from datashare.catalog.store import resolve
from datashare.export.suggest import Request, run_search
from datashare.workspace import open_workspace


def run(rows: int, k: int, budget: float) -> list[list[str]]:
    csv = dataset(rows)
    work = Path(tempfile.mkdtemp(prefix="ds-bench-suggest-"))
    try:
        env = bench_env(work / "ws")
        measure([*DATASHARE, "init"], env=env)
        measure([*DATASHARE, "register", str(csv), "--name", "patients"], env=env)
        measure([*DATASHARE, "classify", "patients", "discharge_date=other"], env=env)
        request = Request(k=k, l=2, sensitive="diagnosis", max_suppression=budget, subject="patient_id")
        reference = dt.date(2026, 1, 1)
        ws = open_workspace(work / "ws")
        found = {}
        with ws.connect(read_only=True) as con:
            dataset_version = resolve(con, "patients")
            for name, pruned, fast in (("pruned", True, True), ("brute force", False, True),
                                       ("pruned, gate on the rows", True, False)):
                print(f"{name} search…", file=sys.stderr, flush=True)
                start = time.perf_counter()
                lattice, outcome, evaluator = run_search(con, dataset_version, request, reference, pruned=pruned,
                                                         fast=fast)
                found[name] = (time.perf_counter() - start, lattice, outcome,
                               evaluator.figures(lattice, outcome.optimum))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (fast, lattice, best, figures), (slow, _, reference_outcome, _) = found["pruned"], found["brute force"]
    rows_time, _, rows_outcome, rows_figures = found["pruned, gate on the rows"]
    for other in (reference_outcome, rows_outcome):
        if (best.optimum, best.runner_up) != (other.optimum, other.runner_up):
            raise SystemExit(f"the searches disagree: {best} against {other}")
    if figures != rows_figures:
        raise SystemExit(f"the figures disagree: {figures} against {rows_figures}")
    chosen = ", ".join(f"{column} {level['level']}" for column, level in figures["levels"].items())
    print(f"optimum (both searches): {chosen}; loss {figures['loss']:.4f}; "
          f"{figures['share_suppressed']:.2%} of the rows suppressed")
    return [[rows_label(rows), f"{lattice.size}", f"{best.evaluated}", f"{fast:.1f} s",
             f"{reference_outcome.evaluated}", f"{slow:.1f} s", f"{slow / fast:.1f}x faster",
             f"{rows_time:.1f} s", f"{rows_time / fast:.1f}x faster"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-suppression", type=float, default=0.05)
    args = parser.parse_args()
    print_rows(f"policy suggest: k={args.k} people, l=2 on diagnosis, at most {args.max_suppression:.0%} suppressed",
               ["rows", "nodes", "pruned: evaluated", "pruned: time", "brute force: evaluated",
                "brute force: time", "ratio", "pruned, gate on the rows: time", "ratio"],
               run(args.rows, args.k, args.max_suppression))


if __name__ == "__main__":
    main()
