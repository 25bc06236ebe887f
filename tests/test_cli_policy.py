"""Policies through the CLI: `policy check --json` for scripts, and `risk` and `export` against an
independent computation of the equivalence classes in plain Python from the source file."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter, defaultdict

import duckdb
import pytest

from datashare.identifiers import district_region

from .conftest import PROJECT_ROOT, SAMPLE_CSV, make_workspace, run_cli

RESEARCH = PROJECT_ROOT / "policies" / "hk-clinical-research.yaml"
K, L, MAX_SUPPRESSION = 5, 2, 0.05  # as in the research policy
REFERENCE = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    base = tmp_path_factory.mktemp("policy-cli")
    home = base / "ws"

    def cli(*args):
        return run_cli(*[str(a) for a in args], home=home)

    make_workspace(home)
    assert cli("register", SAMPLE_CSV, "--name", "patients").code == 0
    assert cli("policy", "approve", RESEARCH).code == 0
    return base, cli


def _age_band(dob: str) -> str | None:
    if not dob:
        return None
    born = dt.date.fromisoformat(dob)
    age = REFERENCE.year - born.year - ((REFERENCE.month, REFERENCE.day) < (born.month, born.day))
    low = age // 10 * 10
    return f"{low}-{low + 9}"


def expected_classes() -> dict[tuple, list[str]]:
    """(age band, sex, region) -> diagnosis prefixes of the rows the research policy selects."""
    classes: dict[tuple, list[str]] = defaultdict(list)
    with SAMPLE_CSV.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if not row["admission_date"] or row["admission_date"] < "2020-01-01":
                continue
            key = (_age_band(row["dob"]), row["sex"] or None, district_region(row["district"]))
            classes[key].append(row["diagnosis"][:3] if row["diagnosis"] else None)
    return classes


def test_risk_matches_an_independent_count(ws):
    """Every figure against a count in plain Python; a count of records below k is withheld as "<5"."""
    base, cli = ws
    result = cli("risk", "patients", "--policy", RESEARCH, "--json")
    assert result.code == 0, result.stderr
    risk = result.json()
    classes = expected_classes()
    sizes = Counter(len(rows) for rows in classes.values())
    diversity = {key: len({d for d in rows if d is not None}) for key, rows in classes.items()}
    records = sum(len(rows) for rows in classes.values())
    failing = [key for key, rows in classes.items() if len(rows) < K or diversity[key] < L]

    def shown(count: int) -> int | str:
        return count if count >= K else f"<{K}"

    assert risk["records"] == records >= K
    assert risk["equivalence_classes"] == len(classes)
    assert [(b["class_size"], b["classes"]) for b in risk["class_sizes"]] == [
        (size, count if size * count >= K else f"<{K}") for size, count in sorted(sizes.items())]
    assert risk["unique_records"] == shown(sizes.get(1, 0))
    assert risk["records_below_k"] == shown(sum(len(rows) for rows in classes.values() if len(rows) < K))
    suppressed = sum(len(classes[key]) for key in failing)
    assert risk["rows_suppressed"] == shown(suppressed)
    assert risk["max_prosecutor_risk"] == (f">{1 / K:.2g}" if min(sizes) < K else pytest.approx(1 / min(sizes)))
    assert risk["avg_prosecutor_risk"] == pytest.approx(len(classes) / records)
    assert risk["min_l"] == min(diversity.values())
    l_counts = Counter(diversity.values())
    l_records = Counter()
    for key, rows in classes.items():
        l_records[diversity[key]] += len(rows)
    assert [(b["l"], b["classes"]) for b in risk["l_values"]] == [
        (value, count if l_records[value] >= K else f"<{K}") for value, count in sorted(l_counts.items())]
    assert risk["gate"] == ("pass" if suppressed / records <= MAX_SUPPRESSION else "refused")


def test_export_suppresses_exactly_the_failing_classes(ws):
    base, cli = ws
    out = base / "run"
    result = cli("export", "patients", "--policy", RESEARCH, "--out", out, "--purpose", "clinical-research",
                 "--recipient", "cicor", "--json")
    assert result.code == 0, result.stderr
    manifest = result.json()
    classes = expected_classes()
    passing = {key for key, rows in classes.items()
               if len(rows) >= K and len({d for d in rows if d is not None}) >= L}
    expected_out = sum(len(classes[key]) for key in passing)
    assert manifest["rows"]["out"] == expected_out
    assert manifest["rows"]["suppressed"] == sum(len(rows) for rows in classes.values()) - expected_out
    got = Counter(duckdb.connect().execute(
        f"SELECT dob, sex, district FROM read_parquet('{out / 'patients.parquet'}')").fetchall())
    assert got == Counter({key: len(classes[key]) for key in passing})


def test_policy_check_json_lists_problems_for_scripts(ws, tmp_path):
    base, cli = ws
    bad = tmp_path / "bad.yaml"
    bad.write_text(RESEARCH.read_text().replace("keep_last: 2", "keep_lst: 2").replace("k_anonymity", "k_anonimity"))
    result = cli("policy", "check", bad, "--json")
    assert result.code == 1 and "keep_lst" in result.stderr
    document = json.loads(result.stdout)
    assert document["valid"] is False and len(document["problems"]) == 2
    assert any(p.startswith("columns.phone.keep_lst: unknown option") for p in document["problems"])
    assert any(p.startswith("privacy.k_anonimity: unknown key; did you mean 'k_anonymity'") for p in
               document["problems"])
    good = cli("policy", "check", RESEARCH, "--dataset", "patients")
    assert good.code == 0 and good.stdout.startswith("OK: ")


def test_explain_shows_each_column_the_dropped_ones_and_both_statements(ws):
    base, cli = ws
    result = cli("policy", "explain", RESEARCH, "--dataset", "patients", "--json")
    assert result.code == 0, result.stderr
    plan = result.json()
    by_column = {c["column"]: c for c in plan["columns"]}
    assert by_column["hkid"]["transform"] == "drop" and by_column["hkid"]["sql"] is None
    assert by_column["phone"]["params"] == {"keep_last": 2, "keep_first": 0, "char": "*"}
    assert plan["dropped_by_default"] == ["name_zh", "email", "address", "discharge_date", "ldl"]
    assert "SEMI JOIN" in plan["sql"] and "ds_classes" in plan["sql"]
    assert plan["classes_sql"].startswith("CREATE OR REPLACE TEMP TABLE ds_classes")
    assert "GROUP BY" in plan["classes_sql"]
    shown = cli("policy", "explain", RESEARCH, "--dataset", "patients")
    assert shown.code == 0 and "(not named)" in shown.stdout and "dropped: the policy does not name it" in shown.stdout
