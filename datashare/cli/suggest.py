"""``policy suggest``: the generalisation that keeps the most under k (and l), and the policy that applies it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from datashare.cli.common import ActorOption, DatasetArgument, HomeOption, workspace_and_actor
from datashare.cli.output import Line, Message, Result, Table, output_options
from datashare.cli.policy import VersionOption, policy_app
from datashare.export.suggest import Request, suggest


@policy_app.command("suggest")
@output_options()
def policy_suggest(
    dataset: DatasetArgument,
    k: Annotated[int, typer.Option("--k", metavar="K", min=1,
                                   help="Smallest class allowed, in people (or rows).")],
    l_min: Annotated[int, typer.Option("--l", metavar="L", min=1,
                                       help="Distinct --sensitive values each class must hold.")] = 1,
    sensitive: Annotated[str | None, typer.Option("--sensitive", metavar="COLUMN",
                                                  help="The column l counts (kept as it is).")] = None,
    max_suppression: Annotated[float, typer.Option(
        "--max-suppression", metavar="SHARE", min=0.0, max=1.0,
        help="Share of the rows that may be suppressed (0 to 1).")] = 0.0,
    subject: Annotated[str | None, typer.Option(
        "--subject", metavar="COLUMN",
        help="The column naming the person behind each row (default: the record id column).")] = None,
    keep: Annotated[list[str] | None, typer.Option(
        "--keep", metavar="COLUMN", help="A column to release as it is (repeat the option for several).")] = None,
    purpose: Annotated[list[str] | None, typer.Option(
        "--purpose", metavar="PURPOSE",
        help="A purpose the written policy allows (repeatable; default: research).")] = None,
    recipient: Annotated[list[str] | None, typer.Option(
        "--recipient", metavar="RECIPIENT",
        help="A recipient the written policy allows (repeatable; default: a placeholder).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="FILE", help="Write the suggested policy to this new file.")] = None,
    version: VersionOption = None,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Search the generalisations of every quasi-identifier for the least information loss that meets k (and l)
    with at most --max-suppression suppressed; --out writes it as a complete policy (custodians only).

    Examples:

    \b
      datashare policy suggest patients --k 5 --max-suppression 0.05 --keep sex
      datashare policy suggest patients --k 5 --l 2 --sensitive diagnosis --max-suppression 0.05 --purpose clinical-research --recipient cicor --out policies/patients-suggested.yaml
    """  # noqa: E501

    ws, me = workspace_and_actor(home, actor)
    request = Request(k=k, l=l_min, sensitive=sensitive, max_suppression=max_suppression, subject=subject,
                      keep=tuple(keep or ()), purposes=tuple(purpose or ()), recipients=tuple(recipient or ()))
    found = suggest(ws, me, dataset, request, out=out, version=version)
    best, second = found["optimum"], found["runner_up"]
    columns = list(best["levels"])
    shown = [
        Table(["quasi-identifier", "chosen", "runner-up"],
              [[c, best["levels"][c]["level"], second["levels"][c]["level"] if second else "—"] for c in columns],
              f"Generalisations of {dataset} v{found['dataset_version']} for k={k} {found['k_unit']}"
              + (f", l={l_min} on {sensitive}" if sensitive else "")
              + f", at most {max_suppression:.1%} suppressed"),
        Table(["", "chosen", "runner-up"], [
            ["information loss", f"{best['loss']:.3f}", _figure(second, "loss", ".3f")],
            ["rows suppressed", _suppressed(best), _suppressed(second) if second else "—"],
            ["people suppressed", _people(best), _people(second) if second else "—"],
        ]),
        Line(f"Loss: {found['loss_measure']}. Searched {found['evaluated']:,} of {found['nodes']:,} "
             f"generalisations; {found['passing']:,} pass."),
    ]
    if found["policy_file"]:
        shown.append(Message(f"Wrote {found['policy_file']}: check it (`datashare policy check "
                             f"{found['policy_file']} --dataset {dataset}`), then have it approved."))
    return Result(found, shown)


def _figure(found: dict[str, Any] | None, name: str, spec: str) -> str:
    return "—" if found is None else f"{found[name]:{spec}}"


def _suppressed(found: dict[str, Any]) -> str:
    return f"{found['rows_suppressed']:,} of {found['rows']:,} ({found['share_suppressed']:.1%})"


def _people(found: dict[str, Any]) -> str:
    if found["people"] is None:
        return "— (no subject: k counts rows)"
    return f"{found['people_suppressed']:,} of {found['people']:,}"
