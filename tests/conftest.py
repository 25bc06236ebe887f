"""Shared fixtures: a real workspace in a temp folder and the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CSV = PROJECT_ROOT / "datashare" / "data" / "sample_patients.csv"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEST_PASSPHRASE = "correct horse battery staple"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATASHARE_")}
    env.update(
        {
            "DATASHARE_HOME": str(home),
            "DATASHARE_PASSPHRASE": TEST_PASSPHRASE,
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
    )
    env.update(extra)
    return env


def run_cli(*args: str, home: Path, env: dict[str, str] | None = None, input: str | None = None,
            cwd: Path | None = None, timeout: float = 120) -> CliResult:
    """Run `python -m datashare ARGS` in a real subprocess, with no TTY."""
    proc = subprocess.run(
        [sys.executable, "-m", "datashare", *args],
        capture_output=True,
        text=True,
        env=env if env is not None else cli_env(home),
        input=input if input is not None else "",
        cwd=cwd,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A workspace path that has not been initialised yet."""
    return tmp_path / "ws"


@pytest.fixture
def cli(home: Path):
    """Call the CLI against the test workspace: cli("register", path, "--name", "x")."""

    def _run(*args: str, **kwargs) -> CliResult:
        return run_cli(*[str(a) for a in args], home=home, **kwargs)

    return _run


@pytest.fixture
def workspace(home: Path, cli):
    """An initialised workspace (with its signing key when signing exists)."""
    result = cli("init")
    assert result.code == 0, result.stderr
    return home


RESEARCH_POLICY = PROJECT_ROOT / "policies" / "hk-clinical-research.yaml"


def sample_workspace(home: Path) -> Path:
    """Initialise ``home``, register the sample as ``patients`` and approve the research policy."""
    assert run_cli("init", home=home).code == 0
    assert run_cli("register", str(SAMPLE_CSV), "--name", "patients", home=home).code == 0
    assert run_cli("policy", "approve", str(RESEARCH_POLICY), home=home).code == 0
    return home


def run_cli_on_terminal(args: list[str], env: dict[str, str], *, stream: str = "stderr",
                        columns: int | None = None, timeout: float = 300) -> tuple[int, str]:
    """Run the CLI with ``stream`` (stdout or stderr) on a real pseudo-terminal; return (exit code, what it showed).

    The other stream is discarded; ``columns`` sets the terminal's width.
    """
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    if columns is not None:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    targets = {"stdout": follower, "stderr": subprocess.DEVNULL} if stream == "stdout" else \
        {"stdout": subprocess.DEVNULL, "stderr": follower}
    proc = subprocess.Popen([sys.executable, "-m", "datashare", *args], env=env, stdin=subprocess.DEVNULL,
                            **targets)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return proc.wait(timeout=timeout), shown.decode("utf-8", errors="replace").replace("\r\n", "\n")

