"""Fault injection with real processes: kill -9 during register, export, purge and audit appends, each followed by
the same after-check; a killed export's staging folder removed by the next export; a disk that fills up during
a registration; and the progress bar on a real terminal."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pytest

from .conftest import RESEARCH_POLICY as RESEARCH
from .conftest import SAMPLE_CSV, cli_env, make_workspace, run_cli, run_cli_on_terminal

EXPORT_ARGS = ["--purpose", "clinical-research", "--recipient", "cicor"]
KILLS_PER_OPERATION = 4


def ready_workspace(home: Path, csv: Path = SAMPLE_CSV) -> None:
    make_workspace(home)
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


def check_after_crash(home: Path, *, known: dict[tuple[str, int], Path], finals: Iterable[Path] = ()) -> bool:
    """The after-check every kill ends with.

    ``known`` maps (dataset, version) to the source file of every version known to have been registered
    before the crash. The log verifies, or its only problem is a torn last line; the catalog opens; every
    version (known ones and any the killed process committed) reads back with its recorded SHA-256 (equal
    to the source file's) and row count (equal to its table's and to the source's); every version has its
    audit entry; a folder under an export's final name verifies; and the next commands work and leave the
    log whole. True when the log had a torn last line.
    """
    # Counted before `audit verify` runs: its own entry, appended after a torn line, acknowledges it.
    lines = (home / "audit.log").read_bytes().split(b"\n")
    first = run_cli("audit", "verify", "--json", home=home)
    torn = first.code != 0
    if torn:
        report = json.loads(first.stdout)
        assert first.code == 4 and report["first_error"]["problem"] == "torn", first.stdout + first.stderr
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
    return torn


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


def kill_when_under_way(command: list[str], env: dict[str, str], under_way, extra_delay: float, *,
                        limit: float = 120) -> bool:
    """Start ``command``; once ``under_way(pid)`` is true of it, wait ``extra_delay`` seconds and SIGKILL it.

    True if the kill landed while the work was under way. Every wait is bounded by ``limit``: a command that
    never gets under way is killed at the limit and the attempt counts as not landed, so the test cannot hang.
    """
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + limit
    seen = False
    while proc.poll() is None and time.monotonic() < deadline:
        if under_way(proc.pid):
            seen = True
            break
        time.sleep(0.002)
    if seen and extra_delay:
        time.sleep(extra_delay)
    running = proc.poll() is None
    if running:
        os.kill(proc.pid, signal.SIGKILL)
    code = proc.wait(timeout=limit)
    return seen and running and code == -signal.SIGKILL


def lock_held_by_another(home: Path) -> bool:
    """Whether another process holds the workspace lock (a register holds it while it loads)."""
    fd = os.open(home / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing the descriptor releases a lock this test took
    return False


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
    make_workspace(home)
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
        # The first kill comes as soon as the load holds the workspace lock; the others at random points after.
        killed = kill_when_under_way(
            [sys.executable, "-m", "datashare", "register", str(variant), "--name", "patients"], cli_env(home),
            lambda pid: lock_held_by_another(home), 0 if attempt == 0 else rng.uniform(0, 0.8) * duration)
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

    def staging(pid: int) -> bool:  # this attempt's staging folder, not one an earlier attempt left
        return any(p.name.startswith(f".run.tmp-{pid}-") for p in exports.iterdir())

    for attempt in range(KILLS_PER_OPERATION):
        # The first kill comes as soon as the staging folder exists; the others at random points after.
        landed += kill_when_under_way(
            [sys.executable, "-m", "datashare", "export", "patients", "--policy", str(RESEARCH), "--out", str(out),
             "--overwrite", *EXPORT_ARGS], cli_env(home), staging,
            0 if attempt == 0 else rng.uniform(0, 0.8) * duration)
        check_after_crash(home, known=known, finals=[out])
    assert landed >= 1, "no kill landed while an export was being written"
    final = run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(out), "--overwrite", *EXPORT_ARGS,
                    home=home)
    assert final.code == 0, final.stderr
    assert not [p.name for p in exports.iterdir() if ".tmp-" in p.name], "a killed export's staging folder is left"
    check_after_crash(home, known=known, finals=[out])


def test_kill_during_purge_leaves_the_old_catalog_or_the_new_one(tmp_path, export_ws):
    rng = random.Random(20261130)
    landed = 0
    for attempt in range(2):
        home = tmp_path / f"ws{attempt}"
        shutil.copytree(export_ws, home)
        copy = home / "catalog.duckdb.purging"
        # The first kill comes as soon as the fresh catalog is being written; the next at a random point after.
        landed += kill_when_under_way(
            [sys.executable, "-m", "datashare", "purge", "patients", "--version", "1", "--reason", "r", "--yes"],
            cli_env(home), lambda pid, copy=copy: copy.exists(), 0 if attempt == 0 else rng.uniform(0, 0.5))
        shown = run_cli("show", "patients", "--json", home=home)  # the next command works, and removes the copy
        assert shown.code == 0, shown.stderr
        assert not copy.exists() and not copy.with_name(copy.name + ".wal").exists()
        con = duckdb.connect(str(home / "catalog.duckdb"), read_only=True)
        try:
            tables = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'patients__v1'").fetchone()
            rows = con.execute('SELECT count(*) FROM data."patients__v1"').fetchone()[0] if tables[0] else None
        finally:
            con.close()
        # purged with no table, or whole with every row: never a catalog claiming rows it does not have
        assert (shown.json()["purged"] is not None, rows) in ((True, None), (False, shown.json()["rows"]))
        doctor = run_cli("doctor", "--json", home=home)
        catalog = {c["name"]: c for c in doctor.json()["checks"]}["catalog"]
        assert catalog["ok"] or "run the purge again" in catalog["detail"], catalog
    assert landed >= 1, "no kill landed while a purge was writing the catalog"


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


def test_the_after_check_accepts_a_torn_last_line_and_the_entry_that_acknowledges_it(tmp_path):
    """What a kill mid-append leaves, made by hand: the random kills above reach it only now and then."""
    home = tmp_path / "ws"
    ready_workspace(home)
    with (home / "audit.log").open("ab") as log:
        log.write(b'{"seq":99,"prev":"ab')
    assert check_after_crash(home, known={("patients", 1): SAMPLE_CSV}), "the torn line was not reported"


def test_a_killed_exports_staging_folder_is_removed_by_the_next_export(tmp_path, export_ws):
    home = export_ws
    exports = tmp_path / "exports"
    exports.mkdir()
    out = exports / "run"
    proc = subprocess.Popen([sys.executable, "-m", "datashare", "export", "patients", "--policy", str(RESEARCH),
                             "--out", str(out), *EXPORT_ARGS], env=cli_env(home), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    pattern = re.compile(rf"\.run\.tmp-{proc.pid}-[a-z0-9_]{{8}}")
    deadline = time.monotonic() + 120
    while proc.poll() is None and not any(pattern.fullmatch(p.name) for p in exports.iterdir()):
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the export never created its staging folder")
        time.sleep(0.002)  # until the export has created its staging folder (exports/ exists before it does)
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


def numbered_csv(path: Path, rows: int) -> Path:
    con = duckdb.connect()
    con.execute(f"COPY (SELECT range AS id, range * 1.5 AS score, 'ward_' || (range % 97) AS ward "
                f"FROM range({rows})) TO '{path}' (HEADER)")
    con.close()
    return path


def test_a_full_disk_says_so_and_leaves_the_catalog_as_it_was(tmp_path):
    home = tmp_path / "ws"
    make_workspace(home)
    small = tmp_path / "small.csv"
    small.write_text("id,score\n1,2\n3,4\n", encoding="utf-8")
    first = run_cli("register", str(small), "--name", "t", "--json", home=home)
    assert first.code == 0, first.stderr
    recorded = first.json()
    big = numbered_csv(tmp_path / "big.csv", 600_000)
    # Writes past the catalog's present size fail as they would on a full disk (the audit log stays smaller).
    limit = (home / "catalog.duckdb").stat().st_size + 64 * 1024

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "datashare", "register", str(big), "--name", "t"],
                          env=cli_env(home), capture_output=True, text=True, preexec_fn=limit_file_size,
                          timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "catalog could not be written (disk full?)" in proc.stderr
    assert "IOException" not in proc.stderr and "Traceback" not in proc.stderr
    last = json.loads((home / "audit.log").read_text(encoding="utf-8").splitlines()[-1])
    assert (last["action"], last["outcome"]) == ("register", "error")

    shown = run_cli("show", "t", "--json", home=home)
    assert shown.code == 0, shown.stderr
    data = shown.json()
    assert [v["version"] for v in data["versions"]] == [1]
    assert (data["rows"], data["source_sha256"]) == (recorded["rows"], recorded["source_sha256"]) == (
        2, recorded["source"]["sha256"])
    con = duckdb.connect(str(home / "catalog.duckdb"), read_only=True)
    try:
        assert con.execute('SELECT * FROM data."t__v1" ORDER BY id').fetchall() == [(1, 2), (3, 4)]
    finally:
        con.close()
    again = run_cli("register", str(big), "--name", "t", "--json", home=home)
    assert again.code == 0 and again.json()["version"] == 2 and again.json()["rows"] == 600_000


def test_progress_moves_on_a_terminal_and_stays_quiet_when_piped(tmp_path):
    home = tmp_path / "ws"
    make_workspace(home)
    big = numbered_csv(tmp_path / "big.csv", 1_000_000)
    env = cli_env(home, TERM="xterm", COLUMNS="100")
    code, shown = run_cli_on_terminal(["register", str(big), "--name", "big"], env)
    assert code == 0, shown
    assert "Loading big.csv" in shown

    piped = run_cli("register", str(big), "--name", "piped", home=home)
    assert piped.code == 0, piped.stderr
    assert "Loading" not in piped.stderr and "%" not in piped.stderr and "\x1b" not in piped.stderr
