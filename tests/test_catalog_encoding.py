"""A file's encoding judged from its bytes: a wrong one is refused with the one to try, a right one is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from datashare import catalog
from datashare.catalog.encoding import normalise_encoding
from datashare.init import init_workspace

from .conftest import FIXTURES, register_refusal

ACTOR = "tester"


@pytest.fixture
def ws(tmp_path: Path):
    return init_workspace(tmp_path / "ws", ACTOR)[0]


@pytest.mark.parametrize(("given", "name"), [(None, None), ("UTF8", "utf8"), (" Big5_HKSCS ", "big5hkscs"),
                                             ("big5-hkscs", "big5hkscs"), ("Latin-1", "latin-1")])
def test_encoding_names_are_normalised(given, name):
    assert normalise_encoding(given) == name


def test_utf16_with_byte_order_mark_is_read_without_asking(ws, tmp_path):
    src = tmp_path / "u16.csv"
    src.write_bytes("姓名,地址\n許功蓋,石硤尾邨\n".encode("utf-16"))
    ds = catalog.register(ws, src, "t", actor=ACTOR).dataset
    assert ds.source_encoding == "utf-16"
    with ws.connect(read_only=True) as con:
        assert con.execute(f"SELECT * FROM {ds.table}").fetchall() == [("許功蓋", "石硤尾邨")]


@pytest.mark.parametrize(("data", "encoding", "advice"), [
    ("id,name\n1,陳大文\n".encode("utf-16-le"), None, "--encoding utf-16"),
    (b"\xfe\xff" + "id,name\n1,陳大文\n".encode("utf-16-be"), None, "iconv -f UTF-16BE"),
    ("id,name\n1,陳大文\n".encode("utf-16"), "big5hkscs", "--encoding utf-16"),
    ("id,name\n1,陳大文\n2,x\n".encode(), "utf-16", "--encoding utf-8"),
    ("id,name\n1,陳大文\n".encode(), "latin-1", "UTF-8 is the default"),
    ("id,name\n1,陳大文\n".encode(), "big5", "UTF-8 is the default"),
    ("id,name\n1,Françoise\n".encode("latin-1"), None, "--encoding latin-1"),
])
def test_wrong_encoding_names_the_one_to_try(ws, tmp_path, data, encoding, advice):
    src = tmp_path / "enc.csv"
    src.write_bytes(data)
    message = register_refusal(ws, src, ACTOR, encoding=encoding)
    assert advice in message
    assert "陳大文" not in message and "Exception" not in message and "Error" not in message


def test_big5_read_as_latin1_says_big5hkscs(ws):
    message = register_refusal(ws, FIXTURES / "patients_big5.csv", ACTOR, encoding="latin-1")
    assert "--encoding big5hkscs" in message
    assert "A123456" not in message and "InvalidInput" not in message


def test_plain_latin1_file_with_latin1_option(ws, tmp_path):
    src = tmp_path / "l1.csv"
    src.write_bytes("id,name\n1,Françoise Müller\n".encode("latin-1"))
    ds = catalog.register(ws, src, "t", actor=ACTOR, encoding="latin-1").dataset
    with ws.connect(read_only=True) as con:
        assert con.execute(f"SELECT name FROM {ds.table}").fetchone()[0] == "Françoise Müller"


def test_a_stray_nul_in_a_cell_is_not_taken_for_utf16(ws, tmp_path):
    src = tmp_path / "nulcell.csv"
    src.write_bytes(b"a,b\n1,\x002\n3,4\n")
    assert catalog.register(ws, src, "t", actor=ACTOR).dataset.rows == 2
