"""Audit log costs: one append (in process and a whole CLI call), and `audit verify` beside sha256sum.

Usage: python benchmarks/bench_audit.py [--entries 100000 1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import time
from pathlib import Path

from measure import DATASHARE, bench_env, measure, print_rows, rows_label


def fake_log(path: Path, entries: int) -> None:
    """A valid log of realistic entries, written without fsync (only the verify is measured)."""
    from datashare.audit.log import _body_bytes, _read_tail

    tail = _read_tail(path)
    prev = tail.hash
    with path.open("ab") as handle:
        for seq in range(tail.seq + 1, tail.seq + entries + 1):
            entry = {"seq": seq, "prev": prev, "time": "2026-11-24T10:00:00.000000Z", "actor": "analyst1",
                     "action": "export", "outcome": "ok", "purpose": "clinical-research", "recipient": "cicor",
                     "reason": None, "target": {"dataset": "patients", "version": 3, "policy": "hk-clinical-research",
                                                "policy_sha256": "ab" * 32, "output": f"/srv/exports/run{seq}"},
                     "details": {"rows_out": 727, "suppressed": 22, "k": 5}}
            body = _body_bytes(entry)
            digest = hashlib.sha256(body).hexdigest()
            handle.write(body[:-1] + b',"hash":"' + digest.encode() + b'"}\n')
            prev = digest


def append_cost(work: Path, count: int = 2000) -> float:
    from datashare import audit
    from datashare.init import init_workspace

    ws = init_workspace(work / "append", "bench")[0]
    start = time.perf_counter()
    for i in range(count):
        audit.append(ws, actor="bench", action="bench", details={"i": i})
    return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, nargs="*", default=[100_000, 1_000_000])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ds-bench-audit-"))
    try:
        per_append = append_cost(work)
        env = bench_env(work / "cli")
        measure([*DATASHARE, "init"], env=env)
        calls = [measure([*DATASHARE, "roles", "list", "--json"], env=env).seconds for _ in range(5)]
        print_rows("audit append", ["what", "time per entry"],
                   [["in process (lock + fsync)", f"{per_append * 1000:.2f} ms ({1 / per_append:,.0f}/s)"],
                    ["whole CLI call that appends one entry", f"{min(calls):.2f} s"]])
        rows = []
        for entries in args.entries:
            home = work / f"log{entries}"
            env = bench_env(home)
            measure([*DATASHARE, "init"], env=env)
            fake_log(home / "audit.log", entries)
            ours = measure([*DATASHARE, "audit", "verify"], env=env)
            base = measure(["sha256sum", str(home / "audit.log")])
            size = (home / "audit.log").stat().st_size
            rows.append([rows_label(entries), f"{size / 1e6:.0f} MB", f"{ours.seconds:.2f}s", f"{base.seconds:.2f}s",
                         f"{ours.seconds / base.seconds:.1f}x", f"{ours.peak_mb:.0f} MB"])
        print_rows("audit verify vs sha256sum of the same file (target: <= 3x)",
                   ["entries", "log", "datashare", "sha256sum", "ratio", "peak datashare"], rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
