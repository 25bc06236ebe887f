"""``synthesize``: synthetic rows shaped like a dataset, governed like an export, signed like one.

The same gates as an export come first (approved policy, dataset, purpose,
recipient, role, expiry), then the policy's ``synthetic:`` section decides
the method and its budget. The model sees only the training side of the
policy's output rows; the report measures the result against the holdout it
never saw. The data file, ``report.json`` and ``report.html`` are signed
together in an export directory, so ``datashare verify`` and stock tools
check them.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from datashare import __version__
from datashare.audit.log import audited
from datashare.core.progress import SILENT, Progress
from datashare.core.sql import quote_ident, sql_string_literal
from datashare.errors import PolicyError, RefusedError, UsageError
from datashare.export.bundle import (
    MANIFEST_FORMAT,
    check_destination,
    content_sha256,
    list_files,
    publish_export,
    staging_dir_for,
)
from datashare.export.codebook import parquet_metadata, synthetic_codebook, write_codebook
from datashare.export.plan import data_errors, install_keys, is_custodian, prepare, release_checks
from datashare.governance.keys import unlock_secret
from datashare.policy.model import Synthetic
from datashare.signing.keystore import KeyLoading, load_public_keys, passphrase_at_hand, read_passphrase
from datashare.synth import mst, report
from datashare.synth.columns import TOKEN, as_differences, stage
from datashare.synth.model import Continuous, fit_copula
from datashare.synth.output import OUT_TABLE, Guards, build
from datashare.workspace import Workspace, utc_now

METHODS = ("copula", "mst")
MANIFEST_KIND = "synthetic"


@dataclass(frozen=True)
class SyntheticManifest:
    """What a synthetic release claims, each figure measured on the rows written; signed as ``manifest.json``.

    It sits in an export folder (the same ``files``, ``SHA256SUMS`` and signature), so ``datashare verify``
    and stock tools check it; ``kind`` tells it from a de-identified export.
    """

    dataset: dict[str, Any]  # name, version, source_sha256
    policy: dict[str, Any]  # name, version, sha256, approval
    synthetic: dict[str, Any]  # method, differentially_private, epsilon, delta, parameters, statement
    columns_out: list[str]
    columns_modelled: list[str]
    columns_as_fresh_tokens: list[str]
    columns_dropped_by_default: list[str]
    rows: dict[str, int]  # source_train, source_holdout, out, redrawn, left_out
    report: dict[str, Any]  # the report's headline figures
    purpose: str
    recipient: str
    actor: str
    time: str
    audit_receipt: dict[str, Any]
    signer_key_id: str
    files: list[dict[str, Any]]
    kind: str = MANIFEST_KIND
    format: int = MANIFEST_FORMAT
    datashare_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_bytes(self) -> bytes:
        """The exact bytes of ``manifest.json``, encoded as an export's are."""
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")

    def content_sha256(self) -> str:
        """What the audit entry records (``manifest_sha256``), as for an export."""
        return content_sha256(self.to_dict())
MIN_TRAINING_ROWS = 50
MIN_HOLDOUT_ROWS = 10
MAX_MODELLED_COLUMNS = 60  # pairs are counted in one grouping-sets query: 60 columns are 1,770 pairs
IDENTIFYING_TRANSFORMS = ("pseudonymize",)


def settings_for(synthetic: Synthetic | None, *, method: str | None, epsilon: float | None,
                 delta: float | None, policy_name: str) -> tuple[str, float | None, float | None]:
    """The method and (ε, δ) of this run: the policy's, or a stricter ε/δ asked for on the command line."""
    if synthetic is None:
        raise RefusedError(f"policy {policy_name} declares no synthetic: section, so it does not allow synthesis",
                           hint="Add `synthetic: {method: copula}` (or mst with epsilon and delta), and have the "
                                "new version approved.")
    if method is not None and method not in METHODS:
        raise UsageError(f"unknown method {method!r}: use copula or mst")
    if method is not None and method != synthetic.method:
        raise RefusedError(f"policy {policy_name} allows synthesis by {synthetic.method}, not {method}")
    if synthetic.method == "copula":
        if epsilon is not None or delta is not None:
            raise UsageError("--epsilon and --delta apply to mst only: copula is not differentially private")
        return "copula", None, None
    for name, asked, allowed in (("epsilon", epsilon, synthetic.epsilon), ("delta", delta, synthetic.delta)):
        if asked is not None and not 0 < asked <= allowed:
            raise RefusedError(f"--{name} {asked} is not allowed: policy {policy_name} allows at most {allowed}")
    return "mst", epsilon if epsilon is not None else synthetic.epsilon, delta if delta is not None else synthetic.delta


def synthesize(ws: Workspace, actor: str, dataset: str, policy_path: Path, out: Path, *, purpose: str,
               recipient: str, rows: int | None = None, method: str | None = None, epsilon: float | None = None,
               delta: float | None = None, seed: int | None = None, version: int | None = None,
               overwrite: bool = False, passphrase: str | None = None, progress: Progress = SILENT) -> dict[str, Any]:
    """Fit the policy's synthesiser to ``dataset`` and write a signed directory of synthetic rows at ``out``.

    ``progress`` hears the phases: staging, fitting, sampling, measuring, writing, signing.
    """
    out = Path(out)
    with audited(ws, "synthesize", actor, dataset=dataset, version=version, output=str(out.absolute())) as record:
        record.purpose, record.recipient = purpose, recipient
        if rows is not None and rows < 1:
            raise UsageError("--rows must be at least 1")
        loaded, resolved, approval = release_checks(ws, record, policy_path, dataset, version, purpose=purpose,
                                                    recipient=recipient)
        synthetic = loaded.policy.synthetic
        chosen, eps, dlt = settings_for(synthetic, method=method, epsilon=epsilon, delta=delta,
                                        policy_name=loaded.name)
        assert synthetic is not None  # settings_for refused otherwise
        check_destination(out, overwrite=overwrite, trusted_keys=load_public_keys(ws))
        at_hand = passphrase if passphrase is not None else passphrase_at_hand()
        if at_hand is None:
            at_hand = read_passphrase(confirm=False)
        key_loading = KeyLoading(ws, at_hand)
        secret = unlock_secret(ws, actor, at_hand)  # sealed under the same passphrase: a wrong one stops here
        run_seed = seed if seed is not None else secrets.randbelow(2**31)
        staging = staging_dir_for(out)
        try:
            with ws.connect(read_only=True) as con, data_errors(loaded, dataset):
                # no real row comes out of synthesis: the catalog's classes bind the policy's exports only
                compiled = prepare(loaded, resolved, direct_filter_allowed=is_custodian(ws, actor), enforce=False)
                record.target["version"] = resolved.version
                install_keys(con, secret, recipient, dataset, loaded.link_group)  # the export's keys for this recipient
                identifiers = ({c.name for c in resolved.columns if c.cls == "direct"}
                               | {p.column for p in compiled.plan if p.transform in IDENTIFYING_TRANSFORMS})
                progress.phase("Staging the policy's rows")
                staged = stage(con, compiled, identifiers, seed=run_seed, holdout=synthetic.holdout)
                if staged.train_rows < MIN_TRAINING_ROWS or staged.holdout_rows < MIN_HOLDOUT_ROWS:
                    raise RefusedError(f"too few rows to model and measure: {staged.train_rows} training and "
                                       f"{staged.holdout_rows} holdout rows (at least {MIN_TRAINING_ROWS} and "
                                       f"{MIN_HOLDOUT_ROWS} are needed)")
                if not staged.modelled or len(staged.modelled) > MAX_MODELLED_COLUMNS:
                    raise PolicyError(f"{loaded.path}: the policy leaves {len(staged.modelled)} columns to model "
                                      f"(identifiers are not modelled); synthesis models 1 to "
                                      f"{MAX_MODELLED_COLUMNS}")
                progress.phase(f"Fitting the model ({chosen})")
                fitted = _fit(con, chosen, staged, synthetic, eps, dlt, run_seed)
                n_out = rows or synthetic.rows or fitted["default_rows"]
                rng = _sampling_rng(run_seed)
                guards = Guards(list(loaded.policy.privacy.quasi_identifiers),
                                max(loaded.policy.privacy.k_anonymity, synthetic.min_count),
                                list(synthetic.constraints))
                progress.phase(f"Sampling {n_out:,} rows")
                built = build(con, staged.columns, lambda n: fitted["model"].sample(n, rng), n_out, guards,
                              fitted["digits"], run_seed)
                progress.phase("Measuring fidelity and privacy")
                figures = report.measure(con, staged, built, seed=run_seed)
                data_file = staging / f"{dataset}-synthetic.parquet"
                # Named as an export names them (generalised columns say what they hold), with a codebook.
                outputs = {p.column: p.output or p.column for p in compiled.plan}
                types = {outputs[name]: kind for name, kind in con.execute(
                    f"SELECT column_name, column_type FROM (DESCRIBE {OUT_TABLE})").fetchall() if name in outputs}
                codebook = synthetic_codebook(loaded, compiled, types, {c.name for c in staged.columns
                                                                        if c.kind == TOKEN},
                                              dataset=dataset, version=resolved.version, purpose=purpose,
                                              recipient=recipient, method=chosen)
                progress.phase(f"Writing {data_file.name}")
                selected = ", ".join(f"{quote_ident(c.name)} AS {quote_ident(outputs[c.name])}" for c in staged.columns)
                con.execute(f"COPY (SELECT {selected} FROM {OUT_TABLE} ORDER BY __ds_i) TO "
                            f"{sql_string_literal(str(data_file))} (FORMAT parquet, COMPRESSION zstd, "
                            f"{parquet_metadata(codebook)})")
            write_codebook(staging, codebook)
            document = report.document(method=chosen, figures=figures, privacy=fitted["privacy"],
                                       dataset=dataset, policy=loaded.name, rows=built.rows)
            (staging / report.REPORT_JSON).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n",
                                                      encoding="utf-8")
            (staging / report.REPORT_HTML).write_text(report.render_html(document), encoding="utf-8")
            progress.phase("Signing")
            key, key_info = key_loading.result()
            time, files = utc_now(), list_files(staging)
            manifest = SyntheticManifest(
                dataset={"name": dataset, "version": resolved.version, "source_sha256": resolved.source_sha256},
                policy={"name": loaded.name, "version": loaded.version, "sha256": loaded.sha256, "approval": approval},
                synthetic={
                    "method": chosen, "differentially_private": chosen == "mst", "epsilon": eps, "delta": dlt,
                    "parameters": {"min_count": synthetic.min_count, "max_levels": synthetic.max_levels,
                                   "bins": synthetic.bins, "holdout": synthetic.holdout, "seed": run_seed,
                                   "constraints": list(synthetic.constraints),
                                   "bounds": {k: [str(v) for v in pair] for k, pair in synthetic.bounds.items()}},
                    "statement": report.statement(chosen, eps, dlt),
                },
                columns_out=[outputs[c.name] for c in staged.columns],
                columns_modelled=[outputs[c.name] for c in staged.modelled],
                columns_as_fresh_tokens=[outputs[c.name] for c in staged.columns if c.kind == TOKEN],
                columns_dropped_by_default=compiled.dropped_by_default,
                rows={"source_train": staged.train_rows, "source_holdout": staged.holdout_rows, "out": built.rows,
                      "redrawn": built.redrawn, "left_out": built.left_out},
                report=report.summary(document),
                purpose=purpose, recipient=recipient, actor=actor, time=time,
                audit_receipt={}, signer_key_id=key_info.key_id, files=files,
            )
            # The log entry comes first: no release exists without its entry. It records the SHA-256 of the
            # manifest's content, which then names the entry, so the receipt vouches for this content only.
            receipt = record.ok(method=chosen, epsilon=eps, delta=dlt, rows_out=built.rows, signer=key_info.key_id,
                                manifest_sha256=manifest.content_sha256())
            manifest = replace(manifest, audit_receipt=receipt.to_dict())
            publish_export(staging, out, manifest, key, overwrite=overwrite)
            return manifest.to_dict()
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _sampling_rng(seed: int) -> Any:
    # deferred: numpy is heavy to import and only synthesis needs it
    import numpy as np

    return np.random.default_rng(seed)


def _fit(con: Any, method: str, staged: Any, synthetic: Synthetic, epsilon: float | None, delta: float | None,
         seed: int) -> dict[str, Any]:
    """The fitted model, its default row count, decimals per numeric column, and its privacy statement."""
    if method == "copula":
        columns = as_differences(staged.modelled, list(synthetic.constraints))
        model = fit_copula(con, columns, min_count=synthetic.min_count, max_levels=synthetic.max_levels, seed=seed)
        digits = {name: m.digits for name, m in model.marginals.items() if isinstance(m, Continuous)}
        return {"model": model, "default_rows": staged.train_rows + staged.holdout_rows, "digits": digits,
                "privacy": {"differentially_private": False}}
    assert epsilon is not None and delta is not None
    model = mst.fit_mst(con, staged, synthetic, epsilon=epsilon, delta=delta)
    return {"model": model, "default_rows": model.noisy_rows, "digits": model.digits,
            "privacy": {"differentially_private": True, **asdict(model.accounting)}}
