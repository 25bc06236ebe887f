"""Commands around the main job: the demo and the fake-data generator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datashare.cli.app import app
from datashare.cli.output import Format, Message, Result, output_options, report
from datashare.demo import run_demo
from datashare.fakedata import generate_file


@app.command()
@output_options()
def demo(
    keep: Annotated[Path | None, typer.Option(
        "--keep", help="Run in this folder and keep it (default: a temporary folder, removed after).")] = None,
    output_format: Format = Format.HUMAN,
) -> Result:
    """Run the main job end to end on the bundled sample data, in a throw-away workspace.

    Example: datashare demo
    """

    # The steps are reported as they happen (the demo takes a few seconds), so nothing is left to show at the end.
    steps = run_demo(keep, report=report if output_format is Format.HUMAN else None)
    return Result(steps, [])


@app.command()
@output_options()
def generate(
    out: Annotated[Path, typer.Option("--out", help="File to write (.csv or .parquet).")],
    rows: Annotated[int, typer.Option("--rows", min=1, help="How many patient records.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same file.")] = 42,
    fmt: Annotated[str | None, typer.Option("--format", help="csv or parquet (default: from --out).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
) -> Result:
    """Write realistic fake Hong Kong patient records (for trying datashare and for benchmarks).

    Example: datashare generate --rows 100000 --out patients.csv
    """

    written = generate_file(out, rows, seed=seed, fmt=fmt, overwrite=overwrite)
    return Result({"out": str(out), "rows": rows, "format": written, "seed": seed},
                  [Message(f"Wrote {rows:,} fake patient records to {out}")])
