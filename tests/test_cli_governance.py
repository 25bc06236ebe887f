"""Governance end to end: roles, service accounts, approval, revocation, and every refusal logged."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from .conftest import RESEARCH_POLICY as RESEARCH
from .conftest import SAMPLE_CSV, cli_env, run_cli


@pytest.fixture
def gov(tmp_path):
    home = tmp_path / "ws"

    def as_user(actor: str | None, *args, **kwargs):
        env = cli_env(home, **({"DATASHARE_ACTOR": actor} if actor else {}))
        return run_cli(*[str(a) for a in args], home=home, env=env, **kwargs)

    assert as_user(None, "init").code == 0
    assert as_user(None, "roles", "service-accounts", "on").code == 0
    assert as_user(None, "register", SAMPLE_CSV, "--name", "patients").code == 0
    for who, role in (("alice", "analyst"), ("olivia", "auditor")):
        assert as_user(None, "roles", "grant", who, role).code == 0
    return home, as_user, tmp_path


def export_args(out, policy=RESEARCH, purpose="clinical-research", recipient="cicor"):
    return ["export", "patients", "--policy", policy, "--out", out, "--purpose", purpose, "--recipient", recipient]


def last_entry(home):
    return json.loads((home / "audit.log").read_text().splitlines()[-1])


def test_roles_decide_who_may_do_what(gov):
    home, as_user, tmp = gov
    assert as_user(None, "policy", "approve", RESEARCH).code == 0
    assert as_user("alice", *export_args(tmp / "a")).code == 0
    assert as_user("alice", "risk", "patients", "--policy", RESEARCH).code == 0
    for actor, args in (("alice", ["register", SAMPLE_CSV, "--name", "x"]),
                        ("alice", ["policy", "approve", RESEARCH]),
                        ("alice", ["audit", "verify"]),
                        ("alice", ["roles", "grant", "alice", "custodian"]),
                        ("olivia", export_args(tmp / "o")),
                        ("mallory", ["datasets"])):
        result = as_user(actor, *args)
        assert result.code == 3, (actor, args, result.stderr)
        assert "role" in result.stderr
        entry = last_entry(home)
        assert (entry["actor"], entry["outcome"]) == (actor, "denied")
    assert as_user("olivia", "audit", "verify").code == 0
    listed = as_user("olivia", "roles", "list", "--json").json()
    assert listed["roles"]["alice"] == ["analyst"]


def test_named_actors_need_service_accounts_enabled(gov):
    home, as_user, tmp = gov
    assert as_user(None, "roles", "service-accounts", "off").code == 0
    refused = as_user("alice", "datasets")
    assert refused.code == 3 and "service-accounts on" in refused.stderr
    assert as_user(None, "datasets").code == 0


def test_last_custodian_stays(gov):
    home, as_user, tmp = gov
    me = json.loads((home / "config.json").read_text())["created_by"]
    result = as_user(None, "roles", "revoke", me, "custodian")
    assert result.code == 3 and "last custodian" in result.stderr


def test_export_refusals(gov):
    home, as_user, tmp = gov
    not_approved = as_user(None, *export_args(tmp / "1"))
    assert not_approved.code == 3 and "not approved" in not_approved.stderr
    assert as_user(None, "policy", "approve", RESEARCH).code == 0
    listed = as_user(None, "policy", "list", "--json").json()
    assert listed[0]["policy"] == "hk-clinical-research" and listed[0]["signature"].startswith("-----BEGIN SSH")

    loosened = tmp / "loosened.yaml"
    text = RESEARCH.read_text().replace("k_anonymity: 5", "k_anonymity: 1")
    loosened.write_text(text)
    changed = as_user(None, *export_args(tmp / "2", policy=loosened))
    assert changed.code == 3 and "no longer matches the approved policy" in changed.stderr

    wrong_purpose = as_user(None, *export_args(tmp / "3", purpose="marketing"))
    assert wrong_purpose.code == 3 and "purpose 'marketing'" in wrong_purpose.stderr
    wrong_recipient = as_user(None, *export_args(tmp / "4", recipient="pharma"))
    assert wrong_recipient.code == 3
    assert as_user(None, *export_args(tmp / "5", recipient="incubatee-7")).code == 0

    expired_doc = yaml.safe_load(RESEARCH.read_text())
    expired_doc.update(policy="expired", expires="2020-01-01")
    expired = tmp / "expired.yaml"
    expired.write_text(yaml.safe_dump(expired_doc))
    result = as_user(None, *export_args(tmp / "6", policy=expired))
    assert result.code == 3 and "expired on 2020-01-01" in result.stderr
    refused_approval = as_user(None, "policy", "approve", expired)
    assert refused_approval.code == 3 and "expired on 2020-01-01" in refused_approval.stderr
    assert (last_entry(home)["action"], last_entry(home)["outcome"]) == ("policy.approve", "denied")
    checked = as_user(None, "policy", "check", expired, "--json").json()
    assert checked["expired"] is True and checked["expires"] == "2020-01-01"

    other = dict(expired_doc, policy="other", expires="2030-01-01", applies_to=["cohort"])
    elsewhere = tmp / "other.yaml"
    elsewhere.write_text(yaml.safe_dump(other))
    result = as_user(None, *export_args(tmp / "7", policy=elsewhere))
    assert result.code == 3 and "does not apply" in result.stderr

    assert [a["status"] for a in as_user(None, "policy", "list", "--json").json()] == ["active"]
    assert as_user(None, "policy", "revoke", "hk-clinical-research", "--version", "1").code == 0
    revoked = as_user(None, *export_args(tmp / "8"))
    assert revoked.code == 3 and "revoked" in revoked.stderr
    assert [a["status"] for a in as_user(None, "policy", "list", "--json").json()] == ["revoked"]
    outcomes = [json.loads(x)["outcome"] for x in (home / "audit.log").read_text().splitlines()
                if json.loads(x)["action"] == "export"]
    assert outcomes.count("denied") == 7 and outcomes.count("ok") == 1
    for n in (1, 2, 3, 4, 6, 7, 8):
        assert not (tmp / str(n)).exists()


def test_approval_is_logged_and_named_in_the_manifest(gov):
    home, as_user, tmp = gov
    approved = as_user(None, "policy", "approve", RESEARCH, "--json").json()
    entry = [json.loads(x) for x in (home / "audit.log").read_text().splitlines()
             if json.loads(x)["action"] == "policy.approve"][-1]
    assert entry["hash"] == approved["audit_receipt"]["hash"]
    assert as_user(None, *export_args(tmp / "ok")).code == 0
    manifest = json.loads((tmp / "ok" / "manifest.json").read_text())
    assert manifest["policy"]["approval"]["audit_receipt"] == approved["audit_receipt"]
    again = as_user(None, "policy", "approve", RESEARCH, "--json")
    assert again.code == 0 and again.json()["approved_at"] == approved["approved_at"]


def entries(home):
    return [json.loads(line) for line in (home / "audit.log").read_text().splitlines()]


def test_a_refused_named_actor_leaves_an_act_as_denial(gov):
    home, as_user, tmp = gov
    assert as_user(None, "roles", "service-accounts", "off").code == 0
    me = json.loads((home / "config.json").read_text())["created_by"]
    for how in ("env", "flag"):
        before = len(entries(home))
        refused = (as_user("alice", "datasets") if how == "env"
                   else as_user(None, "datasets", "--actor", "alice"))
        assert refused.code == 3 and "acting as 'alice' is not allowed" in refused.stderr, (how, refused.stderr)
        [entry] = entries(home)[before:]  # the refusal, and nothing done as alice
        assert (entry["action"], entry["outcome"], entry["actor"], entry["target"]) == (
            "act_as", "denied", me, {"as": "alice"})


def test_the_actor_flag_names_the_actor_when_service_accounts_are_on(gov):
    home, as_user, tmp = gov
    assert as_user(None, "policy", "list", "--actor", "alice").code == 0
    assert (last_entry(home)["actor"], last_entry(home)["action"]) == ("alice", "policy.list")
    refused = as_user(None, "policy", "approve", RESEARCH, "--actor", "alice")
    assert refused.code == 3
    assert (last_entry(home)["actor"], last_entry(home)["outcome"]) == ("alice", "denied")


@pytest.mark.parametrize(("args", "action"), [
    (["classify", "patients", "dob=quasi"], "classify"),
    (["policy", "revoke", "hk-clinical-research"], "policy.revoke"),
])
def test_an_analyst_may_not_classify_or_revoke(gov, args, action):
    home, as_user, tmp = gov
    assert as_user(None, "policy", "approve", RESEARCH).code == 0
    before = {p.name: p.read_bytes() for p in home.iterdir() if p.name in ("approvals.json", "catalog.duckdb")}
    result = as_user("alice", *args)
    assert result.code == 3 and "needs the custodian role" in result.stderr, result.stderr
    entry = last_entry(home)
    assert (entry["actor"], entry["action"], entry["outcome"]) == ("alice", action, "denied")
    assert {p.name: p.read_bytes() for p in home.iterdir() if p.name in before} == before


def test_revoking_a_role_nobody_holds_is_a_logged_error(gov):
    home, as_user, tmp = gov
    result = as_user(None, "roles", "revoke", "olivia", "analyst")
    assert result.code == 1 and "olivia does not hold the analyst role" in result.stderr
    entry = last_entry(home)
    assert (entry["action"], entry["outcome"], entry["reason"]) == (
        "roles.revoke", "error", "olivia does not hold the analyst role")
    assert as_user(None, "roles", "list", "--json").json()["roles"]["olivia"] == ["auditor"]
    assert as_user(None, "roles", "revoke", "olivia", "auditor").code == 0
    assert "olivia" not in as_user(None, "roles", "list", "--json").json()["roles"]


def test_service_accounts_take_on_or_off_and_a_typo_is_logged(gov):
    home, as_user, tmp = gov
    result = as_user(None, "roles", "service-accounts", "maybe")
    assert result.code == 1 and "on or off, not 'maybe'" in result.stderr
    entry = last_entry(home)
    assert (entry["action"], entry["outcome"]) == ("roles.service_accounts", "error")
    assert as_user(None, "roles", "list", "--json").json()["allow_service_accounts"] is True


def test_editing_approvals_does_not_undo_a_logged_revocation(gov):
    home, as_user, tmp = gov
    assert as_user(None, "policy", "approve", RESEARCH).code == 0
    assert as_user(None, "policy", "revoke", "hk-clinical-research").code == 0
    approvals_file = home / "approvals.json"
    approvals = json.loads(approvals_file.read_text())
    approvals[0]["revoked"] = None  # the signature does not cover this field
    approvals_file.write_text(json.dumps(approvals))
    result = as_user(None, *export_args(tmp / "x"))
    assert result.code == 3 and "was revoked" in result.stderr and "approvals.json" in result.stderr
    assert not (tmp / "x").exists()
    assert (last_entry(home)["action"], last_entry(home)["outcome"]) == ("export", "denied")
    assert [a["status"] for a in as_user(None, "policy", "list", "--json").json()] == ["revoked"]
    # A custodian approving again (a later entry than the revocation) makes the policy usable again.
    approvals_file.write_text(json.dumps([dict(approvals[0], revoked={"by": "x", "at": "2026-01-01"})]))
    assert as_user(None, "policy", "approve", RESEARCH).code == 0
    assert as_user(None, *export_args(tmp / "y")).code == 0


def test_policy_show_and_diff_read_the_approved_texts(gov):
    home, as_user, tmp = gov
    v2 = tmp / "v2.yaml"
    v2.write_text(RESEARCH.read_text().replace("version: 1", "version: 2").replace("k_anonymity: 5", "k_anonymity: 7"))
    for path in (RESEARCH, v2):
        assert as_user(None, "policy", "approve", path).code == 0
    shown = as_user("olivia", "policy", "show", "hk-clinical-research", "--version", "1")  # an auditor may read
    assert shown.code == 0 and shown.stdout == RESEARCH.read_text(), shown.stderr  # exactly, and nothing else
    assert "hk-clinical-research v1 as approved by" in shown.stderr
    document = as_user("alice", "policy", "show", "hk-clinical-research", "--json").json()
    assert {k: document[k] for k in ("policy", "version", "text")} == {
        "policy": "hk-clinical-research", "version": 2, "text": v2.read_text()}
    assert set(document) == {"policy", "version", "sha256", "approved_by", "approved_at", "text"}
    diff = as_user(None, "policy", "diff", "hk-clinical-research", "1", "2")
    assert diff.code == 0 and diff.stdout.startswith("--- hk-clinical-research v1\n+++ hk-clinical-research v2\n")
    assert "-  k_anonymity: 5\n+  k_anonymity: 7\n" in diff.stdout
    assert as_user(None, "policy", "diff", "hk-clinical-research", "1", "2", "--json").json()["identical"] is False
    same = as_user(None, "policy", "diff", "hk-clinical-research", "2", "2")
    assert same.code == 0 and same.stdout == "" and "have the same text" in same.stderr
    stored = home / "policy-texts" / f"{hashlib.sha256(RESEARCH.read_bytes()).hexdigest()}.yaml"
    stored.write_text(stored.read_text() + "# edited\n")
    tampered = as_user(None, "policy", "show", "hk-clinical-research", "--version", "1", "--json")
    assert tampered.code == 4 and "does not match its approved SHA-256" in tampered.stderr
    assert tampered.json()["exit_code"] == 4 and "k_anonymity" not in tampered.stdout  # the text is not shown
    assert as_user(None, "policy", "diff", "hk-clinical-research", "1", "2").code == 4
    for path in (home / "policy-texts").iterdir():
        path.unlink()
    older = as_user(None, "policy", "show", "hk-clinical-research")
    assert older.code == 1 and "is not stored: it was approved before" in older.stderr, older.stderr
    assert last_entry(home)["action"] == "policy.show"
