"""Column classification over real DuckDB tables: the sample data, odd column names, values against names."""

from __future__ import annotations

import duckdb
import pytest

from datashare.catalog.detect import DIRECT, OTHER, QUASI, SENSITIVE, ColumnClassification, classify_columns
from datashare.core.sql import sql_string_literal

from .conftest import FIXTURES, SAMPLE_CSV


def classify_sql(select: str, **kwargs) -> dict[str, ColumnClassification]:
    """Classify the columns of a table made by ``select`` in a fresh in-memory DuckDB."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS {select}")
    columns = [(r[0], r[1]) for r in con.execute("DESCRIBE t").fetchall()]
    return classify_columns(con, "t", columns, **kwargs)


def classify_csv(path) -> dict[str, ColumnClassification]:
    return classify_sql(f"SELECT * FROM read_csv({sql_string_literal(str(path))})")


def test_sample_columns_get_the_expected_classes():
    found = classify_csv(SAMPLE_CSV)
    assert {name: (c.cls, c.detected) for name, c in found.items()} == {
        "patient_id": (DIRECT, "record_id"), "hkid": (DIRECT, "hkid"), "name_en": (DIRECT, "name_en"),
        "name_zh": (DIRECT, "name_zh"), "sex": (QUASI, "sex"), "dob": (QUASI, "dob"), "phone": (DIRECT, "phone"),
        "email": (DIRECT, "email"), "district": (QUASI, "district"), "address": (DIRECT, "address"),
        "admission_date": (QUASI, "date"), "discharge_date": (QUASI, "date"), "diagnosis": (SENSITIVE, "diagnosis"),
        "hba1c": (SENSITIVE, "lab_value"), "ldl": (SENSITIVE, "lab_value"),
        "note": (DIRECT, "free_text_with_identifiers"),
    }
    assert found["hkid"].match_rate == 1.0  # the blanks are not counted, every written HKID is valid
    assert 0.05 < found["note"].match_rate < 1.0
    assert found["hba1c"].to_dict() == {"class": SENSITIVE, "detected": "lab_value", "match_rate": 0.0}


def test_chinese_fixture_columns():
    found = classify_csv(FIXTURES / "patients_big5.expected.csv")
    assert {name: c.cls for name, c in found.items()} == {
        "patient_id": DIRECT, "hkid": DIRECT, "name_zh": DIRECT, "sex": QUASI, "district": QUASI,
        "address": DIRECT, "diagnosis": SENSITIVE,
    }
    assert found["name_zh"].detected == "name_zh" and found["district"].detected == "district"


def test_odd_column_names_and_values_over_names(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text(
        '"my col","a""b",select,姓名,x,"order"\n'
        + "".join(f"A123456(3),+852 9123 45{i:02d},a{i}@example.com,陳大文,{i},Wan Chai\n" for i in range(50)),
        encoding="utf-8",
    )
    found = classify_csv(path)
    assert {name: (c.cls, c.detected) for name, c in found.items()} == {
        "my col": (DIRECT, "hkid"), 'a"b': (DIRECT, "phone"), "select": (DIRECT, "email"),
        "姓名": (DIRECT, "name_zh"), "x": (OTHER, None), "order": (QUASI, "district"),
    }


def test_wrong_check_digits_are_not_called_hkids_but_stay_direct(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("code\n" + "".join(f"A12345{i % 10}(9)\n" for i in range(40)), encoding="utf-8")
    found = classify_csv(path)["code"]
    assert (found.cls, found.detected) == (DIRECT, "hkid_format")


def test_values_decide_whatever_the_type_or_name():
    found = classify_sql(
        "SELECT 90000000 + i AS amount, {'who': 'CHAN Tai Man'} AS info, "
        "CASE WHEN i % 10 = 0 THEN 'call 9123 4567 re ' || i ELSE 'stable, review ' || i END AS remarks, "
        "'review ' || i AS comments "
        "FROM range(100) t(i)"
    )
    assert (found["amount"].cls, found["amount"].detected) == (DIRECT, "phone")  # a phone column loaded as BIGINT
    assert found["info"].cls == DIRECT  # a name inside a STRUCT
    assert (found["remarks"].cls, found["remarks"].detected) == (DIRECT, "free_text_with_identifiers")
    assert found["remarks"].match_rate == pytest.approx(0.1)
    assert (found["comments"].cls, found["comments"].detected) == (SENSITIVE, "clinical_note")


def test_names_and_types_decide_when_values_say_nothing():
    found = classify_sql(
        "SELECT DATE '1950-01-01' + CAST(i AS INTEGER) AS date_of_birth, i % 90 AS age, 'M' AS gender, "
        "i / 10.0 AS hba1c, 'metformin' AS medication, TIMESTAMP '2024-01-01 10:00' AS seen_at, "
        "i AS score, NULL::VARCHAR AS empty, 'HN' || lpad(CAST(i AS VARCHAR), 8, '0') AS mrn, "
        "'P' || (100000 + i) AS patient_no "
        "FROM range(30) t(i)"
    )
    assert {name: (c.cls, c.detected) for name, c in found.items()} == {
        "date_of_birth": (QUASI, "dob"), "age": (QUASI, "age"), "gender": (QUASI, "sex"),
        "hba1c": (SENSITIVE, "lab_value"), "medication": (SENSITIVE, "diagnosis"), "seen_at": (QUASI, "date"),
        "score": (OTHER, None), "empty": (OTHER, None), "mrn": (DIRECT, "record_id"),
        "patient_no": (DIRECT, "record_id"),  # its values look like ICD-10 codes; the name says identifier
    }


def test_a_sample_of_a_large_table_is_enough():
    found = classify_sql(
        "SELECT 'REF-' || i AS ref, chr(CAST(65 + i % 3 AS INTEGER)) || '123456(' || "
        "['3', '6', '9'][1 + i % 3] || ')' AS ident, 'E11.9' AS dx FROM range(200000) t(i)",
        sample_rows=500,
    )
    assert (found["ident"].cls, found["ident"].detected) == (DIRECT, "hkid")  # A123456(3) B123456(6) C123456(9)
    assert (found["dx"].cls, found["dx"].detected) == (SENSITIVE, "diagnosis")
    assert found["ref"].cls == OTHER
    with pytest.raises(ValueError):
        classify_columns(duckdb.connect(), "t", [("x", "VARCHAR")], sample_rows=0)


def test_classification_is_immutable_and_serialisable():
    c = ColumnClassification(DIRECT, "hkid", 0.97)
    assert c.to_dict() == {"class": "direct", "detected": "hkid", "match_rate": 0.97}
    with pytest.raises(AttributeError):
        c.cls = OTHER  # type: ignore[misc]
