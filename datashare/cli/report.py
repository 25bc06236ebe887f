"""Reports to hand over: ``report risk`` and ``report audit``, each one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datashare import report
from datashare.audit.query import AuditFilter, validate_filter
from datashare.cli.app import app
from datashare.cli.common import (
    ActorOption,
    DatasetArgument,
    HomeOption,
    PolicyFileOption,
    PopulationFractionOption,
    VersionOption,
    workspace_and_actor,
)
from datashare.cli.output import Message, Result, output_options

report_app = typer.Typer(no_args_is_help=True, help="Write an HTML report: risk (a committee's) or audit.")
app.add_typer(report_app, name="report")

OutOption = Annotated[Path, typer.Option("--out", metavar="FILE",
                                         help="The HTML file to write (replaced if it exists).")]


@report_app.command("risk")
@output_options()
def report_risk(
    dataset: DatasetArgument,
    policy: PolicyFileOption,
    out: OutOption,
    version: VersionOption = None,
    population_fraction: PopulationFractionOption = 1.0,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Write the re-identification risk of a dataset under a policy as one HTML page: class sizes, suppression,
    what drives the classes below k, prosecutor, journalist and marketer risk, l, the dataset's fingerprint.
    Held to `risk`'s rules (an analyst needs an approved policy; counts below k read <k). A policy the privacy
    gate would refuse gets its report too (it says so).

    Examples:

    \b
      datashare report risk patients --policy policies/hk-clinical-research.yaml --out risk.html
      datashare report risk patients --policy policies/hk-open-data.yaml --population-fraction 0.1 --out open.html
    """
    ws, me = workspace_and_actor(home, actor)
    written = report.risk_report(ws, me, policy, dataset, out, version, population_fraction=population_fraction)
    said = [Message(f"Wrote the risk report of {dataset} to {written['path']} (SHA-256 {written['sha256']})")]
    if written["gate"] != "pass":
        said.append(Message("The privacy gate would refuse an export under this policy (see the report)."))
    return Result(written, said)


@report_app.command("audit")
@output_options()
def report_audit(
    out: OutOption,
    since: Annotated[str | None, typer.Option("--since", metavar="DATE",
                                              help="From this date or ISO timestamp (UTC).")] = None,
    until: Annotated[str | None, typer.Option("--until", metavar="DATE",
                                              help="Up to this date (inclusive) or timestamp.")] = None,
    home: HomeOption = None,
) -> Result:
    """Write the audit log as one HTML page: exports per recipient over time, each export's receipt, denials,
    and whether the hash chain verifies. The acting identity comes from DATASHARE_ACTOR or the OS user.

    Examples:

    \b
      datashare report audit --out audit.html
      datashare report audit --since 2026-01-01 --until 2026-06-30 --out audit-h1.html
    """
    validate_filter(AuditFilter(since=since, until=until))  # a usage error before the workspace is opened
    ws, me = workspace_and_actor(home, None)
    written = report.audit_report(ws, me, out, since=since, until=until)
    said = [Message(f"Wrote the audit report to {written['path']} (SHA-256 {written['sha256']})")]
    if not written["chain_verified"]:  # the report says so too; a reader of the terminal should not miss it
        said.append(Message(f"The audit log does not verify: {written['chain_error']}"))
    return Result(written, said)
