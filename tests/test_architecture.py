"""The import layering of docs/architecture.md, enforced: no module imports a higher layer, no circles.

Every ``import`` of a ``workbench`` module counts, at the top of a file or inside a function (a lazy import
is still a dependency); only imports under ``if TYPE_CHECKING:`` are skipped, since they never run.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "workbench"

#: Each unit's layer: a unit imports only from units of lower layers, or of its own layer without circles.
LAYERS: dict[str, int] = {
    "errors": 0,
    "_lazy": 0,
    "_io": 1,
    "lexicon": 1,
    "grids": 1,
    "sample": 2,
    "sources": 2,
    "regrid": 2,
    "models": 3,
    "catalog": 4,
    "inference": 5,
    "events": 6,
    "scoring": 6,
    "training": 6,
    "workflow": 7,
    "viz": 8,
    "cli": 9,  # the command line: cli.py, cli_inputs.py and every subpackage's command.py
    "workbench": 9,  # the package root (its version, and open_catalog for convenience)
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "workbench"
    if parts[1] in ("cli", "cli_inputs") or parts[-1] == "command":
        return "cli"
    return parts[1]


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """The workbench modules ``path`` imports (``from workbench import lexicon`` names the submodule)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "workbench")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "workbench":
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if _is_module(sub) else node.module)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_unit_has_a_layer(graph):
    units = {_unit(m) for m in graph} | {_unit(t) for targets in graph.values() for t in targets}
    assert not units - set(LAYERS), f"place these in LAYERS (and docs/architecture.md): {sorted(units - set(LAYERS))}"


def test_no_module_imports_a_higher_layer(graph):
    upward = [
        f"{m} ({_unit(m)}, layer {LAYERS[_unit(m)]}) imports {t} ({_unit(t)}, layer {LAYERS[_unit(t)]})"
        for m, targets in graph.items()
        for t in sorted(targets)
        if LAYERS[_unit(t)] > LAYERS[_unit(m)]
    ]
    assert not upward, "\n".join(upward)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each a circle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_circles_between_units(graph):
    units: dict[str, set[str]] = defaultdict(set)
    for m, targets in graph.items():
        units[_unit(m)].update(_unit(t) for t in targets if _unit(t) != _unit(m))
    assert not _cycles(units)


def test_no_circles_between_modules(graph):
    edges = {m: {t for t in targets if t != m and t in graph} for m, targets in graph.items()}
    for m in edges:
        edges[m] = {t for t in edges[m] if not m.startswith(t + ".")}  # a module reaching its own package
    circles = _cycles(edges)
    assert not circles, circles


def test_models_do_not_import_the_engine(graph):
    bad = [f"{m} imports {t}" for m, ts in graph.items() if _unit(m) == "models" for t in ts if _unit(t) == "inference"]
    assert not bad, bad


def test_viz_reaches_inference_events_and_scoring_only_through_workflow(graph):
    bad = [
        f"{m} imports {t}"
        for m, ts in graph.items()
        if _unit(m) == "viz"
        for t in ts
        if _unit(t) in ("inference", "events", "scoring")
    ]
    assert not bad, bad


def test_the_checker_sees_an_upward_and_a_circular_import():
    # the test's own machinery on a known graph: a circle a -> b -> c -> a and a lone d
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _unit("workbench.viz.command") == "cli" and _unit("workbench.inference.plan") == "inference"
    assert "workbench.lexicon" in _imports(PACKAGE / "sources" / "era5.py")
