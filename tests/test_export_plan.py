"""Planning a policy's run on a registered dataset: prepare, check, explain; DuckDB errors that quote no data."""

from __future__ import annotations

import json
import re
import shutil

import duckdb
import pytest
import yaml

from datashare.errors import InputError, PolicyError
from datashare.export.plan import check, data_errors, explain
from datashare.policy.model import load_policy
from datashare.workspace import open_workspace, os_user

from .conftest import RESEARCH_POLICY, sample_workspace

DROPPED_BY_DEFAULT = ["name_zh", "email", "address", "discharge_date", "ldl"]  # in the sample, not in the policy


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return open_workspace(sample_workspace(tmp_path_factory.mktemp("plan") / "ws"))


def last_entry(ws) -> dict:
    return json.loads(ws.audit_path.read_text(encoding="utf-8").splitlines()[-1])


def test_a_policy_that_does_not_fit_the_dataset_is_refused_with_every_misfit(ws, tmp_path):
    policy = yaml.safe_load(RESEARCH_POLICY.read_text())
    policy["columns"]["blood_type"] = {"transform": "keep"}
    policy["columns"]["sex"] = {"transform": "round", "digits": 0}  # a number transform on a text column
    path = tmp_path / "misfit.yaml"
    path.write_text(yaml.safe_dump(policy))
    with pytest.raises(PolicyError, match="does not fit the dataset") as caught:
        check(ws, os_user(), path, "patients")
    assert any("blood_type" in problem for problem in caught.value.problems)
    assert any("sex" in problem for problem in caught.value.problems)
    assert (last_entry(ws)["action"], last_entry(ws)["outcome"]) == ("policy.check", "error")


def test_an_unknown_dataset_or_version_is_named(ws):
    with pytest.raises(InputError, match="no dataset named 'patinets'"):
        check(ws, os_user(), RESEARCH_POLICY, "patinets")
    with pytest.raises(InputError, match="has no version 7"):
        explain(ws, os_user(), RESEARCH_POLICY, "patients", 7)


def test_check_summarises_the_policy_alone_and_against_a_dataset_and_is_logged(ws):
    alone = check(ws, os_user(), RESEARCH_POLICY)
    assert (alone["policy"], alone["version"], alone["valid"], alone["columns"]) == ("hk-clinical-research", 1,
                                                                                     True, 11)
    assert alone["expires"] == "2027-12-31" and "dataset" not in alone
    assert last_entry(ws)["action"] == "policy.check"
    fitted = check(ws, os_user(), RESEARCH_POLICY, "patients")
    assert (fitted["dataset_version"], fitted["applies"]) == (1, True)
    assert fitted["dropped_by_default"] == DROPPED_BY_DEFAULT
    assert last_entry(ws)["target"]["dataset"] == "patients"


def test_explain_shows_each_column_and_sql_that_holds_no_key(ws):
    explained = explain(ws, os_user(), RESEARCH_POLICY, "patients")
    transforms = {plan["column"]: plan["transform"] for plan in explained["columns"]}
    assert transforms["hkid"] == "drop" and transforms["patient_id"] == "pseudonymize"
    assert explained["privacy"]["quasi_identifiers"] == ["dob", "sex", "district"]
    assert explained["where"] and "2020-01-01" in explained["where"]
    sql = "\n".join([explained["sql"], explained["classes_sql"], *(p["sql"] or "" for p in explained["columns"])])
    assert "ds_keys" in sql  # keys are read from the bound keys table...
    assert not re.search(r"[0-9a-fA-F]{32}|\\x[0-9a-fA-F]{2}", sql)  # ...and no key is written in the SQL
    assert (last_entry(ws)["action"], last_entry(ws)["target"]["version"]) == ("policy.explain", 1)


def test_a_policy_file_that_changed_is_checked_as_it_is_now(ws, tmp_path):
    path = shutil.copy(RESEARCH_POLICY, tmp_path / "p.yaml")
    first = check(ws, os_user(), path)["sha256"]
    path.write_text(path.read_text() + "# edited\n")
    assert check(ws, os_user(), path)["sha256"] != first


def test_duckdb_errors_while_applying_a_policy_quote_no_data():
    """DuckDB's text for a failed conversion quotes the value; the error a person sees does not."""
    loaded = load_policy(RESEARCH_POLICY)
    with pytest.raises(InputError) as caught, data_errors(loaded, "patients"):
        duckdb.connect().execute("SELECT CAST('B610609(4)' AS DATE)")
    assert "ConversionException" in caught.value.message and "B610609" not in caught.value.diagnostics()
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
