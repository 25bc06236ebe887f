"""Registering against real DuckDB files: versions, formats, encodings, bad input."""

from __future__ import annotations

import hashlib

import duckdb
import pytest

from datashare import catalog
from datashare.errors import InputError
from datashare.init import init_workspace

from .conftest import FIXTURES
from .test_catalog_store import ACTOR, audit_entries, versions, write


@pytest.fixture
def ws(tmp_path):
    return init_workspace(tmp_path / "ws", ACTOR)[0]


def test_register_records_version_fingerprint_and_schema(ws, tmp_path):
    src = write(tmp_path / "a.csv", "id,score,when\n1,2.5,2024-01-02\n2,3.5,2024-02-03\n")
    result = catalog.register(ws, src, "scores", actor=ACTOR, description="d", owner="o")
    ds = result.dataset
    assert not result.unchanged
    assert (ds.name, ds.version, ds.rows) == ("scores", 1, 2)
    assert ds.source_sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert ds.source_size == src.stat().st_size
    assert [(c.name, c.type) for c in ds.columns] == [("id", "BIGINT"), ("score", "DOUBLE"), ("when", "DATE")]
    assert ds.registered_by == ACTOR and ds.registered_at.endswith("Z")
    assert (ds.description, ds.owner) == ("d", "o")
    entry = audit_entries(ws)[-1]
    assert (entry["action"], entry["outcome"], entry["target"]["version"]) == ("register", "ok", 1)


def test_reregistration_adds_a_version_and_keeps_the_old_one(ws, tmp_path):
    src = write(tmp_path / "a.csv", "id\n1\n2\n")
    catalog.register(ws, src, "t", actor=ACTOR)
    again = catalog.register(ws, src, "t", actor=ACTOR)
    assert again.unchanged and again.dataset.version == 1
    write(src, "id\n1\n2\n3\n")
    second = catalog.register(ws, src, "t", actor=ACTOR)
    assert (second.dataset.version, second.dataset.rows, second.unchanged) == (2, 3, False)
    with ws.connect(read_only=True) as con:
        first = catalog.resolve(con, "t", 1)
        assert first.rows == 2
        assert con.execute(f"SELECT count(*) FROM {first.table}").fetchone()[0] == 2
        assert catalog.resolve(con, "t").version == 2
        with pytest.raises(InputError, match="no version 3"):
            catalog.resolve(con, "t", 3)


def test_parquet_and_ndjson(ws, tmp_path):
    parquet = tmp_path / "c.parquet"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT range AS id, 'x' || range AS label FROM range(10)) TO '{parquet}' (FORMAT parquet)")
    ndjson = write(tmp_path / "c.ndjson", '{"id": 1, "label": "a"}\n{"id": 2, "label": "b"}\n')
    assert catalog.register(ws, parquet, "cohort", actor=ACTOR).dataset.rows == 10
    assert catalog.register(ws, ndjson, "events", actor=ACTOR).dataset.rows == 2


def test_odd_column_names_are_quoted_not_refused(ws, tmp_path):
    src = write(tmp_path / "odd.csv", 'id,"my col","a""b",select,姓名,"x; DROP TABLE t"\n1,2,3,4,陳大文,6\n')
    ds = catalog.register(ws, src, "odd", actor=ACTOR).dataset
    assert [c.name for c in ds.columns] == ["id", "my col", 'a"b', "select", "姓名", "x; DROP TABLE t"]
    with ws.connect(read_only=True) as con:
        assert con.execute(f'SELECT "姓名" FROM {ds.table}').fetchone()[0] == "陳大文"


def test_utf8_bom_is_not_part_of_the_first_column_name(ws, tmp_path):
    src = tmp_path / "bom.csv"
    src.write_bytes("\ufeffname,n\n陳大文,1\n".encode())
    ds = catalog.register(ws, src, "bom", actor=ACTOR, encoding="utf-8-sig").dataset
    assert ds.columns[0].name == "name"


def test_big5hkscs_decodes_without_mojibake(ws):
    src = FIXTURES / "patients_big5.csv"
    expected = FIXTURES / "patients_big5.expected.csv"
    ds = catalog.register(ws, src, "big5", actor=ACTOR, encoding="big5hkscs").dataset
    with ws.connect(read_only=True) as con:
        got = con.execute(f"SELECT * FROM {ds.table}").fetchall()
        want = con.execute(f"SELECT * FROM read_csv('{expected}', header=true)").fetchall()
    assert got == want
    text = expected.read_text(encoding="utf-8")
    assert "許" in text and "邨" in text


def test_big5_read_as_utf8_is_an_error_that_suggests_the_encoding(ws):
    with pytest.raises(InputError) as caught:
        catalog.register(ws, FIXTURES / "patients_big5.csv", "big5", actor=ACTOR)
    assert "big5hkscs" in caught.value.diagnostics()
    assert versions(ws) == []
    assert audit_entries(ws)[-1]["outcome"] == "error"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"a,b\n", "has no rows"),
        (b"a,b,c\n1,2,3\n4,5\n6,7,8\n", "ragged"),
        (b"a,b\n1,2\n3,4,5\n", "ragged"),
    ],
)
def test_bad_csv_is_refused_and_leaves_the_catalog_as_it_was(ws, tmp_path, content, message):
    src = tmp_path / "bad.csv"
    src.write_bytes(content)
    with pytest.raises(InputError, match=message):
        catalog.register(ws, src, "bad", actor=ACTOR)
    assert versions(ws) == []


def test_error_messages_quote_no_cell_values(ws, tmp_path):
    secret_value = "A123456(3)"
    src = write(tmp_path / "bad.csv", f"hkid,b\n{secret_value},2\nZ,2,3\n")
    with pytest.raises(InputError) as caught:
        catalog.register(ws, src, "bad", actor=ACTOR)
    assert secret_value not in caught.value.diagnostics()
    assert secret_value not in ws.audit_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["Patients", "1x", "a-b", "a b", "x" * 64, "", "p;drop", "病人", "patients\n"])
def test_invalid_dataset_names_are_refused(ws, tmp_path, name):
    src = write(tmp_path / "a.csv", "id\n1\n")
    with pytest.raises(InputError, match="invalid dataset name"):
        catalog.register(ws, src, name, actor=ACTOR)


def test_missing_file(ws, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        catalog.register(ws, tmp_path / "nope.csv", "x", actor=ACTOR)


def test_unchanged_catalog_after_a_failed_load_keeps_earlier_versions(ws, tmp_path):
    src = write(tmp_path / "a.csv", "id\n1\n2\n")
    first = catalog.register(ws, src, "t", actor=ACTOR).dataset
    write(src, "id\n1\n2\n3,4\n")
    with pytest.raises(InputError, match="ragged"):
        catalog.register(ws, src, "t", actor=ACTOR)
    with ws.connect(read_only=True) as con:
        assert [v.version for v in catalog.list_versions(con, "t")] == [1]
        assert catalog.resolve(con, "t").source_sha256 == first.source_sha256
