"""Policy files: validation with key paths and suggestions, fit to a dataset, and allowed uses."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datashare.errors import InputError, PolicyError, RefusedError
from datashare.policy import check_against_dataset, check_use, load_policy

from .conftest import FIXTURES, PROJECT_ROOT

POLICIES = PROJECT_ROOT / "policies"
RESEARCH = POLICIES / "hk-clinical-research.yaml"
SAMPLE_COLUMNS = ["patient_id", "hkid", "name_en", "name_zh", "sex", "dob", "phone", "email", "district", "address",
                  "admission_date", "discharge_date", "diagnosis", "hba1c", "ldl", "note"]


@pytest.mark.parametrize("name", ["hk-clinical-research", "hk-open-data", "hk-refused-by-k"])
def test_bundled_policies_are_valid_and_fit_the_sample(name):
    loaded = load_policy(POLICIES / f"{name}.yaml")
    assert loaded.name == name and len(loaded.sha256) == 64
    assert check_against_dataset(loaded, SAMPLE_COLUMNS) == []


def test_defaults_are_filled_in():
    loaded = load_policy(RESEARCH)
    assert loaded.params["phone"] == {"keep_last": 2, "keep_first": 0, "char": "*"}
    assert loaded.params["patient_id"]["per_recipient"] is False


def test_unknown_key_names_the_path_and_suggests():
    with pytest.raises(PolicyError) as caught:
        load_policy(FIXTURES / "policy_typos.yaml")
    text = caught.value.message
    assert "policy_typos.yaml" in text and "colums: unknown key; did you mean 'columns'" in text
    assert "columns: Field required" in text


def test_every_problem_is_listed_at_once(tmp_path):
    with pytest.raises(PolicyError) as caught:
        load_policy(FIXTURES / "policy_bad_transforms.yaml")
    text = caught.value.message
    assert "privacy.k_anonymity" in text
    with pytest.raises(PolicyError) as second:
        load_policy(_without_privacy(FIXTURES / "policy_bad_transforms.yaml", tmp_path))
    text = second.value.message
    assert "columns.patient_id.transform: unknown transform 'pseudonymise'; did you mean 'pseudonymize'" in text
    assert "columns.phone.keep_lst: unknown option for mask: did you mean 'keep_last'" in text
    assert "columns.admission_date.subject: date_shift needs subject" in text
    assert "columns.hba1c.digits: must be int" in text


def _without_privacy(path: Path, folder: Path) -> Path:
    data = yaml.safe_load(path.read_text())
    data.pop("privacy")
    out = folder / "policy.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


def test_not_yaml_and_missing_file():
    with pytest.raises(PolicyError, match="not valid YAML at line"):
        load_policy(FIXTURES / "policy_not_yaml.yaml")
    with pytest.raises(InputError, match="no such policy file"):
        load_policy(FIXTURES / "nope.yaml")


def test_columns_the_dataset_lacks_are_named_with_a_suggestion(tmp_path):
    loaded = load_policy(RESEARCH)
    problems = check_against_dataset(loaded, [c for c in SAMPLE_COLUMNS if c != "hba1c"] + ["hba1c_pct"])
    assert problems == ["columns.hba1c: the dataset has no column 'hba1c'; did you mean 'hba1c_pct'?"]
    dropped_qi = [c for c in SAMPLE_COLUMNS]
    data = yaml.safe_load(RESEARCH.read_text())
    data["columns"]["sex"] = {"transform": "drop"}
    tmp = tmp_path / "policy.yaml"
    tmp.write_text(yaml.safe_dump(data))
    assert any("'sex' is not in the export" in p for p in check_against_dataset(load_policy(tmp), dropped_qi))


def test_uses_the_policy_does_not_allow_are_refused():
    loaded = load_policy(RESEARCH)
    check_use(loaded, dataset="patients", purpose="drug-safety", recipient="incubatee-42", today=dt.date(2026, 1, 1))
    cases = [
        ({"dataset": "cohort", "purpose": "drug-safety", "recipient": "cicor"}, "does not apply to dataset"),
        ({"dataset": "patients", "purpose": "marketing", "recipient": "cicor"}, "purpose 'marketing' is not allowed"),
        ({"dataset": "patients", "purpose": "clinical-researh", "recipient": "cicor"}, "did you mean"),
        ({"dataset": "patients", "purpose": "drug-safety", "recipient": "pharma-x"}, "recipient 'pharma-x'"),
    ]
    for kwargs, message in cases:
        with pytest.raises(RefusedError, match=message):
            check_use(loaded, today=dt.date(2026, 1, 1), **kwargs)
    with pytest.raises(RefusedError, match="expired on 2027-12-31"):
        check_use(loaded, dataset="patients", purpose="drug-safety", recipient="cicor", today=dt.date(2028, 1, 1))


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
policy_like = st.fixed_dictionaries(
    {"policy": st.sampled_from(["p", "Bad Name", 3]), "version": st.sampled_from([1, 0, "x"]),
     "applies_to": st.sampled_from([["patients"], [], "patients"]),
     "purposes": st.sampled_from([["r"], None]), "recipients": st.sampled_from([["*"], [""]]),
     "columns": st.dictionaries(st.sampled_from(["hkid", "dob", "x"]), st.fixed_dictionaries(
         {"transform": st.sampled_from(["drop", "mask", "generalize", "nope", "date_shift"])},
         optional={"keep_last": yaml_values, "to": yaml_values, "width": yaml_values, "max_days": yaml_values}),
         max_size=3)},
    optional={"privacy": yaml_values, "rows": yaml_values, "extra": yaml_values},
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(policy_like, yaml_values))
def test_any_policy_document_is_accepted_or_refused_cleanly(tmp_path, document):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    try:
        load_policy(path)
    except PolicyError as exc:
        assert str(path) in exc.message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_any_bytes_are_refused_cleanly(tmp_path, data):
    path = tmp_path / "p.yaml"
    path.write_bytes(data)
    with contextlib.suppress(PolicyError):
        load_policy(path)


def test_deep_nesting_and_huge_files_are_refused(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("columns: " + "[" * 5000 + "]" * 5000)
    with pytest.raises(PolicyError):
        load_policy(deep)
    huge = tmp_path / "huge.yaml"
    huge.write_text("description: " + "x" * (2 << 20))
    with pytest.raises(PolicyError, match="at most 1 MiB"):
        load_policy(huge)


def test_random_transforms_cannot_feed_the_privacy_gate(tmp_path):
    """noise draws afresh at every export, so classes counted for the gate would not be the rows written."""
    policy = yaml.safe_load(RESEARCH.read_text())
    policy["columns"]["hba1c"] = {"transform": "noise", "scale": 1.0}
    policy["columns"]["dob"] = {"transform": "noise", "scale": 1.0}
    policy["privacy"]["quasi_identifiers"] = ["dob", "sex", "__ds_class_size"]
    policy["privacy"]["l_diversity"] = {"sensitive": "hba1c", "l": 2}
    path = tmp_path / "noisy.yaml"
    path.write_text(yaml.safe_dump(policy))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    text = caught.value.message
    assert "privacy.quasi_identifiers: 'dob' gets noise" in text
    assert "privacy.l_diversity.sensitive: 'hba1c' gets noise" in text
    assert "privacy.quasi_identifiers: names starting with __ds_ are reserved" in text
