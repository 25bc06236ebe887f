"""`datashare --help` start-up beside `python -c pass` (best of 10 each)."""

from __future__ import annotations

import sys

from measure import DATASHARE, measure, print_rows


def main() -> None:
    ours = min(measure([*DATASHARE, "--help"]).seconds for _ in range(10))
    version = min(measure([*DATASHARE, "--version"]).seconds for _ in range(10))
    base = min(measure([sys.executable, "-c", "pass"]).seconds for _ in range(10))
    print_rows("start-up (target: well under 0.5 s)", ["command", "time", "vs python -c pass"],
               [["datashare --help", f"{ours:.3f}s", f"{ours / base:.1f}x"],
                ["datashare --version", f"{version:.3f}s", f"{version / base:.1f}x"],
                ["python -c pass", f"{base:.3f}s", "1.0x"]])


if __name__ == "__main__":
    main()
