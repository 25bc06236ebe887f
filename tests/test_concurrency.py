"""Eight processes at once on one workspace: every command succeeds or says "workspace busy";
the audit log ends with one entry per command, in a valid chain."""

from __future__ import annotations

import fcntl
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from .conftest import RESEARCH_POLICY as RESEARCH
from .conftest import SAMPLE_CSV, cli_env, make_workspace, run_cli

ACTION_OF = {"register": "register", "export": "export", "risk": "risk", "audit": "audit.read",
             "audit verify": "audit.verify"}
CLEAN_FAILURE = "workspace busy"


def action_of(args: list[str]) -> str:
    return ACTION_OF.get(" ".join(args[:2]), ACTION_OF[args[0]])


def log_entries(home: Path) -> list[dict]:
    return [json.loads(line) for line in (home / "audit.log").read_bytes().split(b"\n") if line]


@pytest.fixture
def ready_workspace(tmp_path) -> Path:
    home = tmp_path / "ws"
    make_workspace(home)
    assert run_cli("register", str(SAMPLE_CSV), "--name", "patients", home=home).code == 0
    assert run_cli("policy", "approve", str(RESEARCH), home=home).code == 0
    return home


def eight_commands(tmp_path: Path, tag: str) -> list[list[str]]:
    """Two registers, two exports, two risks, an audit listing and an audit verify."""
    sources = []
    for i in range(2):
        src = tmp_path / f"{tag}{i}.csv"
        src.write_text("id,score\n" + "".join(f"{j},{i}\n" for j in range(50)), encoding="utf-8")
        sources.append(src)
    return [
        ["register", str(sources[0]), "--name", f"{tag}0"],
        ["register", str(sources[1]), "--name", f"{tag}1"],
        ["export", "patients", "--policy", str(RESEARCH), "--out", str(tmp_path / f"{tag}-e1"), "--purpose",
         "clinical-research", "--recipient", "cicor"],
        ["export", "patients", "--policy", str(RESEARCH), "--out", str(tmp_path / f"{tag}-e2"), "--purpose",
         "drug-safety", "--recipient", "incubatee-1"],
        ["risk", "patients", "--policy", str(RESEARCH), "--json"],
        ["risk", "patients", "--policy", str(RESEARCH), "--json"],
        ["audit", "--json"],
        ["audit", "verify"],
    ]


def start(args: list[str], home: Path, timeout: str) -> subprocess.Popen:
    env = cli_env(home, DATASHARE_LOCK_TIMEOUT=timeout)
    return subprocess.Popen([sys.executable, "-m", "datashare", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, stderr = proc.communicate(timeout=300)
    assert "Traceback" not in stderr and "IOException" not in stderr and "internal error" not in stderr, stderr
    assert proc.returncode == 0 or (proc.returncode == 1 and CLEAN_FAILURE in stderr), stderr
    return proc.returncode, stderr


def check_log_matches(home: Path, before: int, commands: list[list[str]], codes: list[int]) -> None:
    """One ok entry per command that ran, counted per action; none for a command that found the workspace busy."""
    entries = log_entries(home)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    new = entries[before:]
    assert all(e["outcome"] == "ok" for e in new), [e for e in new if e["outcome"] != "ok"]
    ran = Counter(action_of(args) for args, code in zip(commands, codes, strict=True) if code == 0)
    assert Counter(e["action"] for e in new) == ran
    verified = run_cli("audit", "verify", home=home)
    assert verified.code == 0, verified.stderr


def check_busy_left_nothing(home: Path, commands: list[list[str]], codes: list[int]) -> None:
    listed = {d["name"] for d in run_cli("datasets", "--json", home=home).json()}
    for args, code in zip(commands, codes, strict=True):
        if args[0] == "register":
            assert (args[3] in listed) == (code == 0), args
        if args[0] == "export":
            out = Path(args[args.index("--out") + 1])
            assert out.exists() == (code == 0), args
            assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.tmp-")]


def test_eight_processes_mixing_commands(tmp_path, ready_workspace):
    home = ready_workspace
    before = len(log_entries(home))
    commands = eight_commands(tmp_path, "extra")
    procs = [start(args, home, "120") for args in commands]
    codes = [finish(p)[0] for p in procs]
    assert codes == [0] * len(commands)  # with a long enough wait, every command gets its turn
    check_log_matches(home, before, commands, codes)
    check_busy_left_nothing(home, commands, codes)
    assert run_cli("verify", str(tmp_path / "extra-e1"), home=home).code == 0


def test_eight_processes_some_finding_the_workspace_busy(tmp_path, ready_workspace):
    """Impatient commands (no wait) start while the lock is held: they fail with "workspace busy" and leave
    nothing, not even a log entry; the patient ones then run against each other and all succeed."""
    home = ready_workspace
    before = len(log_entries(home))
    commands = eight_commands(tmp_path, "mixed")
    impatient = set(random.Random(8).sample(range(len(commands)), 4))
    with (home / "lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        procs = [start(args, home, "0" if i in impatient else "120") for i, args in enumerate(commands)]
        early = {i: finish(procs[i]) for i in sorted(impatient)}
    results = [early[i] if i in early else finish(p) for i, p in enumerate(procs)]
    codes = [code for code, _ in results]
    assert [i for i, code in enumerate(codes) if code != 0] == sorted(impatient)
    assert all(CLEAN_FAILURE in results[i][1] for i in impatient)
    check_log_matches(home, before, commands, codes)
    check_busy_left_nothing(home, commands, codes)


def test_a_ready_workspace_is_a_clear_error_not_a_traceback(tmp_path):
    home = tmp_path / "ws"
    make_workspace(home)
    with (home / "lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        result = run_cli("datasets", home=home, env=cli_env(home, DATASHARE_LOCK_TIMEOUT="1"))
    assert result.code == 1
    assert "workspace busy" in result.stderr and "Traceback" not in result.stderr


def test_a_catalog_held_open_by_another_program_is_busy_too(tmp_path):
    home = tmp_path / "ws"
    make_workspace(home)
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('ready', flush=True); time.sleep(30)", str(home / "catalog.duckdb")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = run_cli("datasets", home=home, env=cli_env(home, DATASHARE_LOCK_TIMEOUT="1"))
    finally:
        holder.kill()
        holder.wait()
    assert result.code == 1 and "workspace busy" in result.stderr and "Traceback" not in result.stderr
    assert Path(home / "catalog.duckdb").exists()


def test_a_source_changed_between_its_checks_and_its_load_is_refused(tmp_path):
    """The checks read the file before the workspace lock, DuckDB after it: a file swapped while the command
    waited was registered with a patient's name and HKID as column names, which the checks refuse."""
    home = tmp_path / "ws"
    make_workspace(home)
    source = tmp_path / "swap.csv"
    source.write_text("id,diag\n1,A\n2,B\n3,C\n", encoding="utf-8")
    with (home / "lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        proc = start(["register", str(source), "--name", "swapped"], home, "120")
        assert "workspace busy, waiting" in proc.stderr.readline()  # its checks are done: it waits for the lock
        source.write_text("id,CHAN Tai Man,A123456(3)\n1,2,3\n2,3,4\n3,4,5\n", encoding="utf-8")
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "changed while it was being registered" in stderr, stderr
    assert "CHAN Tai Man" not in stderr
    assert run_cli("datasets", "--json", home=home).json() == []
