"""A policy against a dataset's columns and types: names it lacks (with a suggestion), transforms and row filters
on the wrong type, the gate's and the synthetic section's columns."""

from __future__ import annotations

import pytest
import yaml

from datashare.errors import PolicyError
from datashare.policy.fit import check_against_dataset, require_valid_for
from datashare.policy.model import load_policy

from .conftest import PROJECT_ROOT

POLICIES = PROJECT_ROOT / "policies"
RESEARCH = POLICIES / "hk-clinical-research.yaml"
SAMPLE_COLUMNS = {"patient_id": "VARCHAR", "hkid": "VARCHAR", "name_en": "VARCHAR", "name_zh": "VARCHAR",
                  "sex": "VARCHAR", "dob": "DATE", "phone": "VARCHAR", "email": "VARCHAR", "district": "VARCHAR",
                  "address": "VARCHAR", "admission_date": "DATE", "discharge_date": "DATE", "diagnosis": "VARCHAR",
                  "hba1c": "DOUBLE", "ldl": "DOUBLE", "note": "VARCHAR"}


@pytest.mark.parametrize("name", ["hk-clinical-research", "hk-open-data", "hk-refused-by-k", "hk-synthetic",
                                  "hk-synthetic-dp"])
def test_bundled_policies_are_valid_and_fit_the_sample(name):
    loaded = load_policy(POLICIES / f"{name}.yaml")
    assert loaded.name == name and len(loaded.sha256) == 64
    assert check_against_dataset(loaded, SAMPLE_COLUMNS) == []


@pytest.mark.parametrize(("change", "problem"), [
    ({"columns": {"hkid": {"transform": "generalize", "to": "age_band", "width": 10, "reference": "2026-01-01"}}},
     "columns.hkid: generalize to age_band needs a date column; 'hkid' is VARCHAR"),
    ({"columns": {"note": {"transform": "round", "digits": 1}}}, "columns.note: round needs a number column"),
    ({"columns": {"sex": {"transform": "date_shift", "max_days": 3, "subject": "patient_id"}}},
     "columns.sex: date_shift needs a date column; 'sex' is VARCHAR"),
    ({"rows": {"where": "hkid > 5"}}, "rows.where: column 'hkid' (VARCHAR) cannot be compared with the number 5"),
    ({"rows": {"where": "hba1c BETWEEN 'low' AND 9"}},
     "column 'hba1c' (DOUBLE) cannot be compared with the text 'low'"),
    ({"rows": {"where": "dob IN ('1990-01-01', 'yesterday')"}}, "cannot be compared with the text 'yesterday'"),
    ({"rows": {"where": "dob < sex"}}, "column 'dob' (DATE) cannot be compared with column 'sex' (VARCHAR)"),
])
def test_transforms_and_row_filters_must_fit_the_column_types(tmp_path, change, problem):
    data = yaml.safe_load(RESEARCH.read_text())
    for key, value in change.items():
        data[key].update(value)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    assert problem in "\n".join(check_against_dataset(load_policy(path), SAMPLE_COLUMNS))


def test_literals_that_fit_the_column_type_pass(tmp_path):
    data = yaml.safe_load(RESEARCH.read_text())
    data["rows"]["where"] = "dob >= '1950-01-01' AND hba1c < '9.5' AND sex IN ('F', 'M') AND -1 < hba1c"
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    assert check_against_dataset(load_policy(path), SAMPLE_COLUMNS) == []


def test_columns_the_dataset_lacks_are_named_with_a_suggestion(tmp_path):
    loaded = load_policy(RESEARCH)
    renamed = {("hba1c_pct" if c == "hba1c" else c): t for c, t in SAMPLE_COLUMNS.items()}
    problems = check_against_dataset(loaded, renamed)
    assert problems == ["columns.hba1c: the dataset has no column 'hba1c' (did you mean 'hba1c_pct'?)"]
    with pytest.raises(PolicyError) as caught:
        require_valid_for(loaded, renamed)
    assert f"{RESEARCH}:23:3: columns.hba1c: the dataset has no column 'hba1c'" in caught.value.message
    assert caught.value.located == [{"file": str(RESEARCH), "path": "columns.hba1c", "line": 23, "column": 3,
                                     "message": "the dataset has no column 'hba1c'",
                                     "hint": "did you mean 'hba1c_pct'?"}]
    dropped_qi = dict(SAMPLE_COLUMNS)
    data = yaml.safe_load(RESEARCH.read_text())
    data["columns"]["sex"] = {"transform": "drop"}
    tmp = tmp_path / "policy.yaml"
    tmp.write_text(yaml.safe_dump(data))
    assert any("'sex' is not in the export" in p for p in check_against_dataset(load_policy(tmp), dropped_qi))


@pytest.mark.parametrize(("synthetic", "problem"), [
    ({"bounds": {"hba1cc": [3, 15]}}, "synthetic.bounds.hba1cc: the dataset has no column 'hba1cc' (did you mean"),
    ({"bounds": {"hba1c": ["2020-01-01", "2021-01-01"]}}, "synthetic.bounds.hba1c: 'hba1c' is DOUBLE; its bounds "
                                                          "must be numbers"),
    ({"bounds": {"email": [1, 2]}}, "synthetic.bounds.email: 'email' is not modelled"),
    ({"constraints": ["discharge_date >= sex"]}, "synthetic.constraints.0: column 'discharge_date' (DATE) cannot"),
])
def test_the_synthetic_section_must_fit_the_dataset(tmp_path, synthetic, problem):
    data = yaml.safe_load(RESEARCH.read_text())
    data["synthetic"] = {"method": "mst", "epsilon": 1.0, "delta": 1e-6, **synthetic}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    assert problem in "\n".join(check_against_dataset(load_policy(path), SAMPLE_COLUMNS))
