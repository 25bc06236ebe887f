"""The signing key's use cases: create, rotate (the current passphrase first), hand out the public key."""

from __future__ import annotations

import json

import pytest

from datashare.audit.log import AuditWriteError
from datashare.errors import InputError, RefusedError, SigningKeyError, UsageError
from datashare.governance.keys import create_key, export_public, show_keys
from datashare.init import init_workspace
from datashare.signing.keystore import current_key, load_private_key
from datashare.signing.sshsig import keys_from_file

from .conftest import TEST_KDF_ROUNDS, TEST_PASSPHRASE


@pytest.fixture
def ws(tmp_path):
    return init_workspace(tmp_path / "ws", "cus")[0]


def make(ws, **kwargs):
    return create_key(ws, "cus", passphrase=TEST_PASSPHRASE, kdf_rounds=TEST_KDF_ROUNDS, **kwargs)


def last_entry(ws) -> dict:
    return json.loads(ws.audit_path.read_text(encoding="utf-8").splitlines()[-1])


def test_create_key_installs_and_logs_it(ws):
    info = make(ws)
    assert current_key(ws) == info and info.comment == "cus@datashare"
    entry = last_entry(ws)
    assert (entry["action"], entry["details"]) == ("keys.generate", {"key_id": info.key_id, "previous_key_id": None})


def test_a_second_key_without_rotate_is_refused(ws):
    info = make(ws)
    with pytest.raises(SigningKeyError, match="already has a signing key"):
        make(ws)
    assert current_key(ws) == info


def test_rotating_needs_the_current_passphrase_and_keeps_the_comment(ws):
    first = make(ws, comment="custodian@cicor")
    with pytest.raises(SigningKeyError, match="wrong passphrase"):
        create_key(ws, "cus", rotate=True, passphrase="guess", new_passphrase="mine now",
                   kdf_rounds=TEST_KDF_ROUNDS)
    assert current_key(ws) == first
    second = make(ws, rotate=True, new_passphrase="a new passphrase")
    assert second.comment == "custodian@cicor" and second.key_id != first.key_id
    assert load_private_key(ws, "a new passphrase")[1] == second
    assert (last_entry(ws)["action"], last_entry(ws)["details"]["previous_key_id"]) == ("keys.rotate", first.key_id)
    assert [key.key_id for key in show_keys(ws, "cus")] == [second.key_id, first.key_id]


def test_no_key_changes_without_its_entry(ws):
    ws.audit_path.unlink(missing_ok=True)
    ws.audit_path.mkdir()
    with pytest.raises(AuditWriteError):
        make(ws)
    assert not (ws.keys_dir / "signing_key").exists()


def test_only_a_custodian_makes_keys(ws):
    with pytest.raises(RefusedError, match="needs the custodian role"):
        create_key(ws, "ana", passphrase=TEST_PASSPHRASE, kdf_rounds=TEST_KDF_ROUNDS)
    assert not (ws.keys_dir / "signing_key").exists()


def test_export_public_writes_the_key_and_an_allowed_signers_file_with_every_key(ws, tmp_path):
    first = make(ws)
    second = make(ws, rotate=True)
    info, signers, principal = export_public(ws, "cus", tmp_path / "cicor.pub", principal="recipient@cicor")
    assert principal == "recipient@cicor"
    assert info == second and signers == tmp_path / "cicor.pub.allowed_signers"
    assert [key.key_id for key in keys_from_file(tmp_path / "cicor.pub")] == [second.key_id]
    assert [key.key_id for key in keys_from_file(signers, allowed_signers=True)] == [second.key_id, first.key_id]
    assert all(line.startswith('recipient@cicor namespaces="datashare" ') for line in signers.read_text().splitlines())
    assert (last_entry(ws)["action"], last_entry(ws)["details"]) == (
        "keys.export_public", {"key_id": second.key_id, "principal": "recipient@cicor"})


def test_the_principal_is_kept_for_the_next_export_and_must_be_a_plain_name(ws, tmp_path):
    """Recipients verify with -I the principal: an export after a rotation named the key's comment instead."""
    make(ws)
    export_public(ws, "cus", tmp_path / "first.pub", principal="custodian@hospital")
    make(ws, rotate=True)
    _, signers, principal = export_public(ws, "cus", tmp_path / "again.pub")
    assert principal == "custodian@hospital"
    assert all(line.startswith("custodian@hospital ") for line in signers.read_text().splitlines())
    for hostile in ("two words", 'x namespaces="*"', "a\nssh-ed25519 AAAA", ""):
        with pytest.raises(UsageError, match="--principal takes"):
            export_public(ws, "cus", tmp_path / "bad.pub", principal=hostile)
        with pytest.raises(UsageError, match="--comment takes"):
            make(ws, rotate=True, comment=hostile)


def test_export_public_to_a_folder_that_does_not_exist_is_an_input_error(ws, tmp_path):
    make(ws)
    with pytest.raises(InputError, match="cannot write"):
        export_public(ws, "cus", tmp_path / "missing" / "key.pub")
    assert last_entry(ws)["outcome"] == "error"
