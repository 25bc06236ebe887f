"""The preview: a few rows as the recipient would get them, before and after, with nothing written or signed.

The rows are the export's own: the recipient's keys (pseudonyms, date shifts
and noise as that recipient would get them), the gate's suppression, every
transform, the output names, in the keyed order. The *before* side is the
source row as the catalog holds it, personal data: only a custodian, who may
read the catalog itself, sees it; anyone else sees the after side alone. The
preview is logged as ``export.preview``, with the number of rows shown and
whether the before side was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datashare.audit.log import audited
from datashare.catalog.store import resolve
from datashare.export.plan import data_errors, install_keys, is_custodian, prepare
from datashare.export.privacy import classify_rows, gate
from datashare.governance.approvals import require_approved
from datashare.governance.keys import unlock_secret
from datashare.policy.model import load_policy
from datashare.policy.use import check_use
from datashare.signing.keystore import read_passphrase
from datashare.workspace import Workspace

DEFAULT_ROWS = 5
MAX_ROWS = 100


def preview(ws: Workspace, actor: str, dataset: str, policy_path: Path, *, purpose: str, recipient: str,
            rows: int = DEFAULT_ROWS, version: int | None = None, passphrase: str | None = None) -> dict[str, Any]:
    """Up to ``rows`` de-identified rows of ``dataset`` under the policy, for ``recipient``; nothing is written.

    Checked as an export is (the policy's dataset, purpose, recipient, expiry; its approval, except that a
    custodian may preview a draft), and refused when the gate would refuse the export. Values are returned as
    DuckDB gives them: the caller escapes them for the screen.
    """
    with audited(ws, "export.preview", actor, dataset=dataset, version=version) as record:
        record.purpose, record.recipient = purpose, recipient
        loaded = load_policy(policy_path)
        record.name_policy(loaded)
        with ws.connect(read_only=True) as con:
            resolved = resolve(con, dataset, version)
        check_use(loaded, dataset=dataset, purpose=purpose, recipient=recipient)
        custodian = is_custodian(ws, actor)
        if not custodian:
            require_approved(ws, loaded)
        secret = unlock_secret(ws, actor, passphrase if passphrase is not None else read_passphrase(confirm=False))
        with ws.connect(read_only=True) as con, data_errors(loaded, dataset):
            compiled = prepare(loaded, resolved, direct_filter_allowed=custodian)
            record.target["version"] = resolved.version
            install_keys(con, secret, recipient, dataset, loaded.link_group)
            gate(loaded, compiled, classify_rows(con, compiled))
            query = compiled.preview_sql if custodian else compiled.export_sql  # the source row: custodians only
            fetched = con.execute(f"{query}\nLIMIT ?", [int(rows)]).fetchall()
        record.ok(rows=len(fetched), before_shown=custodian)
    plan = [p for p in compiled.plan if p.sql is not None]
    shown = []
    for row in fetched:
        before = row[0] if custodian else {}
        after = row[1:] if custodian else row
        columns = [{"column": p.column, "output": p.output, "transform": p.transform,
                    "before": before.get(p.column) if custodian else None, "after": value}
                   for p, value in zip(plan, after, strict=True)]
        if custodian:  # what the recipient does not get, beside what they do
            columns += [{"column": name, "output": None, "transform": "drop", "before": before.get(name),
                         "after": None} for name in before if name not in {p.column for p in plan}]
        shown.append(columns)
    return {"dataset": dataset, "dataset_version": resolved.version, "policy": loaded.name,
            "policy_version": loaded.version, "purpose": purpose, "recipient": recipient,
            "before_shown": custodian, "rows": shown, "written": False}
