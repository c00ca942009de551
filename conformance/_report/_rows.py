"""The clause matrix: one row per rule the run's side checks, and how a failure reads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, final

from .._engine import RunResult
from .._rules import Level, Profile, Rule, out_of_force
from .._side import Failure, Handshaking, Side
from .._verdicts import Status, Tally

__all__ = [
    "AnyFailure",
    "AnyResult",
    "Checked",
    "RuleRow",
    "clause_matrix",
    "describe_failure",
    "rule_rows",
]


#: A run of any side, as the renderers take it.
AnyResult = RunResult[Any, Any, Any]


#: A failure of any side.
AnyFailure = Failure[Any, Any]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RuleRow:
    """One line of the clause matrix."""

    rule: Rule
    #: ok, allowed, graded (a SHOULD rule's latitude), failed, never-reached, skipped or
    #: not-in-profile.
    status: str
    passed: int
    allowed: int
    failed: int
    latitudes: tuple[tuple[str, int], ...]
    note: str = ""

    @property
    def exercised(self) -> int:
        return self.passed + self.allowed + self.failed


class Checked(Protocol):
    """What the clause matrix and a replay file need of a run, random or exhaustive."""

    @property
    def side(self) -> Side[Any, Any, Any, Any]: ...
    @property
    def handshake(self) -> Handshaking: ...
    @property
    def profile(self) -> Profile: ...
    @property
    def tally(self) -> Tally: ...
    @property
    def failure(self) -> AnyFailure | None: ...
    @property
    def flaky(self) -> str | None: ...


def rule_rows(result: Checked) -> list[RuleRow]:
    """The clause matrix of a run: every rule of its side's groups, in catalogue order."""
    failure = result.failure
    strict = result.profile is Profile.STRICT
    declared = {capability.value for capability in result.handshake.capabilities}
    failing = {v.rule for v in failure.verdicts} if failure else set()
    rows = []
    for rule in result.side.rules:
        counts: Mapping[Status, int] = result.tally.counts.get(rule.id, {})
        passed, allowed = counts.get(Status.PASS, 0), counts.get(Status.ALLOWED, 0)
        failed = counts.get(Status.FAIL, 0)
        note = out_of_force(rule, strict=strict, capabilities=declared) or ""
        # A flaky run may keep no failure, but a rule that failed in it did fail.
        if rule.id in failing or (failed and (failure is not None or result.flaky is not None)):
            status = "failed"
        elif note:
            status = "not-in-profile" if rule.level is Level.SEED_DEFECT else "skipped"
        elif allowed:
            status = "graded" if rule.level is Level.SHOULD else "allowed"
        elif passed:
            status = "ok"
        else:
            status = "never-reached"
        latitudes = tuple(sorted(result.tally.latitudes.get(rule.id, {}).items()))
        rows.append(
            RuleRow(
                rule=rule,
                status=status,
                passed=passed,
                allowed=allowed,
                failed=failed,
                latitudes=latitudes,
                note=note,
            )
        )
    return rows


def clause_matrix(rows: Sequence[RuleRow]) -> str:
    """The clause matrix as a plain-text table."""
    lines = [f"{'rule':<7}{'level':<13}{'exercised':>10}{'allowed':>9}{'failed':>8}  verdict"]
    for row in rows:
        verdict = row.status + (f" ({row.note})" if row.note else "")
        if row.status == "graded":
            verdict += ": " + "; ".join(f"{text}: {count}" for text, count in row.latitudes)
        elif row.latitudes:
            verdict += ": " + "; ".join(text for text, _ in row.latitudes[:2])
        lines.append(
            f"{row.rule.id:<7}{row.rule.level.value:<13}{row.exercised:>10}{row.allowed:>9}"
            f"{row.failed:>8}  {verdict}"
        )
    return "\n".join(lines)


def describe_failure(side: Side[Any, Any, Any, Any], failure: AnyFailure) -> str:
    """The failing case as numbered, readable steps, with the rule broken and why."""
    return side.describe_failure(failure)
