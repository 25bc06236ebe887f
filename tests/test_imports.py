"""The package's shape: imports run one way (no circle among datashare's modules), and at the top of a module.

Imports inside functions are allowed only for heavy third-party packages deferred on purpose
(start-up time: `datashare --help` should not load DuckDB), each with a comment on its line or the one before.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "datashare"
DEFERRABLE = {"duckdb", "duckdb_extension_encodings", "sqlglot", "cryptography", "rich", "yaml", "bcrypt", "numpy",
              "jinja2", "pyspark", "pandas", "pyarrow", "traceback", "getpass"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(path): ast.parse(path.read_text(encoding="utf-8")) for path in PACKAGE.rglob("*.py")}


def _imported(node: ast.Import | ast.ImportFrom, modules: set[str]) -> set[str]:
    """The datashare modules an import statement loads (``from datashare.x import y`` loads x.y if it is one)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    base = node.module or ""
    found = {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules}
    if base in modules:
        found.add(base)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    names = set(modules)
    graph: dict[str, set[str]] = {}
    for name, tree in modules.items():
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges |= _imported(node, names)
        graph[name] = edges - {name}
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


def test_no_import_circle_among_datashare_modules():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_the_circle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _has_reason(lines: list[str], index: int) -> bool:
    """Whether the import on ``lines[index]``, or the run of imports and comments just above it, carries a comment."""
    while index >= 0:
        line = lines[index].strip()
        if "#" in line:
            return True
        if not line.startswith(("import ", "from ")):
            return False
        index -= 1
    return False


def test_imports_inside_functions_are_only_deferred_heavy_packages_with_a_reason():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines()
        for func in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                top = (node.module if isinstance(node, ast.ImportFrom) else node.names[0].name or "").split(".")[0]
                if top not in DEFERRABLE or not _has_reason(lines, node.lineno - 1):
                    offenders.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {top}")
    assert offenders == []


def test_lower_packages_never_import_higher_ones():
    order = ["errors", "core", "workspace", "permissions", "identifiers", "signing", "audit", "catalog", "policy",
             "governance", "export", "init", "demo", "cli"]
    rank = {name: i for i, name in enumerate(order)}
    wrong = []
    for module, edges in _graph().items():
        own = module.split(".")[1] if "." in module else None
        for target in edges:
            other = target.split(".")[1] if "." in target else None
            if own in rank and other in rank and rank[other] > rank[own]:
                wrong.append(f"{module} imports {target}")
    assert wrong == []
