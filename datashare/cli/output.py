"""One output switch: a command builds its result, and one renderer writes it as JSON, CSV or for a person.

Modelled on sqlite-utils' ``@output_options``: :func:`output_options` adds ``--json`` (and ``--csv`` where the
result is a table) to a command, and the command returns a :class:`Result` instead of printing. The result
holds the JSON answer (a contract: its fields never change), how a person sees it (tables and lines in order),
and the table that ``--csv`` writes (raw values under machine-readable column names).

Everything a person sees goes through rich as :class:`rich.text.Text`, never as markup: a recipient, a path
or a column name holding ``[/]`` is shown as it is, and control characters are shown as escapes, so no value
can crash the renderer or drive the terminal.
"""

from __future__ import annotations

import csv
import enum
import functools
import inspect
import json
import sys
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from datashare.core import locking
from datashare.errors import DatashareError, UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

JSON_HELP = "Print machine-readable JSON on stdout."
CSV_HELP = "Print the table as CSV on stdout."


class Format(enum.Enum):
    """How a result is written: for a person (tables and lines), as JSON, or as CSV."""

    HUMAN = "human"
    JSON = "json"
    CSV = "csv"


@dataclass(frozen=True)
class Table:
    """A table: on stdout for a person (``title`` above it), or as CSV (header row, then ``rows``)."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    title: str | None = None


@dataclass(frozen=True)
class Line:
    """A line of the result the command was asked for (a verification report, a key): stdout."""

    text: str


@dataclass(frozen=True)
class Message:
    """A message for the person (stderr), so stdout stays data only."""

    text: str


@dataclass(frozen=True)
class Verbatim:
    """Text that is the data itself (a stored policy file, a diff): written to stdout exactly as it is.

    Only on a terminal are control characters shown as escapes (tabs kept), as everywhere else.
    """

    text: str


Part = Table | Line | Message | Verbatim


@dataclass(frozen=True)
class Result:
    """What a command shows.

    ``data`` is the ``--json`` answer; ``shown`` is what a person sees, in order (``None``: the answer is
    JSON for everyone, as for ``audit head``); ``csv`` is the table ``--csv`` writes; ``json_lines`` writes
    ``data`` (a list) as one JSON object per line, as logs are read. ``refusal``: the answer is written, then the
    command fails with this error (``risk`` under a policy the gate would refuse exits 3 after its report).
    """

    data: Any
    shown: Sequence[Part] | None = ()
    csv: Table | None = None
    json_lines: bool = False
    refusal: DatashareError | None = None


class _Output:
    """Per-call state: reset by :func:`reset` at the start of every ``main(argv)``."""

    json_requested = False  # the command runs under --json (so a failure is JSON too)
    json_written = False  # it already wrote its JSON answer (so a failure does not add a second document)
    debug = False  # --debug was given on the root (a failure shows its traceback)
    quiet = False  # --quiet was given on the root (no progress on stderr)


def reset() -> None:
    """Forget what an earlier call in this process asked for, wrote and was told."""
    _Output.json_requested = False
    _Output.json_written = False
    _Output.debug = False
    _Output.quiet = False
    locking.forget_waiting()


def json_requested() -> bool:
    return _Output.json_requested


def request_debug() -> None:
    _Output.debug = True


def debug_requested() -> bool:
    return _Output.debug


def request_quiet() -> None:
    _Output.quiet = True


def quiet_requested() -> bool:
    return _Output.quiet


def failure(message: str, exit_code: int) -> dict[str, Any]:
    """The base of every failure answer under ``--json``; a command's own failure answer adds its fields to it."""
    return {"ok": False, "error": message, "exit_code": exit_code}


# --- writing -------------------------------------------------------------------------------------------------

# Piped output is for tools and files: no terminal width applies, so tables are never cut to fit one.
_PIPED_WIDTH = 10_000

# Characters that move the cursor, recolour, break, hide or reorder text (C0/C1 controls, line and paragraph
# separators, format characters such as zero-width spaces and bidirectional marks, unassigned, private-use and
# surrogate code points) are shown as escapes. A newline is layout and stays.
_KEPT_CONTROLS = {"\n"}
_ESCAPED_CATEGORIES = {"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"}
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}


def visible(text: str) -> str:
    """``text`` with every control character written as an escape (``\\x1b``), so it is shown, not obeyed."""
    if text.isprintable():
        return text
    return "".join(_escape_char(ch) for ch in text)


def _escape_char(ch: str) -> str:
    if ch in _KEPT_CONTROLS or (ch not in _BIDI_CONTROLS and unicodedata.category(ch) not in _ESCAPED_CATEGORIES):
        return ch
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _text(value: Any) -> Text:
    # deferred: rich is imported only when something is shown
    from rich.text import Text

    return Text(visible("" if value is None else str(value)))


def stdout_console() -> Console:
    # deferred: rich is imported only when something is shown
    from rich.console import Console

    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else _PIPED_WIDTH)
    # rich answers a closed pipe with exit 1; the CLI treats a reader that left early as no error (exit 0).
    console.on_broken_pipe = _broken_pipe
    return console


def _broken_pipe() -> None:
    raise BrokenPipeError


def stderr_console() -> Console:
    # deferred: rich is imported only when something is shown
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)


def or_dash(value: Any) -> str:
    """A value written into a sentence: ``—`` where there is none, never ``None``."""
    return "—" if value is None else str(value)


def say(message: str) -> None:
    """A message for the person (stderr), shown literally."""
    stderr_console().print(_text(message), highlight=False)


def report(message: str) -> None:
    """A line of the result (stdout), shown literally."""
    stdout_console().print(_text(message), highlight=False)


def write_verbatim(text: str) -> None:
    """``text`` on stdout byte for byte; on a terminal, with control characters (but tabs) shown as escapes."""
    if sys.stdout.isatty():
        text = "\t".join(visible(chunk) for chunk in text.split("\t"))
    sys.stdout.write(text)
    sys.stdout.flush()


def print_table(table: Table) -> None:
    """A table on stdout, every cell shown literally: box-drawn on a terminal; piped (to a file, ``less``, ``grep``),
    plain columns separated by spaces under a header row, with no line-drawing characters (``--csv`` is the
    format for programs). Colour is off when piped and under NO_COLOR."""
    # deferred: rich is imported only when something is shown
    from rich import box
    from rich.table import Table as RichTable

    on_terminal = sys.stdout.isatty()
    shown = RichTable(title=None if table.title is None else _text(table.title), show_lines=False,
                      box=box.HEAVY_HEAD if on_terminal else None, pad_edge=on_terminal,
                      show_header=any(table.columns),  # a table of names and values (`show`'s first) has none
                      title_justify="center" if on_terminal else "left")
    for column in table.columns:
        shown.add_column(_text(column))
    for row in table.rows:
        shown.add_row(*[_text(cell) for cell in row])
    stdout_console().print(shown)


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


def emit_json_error(message: str, exit_code: int, error: BaseException | None = None) -> None:
    """For a command run with --json that failed before writing its answer: the failure, in one shape.

    A policy that is not valid adds ``errors``: each problem as ``{file, path, line, column, message, hint}``.
    """
    if not _Output.json_written:
        located = getattr(error, "located", None)
        emit_json(failure(message, exit_code) | ({"errors": located} if located else {}))


def emit_csv(table: Table) -> None:
    """The table as CSV on stdout: a header row, then the rows (raw values; empty for none)."""
    # The csv module quotes a field holding the line terminator ("\n") but not a lone "\r", which readers take
    # for a line end: a row holding one has every field quoted.
    minimal = csv.writer(sys.stdout, lineterminator="\n")
    quoted = csv.writer(sys.stdout, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in [table.columns, *table.rows]:
        cells = ["" if cell is None else cell for cell in row]
        (quoted if any("\r" in str(cell) for cell in cells) else minimal).writerow(cells)
    sys.stdout.flush()


def render(result: Result, fmt: Format) -> None:
    """Write ``result`` as ``fmt`` asks: the one place a command's output is written."""
    if fmt is Format.JSON or result.shown is None:
        (emit_json_lines if result.json_lines else emit_json)(result.data)
    elif fmt is Format.CSV:
        if result.csv is None:  # output_options offers --csv only where the result has a table
            raise UsageError("this command has no table to write as CSV")
        emit_csv(result.csv)
    else:
        for part in result.shown:
            if isinstance(part, Table):
                print_table(part)
            elif isinstance(part, Line):
                report(part.text)
            elif isinstance(part, Verbatim):
                write_verbatim(part.text)
            else:
                say(part.text)


# --- the decorator -------------------------------------------------------------------------------------------

FORMAT_PARAMETER = "output_format"  # a command that declares it is told the format (the demo streams its steps)

JsonFailure = Callable[[DatashareError, dict[str, Any]], Any]


def output_options(
    *, csv: bool = False, json_help: str = JSON_HELP, json_failure: JsonFailure | None = None
) -> Callable[[Callable[..., Result | None]], Callable[..., None]]:
    """Give a command ``--json`` (and ``--csv`` if ``csv``) and render the :class:`Result` it returns.

    A failure under ``--json`` is ``{"ok": false, "error", "exit_code"}`` (written by ``main``);
    ``json_failure(error, arguments)`` may return fields the command adds to it (``policy check`` lists the
    problems). A command that declares an ``output_format`` parameter receives the chosen :class:`Format`.
    """

    def decorate(command: Callable[..., Result | None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        takes_format = FORMAT_PARAMETER in signature.parameters
        parameters = [p for name, p in signature.parameters.items() if name != FORMAT_PARAMETER]
        parameters.append(inspect.Parameter(
            "json_out", inspect.Parameter.KEYWORD_ONLY, default=False,
            annotation=Annotated[bool, typer.Option("--json", help=json_help)]))
        if csv:
            parameters.append(inspect.Parameter(
                "csv_out", inspect.Parameter.KEYWORD_ONLY, default=False,
                annotation=Annotated[bool, typer.Option("--csv", help=CSV_HELP)]))

        @functools.wraps(command)
        def run(*args: Any, json_out: bool = False, csv_out: bool = False, **kwargs: Any) -> None:
            if json_out and csv_out:
                raise UsageError("give --json or --csv, not both")
            fmt = Format.JSON if json_out else Format.CSV if csv_out else Format.HUMAN
            if json_out:
                _Output.json_requested = True
            if takes_format:
                kwargs[FORMAT_PARAMETER] = fmt
            try:
                result = command(*args, **kwargs)
            except DatashareError as exc:
                if json_out and json_failure is not None:
                    answer = json_failure(exc, signature.bind_partial(*args, **kwargs).arguments)
                    if answer is not None:
                        emit_json(failure(exc.message, exc.exit_code) | answer)
                raise
            if result is not None:
                render(result, fmt)
                if result.refusal is not None:
                    raise result.refusal

        run.__signature__ = signature.replace(parameters=parameters)  # what Typer reads to build the options
        run.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
        return run

    return decorate
