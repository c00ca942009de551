"""DRV-7: no lock kept across a return but a fault's D, and no step that waits forever.

The check is tested on hand-made observations first, then through the executor on drivers that
leak a lock, or that would wait with nothing able to release what they wait for: such a step
is judged as a deadlock, where before it was skipped (or refused on replay) as "cannot be taken
now".
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conformance import Budget, CaseFormatError, World
from conformance._generation import ENCODINGS, VMAS
from conformance._side import Failure
from conformance.driver._adapter import DriverCandidate, FaultView
from conformance.driver._catalogue import BaseDriver, KeepsLockAfterEagain
from conformance.driver._model import (
    CallbackRecord,
    DriverModel,
    DriverObservation,
    FaultState,
    FaultStepRecord,
)
from conformance.driver._ops import (
    DriverCase,
    DriverOp,
    Exit,
    NotifierStart,
    RunFault,
    StartFault,
    StepFault,
)
from conformance.driver._oracle import check_DRV_7
from conformance.driver._reference import reference_driver
from conformance.driver._side import replay_driver, run_driver, start_driver
from conformance.oracle import Status, Verdict
from hmm_ref import Errno, FaultStep, HmmUpdate, LockEvent, LockOutcome, Pte

D = "gpu.lock"
EAGAIN = -Errno.EAGAIN
P0, P1, P2 = 0x10000, 0x11000, 0x12000
WORLD = World(vmas=VMAS, ptes=((P0, Pte.present(0x100, write=True)), (P1, Pte.present(0x101))))
REAP = NotifierStart(start=P0, end=P2, blockable=False)


def _event(primitive: str, target: str = D) -> LockEvent:
    released = primitive.endswith("unlock") or primitive.startswith("up_")
    outcome = LockOutcome.RELEASED if released else LockOutcome.ACQUIRED
    return LockEvent(primitive=primitive, target=target, owner="", outcome=outcome, section=None)


TAKE, GIVE = _event("mutex_trylock"), _event("mutex_unlock")


def _model(*held_by_f0: tuple[str, str]) -> DriverModel:
    """A model with fault f0 in progress, holding ``held_by_f0`` (its check comes next)."""
    model = DriverModel.for_world(WORLD, D, frozenset())
    model.faults[0] = FaultState(
        id=0,
        start=P0,
        end=P2,
        view=FaultView(next_step=FaultStep.CHECK, result=None),
        held=tuple((name, "exclusive" if mode == "x" else "shared") for name, mode in held_by_f0),
    )
    return model


def _sync(reply: int, *events: LockEvent) -> CallbackRecord:
    update = HmmUpdate(start=P0, end=P2, blockable=False)
    return CallbackRecord(kind="sync", update=update, reply=reply, events=events)


def _fail(verdict: Verdict | None) -> str:
    assert verdict is not None
    assert verdict.status is Status.FAIL, verdict
    assert verdict.rule == "DRV-7"
    return verdict.detail


# -- the check -------------------------------------------------------------------------------


def test_a_callback_that_returns_holding_its_lock_fails_naming_the_lock() -> None:
    """RDMA ODP's bug: -EAGAIN with the try-locked lock still held (bug #14)."""
    leaked = DriverObservation(callbacks=(_sync(EAGAIN, TAKE),), held=((D, ("sync",)),))
    assert _fail(check_DRV_7(_model(), REAP, leaked)) == (
        "the non-blockable [0x10000, 0x12000) callback answered -11 still holding gpu.lock "
        "(exclusive): a mirror has no end callback, so nothing releases it and every later "
        "step that takes it waits forever (bug #14)"
    )
    release = CallbackRecord(kind="release", events=(_event("down_read"),))
    detail = _fail(check_DRV_7(_model(), Exit(), DriverObservation(callbacks=(release,))))
    assert detail.startswith("the release callback returned still holding gpu.lock (shared)")


def test_a_callback_that_releases_what_it_took_passes_and_a_quiet_step_has_no_verdict() -> None:
    balanced = DriverObservation(callbacks=(_sync(0, TAKE, GIVE),))
    verdict = check_DRV_7(_model(), REAP, balanced)
    assert verdict is not None
    assert verdict.status is Status.PASS
    assert check_DRV_7(_model(), Exit(), DriverObservation()) is None


def test_a_fault_keeps_D_only_from_its_lock_step_to_its_unlock_step() -> None:
    """D kept after LOCK and CHECK passes; after UNLOCK (or any other lock) it fails."""
    model = _model()
    lock = FaultStepRecord(step=FaultStep.LOCK, events=(_event("mutex_lock"),))
    check = FaultStepRecord(step=FaultStep.CHECK)
    unlock = FaultStepRecord(step=FaultStep.UNLOCK)
    kept = DriverObservation(fault_steps=(lock, check), held=((D, ("f0",)),))
    assert check_DRV_7(model, RunFault(fault=0), kept) == Verdict(rule="DRV-7", status=Status.PASS)
    leaked = DriverObservation(fault_steps=(lock, check, unlock), held=((D, ("f0",)),))
    assert _fail(check_DRV_7(model, RunFault(fault=0), leaked)) == (
        "f0's unlock step returned still holding gpu.lock (exclusive); a fault keeps only "
        "gpu.lock, from its lock step to its unlock step"
    )
    other = FaultStepRecord(step=FaultStep.LOCK, events=(_event("spin_lock", "peek"),))
    detail = _fail(check_DRV_7(model, StepFault(fault=0), DriverObservation(fault_steps=(other,))))
    assert detail.startswith("f0's lock step returned still holding peek (exclusive);")


def test_a_lock_held_after_a_step_must_be_one_a_fault_in_progress_keeps() -> None:
    """The monitor's holders after the step: f0's D is accounted for; anything else fails."""
    start = StartFault(fault=1, start=P0, end=P1)
    accounted = DriverObservation(held=((D, ("f0",)),))
    assert check_DRV_7(_model((D, "x")), start, accounted) == Verdict(
        rule="DRV-7", status=Status.PASS
    )
    stray = DriverObservation(held=((D, ("f0",)), ("peek", ("start",))))
    assert _fail(check_DRV_7(_model((D, "x")), start, stray)) == (
        "after the step (device fault f1 over [0x10000, 0x11000) starts) the driver holds peek "
        "(taken by 'start'), "
        "which no fault in progress keeps: nothing will release it"
    )
    # f0 releases D in this step: once it has, D held by someone is nobody's to keep.
    released = DriverObservation(
        fault_steps=(FaultStepRecord(step=FaultStep.UNLOCK, events=(GIVE,)),),
        held=((D, ("sync",)),),
    )
    assert "which no fault in progress keeps" in _fail(
        check_DRV_7(_model((D, "x")), StepFault(fault=0), released)
    )


def test_a_deadlock_is_a_failure_with_the_executors_words() -> None:
    obs = DriverObservation(deadlock="deadlock: exit would wait forever")
    assert _fail(check_DRV_7(_model(), Exit(), obs)) == "deadlock: exit would wait forever"


# -- through the executor -----------------------------------------------------------------------


class WaitsForNothing(BaseDriver):
    """Says a blockable invalidation would wait, with no lock held: it would wait forever."""

    def invalidation_would_block(self, blockable: bool) -> bool:
        return blockable


class CheckWaitsForever(BaseDriver):
    """A fault's check step always says it would wait: while it holds D, nothing can go on."""

    def fault_would_block(self, fault: int) -> bool:
        return self.faults[fault].next is FaultStep.CHECK or super().fault_would_block(fault)


class LocksInStartFault(BaseDriver):
    """Takes a peeking spinlock when a fault starts, and never releases it."""

    def start_fault(self, fault: int, start: int, end: int) -> None:
        super().start_fault(fault, start, end)
        self.d.trylock(f"start{fault}")


def _failed_with(factory: Callable[[], DriverCandidate], *ops: DriverOp) -> tuple[int, str]:
    """How many steps the replay of ``ops`` took, and its one failure's detail (DRV-7)."""
    candidate, handshake = start_driver(factory)
    outcome = replay_driver(
        candidate, handshake, DriverCase(world=WORLD, encoding=ENCODINGS[0], ops=ops)
    )
    assert isinstance(outcome, Failure), "the case was expected to fail"
    [verdict] = outcome.verdicts
    assert verdict.rule == "DRV-7"
    return len(outcome.steps), verdict.detail


MAPPED: tuple[DriverOp, ...] = (StartFault(fault=0, start=P0, end=P2), RunFault(fault=0))
HOLDING: tuple[DriverOp, ...] = (
    StartFault(fault=0, start=P0, end=P1),
    StepFault(fault=0),
    StepFault(fault=0),
)
BLOCKABLE = NotifierStart(start=P0, end=P1, blockable=True)


def test_the_rdma_odp_leak_fails_at_the_start_that_kept_the_lock() -> None:
    steps, detail = _failed_with(KeepsLockAfterEagain, *MAPPED, REAP)
    assert steps == 3
    assert detail.startswith("the non-blockable [0x10000, 0x12000) callback answered -11 still")


def test_a_step_that_would_wait_with_nothing_held_is_a_deadlock_not_a_refused_step() -> None:
    """Before DRV-7 the replay refused this case: "cannot be taken now"."""
    steps, detail = _failed_with(WaitsForNothing, BLOCKABLE)
    assert steps == 1
    assert detail == (
        "deadlock: the step (CPU: blockable invalidate_start [0x10000, 0x11000)) would wait "
        "forever (the "
        "blockable callback would wait for the driver's lock): no lock is held at all, and no "
        "other fault that could release a lock holds one"
    )


def test_a_step_waiting_on_a_holder_that_waits_too_is_a_deadlock_naming_both() -> None:
    steps, detail = _failed_with(CheckWaitsForever, *HOLDING, BLOCKABLE)
    assert steps == 4
    assert detail.endswith(
        "driver's lock): check-waits-forever.lock held by 'fault0', and the faults that hold "
        "locks (f0) would wait too"
    )
    steps, detail = _failed_with(CheckWaitsForever, *HOLDING, StepFault(fault=0))
    assert steps == 4
    assert "no other fault that could release a lock holds one" in detail


def test_a_step_waiting_on_a_holder_that_can_run_is_still_not_taken() -> None:
    candidate, handshake = start_driver(reference_driver)
    case = DriverCase(world=WORLD, encoding=ENCODINGS[0], ops=(*HOLDING, BLOCKABLE))
    with pytest.raises(CaseFormatError, match=r"step 4 .* cannot be taken now"):
        replay_driver(candidate, handshake, case)


def test_a_lock_taken_when_a_fault_starts_and_kept_fails_at_that_step() -> None:
    steps, detail = _failed_with(LocksInStartFault, StartFault(fault=0, start=P0, end=P1))
    assert steps == 1
    assert detail == (
        "after the step (device fault f0 over [0x10000, 0x11000) starts) the driver holds "
        "locks-in-start-fault.lock "
        "(taken by 'start0'), which no fault in progress keeps: nothing will release it"
    )


@pytest.mark.parametrize("factory", [WaitsForNothing, KeepsLockAfterEagain])
def test_generated_runs_catch_a_deadlock_and_a_leak(factory: Callable[[], BaseDriver]) -> None:
    candidate, handshake = start_driver(factory)
    result = run_driver(candidate, handshake, budget=Budget(name="s", examples=40, steps=20))
    assert result.failure is not None
    assert {verdict.rule for verdict in result.failure.verdicts} == {"DRV-7"}
