"""Documentation is tested like code: every command is in the README and has help with two examples or more."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from datashare.cli import app

from .conftest import PROJECT_ROOT, SAMPLE_CSV, cli_env, run_cli

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


def all_commands():
    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for sub_name, sub in subcommands.items():
                yield f"{name} {sub_name}", sub
            if name == "audit":
                yield name, command
        else:
            yield name, command


COMMANDS = list(all_commands())


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_is_in_the_readme_and_has_an_example(name, command):
    assert f"datashare {name}" in README, f"`datashare {name}` is not in README.md"
    help_text = command.help or ""
    assert help_text.strip(), name
    assert "Examples:" in help_text, name
    examples = [line for line in help_text.split("Examples:", 1)[1].splitlines() if f"datashare {name}" in line]
    assert len(examples) >= 2, f"`datashare {name}` --help shows {len(examples)} example(s); give two or more"


def readme_command_lines():
    """Every `datashare …` line of the README's sh and text blocks (continuations joined; comments, pipes cut)."""
    for block in re.findall(r"```(?:sh|text)\n(.*?)\n```", README, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("datashare "):
                yield re.split(r" (?:#|>|<|\|\s)", line, maxsplit=1)[0]


def test_every_command_line_in_the_readme_names_a_command_and_its_options():
    """The walk-throughs and the tour are copied by readers: a renamed command or option must not linger there."""
    import typer.main

    group = typer.main.get_command(app)
    lines = list(readme_command_lines())
    assert len(lines) > 40
    wrong = []
    for line in lines:
        words = line.split()[1:]
        command, path = group, []
        while getattr(command, "commands", None) and words and words[0] in command.commands:
            command = command.commands[words[0]]
            path.append(words.pop(0))
        options = {"--help"}.union(*(set(p.opts) | set(p.secondary_opts) for p in command.params))
        unknown = [w for w in re.findall(r"(?<![\w-])--[a-z][a-z-]*", " ".join(words)) if w not in options]
        unknown_subcommand = getattr(command, "commands", None) and words and not words[0].startswith(("-", "["))
        if not path or unknown_subcommand or unknown:
            wrong.append(f"{line}: {unknown or 'no such command'}")
    assert wrong == []


def test_the_two_fresh_machine_commands_come_first_and_match_ci():
    blocks = re.findall(r"```sh\n(.*?)\n```", README, flags=re.S)
    assert blocks[0].strip().endswith("datashare demo")
    assert "pytest" in blocks[1]
    ci = (PROJECT_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1].strip() in ci.splitlines()  # the whole command, one line of .ci/run


def test_the_auditors_script_in_the_readme_checks_a_real_log(cli, workspace, home, tmp_path):
    assert cli("register", SAMPLE_CSV, "--name", "patients").code == 0
    script = re.search(r"```python\n(.*?)\n```", README, flags=re.S).group(1)
    path = tmp_path / "check.py"
    path.write_text(script, encoding="utf-8")
    ok = subprocess.run([sys.executable, str(path), str(home / "audit.log")], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("OK 3 "), ok.stderr
    lines = (home / "audit.log").read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace('"register"', '"registr"')
    (home / "audit.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad = subprocess.run([sys.executable, str(path), str(home / "audit.log")], capture_output=True, text=True)
    assert bad.returncode != 0


def test_demo_runs_the_main_job(cli):
    result = cli("demo", "--json", timeout=300)
    assert result.code == 0, result.stderr
    steps = [s["step"] for s in result.json()]
    assert steps == ["init", "register", "approve", "risk", "export", "refused", "verify", "audit"]


def test_a_kept_demo_says_how_to_use_its_workspace(tmp_path, cli):
    keep = tmp_path / "kept"
    result = cli("demo", "--keep", keep, "--json", timeout=300)
    assert result.code == 0, result.stderr
    last = result.json()[-1]
    assert last["step"] == "keep" and "DATASHARE_ACTOR=demo-custodian" in last["summary"]
    env = cli_env(Path(last["home"]), DATASHARE_ACTOR=last["actor"],
                  DATASHARE_PASSPHRASE="demo passphrase, not for real data")
    listed = run_cli("datasets", "--json", home=Path(last["home"]), env=env)
    assert listed.code == 0 and listed.json()[0]["name"] == "patients"
    again = cli("demo", "--keep", keep)
    assert again.code == 1 and "not an empty folder" in again.stderr


def test_every_test_file_the_documents_name_exists():
    named = set()
    for document in ("README.md", "SECURITY.md"):
        named |= set(re.findall(r"tests/(test_[a-z0-9_]+\.py)", (PROJECT_ROOT / document).read_text(encoding="utf-8")))
    assert named, "the documents name no test file"
    assert sorted(name for name in named if not (PROJECT_ROOT / "tests" / name).is_file()) == []


def test_every_library_module_has_a_unit_test_file_named_after_it():
    """Unit tests live in tests/test_<package>_<module>.py (or test_<module>.py for a top-level module)."""
    package = PROJECT_ROOT / "datashare"
    tests = {p.name for p in (PROJECT_ROOT / "tests").glob("test_*.py")}
    missing = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        if parts[0] == "cli" or parts[-1] in ("__init__", "__main__") or parts[-1] in EXERCISED_BY_COMMANDS:
            continue
        if not {f"test_{'_'.join(parts)}.py", f"test_{parts[-1]}.py"} & tests:
            missing.append("/".join(parts))
    assert missing == []


# Modules that are a command's whole behaviour, tested through that command (tests/test_docs.py runs the demo).
EXERCISED_BY_COMMANDS = {"demo"}


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_help_names_what_each_option_takes(name, command, tmp_path):
    shown = run_cli(*name.split(), "--help", home=tmp_path)
    assert shown.code == 0, shown.stderr
    generic = re.findall(r"--[a-z-]+ <(?:str|path|int|float)>", shown.stdout)
    assert not generic, f"`datashare {name} --help` shows {generic}: give the option a metavar (FILE, N, DATASET…)"
    assert "{path}" not in shown.stdout and "{name}" not in shown.stdout
