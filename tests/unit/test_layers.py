"""The package's layers, read from its imports: each layer imports only the layers below it, no
module imports itself back through a cycle, and the front ends' libraries stay in the front ends.

    cli/, aws_lambda/            front ends (terminals; Lambda events and powertools)
    passes/, engine.py           many lanes, and the passes over the archive that are not a run
    lane/                        one account and region
    aws/                         small wrappers over AWS
    core/                        pure: no AWS call, no clock of its own
    errors, settings, progress   shared by every layer
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "log_exporter"

# a layer -> the layers it may import (besides itself and the shared modules)
SHARED = {"errors", "settings", "progress", "__init__"}
MAY_IMPORT = {
    "core": set(),
    "aws": {"core"},
    "lane": {"core", "aws"},
    "engine": {"core", "aws", "lane"},
    "passes": {"core", "aws", "lane", "engine"},
    "cli": {"core", "aws", "lane", "engine", "passes"},
    "aws_lambda": {"core", "aws", "lane", "engine", "passes", "cli"},
}
# third-party packages only some layers may import (at run time, not for type checking)
ONLY_IN = {"aws_lambda_powertools": {"aws_lambda"}, "rich": {"cli"}, "click": {"cli"}}


def _module(path: Path) -> str:
    return ".".join(("log_exporter", *path.relative_to(PACKAGE).with_suffix("").parts))


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, under `if TYPE_CHECKING:`) for every import of the file."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for n in ast.walk(node))
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = (
                    full if (PACKAGE.parent / (full.replace(".", "/") + ".py")).exists() else base
                )
                found.append((target, id(node) in typing_only))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, id(node) in typing_only) for alias in node.names)
    return found


FILES = sorted(PACKAGE.rglob("*.py"))
GRAPH = {_module(p): _imports(p) for p in FILES}


def test_the_package_has_the_layered_folders() -> None:
    layers = {_layer(m) for m in GRAPH}
    assert {"core", "aws", "lane", "passes", "cli", "aws_lambda"} <= layers
    assert layers <= set(MAY_IMPORT) | SHARED


def _wrong_imports(module: str, imports: list[tuple[str, bool]]) -> list[str]:
    layer = _layer(module)
    # the shared modules import no layer at run time
    allowed = set() if layer in SHARED else MAY_IMPORT[layer] | {layer}
    return [
        target
        for target, typing_only in imports
        if target.startswith("log_exporter.")
        and not typing_only
        and _layer(target) not in SHARED
        and _layer(target) not in allowed
    ]


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_each_module_imports_only_the_layers_below_it(module: str) -> None:
    wrong = _wrong_imports(module, GRAPH[module])
    assert not wrong, f"{module} ({_layer(module)}) imports {wrong}"


@pytest.mark.parametrize("package", sorted(ONLY_IN))
def test_front_end_libraries_stay_in_the_front_ends(package: str) -> None:
    wrong = [
        module
        for module, imports in GRAPH.items()
        for target, typing_only in imports
        if not typing_only
        and target.split(".")[0] == package
        and _layer(module) not in ONLY_IN[package]
    ]
    assert not wrong, f"{package} imported outside {sorted(ONLY_IN[package])}: {wrong}"


def test_no_import_cycles_at_run_time() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, imports in GRAPH.items():
        for target, typing_only in imports:
            if target in GRAPH and not typing_only and target != module:
                edges[module].add(target)
    # Tarjan's strongly connected components: a component of more than one module is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checks_see_a_wrong_import() -> None:
    """The rule is not vacuous: an upward import is caught, a typing-only one is not."""
    core = "log_exporter.core.windows"
    assert _wrong_imports(core, [("log_exporter.lane.lane", False)]) == ["log_exporter.lane.lane"]
    assert _wrong_imports(core, [("log_exporter.lane.lane", True)]) == []
    assert _wrong_imports("log_exporter.aws.tasks", [("log_exporter.engine", False)]) == [
        "log_exporter.engine"
    ]
    assert _wrong_imports("log_exporter.cli.main", [("log_exporter.engine", False)]) == []
