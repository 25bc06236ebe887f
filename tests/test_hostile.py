"""Hostile input through the real CLI: every case ends in a clear message and a documented exit code,
never a traceback, and a failed command changes nothing but adding its own audit entry."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from .conftest import PROJECT_ROOT, SAMPLE_CSV, run_cli, sample_workspace

RESEARCH = PROJECT_ROOT / "policies" / "hk-clinical-research.yaml"


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


@pytest.mark.parametrize("name", ["x; DROP TABLE meta.versions", "a'b", 'a"b', "../etc", "a/b", "病人", "X", ""])
def test_bad_dataset_names(ws, name):
    assert_failed_cleanly(ws, ["register", str(SAMPLE_CSV), "--name", name], 1, "invalid dataset name")


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


def test_export_destinations(ws, tmp_path):
    base = ["export", "patients", "--policy", str(RESEARCH), "--purpose", "clinical-research", "--recipient",
            "cicor", "--out"]
    a_file = write(tmp_path, "file", b"x")
    assert_failed_cleanly(ws, [*base, str(a_file)], 1, "not a folder")
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    assert_failed_cleanly(ws, [*base, str(link)], 1, "symbolic link")
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if os.access(locked, os.W_OK):  # root can write anywhere: use a folder that cannot be created instead
            assert_failed_cleanly(ws, [*base, str(a_file / "sub" / "out")], 1, "cannot create the folder")
        else:
            assert_failed_cleanly(ws, [*base, str(locked / "out")], 1, "cannot write")
    finally:
        os.chmod(locked, 0o700)
    assert list(target.iterdir()) == []
    nested = tmp_path / "new" / "folders" / "run1"  # missing parent folders are created
    assert run_cli(*base, str(nested), home=ws).code == 0 and (nested / "manifest.json").exists()


def test_hostile_policy_files(ws, tmp_path):
    deep = write(tmp_path, "deep.yaml", ("columns: " + "[" * 3000 + "]" * 3000).encode())
    assert_failed_cleanly(ws, ["policy", "check", str(deep)], 1, "deep.yaml")
    huge = write(tmp_path, "huge.yaml", b"description: " + b"x" * (2 << 20))
    assert_failed_cleanly(ws, ["policy", "check", str(huge)], 1, "at most 1 MiB")
    injected = RESEARCH.read_text().replace("admission_date >= DATE '2020-01-01'",
                                            "1=1; DROP TABLE meta.versions")
    bad = write(tmp_path, "inject.yaml", injected.encode())
    assert_failed_cleanly(ws, ["policy", "check", str(bad), "--dataset", "patients"], 1, "rows.where")
