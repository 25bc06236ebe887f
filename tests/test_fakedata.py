"""The fake-patient generator: shape, validity of identifiers, determinism, formats."""

from __future__ import annotations

import hashlib

import duckdb

from datashare import identifiers as ids
from datashare.fakedata import COLUMNS, generate_patients

from .conftest import SAMPLE_CSV


def test_csv_shape_and_valid_hkids(tmp_path):
    out = tmp_path / "p.csv"
    generate_patients(out, 3000, seed=1)
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{out}')")
    assert [r[0] for r in con.execute("DESCRIBE t").fetchall()] == list(COLUMNS)
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 3000
    hkids = [r[0] for r in con.execute("SELECT hkid FROM t WHERE hkid IS NOT NULL").fetchall()]
    assert hkids and all(ids.is_valid_hkid(h) for h in hkids)
    assert len({h.strip() for h in hkids}) < len(hkids) or any("(" not in h for h in hkids)  # messy formats
    patients, rows = con.execute("SELECT count(DISTINCT patient_id), count(*) FROM t").fetchone()
    assert patients < rows  # several admissions per patient
    assert con.execute("SELECT count(*) FROM t WHERE hba1c IS NULL").fetchone()[0] > 0
    assert con.execute("SELECT count(*) FROM t WHERE discharge_date < admission_date").fetchone()[0] == 0
    mentions = con.execute("SELECT count(*) FROM t WHERE contains(note, name_en)").fetchone()[0]
    assert mentions > 0


def test_same_seed_same_file_other_seed_other_file(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    generate_patients(a, 500, seed=7)
    generate_patients(b, 500, seed=7)
    generate_patients(c, 500, seed=8)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b, c)]
    assert digest[0] == digest[1] != digest[2]


def test_parquet_output(tmp_path):
    out = tmp_path / "p.parquet"
    generate_patients(out, 200, seed=3, fmt="parquet")
    assert duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0] == 200


def test_committed_sample_is_the_generator_output(tmp_path):
    out = tmp_path / "sample.csv"
    generate_patients(out, 1000, seed=42)
    assert out.read_bytes() == SAMPLE_CSV.read_bytes()
