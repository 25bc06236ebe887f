"""The demo: the main job end to end on the bundled sample, in a throw-away workspace.

It goes through the library exactly as a custodian, a recipient and an
auditor would through the CLI, and reports each step.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from datashare.audit.commands import read_log
from datashare.audit.query import AuditFilter
from datashare.catalog.load import register
from datashare.errors import InputError, RefusedError
from datashare.export.privacy import risk
from datashare.export.recipient import verify_directory
from datashare.export.run import export
from datashare.governance.approvals import approve, verify_audit_log
from datashare.governance.roles import set_service_accounts
from datashare.init import initialise

DEMO_ACTOR = "demo-custodian"
DEMO_PASSPHRASE = "demo passphrase, not for real data"
DATASET = "patients"


def sample_csv() -> Path:
    """The bundled sample of 1,000 fake patient records."""
    return Path(str(resources.files("datashare") / "data" / "sample_patients.csv"))


@contextmanager
def _demo_folder(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        if keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
            raise InputError(f"{keep} is not an empty folder: the demo keeps its workspace in a new one",
                             hint="Give a folder that does not exist yet (or is empty).")
        try:
            keep.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the folder {keep}: {exc.strerror}") from None
        yield keep
        return
    folder = Path(tempfile.mkdtemp(prefix="datashare-demo-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_demo(keep: Path | None = None, report: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run every step; return what each did. ``report`` receives one line per step."""

    steps: list[dict[str, Any]] = []

    def step(name: str, text: str, **data: Any) -> None:
        steps.append({"step": name, "summary": text, **data})
        if report is not None:
            report(f"[{len(steps)}] {text}")

    policies = policies_dir()
    research, refused = policies / "hk-clinical-research.yaml", policies / "hk-refused-by-k.yaml"
    with _demo_folder(keep) as folder:
        made = initialise(folder / "workspace", DEMO_ACTOR, passphrase=DEMO_PASSPHRASE, ask=False, named_actor=True,
                          comment="custodian@demo-hospital")
        ws, key = made.workspace, made.key
        set_service_accounts(ws, DEMO_ACTOR, True)  # the demo acts as a named custodian
        step("init", f"Custodian {DEMO_ACTOR} created a workspace in {ws.home} with signing key {key.key_id}")

        dataset = register(ws, sample_csv(), DATASET, actor=DEMO_ACTOR,
                           description="Fake Hong Kong patient records (sample)").dataset
        classes: dict[str, list[str]] = {}
        for column in dataset.columns:
            classes.setdefault(column.cls, []).append(column.name)
        step("register", f"Registered {DATASET} v{dataset.version}: {dataset.rows:,} rows, {len(dataset.columns)} "
             f"columns; direct identifiers found: {', '.join(classes.get('direct', []))}",
             rows=dataset.rows, classes=classes)

        approve(ws, DEMO_ACTOR, research, passphrase=DEMO_PASSPHRASE)
        approve(ws, DEMO_ACTOR, refused, passphrase=DEMO_PASSPHRASE)
        step("approve", "Approved policies hk-clinical-research and hk-refused-by-k (SHA-256 pinned, signed)")

        assessed = risk(ws, DEMO_ACTOR, research, DATASET, passphrase=DEMO_PASSPHRASE)
        step("risk", f"Risk under hk-clinical-research: {assessed['equivalence_classes']} classes over "
             f"{', '.join(assessed['quasi_identifiers'])}; {_below_k(assessed)} (gate: {assessed['gate']})",
             risk={k: assessed[k] for k in ("records", "k", "gate")})

        out = folder / "exports" / "run1"
        out.parent.mkdir(parents=True, exist_ok=True)
        manifest = export(ws, DEMO_ACTOR, DATASET, research, out, purpose="clinical-research",
                          recipient="cicor", passphrase=DEMO_PASSPHRASE)
        step("export", f"Exported {manifest['rows']['out']:,} de-identified rows to {out} "
             f"(k={manifest['privacy']['k_measured']}, {manifest['rows']['suppressed']} suppressed; "
             f"dropped by default: {', '.join(manifest['columns_dropped_by_default'])}); signed, audit entry "
             f"{manifest['audit_receipt']['seq']}", rows_out=manifest["rows"]["out"])

        try:
            export(ws, DEMO_ACTOR, DATASET, refused, folder / "exports" / "refused",
                   purpose="clinical-research", recipient="cicor", passphrase=DEMO_PASSPHRASE)
            raise AssertionError("the k-anonymity gate should have refused hk-refused-by-k")
        except RefusedError as refusal:
            step("refused", f"Refused as intended (exit 3): {refusal.message}")

        verified = verify_directory(out, home=ws.home, actor=DEMO_ACTOR)
        step("verify", f"Recipient check: {'; '.join(verified['checks'])}")

        chain = verify_audit_log(ws, DEMO_ACTOR)
        denied = read_log(ws, DEMO_ACTOR, AuditFilter(outcome="denied"))
        accesses = "access" if len(denied) == 1 else "accesses"
        step("audit", f"Auditor check: audit log of {chain['entries']} entries verifies; {len(denied)} denied "
             f"{accesses} on record", entries=chain["entries"], denied=len(denied))
        if keep is not None:
            step("keep", f"Kept in {folder}. To look around as the demo's custodian: export "
                 f"DATASHARE_HOME={ws.home} DATASHARE_ACTOR={DEMO_ACTOR} DATASHARE_PASSPHRASE='{DEMO_PASSPHRASE}'",
                 home=str(ws.home), actor=DEMO_ACTOR)
    return steps


def policies_dir() -> Path:
    """The example policies: beside the package in a checkout, or bundled inside it."""
    checkout = Path(__file__).resolve().parent.parent / "policies"
    if checkout.is_dir():
        return checkout
    return Path(str(resources.files("datashare") / "policies"))


def _below_k(assessed: dict[str, Any]) -> str:
    """What ``risk`` says of the records below k: their share, or that it withholds it (it would point at people)."""
    share = assessed["share_below_k"]
    if isinstance(share, float | int):
        return f"{share:.1%} of records below k={assessed['k']} would be suppressed"
    if isinstance(share, str):  # an upper bound, when the count itself is below k
        return f"under {float(share[1:]):.1%} of records below k={assessed['k']} would be suppressed"
    return f"the records below k={assessed['k']} are withheld: their count would point at fewer than k people"
