"""Aiming: the rules a run's generated cases never reached are reached by cases aimed at them,
found breadth first on the candidate itself (``conformance/_aiming.py``)."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field

import pytest

import conformance._aiming as aiming
from conformance import Budget, Profile, reference, run, start
from conformance._report import headline
from conformance._side import WouldWaitError
from conformance._verdicts import Status, Tally, Verdict
from conformance.core._catalogue import CATALOGUE
from conformance.core._explore import CoreSpace
from conformance.core._scope import SCOPE
from conformance.driver import reference_driver, run_driver, start_driver

ONE = Budget(name="one", examples=1, steps=1)


def test_a_run_of_one_case_reaches_every_rule_with_aimed_cases() -> None:
    """One case of one step reaches next to nothing; the aimed cases reach the rest, so the
    run conforms, says which rules only they reached, and counts them apart from shrinking."""
    result = run(*start(reference), budget=ONE, seed_value=1)
    assert result.conforms
    assert result.unreached == ()
    assert {"INV-4", "INV-7", "REL-2", "RNG-8"} <= set(result.aimed)
    assert 0 < result.aimed_cases < len(result.aimed)
    assert result.tally.cases == result.cases + result.aimed_cases
    assert result.shrink_cases == 0
    assert "more aimed at REG-" in headline(result)
    without = run(*start(reference), budget=ONE, seed_value=1, aim=False)
    assert set(without.unreached) == set(result.aimed)


def test_a_driver_run_of_one_case_reaches_every_rule_with_aimed_cases() -> None:
    result = run_driver(*start_driver(reference_driver), budget=ONE, seed_value=1)
    assert result.conforms
    assert result.aimed


def test_an_aimed_case_is_a_shortest_one() -> None:
    """Breadth first: INV-4 (a mirror's -EAGAIN failing a non-blockable start) takes a
    register and the start, no more."""
    candidate, handshake = start(reference)
    space = CoreSpace(candidate=candidate, handshake=handshake, profile=Profile.SEED, scope=SCOPE)
    found = aiming.aim(space, ["INV-4", "RNG-1"])
    assert [len(found.cases[rule].ops) for rule in ("INV-4", "RNG-1")] == [2, 1]
    assert found.failing is None


def test_a_failure_met_on_the_way_is_the_runs_failure() -> None:
    """A bug no generated case reached, met by the search: the run fails, shrunk, and says
    the failure came from aiming."""
    entry = next(e for e in CATALOGUE if e.name == "release-calls-twice")
    result = run(*start(entry.make), budget=ONE, seed_value=1)
    assert result.failure is not None
    assert result.aimed_failure
    assert {v.rule for v in result.failure.verdicts} & entry.rules
    assert "found by a case aimed at the rules no generated case reached" in headline(result)


# -- the search itself, on a scripted space --------------------------------------------------


@dataclass
class _Step:
    verdicts: tuple[Verdict, ...]
    failed: bool = False


@dataclass(frozen=True)
class _Case:
    ops: tuple[int, ...]


@dataclass
class _Executor:
    """A counter from 0: op ``n`` adds n; a script says what each state's ops do."""

    space: _Space
    state: int = 0
    steps: list[_Step] = field(default_factory=list)

    def caller_violation(self, op: int) -> str | None:
        return None

    def begin(self) -> Verdict | None:
        self.space.begun += 1
        if self.space.begun in self.space.crash_at_begin:
            return Verdict(rule=None, status=Status.CRASH)
        return None

    def step(self, op: int) -> _Step:
        self.space.steps += 1
        if self.space.steps in self.space.fail_at_step:
            return _Step(verdicts=(Verdict(rule="X-2", status=Status.FAIL),), failed=True)
        if op == 0:
            raise WouldWaitError("held")
        self.state += op
        return _Step(
            verdicts=tuple(
                Verdict(rule=r, status=Status.PASS) for r in self.space.rules(self.state)
            )
        )


@dataclass
class _Space:
    reach: dict[int, str]
    ops: tuple[int, ...] = (0, 1, 2)
    crash_at_begin: set[int] = field(default_factory=set)
    fail_at_step: set[int] = field(default_factory=set)
    begun: int = 0
    steps: int = 0
    worlds: int = 1

    def rules(self, state: int) -> tuple[str, ...]:
        return (self.reach[state],) if state in self.reach else ()

    def executor(self, world: int, tally: Tally) -> _Executor:
        return _Executor(self)

    def case(self, world: int, ops: tuple[int, ...]) -> _Case:
        return _Case(ops)

    def key(self, executor: _Executor) -> Hashable:
        return executor.state

    def own_state(self, executor: _Executor) -> Hashable:
        return None

    def operations(self, world: int, executor: _Executor) -> Iterator[int]:
        return iter(self.ops if executor.state < 9 else ())


def test_the_search_finds_each_rule_by_a_shortest_path_and_skips_waits() -> None:
    space = _Space(reach={2: "X-1", 5: "X-3"})
    found = aiming.aim(space, ["X-1", "X-3", "X-9"])
    assert found.cases == {"X-1": _Case((2,)), "X-3": _Case((1, 2, 2))}
    assert found.failing is None


def test_the_search_stops_at_a_failing_step_and_keeps_its_case() -> None:
    space = _Space(reach={}, fail_at_step={3})
    found = aiming.aim(space, ["X-1"])
    assert found.failing == _Case((2,))


def test_the_search_drops_a_branch_that_does_not_begin_or_replay() -> None:
    """A begin() that crashes, or a path that fails when taken again, ends that branch only."""
    assert aiming.aim(_Space(reach={2: "X-1"}, crash_at_begin={1}), ["X-1"]).cases == {}
    replayed = _Space(reach={3: "X-1"}, fail_at_step={4})  # the replay of (1,) fails
    assert aiming.aim(replayed, ["X-1"]).cases == {"X-1": _Case((2, 1))}
    again = _Space(reach={3: "X-1"}, fail_at_step={5})  # the replay of (1,) before 0 fails
    assert aiming.aim(again, ["X-1"]).cases == {"X-1": _Case((1, 2))}


def test_the_search_stops_when_its_transitions_are_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiming, "TRANSITIONS", 3)
    found = aiming.aim(_Space(reach={8: "X-1"}), ["X-1"])
    assert found.cases == {}
    assert found.transitions == 3
