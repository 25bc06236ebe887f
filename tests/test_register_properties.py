"""Property tests: any well-formed CSV round-trips; any bytes end in success or one clear InputError."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datashare import catalog
from datashare.errors import InputError
from datashare.init import init_workspace

from .conftest import cli_env

LETTERS = "abcXYZ陳許邨功蓋é"
cell = st.builds(lambda first, rest: first + rest, st.sampled_from(LETTERS),
                 st.text(alphabet=LETTERS + ' ,;"\n\'|\t0123456789()', max_size=12))
header = st.lists(st.text(alphabet=LETTERS + " _\"'", min_size=1, max_size=8), min_size=1, max_size=5,
                  unique_by=lambda s: s.strip().lower()).filter(lambda h: all(c.strip() for c in h))


@st.composite
def tables(draw):
    columns = draw(header)
    rows = draw(st.lists(st.lists(cell, min_size=len(columns), max_size=len(columns)), min_size=1, max_size=8))
    return columns, rows


def fresh_workspace(tmp_path_factory):
    return init_workspace(tmp_path_factory.mktemp("ws"), "tester")[0]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tables())
def test_well_formed_csv_round_trips(tmp_path_factory, table):
    columns, rows = table
    ws = fresh_workspace(tmp_path_factory)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(columns)
    writer.writerows(rows)
    path = ws.home / "in.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    dataset = catalog.register(ws, path, "t", actor="tester").dataset
    with ws.connect(read_only=True) as con:
        got = con.execute(f"SELECT * FROM {dataset.table}").fetchall()
    assert [c.name for c in dataset.columns] == [c.strip() for c in columns]  # header names are trimmed
    assert [list(r) for r in got] == rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=0, max_size=400))
def test_any_bytes_register_or_fail_cleanly(tmp_path_factory, data):
    ws = fresh_workspace(tmp_path_factory)
    path = ws.home / "in.csv"
    path.write_bytes(data)
    try:
        catalog.register(ws, path, "t", actor="tester")
    except InputError:
        with ws.connect(read_only=True) as con:
            assert catalog.list_datasets(con) == []


def test_killed_load_leaves_no_half_registered_version(tmp_path):
    """kill -9 in the middle of a large load: the catalog opens and holds only complete versions."""
    from datashare.fakedata import generate_patients

    big = tmp_path / "big.csv"
    generate_patients(big, 400_000, seed=5)
    small = tmp_path / "small.csv"
    small.write_text("id\n1\n2\n", encoding="utf-8")
    home = tmp_path / "ws"
    env = cli_env(home)
    run = [sys.executable, "-m", "datashare"]
    assert subprocess.run([*run, "init"], env=env, capture_output=True).returncode == 0
    first = subprocess.run([*run, "register", str(small), "--name", "small"], env=env, capture_output=True)
    assert first.returncode == 0
    for delay in (0.4, 0.9, 1.5):
        proc = subprocess.Popen([*run, "register", str(big), "--name", "big"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        from datashare.workspace import open_workspace

        ws = open_workspace(home)
        with ws.connect(read_only=True) as con:
            names = {d.name: d for d in catalog.list_datasets(con)}
            assert names["small"].rows == 2
            if "big" in names:
                assert con.execute(f"SELECT count(*) FROM {names['big'].table}").fetchone()[0] == 400_000
                assert names["big"].rows == 400_000
    again = subprocess.run([*run, "register", str(small), "--name", "small2"], env=env, capture_output=True)
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("encoding", ["utf-8", "big5hkscs"])
def test_chinese_text_in_either_encoding(tmp_path, encoding):
    ws = init_workspace(tmp_path / "ws", "tester")[0]
    path = tmp_path / "zh.csv"
    path.write_bytes("姓名,地址\n許功蓋,石硤尾邨\n".encode(encoding))
    dataset = catalog.register(ws, path, "zh", actor="tester", encoding=encoding).dataset
    with ws.connect(read_only=True) as con:
        assert con.execute(f"SELECT * FROM {dataset.table}").fetchall() == [("許功蓋", "石硤尾邨")]
    assert Path(dataset.source_path) == path.absolute()
