"""Hostile CSV files as property tests through the real CLI: random bytes, mixed encodings in one file, NUL
bytes in cells and in the header, big cells, duplicate, empty and hostile column names. Each file either
registers (and reads back) or fails with one clear message, a documented exit code and no change."""

from __future__ import annotations

import csv
import io
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from .conftest import SAMPLE_CSV, run_cli
from .test_hostile import run_hostile

SETTINGS = settings(max_examples=6, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ENCODINGS = ["utf-8", "big5hkscs", "latin-1", "utf-16"]
HOSTILE_NAMES = ["", "a", "a", "A", "\x00", "a\x00b", "病人", "陳大文", "../x", "a/b", "..\\x",
                 "x'; DROP TABLE meta.versions; --", 'say "hi"', "it's", "a,b", " padded ", "SELECT", "rowid",
                 "\u202eevil", "e\u0301", "\U0001f600"]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile_csv") / "ws"
    assert run_cli("init", home=home).code == 0
    assert run_cli("register", str(SAMPLE_CSV), "--name", "patients", home=home).code == 0
    return home


def encoded(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


cells = st.one_of(
    st.binary(max_size=12),
    st.tuples(st.text(max_size=12), st.sampled_from(ENCODINGS)).map(lambda pair: encoded(*pair)),
    st.sampled_from([b"\x00", b"a\x00b", "陳大文".encode("big5hkscs"), "許功".encode(), b"\xff\xfe", b'"', b'""',
                     b"\r", b"\n", b",", b"\x1a", b"\xef\xbb\xbf"]),
    st.integers(min_value=1 << 10, max_value=1 << 20).map(lambda n: b'"' + b"x" * n + b'"'),
)
headers = st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(max_size=10)).map(lambda name: encoded(name, "utf-8"))


@st.composite
def csv_files(draw) -> bytes:
    """A whole file: random bytes, or a header and rows whose cells mix encodings, NULs, quotes and big cells."""
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(st.binary(max_size=400))
    width = draw(st.integers(min_value=1, max_value=5))
    header = b",".join(draw(st.lists(headers, min_size=width, max_size=width)))
    rows = draw(st.lists(st.lists(cells, min_size=width, max_size=width), max_size=4))
    newline = draw(st.sampled_from([b"\n", b"\r\n"]))
    return newline.join([header, *(b",".join(row) for row in rows)]) + newline


def check_registered(home: Path, name: str) -> None:
    """A file that registered reads back: its columns are named, uniquely, and its rows are counted."""
    shown = run_cli("show", name, "--json", home=home)
    assert shown.code == 0, shown.stderr
    version = shown.json()
    names = [column["name"] for column in version["columns"]]
    assert len(names) == len(set(names)) == version["n_columns"] >= 1
    assert all(n and not any(unicodedata.category(c) == "Cc" for c in n) for n in names), names
    assert version["rows"] >= 1


@SETTINGS
@given(data=csv_files(), encoding=st.sampled_from([None, *ENCODINGS]))
@example(data=b"a,b\n" + "陳大文,1\n".encode() + "許功,2\n".encode("big5hkscs"), encoding=None)
@example(data=b"a\x00b,c\n1,2\n", encoding=None)
@example(data=b"id,note\n1,\"" + b"x" * (1 << 20) + b"\"\n2,\"\x00\"\n", encoding=None)
@example(data=b'a,a,,"",A\n1,2,3,4,5\n', encoding=None)
def test_any_csv_registers_or_fails_cleanly(ws, data, encoding):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "hostile.csv"
        path.write_bytes(data)
        args = ["register", str(path), "--name", "hostile", *(["--encoding", encoding] if encoding else [])]
        result = run_hostile(ws, args, codes=(0, 1))
    if result.code == 0:
        check_registered(ws, "hostile")
    else:
        assert "hostile.csv" in result.stderr  # the message names the file, not a line of it


def csv_bytes(header: list[str], rows: list[list[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerows([header, *rows])
    return out.getvalue().encode("utf-8")


column_names = st.one_of(
    st.sampled_from([n for n in HOSTILE_NAMES if n.strip() and n.isprintable()]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp")), min_size=1, max_size=16),
).filter(lambda n: any(c.isalpha() for c in n) and n == n.strip())


@SETTINGS
@given(names=st.lists(column_names, min_size=1, max_size=6, unique_by=str.lower))
@example(names=["x'; DROP TABLE meta.versions; --", "../x", "a/b", "病人", 'say "hi"'])
def test_column_names_are_kept_as_they_are(ws, names):
    """Column names may be anything printable: SQL, quotes, path separators, Chinese; they are kept exactly."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "columns.csv"
        path.write_bytes(csv_bytes(names, [[i + 1 for i in range(len(names))], [7] * len(names)]))
        result = run_hostile(ws, ["register", str(path), "--name", "columns", "--json"], codes=(0,))
    shown = run_cli("show", "columns", "--json", home=ws)
    assert shown.code == 0, shown.stderr
    assert [column["name"] for column in shown.json()["columns"]] == names
    assert result.json()["rows"] == 2
