"""`policy suggest`'s search over real DuckDB tables: the pruned search and the exhaustive one agree, each node is
judged by the privacy gate's own numbers, and the policy written reproduces them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datashare.catalog.store import ColumnInfo, DatasetVersion, classify
from datashare.errors import InputError, RefusedError
from datashare.export.suggest import Request, _check_request, policy_document, run_search, suggest
from datashare.identifiers import DISTRICTS
from datashare.policy.model import load_policy
from datashare.workspace import open_workspace

from .conftest import sample_workspace

REFERENCE = dt.date(2026, 1, 1)
COLUMNS = [ColumnInfo("pid", "VARCHAR", "direct", "record_id"), ColumnInfo("sex", "VARCHAR", "quasi", "sex"),
           ColumnInfo("district", "VARCHAR", "quasi", "district"), ColumnInfo("admitted", "DATE", "quasi", "date"),
           ColumnInfo("dx", "VARCHAR", "sensitive", "diagnosis"), ColumnInfo("note", "VARCHAR", "direct",
                                                                             "free_text_with_identifiers")]


def _dataset(con, rows: list[tuple]) -> DatasetVersion:
    con.execute("CREATE OR REPLACE TABLE t (pid VARCHAR, sex VARCHAR, district VARCHAR, admitted DATE, dx VARCHAR, "
                "note VARCHAR)")
    if rows:
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, 'x')", rows)
    return DatasetVersion("t", 1, '"t"', len(rows), "t.csv", "csv", None, 0, "", "me", "", columns=COLUMNS)


@st.composite
def patients(draw):
    """A few people with a sex and district each, and one to three admissions on random days, random diagnoses."""
    rows = []
    for person in range(draw(st.integers(1, 10))):
        sex, district = draw(st.sampled_from("MF")), draw(st.sampled_from(list(DISTRICTS)[:6]))
        for _ in range(draw(st.integers(1, 3))):
            day = dt.date(2024, 1, 1) + dt.timedelta(days=draw(st.integers(0, 500)))
            rows.append((f"P{person}", sex, district, day, draw(st.sampled_from(["E11", "I10", "J18"]))))
    return rows


@settings(max_examples=3, deadline=None)
@given(patients(), st.integers(1, 4), st.sampled_from([1, 2]), st.sampled_from([0.0, 0.1, 0.3]))
def test_pruned_and_exhaustive_search_find_the_same_optimum(rows, k, l_min, budget):
    request = Request(k=k, l=l_min, sensitive="dx" if l_min > 1 else None, max_suppression=budget, subject="pid")
    with duckdb.connect() as con:
        dataset = _dataset(con, rows)
        lattice, pruned, pruned_eval = run_search(con, dataset, request, REFERENCE)
        _, full, full_eval = run_search(con, dataset, request, REFERENCE, pruned=False)
        assert (pruned.optimum, pruned.runner_up, pruned.passing) == (full.optimum, full.runner_up, full.passing)
        assert pruned.evaluated <= full.evaluated == lattice.size == 2 * 3 * 6
        assert pruned_eval.figures(lattice, pruned.optimum) == full_eval.figures(lattice, full.optimum)


@settings(max_examples=12, deadline=None)
@given(patients(), st.integers(1, 4), st.sampled_from([1, 2]), st.sampled_from([0.0, 0.1, 0.3, 0.6]), st.booleans())
def test_the_members_shortcut_judges_every_node_as_the_gate_does(rows, k, l_min, budget, missing):
    if missing:  # a missing subject is one person with every other missing one; missing values are values
        rows = [(None if i % 4 == 0 else pid, sex, None if i % 3 == 0 else district, day, None if i % 5 == 0 else dx)
                for i, (pid, sex, district, day, dx) in enumerate(rows)]
    rows += rows[::2]  # the same admission twice: one row of the members table counts two
    request = Request(k=k, l=l_min, sensitive="dx" if l_min > 1 else None, max_suppression=budget, subject="pid")
    with duckdb.connect() as con:
        dataset = _dataset(con, rows)
        lattice, fast, fast_eval = run_search(con, dataset, request, REFERENCE, pruned=False)
        _, slow, slow_eval = run_search(con, dataset, request, REFERENCE, pruned=False, fast=False)
        assert fast_eval.fast and not slow_eval.fast
        assert fast_eval.passed == slow_eval.passed  # every node: pass or fail
        assert len(fast_eval.passed) == lattice.size
        assert (fast.optimum, fast.runner_up, fast.passing) == (slow.optimum, slow.runner_up, slow.passing)
        top = tuple(len(h.levels) - 1 for h in lattice.hierarchies)  # every column dropped: no class to fail
        assert fast_eval._passes_members(top) == slow_eval._passes_gate(top) == bool(rows)


def test_losses_are_generalised_information_loss():
    island = [d for d, (_, region) in DISTRICTS.items() if region == "Hong Kong Island"][:2]
    kowloon = [d for d, (_, region) in DISTRICTS.items() if region == "Kowloon"][:2]
    districts = island + kowloon  # two regions of two districts each, every district twice
    rows = [(f"P{i}", "MF"[i % 2], districts[i % 4], dt.date(2024, 1, 1 + i), "E11") for i in range(8)]
    with duckdb.connect() as con:
        lattice, _, _ = run_search(con, _dataset(con, rows), Request(k=1, subject="pid"), REFERENCE)
    sex, district, admitted = lattice.losses
    assert sex == [0.0, 1.0]
    assert district == [0.0, pytest.approx(8 * (2 - 1) / (8 * (4 - 1))), 1.0]  # each row: (2 - 1) / (4 - 1)
    assert admitted[0] == 0.0 and admitted[2:] == [pytest.approx(1.0)] * 4  # one month, quarter, year: all
    # 2024-01-01 is a Monday: days 1-7 make one week (6/7 lost each), day 8 another (nothing lost)
    assert admitted[1] == pytest.approx(7 * 6 / (8 * 7))


def test_the_written_policy_is_complete_and_default_deny():
    rows = [(f"P{i}", "MF"[i % 2], "Sha Tin", dt.date(2024, 1, 1 + i % 3), "E11") for i in range(12)]
    with duckdb.connect() as con:
        dataset = _dataset(con, rows)
        request = Request(k=2, subject="pid", keep=("sex",))
        lattice, outcome, evaluator = run_search(con, dataset, request, REFERENCE)
        optimum = evaluator.figures(lattice, outcome.optimum)
    document = policy_document(dataset, request, optimum, dt.date(2026, 11, 30))
    assert document["columns"]["pid"] == {"transform": "pseudonymize"}  # the subject links a person's rows
    assert document["columns"]["note"] == {"transform": "drop"}  # free text
    assert document["columns"]["sex"] == {"transform": "keep"}
    assert "dx" not in document["columns"]  # not asked for: dropped by default
    assert document["privacy"]["subject"] == "pid" and document["privacy"]["k_anonymity"] == 2
    assert document["expires"] == dt.date(2027, 11, 30)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """The sample, with its discharge dates classed *other* (not released): a lattice of 216 nodes, not 1,296."""
    ws = open_workspace(sample_workspace(tmp_path_factory.mktemp("suggest") / "ws"))
    classify(ws, "patients", {"discharge_date": "other"}, actor=ws.config()["created_by"])
    return ws


def test_suggest_on_the_sample_writes_a_policy_that_loads(ws, tmp_path):
    actor = ws.config()["created_by"]
    out = tmp_path / "suggested.yaml"
    request = Request(k=5, max_suppression=0.05, keep=("sex", "admission_date"))
    with pytest.raises(RefusedError, match="no generalisation"):  # exact dates single people out whatever else
        suggest(ws, actor, "patients", request, out=out)
    assert not out.exists()
    found = suggest(ws, actor, "patients", Request(k=5, max_suppression=0.05, sensitive="diagnosis", l=2,
                                                   keep=("sex",)), out=out)
    assert found["subject"] == "patient_id" and found["k_unit"] == "people"
    assert found["evaluated"] < found["nodes"] and found["optimum"]["share_suppressed"] <= 0.05
    loaded = load_policy(Path(found["policy_file"]))
    assert loaded.policy.privacy.k_anonymity == 5 and loaded.policy.privacy.l_diversity.l == 2
    with pytest.raises(InputError, match="exists"):
        suggest(ws, actor, "patients", Request(k=5), out=out)
    with pytest.raises(InputError, match="no column"):
        suggest(ws, actor, "patients", Request(k=5, keep=("nope",)))
    with pytest.raises(RefusedError, match="classified direct"):
        suggest(ws, actor, "patients", Request(k=5, keep=("hkid",)))


def test_requests_that_would_release_free_text_or_identifiers_are_refused():
    columns = [*COLUMNS, ColumnInfo("remarks", "VARCHAR", "sensitive", "clinical_note")]
    dataset = DatasetVersion("t", 1, '"t"', 0, "t.csv", "csv", None, 0, "", "me", "", columns=columns)
    with pytest.raises(InputError, match="free text"):
        _check_request(dataset, Request(k=2, keep=("remarks",)))
    with pytest.raises(RefusedError, match="classified direct"):
        _check_request(dataset, Request(k=2, sensitive="pid", l=2))
    with pytest.raises(InputError, match="quasi-identifier"):
        _check_request(dataset, Request(k=2, sensitive="district", l=2))
    with pytest.raises(InputError, match="--l needs --sensitive"):
        _check_request(dataset, Request(k=2, l=2))
