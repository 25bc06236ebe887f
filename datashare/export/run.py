"""The signed export itself: checks, the gate, the streamed ``COPY``, the manifest and the signature.

Python plans, DuckDB executes: the compiled query streams from the catalog
table into the output file; only counts come back to Python.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from datashare.audit.log import audited
from datashare.core.progress import SILENT, Progress, watching
from datashare.core.sql import sql_string_literal
from datashare.errors import RefusedError, UsageError
from datashare.export.bundle import ExportManifest, check_destination, list_files, publish_export, staging_dir_for
from datashare.export.codebook import build_codebook, parquet_metadata, write_codebook
from datashare.export.digest import content_digest
from datashare.export.leakscan import leak_guarded
from datashare.export.plan import data_errors, install_keys, is_custodian, prepare, release_checks
from datashare.export.privacy import classify_rows, execute_bounded, gate, manifest_privacy, output_text_bytes
from datashare.export.releases import append_release, check_linkage, class_summary, release_record
from datashare.export.spark import ENGINES, SparkExport, SparkFailed, SparkOptions
from datashare.governance.keys import unlock_secret
from datashare.signing.keystore import KeyLoading, load_public_keys, passphrase_at_hand, read_passphrase
from datashare.workspace import Workspace, utc_now

FORMATS = ("parquet", "csv")


@contextmanager
def _key_errors_first(key_loading: KeyLoading) -> Iterator[None]:
    """A wrong passphrase is the error reported, before a gate refusal (as when the key was unlocked first) and
    instead of the interrupted query it stopped."""
    # deferred: DuckDB is heavy to import, and start-up (`--help`, errors) must not wait for it
    import duckdb

    try:
        yield
    except (RefusedError, duckdb.InterruptException, SparkFailed):
        key_loading.result()
        raise


def export(ws: Workspace, actor: str, dataset: str, policy_path: Path, out: Path, *, purpose: str, recipient: str,
           fmt: str = "parquet", version: int | None = None, overwrite: bool = False,
           passphrase: str | None = None, accept_linkage: str | None = None, engine: str = "duckdb",
           spark: SparkOptions | None = None, progress: Progress = SILENT) -> dict[str, Any]:
    """De-identify ``dataset`` under the policy into a signed export directory at ``out``.

    ``accept_linkage`` (custodians only): the reason to export although the
    release ledger finds this export joinable with an earlier one below k.
    ``engine``: ``duckdb``, or ``spark`` (see :mod:`datashare.export.spark`; ``spark`` says where it runs):
    the same policy gives the same rows, which the manifest's ``content`` digest lets anyone compare.
    ``progress`` hears the phases: checking, compiling, the gate, writing, signing.
    """

    out = Path(out)
    with audited(ws, "export", actor, dataset=dataset, version=version, output=str(out.absolute())) as record:
        record.purpose, record.recipient = purpose, recipient
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}: use parquet or csv")
        if engine not in ENGINES:
            raise UsageError(f"unknown engine {engine!r}: use duckdb or spark")
        # The key's KDF is slow on purpose. With the passphrase at hand (argument or environment) it starts now,
        # on a thread of its own, and runs while the policy is checked and the data written; a passphrase that
        # must be typed is asked for once the checks have passed. A wrong one interrupts the export's query.
        progress.phase("Checking the policy")
        at_hand = passphrase if passphrase is not None else passphrase_at_hand()
        key_loading = KeyLoading(ws, at_hand) if at_hand is not None else None
        loaded, resolved, approval = release_checks(ws, record, policy_path, dataset, version, purpose=purpose,
                                                    recipient=recipient)
        check_destination(out, overwrite=overwrite, trusted_keys=load_public_keys(ws))
        if key_loading is None:
            progress.pause()
            at_hand = read_passphrase(confirm=False)
            key_loading = KeyLoading(ws, at_hand)
        secret = unlock_secret(ws, actor, at_hand)  # sealed under the same passphrase: a wrong one stops here
        staging = staging_dir_for(out)
        try:
            with ws.connect(read_only=True) as con, data_errors(loaded, dataset), ExitStack() as stack:
                progress.phase("Compiling the policy")
                custodian = is_custodian(ws, actor)
                compiled = prepare(loaded, resolved, direct_filter_allowed=custodian)
                record.target["version"] = resolved.version
                install_keys(con, secret, recipient, dataset, loaded.link_group)
                progress.phase("Measuring the classes (privacy gate)")
                if engine == "spark":
                    on_spark = SparkExport(stack, con, spark or SparkOptions(), loaded, resolved, out,
                                           secret=secret, recipient=recipient, custodian=custodian)
                    stats = on_spark.classify(con)
                else:
                    stats = classify_rows(con, compiled)
                data_file = staging / f"{dataset}.{fmt}"
                with _key_errors_first(key_loading):
                    gate(loaded, compiled, stats)
                    # The release ledger: refuse a join with an earlier release that falls below k.
                    linked = check_linkage(con, ws, actor, loaded, compiled, table=resolved.table,
                                           types=resolved.types,
                                           recipient=recipient, dataset=dataset, accept_linkage=accept_linkage)
                    released_classes = class_summary(con)
                    # The codebook's types are those of the query COPY writes (planned, not run).
                    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {compiled.export_sql})"
                                             ).fetchall())
                    codebook = build_codebook(loaded, compiled, types, stats, dataset=dataset,
                                              version=resolved.version, purpose=purpose, recipient=recipient)
                    progress.phase(f"Writing {data_file.name}" if engine == "duckdb" else "Writing on Spark")
                    if engine == "spark":  # a leak refuses before anything is signed, as below
                        key_loading.on_failure(on_spark.cancel)
                        data_files = on_spark.write(staging, dataset, fmt, record.details)
                    else:
                        options = (f"FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1, "
                                   f"{parquet_metadata(codebook)}" if fmt == "parquet" else "FORMAT csv, HEADER true")
                        key_loading.on_failure(con.interrupt)
                        with watching(con, progress.on_percent), leak_guarded(con, compiled, record.details):
                            # a leak refuses before anything is signed
                            execute_bounded(con, f"COPY ({compiled.export_sql}) TO "
                                                 f"{sql_string_literal(str(data_file))} ({options})",
                                            len(compiled.output_columns),
                                            output_text_bytes(con, compiled, resolved.table,
                                                              resolved.types))
                        data_files = [data_file]
                # What was written, measured on the files: the rows and a digest that no layout changes.
                content = content_digest(con, data_files, fmt, compiled.output_names)
            write_codebook(staging, codebook)
            progress.phase("Signing")
            key, key_info = key_loading.result()
            time, files = utc_now(), list_files(staging)
            privacy = {"quasi_identifiers": compiled.quasi_identifiers, "k_required": compiled.k,
                       "k_measured": stats["k"], "l_required": compiled.l if compiled.sensitive else None,
                       "l_measured": stats["l"], "max_suppression": loaded.policy.privacy.max_suppression}
            # The privacy gate's measures in people, waivers, key scope, noise, order and linkage.
            privacy.update(manifest_privacy(loaded, compiled, stats, recipient=recipient, dataset=dataset),
                           linked_releases=linked, accepted_linkage=accept_linkage)
            if accept_linkage is not None:
                record.details["accepted_linkage"] = accept_linkage
            # The release ledger records what this export releases, before the log entry that vouches for the
            # manifest naming it: a ledger entry whose export then failed only makes later checks stricter.
            privacy["release"] = append_release(ws, release_record(
                loaded, compiled, stats, released_classes, recipient=recipient, dataset=dataset,
                version=resolved.version, actor=actor, time=time, accepted_linkage=accept_linkage))["id"]
            manifest = ExportManifest(
                dataset={"name": dataset, "version": resolved.version, "source_sha256": resolved.source_sha256},
                policy={"name": loaded.name, "version": loaded.version, "sha256": loaded.sha256, "approval": approval},
                transforms={p.column: {"transform": p.transform, **p.to_dict()["params"],
                                       **({"output": p.output} if p.output is not None else {})}
                            for p in compiled.plan},
                columns_out=compiled.output_names,
                columns_dropped_by_default=compiled.dropped_by_default,
                rows={"in": resolved.rows, "selected": stats["rows_selected"], "out": stats["rows_out"],
                      "suppressed": stats["suppressed"]},
                privacy=privacy,
                purpose=purpose, recipient=recipient, actor=actor, time=time,
                audit_receipt={}, signer_key_id=key_info.key_id, files=files, engine=engine, content=content,
            )
            # The log entry comes first: no export exists without its entry. It records the SHA-256 of the
            # manifest's content, which then names the entry, so the receipt vouches for this content only.
            receipt = record.ok(rows_out=stats["rows_out"], suppressed=stats["suppressed"], k=stats["k"],
                                signer=key_info.key_id, manifest_sha256=manifest.content_sha256(),
                                release=privacy["release"])
            manifest = dataclasses.replace(manifest, audit_receipt=receipt.to_dict())
            publish_export(staging, out, manifest, key, overwrite=overwrite)
            return manifest.to_dict()
        finally:
            shutil.rmtree(staging, ignore_errors=True)
