"""The package keeps the shape of its architecture: one engine below, one package per side.

CONTRIBUTING.md ("How the code is organised") describes the layout these tests hold to.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Final

import pytest

PACKAGE: Final = Path(__file__).resolve().parent.parent / "conformance"
#: The packages of the sides: each imports the engine and itself, never another side.
SIDES: Final = ("core", "driver")
#: The most lines a module may have, and a function (declarative tables are module constants,
#: not functions, so the second limit does not reach them).
MODULE_LINES: Final = 450
FUNCTION_LINES: Final = 60
#: Modules of the engine that may name a side: the registry of sides, and the core's public
#: oracle (conformance.oracle, which gathers the core's checks).
MAY_NAME_SIDES: Final = ("_sides.py", "oracle.py", "__init__.py")

MODULES: Final = sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def _imported(path: Path) -> set[str]:
    """The modules ``path`` imports, as dotted names under ``conformance``."""
    package = ["conformance", *path.relative_to(PACKAGE).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                found.add(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _side_of(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "conformance" and parts[1] in SIDES else None


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_module_is_longer_than_the_limit(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MODULE_LINES


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_function_is_longer_than_the_limit(path: Path) -> None:
    long = [
        f"{node.name} ({(node.end_lineno or node.lineno) - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > FUNCTION_LINES
    ]
    assert long == []


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_a_side_imports_no_other_side_and_the_engine_names_none(path: Path) -> None:
    """A side's package imports the engine and itself; the engine's modules import no side,
    except the registry (and the public facades and oracle that gather a side's names)."""
    here = path.relative_to(PACKAGE).parts
    sides = {side for side in map(_side_of, _imported(path)) if side is not None}
    if here[0] in SIDES:
        assert sides <= {here[0]}
    elif here[0].startswith("_") and (len(here) > 1 or here[0] not in MAY_NAME_SIDES):
        assert sides == set()


def test_the_checks_find_what_they_look_for() -> None:
    """The layout checks see real imports: the registry names both sides, and a side's
    modules import the engine."""
    assert {_side_of(name) for name in _imported(PACKAGE / "_sides.py")} >= {"core", "driver"}
    assert "conformance._engine" in _imported(PACKAGE / "core" / "_side.py")
    assert "conformance._engine" in _imported(PACKAGE / "driver" / "_side.py")
