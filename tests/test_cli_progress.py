"""Progress on a terminal: the phases appear on stderr, stdout stays data only, and nothing shows when stderr
is piped or with ``datashare --quiet``."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time

from .conftest import SAMPLE_CSV, cli_env, make_workspace, run_cli


def run_with_stderr_on_terminal(args: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal and stdout on a pipe: (exit code, stdout, what stderr showed)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "datashare", *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    shown, out = b"", b""
    streams = {leader: "err", proc.stdout.fileno(): "out"}
    deadline = time.monotonic() + timeout
    while streams:
        left = deadline - time.monotonic()
        ready = select.select(list(streams), [], [], max(left, 0))[0] if left > 0 else []
        if not ready:
            proc.kill()
            proc.wait()
            raise AssertionError(f"datashare {' '.join(args)} did not finish within {timeout}s")
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal closes when the process ends
                chunk = b""
            if not chunk:
                del streams[fd]
            elif streams[fd] == "err":
                shown += chunk
            else:
                out += chunk
    os.close(leader)
    return proc.wait(timeout=timeout), out.decode(), shown.decode(errors="replace")


def test_register_shows_its_phases_on_a_terminal_and_keeps_stdout_for_the_json(tmp_path):
    home = make_workspace(tmp_path / "ws")
    env = cli_env(home, TERM="xterm")
    code, out, shown = run_with_stderr_on_terminal(["register", str(SAMPLE_CSV), "--name", "patients", "--json"], env)
    assert code == 0, shown
    for label in ("Loading sample_patients.csv", "Classifying 16 columns", "Profiling 16 columns"):
        assert label in shown
    assert json.loads(out)["rows"] == 1000  # stdout is the JSON answer alone

    refused = ["export", "patients", "--policy", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "x"),
               "--purpose", "p", "--recipient", "r"]
    code, _, shown = run_with_stderr_on_terminal(refused, env)
    assert code == 1 and "Checking the policy" in shown
    code, _, shown = run_with_stderr_on_terminal(["--quiet", *refused], env)
    assert code == 1 and "Checking the policy" not in shown and "error" in shown


def test_generate_shows_progress_on_a_terminal_only(tmp_path):
    env = cli_env(tmp_path / "unused", TERM="xterm")
    code, out, shown = run_with_stderr_on_terminal(["generate", "--rows", "2000", "--out", str(tmp_path / "a.csv"),
                                                    "--json"], env)
    assert code == 0, shown
    assert "Generating 2,000 patients" in shown and json.loads(out)["rows"] == 2000

    code, _, quiet = run_with_stderr_on_terminal(["--quiet", "generate", "--rows", "2000", "--out",
                                                  str(tmp_path / "b.csv")], env)
    assert code == 0 and "Generating" not in quiet and "Wrote 2,000" in quiet

    piped = run_cli("generate", "--rows", "2000", "--out", tmp_path / "c.csv", home=tmp_path / "unused", env=env)
    assert piped.code == 0 and "Generating" not in piped.stderr and "\x1b" not in piped.stderr
