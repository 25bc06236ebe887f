"""report risk: risk's figures as one self-contained HTML page, drawn by a real browser; no more than risk shows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from datashare.report.risk import MAX_SIZE_BARS, driver_bars, prosecutor_bars, size_bars

from .conftest import (
    PROJECT_ROOT,
    SAMPLE_CSV,
    assert_self_contained,
    assert_valid_html,
    browse,
    make_workspace,
    run_cli,
)

RESEARCH = PROJECT_ROOT / "policies" / "hk-clinical-research.yaml"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def risk_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("report-risk")
    home = root / "ws"
    make_workspace(home)
    odd = root / "odd.csv"  # a column named like markup, as a hostile file could name one
    odd.write_text("visit,\"" + HOSTILE + "\",score\n" + "".join(f"{i},{'ab'[i % 2]}{i % 3},{i % 7}\n"
                                                               for i in range(60)), encoding="utf-8")
    policy = root / "odd.yaml"
    policy.write_text(json.dumps({
        "policy": "odd", "version": 1, "applies_to": ["odd"], "purposes": ["p"], "recipients": ["r"],
        "columns": {HOSTILE: {"transform": "keep"}, "score": {"transform": "keep"}},
        "privacy": {"quasi_identifiers": [HOSTILE, "score"], "k_anonymity": 2, "max_suppression": 0.5}}),
        encoding="utf-8")
    for args in (["register", SAMPLE_CSV, "--name", "patients"], ["register", odd, "--name", "odd"],
                 ["policy", "approve", RESEARCH], ["roles", "grant", "ana", "analyst"],
                 ["roles", "service-accounts", "on"]):
        assert run_cli(*map(str, args), home=home).code == 0, args
    return home, root, policy


def cli(home, *args, actor=None):
    return run_cli(*map(str, args), *(["--actor", actor] if actor else []), home=home)


def last_entry(home: Path) -> dict:
    return json.loads((home / "audit.log").read_text(encoding="utf-8").splitlines()[-1])


def test_the_risk_report_shows_risks_figures_in_a_browser_and_is_logged(risk_ws):
    home, root, _ = risk_ws
    out = root / "risk.html"
    written = cli(home, "report", "risk", "patients", "--policy", RESEARCH, "--out", out, "--json",
                  "--population-fraction", "0.2", actor="ana")
    assert written.code == 0, written.stderr
    answer = written.json()
    html = out.read_text(encoding="utf-8")
    assert answer["path"] == str(out) and answer["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert answer["sections"] == ["summary", "class_sizes", "suppression", "drivers", "risks", "l_diversity"]
    assert answer["gate"] == "pass"
    assert out.stat().st_mode & 0o777 == 0o600
    assert_self_contained(html)
    entry = last_entry(home)
    assert (entry["action"], entry["outcome"], entry["actor"]) == ("report.risk", "ok", "ana")
    assert entry["details"]["sha256"] == answer["sha256"] and entry["target"]["output"] == str(out)
    assert entry["details"]["where"] and entry["target"]["policy"] == "hk-clinical-research"

    figures = cli(home, "risk", "patients", "--policy", RESEARCH, "--json", "--population-fraction", "0.2",
                  actor="ana").json()
    shown = cli(home, "show", "patients", "--json").json()
    assert_valid_html(out)
    text = browse(out, "report-risk")
    for heading in ("Re-identification risk: patients v1", "Dataset and policy", "Class-size distribution",
                    "Suppression", "Risk by quasi-identifier", "Prosecutor, journalist and marketer risk",
                    "l-diversity"):
        assert heading in text, heading
    assert f"Privacy gate: {figures['gate']}" in text
    assert f"Records (after rows.where) {figures['records']:,}" in text
    assert f"k required {figures['k']} people" in text and f"l required {figures['l']} distinct values" in text
    assert f"Average prosecutor risk {figures['avg_prosecutor_risk']:.3f}" in text
    assert f"Largest prosecutor risk {figures['max_prosecutor_risk']}" in text  # ">0.2": a class is below k
    assert f"Largest journalist risk {figures['max_journalist_risk']}" in text  # ">0.04": at 0.2 of the population
    assert f"Marketer risk {figures['marketer_risk']:.3f}" in text and "holds 0.2 of the population" in text
    assert f"Sample uniques (classes of one person) {figures['sample_uniques']}" in text
    assert shown["source_sha256"] in text
    for bucket in figures["class_sizes"]:  # the table holds exactly risk's figures, withheld ones as risk shows them
        row = " ".join(str(bucket[c]) if isinstance(bucket[c], str) else f"{bucket[c]:,}"
                       for c in ("class_size", "classes", "records", "people"))
        assert row in text, row
    assert figures["drivers"]
    for d in figures["drivers"]:  # what drives the classes below k: exactly risk's figures, withheld ones as risk has
        change = "removed" if d["to"] is None else f"coarsened {d['to']}"
        row = " ".join([d["quasi_identifier"], change] + [f"{d[c]:,}" if isinstance(d[c], int) else d[c]
                                                         for c in ("classes_below_k", "records_below_k",
                                                                   "people_below_k")])
        assert row in text, row


def test_an_analyst_gets_no_report_under_a_draft_and_no_more_than_risk_shows(risk_ws):
    home, root, _ = risk_ws
    draft = root / "draft.yaml"
    draft.write_text(RESEARCH.read_text(encoding="utf-8").replace("policy: hk-clinical-research", "policy: draft"),
                     encoding="utf-8")
    out = root / "draft.html"
    refused = cli(home, "report", "risk", "patients", "--policy", draft, "--out", out, actor="ana")
    assert refused.code == 3 and "not approved" in refused.stderr and not out.exists()
    assert (last_entry(home)["action"], last_entry(home)["outcome"]) == ("report.risk", "denied")

    few = root / "few.yaml"  # approved, with a filter that leaves fewer than k records: nothing but "<5" is shown
    few.write_text(RESEARCH.read_text(encoding="utf-8").replace("policy: hk-clinical-research", "policy: few")
                   .replace("admission_date >= DATE '2020-01-01'", "hba1c > 1000"), encoding="utf-8")
    assert cli(home, "policy", "approve", few).code == 0
    assert cli(home, "report", "risk", "patients", "--policy", few, "--out", out, actor="ana").code == 0
    html = out.read_text(encoding="utf-8")
    assert '<td class="n">&lt;5</td>' in html and "No class is shown" in html
    assert "Privacy gate: <strong>refused" in html
    assert cli(home, "risk", "patients", "--policy", few, "--json", actor="ana").json()["records"] == "<5"


def test_hostile_column_names_are_text_in_the_report(risk_ws):
    home, root, policy = risk_ws
    out = root / "odd.html"
    result = cli(home, "report", "risk", "odd", "--policy", policy, "--out", out)
    assert result.code == 0, result.stderr
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert_self_contained(html)


def test_the_report_goes_to_a_file_in_an_existing_folder(risk_ws):
    home, root, _ = risk_ws
    for out, said in ((root, "is a folder"), (root / "missing" / "r.html", "does not exist")):
        result = cli(home, "report", "risk", "patients", "--policy", RESEARCH, "--out", out)
        assert result.code == 1 and said in result.stderr, result.stderr


def test_class_sizes_past_the_chart_share_a_bar_that_is_withheld_if_any_of_them_is():
    buckets = [{"class_size": size, "records": size * 10} for size in range(1, 31)]
    bars = size_bars(buckets, k=5)
    assert len(bars) == MAX_SIZE_BARS and bars[0].label == "1 (below k)" and bars[5].label == "6"
    assert (bars[-1].label, bars[-1].value) == (f"{MAX_SIZE_BARS}–30", sum(s * 10 for s in range(MAX_SIZE_BARS, 31)))
    buckets[-1]["records"] = "withheld"
    assert size_bars(buckets, k=5)[-1].value is None and "withheld" in size_bars(buckets, k=5)[-1].text
    withheld = size_bars([{"class_size": 1, "records": "<5"}], k=5)[0]
    assert (withheld.value, withheld.text) == (None, "records: <5")


def test_each_risk_risk_gives_is_drawn_its_bound_at_its_bound_and_a_withheld_one_not_at_all():
    bars = prosecutor_bars({"max_prosecutor_risk": ">0.2", "avg_prosecutor_risk": 0.05, "marketer_risk": None})
    assert [(b.label, b.value, b.text) for b in bars] == [
        ("largest prosecutor", 0.2, ">0.2 (a class below k)"), ("average prosecutor", 0.05, "0.050"),
        ("marketer", None, "withheld")]


def test_the_drivers_chart_starts_from_the_policy_as_it_stands_and_draws_no_bar_for_a_withheld_count():
    bars = driver_bars({"records_below_k": "withheld", "drivers": [
        {"quasi_identifier": "dob", "to": None, "records_below_k": "<5"},
        {"quasi_identifier": "dob", "to": "to the month", "records_below_k": "10-14"},
        {"quasi_identifier": "sex", "to": None, "records_below_k": 12}]})
    assert [(b.label, b.value, b.text) for b in bars] == [
        ("as the policy stands", None, "records: withheld"), ("dob removed", None, "records: <5"),
        ("dob coarsened to the month", None, "records: 10-14"), ("sex removed", 12, "12 records")]
    assert driver_bars({"records_below_k": 0, "drivers": []}) == []
