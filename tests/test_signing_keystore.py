"""The workspace's signing key: made, installed, loaded with its passphrase, rotated; passphrases."""

from __future__ import annotations

import io
import stat
import subprocess
import sys

import duckdb
import pytest

from datashare.core.fs import staged_writes
from datashare.errors import SigningKeyError
from datashare.init import init_workspace
from datashare.signing.keystore import (
    KDF_ROUNDS,
    NEW_PASSPHRASE_ENV,
    PASSPHRASE_ENV,
    PRIVATE_KEY_FILE,
    KeyLoading,
    current_key,
    has_key,
    load_private_key,
    load_public_keys,
    prepare_key,
    read_index,
    read_new_passphrase,
    read_passphrase,
)
from datashare.signing.sshsig import key_id_of_blob, public_blob

from .conftest import TEST_KDF_ROUNDS, TEST_PASSPHRASE


@pytest.fixture
def ws(tmp_path):
    return init_workspace(tmp_path / "ws", "tester")[0]


def install(ws, passphrase: str = TEST_PASSPHRASE, *, rotate: bool = False, kdf_rounds: int = TEST_KDF_ROUNDS):
    info, files = prepare_key(ws, passphrase, "tester@cicor", rotate=rotate, kdf_rounds=kdf_rounds)
    with staged_writes(files):
        pass
    return info


def test_a_prepared_key_is_only_written_when_its_files_are(ws):
    assert not has_key(ws)
    info, files = prepare_key(ws, TEST_PASSPHRASE, "tester@cicor", kdf_rounds=TEST_KDF_ROUNDS)
    assert not has_key(ws) and read_index(ws)["current"] is None
    modes = {path.name: mode for path, (_, mode) in files.items()}
    assert sorted(modes) == ["keys.json", "signing_key", "signing_key.pub"] and modes["signing_key"] == 0o600
    with staged_writes(files):
        pass
    assert has_key(ws) and current_key(ws) == info
    assert stat.S_IMODE((ws.keys_dir / PRIVATE_KEY_FILE).stat().st_mode) == 0o600
    assert (ws.keys_dir / "signing_key.pub").read_text() == info.public_key + "\n"


def test_the_key_loads_with_its_passphrase_and_matches_its_id(ws):
    info = install(ws)
    key, loaded = load_private_key(ws, TEST_PASSPHRASE)
    assert loaded == info and key_id_of_blob(public_blob(key.public_key())) == info.key_id
    assert info.public_key.startswith("ssh-ed25519 AAAA") and info.public_key.endswith(" tester@cicor")


def test_a_wrong_passphrase_is_a_clear_error(ws):
    install(ws)
    with pytest.raises(SigningKeyError, match="wrong passphrase for the signing key") as caught:
        load_private_key(ws, "not the passphrase")
    assert PASSPHRASE_ENV in caught.value.hint


def test_no_key_and_an_empty_passphrase(ws):
    with pytest.raises(SigningKeyError, match="no signing key"):
        current_key(ws)
    assert load_public_keys(ws) == []
    with pytest.raises(SigningKeyError, match="empty passphrase"):
        prepare_key(ws, "", "c", kdf_rounds=TEST_KDF_ROUNDS)


def test_a_second_key_needs_rotate_and_the_old_one_stays_trusted(ws):
    first = install(ws)
    with pytest.raises(SigningKeyError, match="already has a signing key"):
        prepare_key(ws, TEST_PASSPHRASE, "c", kdf_rounds=TEST_KDF_ROUNDS)
    second = install(ws, "a new passphrase", rotate=True)
    assert current_key(ws) == second
    current, retired = load_public_keys(ws)
    assert current == second and retired.key_id == first.key_id and retired.retired == second.created
    assert load_private_key(ws, "a new passphrase")[1] == second


def test_a_key_file_that_does_not_match_the_index_is_refused(ws):
    install(ws)
    key_bytes = (ws.keys_dir / PRIVATE_KEY_FILE).read_bytes()
    install(ws, rotate=True)
    (ws.keys_dir / PRIVATE_KEY_FILE).write_bytes(key_bytes)  # the old key put back under the current one's entry
    with pytest.raises(SigningKeyError, match="does not match"):
        load_private_key(ws, TEST_PASSPHRASE)


def test_the_passphrase_comes_from_the_environment_and_never_from_nowhere(monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, "from env")
    assert read_passphrase(confirm=True) == "from env"
    monkeypatch.delenv(PASSPHRASE_ENV)
    monkeypatch.setattr(sys, "stdin", io.StringIO("typed?\n"))  # not a terminal
    with pytest.raises(SigningKeyError, match="no terminal to ask on"):
        read_passphrase(confirm=False)


def test_a_rotated_keys_passphrase_defaults_to_the_current_one(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.delenv(NEW_PASSPHRASE_ENV, raising=False)
    assert read_new_passphrase("current") == "current"
    monkeypatch.setenv(NEW_PASSPHRASE_ENV, "")
    assert read_new_passphrase("current") == "current"
    monkeypatch.setenv(NEW_PASSPHRASE_ENV, "new one")
    assert read_new_passphrase("current") == "new one"


def test_a_wrong_passphrase_interrupts_the_query_it_overlaps(ws):
    """The key loads on its own thread while DuckDB works; a wrong passphrase stops that work at once.

    The key has the product's bcrypt rounds: loading it takes long enough for the query to be under way.
    """
    install(ws, kdf_rounds=KDF_ROUNDS)
    con = duckdb.connect()
    loading = KeyLoading(ws, "not the passphrase")
    loading.on_failure(con.interrupt)
    with pytest.raises(duckdb.InterruptException):  # uninterrupted, this query runs for many seconds
        con.execute("SELECT sum(hash(i)) FROM range(2000000000) t(i)").fetchall()
    with pytest.raises(SigningKeyError, match="wrong passphrase"):
        loading.result()
    with pytest.raises(SigningKeyError, match="wrong passphrase"):  # a failure already known is raised at once
        loading.on_failure(con.interrupt)
    key, info = KeyLoading(ws, TEST_PASSPHRASE).result()
    assert info.key_id == current_key(ws).key_id


EXIT_WHILE_THE_KDF_RUNS = """
import sys
from pathlib import Path
from datashare.signing.keystore import KeyLoading
from datashare.workspace import Workspace
loading = KeyLoading(Workspace(Path(sys.argv[1])), "not the passphrase")
assert not loading._thread.daemon
sys.exit(3)  # a command refused before it needed the key: the process must still end with its own code
"""


def test_a_command_that_exits_while_its_key_loads_ends_with_its_own_exit_code(tmp_path):
    """The key's KDF thread is waited for at exit; as a daemon inside bcrypt it aborted the process (exit 134)."""
    from datashare.governance.keys import create_key

    ws = init_workspace(tmp_path / "ws", "tester")[0]
    create_key(ws, "tester", passphrase=TEST_PASSPHRASE)  # the product's KDF rounds: the thread is busy at exit
    for _ in range(3):
        proc = subprocess.run([sys.executable, "-c", EXIT_WHILE_THE_KDF_RUNS, str(ws.home)], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 3, proc.stderr
