"""Shared fixtures: a real workspace in a temp folder and the real CLI, in process or in a subprocess.

``run_cli`` calls ``datashare.cli.main(argv)`` in this process, with the given
environment, standard input and working folder, and captures what it writes:
the same code path as the installed command, without a Python start-up per call.
``run_cli(..., process=True)`` runs ``python -m datashare`` in a real subprocess,
for the end-to-end paths (signals, terminals, several processes at once).
Workspaces made by fixtures get a signing key with one bcrypt round
(``kdf_rounds=1``): the product's 64 rounds cost 0.45 s at every key load.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from datashare.catalog import register
from datashare.cli import main
from datashare.fakedata import generate_patients
from datashare.governance import approve, set_service_accounts
from datashare.init import initialise
from datashare.workspace import Workspace, open_workspace

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


TEST_KDF_ROUNDS = 1  # bcrypt rounds of the keys fixtures make: fast to load, still a real encrypted OpenSSH key
TEST_SECRET_KDF_N = 2 ** 4  # scrypt's cost for the sealed HMAC secret, low for tests only


class _TextOut(io.StringIO):
    """A captured stream that is not a terminal, as a pipe is."""

    def isatty(self) -> bool:
        return False


def run_cli(*args: str, home: Path, env: dict[str, str] | None = None, input: str | None = None,
            cwd: Path | None = None, timeout: float = 120, process: bool = False) -> CliResult:
    """Run the CLI with ARGS and no TTY: in this process, or with ``process=True`` as `python -m datashare`."""
    env = env if env is not None else cli_env(home)
    if not process:
        return _run_in_process([str(a) for a in args], env, input or "", cwd)
    proc = subprocess.run(
        [sys.executable, "-m", "datashare", *args],
        capture_output=True,
        text=True,
        env=env,
        input=input if input is not None else "",
        cwd=cwd,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _run_in_process(args: list[str], env: dict[str, str], stdin: str, cwd: Path | None) -> CliResult:
    """``main(args)`` with ``env`` as the whole environment, ``stdin`` as standard input, in ``cwd``."""
    saved_env, saved_cwd, saved_stdin = dict(os.environ), os.getcwd(), sys.stdin
    out, err = _TextOut(), _TextOut()
    try:
        os.environ.clear()
        os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        sys.stdin = _TextOut(stdin)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        sys.stdin = saved_stdin
    return CliResult(code, out.getvalue(), err.getvalue())


def registered_names(ws: Workspace) -> list[str]:
    """The names of the datasets registered in ``ws``."""
    from datashare.catalog import list_datasets

    with ws.connect(read_only=True) as con:
        return [d.name for d in list_datasets(con)]


def register_refusal(ws: Workspace, path: Path, actor: str, **options: object) -> str:
    """Register ``path``, expect a refusal; return its text after checking nothing was registered."""
    from datashare.errors import InputError

    with pytest.raises(InputError) as caught:
        register(ws, path, "t", actor=actor, **options)
    assert registered_names(ws) == []
    return caught.value.diagnostics()


def make_workspace(home: Path) -> Path:
    """An initialised workspace at ``home`` for the OS user, with a fast-to-load signing key."""
    initialise(home, None, passphrase=TEST_PASSPHRASE, ask=False, kdf_rounds=TEST_KDF_ROUNDS,
               secret_kdf_n=TEST_SECRET_KDF_N)
    return home


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
    """An initialised workspace with its signing key."""
    return make_workspace(home)


RESEARCH_POLICY = PROJECT_ROOT / "policies" / "hk-clinical-research.yaml"


def sample_workspace(home: Path) -> Path:
    """Initialise ``home``, register the sample as ``patients`` and approve the research policy."""
    ws = open_workspace(make_workspace(home))
    actor = ws.config()["created_by"]
    register(ws, SAMPLE_CSV, "patients", actor=actor)
    approve(ws, actor, RESEARCH_POLICY, passphrase=TEST_PASSPHRASE)
    return home


def generated_workspace(base: Path, actor: str, rows: int, seed: int) -> tuple[Workspace, Path]:
    """A workspace in ``base`` made by the named account ``actor``, with service accounts on (so the CLI can act
    as it), and ``rows`` generated patients registered as ``patients``. Returns the workspace and the source file."""
    made = initialise(base / "ws", actor, passphrase=TEST_PASSPHRASE, ask=False, kdf_rounds=TEST_KDF_ROUNDS,
                      secret_kdf_n=TEST_SECRET_KDF_N, named_actor=True)
    set_service_accounts(made.workspace, actor, True)
    source = base / "patients.csv"
    generate_patients(source, rows, seed=seed)
    register(made.workspace, source, "patients", actor=actor)
    return made.workspace, source


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
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([leader], [], [], left)[0]:  # nothing shown before the deadline
            proc.kill()
            proc.wait()
            os.close(leader)
            raise AssertionError(f"datashare {' '.join(args)} did not finish within {timeout}s on a terminal")
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return proc.wait(timeout=timeout), shown.decode("utf-8", errors="replace").replace("\r\n", "\n")



@pytest.fixture(scope="session")
def spark():
    """The test run's one Spark session (local[2], no UI, two shuffle partitions), stopped at the end.

    Exports with ``--engine spark`` use it as the active session. No Java or no pyspark is a failure, not a
    skip: the README's test command installs the ``spark`` extra, and CI installs Java.
    """
    from pyspark.sql import SparkSession

    from datashare.export.spark import SESSION_CONF

    builder = SparkSession.builder.master("local[2]").appName("datashare-tests")
    for key, value in {**SESSION_CONF, "spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


ARTIFACTS = PROJECT_ROOT / "test-artifacts"  # screenshots of the HTML reports as a browser draws them (gitignored)


_INLINE = {"span", "strong", "code", "em", "b", "a"}


class _PageText(HTMLParser):
    """The text a reader sees in a page (its title and body, not its style sheet), whitespace collapsed."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        self._skip += tag == "style"
        if tag not in _INLINE:  # a cell, a paragraph, a heading, an SVG text: a break between words
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag == "style"

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def browse(page: Path, name: str) -> str:
    """Open ``page`` in headless Chromium (Debian's package), keep its screenshot as test-artifacts/NAME.png and
    return the text of the DOM it built."""
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               f"--user-data-dir={profile}", "--window-size=1100,3600", f"--screenshot={shot}",
                               "--dump-dom", page.resolve().as_uri()],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 10_000, "the screenshot is empty"
    print(f"screenshot: {shot}")
    text = _PageText()
    text.feed(done.stdout)
    return " ".join("".join(text.parts).split())


def assert_self_contained(html: str) -> None:
    """The page fetches nothing and runs nothing: no URL, no src or href, no script, no external style."""
    lowered = html.lower()
    for banned in ("http:", "https:", "//", "src=", "href=", "<script", "@import", "url("):
        assert banned not in lowered, banned


def assert_valid_html(page: Path) -> None:
    """HTML Tidy (Debian's ``tidy``, which knows HTML5) finds neither an error nor a warning in ``page``."""
    done = subprocess.run(["tidy", "-q", "-e", str(page)], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr[-2000:]


def pytest_collection_modifyitems(items):
    """Under pytest-xdist (`-n auto`), every Spark test runs in one worker, so one Spark session serves them."""
    for item in items:
        if item.get_closest_marker("spark") is not None:
            item.add_marker(pytest.mark.xdist_group("spark"))
