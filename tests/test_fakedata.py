"""The fake-patient generator: shape, validity of identifiers, one identity per patient, determinism, formats."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from datashare import identifiers as ids
from datashare.core.sql import sql_string_literal
from datashare.errors import InputError
from datashare.fakedata import COLUMNS, generate_patients
from datashare.policy.dialects import DUCKDB

from .conftest import SAMPLE_CSV, run_cli


def load(path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    reader = "read_parquet" if str(path).endswith(".parquet") else "read_csv"
    con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}({sql_string_literal(str(path))})")
    return con


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "p.csv"
    generate_patients(out, 5000, seed=1)
    return out


def test_csv_shape_types_and_valid_hkids(generated):
    con = load(generated)
    schema = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE t)").fetchall())
    assert list(schema) == list(COLUMNS)
    assert (schema["dob"], schema["admission_date"], schema["hba1c"], schema["ldl"]) == ("DATE", "DATE", "DOUBLE",
                                                                                         "DOUBLE")
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 5000
    hkids = [r[0] for r in con.execute("SELECT hkid FROM t WHERE hkid IS NOT NULL").fetchall()]
    assert 0.9 * 5000 < len(hkids) < 5000  # a few blanks
    assert all(ids.is_valid_hkid(h) for h in hkids)
    assert any("(" not in h for h in hkids) and any(h != h.upper() for h in hkids) and any(" " in h for h in hkids)
    phones = [r[0] for r in con.execute("SELECT phone FROM t WHERE phone IS NOT NULL").fetchall()]
    assert {p[:4] == "+852" for p in phones} == {True, False} and any("-" in p for p in phones)
    assert con.execute("SELECT count(*) FROM t WHERE hba1c IS NULL").fetchone()[0] > 0
    assert con.execute("SELECT count(*) FROM t WHERE ldl IS NULL").fetchone()[0] > 0
    assert set(r[0] for r in con.execute("SELECT DISTINCT district FROM t").fetchall()) == set(ids.DISTRICTS)
    assert set(r[0] for r in con.execute("SELECT DISTINCT sex FROM t").fetchall()) == {"M", "F"}


def test_one_identity_per_patient_and_plausible_dates(generated):
    con = load(generated)
    patients, rows = con.execute("SELECT count(DISTINCT patient_id), count(*) FROM t").fetchone()
    assert patients < rows * 0.8  # several admissions per patient
    one_identity = con.execute(
        "SELECT count(*) FROM (SELECT patient_id FROM t GROUP BY patient_id HAVING count(DISTINCT name_en) > 1 "
        "OR count(DISTINCT dob) > 1 OR count(DISTINCT upper(regexp_replace(hkid, '[^A-Za-z0-9]', '', 'g'))) > 1)"
    ).fetchone()[0]
    assert one_identity == 0
    shared_hkids = con.execute(
        "SELECT count(*) FROM (SELECT upper(regexp_replace(hkid, '[^A-Za-z0-9]', '', 'g')) h FROM t "
        "WHERE hkid IS NOT NULL GROUP BY h HAVING count(DISTINCT patient_id) > 1)"
    ).fetchone()[0]
    assert shared_hkids == 0
    dob_min, dob_max, adm_min, adm_max = con.execute(
        "SELECT min(dob), max(dob), min(admission_date), max(admission_date) FROM t").fetchone()
    assert dob_min.year >= 1930 and dob_max.year <= 2020 and adm_min.year >= 2018 and adm_max.year <= 2026
    assert con.execute("SELECT count(*) FROM t WHERE discharge_date < admission_date OR admission_date < dob"
                       ).fetchone()[0] == 0


def test_diagnoses_are_skewed_and_notes_mention_identifiers(generated):
    con = load(generated)
    top, top_count = con.execute("SELECT diagnosis, count(*) c FROM t GROUP BY 1 ORDER BY c DESC LIMIT 1").fetchone()
    assert top == "E11.9" and top_count > 5000 * 0.08
    assert con.execute("SELECT count(DISTINCT diagnosis) FROM t").fetchone()[0] > 30
    mentions = con.execute(
        "SELECT count_if(contains(note, name_en)), count_if(contains(note, name_zh)), "
        "count_if(regexp_matches(note, ?)) FROM t", [ids.HKID_PATTERN]).fetchone()
    assert all(count > 0 for count in mentions)
    redacted = con.execute(f"SELECT count_if(regexp_matches({ids.sql_redact_identifiers('note', DUCKDB)}, ?)) FROM t",
                           [ids.HKID_PATTERN]).fetchone()[0]
    assert redacted == 0


def test_same_seed_same_file_other_seed_other_file(tmp_path):
    # More rows than one DuckDB row group (122,880) spans many vectors and threads: the order must still be fixed.
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    generate_patients(a, 130_000, seed=7)
    generate_patients(b, 130_000, seed=7)
    generate_patients(c, 1_000, seed=8)
    assert digest(a) == digest(b)
    assert a.read_bytes()[:200_000] != c.read_bytes()[:200_000]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv", "c.csv"]  # no temporary file left


def test_parquet_output_is_readable_and_holds_the_same_records(tmp_path):
    parquet, csv = tmp_path / "p.parquet", tmp_path / "p.csv"
    generate_patients(parquet, 400, seed=3, fmt="parquet")
    generate_patients(csv, 400, seed=3)
    from_parquet = load(parquet).execute("SELECT * FROM t").fetchall()
    from_csv = load(csv).execute("SELECT * FROM t").fetchall()
    assert len(from_parquet) == 400 and from_parquet == from_csv


def test_bad_arguments_write_nothing(tmp_path):
    for rows, fmt in ((0, "csv"), (10, "xlsx")):
        with pytest.raises(InputError):
            generate_patients(tmp_path / "x.csv", rows, fmt=fmt)
    assert list(tmp_path.iterdir()) == []


def test_generate_writes_parquet_and_refuses_no_rows(tmp_path):
    out = tmp_path / "cli.parquet"
    made = run_cli("generate", "--rows", "50", "--out", str(out), "--seed", "9", home=tmp_path / "unused")
    assert made.code == 0, made.stderr
    assert load(out).execute("SELECT count(*) FROM t").fetchone()[0] == 50
    bad = run_cli("generate", "--rows", "0", "--out", str(out), home=tmp_path / "unused")
    assert bad.code == 2 and "Traceback" not in bad.stderr


def test_committed_sample_is_the_generator_output(tmp_path):
    out = tmp_path / "sample.csv"
    generate_patients(out, 1000, seed=42)
    assert out.read_bytes() == SAMPLE_CSV.read_bytes()


def test_generate_needs_a_file_name_it_can_read_a_format_from(tmp_path):
    cases = ((tmp_path / "x.xlsx", []), (Path("-"), []), (tmp_path, []), (tmp_path / "y.txt", ["--format", "json"]))
    for out, extra in cases:
        run = run_cli("generate", "--rows", "5", "--out", str(out), *extra, home=tmp_path / "unused", cwd=tmp_path)
        assert run.code == 2 and "Traceback" not in run.stderr, (out, run.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    ok = run_cli("generate", "--rows", "5", "--out", str(tmp_path / "z.txt"), "--format", "csv", home=tmp_path / "u")
    assert ok.code == 0 and (tmp_path / "z.txt").read_text().startswith("patient_id,")
    again = run_cli("generate", "--rows", "3", "--out", str(tmp_path / "z.txt"), "--format", "csv",
                    home=tmp_path / "u")
    assert again.code == 1 and "already exists" in again.stderr
    assert len((tmp_path / "z.txt").read_text().splitlines()) == 6
