"""The driver side's exhaustive engine: breadth first, merged by model state, shortest
counterexamples, through the driver executor and oracle."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from conformance import cli
from conformance._side import Failure, WouldWaitError
from conformance.driver import explore_driver
from conformance.driver._adapter import DriverCandidate, DriverEnv
from conformance.driver._catalogue import BaseDriver, CommitIgnoresRangeDone
from conformance.driver._executor import DriverExecutor, DriverStepOutcome
from conformance.driver._explore import (
    DRIVER_SCOPE,
    DRIVER_WORLDS,
    DriverExplorer,
    DriverExploreResult,
    DriverScope,
    driver_state_key,
    operations,
)
from conformance.driver._ops import (
    CpuSetEntry,
    DriverOp,
    Exit,
    NotifierEnd,
    NotifierStart,
    RunFault,
    StartFault,
    StepFault,
)
from conformance.driver._reference import reference_driver, reference_driver_rwsem
from conformance.driver._side import DRIVER, start_driver
from conformance.oracle import Status
from hmm_ref import PTE_NONE, DeviceEntry, FaultStep, HmmPfnValue, HmmRange, HmmUpdate

from . import driver_candidates as B

FIRST = DRIVER_WORLDS[0]
#: The first world alone, with one fault: a scope small enough for depth 4 in CI.
ONE_WORLD = DriverScope(worlds=(FIRST,), faults=1)
P0, P1, P2 = FIRST.spans[2][0], FIRST.spans[0][1], FIRST.spans[2][1]


def _explore(
    factory: Callable[[], DriverCandidate], depth: int, **how: object
) -> DriverExploreResult:
    candidate, handshake = start_driver(factory)
    return explore_driver(candidate, handshake, depth=depth, **how)  # type: ignore[arg-type]


@pytest.mark.parametrize("factory", [reference_driver, reference_driver_rwsem])
def test_the_reference_drivers_hold_for_every_sequence_of_three_and_reach_every_rule(
    factory: Callable[[], DriverCandidate],
) -> None:
    """Depth 3 is complete, fails nothing, and exercises every DRV rule. (Depth 4 takes about
    ten seconds, measured by the benchmarks, not here.)"""
    result = _explore(factory, 3)
    assert result.conforms
    assert result.completed == 3
    assert [level.depth for level in result.levels] == [1, 2, 3]
    assert result.unreached == ()
    assert all(result.tally.counts[f"DRV-{n}"][Status.PASS] for n in range(1, 8))


def _executor(factory: Callable[[], DriverCandidate] = reference_driver) -> DriverExecutor:
    candidate, handshake = start_driver(factory)
    executor = DriverExecutor(candidate, handshake, FIRST.world, FIRST.encoding)
    assert executor.begin() is None
    return executor


def test_the_first_level_offers_faults_and_starts_in_both_modes_and_the_exit() -> None:
    """From the start: a fault over each span, a start of each span in both modes, the exit;
    no end (no window is open) and no CPU change (none may happen outside a window)."""
    ops = list(operations(_executor().model, DRIVER_SCOPE))
    spans = FIRST.spans
    assert ops == [
        *(StartFault(fault=0, start=start, end=end) for start, end in spans),
        *(
            NotifierStart(start=start, end=end, blockable=blockable)
            for start, end in spans
            for blockable in (False, True)
        ),
        Exit(),
    ]


def test_the_scope_steps_faults_changes_pages_in_windows_and_ends_them() -> None:
    executor = _executor()
    for op in (
        StartFault(fault=0, start=P0, end=P1),
        NotifierStart(start=P0, end=P2, blockable=True),
    ):
        executor.step(op)
    ops = list(operations(executor.model, DRIVER_SCOPE))
    assert ops[:2] == [RunFault(fault=0), StepFault(fault=0)]
    assert StartFault(fault=1, start=P0, end=P1) in ops
    assert NotifierEnd(start=P0, end=P2) in ops
    assert CpuSetEntry(addr=P0, pte=PTE_NONE) in ops
    assert Exit() not in ops  # the process exits only with no window open
    assert not any(
        isinstance(op, StartFault) for op in operations(executor.model, DriverScope(faults=1))
    )


def test_states_that_differ_only_in_history_share_a_key() -> None:
    """Two starts and ends of other spans leave the same state as none."""
    quiet, busy = _executor(), _executor()
    for op in (NotifierStart(start=P0, end=P1, blockable=True), NotifierEnd(start=P0, end=P1)):
        busy.step(op)
    assert driver_state_key(quiet.model) == driver_state_key(busy.model)
    busy.step(StartFault(fault=0, start=P0, end=P1))
    assert driver_state_key(quiet.model) != driver_state_key(busy.model)


def test_a_step_that_would_wait_for_a_holder_is_not_a_transition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a fault holding D, a blockable start waits: it is skipped, not a transition, not
    a failure, and the search goes on to conform."""
    waited: list[object] = []
    step = DriverExecutor.step

    def counting(self: DriverExecutor, op: DriverOp) -> DriverStepOutcome:
        try:
            return step(self, op)
        except WouldWaitError:
            waited.append(op)
            raise

    monkeypatch.setattr(DriverExecutor, "step", counting)
    result = _explore(reference_driver, 4, scope=ONE_WORLD)
    assert result.conforms
    assert NotifierStart(start=P0, end=P1, blockable=True) in waited


@pytest.mark.parametrize("factory", [CommitIgnoresRangeDone, B.SaysItNeverBlocks])
def test_merged_and_every_sequence_find_the_same_shortest_length(
    factory: Callable[[], DriverCandidate],
) -> None:
    merged = _explore(factory, 4, scope=ONE_WORLD)
    every = _explore(factory, 4, scope=ONE_WORLD, merge=False)
    assert merged.failure is not None
    assert every.failure is not None
    assert len(merged.failure.case.ops) == len(every.failure.case.ops)
    assert merged.failure.verdicts[0].rule == every.failure.verdicts[0].rule


class LeaksOnExitAfterACallback(BaseDriver):
    """Keeps what the model cannot see: once it has had a callback, its release keeps D."""

    synced: bool = False

    def begin(self, env: DriverEnv) -> None:
        super().begin(env)
        self.synced = False

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        self.synced = True
        return super().sync_cpu_device_pagetables(update)

    def release(self) -> None:
        super().release()
        if self.synced:
            self.d.lock("release")


def test_a_drivers_hidden_state_keeps_apart_what_the_model_merges() -> None:
    """A start and its end leave the model where it began, but not the driver, which has had a
    callback: the merged search continues both, as every sequence does, and finds start, end,
    exit (DRV-7 at the release). Merged on the model alone, it found nothing in three."""
    for merge in (True, False):
        found = _explore(LeaksOnExitAfterACallback, 3, merge=merge).failure
        assert found is not None
        assert [type(op) for op in found.case.ops] == [NotifierStart, NotifierEnd, Exit]
        assert {v.rule for v in found.verdicts} == {"DRV-7"}


def test_a_crash_at_begin_is_a_failure_with_no_steps() -> None:
    result = _explore(B.CrashesInBegin, 2)
    assert result.failure is not None
    assert result.failure.setup_crash is not None
    assert result.failure.case.ops == ()
    assert result.levels == []


class WaitsSecondTime(BaseDriver):
    """The second fault's snapshot, asked while D is held, would wait from the second time
    any case asks on (not deterministic)."""

    asked = 0

    def fault_would_block(self, fault: int) -> bool:
        if fault == 1 and self.faults[fault].next is FaultStep.SNAPSHOT and self.d.held:
            WaitsSecondTime.asked += 1
            return WaitsSecondTime.asked > 1
        return super().fault_would_block(fault)


def test_a_path_step_that_waits_on_replay_is_reported_not_deterministic() -> None:
    """The second fault's snapshot was taken once, then waits when its path is replayed."""
    WaitsSecondTime.asked = 0
    scope = DriverScope(worlds=(replace(FIRST, spans=((P0, P1),)),))
    result = _explore(WaitsSecondTime, 6, scope=scope)
    assert result.flaky is not None
    assert "would wait on replay" in result.flaky
    assert not result.conforms


def test_explore_side_driver_prints_levels_and_saves_a_replayable_counterexample(
    tmp_path: Path,
) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["explore", "--side", "driver", "--depth", "3", "--faults", "1"]
    assert cli.main(argv, stdout=out, stderr=err) == 0, err.getvalue()
    text = out.getvalue()
    assert "every sequence of up to 3 operations over 4 worlds of 2 or 3 pages and 3 spans" in text
    assert "1 faults" in text
    assert "conforms: no sequence of up to 3 operations in the scope breaks a rule" in text
    out = io.StringIO()
    adapter = "conformance.driver._catalogue:ChecksBeforeLocking"
    bad = ["explore", "--side", "driver", "--adapter", adapter, "--depth", "3"]
    assert cli.main([*bad, "--replay-dir", str(tmp_path)], stdout=out, stderr=err) == 1
    assert "a shortest counterexample in the scope has 2 operations" in out.getvalue()
    [saved] = tmp_path.iterdir()
    assert json.loads(saved.read_text())["side"] == "driver"
    again = io.StringIO()
    replay = ["replay", str(saved), "--adapter", adapter]
    assert cli.main(replay, stdout=again, stderr=err) == 1
    assert "FAIL DRV-4" in again.getvalue()


def test_the_explorer_describes_its_scope_with_the_bounds_given() -> None:
    explorer = DriverExplorer(DRIVER)
    assert [option.name for option in explorer.options] == ["faults"]
    assert explorer.describe({}) == DRIVER_SCOPE.describe()
    assert explorer.describe({"faults": 3}).endswith("3 faults, 2 CPU changes, the exit")


def test_a_failure_found_is_confirmed_with_every_step() -> None:
    found = _explore(CommitIgnoresRangeDone, 4).failure
    assert isinstance(found, Failure)
    assert found.reproduced
    assert len(found.steps) == len(found.case.ops) == 4
    assert found.steps[-1].failed


def test_every_world_of_the_scope_is_a_root_and_its_bugs_are_found_there() -> None:
    """Each world starts the search; a bug only one world shows is found there, at its
    shortest, and its case carries that world and encoding."""
    result = _explore(reference_driver, 1)
    assert result.roots == len(DRIVER_WORLDS)
    assert result.states == len(DRIVER_WORLDS) + result.levels[0].states
    found = _explore(ReadsThePoisonedEntry, 2).failure
    assert found is not None
    assert len(found.case.ops) == 2
    assert found.case.world == DRIVER_WORLDS[2].world
    assert {v.rule for v in found.verdicts} == {"DRV-5"}


class ReadsThePoisonedEntry(BaseDriver):
    """Commits an ERROR entry as a page: only a world with a poisoned page shows it."""

    def prepare(self, range_: HmmRange) -> dict[int, DeviceEntry | None]:
        prepared = super().prepare(range_)
        error = range_.encoding.value(HmmPfnValue.ERROR)
        for index, entry in enumerate(range_.pfns):
            if entry == error:
                prepared[range_.page_address(index)] = DeviceEntry(pfn=0x666, write=False)
        return prepared
