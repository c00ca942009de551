"""Aiming at the rules a run never reached.

A run proves nothing of a rule no step exercised, and says so (INCONCLUSIVE). Generation reaches
most rules in a few cases, but a rule whose state is rare (a non-blockable start that a mirror
answers with -EAGAIN, with another mirror behind it) can be missed by a small budget and an
unlucky seed. So, once the generated cases are spent without a failure, the engine aims at the
rules still unreached: it searches the side's exhaustive scope, breadth first, on the candidate
itself, for the shortest sequence whose last step exercises each of them, and runs each sequence
found as one more case of the run. Breadth first, because the first sequence to reach a rule is
then a shortest one: an aimed case is as easy to read as a shrunk one.

The search is bounded (:data:`DEPTH` operations, :data:`TRANSITIONS` transitions, each a path
replayed and one step); a rule it does not reach in that stays unreached, and the run stays
INCONCLUSIVE. A step that fails on the way is a counterexample like any other, found by the
search: it ends the search, and the run reports it.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Generic, TypeAlias, TypeVar, final

from ._side import CaseT, SideExecutor, WouldWaitError
from ._verdicts import Status, Tally

if TYPE_CHECKING:
    from ._search import Space

__all__ = ["DEPTH", "TRANSITIONS", "Aimed", "Report", "aim"]

OpT = TypeVar("OpT")
ExecutorT = TypeVar("ExecutorT", bound=SideExecutor[Any, Any])

#: The longest sequence the search tries, in operations.
DEPTH: Final = 5
#: The most transitions it takes (each replays its path on a fresh case).
TRANSITIONS: Final = 20_000

_EXERCISED: Final = (Status.PASS, Status.ALLOWED, Status.FAIL)

#: A sequence of the search: its world's number and its operations.
_Path: TypeAlias = tuple[int, tuple[OpT, ...]]


@final
@dataclass(slots=True)
class Aimed(Generic[CaseT]):
    """What the search found: a case for each rule it reached, in the order reached, and the
    first case that failed a step on the way, if one did."""

    cases: dict[str, CaseT] = field(default_factory=dict)
    failing: CaseT | None = None
    transitions: int = 0


@final
@dataclass(slots=True)
class Report:
    """What a run's aiming did: the rules its cases reached, how many cases it ran, and
    whether one of them failed."""

    rules: tuple[str, ...] = ()
    cases: int = 0
    failed: bool = False


@final
@dataclass(slots=True)
class _Aim(Generic[OpT, ExecutorT, CaseT]):
    space: Space[OpT, ExecutorT, CaseT]
    wanted: set[str]
    found: Aimed[CaseT] = field(default_factory=Aimed)
    seen: set[Hashable] = field(default_factory=set)

    def fresh(self, world: int, path: tuple[OpT, ...]) -> ExecutorT | None:
        """A fresh case with ``path`` taken, or None if it does not replay as it did."""
        executor = self.space.executor(world, Tally())
        if executor.begin() is not None:
            return None
        for op in path:
            if executor.step(op).failed:
                return None
        return executor

    def take(self, world: int, path: tuple[OpT, ...], op: OpT) -> ExecutorT | None:
        """``path`` then ``op``: the executor after it, or None if it ends the branch (it
        would wait, failed, or its path does not replay)."""
        executor = self.fresh(world, path)
        if executor is None:
            return None
        self.found.transitions += 1
        try:
            outcome = executor.step(op)
        except WouldWaitError:
            return None
        case = self.space.case(world, (*path, op))
        if outcome.failed:
            self.found.failing = case
            return None
        for verdict in outcome.verdicts:
            if verdict.rule in self.wanted and verdict.status in _EXERCISED:
                self.wanted.discard(verdict.rule)
                self.found.cases[verdict.rule] = case
        return executor

    def level(self, frontier: list[_Path[OpT]]) -> list[_Path[OpT]]:
        deeper: list[_Path[OpT]] = []
        for world, path in frontier:
            executor = self.fresh(world, path)
            for op in () if executor is None else tuple(self.space.operations(world, executor)):
                if self.done():
                    return deeper
                after = self.take(world, path, op)
                if after is None:
                    continue
                key = (world, self.space.key(after))
                if key not in self.seen:
                    self.seen.add(key)
                    deeper.append((world, (*path, op)))
        return deeper

    def done(self) -> bool:
        return (
            not self.wanted
            or self.found.failing is not None
            or self.found.transitions >= TRANSITIONS
        )


def aim(space: Space[OpT, ExecutorT, CaseT], rules: Collection[str]) -> Aimed[CaseT]:
    """Search ``space`` breadth first for a shortest case that exercises each of ``rules``,
    merging sequences that reach the same model state, until every rule is reached, a step
    fails, or the bounds are spent."""
    search: _Aim[OpT, ExecutorT, CaseT] = _Aim(space, set(rules))
    frontier: list[_Path[OpT]] = []
    for world in range(space.worlds):
        executor = search.fresh(world, ())
        if executor is not None:
            search.seen.add((world, space.key(executor)))
            frontier.append((world, ()))
    for _ in range(DEPTH):
        if search.done() or not frontier:
            break
        frontier = search.level(frontier)
    return search.found
