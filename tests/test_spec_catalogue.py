"""The rule catalogue, docs/spec.md and the tests name the same rules, and the spec's links hold."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conformance._rules import RULES, RULES_BY_ID, Level, Rule

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "spec.md"
RULE_ID = re.compile(r"\b(REG|INV|END|RNG|FLT|REL|MN|DRV)-(\d+)\b")
#: The groups that the reference implements and its own tests must name, rule by rule.
REFERENCE_GROUPS = ("REG", "INV", "END", "RNG", "FLT", "REL", "MN")


def _test_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def test_catalogue_ids_are_unique_and_numbered_without_gaps() -> None:
    """Each group's rules are numbered 1..n, once each."""
    assert len(RULES_BY_ID) == len(RULES)
    groups: dict[str, list[int]] = {}
    for rule in RULES:
        match = RULE_ID.fullmatch(rule.id)
        assert match is not None, rule.id
        assert rule.group == match.group(1)
        groups.setdefault(rule.group, []).append(int(match.group(2)))
    assert all(numbers == list(range(1, len(numbers) + 1)) for numbers in groups.values())
    assert {rule.id for rule in RULES if rule.level is Level.SEED_DEFECT} == {
        "REG-5",
        "REL-3",
        "FLT-6",
    }


def test_spec_has_a_section_for_every_rule_and_no_other() -> None:
    """docs/spec.md has one heading per catalogue rule, with the rule's level, and no stray ID."""
    text = SPEC.read_text()
    headings = re.findall(
        r"^###\s+((?:REG|INV|END|RNG|FLT|REL|MN|DRV)-\d+)\s+\(([A-Z-]+)\)", text, re.M
    )
    assert [rule_id for rule_id, _ in headings] == [rule.id for rule in RULES]
    assert all(RULES_BY_ID[rule_id].level.value == level for rule_id, level in headings)
    mentioned = {f"{group}-{number}" for group, number in RULE_ID.findall(text)}
    assert mentioned <= set(RULES_BY_ID)


@pytest.mark.parametrize(
    "rule", [r for r in RULES if r.group in REFERENCE_GROUPS], ids=lambda r: str(r.id)
)
def test_every_reference_rule_has_a_named_test(rule: Rule) -> None:
    """Each REG/INV/END/RNG/REL/MN rule is named by at least one test, e.g. test_INV_5_..."""
    prefix = f"test_{rule.id.replace('-', '_')}_"
    assert any(name.startswith(prefix) for name in _test_names()), prefix


def _definitions(path: Path) -> dict[str, list[tuple[int, int]]]:
    """Each function, class and assigned name in a module, with the lines it spans."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names = [node.name]
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            names += [t.attr for t in targets if isinstance(t, ast.Attribute)]
        else:
            continue
        for name in names:
            spans.setdefault(name, []).append((node.lineno, node.end_lineno or node.lineno))
    return spans


def test_spec_code_links_point_at_the_named_code() -> None:
    """A link to a definition lands inside it; a link to code text lands on lines showing it."""
    links = re.findall(r"\[`([^`]+)`\]\(\.\./([\w/]+\.py)#L(\d+)(?:-L(\d+))?\)", SPEC.read_text())
    assert len(links) >= 37
    for name, path, first, last in links:
        start, end = int(first), int(last or first)
        text = (ROOT / path).read_text()
        assert 1 <= start <= end <= len(text.splitlines()), (path, start, end)
        spans = _definitions(ROOT / path).get(name.split(".")[-1].removesuffix("()"))
        if spans is not None:
            assert any(low <= start <= end <= high for low, high in spans), (
                f"{path}#L{start}-L{end} is not inside a definition of {name} ({spans})"
            )
        else:
            shown = "\n".join(text.splitlines()[start - 1 : end])
            assert name in shown, f"{path}#L{start}-L{end} does not show {name}"
