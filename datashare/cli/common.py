"""What every command shares: option types, output to stdout/stderr, JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from datashare.governance.roles import workspace_actor
from datashare.workspace import open_workspace

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="DATASHARE_HOME",
        help="Workspace folder (default ./.datashare).",
        show_default=False,
    ),
]
ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor",
        envvar="DATASHARE_ACTOR",
        help="Who is acting (default: the OS user).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]


def workspace_and_actor(home: Path | None, actor: str | None):  # noqa: ANN201 - (Workspace, str)
    """The workspace a command works on and who is acting in it (see governance.workspace_actor)."""

    ws = open_workspace(home)
    return ws, workspace_actor(ws, actor)


# Piped output is for tools and files: no terminal width applies, so tables are never cut to fit one.
_PIPED_WIDTH = 10_000


def stdout_console():  # noqa: ANN201 - rich is imported lazily to keep start-up fast
    from rich.console import Console

    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else _PIPED_WIDTH)


def stderr_console():  # noqa: ANN201
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


class _Output:
    json_written = False  # whether this command already wrote JSON (so a failure does not add a second document)


def start_command() -> None:
    """Forget what an earlier command in this process wrote (``main`` can run many times, as in the tests)."""
    _Output.json_written = False


def emit_json(value: Any) -> None:
    """Write one JSON document to stdout."""
    _Output.json_written = True
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def emit_json_lines(values: Any) -> None:
    """Write one JSON object per line to stdout."""
    _Output.json_written = True
    for value in values:
        sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def emit_json_error(message: str, exit_code: int, details: dict[str, Any] | None = None) -> None:
    """For a command run with --json that failed before writing any: the failure as JSON on stdout."""
    if not _Output.json_written:
        emit_json({"ok": False, "error": message, "exit_code": exit_code, **(details or {})})


def say(message: str) -> None:
    """A message for the person (stderr), so stdout stays data only."""
    stderr_console().print(message, highlight=False)


def report(message: str) -> None:
    """A line of the result the command was asked for (a verification report, a key): stdout."""
    stdout_console().print(message, highlight=False)


def print_table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """A rich table on stdout (plain text when piped; colour off under NO_COLOR)."""
    # deferred: rich is imported only when something is shown
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if cell is None else str(cell) for cell in row])
    stdout_console().print(table)
