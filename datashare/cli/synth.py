"""Synthetic data: ``synthesize``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datashare.cli.app import app
from datashare.cli.common import (
    ActorOption,
    DatasetArgument,
    HomeOption,
    PurposeOption,
    RecipientOption,
    any_case,
    workspace_and_actor,
)
from datashare.cli.output import Message, Result, output_options
from datashare.cli.progress import progress_shown
from datashare.synth.run import synthesize


@app.command("synthesize")
@output_options()
def synthesize_command(
    dataset: DatasetArgument,
    policy: Annotated[Path, typer.Option("--policy", metavar="FILE",
        help="An approved policy file with a synthetic: section.")],
    out: Annotated[Path, typer.Option("--out", metavar="FOLDER",
        help="Folder to create for the signed synthetic data.")],
    purpose: PurposeOption,
    recipient: RecipientOption,
    rows: Annotated[int | None, typer.Option("--rows", metavar="N", min=1, help="Rows to make (default: the policy's, "
                                                                   "else as many as the source).")] = None,
    method: Annotated[str | None, typer.Option("--method", metavar="copula|mst", callback=any_case,
        help="copula or mst; must be the policy's.")] = None,
    epsilon: Annotated[float | None, typer.Option("--epsilon", metavar="E",
        help="mst: ε, at most the policy's.")] = None,
    delta: Annotated[float | None, typer.Option("--delta", metavar="D", help="mst: δ, at most the policy's.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", metavar="N",
        help="Seed of the split and the sampling (never of the "
                                                            "DP noise).")] = None,
    version: Annotated[int | None, typer.Option("--version", metavar="N", min=1,
        help="Dataset version (default: latest).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier output folder.")] = False,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Make synthetic rows shaped like a dataset, with a fidelity and privacy report, signed and audited.

    Examples:

    \b
      datashare synthesize patients --policy policies/hk-synthetic.yaml --out exports/syn1 \\
          --purpose teaching --recipient trainer
      datashare synthesize patients --policy policies/hk-synthetic-dp.yaml --out exports/syn2 \\
          --purpose open-data --recipient public --method mst --epsilon 1 --rows 5000
    """

    ws, me = workspace_and_actor(home, actor)
    with progress_shown() as progress:
        manifest = synthesize(ws, me, dataset, policy, out, purpose=purpose, recipient=recipient, rows=rows,
                              method=method, epsilon=epsilon, delta=delta, seed=seed, version=version,
                              overwrite=overwrite, progress=progress)
    synthetic, figures = manifest["synthetic"], manifest["report"]
    return Result(manifest, [
        Message(f"Wrote {manifest['rows']['out']:,} synthetic rows of {dataset} v{manifest['dataset']['version']} "
                f"to {out} ({synthetic['method']}); signed by {manifest['signer_key_id']}; audit entry "
                f"{manifest['audit_receipt']['seq']}"),
        Message(f"Fidelity: shapes {figures['column_shape_mean']:.3f}, overall {figures['overall']:.3f}; exact "
                f"copies {figures['exact_row_copies']}; DCR share {figures['dcr_share']:.3f}. See "
                f"{out}/report.html"),
        Message(synthetic["statement"]),
    ])
