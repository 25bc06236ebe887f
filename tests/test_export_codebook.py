"""Every export carries a codebook: in the signed listing, true to the written file, and in the Parquet metadata."""

from __future__ import annotations

import hashlib
import json

import duckdb
import pytest
import yaml

from datashare import governance
from datashare.export.codebook import PARQUET_COLUMN_KEY, PARQUET_KEY, codebook_markdown
from datashare.export.run import export
from datashare.redaction import KINDS
from datashare.workspace import open_workspace

from .conftest import RESEARCH_POLICY, TEST_PASSPHRASE, sample_workspace


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The research policy with admission dates to the year, exported once to Parquet and once to CSV."""
    base = tmp_path_factory.mktemp("codebook")
    ws = open_workspace(sample_workspace(base / "ws"))
    actor = ws.config()["created_by"]
    document = yaml.safe_load(RESEARCH_POLICY.read_text(encoding="utf-8"))
    document["policy"] = "by-year"
    document["columns"]["admission_date"] = {"transform": "generalize", "to": "year"}
    document["privacy"]["subject"] = "patient_id"  # no date shift names it any more
    document.pop("rows")  # its filter is on the shifted date, which this policy no longer has
    document["waivers"] = {"admission_date": "the year of admission is needed for the trend analysis"}
    path = base / "by-year.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    governance.approve(ws, actor, path, passphrase=TEST_PASSPHRASE)
    outs = {}
    for fmt in ("parquet", "csv"):
        outs[fmt] = base / fmt
        export(ws, actor, "patients", path, outs[fmt], purpose="clinical-research", recipient="cicor",
               passphrase=TEST_PASSPHRASE, fmt=fmt)
    return outs


def test_the_codebook_is_in_the_signed_listing_and_true_to_the_written_file(exported):
    out = exported["parquet"]
    sums = dict(reversed(line.split("  ")) for line in (out / "SHA256SUMS").read_text().splitlines())
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for name in ("codebook.json", "codebook.md"):
        assert sums[name] == hashlib.sha256((out / name).read_bytes()).hexdigest()
        assert name in {f["name"] for f in manifest["files"]}
    codebook = json.loads((out / "codebook.json").read_text(encoding="utf-8"))
    written = duckdb.connect().execute(f"DESCRIBE SELECT * FROM read_parquet('{out / 'patients.parquet'}')").fetchall()
    assert [(c["name"], c["type"]) for c in codebook["columns"]] == [(name, kind) for name, kind, *_ in written]
    assert [c["name"] for c in codebook["columns"]] == manifest["columns_out"]
    by_name = {c["name"]: c for c in codebook["columns"]}
    # generalised columns cannot be taken for the originals: named (and typed) for what they hold
    assert (by_name["admission_year"]["source_column"], by_name["admission_year"]["type"]) == ("admission_date",
                                                                                               "INTEGER")
    assert by_name["age_band"]["source_column"] == "dob" and "age band, 20 years" in by_name["age_band"]["values"]
    assert by_name["diagnosis_prefix3"]["transform"] == "generalize"
    assert all(f"[{kind}]" in by_name["note"]["description"] for kind in KINDS)  # every placeholder it may hold
    assert "dob" not in by_name and "hkid" in codebook["not_exported"]
    assert codebook["privacy"]["k_unit"] == "people" and codebook["privacy"]["quasi_identifiers"] == [
        "age_band", "sex", "region"]
    assert codebook["privacy"]["sensitive"] == "diagnosis_prefix3"
    assert codebook["terms"] == {"purpose": "clinical-research", "recipient": "cicor", "expires": "2027-12-31",
                                 "may_not": codebook["terms"]["may_not"]}
    assert any("clinical-research" in line for line in codebook["terms"]["may_not"])
    text = (out / "codebook.md").read_text(encoding="utf-8")
    assert "| admission_year | INTEGER | admission_date |" in text and "Expires: 2027-12-31" in text


def test_parquet_carries_the_column_descriptions_and_csv_the_same_codebook(exported):
    data = exported["parquet"] / "patients.parquet"
    metadata = dict(duckdb.connect().execute(
        f"SELECT decode(key), decode(value) FROM parquet_kv_metadata('{data}')").fetchall())
    assert json.loads(metadata[PARQUET_KEY]) == json.loads(
        (exported["parquet"] / "codebook.json").read_text(encoding="utf-8"))["columns"]
    assert "age band, 20 years" in metadata[PARQUET_COLUMN_KEY + "age_band"]
    csv_codebook = json.loads((exported["csv"] / "codebook.json").read_text(encoding="utf-8"))
    header = (exported["csv"] / "patients.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert [c["name"] for c in csv_codebook["columns"]] == header


def test_the_readable_codebook_escapes_what_would_break_its_table():
    codebook = {"dataset": {"name": "d", "version": 1}, "policy": {"name": "p", "version": 1},
                "columns": [{"name": "a|b\x1b[31m", "type": "VARCHAR", "source_column": "a|b\x1b[31m",
                             "description": "kept", "values": "x", "waiver": None}],
                "not_exported": [], "privacy": {"k": 1, "k_unit": "rows", "subject": None, "quasi_identifiers": [],
                                                "l": None, "sensitive": None, "max_suppression": 0.0,
                                                "rows_out": 3, "rows_suppressed": 0},
                "terms": {"purpose": "p", "recipient": "r", "expires": None, "may_not": ["x"]}}
    text = codebook_markdown(codebook)
    assert "\x1b" not in text and "a\\|b\\u001b[31m" in text
    row = next(line for line in text.splitlines() if line.startswith("| a"))
    assert row.count(" | ") == 4  # five cells: the pipe in the name is quoted
