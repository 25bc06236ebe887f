"""Fault injection with real processes: kill -9 at random points during register, export and audit appends,
each followed by the same after-check; a torn audit line made on purpose and acknowledged; a killed export's
staging folder removed by the next export; and a full run grepped for every identifier and secret."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pytest

from datashare.workspace import Workspace

from .conftest import PROJECT_ROOT, SAMPLE_CSV, TEST_PASSPHRASE, cli_env, run_cli

RESEARCH = PROJECT_ROOT / "policies" / "hk-clinical-research.yaml"
EXPORT_ARGS = ["--purpose", "clinical-research", "--recipient", "cicor"]
KILLS_PER_OPERATION = 4


def ready_workspace(home: Path, csv: Path = SAMPLE_CSV) -> None:
    assert run_cli("init", home=home).code == 0
    assert run_cli("register", str(csv), "--name", "patients", home=home).code == 0
    assert run_cli("policy", "approve", str(RESEARCH), home=home).code == 0


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def audit_entries(home: Path) -> list[dict]:
    """Every complete entry of the log (a torn fragment is skipped)."""
    entries = []
    for raw in (home / "audit.log").read_bytes().split(b"\n"):
        try:
            entries.append(json.loads(raw))
        except ValueError:
            continue
    return entries


def check_after_crash(home: Path, *, known: dict[tuple[str, int], Path], finals: Iterable[Path] = ()) -> None:
    """The after-check every kill ends with.

    ``known`` maps (dataset, version) to the source file of every version known to have been registered
    before the crash. The log verifies, or its only problem is a torn last line; the catalog opens; every
    version (known ones and any the killed process committed) reads back with its recorded SHA-256 (equal
    to the source file's) and row count (equal to its table's and to the source's); every version has its
    audit entry; a folder under an export's final name verifies; and the next commands work and leave the
    log whole.
    """
    first = run_cli("audit", "verify", "--json", home=home)
    if first.code != 0:
        report = json.loads(first.stdout)
        assert first.code == 4 and report["first_error"]["problem"] == "torn", first.stdout + first.stderr
        lines = (home / "audit.log").read_bytes().split(b"\n")
        assert report["first_error"]["line"] == len(lines), "only the last line may be torn"

    recorded: dict[tuple[str, int], dict] = {}
    for name in sorted({name for name, _ in known}):
        shown = run_cli("show", name, "--json", home=home)  # the next command works
        assert shown.code == 0, shown.stderr
        versions = shown.json()["versions"]
        assert [v["version"] for v in versions] == list(range(1, len(versions) + 1))
        recorded.update({(name, v["version"]): v for v in versions})
    assert set(known) <= set(recorded), f"versions lost: {sorted(set(known) - set(recorded))}"

    logged = {(e["target"].get("dataset"), e["target"].get("version"), e["target"].get("source_sha256"))
              for e in audit_entries(home) if e["action"] == "register" and e["outcome"] == "ok"}
    con = duckdb.connect(str(home / "catalog.duckdb"), read_only=True)
    try:
        for (name, version), meta in sorted(recorded.items()):
            source = Path(meta["source"]["path"])
            if (name, version) in known:
                assert source == known[name, version].absolute()
            assert meta["source_sha256"] == sha256_file(source), f"{name} v{version}: SHA-256 differs from source"
            (table,) = con.execute("SELECT table_name FROM meta.versions WHERE name = ? AND version = ?",
                                   [name, version]).fetchone()
            in_table = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            in_source = con.execute("SELECT count(*) FROM read_csv(?)", [str(source)]).fetchone()[0]
            assert meta["rows"] == in_table == in_source, f"{name} v{version}: rows differ"
            assert (name, version, meta["source_sha256"]) in logged, f"{name} v{version} has no audit entry"
    finally:
        con.close()

    for final in finals:
        if final.exists() or final.is_symlink():
            checked = run_cli("verify", str(final), home=home)
            assert checked.code == 0, f"{final} is under its final name but broken: {checked.stderr}"

    last = run_cli("audit", "verify", "--json", home=home)
    assert last.code == 0, last.stdout + last.stderr


def start_and_kill(command: list[str], env: dict[str, str], delay: float, *, after_ready: bool = False) -> bool:
    """Start ``command``, SIGKILL it after ``delay`` seconds; True if it was still running (killed mid-way).

    With ``after_ready`` the delay counts from the line the command prints once it is under way, so a slow
    start on a loaded machine does not move the kill before the work.
    """
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE if after_ready else subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    if after_ready:
        proc.stdout.readline()
    time.sleep(delay)
    running = proc.poll() is None
    if running:
        os.kill(proc.pid, signal.SIGKILL)
    code = proc.wait()
    return running and code == -signal.SIGKILL


def timed_cli(*args: str, home: Path) -> float:
    """Run a command that must succeed, and return how long it took (to spread the kills over it)."""
    started = time.monotonic()
    result = run_cli(*args, home=home)
    assert result.code == 0, result.stderr
    return time.monotonic() - started


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    """Fake patients, enough rows that register and export take a couple of seconds."""
    from datashare.fakedata import generate_patients

    path = tmp_path_factory.mktemp("faults") / "big.csv"
    generate_patients(path, 60_000, seed=3)
    return path


@pytest.fixture(scope="module")
def export_ws(tmp_path_factory, big_csv) -> Path:
    """A workspace with ``big_csv`` registered as patients v1 and the research policy approved."""
    home = tmp_path_factory.mktemp("exports") / "ws"
    ready_workspace(home, big_csv)
    return home


def test_kill_during_register_at_random_points(tmp_path, big_csv):
    home = tmp_path / "ws"
    assert run_cli("init", home=home).code == 0
    duration = timed_cli("register", str(big_csv), "--name", "patients", home=home)
    known = {("patients", 1): big_csv}
    rng = random.Random(20261125)
    landed = 0
    for attempt in range(KILLS_PER_OPERATION):
        variant = tmp_path / f"variant{attempt}.csv"
        shutil.copyfile(big_csv, variant)
        with variant.open("ab") as handle:  # new content, so a new version
            handle.write(f"P9{attempt:07d},,,,F,1970-01-01,,,Sha Tin,,2024-01-01,2024-01-02,E11,,,\n".encode())
        before = len(known)
        killed = start_and_kill([sys.executable, "-m", "datashare", "register", str(variant), "--name", "patients"],
                                cli_env(home), rng.uniform(0.2, 0.95) * duration)
        check_after_crash(home, known=known)
        shown = run_cli("show", "patients", "--json", home=home).json()
        committed = {v["version"]: Path(v["source"]["path"]) for v in shown["versions"]}
        if committed.get(before + 1) == variant.absolute():
            known["patients", before + 1] = variant
        elif killed:
            landed += 1  # killed before its version existed: the kill came mid-register
    assert landed >= 1, "no kill landed while a registration was running"
    final = tmp_path / "final.csv"
    final.write_bytes(big_csv.read_bytes()[: 1 << 20].rsplit(b"\n", 1)[0] + b"\n")
    assert run_cli("register", str(final), "--name", "patients", home=home).code == 0
    known["patients", len(known) + 1] = final
    check_after_crash(home, known=known)


def test_kill_during_export_at_random_points(tmp_path, big_csv, export_ws):
    home = export_ws
    exports = tmp_path / "exports"
    out = exports / "run"  # every attempt replaces the same export: it is the old one, the new one, or absent
    duration = timed_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(out), *EXPORT_ARGS,
                         home=home)
    known = {("patients", 1): big_csv}
    rng = random.Random(7)
    landed = 0
    for _ in range(KILLS_PER_OPERATION):
        killed = start_and_kill([sys.executable, "-m", "datashare", "export", "patients", "--policy", str(RESEARCH),
                                 "--out", str(out), "--overwrite", *EXPORT_ARGS], cli_env(home),
                                rng.uniform(0.2, 0.95) * duration)
        staged = [p for p in exports.iterdir() if p.name.startswith(".run.tmp-")]
        landed += killed and bool(staged)  # killed while its staging folder held data: mid-export
        check_after_crash(home, known=known, finals=[out])
    assert landed >= 1, "no kill landed while an export was being written"
    final = run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(out), "--overwrite", *EXPORT_ARGS,
                    home=home)
    assert final.code == 0, final.stderr
    assert not [p.name for p in exports.iterdir() if ".tmp-" in p.name], "a killed export's staging folder is left"
    check_after_crash(home, known=known, finals=[out])


HAMMER = """
import sys
from pathlib import Path
from datashare import audit
from datashare.workspace import Workspace
ws = Workspace(Path(sys.argv[1]))
audit.append(ws, actor="hammer", action="test", details={"pad": "x" * 2000})
print("ready", flush=True)
while True:
    audit.append(ws, actor="hammer", action="test", details={"pad": "x" * 2000})
"""


def test_kill_during_audit_appends_at_random_points(tmp_path):
    home = tmp_path / "ws"
    ready_workspace(home)
    known = {("patients", 1): SAMPLE_CSV}
    rng = random.Random(11)
    for _ in range(KILLS_PER_OPERATION):
        before = len(audit_entries(home))
        killed = start_and_kill([sys.executable, "-c", HAMMER, str(home)], cli_env(home), rng.uniform(0.0, 0.5),
                                after_ready=True)
        assert killed
        assert len(audit_entries(home)) > before, "the kill came before any append"
        check_after_crash(home, known=known)


TORN_WRITER = """
import sys
from pathlib import Path
from datashare import audit
from datashare.workspace import Workspace
ws = Workspace(Path(sys.argv[1]))
pad = "x" * int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
audit.append(ws, actor="writer", action="test", details={"pad": pad})
"""


def kill_mid_append(home: Path, size: int) -> None:
    """Kill a process as soon as its one huge append starts reaching the log."""
    log = home / "audit.log"
    before = log.stat().st_size
    proc = subprocess.Popen([sys.executable, "-c", TORN_WRITER, str(home), str(size)], env=cli_env(home),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.stdin.write("go\n")
    proc.stdin.flush()
    while log.stat().st_size == before and proc.poll() is None:
        pass
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_torn_last_line_is_reported_then_acknowledged(tmp_path):
    home = tmp_path / "ws"
    assert run_cli("init", home=home).code == 0
    log = home / "audit.log"
    for _ in range(5):  # the kill lands inside the 8 MB write nearly always; retry the rare time it does not
        kill_mid_append(home, 8 << 20)
        if not log.read_bytes().endswith(b"\n"):
            break
        assert run_cli("audit", "verify", home=home).code == 0
    else:
        pytest.fail("no append was torn")
    raw = log.read_bytes()
    fragment = raw[raw.rindex(b"\n") + 1:]
    assert fragment.startswith(b'{"seq":') and len(fragment) < (8 << 20)

    torn = run_cli("audit", "verify", "--json", home=home)
    assert torn.code == 4, torn.stdout
    report = json.loads(torn.stdout)
    assert report["first_error"]["problem"] == "torn" and "torn" in report["message"]
    assert report["first_error"]["line"] == raw.count(b"\n") + 1
    assert "Traceback" not in torn.stderr

    assert run_cli("datasets", home=home).code == 0  # the next append acknowledges the fragment
    after = log.read_bytes()
    assert after.startswith(raw + b"\n"), "the fragment was changed, not kept"
    acknowledging = json.loads(after[len(raw) + 1:].split(b"\n", 1)[0])
    assert acknowledging["torn_before"] == {"bytes": len(fragment), "sha256": hashlib.sha256(fragment).hexdigest()}
    whole = run_cli("audit", "verify", "--json", home=home)
    assert whole.code == 0, whole.stdout
    assert len(json.loads(whole.stdout)["notes"]) == 1
    assert [e for e in audit_entries(home) if "torn_before" in e] == [acknowledging]


def test_a_killed_exports_staging_folder_is_removed_by_the_next_export(tmp_path, export_ws):
    home = export_ws
    exports = tmp_path / "exports"
    exports.mkdir()
    out = exports / "run"
    proc = subprocess.Popen([sys.executable, "-m", "datashare", "export", "patients", "--policy", str(RESEARCH),
                             "--out", str(out), *EXPORT_ARGS], env=cli_env(home), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    pattern = re.compile(rf"\.run\.tmp-{proc.pid}-[a-z0-9_]{{8}}")
    while proc.poll() is None and not any(pattern.fullmatch(p.name) for p in exports.iterdir()):
        pass  # spin until the export has created its staging folder (exports/ exists before it does)
    assert proc.poll() is None, "the export finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    left = [p for p in exports.iterdir() if pattern.fullmatch(p.name)]
    assert len(left) == 1 and not out.exists()
    alive = exports / f".run.tmp-{os.getpid()}-abcdefgh"  # a live process's staging folder is not touched
    other = exports / ".other.tmp-999999999-abcdefgh"  # nor one for another final name
    alive.mkdir()
    other.mkdir()

    result = run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(out), *EXPORT_ARGS, home=home)
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in exports.iterdir()) == sorted([alive.name, other.name, "run"])
    assert run_cli("verify", str(out), home=home).code == 0


def test_a_full_run_leaves_no_identifier_or_secret_behind(tmp_path):
    home = tmp_path / "ws"
    ready_workspace(home)
    out = tmp_path / "run1"
    assert run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(out), "--purpose",
                   "clinical-research", "--recipient", "cicor", home=home).code == 0
    outputs = [run_cli(*args, home=home) for args in (
        ["risk", "patients", "--policy", str(RESEARCH), "--json"], ["policy", "explain", str(RESEARCH), "--dataset",
        "patients", "--json"], ["audit", "--json"], ["audit", "summary", "--json"], ["verify", str(out), "--json"],
        ["keys", "show", "--json"], ["policy", "list", "--json"], ["register", str(tmp_path / "missing.csv"),
        "--name", "x"], ["export", "patients", "--policy", str(RESEARCH), "--out", str(out), "--purpose", "spying",
        "--recipient", "cicor"])]
    written = (home / "audit.log").read_text(encoding="utf-8") + (out / "manifest.json").read_text(encoding="utf-8")
    written += "".join(r.stdout + r.stderr for r in outputs)
    con = duckdb.connect()
    identifiers = con.execute(f"""SELECT DISTINCT v FROM (
        SELECT unnest([hkid, name_en, name_zh, phone, email, address]) AS v FROM read_csv('{SAMPLE_CSV}'))
        WHERE v IS NOT NULL AND length(trim(v)) > 3""").fetchall()
    leaked = [v for (v,) in identifiers if v.strip() in written]
    assert leaked == []
    secret = Workspace(home).secret(TEST_PASSPHRASE)
    assert secret.hex() not in written and TEST_PASSPHRASE not in written
    assert "PRIVATE KEY" not in written
