"""The KTAP v1 report, the kernel's test output format."""

from __future__ import annotations

from collections.abc import Sequence

from .._outputs import printable
from ._rows import AnyResult, RuleRow
from ._summary import UNFINISHED, diagnostics, harness_lines, never_reached, stopped_at_failure

__all__ = ["placeholder", "render", "to_ktap"]


def to_ktap(result: AnyResult, rows: Sequence[RuleRow]) -> str:
    """KTAP v1, the kernel's test output format: one test per rule, and a last test named
    "harness" (counted in the plan) when the run had a harness verdict or was flaky."""
    handshake = result.handshake
    harness = harness_lines(result)
    lines = [
        "KTAP version 1",
        f"1..{len(rows) + bool(harness)}",
        f"# hmm-conformance: {printable(handshake.name)}, profile {result.profile.value}, seed "
        f"{result.seed}",
    ]
    broken = {v.rule for v in result.failure.verdicts} if result.failure is not None else set()
    for number, row in enumerate(rows, start=1):
        name = row.rule.id
        if row.status == "failed":
            if result.failure is not None and row.rule.id in broken:
                lines.extend(diagnostics(result.side.describe_failure(result.failure)))
            else:
                lines.append(f"# {name} failed {row.failed} times while the case was being shrunk")
            lines.append(f"not ok {number} {name}")
        elif row.status == "never-reached" and not stopped_at_failure(result):
            lines.append(f"# {never_reached(result, [name])}")
            lines.append(f"not ok {number} {name}")
        elif row.status == "never-reached":
            lines.append(f"ok {number} {name} # SKIP {never_reached(result, [name])}")
        elif row.status in ("skipped", "not-in-profile"):
            lines.append(f"ok {number} {name} # SKIP {row.note}")
        else:
            lines.append(f"ok {number} {name}")
    if harness:
        # The steps go here unless the test of a rule the case broke shows them above.
        if result.failure is not None and all(rule is None for rule in broken):
            lines.extend(diagnostics(result.side.describe_failure(result.failure)))
        # A note may run over several lines (the engine's note on a flaky run quotes
        # Hypothesis); each is a diagnostic line of its own.
        lines.extend(diagnostics("\n".join(harness)))
        lines.append(f"not ok {len(rows) + 1} harness")
    return "\n".join(lines) + "\n"


def render(result: AnyResult, rows: Sequence[RuleRow]) -> str:
    return to_ktap(result, rows)


def placeholder() -> str:
    return f"KTAP version 1\n1..1\n# {UNFINISHED}\nnot ok 1 hmm-conformance\n"
