"""Commands around the main job: the demo and the fake-data generator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datashare.cli.app import app
from datashare.cli.common import any_case
from datashare.cli.output import Format, Message, Result, output_options, report
from datashare.cli.progress import progress_shown
from datashare.demo import run_demo
from datashare.fakedata import generate_file


@app.command()
@output_options()
def demo(
    keep: Annotated[Path | None, typer.Option(
        "--keep", metavar="FOLDER",
        help="Run in this folder and keep it (default: a temporary folder, removed after).")] = None,
    output_format: Format = Format.HUMAN,
) -> Result:
    """Run the main job end to end on the bundled sample data, in a throw-away workspace.

    Examples:

    \b
      datashare demo
      datashare demo --keep ./demo-workspace
    """

    # The steps are reported as they happen (the demo takes a few seconds), so nothing is left to show at the end.
    steps = run_demo(keep, report=report if output_format is Format.HUMAN else None)
    return Result(steps, [])


@app.command()
@output_options()
def generate(
    out: Annotated[Path, typer.Option("--out", metavar="FILE", help="File to write (.csv or .parquet).")],
    rows: Annotated[int, typer.Option("--rows", metavar="N", min=1, help="How many patient records.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Same seed, same file.")] = 42,
    fmt: Annotated[str | None, typer.Option("--format", metavar="csv|parquet", callback=any_case,
        help="csv or parquet (default: from --out).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
) -> Result:
    """Write realistic fake Hong Kong patient records (for trying datashare and for benchmarks).

    Examples:

    \b
      datashare generate --rows 100000 --out patients.csv
      datashare generate --rows 1000000 --out big.parquet --seed 7
    """

    with progress_shown() as progress:
        written = generate_file(out, rows, seed=seed, fmt=fmt, overwrite=overwrite, progress=progress)
    return Result({"out": str(out), "rows": rows, "format": written, "seed": seed},
                  [Message(f"Wrote {rows:,} fake patient records to {out}")])
