"""The demo: the main job end to end on the bundled sample, in a throw-away workspace.

It goes through the library exactly as a custodian, a recipient and an
auditor would through the CLI, and reports each step.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

DEMO_ACTOR = "demo-custodian"
DEMO_PASSPHRASE = "demo passphrase, not for real data"
DATASET = "patients"


def sample_csv() -> Path:
    """The bundled sample of 1,000 fake patient records."""
    return Path(str(resources.files("datashare") / "data" / "sample_patients.csv"))


@contextmanager
def _demo_folder(keep: Path | None):
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    folder = Path(tempfile.mkdtemp(prefix="datashare-demo-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_demo(keep: Path | None = None, report: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run every step; return what each did. ``report`` receives one line per step."""
    from datashare import catalog
    from datashare.workspace import init_workspace

    steps: list[dict[str, Any]] = []

    def step(name: str, text: str, **data: Any) -> None:
        steps.append({"step": name, "summary": text, **data})
        if report is not None:
            report(f"[{len(steps)}] {text}")

    previous = os.environ.get("DATASHARE_PASSPHRASE")
    os.environ["DATASHARE_PASSPHRASE"] = DEMO_PASSPHRASE
    try:
        with _demo_folder(keep) as folder:
            ws, _ = init_workspace(folder / "workspace", DEMO_ACTOR)
            step("init", f"Created a workspace in {ws.home} (custodian: {DEMO_ACTOR})")
            result = catalog.register(ws, sample_csv(), DATASET, actor=DEMO_ACTOR,
                                      description="Fake Hong Kong patient records (sample)")
            dataset = result.dataset
            classes: dict[str, list[str]] = {}
            for column in dataset.columns:
                classes.setdefault(column.cls, []).append(column.name)
            step("register", f"Registered {DATASET} v{dataset.version}: {dataset.rows:,} rows, "
                 f"{len(dataset.columns)} columns; direct identifiers found: {', '.join(classes.get('direct', []))}",
                 rows=dataset.rows, classes=classes)
    finally:
        if previous is None:
            os.environ.pop("DATASHARE_PASSPHRASE", None)
        else:
            os.environ["DATASHARE_PASSPHRASE"] = previous
    return steps
