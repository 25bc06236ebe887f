"""The package's shape: imports run one way (no circle among datashare's modules), and at the top of a module.

Imports inside functions are allowed only for heavy third-party packages deferred on purpose
(start-up time: `datashare --help` should not load DuckDB), each with a ``# deferred:`` comment on its line
or on the line(s) just above it. Every check runs on a set of module texts, so each one is also tried on a small
made-up package below.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "datashare"
DEFERRABLE = {"duckdb", "duckdb_extension_encodings", "sqlglot", "cryptography", "rich", "yaml", "bcrypt", "numpy",
              "jinja2", "pyspark", "py4j", "pandas", "pyarrow"}
LAYERS = ["errors", "core", "workspace", "permissions", "identifiers", "textpatterns", "redaction", "leakcheck",
          "signing", "audit", "catalog", "policy", "governance", "export", "synth", "report", "doctor", "init",
          "fakedata", "demo", "cli", "__main__"]
# policy/ is pure: it reads a policy and builds SQL text, and never touches a workspace, the log, the catalog.
POLICY_MUST_NOT_IMPORT = {"workspace", "audit", "catalog", "governance", "export"}
DEFERRED = "# deferred:"


class Module:
    """One module's text, parsed, with its dotted name and whether it is a package's ``__init__``."""

    def __init__(self, path: str, text: str) -> None:
        parts = list(Path(path).with_suffix("").parts)
        self.is_package = parts[-1] == "__init__"
        self.name = ".".join(parts[:-1] if self.is_package else parts)
        self.path = path
        self.lines = text.splitlines()
        self.tree = ast.parse(text)


def _real() -> dict[str, Module]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        module = Module(str(path.relative_to(PACKAGE.parent)), path.read_text(encoding="utf-8"))
        found[module.name] = module
    return found


def _made_up(files: dict[str, str]) -> dict[str, Module]:
    return {(m := Module(path, text)).name: m for path, text in files.items()}


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _base(node: ast.ImportFrom, module: Module) -> str:
    """The absolute module a ``from ... import`` reads from (``from .run import x`` in export/plan -> export.run)."""
    if not node.level:
        return node.module or ""
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    package = package[:len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def _targets(node: ast.Import | ast.ImportFrom, module: Module) -> list[str]:
    """Every absolute module name an import statement names (each of ``import a, b``; ``from x import y`` as x.y)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = _base(node, module)
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def _imported(node: ast.Import | ast.ImportFrom, module: Module, names: set[str]) -> set[str]:
    """The package's modules an import runs: what it names, and each parent package's ``__init__`` on the way,
    except the importer's own parents (those have run before the importer)."""
    found = set()
    for target in _targets(node, module):
        for name in [*_parents(target), target]:
            if name in names:
                found.add(name)
    return found - set(_parents(module.name)) - {module.name}


def _graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    names = set(modules)
    graph: dict[str, set[str]] = {}
    for name, module in modules.items():
        edges: set[str] = set()
        for node in ast.walk(module.tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _imported(node, module, names)
        graph[name] = edges
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules around it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _has_reason(lines: list[str], index: int) -> bool:
    """Whether the import on ``lines[index]``, or the run of imports and comments just above it, says
    ``# deferred:``."""
    if DEFERRED in lines[index]:
        return True
    index -= 1
    while index >= 0:
        line = lines[index].strip()
        if DEFERRED in line:
            return True
        if not line.startswith(("import ", "from ", "#")):
            return False
        index -= 1
    return False


def _bad_deferred_imports(modules: dict[str, Module]) -> list[str]:
    offenders = []
    for module in modules.values():
        for func in ast.walk(module.tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                if isinstance(node, ast.ImportFrom):
                    tops = [_base(node, module).split(".")[0] if not node.level else module.name.split(".")[0]]
                else:
                    tops = [alias.name.split(".")[0] for alias in node.names]
                reason = _has_reason(module.lines, node.lineno - 1)
                offenders += [f"{module.path}:{node.lineno} imports {top}" for top in tops
                              if top not in DEFERRABLE or not reason]
    return offenders


def _layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def _wrong_way(graph: dict[str, set[str]]) -> list[str]:
    rank = {name: i for i, name in enumerate(LAYERS)}
    wrong = []
    for module, edges in graph.items():
        own = _layer(module)
        for target in edges:
            other = _layer(target)
            if own in rank and other in rank and rank[other] > rank[own]:
                wrong.append(f"{module} imports {target}")
            if own == "policy" and other in POLICY_MUST_NOT_IMPORT:
                wrong.append(f"{module} imports {target} (policy/ is pure)")
    return sorted(wrong)


def _unranked(modules: dict[str, Module]) -> list[str]:
    return sorted({layer for name in modules if (layer := _layer(name)) is not None and layer not in LAYERS})


def _dynamic_imports(modules: dict[str, Module]) -> list[str]:
    found = []
    for module in modules.values():
        for node in ast.walk(module.tree):
            if (isinstance(node, ast.Attribute) and node.attr == "import_module") or (
                    isinstance(node, ast.Name) and node.id == "__import__") or (
                    isinstance(node, ast.alias) and node.name in ("import_module", "__import__")):
                found.append(f"{module.path}:{getattr(node, 'lineno', '?')}")
    return found


# --- the package itself -------------------------------------------------------------------------------------


def test_no_import_circle_among_datashare_modules():
    assert _cycle(_graph(_real())) is None, " -> ".join(_cycle(_graph(_real())) or [])


def test_imports_inside_functions_are_only_deferred_heavy_packages_with_a_reason():
    assert _bad_deferred_imports(_real()) == []


def test_lower_packages_never_import_higher_ones_and_policy_stays_pure():
    assert _wrong_way(_graph(_real())) == []


def test_every_top_level_module_has_a_layer():
    assert _unranked(_real()) == []


def test_the_library_imports_nothing_by_a_name_computed_at_run_time():
    assert _dynamic_imports(_real()) == []


# --- the checker on made-up packages ------------------------------------------------------------------------


def test_the_circle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_relative_imports_are_resolved_even_inside_functions():
    modules = _made_up({
        "p/__init__.py": "",
        "p/export/__init__.py": "",
        "p/export/plan.py": "from .run import x\n",
        "p/export/run.py": "def f():\n    from . import plan\n",
        "p/export/deep/__init__.py": "",
        "p/export/deep/leaf.py": "from ..plan import y\nfrom .. import run\n",
    })
    graph = _graph(modules)
    assert graph["p.export.plan"] == {"p.export.run"}
    assert graph["p.export.run"] == {"p.export.plan"}
    assert graph["p.export.deep.leaf"] == {"p.export.plan", "p.export.run"}
    assert _cycle(graph) == ["p.export.plan", "p.export.run", "p.export.plan"]
    assert _bad_deferred_imports(modules) == ["p/export/run.py:2 imports p"]


def test_every_name_of_a_plain_import_counts():
    modules = _made_up({"p/__init__.py": "", "p/a.py": "import os, p.b\n", "p/b.py": "",
                        "p/c.py": "def f():\n    import duckdb, json  # deferred: heavy\n"})
    assert _graph(modules)["p.a"] == {"p.b"}
    assert _bad_deferred_imports(modules) == ["p/c.py:2 imports json"]


def test_the_reason_must_be_a_deferred_comment_on_or_just_above_the_import():
    modules = _made_up({
        "p/__init__.py": "",
        "p/ok.py": ("def f():\n    import duckdb  # deferred: heavy\n"
                    "def g():\n    # deferred: heavy\n    import yaml\n    import sqlglot\n"),
        "p/bad.py": ("# deferred: far away\nx = 1\n"
                     "def f():\n    import duckdb  # a comment, not a reason\n"
                     "def g():\n    # deferred: heavy\n    y = 1\n    import yaml\n"),
    })
    assert _bad_deferred_imports(modules) == ["p/bad.py:4 imports duckdb", "p/bad.py:8 imports yaml"]


def test_standard_library_imports_inside_functions_are_refused():
    modules = _made_up({"p/__init__.py": "", "p/a.py": "def f():\n    import traceback  # deferred: why not\n"})
    assert _bad_deferred_imports(modules) == ["p/a.py:2 imports traceback"]


def test_importing_a_module_runs_its_parent_packages():
    modules = _made_up({
        "p/__init__.py": "",
        "p/core/__init__.py": "",
        "p/core/fs.py": "from p.export.plan import x\n",
        "p/export/__init__.py": "from p.export.run import export\n",
        "p/export/plan.py": "",
        "p/export/run.py": "from p.core.fs import y\n",
    })
    graph = _graph(modules)
    assert graph["p.core.fs"] == {"p.export", "p.export.plan"}
    assert "p.export" not in graph["p.export.run"]  # its own parent ran before it
    assert _cycle(graph) == ["p.core.fs", "p.export", "p.export.run", "p.core.fs"]


def test_a_lower_layer_importing_a_higher_one_is_refused():
    modules = _made_up({"p/__init__.py": "", "p/core.py": "from p import fakedata\n", "p/fakedata.py": "",
                        "p/cli.py": "import p.fakedata\n", "p/__main__.py": "from p.cli import main\n"})
    assert _wrong_way(_graph(modules)) == ["p.core imports p.fakedata"]
    assert _unranked(_made_up({"p/__init__.py": "", "p/gadgets.py": ""})) == ["gadgets"]


def test_policy_imports_none_of_the_stateful_packages():
    modules = _made_up({"p/__init__.py": "", "p/policy/__init__.py": "", "p/catalog/__init__.py": "",
                        "p/policy/model.py": "from p.catalog import store\nfrom p.core import sql\n",
                        "p/core/__init__.py": "", "p/core/sql.py": ""})
    assert _wrong_way(_graph(modules)) == ["p.policy.model imports p.catalog (policy/ is pure)"]


def test_imports_by_a_computed_name_are_found():
    modules = _made_up({"p/__init__.py": "",
                        "p/a.py": "import importlib\nm = importlib.import_module('p.b')\n",
                        "p/b.py": "m = __import__('os')\n",
                        "p/c.py": "from importlib import import_module\n",
                        "p/d.py": "import importlib.util\n"})
    assert sorted(_dynamic_imports(modules)) == ["p/a.py:2", "p/b.py:1", "p/c.py:1"]
