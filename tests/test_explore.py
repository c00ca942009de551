"""The exhaustive engine: breadth first, merged by model state, shortest counterexamples."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

import pytest

import hmm_ref as H
from conformance import (
    SCOPE,
    Candidate,
    ExploreResult,
    InvalidateStart,
    Profile,
    RegisterMirror,
    Release,
    Snapshot,
    explore,
    reference,
    start,
)
from conformance._known_bad import KnownBad
from conformance._report import rule_rows
from conformance._verdicts import Tally
from conformance.core._catalogue import CATALOGUE
from conformance.core._executor import Executor
from conformance.core._ops import CoreOperation, RangeDone
from conformance.core._scope import UNKNOWN_RANGE, operations, state_key

from . import candidates as C


def _explore(
    factory: Callable[[], Candidate],
    depth: int,
    *,
    profile: Profile = Profile.SEED,
    time_limit: float | None = None,
    clock: Callable[[], float] | None = None,
) -> ExploreResult:
    candidate, handshake = start(factory)
    if clock is None:
        return explore(candidate, handshake, depth=depth, profile=profile, time_limit=time_limit)
    return explore(
        candidate, handshake, depth=depth, profile=profile, time_limit=time_limit, clock=clock
    )


@pytest.fixture(scope="module")
def depth3() -> ExploreResult:
    return _explore(reference, 3)


def test_the_reference_holds_for_every_sequence_of_three_and_reaches_every_rule(
    depth3: ExploreResult,
) -> None:
    """Depth 3 is complete, fails nothing, and exercises every rule in force."""
    assert depth3.conforms
    assert depth3.completed == 3
    assert depth3.unreached == ()
    assert [level.depth for level in depth3.levels] == [1, 2, 3]
    assert depth3.tally.steps == depth3.transitions
    statuses = {row.rule.id: row.status for row in rule_rows(depth3)}
    assert statuses["REG-5"] == statuses["REL-3"] == "not-in-profile"
    assert {s for rule, s in statuses.items() if rule not in ("REG-5", "REL-3")} == {"ok"}


def test_the_first_level_takes_every_operation_the_scope_allows_from_the_start() -> None:
    """Depth 1 takes each operation once; the states it finds are the distinct results."""
    candidate, handshake = start(reference)
    executor = Executor(candidate, handshake, Profile.SEED, SCOPE.world, Tally())
    assert executor.begin() is None
    first = list(operations(executor.model, SCOPE))
    keys = set()
    for op in first:
        step = Executor(candidate, handshake, Profile.SEED, SCOPE.world, Tally())
        assert step.begin() is None
        assert not step.step(op).failed
        keys.add(state_key(step.model))
    keys.discard(state_key(executor.model))  # an operation that changes nothing: no new state
    result = _explore(reference, 1)
    assert result.levels[0].transitions == len(first)
    assert result.levels[0].states == len(keys)
    assert result.states == 1 + len(keys)


def test_the_scope_offers_each_kind_of_operation_and_keeps_the_callers_side() -> None:
    """From a state with two mirrors and a range, every kind of step is offered, and none
    that the caller's side of the protocol forbids."""
    candidate, handshake = start(reference)
    executor = Executor(candidate, handshake, Profile.SEED, SCOPE.world, Tally())
    assert executor.begin() is None
    span = SCOPE.spans[0]
    for op in (
        RegisterMirror(mirror=0),
        RegisterMirror(mirror=1),
        Snapshot(range=0, vma=0, start=span[0], end=span[1], encoding=H.DEFAULT_ENCODING),
    ):
        assert not executor.step(op).failed
    offered = list(operations(executor.model, SCOPE))
    kinds = {op.name for op in offered}
    assert kinds == {
        "snapshot",
        "invalidate_start",
        "range_done",
        "unregister",
        "release",
    }
    starts = [op for op in offered if isinstance(op, InvalidateStart)]
    # every span, both modes, every answer of each of the two mirrors
    assert len(starts) == len(SCOPE.spans) * 2 * len(SCOPE.replies) ** 2
    assert RangeDone(range=UNKNOWN_RANGE) in offered
    assert Release() in offered
    assert all(executor.model.caller_violation(op) is None for op in offered)
    assert len(set(offered)) == len(offered)
    # no mirror numbers left in the scope: nothing registers
    assert not any(isinstance(op, RegisterMirror) for op in offered)


def test_states_that_differ_only_in_history_are_merged() -> None:
    """Registering then snapshotting reaches the state snapshotting then registering does."""
    candidate, handshake = start(reference)
    span = SCOPE.spans[0]
    snap = Snapshot(range=0, vma=0, start=span[0], end=span[1], encoding=H.DEFAULT_ENCODING)
    keys = []
    both: tuple[CoreOperation, ...] = (RegisterMirror(mirror=0), snap)
    for order in itertools.permutations(both):
        executor = Executor(candidate, handshake, Profile.SEED, SCOPE.world, Tally())
        assert executor.begin() is None
        for op in order:
            assert not executor.step(op).failed
        keys.append(state_key(executor.model))
    assert keys[0] == keys[1]


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda e: e.name)
def test_each_catalogue_entry_has_the_recorded_shortest_counterexample(
    entry: KnownBad[Candidate],
) -> None:
    """Explore finds the entry's bug in exactly ``entry.shortest`` operations, against one of
    its rules, and nothing one operation shorter fails."""
    found = _explore(entry.make, entry.shortest)
    assert found.failure is not None
    assert len(found.failure.case.ops) == entry.shortest
    assert {v.rule for v in found.failure.verdicts} & entry.rules
    assert found.failure.reproduced
    if entry.shortest > 1:
        shorter = _explore(entry.make, entry.shortest - 1)
        assert shorter.failure is None
        assert shorter.completed == entry.shortest - 1


def test_the_counterexample_is_the_shortest_even_when_longer_ones_come_first() -> None:
    """A bug three steps deep is reported at three, though depth 5 was asked for."""
    result = _explore(C.BlockableStops, 5)
    assert result.failure is not None
    assert len(result.failure.case.ops) == 3
    assert result.completed == 2
    assert [level.depth for level in result.levels] == [1, 2, 3]


def test_the_time_limit_stops_the_search_and_says_how_deep_it_got() -> None:
    """With a clock that runs out during depth 2, depth 1 is complete and 2 is not."""
    ticks = itertools.count()
    result = _explore(reference, 4, time_limit=30.0, clock=lambda: float(next(ticks)))
    assert result.failure is None
    assert result.stopped == "the time limit of 30 s ran out at depth 2"
    assert result.completed == 1
    assert not result.conforms
    assert result.levels[-1].depth == 2


def test_a_candidate_that_crashes_at_begin_is_a_failure_with_no_steps() -> None:
    result = _explore(C.CrashesAtBegin, 2)
    assert result.failure is not None
    assert result.failure.setup_crash is not None
    assert "cannot set up" in result.failure.setup_crash.detail
    assert result.transitions == 0


def test_a_candidate_that_crashes_on_a_step_is_caught_at_that_step() -> None:
    result = _explore(C.Crashes, 3)
    assert result.failure is not None
    assert [v.status.name for v in result.failure.verdicts] == ["CRASH"]
    assert len(result.failure.case.ops) == 1
    assert isinstance(result.failure.case.ops[0], InvalidateStart)


def test_a_candidate_that_fails_a_step_it_passed_before_is_caught_on_the_replay() -> None:
    """Transitions replay their state's path; a step of it that fails now (the candidate wore
    out) is the counterexample, found while depth 2 was being searched."""
    result = _explore(C.WearsOut, 3)
    assert result.failure is not None
    assert result.flaky == (
        "the same 1 operation passed before and failed on replay; the candidate is not "
        "deterministic, so no search can promise a shortest case"
    )
    assert result.failure.reproduced
    assert result.failure.case.ops == (RegisterMirror(mirror=0),)
    assert result.levels[-1].depth == 2


def test_a_candidate_that_stops_beginning_cases_mid_search_is_a_setup_crash() -> None:
    result = _explore(C.BreaksDown, 3)
    assert result.failure is not None
    assert result.flaky is not None
    assert result.flaky.startswith("begin() failed after 30 cases that began;")
    assert result.failure.setup_crash is not None
    assert "device lost" in result.failure.setup_crash.detail
    assert result.levels[-1].depth == 2


def test_a_failure_that_does_not_come_back_is_reported_as_not_reproduced() -> None:
    """The flaky candidate fails its first non-blockable start once, and never again."""
    C.Flaky.failed_once = False
    result = _explore(C.Flaky, 3)
    assert result.failure is not None
    assert not result.failure.reproduced
    assert len(result.failure.case.ops) == 1


def test_a_candidate_whose_replays_reach_other_states_is_reported_not_deterministic() -> None:
    """Merging states is sound only for a deterministic candidate: the search checks each
    replayed path's state and stops, saying so, when it differs."""
    result = _explore(C.Alternates, 3)
    assert result.failure is None
    assert result.flaky is not None
    assert "led to another state on replay" in result.flaky
    assert not result.conforms


def test_the_strict_profile_finds_the_seed_defects_shortest_case() -> None:
    """Under strict, the reference's documented REL-3 defect takes two steps."""
    result = _explore(reference, 3, profile=Profile.STRICT)
    assert result.failure is not None
    assert [op.name for op in result.failure.case.ops] == ["snapshot", "release"]
    assert {v.rule for v in result.failure.verdicts} == {"REL-3"}


def test_a_candidate_without_release_is_never_released_and_its_rules_are_skipped() -> None:
    """Capabilities gate the scope as they gate the generators."""
    result = _explore(C.Minimal, 3)
    assert result.conforms
    assert result.unreached == ()
    statuses = {row.rule.id: row.status for row in rule_rows(result)}
    assert statuses["REL-1"] == statuses["INV-9"] == "skipped"
    assert result.tally.counts.get("REL-1") is None


def test_merging_states_can_hide_what_a_candidate_keeps_and_every_sequence_finds_it() -> None:
    """The candidate keeps a flag the model never sees. Merged, the three-step case is merged
    away and the first failure found is longer; continuing every sequence finds three."""
    merged = _explore(C.stale_busy_flag, 4)
    assert merged.failure is not None
    assert len(merged.failure.case.ops) == 4
    candidate, handshake = start(C.stale_busy_flag)
    every = explore(candidate, handshake, depth=4, merge=False)
    assert every.failure is not None
    assert [op.name for op in every.failure.case.ops] == [
        "register",
        "invalidate_start",
        "invalidate_start",
    ]
    assert {v.rule for v in every.failure.verdicts} & {"INV-2", "INV-6"}
    # without merging, every sequence of two is its own state
    assert every.levels[1].states == every.levels[1].transitions > merged.levels[1].states


def test_the_scope_describes_itself() -> None:
    """The line the command prints: counts in words, the modes, the replies by name."""
    assert SCOPE.describe() == (
        "2 mirrors, 2 snapshots, 4 pages, 4 spans, both modes, replies in {0, -EAGAIN, -ENOMEM}"
    )
    assert "non-blockable only" in replace(SCOPE, blockable=(False,)).describe()
    assert ", blockable only" in replace(SCOPE, mirrors=1, blockable=(True,)).describe()
    assert replace(SCOPE, mirrors=1, ranges=1).describe().startswith("1 mirror, 1 snapshot,")
