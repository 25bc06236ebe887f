"""The privacy gate and risk: classes counted in DuckDB, the decision taken on their numbers; bounded memory."""

from __future__ import annotations

import csv
import json

import duckdb
import pytest
import yaml

from datashare.catalog.store import resolve
from datashare.errors import RefusedError
from datashare.export.privacy import (
    MEMORY_FLOOR_MB,
    MEMORY_PER_COLUMN_MB,
    SORTED_TEXT_SHARE,
    classify_rows,
    execute_bounded,
    gate,
    memory_limit_mb,
    output_text_bytes,
    risk,
    risk_drivers,
)
from datashare.policy.compiler import compile_policy
from datashare.policy.keys import key_parameters, keys_table_sql
from datashare.policy.model import load_policy
from datashare.workspace import open_workspace, os_user

from .conftest import PROJECT_ROOT, RESEARCH_POLICY, SAMPLE_CSV, TEST_PASSPHRASE, sample_workspace

REFUSED_POLICY = PROJECT_ROOT / "policies" / "hk-refused-by-k.yaml"
KEY_SECRET = bytes(range(32))  # one secret for every count, so that counts can be compared
WOMEN = {"rows": {"where": "sex = 'F'"}}  # a filter on a column no transform changes


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return open_workspace(sample_workspace(tmp_path_factory.mktemp("privacy") / "ws"))


def compiled_for(ws, loaded):
    with ws.connect(read_only=True) as con:
        dataset = resolve(con, "patients")
    return compile_policy(loaded, dataset.table, [(c.name, c.type) for c in dataset.columns])


def measured(ws, tmp_path, policy_file, **changes):
    """The policy (with ``changes`` to its privacy and rows sections), compiled, and its classes counted."""
    policy = yaml.safe_load(policy_file.read_text(encoding="utf-8"))
    for section, values in changes.items():
        policy.setdefault(section, {}).update(values)
    path = tmp_path / f"{policy['policy']}-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(policy), encoding="utf-8")
    loaded = load_policy(path)
    compiled = compiled_for(ws, loaded)
    with ws.connect(read_only=True) as con:
        con.execute(keys_table_sql(), key_parameters(KEY_SECRET, None))
        return loaded, compiled, classify_rows(con, compiled)


def women_in_the_sample() -> int:
    """The sample's rows that ``WOMEN`` keeps, counted in plain Python."""
    with SAMPLE_CSV.open(encoding="utf-8") as handle:
        return sum(1 for row in csv.DictReader(handle) if row["sex"] == "F")


def test_the_gate_passes_a_policy_within_its_budget(ws, tmp_path):
    loaded, compiled, stats = measured(ws, tmp_path, RESEARCH_POLICY)
    assert stats["suppressed"] / stats["rows_selected"] <= loaded.policy.privacy.max_suppression
    gate(loaded, compiled, stats)


def test_the_gate_refuses_over_the_budget_and_says_by_how_much(ws, tmp_path):
    loaded, compiled, stats = measured(ws, tmp_path, REFUSED_POLICY)
    rows, suppressed = stats["rows_selected"], stats["suppressed"]
    with pytest.raises(RefusedError) as caught:
        gate(loaded, compiled, stats)
    assert caught.value.message.startswith(
        f"refused by the privacy gate: {suppressed:,} of {rows:,} rows ({suppressed / rows:.1%}) are in ")
    assert "fail k=5" in caught.value.message and "at most 5.0%" in caught.value.message
    assert caught.value.exit_code == 3 and "datashare risk" in caught.value.hint


def test_the_budget_is_a_limit_that_may_be_reached_not_passed(ws, tmp_path):
    _, _, stats = measured(ws, tmp_path, RESEARCH_POLICY, **WOMEN)
    share = stats["suppressed"] / stats["rows_selected"]
    assert 0 < share < 1
    gate(*measured(ws, tmp_path, RESEARCH_POLICY, rows=WOMEN["rows"], privacy={"max_suppression": share}))
    with pytest.raises(RefusedError, match="refused by the privacy gate"):
        gate(*measured(ws, tmp_path, RESEARCH_POLICY, rows=WOMEN["rows"], privacy={"max_suppression": share * 0.999}))


def test_the_gate_refuses_an_empty_selection(ws, tmp_path):
    with pytest.raises(RefusedError, match="nothing to export"):
        gate(*measured(ws, tmp_path, RESEARCH_POLICY, rows={"where": "admission_date < DATE '1900-01-01'"}))


def test_classes_are_counted_over_the_rows_the_filter_selects(ws, tmp_path):
    _, _, counted = measured(ws, tmp_path, RESEARCH_POLICY, **WOMEN)
    selected = women_in_the_sample()
    assert counted["rows_selected"] == selected
    assert counted["rows_out"] == selected - counted["suppressed"]
    assert counted["k"] >= 5 and counted["l"] >= 2


def test_risk_reports_the_distribution_and_the_gates_decision_and_is_logged(ws):
    # the research policy's rows.where is on a shifted date: which rows it selects needs the secret
    report = risk(ws, os_user(), RESEARCH_POLICY, "patients", passphrase=TEST_PASSPHRASE)
    assert (report["gate"], report["k"], report["l"], report["policy"]) == ("pass", 5, 2, "hk-clinical-research")
    assert 0 < report["equivalence_classes"] <= report["records"]
    assert report["k_after_suppression"] >= 5
    # the suppressed rows add up small classes, so their count and share are withheld, or shown when all is large
    assert report["share_suppressed"] is None or report["share_suppressed"] <= 0.05
    entry = json.loads(ws.audit_path.read_text().splitlines()[-1])
    assert (entry["action"], entry["target"]["dataset"], entry["target"]["policy"]) == (
        "risk", "patients", "hk-clinical-research")


def test_risk_under_a_policy_the_gate_refuses(ws):
    report = risk(ws, os_user(), REFUSED_POLICY, "patients")
    assert report["gate"] == "refused" and report["share_suppressed"] > 0


def test_risk_drivers_count_each_quasi_identifier_removed_or_coarsened_exactly(ws):
    """The library's exact counts (the HTML report's chart), against a count in plain Python from the source."""
    loaded = load_policy(REFUSED_POLICY)  # dob, sex and district kept; k=5 people
    compiled = compiled_for(ws, loaded)
    with ws.connect(read_only=True) as con:
        con.execute(keys_table_sql(), key_parameters(KEY_SECRET, None))
        drivers = {(d["quasi_identifier"], d["change"]): d for d in risk_drivers(con, compiled)}
    with SAMPLE_CSV.open(encoding="utf-8", newline="") as handle:
        rows = [(r["patient_id"], r["dob"] or None, r["sex"] or None, r["district"] or None)
                for r in csv.DictReader(handle)]
    regroup = {("dob", "removed"): lambda r: r[2:], ("sex", "removed"): lambda r: (r[1], r[3]),
               ("district", "removed"): lambda r: r[1:3], ("dob", "coarsened"): lambda r: (r[1] and r[1][:7], *r[2:])}
    assert set(drivers) == set(regroup) and drivers[("dob", "coarsened")]["to"] == "to the month"
    for change, key in regroup.items():
        classes: dict[tuple, set] = {}
        for row in rows:
            classes.setdefault(key(row), set()).add(row[0])
        failing = [people for people in classes.values() if len(people) < 5]
        counted = sum(1 for row in rows if len(classes[key(row)]) < 5)
        assert (drivers[change]["classes_below_k"], drivers[change]["records_below_k"],
                drivers[change]["people_below_k"]) == (len(failing), counted, len(set().union(*failing))), change


def test_queries_run_under_a_memory_limit_and_again_without_it_when_they_need_more():
    con = duckdb.connect()
    con.execute("SET threads = 2")
    assert memory_limit_mb(con, 3) == MEMORY_FLOOR_MB
    assert memory_limit_mb(con, 40) == 40 * 2 * MEMORY_PER_COLUMN_MB  # a wide output gets room for its row groups
    # an output carrying much text gets room for its sort's merge (without it, 10M notes ran out after two minutes)
    assert memory_limit_mb(con, 3, SORTED_TEXT_SHARE * 400 * 2**20) == 400
    assert memory_limit_mb(con, 3, SORTED_TEXT_SHARE * 100 * 2**20) == MEMORY_FLOOR_MB

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


def test_the_text_an_export_sorts_is_measured_on_the_columns_it_keeps(ws):
    compiled = compiled_for(ws, load_policy(RESEARCH_POLICY))
    with ws.connect(read_only=True) as con:
        resolved = resolve(con, "patients", None)
        types = {c.name: c.type for c in resolved.columns}
        kept = [p.column for p in compiled.plan if p.sql is not None and types[p.column] == "VARCHAR"]
        dropped = [c for c, t in types.items() if t == "VARCHAR" and c not in kept]
        assert kept and dropped  # the research policy keeps some text columns and drops others
        expected = con.execute(f"SELECT {' + '.join(f'sum(strlen({c}))' for c in kept)} FROM {resolved.table}"
                               ).fetchone()[0]
        assert output_text_bytes(con, compiled, resolved.table, types) == expected > 0
