"""Signing keys: generate, rotate, show and hand out the public key."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from datashare import governance
from datashare.cli.app import app
from datashare.cli.common import ActorOption, HomeOption, workspace_and_actor
from datashare.cli.output import Line, Message, Result, output_options

keys_app = typer.Typer(help="The workspace's Ed25519 signing key.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("generate")
@output_options()
def keys_generate(
    comment: Annotated[str | None, typer.Option("--comment", metavar="COMMENT",
        help="Who the key belongs to, e.g. custodian@hospital.")]
    = None,
    rotate: Annotated[bool, typer.Option("--rotate", help="Replace the current key; keep the old public key.")]
    = False,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Create the workspace's Ed25519 signing key (passphrase from a prompt or DATASHARE_PASSPHRASE).

    Examples:

    \b
      datashare keys generate --comment custodian@hospital
      DATASHARE_NEW_PASSPHRASE=… datashare keys generate --rotate
    """

    ws, me = workspace_and_actor(home, actor)
    info = governance.create_key(ws, me, comment=comment, rotate=rotate)
    named = f" ({info.comment})" if info.comment else ""
    done = "Rotated to" if rotate else "Created"
    return Result(info.to_dict(), [Message(f"{done} signing key {info.key_id}{named}")])


@keys_app.command("show")
@output_options()
def keys_show(home: HomeOption = None, actor: ActorOption = None) -> Result:
    """Show the current public key, its id (as ssh-keygen prints it) and retired keys.

    Examples:

    \b
      datashare keys show
      datashare keys show --json
    """

    ws, me = workspace_and_actor(home, actor)
    keys = governance.show_keys(ws, me)
    data = {"current": keys[0].to_dict() if keys and not keys[0].retired else None,
            "retired": [k.to_dict() for k in keys if k.retired]}
    if not keys:
        return Result(data, [Message("No signing key yet: datashare keys generate")])
    # Plain lines, not a table: a key id is compared character by character and must never be cut to fit.
    shown = [Line(f"{k.key_id}  {f'retired {k.retired[:19]}' if k.retired else 'current'}  created {k.created[:19]}  "
                  f"{k.comment}".rstrip()) for k in keys]
    current = next((k for k in keys if not k.retired), None)
    if current is not None:
        shown.append(Line(current.public_key))
    return Result(data, shown)


@keys_app.command("export-public")
@output_options()
def keys_export_public(
    out: Annotated[Path, typer.Option("--out", metavar="FILE",
        help="Where to write the public key (e.g. custodian.pub).")],
    principal: Annotated[str | None, typer.Option(
        "--principal", metavar="PRINCIPAL",
        help="Identity for the allowed_signers line (default: the key comment).")] = None,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Write the public key, and an allowed_signers file for ssh-keygen beside it.

    Examples:

    \b
      datashare keys export-public --out custodian.pub
      datashare keys export-public --out allowed_signers --principal custodian@hospital
    """

    ws, me = workspace_and_actor(home, actor)
    info, signers, identity = governance.export_public(ws, me, out, principal)
    return Result({"public_key_file": str(out), "allowed_signers_file": str(signers), "principal": identity,
                   "key": info.to_dict()},
                  [Message(f"Wrote {out} and {signers}; a recipient checks an export with:\n"
                           f"  ssh-keygen -Y verify -f {signers} -I {identity} -n datashare "
                           "-s EXPORT/SHA256SUMS.sig < EXPORT/SHA256SUMS\n"
                           "  then, in EXPORT: sha256sum -c --strict SHA256SUMS, and a listing check "
                           "(see the README)")])
