"""`keys show`: the key id and public key are data, on stdout, never cut to fit a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

from .conftest import cli_env


def show_on_a_narrow_terminal(home, columns: int = 40) -> str:
    """Run `keys show` with stdout on a real pseudo-terminal `columns` wide; return what it printed there."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = cli_env(home, COLUMNS=str(columns))
    proc = subprocess.Popen([sys.executable, "-m", "datashare", "keys", "show"], stdout=follower,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


def test_keys_show_prints_the_whole_key_id_and_public_key_on_stdout(cli, workspace):
    shown = cli("keys", "show", "--json").json()["current"]
    piped = cli("keys", "show")
    assert piped.code == 0
    assert shown["public_key"] in piped.stdout.splitlines() and shown["public_key"] not in piped.stderr
    assert piped.stdout.splitlines()[0].startswith(shown["key_id"] + "  current")
    on_terminal = show_on_a_narrow_terminal(workspace)
    assert shown["key_id"] in on_terminal  # 50 characters on a 40-column terminal: still whole
    assert shown["public_key"] in on_terminal


def test_keys_show_lists_retired_keys_whole(cli, workspace):
    first = cli("keys", "show", "--json").json()["current"]["key_id"]
    assert cli("keys", "generate", "--rotate").code == 0
    lines = cli("keys", "show").stdout.splitlines()
    current = cli("keys", "show", "--json").json()["current"]
    assert lines[0].startswith(current["key_id"] + "  current")
    assert lines[1].startswith(first + "  retired ")
    assert lines[2] == current["public_key"]
