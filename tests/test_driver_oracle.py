"""The driver-side oracle: each check fails what its rule forbids and passes what it allows.

The model is built directly (a world, the driver lock's name, a device page table); each
observation is what a broken driver would show the harness.
"""

from __future__ import annotations

import pytest

from conformance import World
from conformance._generation import VMAS
from conformance.driver._adapter import FaultView
from conformance.driver._model import (
    CallbackRecord,
    DriverModel,
    DriverObservation,
    FaultState,
    FaultStepRecord,
    HmmCall,
    Licence,
    Table,
    fault_step_licence,
    gained,
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
from conformance.driver._oracle import (
    DRIVER_CHECKS,
    OVER_CONSERVATIVE,
    check_driver_step,
    check_DRV_1,
    check_DRV_2,
    check_DRV_3,
    check_DRV_4,
    check_DRV_5,
    check_DRV_6,
)
from conformance.oracle import Status, Verdict
from hmm_ref import (
    PTE_NONE,
    DeviceEntry,
    Errno,
    FaultStep,
    HmmUpdate,
    LockEvent,
    LockOutcome,
    Pte,
    SleepViolation,
)

D = "gpu.lock"
EAGAIN = -Errno.EAGAIN
P0, P1, P2 = 0x10000, 0x11000, 0x12000
RW0 = DeviceEntry(pfn=0x100, write=True)
RO1 = DeviceEntry(pfn=0x101, write=False)


def _model(table: Table = ()) -> DriverModel:
    """Pages 0 and 1 map pfns 0x100 (writable) and 0x101 (read-only); the device maps ``table``."""
    world = World(vmas=VMAS, ptes=((P0, Pte.present(0x100, write=True)), (P1, Pte.present(0x101))))
    model = DriverModel.for_world(world, D, frozenset())
    model.table = table
    return model


def _event(primitive: str, outcome: LockOutcome = LockOutcome.ACQUIRED) -> LockEvent:
    return LockEvent(primitive=primitive, target=D, owner="", outcome=outcome, section=None)


TAKE = _event("mutex_lock")
GIVE = _event("mutex_unlock", LockOutcome.RELEASED)


def _sync(
    blockable: bool, reply: int | None, before: Table = (), after: Table = (), **kw: object
) -> CallbackRecord:
    events = kw.get("events", (TAKE, GIVE))
    assert isinstance(events, tuple)
    return CallbackRecord(
        kind="sync",
        update=HmmUpdate(start=P0, end=P2, blockable=blockable),
        reply=reply,
        before=before,
        after=after,
        events=events,
    )


def _status(verdict: Verdict | None) -> Status | None:
    return None if verdict is None else verdict.status


# -- DRV-1 ---------------------------------------------------------------------------------


def test_DRV_1_a_recorded_sleep_fails_and_names_the_call_and_the_blocking() -> None:
    """A sleeping call in the section fails, with what it took, where, and the block after it."""
    sleep = SleepViolation(primitive="mutex_lock", target=D, section="sync", caller="f (x.py:1)")
    obs = DriverObservation(violations=(sleep, sleep), blocked="mutex_lock(gpu.lock): held")
    verdict = check_DRV_1(_model(), NotifierStart(start=P0, end=P2, blockable=False), obs)
    assert verdict is not None
    assert verdict.status is Status.FAIL
    assert verdict.detail == (
        "mutex_lock(gpu.lock) in sync, called from f (x.py:1) (and 1 more); it then blocked: "
        "mutex_lock(gpu.lock): held"
    )


def test_DRV_1_passes_a_quiet_non_blockable_callback_and_ignores_blockable_ones() -> None:
    """Only a non-blockable callback exercises the rule."""
    op = NotifierStart(start=P0, end=P2, blockable=False)
    quiet = DriverObservation(callbacks=(_sync(False, 0),))
    assert _status(check_DRV_1(_model(), op, quiet)) is Status.PASS
    blockable = DriverObservation(callbacks=(_sync(True, 0),))
    assert check_DRV_1(_model(), op, blockable) is None


# -- DRV-2 and DRV-3 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "drv2", "drv3"),
    [
        (_sync(True, 0, after=((P0, RW0),)), Status.FAIL, Status.PASS),
        (_sync(True, EAGAIN, after=((P0, RW0),)), Status.FAIL, Status.FAIL),
        (_sync(False, EAGAIN, after=((P0, RW0),)), None, Status.PASS),
        (_sync(False, 0, after=((P2, RW0),)), Status.PASS, Status.PASS),
        (_sync(False, -Errno.ENOMEM), None, Status.FAIL),
        (_sync(True, None), None, None),  # it raised: nothing answered
    ],
)
def test_DRV_2_and_DRV_3_judge_each_answer_and_the_table_after_it(
    call: CallbackRecord, drv2: Status | None, drv3: Status | None
) -> None:
    """0 (or blockable) must leave the span empty; blockable must answer 0; else 0 or -EAGAIN."""
    op = NotifierStart(
        start=P0, end=P2, blockable=call.update is not None and call.update.blockable
    )
    obs = DriverObservation(callbacks=(call,))
    assert _status(check_DRV_2(_model(), op, obs)) is drv2
    assert _status(check_DRV_3(_model(), op, obs)) is drv3


def test_DRV_2_names_the_entries_left() -> None:
    """The detail says the mode, the answer and the pages left."""
    entries = tuple((P0 + i * 0x1000, RW0) for i in range(7))
    call = CallbackRecord(
        kind="sync", update=HmmUpdate(start=P0, end=0x16000, blockable=True), reply=0, after=entries
    )
    verdict = check_DRV_2(_model(), Exit(), DriverObservation(callbacks=(call,)))
    assert verdict is not None
    assert verdict.detail == (
        "the blockable [0x10000, 0x16000) callback answered 0 and left device entries at "
        "0x10000, 0x11000, 0x12000, 0x13000 and 2 more"
    )


# -- DRV-4 -----------------------------------------------------------------------------------


def test_DRV_4_a_callback_that_changes_the_table_must_take_the_lock_for_writing() -> None:
    """Without D, or with D only for reading, a callback's clearing fails; with D it passes."""
    op = NotifierStart(start=P0, end=P2, blockable=True)
    model = _model(((P0, RW0),))
    for events in ((), (_event("down_read"), _event("up_read", LockOutcome.RELEASED))):
        obs = DriverObservation(callbacks=(_sync(True, 0, ((P0, RW0),), (), events=events),))
        verdict = check_DRV_4(model, op, obs)
        assert verdict is not None
        assert verdict.status is Status.FAIL
        assert "without taking gpu.lock for writing" in verdict.detail
    busy = (_event("mutex_trylock", LockOutcome.BUSY),)
    refused = DriverObservation(callbacks=(_sync(False, EAGAIN, events=busy),))
    assert check_DRV_4(model, op, refused) is None  # nothing changed: nothing to judge
    cleared = DriverObservation(callbacks=(_sync(True, 0, ((P0, RW0),), ()),))
    assert _status(check_DRV_4(model, op, cleared)) is Status.PASS


def test_DRV_4_only_a_fault_may_add_entries() -> None:
    """A step that is no fault's and adds an entry fails; one that only removes does not."""
    model = _model(((P0, RW0),))
    added = check_DRV_4(model, NotifierEnd(start=P0, end=P2), DriverObservation(table=((P1, RO1),)))
    assert added is not None
    assert (
        added.detail == "invalidate_end added device entries at 0x11000; only a fault's commit may"
    )
    assert check_DRV_4(model, Exit(), DriverObservation(table=())) is None


def _faulting(licence: Licence, held: tuple[tuple[str, str], ...] = ()) -> DriverModel:
    model = _model()
    model.faults[0] = FaultState(
        id=0,
        start=P0,
        end=P2,
        view=FaultView(next_step=FaultStep.CHECK, result=None),
        held=held,  # type: ignore[arg-type]
        licence=licence,
    )
    return model


def _done(result: bool, at: int = 0) -> HmmCall:
    return HmmCall(kind="range_done", range=0, start=P0, end=P2, result=result, at=at)


SNAP = HmmCall(kind="get_pfns", range=1, start=P0, end=P2, result=0, at=0)
COMMIT = ((P0, RW0),)


@pytest.mark.parametrize(
    ("records", "held", "why"),
    [
        ((FaultStepRecord(step=FaultStep.CHECK, table=COMMIT),), (), "no range_done has confirmed"),
        (
            (FaultStepRecord(step=FaultStep.CHECK, calls=(_done(False),), table=COMMIT),),
            ((D, "exclusive"),),
            "range_done of its snapshot returned False (stale)",
        ),
        (
            (FaultStepRecord(step=FaultStep.CHECK, calls=(_done(True),), table=COMMIT),),
            (),
            "range_done returned True but was called without gpu.lock held",
        ),
        (
            (
                FaultStepRecord(step=FaultStep.CHECK, calls=(_done(True),), events=(GIVE,)),
                FaultStepRecord(step=FaultStep.UNLOCK, table=COMMIT),
            ),
            ((D, "exclusive"),),
            "it released gpu.lock after range_done",
        ),
        (
            (
                FaultStepRecord(step=FaultStep.CHECK, calls=(_done(True), SNAP)),
                FaultStepRecord(step=FaultStep.LOCK, table=COMMIT),
            ),
            ((D, "exclusive"),),
            "no range_done since its latest snapshot",
        ),
    ],
)
def test_DRV_4_a_commit_needs_a_true_range_done_under_the_lock(
    records: tuple[FaultStepRecord, ...], held: tuple[tuple[str, str], ...], why: str
) -> None:
    """Each way of committing without the licence fails DRV-4 and says which it was."""
    model = _faulting(Licence(granted=False), held)
    verdict = check_DRV_4(model, RunFault(fault=0), DriverObservation(fault_steps=records))
    assert verdict is not None
    assert verdict.status is Status.FAIL
    assert verdict.detail.startswith("f0's ")
    assert why in verdict.detail


def test_DRV_4_passes_the_documented_commit_under_a_shared_or_exclusive_hold() -> None:
    """range_done True with D held (read side of a rwsem included), then commit: a pass."""
    for mode in ("exclusive", "shared"):
        model = _faulting(Licence(granted=False), ((D, mode),))
        record = FaultStepRecord(step=FaultStep.CHECK, calls=(_done(True),), table=COMMIT)
        verdict = check_DRV_4(model, StepFault(fault=0), DriverObservation(fault_steps=(record,)))
        assert _status(verdict) is Status.PASS
    carried = _faulting(Licence(granted=True, why=""), ((D, "exclusive"),))
    commit_later = FaultStepRecord(step=FaultStep.CHECK, table=COMMIT)
    verdict = check_DRV_4(
        carried, StepFault(fault=0), DriverObservation(fault_steps=(commit_later,))
    )
    assert _status(verdict) is Status.PASS
    no_commit = FaultStepRecord(step=FaultStep.LOCK, events=(TAKE,))
    assert (
        check_DRV_4(carried, StepFault(fault=0), DriverObservation(fault_steps=(no_commit,)))
        is None
    )


def test_DRV_4_fails_a_commit_in_a_step_that_releases_D() -> None:
    """The harness sees the table only between steps: a step that commits and releases D may
    have committed after the release (a blind driver did), so the commit needs D at the step's
    end. Before, a licence carried into the unlock step passed such a commit."""
    carried = _faulting(Licence(granted=True, why=""), ((D, "exclusive"),))
    commit_then_unlock = FaultStepRecord(step=FaultStep.UNLOCK, events=(GIVE,), table=COMMIT)
    verdict = check_DRV_4(
        carried, StepFault(fault=0), DriverObservation(fault_steps=(commit_then_unlock,))
    )
    assert verdict is not None
    assert verdict.status is Status.FAIL
    assert verdict.detail == (
        "f0's unlock step committed 0x10000, but it released gpu.lock after range_done"
    )


def test_fault_step_licence_follows_the_lock_through_a_step() -> None:
    """The licence is granted under the lock, survives the step, and ends when D is released."""
    record = FaultStepRecord(
        step=FaultStep.CHECK, events=(TAKE, _event("spin_lock"), GIVE), calls=(_done(True, at=2),)
    )
    for_commit, held, after = fault_step_licence((), Licence(granted=False), record, D)
    assert for_commit.granted
    assert held == (("gpu.lock", "exclusive"),)  # the "spin_lock" on D's name, still held
    assert after.granted
    unmatched = FaultStepRecord(
        step=FaultStep.UNLOCK,
        events=(_event("up_read", LockOutcome.RELEASED), _event("mutex_trylock", LockOutcome.BUSY)),
    )
    assert fault_step_licence(held, after, unmatched, D)[1] == held


def test_gained_counts_new_and_changed_entries_not_removed_ones() -> None:
    """A commit is an entry added or changed."""
    assert gained(((P0, RW0), (P1, RO1)), ((P0, RO1), (P2, RW0))) == [P0, P2]


# -- DRV-5 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "table", "status", "detail"),
    [
        (Exit(), (), None, ""),
        (StartFault(fault=0, start=P0, end=P2), ((P0, RW0), (P1, RO1)), Status.PASS, ""),
        (
            StartFault(fault=0, start=P0, end=P2),
            ((P1, DeviceEntry(pfn=0x101, write=True)),),
            Status.FAIL,
            "the device may write 0x11000 (pfn 0x101), the CPU may not",
        ),
        (
            CpuSetEntry(addr=P0, pte=Pte.present(0x200)),
            ((P0, RW0),),
            Status.FAIL,
            "the device maps 0x10000 to pfn 0x100, the CPU to pfn 0x200, with no invalidation open",
        ),
        (
            Exit(),
            ((P1, RO1),),
            Status.FAIL,
            "the device maps 0x11000 to pfn 0x101, the CPU to none, with no invalidation open",
        ),
        (
            NotifierStart(start=P0, end=P2, blockable=True),
            ((P0, DeviceEntry(pfn=9, write=True)),),
            None,
            "",
        ),
    ],
)
def test_DRV_5_judges_every_entry_outside_the_windows_against_the_cpu_after_the_step(
    op: DriverOp, table: Table, status: Status | None, detail: str
) -> None:
    """Same page and no more rights than the CPU's, unless a window covers the page."""
    verdict = check_DRV_5(_model(), op, DriverObservation(table=table, result=0))
    assert _status(verdict) is status
    if detail:
        assert verdict is not None
        assert verdict.detail == detail


def test_DRV_5_windows_close_at_end_and_a_failed_reap_opens_none() -> None:
    """After the end of the only window its pages are judged; a refused reap judges at once."""
    model = _model()
    model.windows[0] = (P0, P2)
    model.cpu.set_pte(P0, PTE_NONE)
    stale = ((P0, RW0),)
    ended = check_DRV_5(model, NotifierEnd(start=P0, end=P2), DriverObservation(table=stale))
    assert _status(ended) is Status.FAIL
    still_open = check_DRV_5(model, StepFault(fault=0), DriverObservation(table=stale))
    assert still_open is None
    refused = NotifierStart(start=0x13000, end=0x14000, blockable=False)
    fresh = _model()
    fresh.cpu.set_pte(P0, PTE_NONE)
    assert (
        _status(check_DRV_5(fresh, refused, DriverObservation(table=stale, result=EAGAIN)))
        is Status.FAIL
    )


# -- DRV-6 -------------------------------------------------------------------------------------


def test_DRV_6_grades_an_eagain_over_an_empty_span_and_never_fails() -> None:
    """-EAGAIN with nothing mapped: ALLOWED (over-conservative); 0: PASS; mapped: no verdict."""
    op = NotifierStart(start=P0, end=P2, blockable=False)
    graded = check_DRV_6(_model(), op, DriverObservation(callbacks=(_sync(False, EAGAIN),)))
    assert graded is not None
    assert graded.status is Status.ALLOWED
    assert graded.latitude == OVER_CONSERVATIVE
    assert (
        graded.detail
        == "-EAGAIN to the non-blockable [0x10000, 0x12000) update with nothing mapped in it"
    )
    assert not graded.status.failed
    fine = check_DRV_6(_model(), op, DriverObservation(callbacks=(_sync(False, 0),)))
    assert _status(fine) is Status.PASS
    busy = _sync(False, EAGAIN, before=((P1, RO1),), after=((P1, RO1),))
    assert check_DRV_6(_model(), op, DriverObservation(callbacks=(busy,))) is None
    assert check_DRV_6(_model(), op, DriverObservation(callbacks=(_sync(True, 0),))) is None


def test_check_driver_step_runs_one_check_per_DRV_rule_in_order() -> None:
    """Seven checks, DRV-1 to DRV-7; a quiet step gets no verdict at all."""
    assert [rule for rule, _ in DRIVER_CHECKS] == [f"DRV-{n}" for n in range(1, 8)]
    assert check_driver_step(_model(), Exit(), DriverObservation()) == []
