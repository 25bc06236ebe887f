"""Roles: granting and revoking (custodians only, logged first), the last custodian, service accounts."""

from __future__ import annotations

import json

import pytest

from datashare.audit.log import AuditWriteError
from datashare.errors import InputError, RefusedError
from datashare.governance.roles import grant, list_roles, revoke, set_service_accounts, workspace_actor
from datashare.init import init_workspace
from datashare.workspace import ACTOR_ENV, os_user


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.delenv(ACTOR_ENV, raising=False)
    return init_workspace(tmp_path / "ws", "cus")[0]


def last_entry(ws) -> dict:
    return json.loads(ws.audit_path.read_text(encoding="utf-8").splitlines()[-1])


def test_grant_and_revoke_change_the_config_and_are_logged(ws):
    assert grant(ws, "cus", "ana", "analyst") == {"cus": ["custodian"], "ana": ["analyst"]}
    entry = last_entry(ws)
    assert (entry["action"], entry["actor"], entry["target"]) == ("roles.grant", "cus",
                                                                  {"subject": "ana", "role": "analyst"})
    grant(ws, "cus", "ana", "auditor")
    assert ws.config()["roles"]["ana"] == ["analyst", "auditor"]
    revoke(ws, "cus", "ana", "analyst")
    revoke(ws, "cus", "ana", "auditor")
    assert "ana" not in ws.config()["roles"]  # no empty role list left behind
    assert last_entry(ws)["action"] == "roles.revoke"


def test_unknown_roles_and_names_are_input_errors_that_are_logged(ws):
    with pytest.raises(InputError, match="unknown role 'analist' \\(did you mean 'analyst'\\?\\)"):
        grant(ws, "cus", "ana", "analist")
    assert (last_entry(ws)["outcome"], last_entry(ws)["action"]) == ("error", "roles.grant")
    with pytest.raises(InputError, match="actor names may use"):
        grant(ws, "cus", "two words", "analyst")
    with pytest.raises(InputError, match="ana does not hold the auditor role"):
        revoke(ws, "cus", "ana", "auditor")
    assert ws.config()["roles"] == {"cus": ["custodian"]}


def test_the_last_custodian_cannot_be_removed(ws):
    with pytest.raises(RefusedError, match="last custodian"):
        revoke(ws, "cus", "cus", "custodian")
    assert last_entry(ws)["outcome"] == "denied"
    grant(ws, "cus", "other", "custodian")
    revoke(ws, "cus", "cus", "custodian")
    assert ws.config()["roles"] == {"other": ["custodian"]}


def test_only_a_custodian_changes_roles(ws):
    grant(ws, "cus", "ana", "analyst")
    with pytest.raises(RefusedError, match="ana may not run `roles grant`"):
        grant(ws, "ana", "ana", "custodian")
    assert ws.config()["roles"]["ana"] == ["analyst"]
    assert (last_entry(ws)["actor"], last_entry(ws)["outcome"]) == ("ana", "denied")


def test_no_change_without_its_entry(ws):
    config = ws.config()
    ws.audit_path.unlink(missing_ok=True)
    ws.audit_path.mkdir()  # the log cannot be written
    with pytest.raises(AuditWriteError):
        grant(ws, "cus", "ana", "analyst")
    with pytest.raises(AuditWriteError):
        set_service_accounts(ws, "cus", True)
    assert ws.config() == config


def test_another_name_is_accepted_only_when_service_accounts_are_on(ws):
    assert workspace_actor(ws, None) == os_user()
    with pytest.raises(RefusedError, match="acting as 'svc-etl' is not allowed"):
        workspace_actor(ws, "svc-etl")
    entry = last_entry(ws)
    assert (entry["actor"], entry["action"], entry["outcome"], entry["target"]) == (
        os_user(), "act_as", "denied", {"as": "svc-etl"})
    set_service_accounts(ws, "cus", "on")
    assert workspace_actor(ws, "svc-etl") == "svc-etl"
    set_service_accounts(ws, "cus", False)
    with pytest.raises(RefusedError):
        workspace_actor(ws, "svc-etl")


def test_service_accounts_take_on_or_off_only(ws):
    with pytest.raises(InputError, match="on or off, not 'maybe'"):
        set_service_accounts(ws, "cus", "maybe")
    assert ws.config()["allow_service_accounts"] is False
    assert last_entry(ws)["action"] == "roles.service_accounts" and last_entry(ws)["outcome"] == "error"


def test_list_roles(ws):
    grant(ws, "cus", "aud", "auditor")
    assert list_roles(ws, "aud") == {"roles": {"cus": ["custodian"], "aud": ["auditor"]},
                                     "allow_service_accounts": False}
    with pytest.raises(RefusedError):
        list_roles(ws, "stranger")
