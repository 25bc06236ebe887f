"""Who may do what: authorize() against each role, and the refusal a person reads."""

from __future__ import annotations

import pytest

from datashare.errors import RefusedError
from datashare.init import init_workspace
from datashare.permissions import ANALYST, AUDITED_ACTIONS, AUDITOR, CUSTODIAN, PERMISSIONS, authorize, roles_of

ACTORS = {"cus": [CUSTODIAN], "ana": [ANALYST], "aud": [AUDITOR], "both": [ANALYST, AUDITOR], "nobody": []}

# (action, the actors allowed) for a sample of each kind of action
EXPECTED = [
    ("register", {"cus"}),
    ("policy.approve", {"cus"}),
    ("roles.grant", {"cus"}),
    ("keys.rotate", {"cus"}),
    ("export", {"cus", "ana", "both"}),
    ("risk", {"cus", "ana", "both"}),
    ("audit.read", {"cus", "aud", "both"}),
    ("audit.verify", {"cus", "aud", "both"}),
    ("roles.list", {"cus", "ana", "aud", "both"}),
    ("verify", set(ACTORS)),  # anyone may check a signature
    ("keys.show", set(ACTORS)),
]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    workspace = init_workspace(tmp_path_factory.mktemp("perm") / "ws", "cus")[0]
    config = workspace.config()
    config["roles"] = {name: roles for name, roles in ACTORS.items() if roles}
    workspace.save_config(config)
    return workspace


@pytest.mark.parametrize(("action", "allowed"), EXPECTED)
def test_authorize_allows_exactly_the_roles_for_the_action(ws, action, allowed):
    for actor in ACTORS:
        if actor in allowed:
            authorize(ws, actor, action)
        else:
            with pytest.raises(RefusedError):
                authorize(ws, actor, action)


def test_the_refusal_names_the_command_the_role_and_how_to_get_it(ws):
    with pytest.raises(RefusedError) as caught:
        authorize(ws, "ana", "roles.service_accounts")
    assert caught.value.message == "ana may not run `roles service-accounts`: it needs the custodian role"
    assert caught.value.hint == "A custodian can grant it: datashare roles grant ana custodian"
    with pytest.raises(RefusedError, match="may not run `audit`: it needs the auditor or custodian role"):
        authorize(ws, "nobody", "audit.read")


def test_roles_of_reads_the_config(ws):
    assert roles_of(ws, "both") == [ANALYST, AUDITOR]
    assert roles_of(ws, "stranger") == []


def test_a_custodian_may_do_every_action_that_needs_a_role():
    assert all(CUSTODIAN in roles for roles in PERMISSIONS.values())


def test_every_action_with_a_permission_is_an_audited_action():
    assert set(PERMISSIONS) <= set(AUDITED_ACTIONS)
    assert {"init", "act_as", "verify"} <= set(AUDITED_ACTIONS)
