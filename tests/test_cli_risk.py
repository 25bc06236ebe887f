"""``risk`` is no oracle (export/privacy.py, export/plan.py): approved policies only for analysts, no filter on a
direct identifier outside a custodian's export, counts below k withheld, and the filter's text in the log."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from .conftest import PROJECT_ROOT, SAMPLE_CSV, make_workspace, run_cli

RESEARCH = PROJECT_ROOT / "policies" / "hk-clinical-research.yaml"
EXPORT = ["--purpose", "clinical-research", "--recipient", "cicor"]
# The fields `risk --json` has always had: withholding small counts changes values, never names.
RISK_FIELDS = {"dataset", "dataset_version", "policy", "quasi_identifiers", "k", "l", "sensitive", "records",
               "equivalence_classes", "class_sizes", "unique_records", "share_unique", "records_below_k",
               "share_below_k", "max_prosecutor_risk", "avg_prosecutor_risk", "rows_suppressed", "share_suppressed",
               "min_l", "l_values", "k_after_suppression", "l_after_suppression", "gate"}


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
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("risk")
    home = root / "ws"
    make_workspace(home)
    for args in (["register", str(SAMPLE_CSV), "--name", "patients"], ["policy", "approve", str(RESEARCH)],
                 ["roles", "grant", "ana", "analyst"], ["roles", "service-accounts", "on"]):
        assert run_cli(*args, home=home).code == 0, args
    return home, root


def cli(home, *args, actor: str | None = None):
    return run_cli(*[str(a) for a in args], *(["--actor", actor] if actor else []), home=home)


def last_entry(home: Path) -> dict:
    return json.loads((home / "audit.log").read_text(encoding="utf-8").splitlines()[-1])


def test_an_analyst_runs_risk_under_approved_policies_only(ws):
    home, root = ws
    assert cli(home, "risk", "patients", "--policy", RESEARCH, actor="ana").code == 0
    draft = policy_with(root, "draft", "sex = 'F'")
    refused = cli(home, "risk", "patients", "--policy", draft, "--json", actor="ana")
    assert refused.code == 3 and "not approved" in refused.stderr, refused.stderr
    assert refused.json()["exit_code"] == 3
    entry = last_entry(home)
    assert (entry["action"], entry["outcome"], entry["actor"]) == ("risk", "denied", "ana")
    assert cli(home, "risk", "patients", "--policy", draft).code == 0  # a custodian tries a draft before approving


@pytest.mark.parametrize("where", ["hkid = 'A123456(3)' AND diagnosis = 'C34.9'", "name_en IS NOT NULL",
                                   "NOT (phone IN ('+852 9123 4567'))"])
def test_a_filter_on_a_direct_identifier_is_refused_for_everyone_outside_a_custodians_export(ws, where):
    home, root = ws
    oracle = policy_with(root, "oracle-" + hashlib.sha256(where.encode()).hexdigest()[:8], where)
    assert cli(home, "policy", "approve", oracle).code == 0  # approved or not: the filter itself is refused
    for args in (["risk", "patients", "--policy", oracle], ["policy", "explain", oracle, "--dataset", "patients"],
                 ["policy", "check", oracle, "--dataset", "patients"]):
        for actor in (None, "ana"):
            result = cli(home, *args, actor=actor)
            assert result.code == 3, (args, actor, result.stderr)
            assert "direct identifier" in result.stderr and "A123456" not in result.stderr
    assert cli(home, "policy", "check", oracle).code == 0  # without a dataset there is no catalog to consult


def test_a_custodians_export_may_filter_on_a_direct_identifier_and_an_analysts_may_not(ws):
    home, root = ws
    cohort = policy_with(root, "cohort", "hkid IS NOT NULL", k=1)
    assert cli(home, "policy", "approve", cohort).code == 0
    analyst = cli(home, "export", "patients", "--policy", cohort, "--out", root / "ana", *EXPORT, actor="ana")
    assert analyst.code == 3 and "direct identifier" in analyst.stderr
    assert not (root / "ana").exists()
    custodian = cli(home, "export", "patients", "--policy", cohort, "--out", root / "cust", *EXPORT)
    assert custodian.code == 0, custodian.stderr


def test_the_log_records_the_filter_even_when_refused(ws):
    home, root = ws
    where = "district = 'Southern' AND sex = 'M' AND diagnosis = 'O80'"
    assert cli(home, "risk", "patients", "--policy", policy_with(root, "narrow", where)).code == 0
    entry = last_entry(home)
    assert (entry["action"], entry["details"]["where"]) == ("risk", where)
    oracle = "hkid = 'Z999999(9)'"
    assert cli(home, "risk", "patients", "--policy", policy_with(root, "oracle2", oracle)).code == 3
    entry = last_entry(home)
    assert (entry["outcome"], entry["details"]["where"]) == ("denied", oracle)


def risk_json(home: Path, policy: Path) -> dict:
    result = cli(home, "risk", "patients", "--policy", policy, "--json")
    assert result.code == 0, result.stderr
    return result.json()


def test_one_record_and_none_look_the_same(ws):
    """The oracle: a filter that matches one patient, or none, must give the same answer."""
    home, root = ws
    one = risk_json(home, policy_with(root, "one", "district = 'Southern' AND sex = 'M' AND diagnosis = 'O80'"))
    none = risk_json(home, policy_with(root, "none", "district = 'Southern' AND sex = 'M' AND diagnosis = 'Z00'"))
    assert set(one) == RISK_FIELDS
    assert {**one, "policy": None} == {**none, "policy": None}
    assert one["records"] == "<5" and one["class_sizes"] == [] and one["gate"] == "refused"
    shown = cli(home, "risk", "patients", "--policy", root / "one.yaml")
    assert "< 5" in shown.stdout and "Traceback" not in shown.stderr


def test_counts_below_k_are_withheld_and_the_rest_shown(ws):
    home, root = ws
    report = risk_json(home, RESEARCH)
    assert set(report) == RISK_FIELDS
    assert isinstance(report["records"], int) and report["records"] >= 5
    for bucket in report["class_sizes"] + report["l_values"]:
        assert bucket["records"] == "<5" or bucket["records"] >= 5, bucket
        if bucket["records"] == "<5":
            assert bucket["classes"] == "<5"
    small = [b for b in report["class_sizes"] if b["class_size"] < 5]
    assert small and report["max_prosecutor_risk"] == ">0.2"
    for name, share in (("unique_records", "share_unique"), ("records_below_k", "share_below_k"),
                        ("rows_suppressed", "share_suppressed")):
        value = report[name]
        assert value == "<5" and share_bound(report[share]) or isinstance(value, int) and value >= 5


def share_bound(value) -> bool:
    return isinstance(value, str) and value.startswith("<") and float(value[1:]) > 0
