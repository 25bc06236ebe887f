"""Each transform, run by DuckDB on a small table, does what it says."""

from __future__ import annotations

import datetime as dt
import os

import duckdb
import pytest

from datashare.errors import PolicyError
from datashare.policy.keys import key_parameters, keys_table_sql
from datashare.policy.transforms import TRANSFORMS, output_name, validate_params

SECRET = os.urandom(32)


def run(name: str, values: list, params: dict | None = None, *, recipient: str | None = None,
        secret: bytes = SECRET, column_type: str = "VARCHAR", extra: dict | None = None) -> list:
    con = duckdb.connect()
    con.execute(keys_table_sql(), key_parameters(secret, recipient))
    checked, problems = validate_params(name, params or {})
    assert problems == []
    con.execute(f"CREATE TABLE t (v {column_type}, subject VARCHAR, __ds_row VARCHAR)")
    subjects = (extra or {}).get("subjects", ["s"] * len(values))
    rows = (extra or {}).get("rows", [f"row {i}" for i in range(len(values))])  # the compiler's source-row hash
    con.executemany("INSERT INTO t VALUES (?, ?, ?)", list(zip(values, subjects, rows, strict=True)))
    sql = TRANSFORMS[name].build('"v"', checked)
    return [r[0] for r in con.execute(f"SELECT {sql} FROM t").fetchall()]


def test_keep_and_redact():
    assert run("keep", ["a", None]) == ["a", None]
    assert run("redact", ["a", None]) == ["[REDACTED]", None]
    assert run("redact", ["a"], {"value": "x'y"}) == ["x'y"]


def test_mask():
    assert run("mask", ["+852 9123 4567", "12", None], {"keep_last": 2}) == ["************67", "**", None]
    assert run("mask", ["ABCDEFG"], {"keep_first": 1, "keep_last": 1, "char": "#"}) == ["A#####G"]


def test_pseudonymize_is_stable_keyed_and_per_recipient():
    values = ["P1", "P2", "P1", None]
    first = run("pseudonymize", values)
    assert first[0] == first[2] != first[1] and first[3] is None and len(first[0]) == 16
    assert run("pseudonymize", values) == first  # same secret, same pseudonym across exports
    assert run("pseudonymize", values, secret=os.urandom(32))[0] != first[0]  # keyed
    alice = run("pseudonymize", values, {"per_recipient": True}, recipient="alice")
    bob = run("pseudonymize", values, {"per_recipient": True}, recipient="bob")
    assert alice[0] != bob[0] and alice[0] != first[0]
    assert run("pseudonymize", ["P1"], {"prefix": "x-", "length": 8})[0].startswith("x-")


def test_pseudonym_is_rfc2104_hmac_sha256():
    import hashlib
    import hmac

    scope = b'{"dataset":"","recipient":""}'  # no recipient, no dataset: the keys of a test run
    key = hmac.new(SECRET, b"datashare/pseudonym/" + scope, hashlib.sha256).digest()
    expected = hmac.new(key, "陳大文".encode(), hashlib.sha256).hexdigest()[:16]
    assert run("pseudonymize", ["陳大文"]) == [expected]


def test_date_shift_is_consistent_per_subject_and_bounded():
    dates = [dt.date(2024, 1, 1) + dt.timedelta(days=i * 7) for i in range(60)]
    subjects = [f"P{i % 6}" for i in range(60)]
    shifted = run("date_shift", dates, {"max_days": 30, "subject": "subject"}, column_type="DATE",
                  extra={"subjects": subjects})
    offsets = {}
    for original, new, subject in zip(dates, shifted, subjects, strict=True):
        delta = (new - original).days
        assert -30 <= delta <= 30
        offsets.setdefault(subject, set()).add(delta)
    assert all(len(v) == 1 for v in offsets.values())  # one offset per subject
    assert len({next(iter(v)) for v in offsets.values()}) > 1


def test_generalize_variants():
    dobs = [dt.date(1980, 6, 1), dt.date(1930, 1, 1), None]
    assert run("generalize", dobs, {"to": "age_band", "width": 10, "reference": dt.date(2026, 1, 1)},
               column_type="DATE") == ["40-49", "90-99", None]
    assert run("generalize", dobs, {"to": "age_band", "width": 10, "reference": "2026-01-01", "top": 90},
               column_type="DATE") == ["40-49", "90+", None]
    assert run("generalize", [12.5, 27.0], {"to": "bins", "width": 10}, column_type="DOUBLE") == \
        ["10.0-20.0", "20.0-30.0"]
    day = [dt.date(2024, 8, 17)]
    # text and a number, never a date: 2024-08-01 would read as a day
    assert run("generalize", day, {"to": "month"}, column_type="DATE") == ["2024-08"]
    assert run("generalize", day + [dt.date(2024, 12, 30)], {"to": "week"}, column_type="DATE") == \
        ["2024-W33", "2025-W01"]  # ISO weeks: 30 December 2024 is in the first week of 2025
    assert run("generalize", day, {"to": "quarter"}, column_type="DATE") == ["2024-Q3"]
    assert run("generalize", day, {"to": "year"}, column_type="DATE") == [2024]
    assert run("generalize", ["Sha Tin", "wan chai", "九龍城區", "Atlantis"], {"to": "region"}) == \
        ["New Territories", "Hong Kong Island", "Kowloon", None]
    assert run("generalize", ["E11.9", "I10"], {"to": "prefix", "length": 3}) == ["E11", "I10"]


def test_round_top_bottom_coding():
    assert run("round", [7.46, None], {"digits": 1}, column_type="DOUBLE") == [7.5, None]
    assert run("top_code", [95, 40, None], {"at": 90}, column_type="INTEGER") == [90, 40, None]
    assert run("bottom_code", [1, 40, None], {"at": 18}, column_type="INTEGER") == [18, 40, None]


def test_noise_is_laplace_with_the_given_scale():
    values = run("noise", [100.0] * 4000, {"scale": 2.0}, column_type="DOUBLE")
    deviations = [v - 100.0 for v in values]
    mean_abs = sum(abs(d) for d in deviations) / len(deviations)
    assert abs(sum(deviations) / len(deviations)) < 0.3
    assert 1.7 < mean_abs < 2.3  # E|X| = scale for Laplace


def test_noise_is_fixed_per_row_and_recipient():
    """Exporting again to one recipient gives the same noise (averaging gains nothing); another gets other noise."""
    values = [100.0] * 200
    first = run("noise", values, {"scale": 2.0}, recipient="alice", column_type="DOUBLE")
    assert run("noise", values, {"scale": 2.0}, recipient="alice", column_type="DOUBLE") == first
    other = run("noise", values, {"scale": 2.0}, recipient="bob", column_type="DOUBLE")
    assert sum(a == b for a, b in zip(first, other, strict=True)) < 5
    averaged = [(a + b) / 2 for a, b in zip(first, run("noise", values, {"scale": 2.0}, recipient="alice",
                                                            column_type="DOUBLE"), strict=True)]
    assert averaged == first  # two exports to one recipient average to the same noisy values


def test_suppress_rare_and_redact_identifiers():
    values = ["E11.9"] * 5 + ["Q87.4"]
    assert run("suppress_rare", values, {"min_count": 2}) == ["E11.9"] * 5 + ["Other"]
    assert run("redact_identifiers", ["Pt CHAN Tai Man A123456(3) 9123 4567 a.b@c.com"]) == \
        ["Pt [NAME] [HKID] [PHONE] [EMAIL]"]


@pytest.mark.parametrize(("name", "params", "problem"), [
    ("mask", {"keep_last": -1}, "must be from 0 to 1000"),
    ("mask", {"char": "**"}, "must be one character"),
    ("generalize", {"to": "age_bands"}, "did you mean 'age_band'"),
    ("generalize", {"to": "age_band"}, "needs width"),
    ("date_shift", {"max_days": 0, "subject": "x"}, "must be from 1 to 3650"),
    ("noise", {}, "noise needs scale"),
    ("round", {"digits": True}, "must be a whole number, not true or false"),
    ("mask", {"keep_lst": 2}, "unknown option 'keep_lst' for mask (did you mean 'keep_last'?)"),
])
def test_bad_parameters_are_named(name, params, problem):
    _, problems = validate_params(name, params)
    assert any(problem in text for _, text in problems), problems


def test_policy_error_type_is_what_callers_catch():
    assert issubclass(PolicyError, Exception)


def test_numbers_must_be_finite():
    from datashare.policy.transforms import validate_params

    _, problems = validate_params("top_code", {"at": float("inf")})
    assert problems == [("at", "must be a finite number")]


def test_date_shift_offset_is_keyed_sha256_of_the_subject():
    import hashlib
    import hmac

    key = hmac.new(SECRET, b'datashare/date_shift/{"dataset":"","recipient":""}', hashlib.sha256).digest()
    subjects = ["P1", "陳大文", "HN-0001"]
    expected = [int(hashlib.sha256(key + s.encode()).hexdigest()[:12], 16) % 61 - 30 for s in subjects]
    shifted = run("date_shift", [dt.date(2024, 1, 1)] * 3, {"max_days": 30, "subject": "subject"},
                  column_type="DATE", extra={"subjects": subjects})
    assert [(d - dt.date(2024, 1, 1)).days for d in shifted] == expected


def test_date_shift_repeats_across_exports_and_is_keyed():
    dates = [dt.date(2024, 1, 1)] * 40
    subjects = [f"P{i}" for i in range(40)]
    params = {"max_days": 30, "subject": "subject"}
    first = run("date_shift", dates, params, column_type="DATE", extra={"subjects": subjects})
    assert run("date_shift", dates, params, column_type="DATE", extra={"subjects": subjects}) == first
    assert run("date_shift", dates, params, column_type="DATE", extra={"subjects": subjects},
               secret=os.urandom(32)) != first


def test_a_generalised_column_is_named_for_what_it_holds():
    assert output_name("admission_date", "generalize", {"to": "year"}) == "admission_year"
    assert output_name("admission_date", "generalize", {"to": "month"}) == "admission_month"
    assert output_name("dob", "generalize", {"to": "age_band", "width": 10}) == "dob_age_band"
    assert output_name("district", "generalize", {"to": "region"}) == "district_region"
    assert output_name("diagnosis", "generalize", {"to": "prefix", "length": 3}) == "diagnosis_prefix3"
    assert output_name("hba1c", "generalize", {"to": "bins", "width": 2}) == "hba1c_bin"
    assert output_name("hba1c", "round", {"digits": 0}) == "hba1c"  # other transforms keep the name
