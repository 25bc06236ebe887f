"""Hostile dataset names, policy files and export destinations as property tests through the real CLI: each
ends in one clear message and a documented exit code, and a failed command changes nothing but the log."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from .conftest import PROJECT_ROOT, SAMPLE_CSV, run_cli, sample_workspace
from .test_hostile import run_hostile

RESEARCH = PROJECT_ROOT / "policies" / "hk-clinical-research.yaml"
SETTINGS = settings(max_examples=5, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
VALID_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
EXPORT = ["--purpose", "clinical-research", "--recipient", "cicor"]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return sample_workspace(tmp_path_factory.mktemp("hostile_inputs") / "ws")


argv_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=70)
bad_names = st.one_of(
    st.sampled_from(["x; DROP TABLE meta.versions", "a'b", 'a"b', "../x", "a/b", "..", "/etc/passwd", "病人",
                     "Patients", "patients--", "1abc", "a" * 64, "a b", "a\tb", "-x", "--name"]),
    argv_text,
).filter(lambda name: not VALID_NAME.fullmatch(name))


@SETTINGS
@given(name=bad_names, command=st.sampled_from(["register", "show", "export", "risk"]))
@example(name="../x", command="register")
@example(name="a/b", command="export")
def test_hostile_dataset_names(ws, name, command):
    args = {
        "register": ["register", str(SAMPLE_CSV), "--name", name],
        "show": ["show", name],
        "export": ["export", name, "--policy", str(RESEARCH), "--out", "/nonexistent-never-made", *EXPORT],
        "risk": ["risk", name, "--policy", str(RESEARCH)],
    }[command]
    if command != "register":
        args = [args[0], "--", *args[1:]] if name.startswith("-") else args
    result = run_hostile(ws, args, codes=(1, 2))
    if result.code == 1:
        assert "dataset name" in result.stderr or "no dataset" in result.stderr, result.stderr
    assert not Path("/nonexistent-never-made").exists()


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), argv_text)
yaml_values = st.recursive(yaml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(argv_text, inner, max_size=4)), max_leaves=20)


def research() -> dict:
    return yaml.safe_load(RESEARCH.read_text(encoding="utf-8"))


POLICY_PATHS = [("policy",), ("version",), ("applies_to",), ("purposes",), ("recipients",), ("expires",),
                ("columns",), ("columns", "phone"), ("columns", "phone", "keep_last"), ("columns", "dob", "width"),
                ("columns", "dob", "transform"), ("columns", "patient_id", "transform"), ("privacy",),
                ("privacy", "k_anonymity"), ("privacy", "max_suppression"), ("privacy", "l_diversity"),
                ("privacy", "quasi_identifiers"), ("rows",), ("rows", "where")]


def nested(depth: int) -> str:
    return "columns: " + "{a: " * depth + "1" + "}" * depth + "\n"


@st.composite
def hostile_policies(draw) -> bytes:
    """Random YAML; the research policy with a value of the wrong type, an unknown key, or a huge string;
    deep nesting."""
    kind = draw(st.sampled_from(["random", "wrong type", "unknown key", "huge string", "deep"]))
    if kind == "random":
        return yaml.safe_dump(draw(yaml_values), allow_unicode=True).encode("utf-8")
    if kind == "deep":
        return nested(draw(st.integers(min_value=50, max_value=5000))).encode()
    policy = research()
    path = draw(st.sampled_from(POLICY_PATHS))
    *parents, key = path
    node = policy
    for part in parents:
        node = node[part]
    if kind == "wrong type":
        node[key] = draw(yaml_values.filter(lambda v: type(v) is not type(node[key])))
    elif kind == "unknown key":
        holder = node[key] if isinstance(node[key], dict) else node
        holder[draw(argv_text.filter(lambda k: k not in holder))] = draw(yaml_scalars)
    else:
        node[key] = "x" * draw(st.integers(min_value=1 << 16, max_value=2 << 20))
    return yaml.safe_dump(policy, allow_unicode=True, width=1 << 30).encode("utf-8")


@SETTINGS
@given(text=hostile_policies())
@example(text=nested(3000).encode())
@example(text=b"description: " + b"x" * (2 << 20))
@example(text=RESEARCH.read_bytes().replace(b"k_anonymity: 5", b"k_anonymity: five"))
@example(text=RESEARCH.read_bytes() + b"colums: {}\n")
def test_hostile_policy_files(ws, text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "hostile.yaml"
        path.write_bytes(text)
        checked = run_cli("policy", "check", str(path), "--dataset", "patients", home=ws)
        assert checked.code in (0, 1), checked.stderr
        approved = run_hostile(ws, ["policy", "approve", str(path)], codes=(0, 1, 3))
    if checked.code == 1:
        assert "hostile.yaml" in checked.stderr and "Traceback" not in checked.stderr, checked.stderr
        assert approved.code != 0, "a policy that does not check was approved"


def chattr(flag: str, path: Path) -> bool:
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


leaf_names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/"), min_size=1,
                     max_size=30).filter(lambda n: n not in (".", "..") and not n.startswith("-"))


@SETTINGS
@given(kind=st.sampled_from(["file", "under a file", "symlink to folder", "symlink to file", "dangling symlink",
                             "non-empty folder", "inside an unwritable folder"]), leaf=leaf_names)
def test_hostile_export_destinations(ws, kind, leaf):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        elsewhere = root / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "keep.txt").write_text("keep")
        out = root / leaf
        locked = None
        if kind == "file":
            out.write_text("keep")
        elif kind == "under a file":
            (root / "plain").write_text("keep")
            out = root / "plain" / leaf
        elif kind.startswith("symlink") or kind == "dangling symlink":
            target = {"symlink to folder": root / "empty", "symlink to file": elsewhere / "keep.txt",
                      "dangling symlink": root / "missing"}[kind]
            if kind == "symlink to folder":
                target.mkdir()
            out.symlink_to(target)
        elif kind == "non-empty folder":
            out.mkdir()
            (out / "keep.txt").write_text("keep")
        else:
            locked = root / "locked"
            locked.mkdir()
            if not chattr("+i", locked):  # no immutable flag on this filesystem: a "folder" that is a file
                locked.rmdir()
                locked.write_text("keep")
            out = locked / leaf
        before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        try:
            run_hostile(ws, ["export", "patients", "--policy", str(RESEARCH), "--out", str(out), *EXPORT])
        finally:
            if locked is not None and locked.is_dir():
                chattr("-i", locked)
        assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before, "the export left something"
        assert (elsewhere / "keep.txt").read_text() == "keep"


def test_an_out_folder_that_cannot_be_replaced_fails_cleanly(ws, tmp_path):
    """An existing empty --out that even root cannot rename (immutable) is one clear error, not an internal one."""
    out = tmp_path / "immutable"
    out.mkdir()
    assert chattr("+i", out), "chattr +i is needed for this case"
    try:
        run_hostile(ws, ["export", "patients", "--policy", str(RESEARCH), "--out", str(out), *EXPORT])
    finally:
        chattr("-i", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["immutable"] and list(out.iterdir()) == []
