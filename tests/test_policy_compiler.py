"""The compiler is a pure function: the research policy on the sample schema gives the golden SQL.

Regenerate deliberately with UPDATE_GOLDEN=1 after a reviewed change.
"""

from __future__ import annotations

import os
from dataclasses import replace

from datashare.policy.compiler import compile_policy
from datashare.policy.model import load_policy
from datashare.policy.rowfilter import parse_where

from .conftest import PROJECT_ROOT

GOLDEN = PROJECT_ROOT / "tests" / "golden"
SCHEMA = [("patient_id", "VARCHAR"), ("hkid", "VARCHAR"), ("name_en", "VARCHAR"), ("name_zh", "VARCHAR"),
          ("sex", "VARCHAR"), ("dob", "DATE"), ("phone", "VARCHAR"), ("email", "VARCHAR"), ("district", "VARCHAR"),
          ("address", "VARCHAR"), ("admission_date", "DATE"), ("discharge_date", "DATE"), ("diagnosis", "VARCHAR"),
          ("hba1c", "DOUBLE"), ("ldl", "DOUBLE"), ("note", "VARCHAR")]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; review and rerun with UPDATE_GOLDEN=1"


def test_research_policy_compiles_to_the_golden_query():
    loaded = load_policy(PROJECT_ROOT / "policies" / "hk-clinical-research.yaml")
    compiled = compile_policy(loaded, 'data."patients__v1"', SCHEMA)
    check_golden("hk-clinical-research.export.sql", compiled.export_sql + "\n")
    check_golden("hk-clinical-research.classes.sql", compiled.classes_sql + "\n")
    check_golden("hk-clinical-research.stats.sql", compiled.stats_sql + "\n")
    check_golden("hk-clinical-research.members.sql", compiled.members_sql + "\n")
    check_golden("hk-clinical-research.suppress.sql", compiled.suppress_sql + "\n")
    assert compiled.dropped_by_default == ["name_zh", "email", "address", "discharge_date", "ldl"]
    assert compiled.output_columns == ["patient_id", "sex", "dob", "district", "admission_date", "diagnosis",
                                       "hba1c", "note"]
    assert compiled.subject == "patient_id" and compiled.k_unit == "people"  # the date shift's subject


def test_compilation_is_pure_and_holds_no_secret():
    loaded = load_policy(PROJECT_ROOT / "policies" / "hk-clinical-research.yaml")
    first = compile_policy(loaded, 'data."patients__v1"', SCHEMA)
    second = compile_policy(loaded, 'data."patients__v1"', SCHEMA)
    assert first == second
    assert "ds_keys" in first.export_sql  # pads are read from a temp table filled with bound parameters


def test_no_quasi_identifiers_means_no_gate():
    loaded = load_policy(PROJECT_ROOT / "policies" / "hk-open-data.yaml")
    compiled = compile_policy(loaded, "t", SCHEMA)
    assert compiled.k == 10 and compiled.l == 1 and compiled.sensitive is None


def test_the_row_filter_compiles_from_the_tree_the_policy_was_loaded_with():
    loaded = load_policy(PROJECT_ROOT / "policies" / "hk-clinical-research.yaml")
    assert loaded.where is not None and loaded.policy.rows.where
    assert compile_policy(loaded, "t", SCHEMA).where_sql == "\"admission_date\" >= CAST('2020-01-01' AS DATE)"
    other = replace(loaded, where=parse_where("sex = 'F'"))
    assert compile_policy(other, "t", SCHEMA).where_sql == "\"sex\" = 'F'"
