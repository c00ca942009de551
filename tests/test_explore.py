"""The exhaustive engine: breadth first, merged by the model's and the candidate's state,
shortest counterexamples."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Final

import pytest

import hmm_ref as H
from conformance import (
    SCOPE,
    Candidate,
    CpuView,
    ExploreResult,
    InvalidateStart,
    Profile,
    RegisterMirror,
    Release,
    Scope,
    Snapshot,
    UnregisterMirror,
    explore,
    reference,
    start,
)
from conformance._fingerprint import own_state
from conformance._known_bad import KnownBad
from conformance._report import rule_rows
from conformance._verdicts import Tally
from conformance.core._blind_ranges import MigrationAsError
from conformance.core._catalogue import CATALOGUE
from conformance.core._executor import Executor
from conformance.core._explore import CoreSpace
from conformance.core._ops import CoreOperation, RangeDone
from conformance.core._scope import UNKNOWN_RANGE, operations, state_key
from conformance.core._seed_core import SeedCore
from conformance.core._wire import exec_factory

from . import candidates as C
from .hidden_state import HIDDEN_STATE

#: The second world alone (its walk stops at a poisoned page): for the tests of the search's
#: mechanics, whose counts of cases and clock readings are one world's.
ONE_WORLD = replace(SCOPE, worlds=SCOPE.worlds[1:])
#: One world, one mirror, one snapshot: enough for each hidden-state core's three steps.
SMALL = replace(ONE_WORLD, mirrors=1, ranges=1)


def _explore(
    factory: Callable[[], Candidate],
    depth: int,
    *,
    profile: Profile = Profile.SEED,
    time_limit: float | None = None,
    clock: Callable[[], float] | None = None,
    scope: Scope = SCOPE,
) -> ExploreResult:
    candidate, handshake = start(factory)
    if clock is None:
        return explore(
            candidate, handshake, depth=depth, profile=profile, time_limit=time_limit, scope=scope
        )
    return explore(
        candidate,
        handshake,
        depth=depth,
        profile=profile,
        time_limit=time_limit,
        clock=clock,
        scope=scope,
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
    defects = ("REG-5", "REL-3", "FLT-6")
    assert {statuses[rule] for rule in defects} == {"not-in-profile"}
    assert {s for rule, s in statuses.items() if rule not in defects} == {"ok"}


def test_the_first_level_takes_every_operation_the_scope_allows_from_each_world() -> None:
    """Depth 1 takes each operation once from each world's start; the states it finds are the
    distinct results, of the model and of the candidate."""
    candidate, handshake = start(reference)
    transitions, states = 0, 0
    for world in SCOPE.worlds:
        executor = Executor(candidate, handshake, Profile.SEED, world, Tally())
        assert executor.begin() is None
        root = (state_key(executor.model), own_state(candidate, executor.handed))
        first = list(operations(executor.model, SCOPE))
        keys = set()
        for op in first:
            step = Executor(candidate, handshake, Profile.SEED, world, Tally())
            assert step.begin() is None
            assert not step.step(op).failed
            keys.add((state_key(step.model), own_state(candidate, step.handed)))
        keys.discard(root)  # a step that changes nothing: no new state
        transitions, states = transitions + len(first), states + len(keys)
    result = _explore(reference, 1)
    assert result.roots == len(SCOPE.worlds) == 2
    assert result.levels[0].transitions == transitions
    assert result.levels[0].states == states
    assert result.states == len(SCOPE.worlds) + states


def test_the_scope_offers_each_kind_of_operation_and_keeps_the_callers_side() -> None:
    """From the start a fault is offered (faults take the first range only); from a state with
    two mirrors and a range, every other kind of step, and none that the caller's side of the
    protocol forbids."""
    candidate, handshake = start(reference)
    executor = Executor(candidate, handshake, Profile.SEED, SCOPE.world, Tally())
    assert executor.begin() is None
    # faults take the first range only
    assert {op.name for op in operations(executor.model, SCOPE)} >= {"fault", "snapshot"}
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
    # every span (those across vmas too), both modes, every answer of each of the two mirrors
    spans = SCOPE.spans + SCOPE.crossing
    assert len(starts) == len(spans) * 2 * len(SCOPE.replies) ** 2
    assert {(op.start, op.end) for op in starts} == set(spans)
    assert any(
        SCOPE.world.vmas[0].end < end and start < SCOPE.world.vmas[0].end
        for start, end in SCOPE.crossing
    )
    assert RangeDone(range=UNKNOWN_RANGE) in offered
    # a mirror number never registered, besides the two registered
    unregisters = {op.mirror for op in offered if isinstance(op, UnregisterMirror)}
    assert unregisters == {0, 1, SCOPE.mirrors}
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


#: The catalogue's entries written with the suite, and the blind set's whose shortest is 1 or
#: 2. The blind set's longer ones cost CI 24 s (10-40 s each for the three of 4, not counted):
#: the benchmark searches every entry both ways instead (benchmarks/searches.py).
SCOPED: Final = tuple(
    entry for entry in CATALOGUE if not entry.name.startswith("blind-") or entry.shortest <= 2
)


@pytest.mark.parametrize("entry", SCOPED, ids=lambda e: e.name)
def test_each_catalogue_entry_has_the_recorded_shortest_counterexample(
    entry: KnownBad[Candidate],
) -> None:
    """Explore finds the entry's bug in exactly ``entry.shortest`` operations, against one of
    its rules, and no sequence one operation shorter fails, merged or not."""
    found = _explore(entry.make, entry.shortest)
    assert found.failure is not None
    assert len(found.failure.case.ops) == entry.shortest
    assert {v.rule for v in found.failure.verdicts} & entry.rules
    assert found.failure.reproduced
    if entry.shortest > 1:
        candidate, handshake = start(entry.make)
        every = explore(candidate, handshake, depth=entry.shortest - 1, merge=False)
        assert every.failure is None
        assert every.completed == entry.shortest - 1


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
    result = _explore(
        reference, 4, time_limit=60.0, clock=lambda: float(next(ticks)), scope=ONE_WORLD
    )
    assert result.failure is None
    assert result.stopped == "the time limit of 60 s ran out at depth 2"
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
    result = _explore(C.WearsOut, 3, scope=ONE_WORLD)
    assert result.failure is not None
    assert result.flaky == (
        "the same 1 operation passed before and failed on replay; the candidate is not "
        "deterministic, so no search can promise a shortest case"
    )
    assert result.failure.reproduced
    assert result.failure.case.ops == (RegisterMirror(mirror=0),)
    assert result.levels[-1].depth == 2


def test_a_candidate_that_stops_beginning_cases_mid_search_is_a_setup_crash() -> None:
    result = _explore(C.BreaksDown, 3, scope=ONE_WORLD)
    assert result.failure is not None
    assert result.flaky is not None
    assert result.flaky.startswith("begin() failed after 40 cases that began;")
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
    """Under strict, the reference's documented FLT-6 defect takes one step (a blocking
    fault), and without faults its REL-3 defect takes two."""
    result = _explore(reference, 3, profile=Profile.STRICT)
    assert result.failure is not None
    assert [op.name for op in result.failure.case.ops] == ["fault"]
    assert {v.rule for v in result.failure.verdicts} == {"FLT-6"}
    result = _explore(C.NoFault, 3, profile=Profile.STRICT)
    assert result.failure is not None
    assert [op.name for op in result.failure.case.ops] == ["snapshot", "release"]
    assert {v.rule for v in result.failure.verdicts} == {"REL-3"}


def test_a_candidate_without_release_is_never_released_and_its_rules_are_skipped() -> None:
    """Capabilities gate the scope as they gate the generators."""
    result = _explore(C.Minimal, 3, scope=ONE_WORLD)
    assert result.conforms
    assert result.unreached == ()
    statuses = {row.rule.id: row.status for row in rule_rows(result)}
    assert statuses["REL-1"] == statuses["INV-9"] == "skipped"
    assert result.tally.counts.get("REL-1") is None


@pytest.mark.parametrize(
    ("core", "rules"),
    [
        pytest.param(core, rules, id=core.__name__)
        for core, rules in [*HIDDEN_STATE, (C.StaleBusyFlag, frozenset({"INV-2", "INV-6"}))]
    ],
)
def test_a_candidates_hidden_state_keeps_apart_what_the_model_merges(
    core: type[SeedCore], rules: frozenset[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each core keeps what the model does not: the merged search finds the three steps that
    continuing every sequence finds, and merging on the model alone (as the search did before
    it keyed states on the candidate's too) finds nothing in three."""
    candidate, handshake = start(lambda: core(name="hidden"))
    every = explore(candidate, handshake, depth=3, merge=False, scope=SMALL)
    merged = explore(candidate, handshake, depth=3, scope=SMALL)
    assert every.failure is not None
    assert merged.failure is not None
    assert merged.failure.case == every.failure.case
    assert len(merged.failure.case.ops) == 3
    assert {v.rule for v in merged.failure.verdicts} == rules
    assert merged.transitions < every.transitions
    monkeypatch.setattr(CoreSpace, "own_state", lambda space, executor: None)
    assert explore(candidate, handshake, depth=3, scope=SMALL).failure is None


def test_each_world_is_a_root_and_a_bug_on_a_migrating_page_takes_one_snapshot() -> None:
    """The second world has a page under migration, which nothing in the first world becomes:
    one snapshot from the second world's root shows the blind core that encodes such a page as
    an error, and no sequence of three from the first world's does."""
    found = _explore(MigrationAsError, 3).failure
    assert found is not None
    assert [op.name for op in found.case.ops] == ["snapshot"]
    assert found.case.world == SCOPE.worlds[1]
    assert {v.rule for v in found.verdicts} == {"RNG-1"}
    first = replace(SCOPE, worlds=SCOPE.worlds[:1], mirrors=1, ranges=1)
    candidate, handshake = start(MigrationAsError)
    assert explore(candidate, handshake, depth=3, scope=first).failure is None


class CountsCases(C.Wrapped):
    """The reference, counting the cases it begins: its own state is never the same twice."""

    name = "counts-cases"
    cases = 0

    def begin(self, cpu: CpuView) -> None:
        self.cases += 1
        super().begin(cpu)


def test_a_candidate_that_keeps_something_from_case_to_case_is_merged_on_the_model() -> None:
    """Its own state differs on the first replay, so the search merges on the model alone
    from there on, says so, and still conforms."""
    result = _explore(CountsCases, 2)
    assert result.conforms
    assert result.merged_on_model is not None
    assert "was another on replay" in result.merged_on_model
    assert _explore(reference, 2).merged_on_model is None


def test_the_scope_describes_itself() -> None:
    """The line the command prints: counts in words, the modes, the replies by name."""
    assert SCOPE.describe() == (
        "2 worlds, 2 mirrors, 2 snapshots, 4 pages, 4 spans (and 1 across vmas), both modes, "
        "replies in {0, -EAGAIN, -ENOMEM}"
    )
    assert "4 spans, both modes" in replace(SCOPE, crossing=()).describe()
    assert "non-blockable only" in replace(SCOPE, blockable=(False,)).describe()
    assert ", blockable only" in replace(SCOPE, mirrors=1, blockable=(True,)).describe()
    one = replace(SCOPE, worlds=SCOPE.worlds[:1], mirrors=1, ranges=1)
    assert one.describe().startswith("1 world, 1 mirror, 1 snapshot,")


def test_a_candidate_over_the_wire_is_merged_on_the_model_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its state is in another process, out of the walk's sight: the search over the wire
    visits the states the reference in process does when its own state is left out."""
    candidate, handshake = start(exec_factory([sys.executable, "-m", "conformance", "serve"]))
    try:
        over_wire = explore(candidate, handshake, depth=1, scope=SMALL)
    finally:
        candidate.close()
    in_process = _explore(reference, 1, scope=SMALL)
    monkeypatch.setattr(CoreSpace, "own_state", lambda space, executor: None)
    model_alone = _explore(reference, 1, scope=SMALL)
    assert over_wire.failure is None
    assert over_wire.states == model_alone.states < in_process.states
