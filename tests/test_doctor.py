"""``datashare doctor``: each check passes on a sound workspace and fails on the fault it is for, all in one run."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys

import duckdb
import pytest
import yaml

from datashare.audit.log import append
from datashare.catalog import register
from datashare.catalog.purge import purge
from datashare.doctor import CHECKS, diagnose
from datashare.governance import approve
from datashare.workspace import Workspace

from .conftest import RESEARCH_POLICY, TEST_PASSPHRASE, cli_env, generated_workspace, run_cli

ACTOR = "keeper"
CANARY = "ZQXCANARY-DOCTOR-5150"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A sound workspace: generated patients, a small dataset holding a distinctive value, an approved policy."""
    base = tmp_path_factory.mktemp("doctor")
    workspace, _ = generated_workspace(base, ACTOR, 50, 9)
    notes = base / "notes.csv"
    notes.write_text("id,note\n" + "".join(f"{i},{CANARY if i == 3 else 'seen'}\n" for i in range(40)),
                     encoding="utf-8")
    register(workspace, notes, "notes", actor=ACTOR)
    approve(workspace, ACTOR, RESEARCH_POLICY, passphrase=TEST_PASSPHRASE)
    return base


@pytest.fixture
def ws(template, tmp_path):
    shutil.copytree(template, tmp_path, dirs_exist_ok=True)
    return Workspace(tmp_path / "ws")


def _doctor(ws, *args, **env):
    return run_cli("doctor", *args, home=ws.home, env=cli_env(ws.home, DATASHARE_ACTOR=ACTOR, **env))


def test_a_sound_workspace_passes_every_check(ws):
    result = _doctor(ws, "--json")
    assert result.code == 0, result.stdout
    checks = result.json()["checks"]
    assert [c["name"] for c in checks] == list(CHECKS) and all(c["ok"] for c in checks), checks
    shown = _doctor(ws)
    assert shown.stdout.splitlines()[0].startswith("✓ workspace: found at ")
    assert "✓ catalog: 2 datasets, 2 versions (0 purged)" in shown.stdout
    logged = json.loads(ws.audit_path.read_text(encoding="utf-8").splitlines()[-1])
    assert (logged["action"], logged["outcome"]) == ("doctor", "ok")


def test_every_fault_is_found_in_one_run_and_no_cell_is_shown(ws):
    (ws.home / "config.json").chmod(0o644)
    soon = yaml.safe_load(RESEARCH_POLICY.read_text(encoding="utf-8"))
    soon.update(policy="short-lived", expires=(dt.date.today() + dt.timedelta(days=10)).isoformat())
    (ws.home.parent / "soon.yaml").write_text(yaml.safe_dump(soon), encoding="utf-8")
    approve(ws, ACTOR, ws.home.parent / "soon.yaml", passphrase=TEST_PASSPHRASE)
    con = duckdb.connect(str(ws.catalog_path))
    con.execute('DROP TABLE data."notes__v1"')  # behind datashare's back
    con.close()
    lines = ws.audit_path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace('"ok"', '"OK"', 1)
    ws.audit_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _doctor(ws, "--json")
    assert result.code == 1
    found = {c["name"]: c for c in result.json()["checks"]}
    assert [name for name, c in found.items() if c["ok"] is False] == ["modes", "audit_log", "policies", "catalog"]
    assert found["modes"]["detail"].startswith("open to group or others: config.json 0644")
    assert "short-lived v1 expires" in found["policies"]["detail"] and "(in 10 days)" in found["policies"]["detail"]
    assert found["catalog"]["detail"] == "notes v1: its table is missing"
    assert (ws.home / "config.json").stat().st_mode & 0o777 == 0o644  # doctor reports, it does not change
    shown = _doctor(ws, "--expiring-within", "5")
    assert shown.code == 1 and "✓ policies" in shown.stdout and "✗ catalog" in shown.stdout
    assert "3 checks failed: file modes, audit log, catalog" in shown.stderr
    assert CANARY not in result.stdout + shown.stdout + shown.stderr


def test_a_purge_the_log_records_but_the_catalog_does_not_show_is_found(ws):
    purge(ws, ACTOR, "notes", 1, "done")
    assert diagnose(ws.home, ACTOR).ok
    append(ws, actor=ACTOR, action="purge", target={"dataset": "patients", "version": 1}, details={"reason": "x"})
    catalog = {c.name: c for c in diagnose(ws.home, ACTOR).checks}["catalog"]
    assert catalog.ok is False and "purge of patients v1" in catalog.detail and "run the purge again" in catalog.detail


def test_the_key_without_a_passphrase_is_not_run_and_a_wrong_one_fails(ws):
    env = cli_env(ws.home, DATASHARE_ACTOR=ACTOR)
    del env["DATASHARE_PASSPHRASE"]
    unasked = run_cli("doctor", "--json", home=ws.home, env=env)
    key = {c["name"]: c for c in unasked.json()["checks"]}["key"]
    assert unasked.code == 0 and key["ok"] is None and "no passphrase" in key["detail"]
    wrong = _doctor(ws, "--json", DATASHARE_PASSPHRASE="not it")
    key = {c["name"]: c for c in wrong.json()["checks"]}["key"]
    assert wrong.code == 1 and key["ok"] is False and "wrong passphrase" in key["detail"]


def test_a_held_lock_fails_and_the_catalog_is_then_not_read(ws):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()", str(ws.home / "lock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        checks = {c.name: c for c in diagnose(ws.home, ACTOR).checks}
    finally:
        holder.communicate("")
    assert checks["lock"].ok is False and checks["catalog"].ok is None
    assert "the workspace is busy" in checks["catalog"].detail


def test_no_workspace_and_plain_ascii(tmp_path):
    missing = run_cli("doctor", "--json", home=tmp_path / "none")
    assert missing.code == 1
    assert [(c["name"], c["ok"]) for c in missing.json()["checks"]] == \
        [("workspace", False)] + [(name, None) for name in CHECKS[1:]]
    ascii_only = run_cli("doctor", home=tmp_path / "none", process=True,
                         env=cli_env(tmp_path / "none", PYTHONIOENCODING="ascii"))
    assert ascii_only.stdout.splitlines()[:2] == [f"FAIL workspace: no datashare workspace at {tmp_path / 'none'}",
                                                  "skip file modes: not run: no workspace"]


def test_a_log_cut_below_the_approval_is_found(ws):
    """A log cut at its end is a sound chain; the approval names its entry, and doctor looks for it."""
    approval = next(a for a in json.loads((ws.home / "approvals.json").read_text(encoding="utf-8")))
    seq = approval["audit_receipt"]["seq"]
    lines = ws.audit_path.read_bytes().split(b"\n")
    ws.audit_path.write_bytes(b"\n".join(lines[:seq - 1]) + b"\n")
    result = _doctor(ws, "--json")
    audit_log = next(c for c in result.json()["checks"] if c["name"] == "audit_log")
    # (doctor logs itself before it looks: the entry of that number is its own, not the approval's)
    assert result.code == 1 and not audit_log["ok"], audit_log
    assert f"entry {seq} differs from the one the approval of hk-clinical-research v1" in audit_log["detail"]
