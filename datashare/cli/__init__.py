"""The command line: a thin layer over the library.

Commands parse options, call the library, and render. Errors are turned into a
message and an exit code here, in :func:`main`, and nowhere else.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer

# Importing a command module adds its commands to the app.
from datashare.cli import audit, catalog, extras, governance, keys, output, policy, synth  # noqa: F401
from datashare.cli.app import DEBUG_ENV, app
from datashare.errors import EXIT_ERROR, EXIT_USAGE, DatashareError


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and exit with) the documented exit code."""

    output.reset()  # tests (and any caller) may run main(argv) many times in one process
    args = argv if argv is not None else sys.argv[1:]
    debug = "--debug" in args or bool(os.environ.get(DEBUG_ENV))
    try:
        result = app(args=argv, standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except DatashareError as exc:
        if debug:
            traceback.print_exc()
        _error(exc.diagnostics())
        code = exc.exit_code
        if output.json_requested() and code != EXIT_USAGE:  # scripts asked for JSON: a failure comes as JSON too
            output.emit_json_error(exc.message, code, getattr(exc, "json_details", None))
    except SystemExit:
        if type(sys.stdout).__name__ != "PacifyFlushWrapper":
            raise
        code = 0  # the reader of stdout went away (`| head`): the rest was not wanted, which is no error
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        _error("aborted")
        code = EXIT_ERROR
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            _error(exc.format_message())
        code = EXIT_USAGE if exc.exit_code == EXIT_USAGE else EXIT_ERROR
    except KeyboardInterrupt:
        _error("interrupted")
        code = 130
    except Exception as exc:  # the one place unexpected errors become a message
        if debug:
            traceback.print_exc()
        message = f"internal error ({type(exc).__name__})"
        _error(f"{message}.\nRun it again as `datashare --debug …` (before the command's name) for a traceback.")
        code = EXIT_ERROR
        if output.json_requested():
            output.emit_json_error(message, code)
    sys.stdout.flush()
    if argv is None:
        sys.exit(code)
    return code


def _error(message: str) -> None:
    # A message may name a path or a value given on the command line: its control characters are shown, not obeyed.
    sys.stderr.write(f"datashare: error: {output.visible(message)}\n")
    sys.stderr.flush()
