"""The workspace folder: where it is, opening it, its config and secret, who is acting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from datashare.core.locking import TIMEOUT_ENV
from datashare.errors import InputError, WorkspaceError
from datashare.init import init_workspace
from datashare.workspace import (
    ACTOR_ENV,
    HOME_ENV,
    Workspace,
    open_workspace,
    os_user,
    resolve_actor,
    resolve_home,
    utc_now,
)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws", "tester")[0]


def test_resolve_home_prefers_the_argument_then_the_environment_then_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "from-env"))
    assert resolve_home("given") == tmp_path / "given"
    assert resolve_home(None) == resolve_home("") == tmp_path / "from-env"
    monkeypatch.delenv(HOME_ENV)
    assert resolve_home(None) == tmp_path / ".datashare"
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert resolve_home("~/ws") == tmp_path / "me" / "ws"


def test_opening_a_folder_that_is_no_workspace_says_how_to_make_one(tmp_path):
    with pytest.raises(WorkspaceError, match="no datashare workspace at") as caught:
        open_workspace(tmp_path / "nothing")
    assert "datashare init" in caught.value.hint
    assert not (tmp_path / "nothing").exists()


def test_a_bad_lock_timeout_is_reported_before_the_workspace_is_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv(TIMEOUT_ENV, "soon")
    with pytest.raises(InputError, match=TIMEOUT_ENV):
        open_workspace(tmp_path / "nothing")


def test_an_initialised_workspace_opens_with_its_paths(ws):
    opened = open_workspace(ws.home)
    assert opened == ws
    assert (opened.catalog_path, opened.audit_path, opened.config_path, opened.secret_path, opened.keys_dir) == (
        ws.home / "catalog.duckdb", ws.home / "audit.log", ws.home / "config.json", ws.home / "secret.key",
        ws.home / "keys")


def test_config_round_trips(ws):
    config = ws.config()
    config["roles"]["名"] = ["analyst"]
    config["note"] = "[red]not markup[/]"
    ws.save_config(config)
    assert ws.config() == config
    assert ws.config_path.read_text(encoding="utf-8").endswith("\n")


def test_a_damaged_config_is_a_workspace_error(ws):
    ws.config_path.write_text("{not json", encoding="utf-8")
    with pytest.raises(WorkspaceError, match="cannot read workspace config"):
        ws.config()


def test_a_connection_reads_and_writes_the_catalog(ws):
    with ws.connect() as con:
        con.execute("CREATE TABLE scratch AS SELECT 42 AS answer")
    with ws.connect(read_only=True) as con:
        assert con.execute("SELECT answer FROM scratch").fetchone() == (42,)


def test_resolve_actor_takes_the_option_then_the_environment_then_the_os_user(monkeypatch):
    monkeypatch.delenv(ACTOR_ENV, raising=False)
    assert resolve_actor(None) == os_user()
    monkeypatch.setenv(ACTOR_ENV, "svc-etl")
    assert resolve_actor(None) == "svc-etl"
    assert resolve_actor("alice@hospital") == "alice@hospital"


@pytest.mark.parametrize("name", ["two words", "[red]x[/]", "-leading-dash", "a" * 65, "a/b", "名", "root\n"])
def test_an_actor_name_outside_the_plain_alphabet_is_refused(name):
    with pytest.raises(InputError, match="actor names may use"):
        resolve_actor(name)


def test_utc_now_is_iso_8601_in_utc():
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", utc_now())


def test_without_home_or_environment_the_nearest_workspace_above_is_found(tmp_path, monkeypatch):
    monkeypatch.delenv(HOME_ENV, raising=False)
    project = tmp_path / "project"
    deep = project / "data" / "2026"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert resolve_home(None) == deep / ".datashare"  # none yet: the current folder's, where init makes one
    init_workspace(project / ".datashare", "tester")
    assert resolve_home(None) == project / ".datashare"  # as git finds its repository
    assert open_workspace().home == project / ".datashare"
    assert resolve_home(None, discover=False) == deep / ".datashare"  # init makes it where it is asked to
    (deep / ".datashare").mkdir()  # a folder of that name that holds no workspace is passed over
    assert resolve_home(None) == project / ".datashare"
    init_workspace(project / "data" / ".datashare", "tester")
    assert resolve_home(None) == project / "data" / ".datashare"  # the nearest wins
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "elsewhere"))
    assert resolve_home(None) == tmp_path / "elsewhere"  # the environment comes first
