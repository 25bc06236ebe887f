"""``initialise``: the workspace's files, its first log entry and key; a second run changes nothing."""

from __future__ import annotations

import json
import os
import stat

import pytest

from datashare.audit.verify import verify_chain
from datashare.errors import InputError, RefusedError, SigningKeyError
from datashare.init import init_workspace, initialise
from datashare.signing.keystore import PASSPHRASE_ENV, load_private_key
from datashare.workspace import SECRET_BYTES, os_user

from .conftest import TEST_KDF_ROUNDS, TEST_PASSPHRASE


def entries(ws) -> list[dict]:
    return [json.loads(line) for line in ws.audit_path.read_text(encoding="utf-8").splitlines()]


def init(home, **kwargs):
    return initialise(home, None, passphrase=TEST_PASSPHRASE, ask=False, kdf_rounds=TEST_KDF_ROUNDS, **kwargs)


def test_initialise_creates_the_files_logs_init_and_makes_the_key(tmp_path):
    result = init(tmp_path / "ws", comment="cicor-custodian")
    ws = result.workspace
    assert result.created and result.key is not None
    assert sorted(os.listdir(ws.home)) == ["audit.log", "catalog.duckdb", "config.json", "keys", "lock",
                                           "secret.key"]
    assert ws.secret_path.stat().st_size >= SECRET_BYTES and stat.S_IMODE(ws.secret_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(ws.home.stat().st_mode) == 0o700
    config = ws.config()
    assert config["created_by"] == os_user() and config["roles"] == {os_user(): ["custodian"]}
    assert config["allow_service_accounts"] is False
    first, key_entry = entries(ws)
    assert (first["seq"], first["action"], first["details"]["created"]) == (1, "init", True)
    assert (key_entry["action"], key_entry["details"]["key_id"]) == ("keys.generate", result.key.key_id)
    _, info = load_private_key(ws, TEST_PASSPHRASE)
    assert info.key_id == result.key.key_id and info.comment == "cicor-custodian"
    assert (result.to_dict()["home"], result.to_dict()["created"], result.to_dict()["key_id"]) == (
        str(ws.home), True, result.key.key_id)


def test_initialise_again_keeps_everything_and_logs_it(tmp_path):
    first = init(tmp_path / "ws")
    ws = first.workspace
    secret, config = ws.secret_path.read_bytes(), ws.config()
    again = init(tmp_path / "ws")
    assert not again.created and again.key == first.key
    assert ws.secret_path.read_bytes() == secret and ws.config() == config
    assert [(e["action"], e["details"].get("created")) for e in entries(ws)] == [
        ("init", True), ("keys.generate", None), ("init", False)]
    assert verify_chain(ws.audit_path).entries == 3


def test_without_a_passphrase_no_key_is_made_and_a_later_run_makes_it(tmp_path, monkeypatch):
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    bare = initialise(tmp_path / "ws", None, ask=False)
    assert bare.created and bare.key is None and not bare.workspace.keys_dir.joinpath("signing_key").exists()
    keyed = init(tmp_path / "ws")
    assert not keyed.created and keyed.key is not None


def test_the_passphrase_may_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, "from the environment")
    result = initialise(tmp_path / "ws", None, ask=False, kdf_rounds=TEST_KDF_ROUNDS)
    assert load_private_key(result.workspace, "from the environment")[1] == result.key


def test_someone_elses_name_is_refused_on_an_existing_workspace_and_logged(tmp_path):
    ws = init(tmp_path / "ws").workspace
    with pytest.raises(RefusedError, match="acting as 'mallory' is not allowed"):
        initialise(ws.home, "mallory", passphrase=TEST_PASSPHRASE, ask=False)
    last = entries(ws)[-1]
    assert (last["action"], last["outcome"], last["target"]) == ("act_as", "denied", {"as": "mallory"})


def test_a_file_where_the_workspace_should_be_is_an_input_error(tmp_path):
    (tmp_path / "ws").write_text("not a folder")
    with pytest.raises(InputError, match="exists and is not a folder"):
        init(tmp_path / "ws")


def test_init_workspace_makes_the_actor_the_first_custodian_once(tmp_path):
    ws, created = init_workspace(tmp_path / "ws", "alice")
    assert created and ws.config()["roles"] == {"alice": ["custodian"]}
    again, created_again = init_workspace(tmp_path / "ws", "bob")
    assert again == ws and not created_again and ws.config()["roles"] == {"alice": ["custodian"]}


def test_an_empty_passphrase_is_refused_before_anything_is_created(tmp_path):
    with pytest.raises(SigningKeyError, match="empty passphrase"):
        initialise(tmp_path / "ws", None, passphrase="", ask=False, kdf_rounds=TEST_KDF_ROUNDS)
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize(("env", "actor", "passphrase", "error"), [
    ({}, None, "", SigningKeyError),                                     # an empty passphrase
    ({"DATASHARE_LOCK_TIMEOUT": "soon"}, None, TEST_PASSPHRASE, InputError),  # a lock timeout that is no number
    ({}, "someone-else", TEST_PASSPHRASE, RefusedError),                 # a first custodian who is not the OS user
])
def test_a_refused_init_creates_and_changes_nothing(tmp_path, monkeypatch, env, actor, passphrase, error):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(error):
        initialise(tmp_path / "new" / "ws", actor, passphrase=passphrase, ask=False, kdf_rounds=TEST_KDF_ROUNDS)
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "mine"
    existing.mkdir()
    existing.chmod(0o755)
    with pytest.raises(error):
        initialise(existing, actor, passphrase=passphrase, ask=False, kdf_rounds=TEST_KDF_ROUNDS)
    assert list(existing.iterdir()) == [] and stat.S_IMODE(existing.stat().st_mode) == 0o755  # not even tightened
