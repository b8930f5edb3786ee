"""pyproject.toml declares every third-party package that the package and the apps import."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "workbench", ROOT / "apps"]
# Import names whose distribution has another name, for optional packages that may not be installed (an
# installed package is looked up in its metadata instead)
DISTRIBUTION_OF = {"herbie": "herbie-data"}


def _name(requirement: str) -> str:
    base = re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", base).lower()


def _imports() -> dict[str, list[tuple[Path, bool]]]:
    """Top-level module -> (file, imported at module level?) for every absolute import."""
    found: dict[str, list[tuple[Path, bool]]] = {}
    for folder in SOURCES:
        for path in folder.rglob("*.py"):
            tree = ast.parse(path.read_text(), filename=str(path))
            top = {id(node) for node in tree.body}
            guarded = {
                id(inner) for node in tree.body if isinstance(node, ast.Try) for inner in ast.walk(node)
            }
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                eager = id(node) in top and id(node) not in guarded
                for name in names:
                    found.setdefault(name.split(".")[0], []).append((path.relative_to(ROOT), eager))
    return found


def test_every_imported_package_is_a_declared_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {_name(r) for r in project["dependencies"]}
    extras = {_name(r) for group in project["optional-dependencies"].values() for r in group}
    dists = {k: {_name(d) for d in v} for k, v in packages_distributions().items()}
    undeclared, eager_optional = [], []
    for module, places in sorted(_imports().items()):
        if module in sys.stdlib_module_names or module in ("workbench", "__future__"):
            continue
        providers = dists.get(module, {_name(DISTRIBUTION_OF.get(module, module))})
        if providers & required:
            continue
        if providers & extras:
            # an optional package must not be needed just to import the module that uses it
            eager_optional += [f"{module} ({path})" for path, eager in places if eager]
            continue
        undeclared.append(f"{module} ({places[0][0]}, from {sorted(providers)})")
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
    assert not eager_optional, f"optional packages imported at module level: {eager_optional}"


def test_the_direct_imports_found_include_the_ones_that_were_only_transitive():
    modules = _imports()
    for module in ("numba", "PIL", "numcodecs", "shapely", "bokeh", "param"):
        assert module in modules, module
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {_name(r) for r in project["dependencies"]}
    assert {"numba", "pillow", "numcodecs", "bokeh", "param"} <= required
    assert "shapely" not in required
    assert "shapely" in {_name(r) for r in project["optional-dependencies"]["geo"]}
    assert not any(eager for _, eager in modules["shapely"])
