"""Policies through the CLI: `policy check --json` for scripts, and `risk` and `export` against an
independent computation of the equivalence classes in plain Python from the source file; `risk` is no oracle."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import json
from collections import Counter, defaultdict
from pathlib import Path

import duckdb
import pytest

from datashare.identifiers import district_region
from datashare.workspace import Workspace

from .conftest import RESEARCH_POLICY as RESEARCH
from .conftest import SAMPLE_CSV, TEST_PASSPHRASE, make_workspace, run_cli

K, L, MAX_SUPPRESSION, WIDTH = 5, 2, 0.05, 20  # as in the research policy
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
    low = age // WIDTH * WIDTH
    return f"{low}-{low + WIDTH - 1}"


def _shifted(home, admission: str, patient: str, recipient: str) -> dt.date:
    """The research policy's date shift, recomputed from the workspace secret and the documented derivation."""
    scope = json.dumps({"dataset": "patients", "recipient": recipient}, sort_keys=True, separators=(",", ":"))
    secret = Workspace(home).secret(TEST_PASSPHRASE)
    key = hmac.new(secret, b"datashare/date_shift/" + scope.encode(), hashlib.sha256).digest()
    offset = int(hashlib.sha256(key + patient.encode()).hexdigest()[:12], 16) % 61 - 30
    return dt.date.fromisoformat(admission) + dt.timedelta(days=offset)


def expected_classes(home, recipient: str) -> dict[tuple, list[tuple[str, str | None]]]:
    """(age band, sex, region) -> (patient, diagnosis prefix) of each row the research policy selects.

    rows.where applies to the shifted admission date.
    """
    classes: dict[tuple, list[tuple[str, str | None]]] = defaultdict(list)
    with SAMPLE_CSV.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if not row["admission_date"] or \
                    _shifted(home, row["admission_date"], row["patient_id"], recipient) < dt.date(2020, 1, 1):
                continue
            key = (_age_band(row["dob"]), row["sex"] or None, district_region(row["district"]))
            classes[key].append((row["patient_id"], row["diagnosis"][:3] if row["diagnosis"] else None))
    return classes


def _people(rows) -> int:
    return len({patient for patient, _ in rows})


def _diversity(rows) -> int:
    return len({d for _, d in rows if d is not None})


def suppressed_patients(classes) -> set[str]:
    """Whole patients suppressed until every class left has K people and L diagnoses (a plain Python loop)."""
    gone: set[str] = set()
    while True:
        more = set()
        for rows in classes.values():
            left = [(p, d) for p, d in rows if p not in gone]
            if left and (_people(left) < K or _diversity(left) < L):
                more |= {p for p, _ in left}
        if not more:
            return gone
        gone |= more


def test_risk_matches_an_independent_count(ws):
    """Every figure against a count in plain Python, in people; a count below k is withheld as "<5"."""
    base, cli = ws
    result = cli("risk", "patients", "--policy", RESEARCH, "--json")
    assert result.code == 0, result.stderr
    risk = result.json()
    classes = expected_classes(base / "ws", "")
    sizes = Counter(_people(rows) for rows in classes.values())
    diversity = {key: _diversity(rows) for key, rows in classes.items()}
    records = sum(len(rows) for rows in classes.values())
    gone = suppressed_patients(classes)

    def shown(count: int) -> int | str:
        return count if count >= K else f"<{K}"

    assert risk["k_unit"] == "people" and risk["subject"] == "patient_id"
    assert risk["records"] == records >= K
    assert risk["people"] == shown(len({p for rows in classes.values() for p, _ in rows}))
    assert risk["equivalence_classes"] == len(classes)
    records_of_size = Counter()
    for rows in classes.values():
        records_of_size[_people(rows)] += len(rows)
    assert [(b["class_size"], b["classes"]) for b in risk["class_sizes"]] == [
        (size, count if records_of_size[size] >= K and size * count >= K else f"<{K}" if count < K else "withheld")
        for size, count in sorted(sizes.items())]
    small_withheld = any(not (records_of_size[size] >= K and size * count >= K) for size, count in sizes.items())

    def shown_sum(count: int) -> int | str:  # a sum over the small classes would give a withheld count back
        return f"<{K}" if count < K else "withheld" if small_withheld else count

    assert risk["unique_records"] == shown_sum(sum(len(rows) for rows in classes.values() if _people(rows) == 1))
    assert risk["records_below_k"] == shown_sum(sum(len(rows) for rows in classes.values() if _people(rows) < K))
    suppressed = sum(1 for rows in classes.values() for p, _ in rows if p in gone)
    assert risk["rows_suppressed"] == shown_sum(suppressed)
    assert risk["people_suppressed"] == shown_sum(len(gone))
    assert risk["max_prosecutor_risk"] == (f">{1 / K:.2g}" if min(sizes) < K else pytest.approx(1 / min(sizes)))
    assert risk["avg_prosecutor_risk"] == pytest.approx(len(classes) / sum(_people(r) for r in classes.values()))
    assert risk["min_l"] == min(diversity.values())
    assert risk["gate"] == ("pass" if suppressed / records <= MAX_SUPPRESSION else "refused")
    uniques = sizes.get(1, 0)
    assert risk["sample_uniques"] == (f"<{K}" if uniques < K else "withheld" if small_withheld else uniques)


def test_risk_drivers_and_journalist_and_marketer_risk_match_an_independent_count(ws):
    """Each quasi-identifier removed, or coarsened one level, recounted in plain Python; shown as risk shows them."""
    base, cli = ws
    result = cli("risk", "patients", "--policy", RESEARCH, "--population-fraction", "0.25", "--json")
    assert result.code == 0, result.stderr
    risk = result.json()
    classes = expected_classes(base / "ws", "")
    people = {p for rows in classes.values() for p, _ in rows}
    sizes = [_people(rows) for rows in classes.values()]
    assert risk["population_fraction"] == 0.25
    assert risk["marketer_risk"] == pytest.approx(0.25 * len(classes) / len(people))
    assert risk["max_journalist_risk"] == (f">{0.25 / K:.2g}" if min(sizes) < K else pytest.approx(0.25 / min(sizes)))

    def top_coded(band: str | None) -> str | None:  # the research policy's 20-year bands, one level up: 80+
        return band if band is None or int(band.split("-")[0]) < 80 else "80+"

    variants = {("dob", None): lambda key: key[1:], ("sex", None): lambda key: (key[0], key[2]),
                ("district", None): lambda key: key[:2],
                ("dob", "age bands of 20 years, 80+"): lambda key: (top_coded(key[0]), *key[1:])}
    small_withheld = any(b["records"] in (f"<{K}", "withheld") for b in risk["class_sizes"])

    def banded(value: int) -> int | str:
        return f"<{K}" if value < K else f"{value // K * K}-{value // K * K + K - 1}" if small_withheld else value

    got = {(d["quasi_identifier"], d["to"]): d for d in risk["drivers"]}
    assert set(got) == set(variants)
    for (column, to), regroup in variants.items():
        merged = defaultdict(list)
        for key, rows in classes.items():
            merged[regroup(key)] += rows
        failing = [rows for rows in merged.values() if _people(rows) < K]
        expected = (len(failing), sum(len(rows) for rows in failing), len({p for rows in failing for p, _ in rows}))
        driver = got[(column, to)]
        assert driver["change"] == ("removed" if to is None else "coarsened")
        assert (driver["classes_below_k"], driver["records_below_k"], driver["people_below_k"]) == tuple(
            map(banded, expected)), (column, to)


def test_export_suppresses_exactly_the_failing_people(ws):
    base, cli = ws
    out = base / "run"
    result = cli("export", "patients", "--policy", RESEARCH, "--out", out, "--purpose", "clinical-research",
                 "--recipient", "cicor", "--json")
    assert result.code == 0, result.stderr
    manifest = result.json()
    classes = expected_classes(base / "ws", "cicor")
    gone = suppressed_patients(classes)
    kept = {key: [(p, d) for p, d in rows if p not in gone] for key, rows in classes.items()}
    expected_out = sum(len(rows) for rows in kept.values())
    assert manifest["rows"]["out"] == expected_out
    assert manifest["rows"]["suppressed"] == sum(len(rows) for rows in classes.values()) - expected_out
    assert manifest["privacy"]["people"]["suppressed"] == len(gone)
    assert manifest["privacy"]["k_measured"] == min(_people(rows) for rows in kept.values() if rows)
    got = Counter(duckdb.connect().execute(
        f"SELECT age_band, sex, region FROM read_parquet('{out / 'patients.parquet'}')").fetchall())
    assert got == Counter({key: len(rows) for key, rows in kept.items() if rows})


def test_policy_check_json_lists_problems_for_scripts(ws, tmp_path):
    base, cli = ws
    bad = tmp_path / "bad.yaml"
    bad.write_text(RESEARCH.read_text().replace("phone:          {transform: drop}",
                                                "phone:          {transform: mask, keep_lst: 2}")
                   .replace("k_anonymity", "k_anonimity"))
    result = cli("policy", "check", bad, "--json")
    assert result.code == 1 and "keep_lst" in result.stderr
    document = json.loads(result.stdout)
    assert document["valid"] is False and len(document["problems"]) == 2
    assert any(p.startswith("columns.phone.keep_lst: unknown option") for p in document["problems"])
    assert any(p.startswith("privacy.k_anonimity: unknown key 'k_anonimity' (did you mean 'k_anonymity'?)") for p in
               document["problems"])
    assert [(e["path"], e["line"], e["hint"]) for e in document["errors"]] == [
        ("columns.phone.keep_lst", 17, "did you mean 'keep_last'?"),
        ("privacy.k_anonimity", 27, "did you mean 'k_anonymity'?")]
    assert f"{bad}:17:" in result.stderr and f"{bad}:27:" in result.stderr
    good = cli("policy", "check", RESEARCH, "--dataset", "patients")
    assert good.code == 0 and good.stdout.startswith("OK: ")


def test_explain_shows_each_column_the_dropped_ones_and_both_statements(ws):
    base, cli = ws
    result = cli("policy", "explain", RESEARCH, "--dataset", "patients", "--json")
    assert result.code == 0, result.stderr
    plan = result.json()
    by_column = {c["column"]: c for c in plan["columns"]}
    assert by_column["hkid"]["transform"] == "drop" and by_column["hkid"]["sql"] is None
    assert by_column["dob"]["params"]["width"] == 20
    assert plan["privacy"]["subject"] == "patient_id" and plan["privacy"]["k_unit"] == "people"
    assert set(plan["waivers"]) == {"admission_date"} and plan["refused"] == []
    assert any(note.startswith("waiver for admission_date: ") for note in plan["notes"])
    assert plan["dropped_by_default"] == ["name_zh", "email", "address", "discharge_date", "ldl"]
    assert "SEMI JOIN" in plan["sql"] and "ds_classes" in plan["sql"]
    assert plan["classes_sql"].startswith("CREATE OR REPLACE TEMP TABLE ds_classes")
    assert "GROUP BY" in plan["classes_sql"]
    shown = cli("policy", "explain", RESEARCH, "--dataset", "patients")
    assert shown.code == 0 and "(not named)" in shown.stdout and "dropped: the policy does not name it" in shown.stdout
    # The note's redaction runs to thousands of characters: the table a person reads shows its start, on one line
    longest = max(len(c["sql"] or "") for c in plan["columns"])
    assert longest > 5000 and max(map(len, shown.stdout.splitlines())) < 400
    assert "--json and --csv give it whole" in shown.stdout


def test_explain_names_only_the_checks_a_policy_asks_for_and_never_prints_none(ws):
    base, cli = ws
    open_data = RESEARCH.parent / "hk-open-data.yaml"  # k-anonymity, no l-diversity
    shown = cli("policy", "explain", open_data, "--dataset", "patients")
    assert shown.code == 0, shown.stderr
    assert "None" not in shown.stdout + shown.stderr
    assert "k-anonymity k=10 people over dob, sex, district" in shown.stdout and "l-diversity" not in shown.stdout
    research = cli("policy", "explain", RESEARCH, "--dataset", "patients")
    assert "l-diversity l=2 on diagnosis" in research.stdout and "None" not in research.stdout


# --- risk is no oracle (export/privacy.py, export/plan.py): approved policies only for analysts, no filter on a
# direct identifier outside a custodian's export, counts below k withheld, and the filter's text in the log.

EXPORT = ["--purpose", "clinical-research", "--recipient", "cicor"]
# The fields `risk --json` has always had: withholding small counts changes values, never names.
RISK_FIELDS = {"dataset", "dataset_version", "policy", "quasi_identifiers", "k", "l", "sensitive", "records",
               "equivalence_classes", "class_sizes", "unique_records", "share_unique", "records_below_k",
               "share_below_k", "max_prosecutor_risk", "avg_prosecutor_risk", "rows_suppressed", "share_suppressed",
               "min_l", "l_values", "k_after_suppression", "l_after_suppression", "gate",
               "subject", "k_unit", "people", "people_suppressed",  # people: the privacy gate counts persons
               # added: journalist and marketer risk, sample uniques, what drives the classes below k
               "population_fraction", "max_journalist_risk", "marketer_risk", "sample_uniques", "drivers"}


def policy_with(tmp: Path, name: str, where: str | None, k: int = 5) -> Path:
    """The research policy under another name, with another ``rows.where`` and k."""
    text = RESEARCH.read_text(encoding="utf-8").replace("policy: hk-clinical-research", f"policy: {name}")
    text = text.replace("k_anonymity: 5", f"k_anonymity: {k}")
    text = text.replace('  where: "admission_date >= DATE \'2020-01-01\'"', f"  where: {json.dumps(where)}"
                        if where else "  where: null")
    path = tmp / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def risk_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("risk")
    home = root / "ws"
    make_workspace(home)
    for args in (["register", str(SAMPLE_CSV), "--name", "patients"], ["policy", "approve", str(RESEARCH)],
                 ["roles", "grant", "ana", "analyst"], ["roles", "service-accounts", "on"]):
        assert run_cli(*args, home=home).code == 0, args
    return home, root


def risk_cli(home, *args, actor: str | None = None):
    return run_cli(*[str(a) for a in args], *(["--actor", actor] if actor else []), home=home)


def last_entry(home: Path) -> dict:
    return json.loads((home / "audit.log").read_text(encoding="utf-8").splitlines()[-1])


def test_an_analyst_runs_risk_under_approved_policies_only(risk_ws):
    home, root = risk_ws
    assert risk_cli(home, "risk", "patients", "--policy", RESEARCH, actor="ana").code == 0
    draft = policy_with(root, "draft", "sex = 'F'")
    refused = risk_cli(home, "risk", "patients", "--policy", draft, "--json", actor="ana")
    assert refused.code == 3 and "not approved" in refused.stderr, refused.stderr
    assert refused.json()["exit_code"] == 3
    entry = last_entry(home)
    assert (entry["action"], entry["outcome"], entry["actor"]) == ("risk", "denied", "ana")
    assert risk_cli(home, "risk", "patients", "--policy", draft).code == 0  # a custodian tries a draft before approving


@pytest.mark.parametrize("where", ["hkid = 'A123456(3)' AND diagnosis = 'C34.9'", "name_en IS NOT NULL",
                                   "NOT (phone IN ('+852 9123 4567'))"])
def test_a_filter_on_a_direct_identifier_is_refused_for_everyone_outside_a_custodians_export(risk_ws, where):
    home, root = risk_ws
    oracle = policy_with(root, "oracle-" + hashlib.sha256(where.encode()).hexdigest()[:8], where)
    assert risk_cli(home, "policy", "approve", oracle).code == 0  # approved or not: the filter itself is refused
    for args in (["risk", "patients", "--policy", oracle], ["policy", "explain", oracle, "--dataset", "patients"],
                 ["policy", "check", oracle, "--dataset", "patients"]):
        for actor in (None, "ana"):
            result = risk_cli(home, *args, actor=actor)
            assert result.code == 3, (args, actor, result.stderr)
            assert "direct identifier" in result.stderr and "A123456" not in result.stderr
    assert risk_cli(home, "policy", "check", oracle).code == 0  # without a dataset there is no catalog to consult


def test_a_custodians_export_may_filter_on_a_direct_identifier_and_an_analysts_may_not(risk_ws):
    home, root = risk_ws
    cohort = policy_with(root, "cohort", "hkid IS NOT NULL", k=1)
    assert risk_cli(home, "policy", "approve", cohort).code == 0
    analyst = risk_cli(home, "export", "patients", "--policy", cohort, "--out", root / "ana", *EXPORT, actor="ana")
    assert analyst.code == 3 and "direct identifier" in analyst.stderr
    assert not (root / "ana").exists()
    custodian = risk_cli(home, "export", "patients", "--policy", cohort, "--out", root / "cust", *EXPORT)
    assert custodian.code == 0, custodian.stderr


def test_the_log_records_the_filter_even_when_refused(risk_ws):
    home, root = risk_ws
    where = "district = 'Southern' AND sex = 'M' AND diagnosis = 'O80'"
    # fewer than k records pass: an export would be refused, so risk exits 3, after an entry that it ran
    assert risk_cli(home, "risk", "patients", "--policy", policy_with(root, "narrow", where)).code == 3
    entry = last_entry(home)
    assert (entry["action"], entry["outcome"], entry["details"]["where"]) == ("risk", "ok", where)
    oracle = "hkid = 'E079745(A)' AND sex = 'M'"
    assert risk_cli(home, "risk", "patients", "--policy", policy_with(root, "oracle2", oracle)).code == 3
    entry = last_entry(home)
    # Refused for naming a direct identifier: its literals are personal data, so only the columns are logged.
    assert (entry["outcome"], entry["details"]["where_columns"]) == ("denied", ["hkid", "sex"])
    assert "where" not in entry["details"]
    assert "E079745" not in (home / "audit.log").read_text(encoding="utf-8")


def test_risk_refuses_a_dataset_outside_applies_to_for_everyone(risk_ws):
    home, root = risk_ws
    assert run_cli("register", str(SAMPLE_CSV), "--name", "other", home=home).code == 0
    for actor in (None, "ana"):
        result = risk_cli(home, "risk", "other", "--policy", RESEARCH, actor=actor)
        assert result.code == 3 and "does not apply to dataset 'other'" in result.stderr, (actor, result.stderr)
        assert (last_entry(home)["action"], last_entry(home)["outcome"]) == ("risk", "denied")


def test_an_analysts_risk_refuses_an_expired_policy(risk_ws):
    home, root = risk_ws
    expired = root / "expired.yaml"
    expired.write_text(RESEARCH.read_text(encoding="utf-8").replace("policy: hk-clinical-research",
                                                                     "policy: expired").replace(
        "expires: 2027-12-31", "expires: 2020-01-01"), encoding="utf-8")
    result = risk_cli(home, "risk", "patients", "--policy", expired, actor="ana")
    assert result.code == 3 and "expired on 2020-01-01" in result.stderr, result.stderr


def risk_json(home: Path, policy: Path) -> dict:
    """``risk --json``'s report: exit 0, or 3 when the gate would refuse (the report is written all the same)."""
    result = risk_cli(home, "risk", "patients", "--policy", policy, "--json")
    report = result.json()
    assert result.code == (0 if report["gate"] == "pass" else 3), result.stderr
    return report


def test_one_record_and_none_look_the_same(risk_ws):
    """The oracle: a filter that matches one patient, or none, must give the same answer."""
    home, root = risk_ws
    one = risk_json(home, policy_with(root, "one", "district = 'Southern' AND sex = 'M' AND diagnosis = 'O80'"))
    none = risk_json(home, policy_with(root, "none", "district = 'Southern' AND sex = 'M' AND diagnosis = 'Z00'"))
    assert set(one) == RISK_FIELDS
    assert {**one, "policy": None} == {**none, "policy": None}
    assert one["records"] == "<5" and one["class_sizes"] == [] and one["gate"] == "refused"
    assert one["drivers"] == [] and one["sample_uniques"] == "<5" and one["marketer_risk"] is None
    shown = risk_cli(home, "risk", "patients", "--policy", root / "one.yaml")
    assert "< 5" in shown.stdout and "Traceback" not in shown.stderr
    assert shown.code == 3 and "refused by the privacy gate" in shown.stderr  # as an export would be


def test_counts_below_k_are_withheld_and_the_rest_shown(risk_ws):
    home, root = risk_ws
    report = risk_json(home, RESEARCH)
    assert set(report) == RISK_FIELDS
    assert isinstance(report["records"], int) and report["records"] >= 5
    for bucket in report["class_sizes"] + report["l_values"]:
        assert bucket["records"] in ("<5", "withheld") or bucket["records"] >= 5, bucket
        if bucket["records"] in ("<5", "withheld"):
            assert bucket["classes"] in ("<5", "withheld")
    small = [b for b in report["class_sizes"] if b["class_size"] < 5]
    assert small and report["max_prosecutor_risk"] == ">0.2"
    for name, share in (("unique_records", "share_unique"), ("records_below_k", "share_below_k"),
                        ("rows_suppressed", "share_suppressed")):
        value = report[name]
        assert (value == "<5" and share_bound(report[share]) or value == "withheld" and report[share] is None
                or isinstance(value, int) and value >= 5)
    if any(bucket["classes"] in ("<5", "withheld") for bucket in report["class_sizes"]):
        # the sums over the small classes would give a withheld count back
        assert report["unique_records"] in ("<5", "withheld") and report["records_below_k"] in ("<5", "withheld")


def share_bound(value) -> bool:
    return isinstance(value, str) and value.startswith("<") and float(value[1:]) > 0
