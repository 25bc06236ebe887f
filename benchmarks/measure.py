"""Run a command in a child process; report its wall time and peak memory.

Both datashare and its baseline are measured the same way in the same run, so
the ratio between them means something on a shared, noisy machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASHARE = [sys.executable, "-m", "datashare"]
# pandas lives in a virtualenv of its own (benchmarks/run makes it): installed beside datashare it would be
# imported by DuckDB at the first bound parameter, and datashare would be measured slower than users run it.
BASELINE_PYTHON = Path(os.environ.get("DATASHARE_BENCH_BASELINE_PYTHON", ROOT / "benchmarks" / ".venv-baseline"
                                      / "bin" / "python"))


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_mb: float


def measure(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Measurement:
    """Wall time and peak resident memory (from wait4's rusage) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{stderr}")
    return Measurement(seconds, usage.ru_maxrss / 1024)


def python_snippet(code: str, python: Path | str = sys.executable) -> list[str]:
    return [str(python), "-c", code]


def bench_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATASHARE_")}
    env.update({"DATASHARE_HOME": str(home), "DATASHARE_PASSPHRASE": "benchmark passphrase", "NO_COLOR": "1"})
    return env


def print_rows(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=False)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)))
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False)))


def rows_label(rows: int) -> str:
    return f"{rows // 1_000_000}M" if rows >= 1_000_000 else f"{rows // 1000}k"
