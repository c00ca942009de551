"""The core's oracle: one pure check per rule ID over (model before, operation, observation).

Each ``check_<ID>`` returns a :class:`Verdict` when the step exercised the rule, or None when it
did not. Checks never change the model. :func:`check_step` runs all of them in catalogue order.
A verdict names its rule, so a failure leads straight to docs/spec.md and back. The checks are
written in ``conformance/core/_checks_mirrors.py`` (REG, INV, END) and
``conformance/core/_checks_ranges.py`` (RNG, REL) and ``conformance/core/_checks_faults.py``
(FLT); :data:`CHECKS` names every one, and a rule of
the core without its check fails here, at import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from ._rules import rules_of

# The verdicts are every side's vocabulary (conformance/_verdicts.py); this public module names
# them for the users of its checks.
from ._verdicts import Status, Verdict
from .core import _checks_faults, _checks_mirrors, _checks_ranges
from .core._judging import Check
from .core._model import Model, Observation
from .core._ops import Operation

__all__ = ["CHECKS", "Status", "Verdict", "check_step"]

#: Every check written, by its function's name.
_WRITTEN: Final[Mapping[str, object]] = {
    **vars(_checks_mirrors),
    **vars(_checks_ranges),
    **vars(_checks_faults),
}


def _check_of(rule_id: str) -> Check:
    """The check of a core rule; a rule without one fails the import, naming it."""
    name = f"check_{rule_id.replace('-', '_')}"
    check = _WRITTEN.get(name)
    if not callable(check):
        raise ImportError(f"rule {rule_id} has no check: write {name} in conformance/core/")
    return check


#: Each core rule's ID and its check, in catalogue order.
CHECKS: Final[Sequence[tuple[str, Check]]] = tuple(
    (rule.id, _check_of(rule.id)) for rule in rules_of("core")
)


def check_step(m: Model, op: Operation, obs: Observation) -> list[Verdict]:
    """Every rule's verdict on one step, in catalogue order (rules not exercised are absent)."""
    verdicts: list[Verdict] = []
    for _, check in CHECKS:
        verdict = check(m, op, obs)
        if verdict is not None:
            verdicts.append(verdict)
    return verdicts
