"""The content digest: the same rows give the same digest whatever the files and their order; a change does not."""

from __future__ import annotations

import duckdb
import pytest

from datashare.errors import VerificationError
from datashare.export.digest import compare_content, content_digest

ROWS = "SELECT i AS id, 'name ' || i AS name, CASE WHEN i % 7 = 0 THEN NULL ELSE i / 3 END AS x FROM range(500) t(i)"


def write(con, path, query, fmt="parquet"):
    options = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
    con.execute(f"COPY ({query}) TO '{path}' ({options})")


def test_digest_does_not_depend_on_files_or_order_and_catches_a_changed_row(tmp_path):
    columns = ["id", "name", "x"]
    with duckdb.connect() as con:
        write(con, tmp_path / "one.parquet", ROWS + " ORDER BY i")
        write(con, tmp_path / "a.parquet", f"SELECT * FROM ({ROWS}) WHERE id >= 200 ORDER BY hash(id)")
        write(con, tmp_path / "b.parquet", f"SELECT * FROM ({ROWS}) WHERE id < 200 ORDER BY id DESC")
        write(con, tmp_path / "changed.parquet", f"SELECT id, name, CASE WHEN id = 3 THEN 2 ELSE x END AS x "
                                                 f"FROM ({ROWS})")
        write(con, tmp_path / "one.csv", ROWS, fmt="csv")
        whole = content_digest(con, [tmp_path / "one.parquet"], "parquet", columns)
        split = content_digest(con, [tmp_path / "b.parquet", tmp_path / "a.parquet"], "parquet", columns)
        changed = content_digest(con, [tmp_path / "changed.parquet"], "parquet", columns)
        as_csv = content_digest(con, [tmp_path / "one.csv"], "csv", columns)
    assert whole == split and whole["rows"] == 500 and len(whole["digest"]) == 16
    assert changed["rows"] == 500 and changed["digest"] != whole["digest"]
    assert as_csv["rows"] == 500  # CSV is read as the text it holds


def test_compare_content_measures_both_and_names_the_difference(tmp_path):
    columns = ["id", "name", "x"]
    first, second, third = tmp_path / "first", tmp_path / "second", tmp_path / "third"
    for folder in (first, second, third):
        folder.mkdir()
    with duckdb.connect() as con:
        write(con, first / "d.parquet", ROWS)
        write(con, second / "d.part-00000.parquet", f"SELECT * FROM ({ROWS}) WHERE id % 2 = 0")
        write(con, second / "d.part-00001.parquet", f"SELECT * FROM ({ROWS}) WHERE id % 2 = 1")
        write(con, third / "d.parquet", f"SELECT * FROM ({ROWS}) WHERE id > 0")

    def manifest(folder, claimed=None):
        files = [{"name": p.name} for p in sorted(folder.iterdir())]
        return {"files": files, "columns_out": columns, **({"content": claimed} if claimed else {})}

    said = compare_content(first, manifest(first), second, manifest(second))
    assert said.startswith(f"same content as {second}: 500 rows")
    with pytest.raises(VerificationError, match="different content.*500 rows.*499"):
        compare_content(first, manifest(first), third, manifest(third))
    with pytest.raises(VerificationError, match="changed content"):
        compare_content(first, manifest(first, {"rows": 500, "digest": "0" * 16}), second, manifest(second))
