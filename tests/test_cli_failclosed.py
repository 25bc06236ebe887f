"""Fail closed: when the audit log cannot be written, a governance or key change does not happen.

The log is made unwritable the way it happens in real life (a folder restored where the file was),
then each command must fail with one clear error and leave the workspace exactly as it was.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from .conftest import RESEARCH_POLICY as RESEARCH
from .conftest import cli_env, run_cli


def snapshot(home: Path) -> dict[str, str]:
    """Every file of the workspace (and beside it) by path and SHA-256, the log folder aside."""
    return {str(p.relative_to(home.parent)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.parent.rglob("*")) if p.is_file()}


def break_the_log(home: Path) -> None:
    log = home / "audit.log"
    log.rename(home.parent / "audit.log.saved")
    log.mkdir()


@pytest.fixture
def ws(tmp_path):
    home = tmp_path / "ws"

    def run(*args, passphrase: bool = True):
        env = cli_env(home)
        if not passphrase:
            env.pop("DATASHARE_PASSPHRASE")
        return run_cli(*[str(a) for a in args], home=home, env=env)

    assert run("init").code == 0
    assert run("roles", "grant", "alice", "analyst").code == 0
    assert run("policy", "approve", RESEARCH).code == 0
    return home, run


@pytest.mark.parametrize("args", [
    ["roles", "grant", "bob", "analyst"],
    ["roles", "revoke", "alice", "analyst"],
    ["roles", "service-accounts", "on"],
    ["policy", "revoke", "hk-clinical-research"],
    ["keys", "generate", "--rotate"],
    ["keys", "export-public", "--out", "{tmp}/custodian.pub"],
])
def test_a_change_whose_entry_cannot_be_written_does_not_happen(ws, args):
    home, run = ws
    args = [a.replace("{tmp}", str(home.parent)) for a in args]
    break_the_log(home)
    before = snapshot(home)
    result = run(*args)
    assert result.code == 1, result.stderr
    assert f"cannot write the audit log {home / 'audit.log'}: Is a directory" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert snapshot(home) == before


def test_a_first_key_whose_entry_cannot_be_written_is_not_created(tmp_path):
    home = tmp_path / "ws"
    env = cli_env(home)
    env.pop("DATASHARE_PASSPHRASE")
    assert run_cli("init", home=home, env=env).code == 0  # no passphrase: no key yet
    break_the_log(home)
    result = run_cli("keys", "generate", home=home)
    assert result.code == 1 and "cannot write the audit log" in result.stderr, result.stderr
    assert sorted(p.name for p in (home / "keys").iterdir()) == []
