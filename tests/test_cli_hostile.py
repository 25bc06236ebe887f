"""Hostile input through the real CLI: files, dataset names, policy files, export destinations, CSVs and limits.

Every case ends in one clear message and a documented exit code, never a traceback, and a failed command
changes nothing but adding its own audit entry. Most cases are property tests (hypothesis) with the known
attacks as explicit examples.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import subprocess
import tempfile
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from datashare.catalog.sources import looks_like_data

from .conftest import RESEARCH_POLICY as RESEARCH
from .conftest import SAMPLE_CSV, make_workspace, run_cli, sample_workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return sample_workspace(tmp_path_factory.mktemp("hostile") / "ws")


DOCUMENTED_EXIT_CODES = (0, 1, 2, 3, 4)


def snapshot(home: Path) -> tuple[str, list[dict], dict[str, bytes]]:
    """What a failed command must not change: the catalog listing, the log so far, config and approvals."""
    listed = run_cli("datasets", "--json", home=home)
    assert listed.code == 0, listed.stderr
    lines = (home / "audit.log").read_bytes().split(b"\n")  # not splitlines(): entries may hold U+2028 and the like
    entries = [json.loads(x) for x in lines if x]
    files = {name: (home / name).read_bytes() for name in ("config.json", "approvals.json") if (home / name).exists()}
    return hashlib.sha256(listed.stdout.encode()).hexdigest(), entries, files


def assert_clear_message(result, args: list[str]) -> None:
    """One clear error: no traceback, no "internal error", a documented exit code, and a message on stderr."""
    assert result.code in DOCUMENTED_EXIT_CODES, (args, result.code, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout, (args, result.stderr)
    assert "internal error" not in result.stderr.lower(), (args, result.stderr)
    if result.code != 0:
        assert result.stderr.strip(), args
        assert result.stderr.startswith(("datashare: error: ", "Usage: ")), (args, result.stderr)


def assert_unchanged_but_logged(before, after) -> None:
    """The workspace is as it was, but for one new denied or error entry (and the snapshots' own reads)."""
    assert after[0] == before[0], "the catalog listing changed"
    assert after[2] == before[2], "config.json or approvals.json changed"
    assert after[1][: len(before[1])] == before[1], "earlier audit entries changed"
    new = [e for e in after[1][len(before[1]):] if e["action"] != "datasets"]
    assert [e["outcome"] for e in new] in (["error"], ["denied"]), new


def run_hostile(home: Path, args: list[str], *, codes=(1,)):
    """Run a command that may fail; if it fails it must say so clearly and change nothing."""
    before = snapshot(home)
    result = run_cli(*args, home=home)
    assert_clear_message(result, args)
    assert result.code in codes, (args, result.code, result.stderr)
    if result.code not in (0, 2):  # a usage error is caught before anything runs, so it logs nothing
        assert_unchanged_but_logged(before, snapshot(home))
    return result


def assert_failed_cleanly(home: Path, args: list[str], code: int, message: str) -> None:
    before = snapshot(home)
    result = run_cli(*args, home=home)
    assert result.code == code, (args, result.stderr)
    assert message in result.stderr, result.stderr
    assert_clear_message(result, args)
    assert result.stdout == ""
    assert_unchanged_but_logged(before, snapshot(home))


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("name", "data", "message"), [
    ("random.csv", bytes(range(256)) * 4, "not"),
    ("ragged.csv", b"a,b\n1,2,3,4\n", "ragged"),
    ("latin.csv", "name\nJos\u00e9\n".encode("latin-1"), "not valid utf-8"),
    ("empty.csv", b"", "is empty"),
    ("header.csv", b"a,b,c\n", "has no rows"),
    ("bad.parquet", b"PAR1 not really", "not a readable Parquet file"),
    ("bad.json", b"{not json", "not readable JSON"),
])
def test_bad_files(ws, tmp_path, name, data, message):
    assert_failed_cleanly(ws, ["register", str(write(tmp_path, name, data)), "--name", "hostile"], 1, message)


def test_wide_long_and_odd_headers_register(ws, tmp_path):
    wide = write(tmp_path, "wide.csv", (",".join(f"c{i}" for i in range(10_000)) + "\n"
                                         + ",".join("1" for _ in range(10_000)) + "\n").encode())
    result = run_cli("register", str(wide), "--name", "wide", "--json", home=ws)
    assert result.code == 0, result.stderr
    big_cell = write(tmp_path, "cell.csv", b"id,note\n1,\"" + b"x" * (1 << 20) + b"\"\n")
    assert run_cli("register", str(big_cell), "--name", "bigcell", home=ws).code == 0
    nul = write(tmp_path, "nul.csv", b"a,b\n1,\x002\n")  # a NUL byte inside a cell is kept as data
    assert run_cli("register", str(nul), "--name", "nul", home=ws).code == 0
    odd = write(tmp_path, "odd.csv", b'a,a,,"",b\n1,2,3,4,5\n')
    shown = run_cli("register", str(odd), "--name", "odd", "--json", home=ws)
    assert shown.code == 0, shown.stderr
    names = [c["name"] for c in run_cli("show", "odd", "--json", home=ws).json()["columns"]]
    assert len(names) == len(set(names)) == 5


def test_missing_parent_folders_of_out_are_created(ws, tmp_path):
    nested = tmp_path / "new" / "folders" / "run1"
    result = run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(nested), *EXPORT, home=ws)
    assert result.code == 0, result.stderr
    assert (nested / "manifest.json").exists()


SETTINGS = settings(max_examples=5, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
VALID_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
EXPORT = ["--purpose", "clinical-research", "--recipient", "cicor"]


argv_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=70)
bad_names = st.one_of(
    st.sampled_from(["x; DROP TABLE meta.versions", "a'b", 'a"b', "../x", "a/b", "..", "/etc/passwd", "病人",
                     "Patients", "patients--", "1abc", "a" * 64, "a b", "a\tb", "-x", "--name"]),
    argv_text,
).filter(lambda name: not VALID_NAME.fullmatch(name))


@SETTINGS
@given(name=bad_names, command=st.sampled_from(["register", "show", "export", "risk"]))
@example(name="../x", command="register")
@example(name="a/b", command="export")
def test_hostile_dataset_names(ws, name, command):
    args = {
        "register": ["register", str(SAMPLE_CSV), "--name", name],
        "show": ["show", name],
        "export": ["export", name, "--policy", str(RESEARCH), "--out", "/nonexistent-never-made", *EXPORT],
        "risk": ["risk", name, "--policy", str(RESEARCH)],
    }[command]
    if command != "register":
        args = [args[0], "--", *args[1:]] if name.startswith("-") else args
    result = run_hostile(ws, args, codes=(1, 2))
    if result.code == 1:
        assert "dataset name" in result.stderr or "no dataset" in result.stderr, result.stderr
    assert not Path("/nonexistent-never-made").exists()


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), argv_text)
yaml_values = st.recursive(yaml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(argv_text, inner, max_size=4)), max_leaves=20)


def research() -> dict:
    return yaml.safe_load(RESEARCH.read_text(encoding="utf-8"))


POLICY_PATHS = [("policy",), ("version",), ("applies_to",), ("purposes",), ("recipients",), ("expires",),
                ("columns",), ("columns", "phone"), ("waivers", "admission_date"), ("columns", "dob", "width"),
                ("columns", "dob", "transform"), ("columns", "patient_id", "transform"), ("privacy",),
                ("privacy", "k_anonymity"), ("privacy", "max_suppression"), ("privacy", "l_diversity"),
                ("privacy", "quasi_identifiers"), ("rows",), ("rows", "where")]


def nested(depth: int) -> str:
    return "columns: " + "{a: " * depth + "1" + "}" * depth + "\n"


@st.composite
def hostile_policies(draw) -> bytes:
    """Random YAML; the research policy with a value of the wrong type, an unknown key, or a huge string;
    deep nesting."""
    kind = draw(st.sampled_from(["random", "wrong type", "unknown key", "huge string", "deep"]))
    if kind == "random":
        return yaml.safe_dump(draw(yaml_values), allow_unicode=True).encode("utf-8")
    if kind == "deep":
        return nested(draw(st.integers(min_value=50, max_value=5000))).encode()
    policy = research()
    path = draw(st.sampled_from(POLICY_PATHS))
    *parents, key = path
    node = policy
    for part in parents:
        node = node[part]
    if kind == "wrong type":
        node[key] = draw(yaml_values.filter(lambda v: type(v) is not type(node[key])))
    elif kind == "unknown key":
        holder = node[key] if isinstance(node[key], dict) else node
        holder[draw(argv_text.filter(lambda k: k not in holder))] = draw(yaml_scalars)
    else:
        node[key] = "x" * draw(st.integers(min_value=1 << 16, max_value=2 << 20))
    return yaml.safe_dump(policy, allow_unicode=True, width=1 << 30).encode("utf-8")


@SETTINGS
@given(text=hostile_policies())
@example(text=nested(3000).encode())
@example(text=("columns: " + "[" * 3000 + "]" * 3000).encode())
@example(text=b"description: " + b"x" * (2 << 20))
@example(text=RESEARCH.read_bytes().replace(b"k_anonymity: 5", b"k_anonymity: five"))
@example(text=RESEARCH.read_bytes() + b"colums: {}\n")
@example(text=RESEARCH.read_bytes().replace(b"admission_date >= DATE '2020-01-01'", b"1=1; DROP TABLE meta.versions"))
def test_hostile_policy_files(ws, text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "hostile.yaml"
        path.write_bytes(text)
        checked = run_cli("policy", "check", str(path), "--dataset", "patients", home=ws)
        assert checked.code in (0, 1), checked.stderr
        approved = run_hostile(ws, ["policy", "approve", str(path)], codes=(0, 1, 3))
    if checked.code == 1:
        assert "hostile.yaml" in checked.stderr and "Traceback" not in checked.stderr, checked.stderr
        assert approved.code != 0, "a policy that does not check was approved"
    if len(text) > 1 << 20:
        assert checked.code == 1 and "at most 1 MiB" in checked.stderr, checked.stderr


def chattr(flag: str, path: Path) -> bool:
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


leaf_names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"), min_size=1,
                     max_size=30).filter(lambda n: n not in (".", "..") and not n.startswith("-"))


DESTINATION_MESSAGES = {"file": "not a folder", "symlink to folder": "symbolic link"}


@SETTINGS
@given(kind=st.sampled_from(["file", "under a file", "symlink to folder", "symlink to file", "dangling symlink",
                             "non-empty folder", "inside an unwritable folder"]), leaf=leaf_names)
@example(kind="file", leaf="run1")
@example(kind="symlink to folder", leaf="link")
@example(kind="inside an unwritable folder", leaf="out")
def test_hostile_export_destinations(ws, kind, leaf):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        elsewhere = root / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "keep.txt").write_text("keep")
        out = root / leaf
        locked = None
        if kind == "file":
            out.write_text("keep")
        elif kind == "under a file":
            (root / "plain").write_text("keep")
            out = root / "plain" / leaf
        elif kind.startswith("symlink") or kind == "dangling symlink":
            target = {"symlink to folder": root / "empty", "symlink to file": elsewhere / "keep.txt",
                      "dangling symlink": root / "missing"}[kind]
            if kind == "symlink to folder":
                target.mkdir()
            out.symlink_to(target)
        elif kind == "non-empty folder":
            out.mkdir()
            (out / "keep.txt").write_text("keep")
        else:
            locked = root / "locked"
            locked.mkdir()
            if not chattr("+i", locked):  # no immutable flag on this filesystem: a "folder" that is a file
                locked.rmdir()
                locked.write_text("keep")
            out = locked / leaf
        before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        try:
            result = run_hostile(ws, ["export", "patients", "--policy", str(RESEARCH), "--out", str(out), *EXPORT])
        finally:
            if locked is not None and locked.is_dir():
                chattr("-i", locked)
        assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before, "the export left something"
        assert (elsewhere / "keep.txt").read_text() == "keep"
        assert DESTINATION_MESSAGES.get(kind, "") in result.stderr, result.stderr


def test_an_out_folder_that_cannot_be_replaced_fails_cleanly(ws, tmp_path):
    """An existing empty --out that even root cannot rename (immutable) is one clear error, not an internal one."""
    out = tmp_path / "immutable"
    out.mkdir()
    assert chattr("+i", out), "chattr +i is needed for this case"
    try:
        run_hostile(ws, ["export", "patients", "--policy", str(RESEARCH), "--out", str(out), *EXPORT])
    finally:
        chattr("-i", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["immutable"] and list(out.iterdir()) == []

CSV_SETTINGS = settings(max_examples=6, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ENCODINGS = ["utf-8", "big5hkscs", "latin-1", "utf-16"]
HOSTILE_NAMES = ["", "a", "a", "A", "\x00", "a\x00b", "病人", "陳大文", "../x", "a/b", "..\\x",
                 "x'; DROP TABLE meta.versions; --", 'say "hi"', "it's", "a,b", " padded ", "SELECT", "rowid",
                 "\u202eevil", "e\u0301", "\U0001f600"]


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


@CSV_SETTINGS
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


# (a name shaped like a value, 陳大文 say, is refused as a column name: a headerless file's first row would become
# the names; tests/test_catalog_sources.py covers that)
column_names = st.one_of(
    st.sampled_from([n for n in HOSTILE_NAMES if n.strip() and n.isprintable()]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Zl", "Zp")), min_size=1, max_size=16),
).filter(lambda n: any(c.isalpha() for c in n) and n == n.strip() and not looks_like_data(n))


@CSV_SETTINGS
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


# --- input limits and odd failures: one message, the documented exit code, JSON under --json.



@pytest.fixture(scope="module")
def limits_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    home = root / "ws"
    make_workspace(home)
    assert run_cli("register", str(SAMPLE_CSV), "--name", "patients", home=home).code == 0
    assert run_cli("policy", "approve", str(RESEARCH), home=home).code == 0
    return home, root


def failed_cleanly(result, code: int, words: str) -> None:
    assert result.code == code, result.stderr
    assert result.stderr.startswith("datashare: error:") and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert result.json().get("ok") is False or result.json().get("valid") is False


def test_policy_from_dev_zero(limits_ws):
    home, _ = limits_ws
    for args in (["policy", "check", "/dev/zero"], ["risk", "patients", "--policy", "/dev/zero"]):
        failed_cleanly(run_cli(*args, "--json", home=home, timeout=60), 1, "not a regular file")


@pytest.mark.parametrize("where", ["(" * 100 + "sex = 'F'" + ")" * 100, "NOT " * 100 + "sex = 'F'"])
def test_deeply_nested_row_filters(limits_ws, where):
    home, root = limits_ws
    policy = root / "deep.yaml"
    policy.write_text(RESEARCH.read_text(encoding="utf-8").replace(
        "  where: \"admission_date >= DATE '2020-01-01'\"", f"  where: \"{where}\""), encoding="utf-8")
    failed_cleanly(run_cli("policy", "check", str(policy), "--json", home=home), 1, "nested too deeply")
    failed_cleanly(run_cli("risk", "patients", "--policy", str(policy), "--json", home=home), 1, "nested too deeply")


def test_an_out_name_of_300_characters(limits_ws):
    home, root = limits_ws
    out = root / ("x" * 300)
    result = run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(out), "--purpose",
                     "clinical-research", "--recipient", "cicor", "--json", home=home)
    failed_cleanly(result, 1, "too long")
    assert [p.name for p in root.iterdir() if p.name.startswith(".x")] == []
