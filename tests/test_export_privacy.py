"""The privacy gate and risk: classes counted in DuckDB, the decision taken on their numbers; bounded memory."""

from __future__ import annotations

import csv
import json
import os

import duckdb
import pytest

from datashare.catalog.store import resolve
from datashare.errors import RefusedError
from datashare.export.privacy import (
    MEMORY_FLOOR_MB,
    MEMORY_PER_COLUMN_MB,
    classify_rows,
    execute_bounded,
    gate,
    memory_limit_mb,
    risk,
)
from datashare.policy.compiler import compile_policy
from datashare.policy.keys import key_parameters, keys_table_sql
from datashare.policy.model import load_policy
from datashare.workspace import open_workspace, os_user

from .conftest import PROJECT_ROOT, RESEARCH_POLICY, SAMPLE_CSV, sample_workspace

REFUSED_POLICY = PROJECT_ROOT / "policies" / "hk-refused-by-k.yaml"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return open_workspace(sample_workspace(tmp_path_factory.mktemp("privacy") / "ws"))


@pytest.fixture(scope="module")
def research(ws):
    loaded = load_policy(RESEARCH_POLICY)
    with ws.connect(read_only=True) as con:
        dataset = resolve(con, "patients")
    return loaded, compile_policy(loaded, dataset.table, [(c.name, c.type) for c in dataset.columns])


def selected_rows() -> tuple[int, int]:
    """Bounds on the sample's rows that the research policy's ``rows.where`` keeps, counted in plain Python.

    The filter applies to the shifted date (±30 days): rows a month past the cut-off are surely in, rows a
    month before it surely out.
    """
    with SAMPLE_CSV.open(encoding="utf-8") as handle:
        dates = [row["admission_date"] for row in csv.DictReader(handle) if row["admission_date"]]
    return sum(1 for d in dates if d >= "2020-01-31"), sum(1 for d in dates if d >= "2019-12-02")


def stats(rows: int, suppressed: int) -> dict:
    return {"rows_selected": rows, "suppressed": suppressed, "failing_classes": 2, "people_suppressed": 3,
            "failing_after": 0}


def test_the_gate_passes_up_to_the_suppression_budget(research):
    loaded, compiled = research
    assert loaded.policy.privacy.max_suppression == 0.05
    gate(loaded, compiled, stats(100, 0))
    gate(loaded, compiled, stats(100, 5))  # exactly the budget


def test_the_gate_refuses_over_the_budget_and_says_by_how_much(research):
    loaded, compiled = research
    with pytest.raises(RefusedError) as caught:
        gate(loaded, compiled, stats(1000, 51))
    assert caught.value.message == (
        "refused by the privacy gate: 51 of 1,000 rows (5.1%) are in 2 quasi-identifier combinations that fail "
        "k=5 people and l=2 (with every row of the 3 people in them); the policy allows suppressing at most 5.0%")
    assert caught.value.exit_code == 3 and "datashare risk" in caught.value.hint


def test_the_gate_refuses_an_empty_selection(research):
    with pytest.raises(RefusedError, match="nothing to export"):
        gate(*research, stats(0, 0))


def test_classes_are_counted_over_the_rows_the_filter_selects(ws, research):
    _, compiled = research
    surely_in, at_most = selected_rows()
    with ws.connect(read_only=True) as con:
        con.execute(keys_table_sql(), key_parameters(os.urandom(32), None))
        counted = classify_rows(con, compiled)
    assert surely_in <= counted["rows_selected"] <= at_most
    assert counted["rows_out"] == counted["rows_selected"] - counted["suppressed"]
    assert counted["people_out"] == counted["people_selected"] - counted["people_suppressed"]
    assert counted["k"] >= 5 and counted["l"] >= 2


def test_risk_reports_the_distribution_and_the_gates_decision_and_is_logged(ws):
    report = risk(ws, os_user(), RESEARCH_POLICY, "patients")
    assert (report["gate"], report["k"], report["l"], report["policy"]) == ("pass", 5, 2, "hk-clinical-research")
    surely_in, at_most = selected_rows()
    assert surely_in <= report["records"] <= at_most and 0 < report["equivalence_classes"] <= report["records"]
    assert report["k_unit"] == "people" and report["people"] < report["records"]
    assert report["k_after_suppression"] >= 5 and report["share_suppressed"] <= 0.05
    entry = json.loads(ws.audit_path.read_text().splitlines()[-1])
    assert (entry["action"], entry["target"]["dataset"], entry["target"]["policy"]) == (
        "risk", "patients", "hk-clinical-research")


def test_risk_under_a_policy_the_gate_refuses(ws):
    report = risk(ws, os_user(), REFUSED_POLICY, "patients")
    assert report["gate"] == "refused" and report["share_suppressed"] > 0


def test_queries_run_under_a_memory_limit_and_again_without_it_when_they_need_more():
    con = duckdb.connect()
    con.execute("SET threads = 2")
    assert memory_limit_mb(con, 3) == MEMORY_FLOOR_MB
    assert memory_limit_mb(con, 40) == 40 * 2 * MEMORY_PER_COLUMN_MB  # a wide output gets room for its row groups

    big = "SELECT len(list(i)) AS n FROM range(50000000) t(i)"  # one list of 400 MB: it cannot spill
    limited = duckdb.connect()
    limited.execute(f"SET memory_limit = '{MEMORY_FLOOR_MB}MB'")
    small = limited.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    with pytest.raises(duckdb.OutOfMemoryException):
        limited.execute(big).fetchall()

    con.execute("CREATE TABLE seen AS SELECT current_setting('memory_limit') AS v WITH NO DATA")
    execute_bounded(con, "INSERT INTO seen SELECT current_setting('memory_limit')", 1)  # one column: the floor
    assert con.execute("SELECT v FROM seen").fetchone()[0] == small
    execute_bounded(con, f"CREATE TABLE big AS {big}", 1)
    assert con.execute("SELECT n FROM big").fetchone()[0] == 50_000_000
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] != small
    assert con.execute(big).fetchone()[0] == 50_000_000  # the connection's own limit is back
