"""Who is acting: the OS account from the process's effective uid, never from environment variables."""

from __future__ import annotations

import json
import os
import pwd

from datashare.governance.roles import set_service_accounts
from datashare.init import initialise
from datashare.workspace import Workspace, os_user

from .conftest import RESEARCH_POLICY, TEST_PASSPHRASE, cli_env, run_cli

REAL_ACCOUNT = pwd.getpwuid(os.geteuid()).pw_name
BOSS = "boss"  # the workspace's custodian, an account other than the one running the tests


def test_os_user_is_the_effective_account_whatever_the_environment(monkeypatch):
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, BOSS)
    assert os_user() == REAL_ACCOUNT


def _entries(home):
    return [json.loads(line) for line in (home / "audit.log").read_text().splitlines()]


def test_logname_and_user_do_not_make_you_someone_else(tmp_path):
    """The attack: set LOGNAME/USER to the custodian's name and act as the custodian."""
    assert REAL_ACCOUNT != BOSS
    home = tmp_path / "ws"
    initialise(home, BOSS, passphrase=TEST_PASSPHRASE, ask=False, kdf_rounds=1, named_actor=True)  # boss's
    spoofed = cli_env(home, LOGNAME=BOSS, USER=BOSS, LNAME=BOSS, USERNAME=BOSS)

    granted = run_cli("roles", "grant", "mallory", "custodian", home=home, env=spoofed)
    assert granted.code == 3, granted.stderr
    approved = run_cli("policy", "approve", str(RESEARCH_POLICY), home=home, env=spoofed)
    assert approved.code == 3, approved.stderr
    denied = _entries(home)[-2:]
    assert [(e["action"], e["outcome"], e["actor"]) for e in denied] == [
        ("roles.grant", "denied", REAL_ACCOUNT), ("policy.approve", "denied", REAL_ACCOUNT)]
    assert "mallory" not in json.loads((home / "config.json").read_text())["roles"]
    assert not (home / "approvals.json").exists()

    # Naming boss outright is acting as someone else: refused while service accounts are off.
    named = cli_env(home, LOGNAME=BOSS, USER=BOSS, DATASHARE_ACTOR=BOSS)
    refused = run_cli("policy", "approve", str(RESEARCH_POLICY), home=home, env=named)
    assert refused.code == 3 and "service-accounts on" in refused.stderr
    assert (_entries(home)[-1]["action"], _entries(home)[-1]["actor"]) == ("act_as", REAL_ACCOUNT)

    # Once boss allows service accounts, naming boss is allowed, and logged under that name.
    set_service_accounts(Workspace(home), BOSS, True)
    allowed = run_cli("policy", "approve", str(RESEARCH_POLICY), home=home, env=named)
    assert allowed.code == 0, allowed.stderr
    assert (_entries(home)[-1]["action"], _entries(home)[-1]["actor"]) == ("policy.approve", BOSS)


def test_init_names_the_os_user_as_the_first_custodian_never_another(tmp_path):
    """The attack: `init --actor alice` made alice the custodian of a new workspace, key comment alice@datashare."""
    home = tmp_path / "ws"
    for env in ({}, {"DATASHARE_ACTOR": "alice"}):
        args = ["init", "--actor", "alice"] if not env else ["init"]
        result = run_cli(*args, home=home, env=cli_env(home, **env))
        assert result.code == 3 and "not allowed in a new workspace" in result.stderr, result.stderr
        assert not (home / "config.json").exists()
    assert run_cli("init", "--actor", REAL_ACCOUNT, home=home).code == 0  # naming yourself is fine
    assert json.loads((home / "config.json").read_text())["roles"] == {REAL_ACCOUNT: ["custodian"]}
    assert "alice" not in (home / "keys" / "signing_key.pub").read_text()
