"""Policy files: validation with key paths and suggestions, every problem at once, hostile files refused."""

from __future__ import annotations

import contextlib

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datashare.errors import InputError, PolicyError
from datashare.policy.model import load_policy

from .conftest import FIXTURES, PROJECT_ROOT

POLICIES = PROJECT_ROOT / "policies"
RESEARCH = POLICIES / "hk-clinical-research.yaml"


def test_defaults_are_filled_in():
    loaded = load_policy(RESEARCH)
    assert loaded.params["dob"] == {"to": "age_band", "width": 20, "reference": loaded.params["dob"]["reference"]}
    assert loaded.params["patient_id"]["per_recipient"] is True  # the manifest says what happens


def test_unknown_key_names_the_path_and_suggests():
    with pytest.raises(PolicyError) as caught:
        load_policy(FIXTURES / "policy_typos.yaml")
    text = caught.value.message
    assert "policy_typos.yaml:6:1: colums: unknown key 'colums' (did you mean 'columns'?)" in text
    assert "required key 'columns' is missing" not in text  # the typo explains it: one mistake, one line
    assert caught.value.located == [{"file": str(FIXTURES / "policy_typos.yaml"), "path": "colums", "line": 6,
                                     "column": 1, "message": "unknown key 'colums'",
                                     "hint": "did you mean 'columns'?"}]


def test_every_problem_is_listed_at_once():
    """A wrong shape (privacy.k_anonymity) does not hide the problems in columns and rows."""
    with pytest.raises(PolicyError) as caught:
        load_policy(FIXTURES / "policy_bad_transforms.yaml")
    text = caught.value.message
    assert "privacy.k_anonymity" in text
    assert "columns.patient_id.transform: unknown transform 'pseudonymise' (did you mean 'pseudonymize'?)" in text
    assert ":8:28: columns.phone.keep_lst: unknown option 'keep_lst' for mask (did you mean 'keep_last'?)" in text
    assert "columns.admission_date.subject: date_shift needs subject" in text
    assert "columns.hba1c.digits: must be a whole number" in text
    assert "rows.where: LOWER is not allowed" in text


def test_the_row_filter_is_checked_without_a_dataset(tmp_path):
    data = yaml.safe_load(RESEARCH.read_text())
    data["rows"]["where"] = "admission_date >= DATE '2020-01-01'; DROP TABLE x"
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PolicyError, match=r"p.yaml is not a valid policy \(1 problem\):\n  .*p.yaml:\d+:\d+: "
                                          "rows.where: exactly one expression"):
        load_policy(path)


def test_not_yaml_and_missing_file():
    with pytest.raises(PolicyError, match=r"policy_not_yaml.yaml:2:8: not valid YAML: "):
        load_policy(FIXTURES / "policy_not_yaml.yaml")
    with pytest.raises(InputError, match="no such policy file"):
        load_policy(FIXTURES / "nope.yaml")


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


def _policy_file(tmp_path, text: str):
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_key_given_twice_is_refused_not_last_one_wins(tmp_path):
    text = RESEARCH.read_text().replace("  hkid:           {transform: drop}\n",
                                        "  hkid:           {transform: drop}\n  hkid: {transform: keep}\n")
    with pytest.raises(PolicyError, match=r"p.yaml:16:3: columns.hkid: the key 'hkid' is given twice, here and on "
                                          r"line 15 \(keep one"):
        load_policy(_policy_file(tmp_path, text))


@pytest.mark.parametrize(("old", "new", "problem"), [
    ("k_anonymity: 5", "k_anonymity: yes", "privacy.k_anonymity: must be a whole number, not true or false"),
    ("max_suppression: 0.05", "max_suppression: yes", "privacy.max_suppression: must be a number, not true or false"),
    ("version: 1", "version: true", "version: must be a whole number, not true or false"),
    ("max_days: 30", "max_days: 1000000000000000", "columns.admission_date.max_days: must be from 1 to 3650"),
    ("width: 20", "width: 0.5", "columns.dob.width: an age band is a whole number of years"),
    ("length: 3", "length: 100000000000000000000", "columns.diagnosis.length: must be from 1 to 1000"),
    ("digits: 0", "digits: 99", "columns.hba1c.digits: must be from -15 to 15"),
    ("phone:          {transform: drop}", "phone:          {transform: mask, keep_last: -1}",
     "columns.phone.keep_last: must be from 0 to 1000"),
])
def test_loose_and_out_of_range_values_are_refused(tmp_path, old, new, problem):
    assert old in RESEARCH.read_text()
    with pytest.raises(PolicyError) as caught:
        load_policy(_policy_file(tmp_path, RESEARCH.read_text().replace(old, new)))
    assert problem in caught.value.message


def test_a_policy_that_keeps_nothing_is_refused(tmp_path):
    data = {"policy": "nothing", "version": 1, "applies_to": ["patients"], "purposes": ["r"], "recipients": ["*"],
            "columns": {"hkid": {"transform": "drop"}, "note": {"transform": "drop"}}}
    with pytest.raises(PolicyError, match="every column is dropped"):
        load_policy(_policy_file(tmp_path, yaml.safe_dump(data)))


def test_a_date_that_does_not_exist_is_a_policy_error(tmp_path):
    text = RESEARCH.read_text().replace("expires: 2027-12-31", "expires: 2027-13-45")
    with pytest.raises(PolicyError, match=r"p.yaml:12:10: expires: '2027-13-45' is not a date that exists"):
        load_policy(_policy_file(tmp_path, text))


def test_a_date_a_key_given_twice_and_schema_errors_come_in_one_run(tmp_path):
    """They used to come in rounds: the date, then (fixed) the duplicate key, then the schema's errors."""
    hkid = "  hkid:           {transform: drop}\n"
    text = (RESEARCH.read_text().replace("expires: 2027-12-31", "expires: 2027-13-45")
            .replace(hkid, hkid + "  hkid: {transform: keep}\n")
            .replace("{transform: redact_identifiers}", "{transfrom: redact_identifiers}")
            .replace("k_anonymity: 5", "k_anonymity: yes"))
    with pytest.raises(PolicyError) as caught:
        load_policy(_policy_file(tmp_path, text))
    assert [(p["line"], p["column"], p["path"], p["message"], p["hint"]) for p in caught.value.located] == [
        (12, 10, "expires", "'2027-13-45' is not a date that exists", None),
        (16, 3, "columns.hkid", "the key 'hkid' is given twice, here and on line 15",
         "keep one: a plain YAML reader would use the last one silently"),
        (25, 20, "columns.note.transfrom", "unknown key 'transfrom'", "did you mean 'transform'?"),
        (28, 3, "privacy.k_anonymity",
         "must be a whole number, not true or false (YAML reads yes, no, on and off as those)", None),
    ]
    assert "Field required" not in caught.value.message and "Input should" not in caught.value.message


def test_text_that_is_not_utf8_is_located(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"policy: p\ndescription: caf\xe9\n")
    with pytest.raises(PolicyError, match=r"p.yaml:2:17: not UTF-8 text \(save the file as UTF-8\)"):
        load_policy(path)


def test_a_policy_is_read_from_a_regular_file_of_bounded_size(tmp_path):
    """``--policy /dev/zero`` read until memory ran out; a FIFO would wait for a writer forever."""
    import os

    for path in ("/dev/zero", "/dev/urandom"):
        with pytest.raises(InputError, match="not a regular file"):
            load_policy(path)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        load_policy(fifo)
    with pytest.raises(InputError, match="cannot read"):
        load_policy(tmp_path)
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"description: " + b"x" * (2 << 20))
    with pytest.raises(PolicyError, match="at most 1 MiB"):
        load_policy(huge)


@pytest.mark.parametrize(("synthetic", "problem"), [
    ({"method": "gan"}, "synthetic.method: must be one of copula, mst"),
    ({"method": "mst", "epsilon": 1.0}, "synthetic.delta: mst is (ε, δ)-differentially private and needs a delta"),
    ({"method": "copula", "epsilon": 1.0}, "synthetic.epsilon: copula is not differentially private"),
    ({"method": "mst", "epsilon": True, "delta": 1e-6}, "synthetic.epsilon: must be a number, not true or false"),
    ({"method": "copula", "min_cout": 5}, "synthetic.min_cout: unknown key 'min_cout' (did you mean 'min_count'?)"),
    ({"method": "copula", "bounds": {"hba1c": [9, 3]}}, "synthetic.bounds.hba1c: the low bound must be below"),
    ({"method": "copula", "bounds": {"hba1c": [0, float("inf")]}}, "synthetic.bounds.hba1c: bounds must be finite"),
    ({"method": "copula", "constraints": ["discharge_date >= now()"]}, "synthetic.constraints.0: ANONYMOUS is not"),
])
def test_the_synthetic_section_is_validated_with_key_paths(tmp_path, synthetic, problem):
    data = yaml.safe_load(RESEARCH.read_text())
    data["synthetic"] = synthetic
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert any(problem in found for found in caught.value.problems), caught.value.problems


_ODD_VALUES = ["yes", "-1", "2027-02-30", "[", "{a: 1}", "!!binary aGk=", "*nowhere", "&a x", "", "1e999", "'", "<<"]


@st.composite
def mutated_policies(draw) -> str:
    """The research policy with a few random edits: a key misspelt, a line doubled or dropped, an odd value."""
    lines = RESEARCH.read_text().splitlines(keepends=True)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        kind = draw(st.sampled_from(["typo", "double", "drop", "value", "insert"]))
        line = lines[i]
        if kind == "typo" and ":" in line:
            j = draw(st.integers(min_value=0, max_value=line.index(":")))
            lines[i] = line[:j] + draw(st.sampled_from("aeiorst_ ")) + line[j + 1:]
        elif kind == "double":
            lines.insert(i, line)
        elif kind == "drop" and len(lines) > 1:
            del lines[i]
        elif kind == "value" and ":" in line:
            lines[i] = line[:line.index(":") + 1] + " " + draw(st.sampled_from(_ODD_VALUES)) + "\n"
        elif kind == "insert":
            j = draw(st.integers(min_value=0, max_value=len(line)))
            lines[i] = line[:j] + draw(st.text(st.characters(codec="utf-8"), max_size=4)) + line[j:]
    return "".join(lines)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated_policies())
def test_every_problem_of_a_mutated_policy_is_located(tmp_path, text):
    """Whatever the edit, a policy loads or fails with a PolicyError whose every problem has a place in the file."""
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_policy(path)
    except PolicyError as exc:
        assert exc.located and len(exc.located) == len(exc.problems), exc.message
        lines = text.count("\n") + 2
        for problem in exc.located:
            assert isinstance(problem["line"], int) and 1 <= problem["line"] <= lines, problem
            assert isinstance(problem["column"], int) and problem["column"] >= 1, problem
            assert problem["message"] and "Input should" not in problem["message"], problem
            assert f"{path}:{problem['line']}:{problem['column']}: " in exc.message


def test_as_names_a_column_in_the_export_and_two_columns_may_not_share_a_name(tmp_path):
    loaded = load_policy(RESEARCH)
    assert loaded.outputs["dob"] == "age_band" and loaded.outputs["diagnosis"] == "diagnosis_prefix3"
    assert loaded.outputs["sex"] == "sex" and "hkid" not in loaded.outputs and "as" not in loaded.params["dob"]
    text = RESEARCH.read_text()
    for old, new, problem in [
        ("sex:            {transform: keep}", "sex:            {transform: keep, as: region}",
         "its name in the export, 'region', is also"),
        ("hkid:           {transform: drop}", "hkid:           {transform: drop, as: x}",
         "columns.hkid.as: a dropped column has no name in the export"),
        ("sex:            {transform: keep}", "sex:            {transform: keep, as: __ds_rows}",
         "columns.sex.as: names starting with __ds_ are reserved"),
        ("sex:            {transform: keep}", "sex:            {transform: keep, as: 5}",
         "columns.sex.as: must be a column name"),
        ("sex:            {transform: keep}", 'sex:            {transform: keep, as: "a\\x1bb"}',
         "columns.sex.as: must be at most 128 printable characters"),
    ]:
        assert old in text
        with pytest.raises(PolicyError) as caught:
            load_policy(_policy_file(tmp_path, text.replace(old, new)))
        assert problem in caught.value.message, caught.value.message
