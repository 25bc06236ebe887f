"""Column classification on the sample data and on odd column names, with real DuckDB."""

from __future__ import annotations

import duckdb

from datashare.classify import DIRECT, OTHER, QUASI, SENSITIVE, classify_columns

from .conftest import SAMPLE_CSV


def classify_csv(path) -> dict:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{path}')")
    columns = [(r[0], r[1]) for r in con.execute("DESCRIBE t").fetchall()]
    return {name: c.cls for name, c in classify_columns(con, "t", columns).items()}, classify_columns(con, "t", columns)


def test_sample_columns_get_the_expected_classes():
    classes, details = classify_csv(SAMPLE_CSV)
    assert classes == {
        "patient_id": DIRECT, "hkid": DIRECT, "name_en": DIRECT, "name_zh": DIRECT, "sex": QUASI, "dob": QUASI,
        "phone": DIRECT, "email": DIRECT, "district": QUASI, "address": DIRECT, "admission_date": QUASI,
        "discharge_date": QUASI, "diagnosis": SENSITIVE, "hba1c": SENSITIVE, "ldl": SENSITIVE, "note": DIRECT,
    }
    assert details["hkid"].detected == "hkid" and details["hkid"].match_rate > 0.9
    assert details["note"].detected == "free_text_with_identifiers"
    assert details["phone"].detected == "phone"


def test_values_decide_over_uninformative_names(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text(
        'col a,"we""ird",select,姓名,x\n'
        + "".join(f"A123456(3),+852 9123 45{i:02d},a{i}@example.com,陳大文,{i}\n" for i in range(50)),
        encoding="utf-8",
    )
    classes, details = classify_csv(path)
    assert classes == {"col a": DIRECT, 'we"ird': DIRECT, "select": DIRECT, "姓名": DIRECT, "x": OTHER}
    assert (details["col a"].detected, details['we"ird'].detected, details["select"].detected) == (
        "hkid", "phone", "email")


def test_wrong_check_digits_do_not_make_an_hkid_column(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("code\n" + "".join(f"A12345{i % 10}(9)\n" for i in range(40)), encoding="utf-8")
    _, details = classify_csv(path)
    assert details["code"].detected != "hkid"
