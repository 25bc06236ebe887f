"""The Typer application every command module adds its commands to, and the options on the root."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from datashare import __version__
from datashare.cli import output
from datashare.workspace import HOME_ENV

app = typer.Typer(
    name="datashare",
    help="Share clinical data safely and lawfully: catalog, de-identify, sign, audit.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion and --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"datashare {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show a full traceback on errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Show no progress on stderr (it shows only on a "
                                                            "terminal anyway)."),
    home: Path | None = typer.Option(None, "--home", metavar="DIR", help="The workspace folder, for the command "
                                     "that follows (as its own --home, which wins, or DATASHARE_HOME)."),
) -> None:
    """Share clinical data safely and lawfully: catalog, de-identify, sign, audit.

    Examples:

    \b
      datashare demo
      datashare --quiet generate --rows 100000 --out big.csv
    """
    if home is not None:  # `datashare --home ws datasets` as `datashare datasets --home ws`
        os.environ[HOME_ENV] = str(home)
    if debug:
        output.request_debug()
    if quiet:
        output.request_quiet()
