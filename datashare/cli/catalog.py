"""Workspace and catalog commands: init, register, datasets, show, classify."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from datashare import catalog
from datashare.cli.app import app
from datashare.cli.common import (
    ActorOption,
    HomeOption,
    JsonOption,
    emit_json,
    print_table,
    say,
    stderr_console,
    workspace_and_actor,
)
from datashare.errors import UsageError
from datashare.init import initialise

VersionOption = Annotated[int | None, typer.Option("--version", min=1, help="Dataset version (default: latest).")]


@app.command()
def init(home: HomeOption = None, actor: ActorOption = None, json_out: JsonOption = False) -> None:
    """Create the workspace (catalog, audit log, secret, config) if it does not exist.

    The actor who runs init becomes the workspace's first custodian.

    Example: datashare init --home ./.datashare
    """

    result = initialise(home, actor)
    if json_out:
        emit_json(result.to_dict())
        return
    say(f"{'Created workspace' if result.created else 'Workspace already exists:'} {result.workspace.home}")
    if result.key is not None:
        say(f"Signing key: {result.key.key_id}")
    else:
        say("No signing key yet (no passphrase given): create one with `datashare keys generate`.")


@contextmanager
def _progress_reporter(label: str):
    """A rich progress bar on a terminal; nothing when stderr is piped."""
    if not sys.stderr.isatty():
        yield None
        return
    # deferred: rich is imported only when something is shown
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(label), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                  transient=True, console=stderr_console()) as progress:
        task = progress.add_task(label, total=100)
        yield lambda percent: progress.update(task, completed=percent)


@app.command()
def register(
    path: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON/NDJSON file to register.")],
    name: Annotated[str, typer.Option("--name", help="Dataset name: [a-z][a-z0-9_]{0,62}.")],
    encoding: Annotated[str | None, typer.Option(
        "--encoding", help="CSV encoding: utf-8 (default, BOM allowed), big5, big5hkscs, utf-16, latin-1.")] = None,
    source_format: Annotated[str | None, typer.Option(
        "--format", help="csv, parquet or json (default: from the file extension).")] = None,
    description: Annotated[str | None, typer.Option("--description", help="What the dataset holds.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Who is responsible for the dataset.")] = None,
    home: HomeOption = None,
    actor: ActorOption = None,
    json_out: JsonOption = False,
) -> None:
    """Load a file into the catalog as a new version of a dataset and classify its columns.

    Registering the same name again adds version N+1; identical content adds nothing.

    Example: datashare register patients.csv --name patients --encoding big5hkscs
    """

    ws, who = workspace_and_actor(home, actor)
    with _progress_reporter(f"Loading {path.name}") as on_progress:
        result = catalog.register(ws, path, name, actor=who, encoding=encoding, source_format=source_format,
                                  description=description, owner=owner, on_progress=on_progress)
    dataset = result.dataset
    if json_out:
        data = dataset.to_dict(with_columns=False)
        data["unchanged"] = result.unchanged
        emit_json(data)
        return
    if result.unchanged:
        say(f"{path.name} is identical to {dataset.name} v{dataset.version} (same SHA-256): nothing added.")
        return
    say(f"Registered {dataset.name} v{dataset.version}: {dataset.rows:,} rows, {len(dataset.columns)} columns "
        f"(sha256 {dataset.source_sha256[:16]}…)")
    _print_columns(dataset)


@app.command()
def datasets(home: HomeOption = None, actor: ActorOption = None, json_out: JsonOption = False) -> None:
    """List registered datasets (latest version of each).

    Example: datashare datasets --json
    """

    ws, who = workspace_and_actor(home, actor)
    found = catalog.datasets(ws, who)
    if json_out:
        emit_json([dataset.to_dict(with_columns=False) for dataset in found])
        return
    if not found:
        say("No datasets yet. Register one with `datashare register FILE --name NAME`.")
        return
    print_table(
        "Datasets",
        ["name", "version", "rows", "columns", "registered by", "registered at (UTC)"],
        [[d.name, d.version, f"{d.rows:,}", d.column_count, d.registered_by, d.registered_at[:19]] for d in found],
    )


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    version: VersionOption = None,
    home: HomeOption = None,
    actor: ActorOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show a dataset version: source, schema, column classes and per-column profile.

    Example: datashare show patients --version 1
    """

    ws, who = workspace_and_actor(home, actor)
    dataset, versions = catalog.show(ws, who, name, version)
    if json_out:
        data = dataset.to_dict()
        data["versions"] = [v.to_dict(with_columns=False) for v in versions]
        emit_json(data)
        return
    print_table(
        f"{dataset.name} v{dataset.version}",
        ["", ""],
        [["rows", f"{dataset.rows:,}"], ["source", dataset.source_path],
         ["format", dataset.source_format + (f" ({dataset.source_encoding})" if dataset.source_encoding else "")],
         ["size", f"{dataset.source_size:,} bytes"], ["sha256", dataset.source_sha256],
         ["registered", f"{dataset.registered_at} by {dataset.registered_by}"],
         ["description", dataset.description or ""], ["owner", dataset.owner or ""],
         ["versions", ", ".join(str(v.version) for v in versions)]],
    )
    _print_columns(dataset)


_MAX_COLUMNS_SHOWN = 200  # a wider table helps nobody on a screen; --json has them all


def _print_columns(dataset) -> None:
    shown = dataset.columns[:_MAX_COLUMNS_SHOWN]
    rest = len(dataset.columns) - len(shown)
    print_table(
        "Columns" + (f" (the first {len(shown)} of {len(dataset.columns):,}; --json lists all)" if rest else ""),
        ["column", "type", "class", "detected", "nulls", "distinct≈", "min", "max"],
        [[c.name, c.type, c.cls + (" (set)" if c.overridden else ""), c.detected or "", c.nulls, c.distinct,
          c.min or "", c.max or ""] for c in shown],
    )


@app.command()
def classify(
    name: Annotated[str, typer.Argument(help="Dataset name.")],
    assignments: Annotated[list[str], typer.Argument(help="COLUMN=CLASS pairs; CLASS is direct, quasi, sensitive "
                                                          "or other.")],
    version: VersionOption = None,
    home: HomeOption = None,
    actor: ActorOption = None,
    json_out: JsonOption = False,
) -> None:
    """Override the automatic class of columns; later versions keep the override.

    Example: datashare classify patients hkid=direct dob=quasi diagnosis=sensitive
    """

    pairs: dict[str, str] = {}
    for item in assignments:
        column, sep, cls = item.rpartition("=")
        if not sep or not column:
            raise UsageError(f"expected COLUMN=CLASS, got {item!r}")
        pairs[column] = cls.strip().lower()
    ws, who = workspace_and_actor(home, actor)
    dataset = catalog.classify(ws, name, pairs, actor=who, version=version)
    if json_out:
        emit_json(dataset.to_dict())
        return
    say(f"Updated {len(pairs)} column class(es) of {dataset.name} v{dataset.version}.")
    _print_columns(dataset)
