"""The workspace folder (workspace.py): private modes whatever existed before, a read-only workspace, and the HMAC
secret sealed under the passphrase (made with the key, migrated from an older workspace on first use)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from datashare.core import secretbox
from datashare.errors import SigningKeyError, WorkspaceError
from datashare.workspace import Workspace, open_workspace

from .conftest import RESEARCH_POLICY as RESEARCH
from .conftest import SAMPLE_CSV, TEST_PASSPHRASE, cli_env, make_workspace, run_cli

EXPORT = ["--purpose", "clinical-research", "--recipient", "cicor"]


def fast_workspace(home: Path, *, register: bool = True) -> Path:
    make_workspace(home)
    if register:
        assert run_cli("register", str(SAMPLE_CSV), "--name", "patients", home=home).code == 0
        assert run_cli("policy", "approve", str(RESEARCH), home=home).code == 0
    return home


def modes(home: Path) -> dict[str, str]:
    """Every entry of the workspace with its mode, as text (``keys/`` 0700, ``audit.log`` 0600…)."""
    found = {".": f"{stat.S_IMODE(home.stat().st_mode):04o}"}
    for path in home.rglob("*"):
        found[path.relative_to(home).as_posix()] = f"{stat.S_IMODE(path.lstat().st_mode):04o}"
    return found


def private(home: Path) -> bool:
    return all(mode == ("0700" if (home / name).is_dir() else "0600") for name, mode in modes(home).items())


def test_everything_the_workspace_creates_is_private_whatever_the_umask(tmp_path):
    home = tmp_path / "ws"
    env = cli_env(home)

    def run(*args: str) -> None:
        proc = subprocess.run([sys.executable, "-m", "datashare", *args], env=env, capture_output=True, text=True,
                              preexec_fn=lambda: os.umask(0), timeout=120)
        assert proc.returncode == 0, proc.stderr

    run("init")
    run("register", str(SAMPLE_CSV), "--name", "patients")
    run("policy", "approve", str(RESEARCH))
    run("export", "patients", "--policy", str(RESEARCH), "--out", str(tmp_path / "run1"), *EXPORT)
    assert {"catalog.duckdb", "audit.log", "config.json", "approvals.json", "secret.key", "lock", "keys/keys.json",
            "keys/signing_key", "keys/signing_key.pub"} <= set(modes(home))
    assert private(home), modes(home)


def test_init_on_a_loose_folder_tightens_it_and_says_so(tmp_path):
    home = tmp_path / "ws"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    created = run_cli("init", "--json", home=home)
    assert created.code == 0, created.stderr
    assert created.json()["modes_tightened"] == [". 0755 -> 0700"]
    assert "Tightened modes" in created.stderr
    # An existing workspace whose files were opened up: the next init closes them again and lists what it changed.
    for name in ("catalog.duckdb", "audit.log", "config.json", "secret.key", "keys/signing_key.pub"):
        (home / name).chmod(0o644)
    (home / "keys").chmod(0o755)
    home.chmod(0o2775)  # group-writable and setgid: taken off (a world-writable or sticky folder is refused)
    again = run_cli("init", "--json", home=home)
    assert again.code == 0, again.stderr
    assert set(again.json()["modes_tightened"]) == {
        ". 2775 -> 0700", "catalog.duckdb 0644 -> 0600", "audit.log 0644 -> 0600", "config.json 0644 -> 0600",
        "secret.key 0644 -> 0600", "keys/ 0755 -> 0700", "keys/signing_key.pub 0644 -> 0600"}
    assert "catalog.duckdb 0644 -> 0600" in again.stderr
    assert private(home), modes(home)
    entry = json.loads((home / "audit.log").read_text(encoding="utf-8").splitlines()[-1])
    assert entry["action"] == "init" and "catalog.duckdb 0644 -> 0600" in entry["details"]["modes_tightened"]


def test_any_command_closes_a_loose_workspace(tmp_path):
    home = fast_workspace(tmp_path / "ws", register=False)
    (home / "catalog.duckdb").chmod(0o644)
    home.chmod(0o755)
    assert run_cli("datasets", home=home).code == 0
    assert private(home), modes(home)


def test_init_leaves_a_folders_other_files_alone(tmp_path):
    home = tmp_path / "ws"
    home.mkdir()
    notes = home / "notes.txt"
    notes.write_text("mine", encoding="utf-8")
    notes.chmod(0o644)
    assert run_cli("init", home=home).code == 0
    assert stat.S_IMODE(notes.stat().st_mode) == 0o644


@contextmanager
def read_only(folder: Path):
    """``folder`` read-only: a read-only bind mount for root (whom modes do not stop), else no write bits."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
            yield
        finally:
            subprocess.run(["umount", str(folder)], check=True)
        return
    paths = [folder, *folder.rglob("*")]
    saved = {path: stat.S_IMODE(path.stat().st_mode) for path in paths}
    for path in paths:
        path.chmod(saved[path] & ~0o222)
    try:
        yield
    finally:
        for path in reversed(paths):
            path.chmod(saved[path])


def test_a_read_only_workspace_is_one_clear_message_for_every_command(tmp_path):
    home = fast_workspace(tmp_path / "ws")
    out = tmp_path / "run1"
    assert run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(out), *EXPORT, home=home).code == 0
    before = (home / "audit.log").read_bytes()
    commands = [["datasets"], ["show", "patients"], ["verify", str(out)], ["audit", "verify"], ["audit"],
                ["policy", "check", str(RESEARCH)], ["risk", "patients", "--policy", str(RESEARCH)],
                ["register", str(SAMPLE_CSV), "--name", "again"], ["init"], ["keys", "show"],
                ["export", "patients", "--policy", str(RESEARCH), "--out", str(tmp_path / "run2"), *EXPORT]]
    with read_only(home):
        for args in commands:
            result = run_cli(*args, "--json", home=home)
            assert result.code == 1, (args, result.stderr)
            assert "Traceback" not in result.stderr and "internal error" not in result.stderr, (args, result.stderr)
            assert result.stderr.count("datashare: error:") == 1 and "cannot use the workspace" in result.stderr, \
                (args, result.stderr)
            assert result.json() == {"ok": False, "error": result.json()["error"], "exit_code": 1}, args
    assert (home / "audit.log").read_bytes() == before
    assert not (tmp_path / "run2").exists()


# --- the HMAC secret ------------------------------------------------------------------------------------------
def test_the_secret_is_sealed_under_the_passphrase(tmp_path):
    home = fast_workspace(tmp_path / "ws", register=False)
    stored = (home / "secret.key").read_bytes()
    assert secretbox.is_sealed(stored) and json.loads(stored)["kdf"]["name"] == "scrypt"
    secret = Workspace(home).secret(TEST_PASSPHRASE)
    assert len(secret) == 32 and secret not in stored and secret.hex().encode() not in stored
    with pytest.raises(SigningKeyError, match="wrong passphrase"):
        Workspace(home).secret("not it")


def test_the_seal_cannot_be_cheapened_by_editing_the_file(tmp_path):
    home = fast_workspace(tmp_path / "ws", register=False)
    document = json.loads((home / "secret.key").read_bytes())
    document["kdf"]["n"] = 2 ** 2  # a cheaper KDF would make guessing the passphrase faster
    (home / "secret.key").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(SigningKeyError):
        Workspace(home).secret(TEST_PASSPHRASE)
    document["kdf"]["n"] = 2 ** 40  # and a hostile one cannot ask for terabytes of memory
    (home / "secret.key").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(WorkspaceError, match="damaged"):
        Workspace(home).secret(TEST_PASSPHRASE)


def test_without_a_passphrase_init_makes_no_secret_and_the_key_brings_it(tmp_path):
    home = tmp_path / "ws"
    env = {k: v for k, v in cli_env(home).items() if k != "DATASHARE_PASSPHRASE"}
    made = run_cli("init", "--json", home=home, env=env)
    assert made.code == 0 and made.json()["key_id"] is None
    assert not (home / "secret.key").exists()
    assert run_cli("keys", "generate", home=home).code == 0
    assert secretbox.is_sealed((home / "secret.key").read_bytes())
    assert len(Workspace(home).secret(TEST_PASSPHRASE)) == 32


def pseudonyms(folder: Path) -> list[str]:
    con = duckdb.connect()
    try:
        return [row[0] for row in con.execute(
            f"SELECT patient_id FROM read_parquet('{folder / 'patients.parquet'}') ORDER BY ALL").fetchall()]
    finally:
        con.close()


def test_an_older_workspaces_plain_secret_is_sealed_on_first_use_and_logged(tmp_path):
    home = fast_workspace(tmp_path / "ws")
    secret = Workspace(home).secret(TEST_PASSPHRASE)
    first = tmp_path / "first"
    assert run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(first), *EXPORT, home=home).code == 0
    (home / "secret.key").write_bytes(secret)  # as a workspace made before secrets were sealed keeps it
    config = json.loads((home / "config.json").read_text(encoding="utf-8"))
    assert config.pop("secret_sealed") is True  # such a workspace's config does not say the secret is sealed
    (home / "config.json").write_text(json.dumps(config), encoding="utf-8")
    # A wrong passphrase seals nothing (it would lock the secret away): the key checks it first.
    wrong = run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(tmp_path / "no"), *EXPORT,
                    home=home, env=cli_env(home, DATASHARE_PASSPHRASE="not it"))
    assert wrong.code == 1 and "wrong passphrase" in wrong.stderr
    assert (home / "secret.key").read_bytes() == secret
    second = tmp_path / "second"
    assert run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(second), *EXPORT, home=home).code == 0
    assert secretbox.is_sealed((home / "secret.key").read_bytes())
    assert stat.S_IMODE((home / "secret.key").stat().st_mode) == 0o600
    assert Workspace(home).secret(TEST_PASSPHRASE) == secret
    assert pseudonyms(first) == pseudonyms(second)  # the same secret: the same pseudonyms
    actions = [json.loads(line)["action"] for line in (home / "audit.log").read_text(encoding="utf-8").splitlines()]
    assert actions.count("secret.migrate") == 1 and actions[-2:] == ["secret.migrate", "export"]
    assert run_cli("audit", "verify", home=home).code == 0
    assert json.loads((home / "config.json").read_text(encoding="utf-8"))["secret_sealed"] is True


@pytest.mark.parametrize("planted", [
    lambda sealed: b"\x07" * 32,  # a plain secret chosen by whoever can write the folder
    lambda sealed: sealed[:32],  # a sealed file cut to 32 bytes
])
def test_a_planted_or_damaged_secret_is_refused_not_migrated(tmp_path, planted):
    home = fast_workspace(tmp_path / "ws")
    sealed = (home / "secret.key").read_bytes()
    (home / "secret.key").write_bytes(planted(sealed))
    result = run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(tmp_path / "out"), *EXPORT,
                     home=home)
    assert result.code == 1 and "was replaced or damaged" in result.stderr, result.stderr
    assert (home / "secret.key").read_bytes() == planted(sealed) and not (tmp_path / "out").exists()
    actions = [json.loads(line)["action"] for line in (home / "audit.log").read_text(encoding="utf-8").splitlines()]
    assert "secret.migrate" not in actions


def test_a_damaged_sealed_file_is_not_migrated_even_without_the_config_flag(tmp_path):
    home = fast_workspace(tmp_path / "ws")
    config = json.loads((home / "config.json").read_text(encoding="utf-8"))
    config.pop("secret_sealed")  # a workspace sealed before the config said so
    (home / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (home / "secret.key").write_bytes((home / "secret.key").read_bytes()[:32])
    result = run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(tmp_path / "out"), *EXPORT,
                     home=home)
    assert result.code == 1 and "was replaced or damaged" in result.stderr, result.stderr


def test_a_symlinked_home_is_checked_and_tightened_as_the_real_folder(tmp_path):
    real = fast_workspace(tmp_path / "real", register=False)
    link = tmp_path / "link"
    link.symlink_to(real)
    real.chmod(0o755)
    (real / "catalog.duckdb").chmod(0o644)
    assert run_cli("datasets", home=link).code == 0
    assert private(real), modes(real)
    assert stat.S_IMODE(real.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o1777, 0o777, 0o1700])
def test_a_shared_folder_is_refused_and_never_chmodded(tmp_path, mode):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)  # like /tmp: world-writable and sticky
    result = run_cli("init", home=shared)
    assert result.code == 3 and "choose a folder of your own" in result.stderr, result.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == mode and list(shared.iterdir()) == []
    inside = shared / "mine"  # a folder of one's own inside it is fine
    assert run_cli("init", home=inside).code == 0
    assert stat.S_IMODE(inside.stat().st_mode) == 0o700


def test_a_workspace_owned_by_another_user_is_refused(tmp_path):
    home = fast_workspace(tmp_path / "ws", register=False)
    os.chown(home, 65534, 65534)
    for args in (["datasets"], ["init"]):
        result = run_cli(*args, home=home)
        assert result.code == 3 and "owned by uid 65534, not you" in result.stderr, result.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_files_duckdb_creates_during_a_command_are_private(tmp_path):
    home = fast_workspace(tmp_path / "ws", register=False)
    previous = os.umask(0o022)
    try:
        with open_workspace(home).connect() as con:
            con.execute("CREATE TABLE t AS SELECT range AS x FROM range(1000)")
            wal = home / "catalog.duckdb.wal"
            assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600
        assert os.umask(0o022) == 0o022  # the caller's umask is given back
        assert run_cli("datasets", home=home).code == 0
        assert os.umask(0o022) == 0o022  # and by the CLI run in process
    finally:
        os.umask(previous)


def test_a_command_run_in_a_subfolder_finds_the_workspace_above(tmp_path):
    make_workspace(tmp_path / ".datashare")
    sub = tmp_path / "analysis" / "week1"
    sub.mkdir(parents=True)
    env = {k: v for k, v in cli_env(tmp_path).items() if k != "DATASHARE_HOME"}
    found = run_cli("datasets", "--json", home=tmp_path, env=env, cwd=sub)
    assert found.code == 0 and found.json() == [], found.stderr
    assert json.loads((tmp_path / ".datashare" / "audit.log").read_text().splitlines()[-1])["action"] == "datasets"
    assert not (sub / ".datashare").exists()


def test_home_before_the_command_names_the_workspace_and_the_commands_own_wins(tmp_path):
    """`datashare --home ws datasets` said "No such option: --home"."""
    first, second = make_workspace(tmp_path / "first"), make_workspace(tmp_path / "second")
    assert run_cli("register", str(SAMPLE_CSV), "--name", "patients", home=first).code == 0
    env = {k: v for k, v in cli_env(first).items() if k != "DATASHARE_HOME"}
    before = run_cli("--home", str(first), "datasets", "--json", home=first, env=env, cwd=tmp_path)
    assert before.code == 0, before.stderr
    assert [d["name"] for d in before.json()] == ["patients"]
    own = run_cli("--home", str(first), "datasets", "--json", "--home", str(second), home=first, env=env,
                  cwd=tmp_path)
    assert own.code == 0 and own.json() == []
    # In one process (an embedding, the in-process tests), the next call does not inherit it
    from datashare.cli import main
    from datashare.workspace import HOME_ENV

    saved = os.environ.pop(HOME_ENV, None)
    try:
        main(["--home", str(first), "--quiet", "datasets", "--json"])
        assert HOME_ENV not in os.environ
    finally:
        if saved is not None:
            os.environ[HOME_ENV] = saved
