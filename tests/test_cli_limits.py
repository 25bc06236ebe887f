"""Input limits and odd failures through the real CLI: one message, the documented exit code, JSON under --json."""

from __future__ import annotations

import pytest

from .conftest import PROJECT_ROOT, SAMPLE_CSV, make_workspace, run_cli

RESEARCH = PROJECT_ROOT / "policies" / "hk-clinical-research.yaml"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    home = root / "ws"
    make_workspace(home)
    assert run_cli("register", str(SAMPLE_CSV), "--name", "patients", home=home).code == 0
    assert run_cli("policy", "approve", str(RESEARCH), home=home).code == 0
    return home, root


def failed_cleanly(result, code: int, words: str) -> None:
    assert result.code == code, result.stderr
    assert result.stderr.startswith("datashare: error:") and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert result.json().get("ok") is False or result.json().get("valid") is False


def test_policy_from_dev_zero(ws):
    home, _ = ws
    for args in (["policy", "check", "/dev/zero"], ["risk", "patients", "--policy", "/dev/zero"]):
        failed_cleanly(run_cli(*args, "--json", home=home, timeout=60), 1, "not a regular file")


@pytest.mark.parametrize("where", ["(" * 100 + "sex = 'F'" + ")" * 100, "NOT " * 100 + "sex = 'F'"])
def test_deeply_nested_row_filters(ws, where):
    home, root = ws
    policy = root / "deep.yaml"
    policy.write_text(RESEARCH.read_text(encoding="utf-8").replace(
        "  where: \"admission_date >= DATE '2020-01-01'\"", f"  where: \"{where}\""), encoding="utf-8")
    failed_cleanly(run_cli("policy", "check", str(policy), "--json", home=home), 1, "nested too deeply")
    failed_cleanly(run_cli("risk", "patients", "--policy", str(policy), "--json", home=home), 1, "nested too deeply")


def test_an_out_name_of_300_characters(ws):
    home, root = ws
    out = root / ("x" * 300)
    result = run_cli("export", "patients", "--policy", str(RESEARCH), "--out", str(out), "--purpose",
                     "clinical-research", "--recipient", "cicor", "--json", home=home)
    failed_cleanly(result, 1, "too long")
    assert [p.name for p in root.iterdir() if p.name.startswith(".x")] == []
