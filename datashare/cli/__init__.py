"""The command line: a thin layer over the library.

Commands parse options, call the library, and render. Errors are turned into a
message and an exit code here, in :func:`main`, and nowhere else.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback

import typer

# Importing a command module adds its commands to the app.
from datashare.cli import (  # noqa: F401
    audit,
    catalog,
    doctor,
    extras,
    governance,
    keys,
    output,
    policy,
    policy_texts,
    purge,
    releases,
    report,
    suggest,
    synth,
)
from datashare.cli.app import app
from datashare.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, DatashareError, is_interrupt
from datashare.workspace import HOME_ENV, PRIVATE_UMASK


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return (and exit with) the documented exit code."""

    output.reset()  # tests (and any caller) may run main(argv) many times in one process
    args = argv if argv is not None else sys.argv[1:]
    # Every file the run creates (DuckDB's write-ahead log, exports, keys) is private; an in-process caller gets
    # its own umask back.
    previous_umask = os.umask(PRIVATE_UMASK)
    previous_home = os.environ.get(HOME_ENV)  # `datashare --home DIR …` sets it for the command that follows
    try:
        return _run(argv, args)
    finally:
        os.umask(previous_umask)
        if previous_home is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = previous_home


def _run(argv: list[str] | None, args: list[str]) -> int:
    json_asked = "--json" in args  # a usage error comes before the command knows it was asked for JSON
    try:
        result = app(args=argv, prog_name="datashare", standalone_mode=False)
        code = result if isinstance(result, int) else 0
        if code == EXIT_INTERRUPTED:  # Typer answers a KeyboardInterrupt with this code, silently
            code = _interrupted(json_asked)
    except DatashareError as exc:
        if _debug(args):
            traceback.print_exc()
        _error(exc.diagnostics())
        code = exc.exit_code
        if output.json_requested() or json_asked:  # scripts asked for JSON: a failure comes as JSON too
            output.emit_json_error(exc.message, code, exc)
    except SystemExit:
        if type(sys.stdout).__name__ != "PacifyFlushWrapper":
            raise
        code = 0  # the reader of stdout went away (`| head`): the rest was not wanted, which is no error
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort as exc:
        if is_interrupt(exc):  # click's Abort stands for Ctrl-C as well
            code = _interrupted(json_asked)
        else:
            _error("aborted")
            code = EXIT_ERROR
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            _error(exc.format_message())
        code = EXIT_USAGE if exc.exit_code == EXIT_USAGE else EXIT_ERROR
        if json_asked:
            output.emit_json_error(exc.format_message(), code)
    except KeyboardInterrupt:
        code = _interrupted(json_asked)
    except BrokenPipeError:
        code = _reader_gone()
    except Exception as exc:  # the one place unexpected errors become a message
        if is_interrupt(exc):  # Ctrl-C while DuckDB ran a query: DuckDB answers it with its own exception
            code = _interrupted(json_asked)
        else:
            if _debug(args):
                traceback.print_exc()
            message = f"internal error ({type(exc).__name__})"
            _error(f"{message}.\nRun it again as `datashare --debug …` (before the command's name) for a traceback.")
            code = EXIT_ERROR
            if output.json_requested() or json_asked:
                output.emit_json_error(message, code)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = _reader_gone()
    if argv is None:
        sys.exit(code)
    return code


def _interrupted(json_asked: bool) -> int:
    """Ctrl-C: one word on stderr (and the failure as JSON, if asked for) and exit 130; the library has rolled
    back or removed what it had begun."""
    _error("interrupted")
    if output.json_requested() or json_asked:
        output.emit_json_error("interrupted", EXIT_INTERRUPTED)
    return EXIT_INTERRUPTED


def _reader_gone() -> int:
    """The reader of stdout went away (`| head`): the rest was not wanted, which is no error (exit 0).

    Standard output is pointed at /dev/null so that the interpreter's last flush at exit is quiet too.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 0


def _debug(args: list[str]) -> bool:
    """Whether to show a traceback: ``--debug`` on the root (or, for an error before it was parsed, anywhere)."""
    return output.debug_requested() or "--debug" in args


def _error(message: str) -> None:
    # A message may name a path or a value given on the command line: its control characters are shown, not obeyed.
    sys.stderr.write(f"datashare: error: {output.visible(message)}\n")
    sys.stderr.flush()
