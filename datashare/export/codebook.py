"""The codebook every export carries: what each column is, what was done to it, and what the recipient may not do.

``codebook.json`` (for scripts) and ``codebook.md`` (for people) are written
into the export folder before it is listed, so both are in the manifest and in
the signed ``SHA256SUMS``; a Parquet file also carries each column's
description in its key-value metadata. The codebook is built from the policy
and the types DuckDB gives the export's query, never from a value of the data:
a value domain is said in words and examples made from the parameters
("age band, 20 years, such as 60-79").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datashare.core.sql import quote_ident, sql_string_literal
from datashare.export.bundle import write_export_file
from datashare.identifiers import DISTRICT_REGION
from datashare.policy.compiler import ColumnPlan, CompiledPolicy
from datashare.policy.model import LoadedPolicy

CODEBOOK_JSON = "codebook.json"
CODEBOOK_MD = "codebook.md"
CODEBOOK_FORMAT = 1
PARQUET_KEY = "datashare.codebook"  # the Parquet file's key-value metadata: the columns' codebook entries (JSON)
PARQUET_COLUMN_KEY = "datashare.column."  # + the column's name: its description and values, in words


def _describe(plan: ColumnPlan) -> tuple[str, str]:
    """What was done to a column, and the values it holds now, in words made from the parameters alone."""
    t, p = plan.transform, plan.params
    if t == "generalize":
        return _generalised(p)
    if t == "pseudonymize":
        prefix = f"'{p['prefix']}' then " if p.get("prefix") else ""
        return ("replaced by a keyed pseudonym (HMAC-SHA256): the same source value gets the same pseudonym in "
                "every export of this dataset to this recipient (or link group), and another for anyone else",
                f"pseudonym: {prefix}{p['length']} hexadecimal characters")
    if t == "date_shift":
        return (f"each {p['subject']}'s dates moved by one offset of at most {p['max_days']} days either way "
                "(keyed): the intervals between one person's dates are kept, the calendar dates are not",
                "date, shifted")
    if t == "round":
        return f"rounded to {p['digits']} decimal digits", "number"
    if t == "top_code":
        return f"values above {p['at']:g} become {p['at']:g}", f"number, at most {p['at']:g}"
    if t == "bottom_code":
        return f"values below {p['at']:g} become {p['at']:g}", f"number, at least {p['at']:g}"
    if t == "noise":
        digits = f", then rounded to {p['digits']} digits" if p.get("digits") is not None else ""
        return (f"Laplace noise of scale {p['scale']:g} added (fixed per row and recipient){digits}",
                "number, with noise")
    if t == "suppress_rare":
        return (f"values seen fewer than {p['min_count']} times replaced by '{p['value']}'",
                f"category, or '{p['value']}'")
    if t == "redact":
        return f"replaced by '{p['value']}'", f"the constant '{p['value']}', or empty"
    if t == "mask":
        return (f"masked with '{p['char']}', keeping the first {p['keep_first']} and last {p['keep_last']} "
                "characters", "masked text")
    if t == "redact_identifiers":
        return ("free text with names, HKIDs, phone numbers, e-mail addresses, addresses, dates and other ids "
                "replaced by [NAME], [HKID], [PHONE], [EMAIL], [ADDRESS], [DATE], [ID]", "free text")
    return "as in the source", "as in the source"


def _generalised(p: dict[str, Any]) -> tuple[str, str]:
    to = p["to"]
    if to == "age_band":
        width = int(p["width"])
        top = f"; {p['top']} and over as '{p['top']}+'" if p.get("top") is not None else ""
        low = 60 // width * width
        return (f"a date of birth turned into the age in whole years on {p['reference']}, in bands of {width} "
                f"years{top}", f"age band, {width} years, such as {low}-{low + width - 1}"
                + (f" or {p['top']}+" if p.get("top") is not None else ""))
    if to == "bins":
        return (f"a number put in bins of {p['width']:g}",
                f"bin 'low-high', such as 0.0-{float(p['width']):g}")
    if to == "year":
        return "a date reduced to its year", "year (a whole number), such as 2024"
    if to == "quarter":
        return "a date reduced to its quarter", "year and quarter, such as 2024-Q1"
    if to == "month":
        return "a date reduced to its month", "year and month, such as 2024-03"
    if to == "week":
        return "a date reduced to its ISO 8601 week (Monday to Sunday)", "ISO year and week, such as 2024-W33"
    if to == "region":
        regions = ", ".join(sorted(set(DISTRICT_REGION.values())))
        return "a Hong Kong district reduced to its region", f"one of {regions}"
    return (f"a code cut to its first {p['length']} characters",
            f"code prefix of at most {p['length']} characters")


def build_codebook(loaded: LoadedPolicy, compiled: CompiledPolicy, types: dict[str, str], stats: dict[str, Any],
                   *, dataset: str, version: int, purpose: str, recipient: str) -> dict[str, Any]:
    """The codebook of an export: ``types`` maps each exported name to the DuckDB type written."""
    policy = loaded.policy
    outputs = {p.column: p.output for p in compiled.plan if p.sql is not None}
    columns = []
    for plan in compiled.plan:
        if plan.sql is None:
            continue
        done, domain = _describe(plan)
        columns.append({"name": plan.output, "source_column": plan.column, "transform": plan.transform,
                        "parameters": plan.to_dict()["params"], "description": done, "type": types.get(plan.output),
                        "values": domain, "quasi_identifier": plan.column in compiled.quasi_identifiers,
                        "waiver": policy.waivers.get(plan.column)})
    expires = policy.expires.isoformat() if policy.expires else None
    return {
        "format": CODEBOOK_FORMAT,
        "dataset": {"name": dataset, "version": version},
        "policy": {"name": loaded.name, "version": loaded.version, "description": policy.description},
        "columns": columns,
        "not_exported": [p.column for p in compiled.plan if p.sql is None] + compiled.dropped_by_default,
        "privacy": {
            "k": compiled.k, "k_unit": compiled.k_unit, "subject": compiled.subject,
            "quasi_identifiers": [outputs[q] for q in compiled.quasi_identifiers],
            "l": compiled.l if compiled.sensitive else None,
            "sensitive": outputs[compiled.sensitive] if compiled.sensitive else None,
            "max_suppression": policy.privacy.max_suppression,
            "rows_out": stats["rows_out"], "rows_suppressed": stats["suppressed"],
            "people_suppressed": stats["people_suppressed"],
        },
        "terms": {"purpose": purpose, "recipient": recipient, "expires": expires, "may_not": [
            f"use the data for any purpose but {purpose}",
            f"give it to anyone but {recipient}",
            *([f"keep or use it after {expires}"] if expires else []),
            "try to identify anyone in it, or link it to other data the data-use agreement does not name",
        ]},
    }


TOKEN_DESCRIPTION = ("a fresh random token (syn- and 16 hexadecimal digits) from the operating system's random "
                     "source, unrelated to any real identifier")


def synthetic_codebook(loaded: LoadedPolicy, compiled: CompiledPolicy, types: dict[str, str], tokens: set[str], *,
                       dataset: str, version: int, purpose: str, recipient: str, method: str) -> dict[str, Any]:
    """The codebook of a synthetic release: each column as modelled (the policy's transform applied first), or
    a fresh token; no privacy block of an export (no real row is released), the same terms."""
    book = build_codebook(loaded, compiled, types, {"rows_out": 0, "suppressed": 0, "people_suppressed": None},
                          dataset=dataset, version=version, purpose=purpose, recipient=recipient)
    for column in book["columns"]:
        if column["source_column"] in tokens:
            column.update(description=TOKEN_DESCRIPTION, values="token")
        else:
            column["description"] = f"synthetic, drawn from a {method} model of the source column once " \
                                    f"{column['description']}" if column["transform"] != "keep" else \
                                    f"synthetic, drawn from a {method} model of the source column"
    book["privacy"] = None
    book["synthetic"] = {"method": method, "rows": "drawn from a model: they correspond to no one (see "
                                                 "report.html)"}
    return book


def _cell(text: Any) -> str:
    """A Markdown table cell: control characters escaped, pipes quoted, never a line break."""
    shown = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in str(text))
    return shown.replace("|", "\\|")


def codebook_markdown(codebook: dict[str, Any]) -> str:
    """``codebook.md``: the codebook for a person."""
    terms = codebook["terms"]
    lines = [
        f"# Codebook: {_cell(codebook['dataset']['name'])} v{codebook['dataset']['version']}, "
        f"policy {_cell(codebook['policy']['name'])} v{codebook['policy']['version']}", "",
        "| column | type | from | what was done | values |", "| --- | --- | --- | --- | --- |",
        *(f"| {_cell(c['name'])} | {_cell(c['type'])} | {_cell(c['source_column'])} | {_cell(c['description'])}"
          f"{' (waived: ' + _cell(c['waiver']) + ')' if c['waiver'] else ''} | {_cell(c['values'])} |"
          for c in codebook["columns"]), "",
        f"Not exported: {_cell(', '.join(codebook['not_exported']) or 'none')}.", "",
        *_privacy_lines(codebook),
        "## Terms", "",
        f"Purpose: {_cell(terms['purpose'])}. Recipient: {_cell(terms['recipient'])}. "
        f"Expires: {terms['expires'] or 'never'}.", "", "You may not:", "",
        *(f"- {_cell(item)}" for item in terms["may_not"]), "",
    ]
    return "\n".join(lines)


def _privacy_lines(codebook: dict[str, Any]) -> list[str]:
    privacy = codebook["privacy"]
    if privacy is None:
        return ["## Synthetic", "", f"The rows are synthetic ({_cell(codebook['synthetic']['method'])}), "
                f"{_cell(codebook['synthetic']['rows'])}.", ""]
    unit = ("people (" + privacy["subject"] + ")") if privacy["k_unit"] == "people" else "rows"
    return ["## Privacy", "",
            f"Every combination of {_cell(', '.join(privacy['quasi_identifiers']) or 'no quasi-identifier')} is "
            f"shared by at least k={privacy['k']} {_cell(unit)}"
            + (f", with at least l={privacy['l']} values of {_cell(privacy['sensitive'])}" if privacy["l"] else "")
            + f". {privacy['rows_suppressed']:,} rows were suppressed to get there (at most "
              f"{privacy['max_suppression']:.1%} allowed); {privacy['rows_out']:,} rows are in the export.", ""]


def write_codebook(folder: Path, codebook: dict[str, Any]) -> None:
    """Write ``codebook.json`` and ``codebook.md`` into the export's staging folder."""
    write_export_file(folder / CODEBOOK_JSON, (json.dumps(codebook, indent=2, sort_keys=True, ensure_ascii=False)
                                               + "\n").encode("utf-8"))
    write_export_file(folder / CODEBOOK_MD, codebook_markdown(codebook).encode("utf-8"))


def parquet_metadata(codebook: dict[str, Any]) -> str:
    """The ``KV_METADATA`` option of the Parquet ``COPY``: the columns' entries, and each one's description."""
    entries = [f"{quote_ident(PARQUET_KEY)}: {sql_string_literal(json.dumps(codebook['columns'], ensure_ascii=False))}"]
    entries += [f"{quote_ident(PARQUET_COLUMN_KEY + c['name'])}: "
                f"{sql_string_literal(c['description'] + '; values: ' + c['values'])}" for c in codebook["columns"]]
    return "KV_METADATA {" + ", ".join(entries) + "}"
