"""Workspace and catalog commands: init, register, datasets, show, classify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datashare import catalog
from datashare.catalog.store import DatasetVersion
from datashare.cli.app import app
from datashare.cli.common import ActorOption, DatasetArgument, HomeOption, VersionOption, any_case, workspace_and_actor
from datashare.cli.output import Message, Result, Table, output_options, say
from datashare.cli.progress import progress_shown
from datashare.errors import UsageError
from datashare.init import initialise


@app.command()
@output_options()
def init(home: HomeOption = None, actor: ActorOption = None) -> Result:
    """Create the workspace (catalog, audit log, secret, config) if it does not exist.

    The actor who runs init becomes the workspace's first custodian.

    Examples:

    \b
      datashare init
      datashare init --home /srv/datashare
    """

    result = initialise(home, actor)
    if result.tightened:  # said on stderr whatever the output format; --json lists them as modes_tightened
        say(f"Tightened modes in {result.workspace.home} (the workspace is its owner's alone): "
            f"{', '.join(result.tightened)}")
    shown = [Message(f"{'Created workspace' if result.created else 'Workspace already exists:'} "
                     f"{result.workspace.home}")]
    if result.key is not None:
        shown.append(Message(f"Signing key: {result.key.key_id}"))
    else:
        shown.append(Message("No signing key yet (no passphrase given): create one with `datashare keys generate`."))
    return Result(result.to_dict(), shown)


@app.command()
@output_options(csv=True)
def register(
    path: Annotated[Path, typer.Argument(metavar="FILE", help="CSV, Parquet or JSON/NDJSON file to register.")],
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="Dataset name: [a-z][a-z0-9_]{0,62}.")],
    encoding: Annotated[str | None, typer.Option(
        "--encoding", metavar="ENCODING",
        help="CSV encoding: utf-8 (default, BOM allowed), big5, big5hkscs, utf-16, latin-1.")] = None,
    source_format: Annotated[str | None, typer.Option(
        "--format", metavar="csv|parquet|json", callback=any_case,
        help="csv, parquet or json (default: from the file extension).")] = None,
    description: Annotated[str | None, typer.Option("--description", metavar="TEXT",
        help="What the dataset holds.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", metavar="NAME",
        help="Who is responsible for the dataset.")] = None,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Load a file into the catalog as a new version of a dataset and classify its columns.

    Registering the same name again adds version N+1; identical content adds nothing.

    Examples:

    \b
      datashare register patients.csv --name patients
      datashare register extract_big5.csv --name legacy --encoding big5hkscs --format CSV
    """

    ws, who = workspace_and_actor(home, actor)
    with progress_shown() as progress:
        result = catalog.register(ws, path, name, actor=who, encoding=encoding, source_format=source_format,
                                  description=description, owner=owner, progress=progress)
    dataset = result.dataset
    data = dataset.to_dict()  # with each column's class, as the table shows them: check them
    data["unchanged"] = result.unchanged
    if result.unchanged:
        return Result(data, [Message(f"{path.name} is identical to {dataset.name} v{dataset.version} (same SHA-256): "
                                     "nothing added.")], csv=_columns_csv(dataset))
    return Result(data, [
        Message(f"Registered {dataset.name} v{dataset.version}: {dataset.rows:,} rows, {len(dataset.columns)} "
                f"columns (sha256 {dataset.source_sha256[:16]}…)"),
        _columns_table(dataset),
    ], csv=_columns_csv(dataset))


@app.command()
@output_options(csv=True)
def datasets(home: HomeOption = None, actor: ActorOption = None) -> Result:
    """List registered datasets (latest version of each).

    Examples:

    \b
      datashare datasets
      datashare datasets --csv > datasets.csv
    """

    ws, who = workspace_and_actor(home, actor)
    found = catalog.datasets(ws, who)
    shown = [Table(
        ["name", "version", "rows", "columns", "registered by", "registered at (UTC)"],
        [[d.name, f"{d.version} (purged)" if d.purged else d.version, f"{d.rows:,}", d.column_count, d.registered_by,
          d.registered_at[:19]] for d in found],
        "Datasets",
    )] if found else [Message("No datasets yet. Register one with `datashare register FILE --name NAME`.")]
    return Result(
        [dataset.to_dict(with_columns=False) for dataset in found], shown,
        csv=Table(["name", "version", "rows", "n_columns", "registered_by", "registered_at", "source_sha256",
                   "description", "owner"],
                  [[d.name, d.version, d.rows, d.column_count, d.registered_by, d.registered_at, d.source_sha256,
                    d.description, d.owner] for d in found]),
    )


@app.command()
@output_options(csv=True)
def show(
    name: DatasetArgument,
    version: VersionOption = None,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Show a dataset version: source, schema, column classes and per-column profile (--csv: the columns).

    Examples:

    \b
      datashare show patients
      datashare show patients --version 1 --json
    """

    ws, who = workspace_and_actor(home, actor)
    dataset, versions = catalog.show(ws, who, name, version)
    data = dataset.to_dict()
    data["versions"] = [v.to_dict(with_columns=False) for v in versions]
    about = Table(
        ["", ""],
        [["rows", f"{dataset.rows:,}"], ["source", dataset.source_path],
         ["format", dataset.source_format + (f" ({dataset.source_encoding})" if dataset.source_encoding else "")],
         ["size", f"{dataset.source_size:,} bytes"], ["sha256", dataset.source_sha256],
         ["registered", f"{dataset.registered_at} by {dataset.registered_by}"],
         ["description", dataset.description or ""], ["owner", dataset.owner or ""],
         ["versions", ", ".join(f"{v.version}{' (purged)' if v.purged else ''}" for v in versions)],
         *([["purged", f"{dataset.purged['at']} by {dataset.purged['by']}: {dataset.purged['reason']}"]]
           if dataset.purged else [])],
        f"{dataset.name} v{dataset.version}" + (" (purged: its rows are gone)" if dataset.purged else ""),
    )
    return Result(data, [about, _columns_table(dataset)], csv=_columns_csv(dataset))


def _columns_csv(dataset: DatasetVersion) -> Table:
    """The columns as ``--csv`` writes them (``show``, ``register``, ``classify``): every column, raw values."""
    columns = ["name", "type", "class", "detected", "match_rate", "overridden", "nulls", "distinct", "min", "max",
               "distinct_exact"]
    return Table(columns, [[c.to_dict()[key] for key in columns] for c in dataset.columns])


_MAX_COLUMNS_SHOWN = 200  # a wider table helps nobody on a screen; --json has them all


def _columns_table(dataset: DatasetVersion) -> Table:
    shown = dataset.columns[:_MAX_COLUMNS_SHOWN]
    rest = len(dataset.columns) - len(shown)
    return Table(
        ["column", "type", "class", "detected", "nulls", "distinct", "min", "max"],
        [[c.name, c.type, c.cls + (" (set)" if c.overridden else ""), c.detected or "", c.nulls,
          _distinct_text(c.distinct, c.distinct_exact), c.min or "", c.max or ""] for c in shown],
        "Columns" + (f" (the first {len(shown)} of {len(dataset.columns):,}; --json lists all)" if rest else "")
        + ("; ≈ marks an estimated distinct count" if any(c.distinct_exact is not True for c in shown) else ""),
    )


def _distinct_text(count: int | None, exact: bool | None) -> str:
    """A distinct count as counted (``1,204``) or as estimated (``≈1,204``); empty when there is none."""
    if count is None:
        return ""
    return f"{count:,}" if exact else f"≈{count:,}"


@app.command()
@output_options(csv=True)
def classify(
    name: DatasetArgument,
    assignments: Annotated[list[str], typer.Argument(metavar="COLUMN=CLASS",
        help="COLUMN=CLASS pairs; CLASS is direct, quasi, sensitive "
                                                          "or other.")],
    version: VersionOption = None,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Override the automatic class of columns; later versions keep the override.

    Examples:

    \b
      datashare classify patients hkid=direct dob=quasi diagnosis=sensitive
      datashare classify patients note=direct --version 2 --csv
    """

    pairs: dict[str, str] = {}
    for item in assignments:
        column, sep, cls = item.rpartition("=")
        if not sep or not column:
            raise UsageError(f"expected COLUMN=CLASS, got {item!r}")
        pairs[column] = cls.strip().lower()
    ws, who = workspace_and_actor(home, actor)
    dataset = catalog.classify(ws, name, pairs, actor=who, version=version)
    return Result(dataset.to_dict(), [
        Message(f"Updated {len(pairs)} column class(es) of {dataset.name} v{dataset.version}."),
        _columns_table(dataset),
    ], csv=_columns_csv(dataset))
