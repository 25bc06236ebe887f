"""`keys show`: the key id and public key are data, on stdout, never cut to fit a terminal."""

from __future__ import annotations

from .conftest import cli_env, run_cli_on_terminal


def show_on_a_narrow_terminal(home, columns: int = 40) -> str:
    """Run `keys show` with stdout on a real pseudo-terminal `columns` wide; return what it printed there."""
    code, shown = run_cli_on_terminal(["keys", "show"], cli_env(home, COLUMNS=str(columns)), stream="stdout",
                                      columns=columns, timeout=60)
    assert code == 0
    return shown


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
