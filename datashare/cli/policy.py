"""Policies: check, explain, approve, list, revoke; and the commands that apply them: risk, export, verify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from datashare import export, governance
from datashare.cli.app import app
from datashare.cli.common import (
    ActorOption,
    DatasetArgument,
    HomeOption,
    PolicyFileOption,
    PopulationFractionOption,
    PurposeOption,
    RecipientOption,
    VersionOption,
    any_case,
    workspace_and_actor,
)
from datashare.cli.output import Line, Message, Result, Table, or_dash, output_options, visible
from datashare.cli.progress import progress_shown
from datashare.errors import DatashareError, PolicyError, RefusedError, UsageError
from datashare.export.preview import DEFAULT_ROWS as PREVIEW_ROWS
from datashare.export.preview import MAX_ROWS as PREVIEW_MAX_ROWS
from datashare.policy.transforms import TRANSFORMS

policy_app = typer.Typer(help="De-identification policies: check, explain, approve, list, revoke.",
                         no_args_is_help=True)
app.add_typer(policy_app, name="policy")

PolicyArg = Annotated[Path, typer.Argument(metavar="FILE", help="Policy file (YAML).")]


def _check_failure(exc: DatashareError, arguments: dict[str, Any]) -> dict[str, Any] | None:
    """``policy check --json``'s own answer for an invalid policy: the problems as data (exit code stays 1).

    ``problems`` lists them as text (``key.path: message``); ``errors`` as ``{file, path, line, column, message,
    hint}`` where the file was read.
    """
    if not isinstance(exc, PolicyError):
        return None
    return {"valid": False, "policy_file": str(arguments["policy"]), "problems": exc.problems,
            "errors": exc.located}


@policy_app.command("check")
@output_options(json_failure=_check_failure)
def policy_check(
    policy: PolicyArg,
    dataset: Annotated[str | None, typer.Option("--dataset", metavar="DATASET",
        help="Also check it fits this dataset.")] = None,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Validate a policy file: every problem at once, with its key path and a suggestion.

    Examples:

    \b
      datashare policy check policies/hk-clinical-research.yaml --dataset patients
      datashare policy check policies/hk-open-data.yaml --json
    """

    ws, me = workspace_and_actor(home, actor)
    summary = export.check(ws, me, policy, dataset)
    lines = [Line(f"OK: {policy} is a valid policy ({summary['policy']} v{summary['version']}, sha256 "
                  f"{summary['sha256'][:16]}…)")]
    if dataset is not None:
        dropped = ", ".join(summary["dropped_by_default"]) or "none"
        lines.append(Line(f"It fits {dataset} v{summary['dataset_version']}; columns it does not name are dropped: "
                          f"{dropped}"))
        if not summary["applies"]:
            lines.append(Line(f"Note: its applies_to does not include {dataset}: an export would be refused."))
    elif summary["checked_against"]:
        lines.append(Line(f"It fits {', '.join(summary['checked_against'])} (the registered datasets it applies to)."))
    if summary["expired"]:
        lines.append(Line(f"Note: it expired on {summary['expires']}: it cannot be approved, and exports under it "
                          "are refused."))
    return Result(summary, lines)


@policy_app.command("explain")
@output_options(csv=True)
def policy_explain(
    policy: PolicyArg,
    dataset: Annotated[str, typer.Option("--dataset", metavar="DATASET",
        help="Dataset to explain the policy against.")],
    version: VersionOption = None,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Column by column: what the policy does, and the SQL that does it (no secrets in it).

    Examples:

    \b
      datashare policy explain policies/hk-clinical-research.yaml --dataset patients
      datashare policy explain policies/hk-open-data.yaml --dataset patients --csv
    """

    ws, me = workspace_and_actor(home, actor)
    plan = export.explain(ws, me, policy, dataset, version)
    rows = [[c["column"], c["transform"], TRANSFORMS[c["transform"]].summary,
             ", ".join(f"{k}={v}" for k, v in c["params"].items()), c["sql"], c["output"]] for c in plan["columns"]]
    rows += [[name, "(not named)", "dropped: the policy does not name it", "", None, None]
             for name in plan["dropped_by_default"]]
    privacy = plan["privacy"]
    cut = any(len(_one_line(row[4] or "")) > SQL_SHOWN for row in rows)
    shown = [
        Table(["column", "transform", "what happens", "options", "SQL"],
              [[row[0] if row[5] in (None, row[0]) else f"{row[0]} → {row[5]}", *row[1:4], _short_sql(row[4])]
               for row in rows],
              f"{plan['policy']} v{plan['version']} on {dataset} v{plan['dataset_version']}"),
        Line(_privacy_sentence(plan["where"], privacy)),
        *(Line(f"Note: {note}") for note in plan["notes"]),
        *([Line(f"SQL longer than {SQL_SHOWN} characters is cut short here; --json and --csv give it whole.")]
          if cut else []),
    ]
    return Result(plan, shown, csv=Table(["column", "transform", "what_happens", "options", "sql", "output"], rows))


SQL_SHOWN = 80  # characters of a column's SQL in explain's table (a note's redaction runs to 10,000 and more)


def _one_line(sql: str) -> str:
    return " ".join(sql.split())


def _short_sql(sql: str | None) -> str:
    """A column's SQL on one line, cut to :data:`SQL_SHOWN` characters for the table a person reads."""
    if not sql:
        return "—"
    text = _one_line(sql)
    return text if len(text) <= SQL_SHOWN else text[:SQL_SHOWN - 1] + "…"


def _privacy_sentence(where: str | None, privacy: dict) -> str:
    """What ``explain`` says of the rows and the gate, naming only the checks the policy asks for."""
    parts = [f"Rows: {where or 'all'}"]
    if privacy["quasi_identifiers"]:
        parts.append(f"k-anonymity k={or_dash(privacy['k'])} {privacy['k_unit']} over "
                     f"{', '.join(privacy['quasi_identifiers'])}")
    else:
        parts.append("no quasi-identifiers (no k-anonymity)")
    if privacy["sensitive"]:
        parts.append(f"l-diversity l={or_dash(privacy['l'])} on {privacy['sensitive']}")
    if privacy["max_suppression"] is not None:
        parts.append(f"at most {privacy['max_suppression']:.0%} suppressed")
    subject = f" People are counted by {privacy['subject']}." if privacy["subject"] else ""
    return "; ".join(parts) + "." + subject


@policy_app.command("approve")
@output_options()
def policy_approve(policy: PolicyArg, home: HomeOption = None, actor: ActorOption = None) -> Result:
    """Approve a policy file for export (custodians only); pins its SHA-256, signed and logged.

    Examples:

    \b
      datashare policy approve policies/hk-clinical-research.yaml
      datashare policy approve policies/hk-open-data.yaml --json
    """

    ws, me = workspace_and_actor(home, actor)
    approval = governance.approve(ws, me, policy)
    return Result(approval, [Message(f"Approved {approval['policy']} v{approval['version']} (sha256 "
                                     f"{approval['sha256'][:16]}…) by {approval['approved_by']}")])


@policy_app.command("list")
@output_options(csv=True)
def policy_list(home: HomeOption = None, actor: ActorOption = None) -> Result:
    """List approved policies: who approved them, when, their hash and expiry, and revocations.

    Examples:

    \b
      datashare policy list
      datashare policy list --csv
    """

    ws, me = workspace_and_actor(home, actor)
    approvals = governance.list_approvals(ws, me)
    shown = [Table(["policy", "version", "approved by", "approved at (UTC)", "sha256", "expires", "status"],
                   [[a["policy"], a["version"], a["approved_by"], a["approved_at"][:19], a["sha256"][:16] + "…",
                     a["expires"] or "", f"revoked {a['revoked']['at'][:19]}" if a.get("revoked") else a["status"]]
                    for a in approvals], "Approved policies")] if approvals else \
        [Message("No policy approved yet: datashare policy approve FILE")]
    csv = Table(["policy", "version", "approved_by", "approved_at", "sha256", "expires", "status", "revoked_at"],
                [[a["policy"], a["version"], a["approved_by"], a["approved_at"], a["sha256"], a["expires"],
                  a["status"], (a.get("revoked") or {}).get("at")] for a in approvals])
    return Result(approvals, shown, csv=csv)


@policy_app.command("revoke")
@output_options()
def policy_revoke(
    name: Annotated[str, typer.Argument(metavar="POLICY", help="Policy name (the file's `policy:` key).")],
    version: Annotated[int | None, typer.Option("--version", metavar="N", min=1, help="Only this version.")] = None,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Revoke a policy's approval (custodians only): exports under it are refused from now on.

    Examples:

    \b
      datashare policy revoke hk-clinical-research --version 1
      datashare policy revoke hk-open-data
    """

    ws, me = workspace_and_actor(home, actor)
    revoked = governance.revoke_policy(ws, me, name, version)
    return Result(revoked, [Message(f"Revoked {name} v{', v'.join(sorted({str(a['version']) for a in revoked}))}")])


_CLASS_SIZES_SHOWN = 20  # the smallest classes are the risky ones; --json and --csv list all


@app.command()
@output_options(csv=True)
def risk(
    dataset: DatasetArgument,
    policy: PolicyFileOption,
    version: VersionOption = None,
    population_fraction: PopulationFractionOption = 1.0,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Re-identification risk of a dataset under a policy: classes, uniques, prosecutor, journalist and marketer
    risk, suppression, and which quasi-identifier drives the classes below k (--csv: the class sizes). Exits 3
    when the privacy gate would refuse an export.

    Examples:

    \b
      datashare risk patients --policy policies/hk-clinical-research.yaml
      datashare risk patients --policy policies/hk-open-data.yaml --population-fraction 0.1 --csv > classes.csv
    """

    ws, me = workspace_and_actor(home, actor)
    report = export.risk(ws, me, policy, dataset, version, population_fraction=population_fraction)
    measures = Table(["measure", "value"], [
        ["records (after rows.where)", _count(report["records"])],
        [f"people ({report['subject'] or 'no subject: each record counts as one'})", _count(report["people"])],
        ["quasi-identifiers", ", ".join(report["quasi_identifiers"])],
        ["equivalence classes", _count(report["equivalence_classes"])],
        ["unique records", f"{_count(report['unique_records'])} ({_measure(report['share_unique'], '.1%')})"],
        [f"records in classes below k={report['k']}",
         f"{_count(report['records_below_k'])} ({_measure(report['share_below_k'], '.1%')})"],
        ["sample uniques (classes of one person)", _count(report["sample_uniques"])],
        ["max prosecutor risk", _measure(report["max_prosecutor_risk"], ".3f")],
        ["average prosecutor risk", _measure(report["avg_prosecutor_risk"], ".3f")],
        [f"max journalist risk (population fraction {report['population_fraction']:g})",
         _measure(report["max_journalist_risk"], ".3f")],
        ["marketer risk", _measure(report["marketer_risk"], ".3f")],
        ["rows suppressed", f"{_count(report['rows_suppressed'])} ({_measure(report['share_suppressed'], '.1%')})"],
        ["min l (distinct sensitive values per class)", report["min_l"] if report["min_l"] is not None else "—"],
        ["k / l after suppression", f"{_measure(report['k_after_suppression'], '')} / "
                                    f"{_measure(report['l_after_suppression'], '')}"],
        ["privacy gate", report["gate"]],
    ], f"Risk of {dataset} v{report['dataset_version']} under {report['policy']}")
    sizes = report["class_sizes"]
    size_columns = ["class_size", "classes", "records", "people"]
    shown = [measures, Table(
        [f"class size ({report['k_unit']})", "classes", "records", "people"],
        [[b["class_size"], _count(b["classes"]), _count(b["records"]), _count(b["people"])]
         for b in sizes[:_CLASS_SIZES_SHOWN]],
        "Class sizes" + (f" (the {_CLASS_SIZES_SHOWN} smallest of {len(sizes)}; --json lists all)"
                         if len(sizes) > _CLASS_SIZES_SHOWN else ""))]
    if report["l_values"]:
        shown.append(Table(["l", "classes", "records"],
                           [[b["l"], _count(b["classes"]), _count(b["records"])] for b in report["l_values"]],
                           f"l per class (distinct values of {report['sensitive']})"))
    if report["drivers"]:
        shown.append(Table(
            ["quasi-identifier", "if", "classes below k", "records below k", "people below k"],
            [[d["quasi_identifier"], "removed" if d["to"] is None else f"coarsened {d['to']}",
              _count(d["classes_below_k"]), _count(d["records_below_k"]), _count(d["people_below_k"])]
             for d in report["drivers"]],
            f"What drives the classes below k={report['k']}: each quasi-identifier removed, or one level coarser"))
    refusal = None if report["gate"] == "pass" else RefusedError(
        f"refused by the privacy gate: an export of {dataset} under {report['policy']} would be refused (the rows "
        f"in classes below k={report['k']}" + (f" or l={report['l']}" if report["sensitive"] else "")
        + " exceed the policy's max_suppression, or too few records pass rows.where)",
        hint="Generalise or remove the quasi-identifiers that drive the classes below k (the last table).")
    return Result(report, shown, csv=Table(size_columns, [[b[c] for c in size_columns] for b in sizes]),
                  refusal=refusal)


def _count(value: int | str) -> str:
    """A count, or one ``risk`` withholds (``<5`` in JSON and CSV) shown as ``< 5``, or ``withheld``."""
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value[0]} {value[1:]}" if value.startswith("<") else value


def _measure(value: float | str | None, spec: str) -> str:
    """A share or risk, a bound in place of one withheld (``<0.0066``, ``>0.2``), or — when there is none."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return f"{value[0]} {float(value[1:]):{spec}}"
    return f"{value:{spec}}"


def _export_failure(exc: DatashareError, arguments: dict[str, Any]) -> dict[str, Any] | None:
    """``export --json``'s own answer for an export the leak scan refused: the cells per identifier type."""
    return {"leaks": exc.counts} if isinstance(exc, export.LeakFoundError) else None


@app.command("export")
@output_options(json_failure=_export_failure)
def export_command(
    dataset: DatasetArgument,
    policy: Annotated[Path, typer.Option("--policy", metavar="FILE", help="An approved policy file (YAML).")],
    purpose: PurposeOption,
    recipient: RecipientOption,
    fmt: Annotated[str, typer.Option("--format", metavar="parquet|csv", callback=any_case,
                                     help="parquet (default) or csv.")] = "parquet",
    version: VersionOption = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing export folder.")] = False,
    accept_linkage: Annotated[str | None, typer.Option(
        "--accept-linkage", metavar="REASON",
        help="Custodians: export although it joins an earlier release below k (the reason).")]
    = None,
    out: Annotated[Path | None, typer.Option("--out", metavar="FOLDER",
                                             help="Export folder to create (required unless --preview).")] = None,
    preview: Annotated[bool, typer.Option(
        "--preview", help="Show a few rows as the recipient would get them (before and after, for custodians); "
                          "write and sign nothing.")] = False,
    rows: Annotated[int, typer.Option("--rows", metavar="N", min=1, max=PREVIEW_MAX_ROWS,
                                      help="With --preview: how many rows.")]
    = PREVIEW_ROWS,
    engine: Annotated[str, typer.Option("--engine", metavar="ENGINE",
                                        help="What runs the policy: duckdb (default) or spark.")] = "duckdb",
    spark_master: Annotated[str | None, typer.Option(
        "--spark-master", metavar="URL", help="With --engine spark: the master URL (spark://host:7077, yarn…); default "
                               "local[2], or spark-submit's.")] = None,
    spark_conf: Annotated[list[str] | None, typer.Option(
        "--spark-conf", metavar="KEY=VALUE",
        help="With --engine spark: a Spark setting spark.<name>=<value> (repeatable).")] = None,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """De-identify a dataset under an approved policy into a signed export folder (or --preview a few rows), on
    DuckDB or on Spark.

    Examples:

    \b
      datashare export patients --policy policies/hk-clinical-research.yaml --out exports/run1 \\
          --purpose clinical-research --recipient cicor
      datashare export patients --policy policies/hk-open-data.yaml --out exports/open1 \\
          --purpose open-data --recipient public --format csv
    """

    if preview:
        if out is not None:
            raise UsageError("--preview writes nothing: leave out --out")
        ws, me = workspace_and_actor(home, actor)
        return _preview_result(export.preview(ws, me, dataset, policy, purpose=purpose, recipient=recipient,
                                              rows=rows, version=version))
    if out is None:
        raise UsageError("export needs --out (the folder to create), or --preview")
    ws, me = workspace_and_actor(home, actor)
    if engine != "spark" and (spark_master is not None or spark_conf):
        raise UsageError("--spark-master and --spark-conf go with --engine spark")
    spark = export.SparkOptions(spark_master, export.parse_conf(spark_conf or []))
    with progress_shown() as progress:
        manifest = export.export(ws, me, dataset, policy, out, purpose=purpose, recipient=recipient, fmt=fmt,
                                 version=version, overwrite=overwrite, accept_linkage=accept_linkage,
                                 engine=engine, spark=spark, progress=progress)
    rows, privacy = manifest["rows"], manifest["privacy"]
    shown = [Message(f"Exported {rows['out']:,} rows of {dataset} v{manifest['dataset']['version']} to {out} "
                     f"({rows['suppressed']:,} suppressed; k={or_dash(privacy['k_measured'])} {privacy['k_unit']}); "
                     f"signed by {manifest['signer_key_id']}; audit entry {manifest['audit_receipt']['seq']}")]
    if manifest["columns_dropped_by_default"]:
        shown.append(Message("Dropped because the policy does not name them: "
                             f"{', '.join(manifest['columns_dropped_by_default'])}"))
    shown.append(Message(f"What each column holds, and the terms of use: {out / 'codebook.md'}"))
    return Result(manifest, shown)


def _preview_result(shown: dict[str, Any]) -> Result:
    """The preview for a person (a table per row) and for scripts (every value as text, control characters
    escaped: a value of the data is shown, never obeyed)."""
    def text(value: Any) -> str | None:
        return None if value is None else visible(str(value))

    rows = [[{**column, "before": text(column["before"]), "after": text(column["after"])} for column in row]
            for row in shown["rows"]]
    data = {**shown, "rows": rows}

    def name(column: dict[str, Any]) -> str:
        if column["output"] is None:
            return f"{column['column']} (not exported)"
        return column["column"] if column["output"] == column["column"] else f"{column['column']} → {column['output']}"

    header = ["column", "before", "after"] if shown["before_shown"] else ["column", "value"]
    parts: list[Any] = [Table(header, [[name(c), *([c["before"]] if shown["before_shown"] else []), c["after"]]
                                       for c in row],
                              f"Row {i} of {len(rows)}, as {shown['recipient']} would get it")
                        for i, row in enumerate(rows, start=1)]
    parts.append(Message(f"Preview of {shown['dataset']} v{shown['dataset_version']} under {shown['policy']}: "
                         f"{len(rows)} row{'' if len(rows) == 1 else 's'}; nothing was written or signed."
                         + ("" if shown["before_shown"] else " The source values are shown to custodians only.")))
    return Result(data, parts)


@app.command()
@output_options()
def verify(
    directory: Annotated[Path, typer.Argument(metavar="FOLDER", help="Export folder to verify.")],
    pubkey: Annotated[Path | None, typer.Option("--pubkey", metavar="FILE",
        help="Trusted public key file (.pub).")] = None,
    allowed_signers: Annotated[Path | None, typer.Option(
        "--allowed-signers", metavar="FILE", help="Trusted keys in ssh-keygen allowed_signers format.")] = None,
    principal: Annotated[str | None, typer.Option(
        "--principal", metavar="PRINCIPAL",
        help="With --allowed-signers: trust only the lines naming this principal (ssh-keygen -I); "
             "without it, every key in the file.")] = None,
    same_content: Annotated[Path | None, typer.Option(
        "--same-content", metavar="OTHER_DIR",
        help="Another export to verify too, and to compare: the same rows, whatever their files and order (a DuckDB "
             "and a Spark export of one policy).")] = None,
    recipient: Annotated[str | None, typer.Option(
        "--recipient", metavar="RECIPIENT",
        help="Fail (exit 4) unless the export was made for this recipient.")] = None,
    home: HomeOption = None,
    actor: ActorOption = None,
) -> Result:
    """Verify an export: signature, every file's size and SHA-256, nothing missing or extra, audit receipt.

    Without --pubkey/--allowed-signers the workspace's own keys are trusted. Exit 4 names the first failure.
    --same-content OTHER_DIR also verifies OTHER_DIR and checks that both hold the same rows.

    Examples:

    \b
      datashare verify exports/run1 --pubkey custodian.pub
      datashare verify exports/run1 --allowed-signers allowed_signers --principal custodian@hospital
      datashare verify exports/run1 --pubkey custodian.pub --recipient cicor
    """

    with progress_shown() as progress:
        result = export.verify_directory(directory, pubkey=pubkey, allowed_signers=allowed_signers, home=home,
                                         actor=actor, principal=principal, same_content=same_content,
                                         recipient=recipient, progress=progress)
    return Result(result, [*(Line(f"ok: {check}") for check in result["checks"]), *_made_for(result),
                           Line(f"VERIFIED: {directory} (signed by {result['signer']})")])


def _made_for(result: dict[str, Any]) -> list[Line]:
    """Whom, for what and when the export was made, from what its manifest says (an older one may say less)."""
    def named(item: Any) -> str | None:
        if not isinstance(item, dict) or item.get("name") is None:
            return None
        return f"{item['name']}" + (f" v{item['version']}" if item.get("version") is not None else "")

    parts = [f"for {result['recipient']}" if result.get("recipient") else None,
             f"({result['purpose']})" if result.get("purpose") else None,
             f"at {str(result['time'])[:19]} UTC" if result.get("time") else None]
    what = [f"of {named(result.get('dataset'))}" if named(result.get("dataset")) else None,
            f"under {named(result.get('policy'))}" if named(result.get("policy")) else None]
    words = [p for p in parts + what if p]
    return [Line("made " + " ".join(words))] if words else []
