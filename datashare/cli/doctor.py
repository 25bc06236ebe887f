"""``datashare doctor``: one line per check of the workspace, passed, failed or not run."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from datashare.cli.app import app
from datashare.cli.common import ActorOption, HomeOption
from datashare.cli.output import Format, Line, Result, output_options, render
from datashare.doctor import DEFAULT_EXPIRING_DAYS, DoctorFindings, diagnose

_LABELS = {"workspace": "workspace", "modes": "file modes", "lock": "lock", "key": "signing key",
           "audit_log": "audit log", "policies": "policies", "catalog": "catalog"}
_MARKS = ("✓", "✗", "–")  # passed, failed, not run
_ASCII_MARKS = ("ok", "FAIL", "skip")  # where standard output cannot encode the marks (LANG=C, a plain pipe)


def marks_for(encoding: str | None) -> tuple[str, str, str]:
    """The marks standard output can show: ✓ ✗ –, or ok FAIL skip where its encoding has no such characters."""
    try:
        "".join(_MARKS).encode(encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return _ASCII_MARKS
    return _MARKS


@app.command()
@output_options()
def doctor(
    expiring_within: Annotated[int, typer.Option(
        "--expiring-within", min=0, metavar="DAYS",
        help="Fail the policies check for an approval that expires within this many days.")]
    = DEFAULT_EXPIRING_DAYS,
    home: HomeOption = None,
    actor: ActorOption = None,
    output_format: Format = Format.HUMAN,
) -> Result:
    """Check the workspace: found, file modes, key unlocks, lock free, log verifies, policies expiring, catalog.

    One line per check (✓ passed, ✗ failed, – not run); exit 1 when any check fails.

    Examples:

    \b
      datashare doctor
      datashare doctor --expiring-within 60 --json
    """

    found = diagnose(home, actor, expiring_within=expiring_within)
    passed, failed, skipped = marks_for(getattr(sys.stdout, "encoding", None))
    lines = [Line(f"{passed if c.ok else failed if c.ok is False else skipped} {_LABELS.get(c.name, c.name)}: "
                  f"{c.detail}") for c in found.checks]
    result = Result(found.to_dict(), lines)
    if found.ok:
        return result
    render(result, output_format)
    raise DoctorFindings(f"{len(found.failed)} check{'' if len(found.failed) == 1 else 's'} failed: "
                         f"{', '.join(_LABELS.get(name, name) for name in found.failed)}")
