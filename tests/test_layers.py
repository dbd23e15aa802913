"""The package layout holds: dependencies flow one way (entrance -> HTTP -> domain -> media), never
sideways between sibling packages or back up, and every folder says what lives in it.

Each package sits on a floor; a module may import its own package and any floor below its own. The
import graph is read from the source (every ``import``, also inside functions), except imports under
``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mock_server"
ENTRANCE = "(entrance)"  # the top-level modules: cli, config, app, emulator, __main__
FLOORS = {
    "media": 0,      # clip rendering: bytes and numbers in, an MP4 out
    "assets": 0,     # images answered offline: built-in sample frames, --asset-map files
    "tasks": 1,      # the domain: lifecycle, clock, keys, regions, errors, the Store interface
    "store": 2,      # Store implementations (memory, SQLite)
    "traffic": 2,    # quotas, fault rules, scenarios, journal (models, no HTTP)
    "report": 2.5,   # the client report card: reads journal entries and task timelines, no HTTP
    "pipeline": 3,   # middlewares and what every HTTP module shares
    "api": 4,        # the DashScope HTTP surface
    "admin": 4,      # /_mock/
    "oss": 4,        # the OSS stand-in
    "proxy": 4.5,    # the intercepting proxy: hands requests to the app; only the entrance starts it
    ENTRANCE: 5,
    "testing": 6,    # plugin, embedded server, ServeProcess, samples
}


def package_of(module: str) -> str | None:
    """``mock_server.tasks.service`` -> ``tasks``; a top-level module -> the entrance; the package
    root itself -> None."""
    parts = module.split(".")
    if parts[0] != "mock_server" or len(parts) == 1:
        return None
    return parts[1] if (PACKAGE / parts[1]).is_dir() else ENTRANCE


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _exists(module: str) -> bool:
    where = PACKAGE.parent.joinpath(*module.split("."))
    return where.with_suffix(".py").exists() or where.is_dir()


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every ``mock_server`` module the code of ``module`` imports at run time, as absolute
    names."""
    tree = ast.parse(source)
    here = module.split(".")
    if not is_package:
        here = here[:-1]  # relative imports start from the module's package
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            # `from . import handlers` imports the module `<target>.handlers`.
            found.update(f"{target}.{alias.name}" for alias in node.names
                         if _exists(f"{target}.{alias.name}"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name.split(".")[0] == "mock_server"}


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_package_has_a_floor():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(FLOORS) - {ENTRANCE}


def wrong_imports(module: str, imports: set[str]) -> list[str]:
    importer = package_of(module)
    wrong = []
    for target in sorted(imports):
        imported = package_of(target)
        if imported is None or imported == importer:
            continue
        if FLOORS[imported] >= FLOORS[importer]:
            direction = "sideways" if FLOORS[imported] == FLOORS[importer] else "up"
            wrong.append(f"{target} ({imported}, floor {FLOORS[imported]}: {direction})")
    return wrong


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path):
    module = module_name(path)
    if package_of(module) is None:  # the package root: its public names load lazily, on first use
        tree = ast.parse(path.read_text())
        assert not [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                    and "mock_server" in ast.unparse(n)], "mock_server/__init__.py imports eagerly"
        return
    imports = imported_modules(path.read_text(), module, path.name == "__init__.py")
    wrong = wrong_imports(module, imports)
    assert not wrong, (f"{module} ({package_of(module)}, floor {FLOORS[package_of(module)]}) "
                       "imports " + "; ".join(wrong))


def test_the_checker_sees_what_breaks_the_flow():
    """The check above can fail: a relative import two levels up and one inside a function are
    found as the absolute names they resolve to; upward and sideways imports are reported, while
    TYPE_CHECKING imports are not."""
    source = ("from typing import TYPE_CHECKING\nfrom ..tasks import models\n"
              "if TYPE_CHECKING:\n    from ..emulator import Emulator\n"
              "def f():\n    from ..api.handlers import get_task\n")
    found = imported_modules(source, "mock_server.media.probe")
    assert {"mock_server.tasks", "mock_server.tasks.models", "mock_server.api.handlers"} <= found
    assert "mock_server.emulator" not in found
    assert wrong_imports("mock_server.media.probe", found) == [
        "mock_server.api.handlers (api, floor 4: up)", "mock_server.tasks (tasks, floor 1: up)",
        "mock_server.tasks.models (tasks, floor 1: up)"]
    assert wrong_imports("mock_server.api.probe", {"mock_server.oss.signing"}) == [
        "mock_server.oss.signing (oss, floor 4: sideways)"]


def test_each_folder_says_what_lives_there_and_what_it_may_import():
    for folder in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
        assert "May import" in doc, f"{folder.name}/__init__.py needs a docstring with 'May import'"


def test_the_top_level_stays_small():
    modules = [p.name for p in PACKAGE.glob("*.py")]
    assert len(modules) <= 10, modules
