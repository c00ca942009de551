"""Which side checks a rule, and when a run leaves it out, is stated once in the rules module."""

from __future__ import annotations

import pytest

from conformance import Capability
from conformance._rules import GATES, OWNERS, RULES, RULES_BY_ID, out_of_force, rules_of
from conformance.driver._oracle import DRIVER_CHECKS
from conformance.oracle import CHECKS


def test_every_group_has_one_owner_and_every_rule_a_group() -> None:
    """Each rule's group is in the table; the core owns REG..REL, the driver side DRV, and
    no candidate run checks MN (hmm_ref's own tests do)."""
    assert {rule.group for rule in RULES} == set(OWNERS)
    assert {rule.group for rule in rules_of("core")} == {"REG", "INV", "END", "RNG", "FLT", "REL"}
    assert {rule.group for rule in rules_of("driver")} == {"DRV"}
    assert all(rule.side is None for rule in RULES if rule.group == "MN")


def test_each_side_has_one_check_per_rule_it_owns() -> None:
    """The oracles register exactly the rules their side owns, in catalogue order."""
    assert [rule_id for rule_id, _ in CHECKS] == [rule.id for rule in rules_of("core")]
    assert [rule_id for rule_id, _ in DRIVER_CHECKS] == [rule.id for rule in rules_of("driver")]


def test_gates_name_rules_and_capabilities_that_exist() -> None:
    """Every gated rule is in the catalogue, and every gate is a capability a candidate can
    declare."""
    assert set(GATES) <= set(RULES_BY_ID)
    assert {Capability(gate) for gate in GATES.values()} <= set(Capability)


@pytest.mark.parametrize(
    ("rule_id", "strict", "capabilities", "note"),
    [
        ("REG-5", False, {"strict"}, "strict profile only"),
        ("REG-5", True, set(), "candidate did not declare the strict capability"),
        ("REG-5", True, {"strict"}, None),
        ("REL-3", True, {"strict"}, "needs capability release"),
        ("INV-9", False, set(), "needs capability observe-in-callback"),
        ("INV-9", False, {"observe-in-callback"}, None),
        ("INV-5", False, set(), None),
    ],
)
def test_out_of_force_says_why_a_rule_is_left_out(
    rule_id: str, strict: bool, capabilities: set[str], note: str | None
) -> None:
    """A seed defect needs the strict profile and capability; a gate needs its capability."""
    assert out_of_force(RULES_BY_ID[rule_id], strict=strict, capabilities=capabilities) == note
