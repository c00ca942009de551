"""The driver side's engine: the reference driver conforms, broken drivers get verdicts, cases
replay and shrink."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conformance import Budget, CaseFormatError, World
from conformance._generation import ENCODINGS, VMAS
from conformance._side import Failure
from conformance.core._ops import VmaSpec
from conformance.driver._adapter import DriverCandidate
from conformance.driver._catalogue import (
    BaseDriver,
    CommitIgnoresRangeDone,
    SleepsWhenNotBlockable,
)
from conformance.driver._executor import RUN_LIMIT, DriverExecutor, build_mm
from conformance.driver._ops import (
    CpuSetEntry,
    DriverCase,
    DriverOp,
    Exit,
    NotifierEnd,
    NotifierStart,
    RunFault,
    StartFault,
    StepFault,
)
from conformance.driver._reference import (
    ReferenceDriverCandidate,
    reference_driver,
    reference_driver_rwsem,
)
from conformance.driver._side import (
    DRIVER,
    DriverFailure,
    minimise_driver,
    replay_driver,
    replay_driver_failure,
    run_driver,
    start_driver,
)
from conformance.oracle import Status
from hmm_ref import PTE_NONE, DeviceEntry, FaultStep, Pte

from . import driver_candidates as B

SEED = 7
#: Smaller than `fast`, and every DRV rule still comes up at this seed.
SMALL = Budget(name="small", examples=60, steps=20)
P0, P1, P2 = 0x10000, 0x11000, 0x12000
#: Page 0 maps pfn 0x100 writable, page 1 pfn 0x101 read-only.
WORLD = World(vmas=VMAS, ptes=((P0, Pte.present(0x100, write=True)), (P1, Pte.present(0x101))))
#: A fault that maps pages 0 and 1, then a blockable CPU unmap of page 0, then a reap.
MAPPED: tuple[DriverOp, ...] = (
    StartFault(fault=0, start=P0, end=P2),
    RunFault(fault=0),
)
UNMAP: tuple[DriverOp, ...] = (
    NotifierStart(start=P0, end=P1, blockable=True),
    CpuSetEntry(addr=P0, pte=PTE_NONE),
    NotifierEnd(start=P0, end=P1),
)


def _case(*ops: DriverOp) -> DriverCase:
    return DriverCase(world=WORLD, encoding=ENCODINGS[0], ops=ops)


def _replay(factory: Callable[[], DriverCandidate], *ops: DriverOp) -> DriverFailure:
    candidate, handshake = start_driver(factory)
    outcome = replay_driver(candidate, handshake, _case(*ops))
    assert isinstance(outcome, Failure), "the case was expected to fail"
    return outcome


@pytest.mark.parametrize("factory", [reference_driver, reference_driver_rwsem, BaseDriver])
def test_the_reference_drivers_conform_and_exercise_every_DRV_rule(
    factory: Callable[[], DriverCandidate],
) -> None:
    """Both lock kinds of hmm_ref's driver, and the catalogue's base, pass every DRV rule."""
    candidate, handshake = start_driver(factory)
    result = run_driver(candidate, handshake, budget=SMALL, seed_value=SEED)
    assert result.failure is None
    assert result.unreached == ()
    assert result.conforms
    assert result.graded == 0
    assert {rule for rule, counts in result.tally.counts.items() if counts[Status.PASS]} == {
        f"DRV-{n}" for n in range(1, 8)
    }


def test_a_run_too_small_to_reach_every_rule_is_inconclusive() -> None:
    """One case of one step cannot exercise all seven rules: not "conforms"."""
    candidate, handshake = start_driver(reference_driver)
    result = run_driver(
        candidate,
        handshake,
        budget=Budget(name="tiny", examples=1, steps=1),
        seed_value=1,
        aim=False,
    )
    assert result.failure is None
    assert result.unreached
    assert not result.conforms


def test_replay_runs_a_case_step_by_step_and_every_step_holds() -> None:
    """The reference maps, is told of the unmap, and a reap finds nothing left to refuse."""
    candidate, handshake = start_driver(reference_driver)
    reap = NotifierStart(start=P0, end=P2, blockable=False)
    outcome = replay_driver(candidate, handshake, _case(*MAPPED, *UNMAP, reap))
    assert not isinstance(outcome, Failure)
    assert [step.failed for step in outcome] == [False] * 6
    run = outcome[1].observation
    assert [record.step for record in run.fault_steps] == list(FaultStep)
    assert run.table == (
        (P0, DeviceEntry(pfn=0x100, write=True)),
        (P1, DeviceEntry(pfn=0x101, write=False)),
    )
    assert outcome[2].observation.callbacks[0].after == ((P1, DeviceEntry(pfn=0x101, write=False)),)
    assert outcome[5].observation.result == 0


def test_replay_refuses_a_case_that_breaks_the_callers_side_or_would_wait() -> None:
    """An end with no start, or a blockable start while a fault holds the lock, is refused."""
    candidate, handshake = start_driver(reference_driver)
    with pytest.raises(CaseFormatError, match="step 1 \\(invalidate_end"):
        replay_driver(candidate, handshake, _case(NotifierEnd(start=P0, end=P1)))
    holding = (StartFault(fault=0, start=P0, end=P1), StepFault(fault=0), StepFault(fault=0))
    with pytest.raises(CaseFormatError, match=r"step 4 .* cannot be taken now: the blockable"):
        replay_driver(
            candidate, handshake, _case(*holding, NotifierStart(start=P0, end=P1, blockable=True))
        )
    with pytest.raises(CaseFormatError, match=r"step 6 .*: fault f1's next step would wait"):
        replay_driver(
            candidate,
            handshake,
            _case(
                *holding,
                StartFault(fault=1, start=P0, end=P1),
                StepFault(fault=1),
                StepFault(fault=1),
            ),
        )


@pytest.mark.parametrize(
    ("op", "reason"),
    [
        (StepFault(fault=9), "fault f9 was never started"),
        (StartFault(fault=0, start=P0, end=P1), "fault f0 exists already"),
        (RunFault(fault=0), "fault f0 has finished"),
        (CpuSetEntry(addr=P0, pte=PTE_NONE), "only inside an open invalidation window"),
    ],
)
def test_the_model_names_each_caller_protocol_breach(op: DriverOp, reason: str) -> None:
    """Faults are started once, stepped until they finish; the CPU changes only in windows."""
    candidate, handshake = start_driver(reference_driver)
    with pytest.raises(CaseFormatError, match=reason):
        replay_driver(candidate, handshake, _case(*MAPPED, op))


def test_exit_needs_the_release_capability_and_no_open_window() -> None:
    """A driver without release never exits; nor does a process mid-change; after exit the CPU
    changes nothing."""
    candidate, handshake = start_driver(B.NoRelease)
    with pytest.raises(CaseFormatError, match="did not declare the release capability"):
        replay_driver(candidate, handshake, _case(Exit()))
    candidate, handshake = start_driver(reference_driver)
    with pytest.raises(CaseFormatError, match="end every window"):
        replay_driver(candidate, handshake, _case(UNMAP[0], Exit()))
    with pytest.raises(CaseFormatError, match="the process has exited"):
        replay_driver(candidate, handshake, _case(Exit(), UNMAP[0]))


def test_after_exit_the_device_maps_nothing_and_later_faults_fail() -> None:
    """The reference tears down at release; a fault after it ends with -EFAULT, mapping nothing."""
    candidate, handshake = start_driver(reference_driver)
    outcome = replay_driver(
        candidate,
        handshake,
        _case(*MAPPED, Exit(), StartFault(fault=1, start=P0, end=P2), RunFault(fault=1)),
    )
    assert not isinstance(outcome, Failure)
    exit_step = outcome[2].observation
    assert exit_step.table == ()
    assert [call.kind for call in exit_step.callbacks] == ["release"]
    assert outcome[4].observation.fault is not None
    assert outcome[4].observation.fault.result == -14


def test_a_snapshot_inside_a_window_freezes_its_pages_until_the_window_ends() -> None:
    """The seed's window hole: the CPU may not change a page a fault read inside the window."""
    candidate, handshake = start_driver(reference_driver)
    inside = (UNMAP[0], StartFault(fault=0, start=P0, end=P1), StepFault(fault=0))
    with pytest.raises(CaseFormatError, match="not one a fault snapshotted"):
        replay_driver(candidate, handshake, _case(*inside, UNMAP[1]))
    outcome = replay_driver(candidate, handshake, _case(*inside, UNMAP[2], UNMAP[0], UNMAP[1]))
    assert not isinstance(outcome, Failure)


def test_run_fault_stops_at_the_run_limit() -> None:
    """A fault that never finishes takes RUN_LIMIT steps in one RunFault and stays in progress."""
    candidate, handshake = start_driver(B.NeverFinishes)
    outcome = replay_driver(candidate, handshake, _case(*MAPPED, RunFault(fault=0)))
    assert not isinstance(outcome, Failure)
    assert len(outcome[1].observation.fault_steps) == RUN_LIMIT
    assert outcome[1].observation.fault is not None
    assert outcome[1].observation.fault.next_step is FaultStep.SNAPSHOT


@pytest.mark.parametrize(
    ("factory", "ops", "status", "detail"),
    [
        (B.CrashesInStep, MAPPED, Status.CRASH, "run_fault raised"),
        (B.TableNotAMapping, MAPPED, Status.PROTOCOL, "device_page_table() answered [1, 2]"),
        (B.TableRaises, MAPPED, Status.CRASH, "device_page_table() raised"),
        (B.ReplyNotAnInt, (*MAPPED, UNMAP[0]), Status.PROTOCOL, "answered '0', not an int"),
        (B.StepNotAFaultStep, MAPPED, Status.PROTOCOL, "answered 'snapshot', not a FaultStep"),
        (B.ViewInconsistent, MAPPED[:1], Status.PROTOCOL, "a FaultView with a next step while"),
        (B.WouldBlockNotABool, MAPPED, Status.PROTOCOL, "fault_would_block answered 'no'"),
        (B.WouldBlockRaises, UNMAP[:1], Status.CRASH, "asking whether invalidate_start would"),
        (B.RangeDoneTwice, MAPPED, Status.CRASH, "hmm_vma_range_done: called twice"),
        (
            B.SaysItNeverBlocks,
            (MAPPED[0], StepFault(fault=0), StepFault(fault=0), UNMAP[0]),
            Status.HANG,
            "after its would_block said it would not",
        ),
    ],
)
def test_a_driver_that_breaks_the_adapter_protocol_gets_a_harness_verdict(
    factory: Callable[[], DriverCandidate],
    ops: tuple[DriverOp, ...],
    status: Status,
    detail: str,
) -> None:
    """Crashes, malformed answers and false would_block answers end the case with a verdict."""
    failure = _replay(factory, *ops)
    [verdict] = failure.verdicts
    assert verdict.rule is None
    assert verdict.status is status
    assert detail in verdict.detail


def test_a_driver_that_crashes_in_begin_fails_before_any_step() -> None:
    """begin() raising is a setup crash, in a replay and in a run."""
    failure = _replay(B.CrashesInBegin, *MAPPED)
    assert failure.steps == ()
    assert failure.setup_crash is not None
    assert "begin() raised" in failure.setup_crash.detail
    candidate, handshake = start_driver(B.CrashesInBegin)
    result = run_driver(candidate, handshake, budget=SMALL, seed_value=SEED)
    assert result.failure is not None
    assert result.failure.setup_crash is not None
    assert result.failure.case.ops == ()


def test_a_failure_that_does_not_replay_is_said_to_be_not_reproduced() -> None:
    """Replaying a passing case as a failure marks it not reproduced."""
    candidate, handshake = start_driver(reference_driver)
    failure = replay_driver_failure(candidate, handshake, _case(*MAPPED))
    assert not failure.reproduced
    assert len(failure.steps) == 2


def test_a_nondeterministic_driver_is_reported_flaky() -> None:
    """A driver that fails once and then never again is NOT CONFORMING, as flaky."""
    B.FLAKY.failed = False
    candidate, handshake = start_driver(B.Flaky)
    result = run_driver(candidate, handshake, budget=SMALL, seed_value=SEED)
    assert result.flaky is not None
    assert result.flaky.startswith(f"FLAKY: the driver failed case {result.first_failure} once")
    failure = result.failure
    assert failure is not None
    assert not failure.reproduced
    assert failure.verdicts
    assert len(failure.steps) == len(failure.case.ops)
    assert not result.conforms


def test_minimise_deletes_and_folds_until_the_shortest_case_is_left() -> None:
    """Padding around a stale commit goes; a CPU change the case needs folds into the world."""
    remap = (
        NotifierStart(start=P2, end=0x13000, blockable=True),
        CpuSetEntry(addr=P2, pte=Pte.present(0x222, write=True)),
        NotifierEnd(start=P2, end=0x13000),
    )
    ops = (
        *remap,
        *MAPPED,
        StartFault(fault=1, start=P2, end=0x13000),
        StepFault(fault=1),
        NotifierStart(start=P2, end=0x13000, blockable=False),
        RunFault(fault=1),
    )
    candidate, handshake = start_driver(CommitIgnoresRangeDone)
    failure = replay_driver_failure(candidate, handshake, _case(*ops))
    assert failure.reproduced
    assert [v.rule for v in failure.verdicts] == ["DRV-4"]
    shortest = minimise_driver(candidate, handshake, failure)
    assert [op.name for op in shortest.case.ops] == [
        "start_fault",
        "step_fault",
        "invalidate_start",
        "run_fault",
    ]
    assert (P2, Pte.present(0x222, write=True)) in shortest.case.world.ptes


def _shrunk(make: Callable[[], DriverCandidate], rule: str, *ops: DriverOp) -> DriverCase:
    """The case ``ops``, which fails ``rule`` against the driver ``make`` makes, minimised."""
    candidate, handshake = start_driver(make)
    failure = replay_driver_failure(candidate, handshake, _case(*ops))
    assert [v.rule for v in failure.verdicts] == [rule]
    return minimise_driver(candidate, handshake, failure).case


def test_minimise_gives_a_remaining_fault_the_step_that_replaces_a_deleted_run() -> None:
    """A driver that swallows -EAGAIN fails DRV-2 when the reaper comes while a fault holds D
    over a mapped page. Shrunk from a first fault that maps the page and a second that holds D,
    the shortest case is the second fault alone, given one more step (its check commits)."""
    ops = (
        *MAPPED,
        StartFault(fault=2, start=P0, end=P2),
        StepFault(fault=2),
        StepFault(fault=2),
        NotifierStart(start=P0, end=P2, blockable=False),
    )
    assert _shrunk(B.catalogue_driver("blind-swallow-eagain"), "DRV-2", *ops).ops == (
        StartFault(fault=2, start=P0, end=P2),
        StepFault(fault=2),
        StepFault(fault=2),
        StepFault(fault=2),
        NotifierStart(start=P0, end=P2, blockable=False),
    )


def test_minimise_moves_a_window_after_the_snapshot_and_then_drops_its_end() -> None:
    """A snapshot taken inside a blockable window is stale when the fault commits it. Moving
    the window's start after the snapshot keeps the case failing at the same length (kept: a
    fault's operations order before the events around them), and then its end can go."""
    ops = (
        NotifierStart(start=P0, end=P1, blockable=True),
        StartFault(fault=1, start=P0, end=P2),
        StepFault(fault=1),
        NotifierEnd(start=P0, end=P1),
        RunFault(fault=1),
    )
    shortest = _shrunk(CommitIgnoresRangeDone, "DRV-4", *ops)
    assert [op.name for op in shortest.ops] == [
        "start_fault",
        "step_fault",
        "invalidate_start",
        "run_fault",
    ]


def test_minimise_tries_a_swap_that_only_a_merge_after_it_makes_shorter() -> None:
    """The reaper comes between a fault's lock and check steps; swapped before the lock step,
    the lock and check steps that then follow one another become one run of the fault."""
    ops = (
        StartFault(fault=0, start=P0, end=P2),
        StepFault(fault=0),
        StepFault(fault=0),
        NotifierStart(start=P0, end=P1, blockable=False),
        StepFault(fault=0),
    )
    assert _shrunk(B.catalogue_driver("blind-inverted-range-done"), "DRV-4", *ops).ops == (
        StartFault(fault=0, start=P0, end=P2),
        StepFault(fault=0),
        NotifierStart(start=P0, end=P1, blockable=False),
        RunFault(fault=0),
    )


def test_the_env_the_harness_hands_over_reads_back_what_it_holds() -> None:
    """mm, monitor, encoding and the registered mirror, as the driver sees them."""
    candidate = ReferenceDriverCandidate()
    handshake = candidate.handshake()
    executor = DriverExecutor(candidate, handshake, WORLD, ENCODINGS[2])
    assert executor.begin() is None
    env = executor.env
    assert env.mm is executor.mm
    assert env.monitor is executor.monitor
    assert env.encoding == ENCODINGS[2]
    assert env.mirror.registered
    assert "registered=True" in repr(env)
    assert "dmirror-mutex" in repr(candidate)
    candidate.close()
    assert "None" in repr(candidate)


def test_a_world_the_mm_cannot_hold_is_a_case_format_error() -> None:
    """An entry outside every vma cannot be set: the case is malformed."""
    bad = World(vmas=(VmaSpec(start=P0, end=P1),), ptes=((P2, Pte.present(1)),))
    with pytest.raises(CaseFormatError, match=r"case\.world: set_pte"):
        build_mm(bad)


def test_a_non_blockable_callback_that_blocks_on_a_held_lock_fails_DRV_1() -> None:
    """mutex_lock on the lock a fault holds: a sleep in the section and a wait that cannot end,
    reported as DRV-1 with the blocking, not as a harness hang."""
    holding = (StartFault(fault=1, start=P1, end=P2), StepFault(fault=1), StepFault(fault=1))
    reap = NotifierStart(start=P0, end=P2, blockable=False)
    failure = _replay(SleepsWhenNotBlockable, *MAPPED, *holding, reap)
    [verdict] = failure.verdicts
    assert verdict.rule == "DRV-1"
    assert "mutex_lock(sleeps-when-not-blockable.lock)" in verdict.detail
    assert (
        "; it then blocked: mutex_lock(sleeps-when-not-blockable.lock): held by" in verdict.detail
    )
    [call] = failure.steps[-1].observation.callbacks
    assert call.reply is None
    assert call.raised is not None
    assert call.raised.startswith("WouldBlockError")


def test_a_driver_whose_would_block_raises_is_a_crash_in_a_run() -> None:
    """The generator's precondition lets the step run, and the step reports the crash."""
    candidate, handshake = start_driver(B.WouldBlockRaises)
    result = run_driver(candidate, handshake, budget=SMALL, seed_value=SEED)
    assert result.failure is not None
    [verdict] = result.failure.verdicts
    assert verdict.status is Status.CRASH
    assert "OSError: lock state unknown" in verdict.detail
    assert result.failure.case.ops[-1].name in ("invalidate_start", "step_fault", "run_fault")


def test_the_edits_of_minimise_include_folding_an_unmap_into_the_world() -> None:
    """A CPU change to "none" folds into a world without that entry."""
    case = _case(*UNMAP)
    folded = [edit for edit in DRIVER.edits(case) if edit.world != WORLD]
    # The case's own fold first; the folds of its swapped variants come after.
    assert folded[0].ops == (UNMAP[0], UNMAP[2])
    assert {edit.world.ptes for edit in folded} == {((P1, Pte.present(0x101)),)}
