"""report audit: exports over time, receipts, denials and the chain's verification, as a browser draws them."""

from __future__ import annotations

import json
import shutil

import pytest

from datashare.report.audit import exports_over_time

from .conftest import (
    PROJECT_ROOT,
    SAMPLE_CSV,
    assert_self_contained,
    assert_valid_html,
    browse,
    cli_env,
    make_workspace,
    run_cli,
)

RESEARCH = PROJECT_ROOT / "policies" / "hk-clinical-research.yaml"
HOSTILE = "<script>alert(1)</script>"


def as_user(home, actor, *args):
    env = cli_env(home, **({"DATASHARE_ACTOR": actor} if actor else {}))
    return run_cli(*map(str, args), home=home, env=env)


@pytest.fixture(scope="module")
def audited_ws(tmp_path_factory):
    """Three exports to cicor (one kept, one gone from this machine, one tampered with) and a hostile denial."""
    root = tmp_path_factory.mktemp("report-audit")
    home = root / "ws"
    make_workspace(home)
    for args in (["register", SAMPLE_CSV, "--name", "patients"], ["policy", "approve", RESEARCH],
                 ["roles", "grant", "olivia", "auditor"], ["roles", "grant", "ana", "analyst"],
                 ["roles", "service-accounts", "on"]):
        assert as_user(home, None, *args).code == 0, args
    seqs = {}
    for run in ("kept", "gone", "tampered"):
        done = as_user(home, None, "export", "patients", "--policy", RESEARCH, "--out", root / run, "--purpose",
                       "clinical-research", "--recipient", "cicor", "--json")
        assert done.code == 0, done.stderr
        seqs[run] = done.json()["audit_receipt"]["seq"]
    shutil.rmtree(root / "gone")
    with (root / "tampered" / "patients.parquet").open("ab") as data:
        data.write(b"\0")
    denied = as_user(home, None, "export", "patients", "--policy", RESEARCH, "--out", root / "no", "--purpose",
                     HOSTILE, "--recipient", HOSTILE)
    assert denied.code == 3
    return home, root, seqs


def test_the_audit_report_shows_exports_receipts_denials_and_the_chain_in_a_browser(audited_ws):
    home, root, seqs = audited_ws
    out = root / "audit.html"
    written = as_user(home, "olivia", "report", "audit", "--out", out, "--json")  # an auditor's report
    assert written.code == 0, written.stderr
    answer = written.json()
    assert answer["chain_verified"] is True and answer["sections"] == ["chain", "exports_over_time", "receipts",
                                                                       "denials"]
    html = out.read_text(encoding="utf-8")
    assert_self_contained(html)
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    entries = (home / "audit.log").read_text(encoding="utf-8").splitlines()
    entry = json.loads(entries[-1])
    assert (entry["action"], entry["outcome"], entry["actor"]) == ("report.audit", "ok", "olivia")
    assert entry["details"]["sha256"] == answer["sha256"]

    assert_valid_html(out)
    text = browse(out, "report-audit")
    for heading in ("Audit report", "The log's hash chain", "Exports per recipient over time",
                    "Each export and its receipt", "Denials"):
        assert heading in text, heading
    assert f"✓ Verified: the chain of all {len(entries) - 1} entries is intact" in text
    assert "cicor 3 " in text  # three completed exports to cicor in the table beside the chart
    assert f"✓ verified: the folder at {root / 'kept'} (signatures, files and receipt)" in text
    assert f"– not here: no folder at {root / 'gone'} (sent to the recipient, or moved)" in text
    assert f"✗ altered: the folder at {root / 'tampered'} fails verification: changed file patients.parquet" in text
    assert "1 refused access." in text and f"export patients {HOSTILE} purpose '{HOSTILE}' is not allowed" in text


def test_an_auditor_reads_a_period_and_an_analyst_may_not(audited_ws, tmp_path):
    home = tmp_path / "ws"  # a copy: the refusal this test logs is not the other tests' to count
    shutil.copytree(audited_ws[0], home)
    out = tmp_path / "later.html"
    assert as_user(home, "olivia", "report", "audit", "--since", "2999-01-01", "--out", out).code == 0
    html = out.read_text(encoding="utf-8")
    assert html.count("No export in this period.") == 2 and "No access was refused in this period." in html
    refused = as_user(home, "ana", "report", "audit", "--out", tmp_path / "ana.html")
    assert refused.code == 3 and not (tmp_path / "ana.html").exists()
    entry = json.loads((home / "audit.log").read_text(encoding="utf-8").splitlines()[-1])
    assert (entry["action"], entry["outcome"]) == ("report.audit", "denied")
    assert as_user(home, "olivia", "report", "audit", "--since", "yesterday", "--out", out).code == 2


def test_an_edited_log_fails_and_the_exports_after_it_are_not_vouched_for(audited_ws, tmp_path):
    home, _, seqs = audited_ws
    copy = tmp_path / "ws"
    shutil.copytree(home, copy)
    log = copy / "audit.log"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    edited = seqs["gone"] - 1
    lines[edited] = lines[edited].replace('"recipient":"cicor"', '"recipient":"cicxr"')
    log.write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "audit.html"
    result = as_user(copy, None, "report", "audit", "--out", out)
    assert result.code == 0
    assert f"does not verify: entry {seqs['gone']} (line {seqs['gone']}) was edited" in result.stderr
    html = out.read_text(encoding="utf-8")
    assert "Verification failed" in html
    assert html.count("after the chain&#39;s first bad entry") == 2  # the edited export's entry and the next one


def test_exports_over_time_are_counted_by_day_or_month_with_the_gaps():
    def export(time, recipient, seq=1):
        return {"time": time, "recipient": recipient, "seq": seq}

    days = exports_over_time([export("2026-03-01T10:00:00Z", "a"), export("2026-03-03T09:00:00Z", "b"),
                              export("2026-03-03T11:00:00Z", "a"),
                              export("2026-03-02T11:00:00Z", "a", seq=None)])  # a ledger line no entry vouches for
    assert [c["period"] for c in days["columns"]] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert [c["total"] for c in days["columns"]] == [1, 0, 2] and [s["series"] for s in days["legend"]] == ["a", "b"]
    months = exports_over_time([export("2025-11-20T00:00:00Z", "a"), export("2026-02-01T00:00:00Z", "a")])
    assert [c["period"] for c in months["columns"]] == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert exports_over_time([])["columns"] == []
