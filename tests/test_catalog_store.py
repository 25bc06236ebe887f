"""The catalog read back and classified, against real DuckDB files (registering: test_catalog_load.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datashare import catalog
from datashare.errors import DatashareError, InputError, UsageError
from datashare.init import init_workspace

ACTOR = "tester"


@pytest.fixture
def ws(tmp_path: Path):
    workspace, created = init_workspace(tmp_path / "ws", ACTOR)
    assert created
    return workspace


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def versions(ws) -> list[tuple[str, int]]:
    with ws.connect(read_only=True) as con:
        return [(d.name, d.version) for d in catalog.list_datasets(con)] + [
            (v.name, v.version) for d in catalog.list_datasets(con) for v in catalog.list_versions(con, d.name)
        ]


def audit_entries(ws) -> list[dict]:
    return [json.loads(line) for line in ws.audit_path.read_text(encoding="utf-8").splitlines()]


def test_classify_overrides_and_carries_to_the_next_version(ws, tmp_path):
    src = write(tmp_path / "a.csv", "id,score\n1,2\n")
    catalog.register(ws, src, "t", actor=ACTOR)
    updated = catalog.classify(ws, "t", {"score": "sensitive"}, actor=ACTOR)
    assert {c.name: (c.cls, c.overridden) for c in updated.columns}["score"] == ("sensitive", True)
    write(src, "id,score\n1,2\n3,4\n")
    v2 = catalog.register(ws, src, "t", actor=ACTOR).dataset
    assert {c.name: c.cls for c in v2.columns}["score"] == "sensitive"
    with pytest.raises(InputError, match="did you mean 'score'"):
        catalog.classify(ws, "t", {"scor": "quasi"}, actor=ACTOR)
    with pytest.raises(UsageError, match="unknown class"):
        catalog.classify(ws, "t", {"score": "secret"}, actor=ACTOR)


def test_direct_identifier_columns_keep_no_min_max(ws, tmp_path):
    src = write(tmp_path / "a.csv", "id,score\n1,2\n5,9\n")
    catalog.register(ws, src, "t", actor=ACTOR)
    ds = catalog.classify(ws, "t", {"id": "direct"}, actor=ACTOR)
    by_name = {c.name: c for c in ds.columns}
    assert (by_name["id"].min, by_name["id"].max) == (None, None)
    assert (by_name["score"].min, by_name["score"].max) == ("2", "9")


def test_versions_listed_without_columns_still_count_them(ws, tmp_path):
    src = write(tmp_path / "a.csv", "id,score\n1,2\n")
    catalog.register(ws, src, "t", actor=ACTOR)
    write(src, "id,score,ward\n1,2,A\n")
    catalog.register(ws, src, "t", actor=ACTOR)
    with ws.connect(read_only=True) as con:
        listed = catalog.list_versions(con, "t")
    assert [v.to_dict(with_columns=False)["n_columns"] for v in listed] == [2, 3]


def test_classify_writes_nothing_when_its_audit_entry_cannot_be_written(ws, tmp_path):
    src = write(tmp_path / "a.csv", "id,score\n1,2\n")
    catalog.register(ws, src, "t", actor=ACTOR)
    log = ws.audit_path.read_bytes()
    ws.audit_path.unlink()
    ws.audit_path.symlink_to("/dev/full")  # every write fails with "no space left on device"
    try:
        with pytest.raises((OSError, DatashareError)):
            catalog.classify(ws, "t", {"score": "sensitive"}, actor=ACTOR)
    finally:
        ws.audit_path.unlink()
        ws.audit_path.write_bytes(log)
    with ws.connect(read_only=True) as con:
        score = {c.name: c for c in catalog.resolve(con, "t").columns}["score"]
    assert (score.cls, score.overridden) != ("sensitive", True)
    assert score.overridden is False
