"""Driver-side reports: the shrunk steps read as the harness saw them, in every format."""

from __future__ import annotations

from conformance import BUDGETS, World
from conformance._driver_catalogue import (
    CommitIgnoresRangeDone,
    ReleaseKeepsEntries,
    SleepsWhenNotBlockable,
)
from conformance._driver_engine import (
    DriverFailure,
    replay_driver,
    replay_driver_failure,
    run_driver,
    start_driver,
)
from conformance._driver_ops import (
    DriverCase,
    DriverOperation,
    Exit,
    NotifierStart,
    RunFault,
    StartFault,
    StepFault,
)
from conformance._driver_reference import reference_driver
from conformance._machine import ENCODINGS, VMAS
from conformance._report import describe_failure, headline, replay_document
from hmm_ref import Pte

from . import driver_candidates as B

P0, P1, P2 = 0x10000, 0x11000, 0x12000
WORLD = World(vmas=VMAS, ptes=((P0, Pte.present(0x100, write=True)), (P1, Pte.present(0x101))))
MAPPED = (StartFault(fault=0, start=P0, end=P2), RunFault(fault=0))


def _failure(factory: object, *ops: DriverOperation) -> DriverFailure:
    assert callable(factory)
    candidate, handshake = start_driver(factory)
    case = DriverCase(world=WORLD, encoding=ENCODINGS[0], ops=ops)
    outcome = replay_driver(candidate, handshake, case)
    assert isinstance(outcome, DriverFailure)
    return outcome


def test_a_stale_commit_reads_step_by_step_with_the_hmm_calls() -> None:
    """Each step, its result, the fault's HMM calls, the failing verdict, the table after."""
    text = describe_failure(
        _failure(
            CommitIgnoresRangeDone,
            StartFault(fault=0, start=P0, end=P1),
            StepFault(fault=0),
            NotifierStart(start=P0, end=P1, blockable=False),
            RunFault(fault=0),
        )
    )
    assert text.splitlines() == [
        "world: 4 vmas, 2 CPU entries set; the driver's encoding: flags 0x1, 0x2, 0x4, "
        "pfn_shift 12 (see the replay file)",
        "  1. device fault f0 over [0x10000, 0x11000) starts",
        "  2. fault f0 takes a step -> snapshot",
        "       snapshot: get_pfns([0x10000, 0x11000)) -> 0",
        "  3. OOM reaper: non-blockable invalidate_start [0x10000, 0x11000) -> 0",
        "       driver.sync(blockable=False) -> 0; device entries in the span before: none, "
        "after: none",
        "  4. fault f0 runs -> lock, check, unlock; done: 0",
        "       check: range_done([0x10000, 0x11000)) -> False",
        "       FAIL DRV-4: f0's check step committed 0x10000, but range_done of its snapshot "
        "returned False (stale)",
        "device page table after the last step: 0x10000 -> pfn 0x100 rw",
    ]


def test_a_release_and_a_sleep_are_shown_where_they_happened() -> None:
    """The release callback is a line of its own; a sleep names the call and its caller."""
    released = describe_failure(_failure(ReleaseKeepsEntries, *MAPPED, Exit()))
    assert "       driver.release()" in released
    assert "FAIL DRV-5: the device maps 0x10000 to pfn 0x100, the CPU to none" in released
    slept = describe_failure(
        _failure(SleepsWhenNotBlockable, *MAPPED, NotifierStart(start=P0, end=P1, blockable=False))
    )
    assert "       slept: mutex_lock(sleeps-when-not-blockable.lock) from " in slept
    assert "SleepsWhenNotBlockable.lock_without_sleeping (_driver_catalogue.py:" in slept


def test_a_setup_crash_and_an_unreproduced_failure_say_so() -> None:
    """begin() crashing is one line; a case that passed on replay says the driver is flaky."""
    candidate, handshake = start_driver(B.CrashesInBegin)
    result = run_driver(candidate, handshake, budget=BUDGETS["fast"], seed_value=1)
    assert result.failure is not None
    text = describe_failure(result.failure)
    assert text.splitlines()[1].startswith("begin() crashed: CRASH: begin() raised")
    assert headline(result) == "NOT CONFORMING: CRASH, shrunk to 0 operations"
    assert replay_document(result)["side"] == "driver"
    candidate, handshake = start_driver(reference_driver)
    empty = DriverCase(world=WORLD, encoding=ENCODINGS[0])
    failure = replay_driver_failure(candidate, handshake, empty)
    assert describe_failure(failure).splitlines()[1:] == [
        "the replay of this case did NOT fail again: the driver is not deterministic"
    ]
