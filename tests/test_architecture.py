"""The layout keeps its plan: an import graph read from the source (ast over src/margin).

No import cycle, at module level or inside functions; the library never imports its CLI; the
report, the gate and the pytest plugin never reach back into the runner or its executors;
`margin.*` imports sit at module level (but for the heavy stages in LAZY_STAGES); modules stay under 400 lines and functions under 60;
tests mirror the packages. docs/architecture.md is the map these rules keep true.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT

SRC = ROOT / "src" / "margin"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_TOP_ENTRIES = 19
DOWNSTREAM = ("margin.report", "margin.gate", "margin.integrations.pytest_plugin")
"""Stages that read results.json and the journal, never the runner's objects."""
RUNNER = ("margin.execute",)


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    imports: set[str] = field(default_factory=set)
    """margin modules imported at module level (TYPE_CHECKING blocks aside)."""
    inner: list[tuple[int, str]] = field(default_factory=list)
    """(line, module) of every import inside a function, any package."""


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.Import | ast.ImportFrom, module: Module, known: set[str]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = module.name.split(".")
        if module.path.name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, *([node.module] if node.module else [])])
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        yield submodule if submodule in known else base


def _walk(module: Module, node: ast.AST, in_function: bool, known: set[str]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            continue
        inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
        if isinstance(child, ast.Import | ast.ImportFrom):
            for target in _targets(child, module, known):
                if inside:
                    module.inner.append((child.lineno, target))
                elif target.startswith("margin"):
                    module.imports.add(_known_prefix(target, known))
        _walk(module, child, inside, known)


def _known_prefix(name: str, known: set[str]) -> str:
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def read_modules(root: Path = SRC) -> dict[str, Module]:
    paths = sorted(root.rglob("*.py"))
    modules = {
        module_name(p, root): Module(module_name(p, root), p, ast.parse(p.read_text(), str(p)))
        for p in paths
    }
    known = set(modules)
    for module in modules.values():
        _walk(module, module.tree, False, known)
    return modules


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), and self-loops."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return read_modules()


def graph_of(modules: dict[str, Module]) -> dict[str, set[str]]:
    graph = {name: set(m.imports) for name, m in modules.items()}
    for name, m in modules.items():
        for _, target in m.inner:
            if target.startswith("margin"):
                graph[name].add(_known_prefix(target, set(modules)))
    for name in graph:
        graph[name] = {t for t in graph[name] if t in modules and t != "margin"}
    return graph


def test_no_import_cycle(modules: dict[str, Module]) -> None:
    assert cycles(graph_of(modules)) == []


def test_the_checker_sees_a_cycle_inside_a_function(tmp_path: Path) -> None:
    root = tmp_path / "margin"
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "a.py").write_text("from margin.b import x\n")
    (root / "b.py").write_text("x = 1\n\ndef f():\n    from margin.a import y  # hidden\n")
    found = read_modules(root)
    assert cycles(graph_of(found)) == [["margin.a", "margin.b"]]


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_library_never_imports_its_cli(modules: dict[str, Module]) -> None:
    graph = graph_of(modules)
    wrong = sorted(
        (name, target)
        for name, targets in graph.items()
        if not _within(name, ("margin.cli",))
        for target in targets
        if _within(target, ("margin.cli",))
    )
    assert wrong == []


def test_report_gate_and_plugin_never_import_the_runner(modules: dict[str, Module]) -> None:
    graph = graph_of(modules)
    wrong = sorted(
        (name, target)
        for name, targets in graph.items()
        if _within(name, DOWNSTREAM)
        for target in targets
        if _within(target, RUNNER)
    )
    assert wrong == []


LAZY_STAGES = {
    ("margin.report", "margin.results.score"): "scoring loads only when results.json is stale",
    ("margin.execute.session", "margin.execute.adaptive"): "only an adaptive run reads rounds",
    ("margin.execute.session", "margin.execute.early_stop"): "only an early-stopping run does",
    ("margin.cli.scorer", "margin.cli.run_summary"): "scored in a process forked for it",
}
"""The one exception to module-level `margin.*` imports: a stage whose imports are heavy
(pandas, scipy) loaded by a function of a lighter stage only when it must run — each pair named
here with its reason, and the function's import commented."""


def test_margin_imports_sit_at_module_level(modules: dict[str, Module]) -> None:
    """Inside a function only optional heavy dependencies load, each with its reason, and the
    heavy stages listed in LAZY_STAGES."""
    inner = sorted(
        (name, line, target)
        for name, m in modules.items()
        for line, target in m.inner
        if target.startswith("margin") and (name, target) not in LAZY_STAGES
    )
    assert inner == []


def test_every_lazy_import_says_why(modules: dict[str, Module]) -> None:
    silent = []
    for name, m in modules.items():
        lines = m.path.read_text().splitlines()
        for line, target in m.inner:
            here, above = lines[line - 1], lines[line - 2] if line > 1 else ""
            if "#" not in here and not above.strip().startswith("#"):
                silent.append((name, line, target))
    assert silent == []


def test_modules_are_small(modules: dict[str, Module]) -> None:
    big = {
        name: n
        for name, m in modules.items()
        if (n := len(m.path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert big == {}


def test_functions_are_small(modules: dict[str, Module]) -> None:
    long = []
    for name, m in modules.items():
        for node in ast.walk(m.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                size = (node.end_lineno or node.lineno) - start + 1
                if size > MAX_FUNCTION_LINES:
                    long.append((name, node.name, size))
    assert long == []


def test_the_top_shows_the_stages() -> None:
    entries = sorted(p.name for p in SRC.iterdir() if p.name != "__pycache__")
    assert len(entries) <= MAX_TOP_ENTRIES, entries


def packages() -> list[str]:
    return sorted(p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists())


@pytest.mark.parametrize("package", packages())
def test_tests_mirror_the_package(package: str) -> None:
    """tests/<package>/ exists and one of its tests imports the package directly."""
    folder = ROOT / "tests" / package
    assert folder.is_dir(), f"no tests/{package}/"
    importing = [
        p
        for p in folder.rglob("test_*.py")
        if f"from margin.{package}" in p.read_text() or f"import margin.{package}" in p.read_text()
    ]
    assert importing, f"no test in tests/{package}/ imports margin.{package}"


def test_the_architecture_page_names_every_package() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    top = sorted(
        p.name for p in SRC.iterdir() if p.suffix == ".py" or p in map(SRC.joinpath, packages())
    )
    missing = [name for name in top if f"`{name.removesuffix('.py')}" not in page]
    assert missing == []


def test_no_package_shadows_a_public_name() -> None:
    """`margin.run` is the API's function: a subpackage of that name would replace it (Python
    sets the attribute when the subpackage is imported), so once any module of it loaded,
    `margin.run(...)` would be a module."""
    import importlib
    import pkgutil

    import margin

    for info in pkgutil.walk_packages(margin.__path__, "margin."):
        if info.name.endswith("pytest_plugin.items") or ".executors.ray" in info.name:
            continue  # a pytest plugin module; ray is optional
        importlib.import_module(info.name)
    shadowed = [name for name in margin.__all__ if type(getattr(margin, name)).__name__ == "module"]
    assert shadowed == []
    assert callable(margin.run) and callable(margin.score)
