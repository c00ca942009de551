"""The driver-side oracle: one pure check per DRV rule over (model before, operation, observation).

Each ``check_DRV_<n>`` returns a :class:`~conformance.oracle.Verdict` when the step exercised
the rule, or None when it did not, and never changes the model; :func:`check_driver_step` runs
them in catalogue order. DRV-6 is graded, not failed: an over-conservative ``-EAGAIN`` is an
ALLOWED verdict with the latitude ``over-conservative``, which the clause matrix counts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from hmm_ref import Errno, FaultStep, LockOutcome

from .._rules import rules_of
from .._verdicts import Status, Verdict
from ._model import (
    CallbackRecord,
    DriverModel,
    DriverObservation,
    Hold,
    fault_step_licence,
    gained,
    in_span,
    kept,
)
from ._ops import DRIVER_SIDE, DriverOp, RunFault, StartFault, StepFault

__all__ = ["DRIVER_CHECKS", "OVER_CONSERVATIVE", "check_driver_step"]

EAGAIN: Final = -Errno.EAGAIN
#: The latitude DRV-6 grades: an -EAGAIN with nothing to do in the span.
OVER_CONSERVATIVE: Final = "over-conservative"

DriverCheck = Callable[[DriverModel, DriverOp, DriverObservation], "Verdict | None"]


def _pass(rule: str) -> Verdict:
    return Verdict(rule=rule, status=Status.PASS)


def _fail(rule: str, detail: str) -> Verdict:
    return Verdict(rule=rule, status=Status.FAIL, detail=detail)


def _pages(pages: Sequence[int]) -> str:
    shown = ", ".join(f"{addr:#x}" for addr in pages[:4])
    return shown + (f" and {len(pages) - 4} more" if len(pages) > 4 else "")


def _span(call: CallbackRecord) -> str:
    assert call.update is not None, "a sync call carries its update"
    mode = "blockable" if call.update.blockable else "non-blockable"
    return f"{mode} [{call.update.start:#x}, {call.update.end:#x})"


def _answered(obs: DriverObservation) -> list[tuple[CallbackRecord, int]]:
    """The sync callbacks that returned, with their answers."""
    return [(call, call.reply) for call in obs.syncs() if call.reply is not None]


def check_DRV_1(m: DriverModel, op: DriverOp, obs: DriverObservation) -> Verdict | None:
    """DRV-1: nothing sleeps inside a non-blockable callback (the monitor's record is empty)."""
    if obs.violations:
        first = obs.violations[0]
        more = f" (and {len(obs.violations) - 1} more)" if len(obs.violations) > 1 else ""
        blocked = f"; it then blocked: {obs.blocked}" if obs.blocked is not None else ""
        return _fail(
            "DRV-1",
            f"{first.primitive}({first.target}) in {first.section}, called from "
            f"{first.caller}{more}{blocked}",
        )
    syncs = obs.syncs()
    if any(call.update is not None and not call.update.blockable for call in syncs):
        return _pass("DRV-1")
    return None


def check_DRV_2(m: DriverModel, op: DriverOp, obs: DriverObservation) -> Verdict | None:
    """DRV-2: a callback that returns 0, or any blockable one, leaves no entry in its span."""
    verdict = None
    for call, reply in _answered(obs):
        assert call.update is not None, "a sync call carries its update"
        if reply != 0 and not call.update.blockable:
            continue
        left = in_span(call.after, call.update.start, call.update.end)
        if left:
            return _fail(
                "DRV-2",
                f"the {_span(call)} callback answered {reply} and left device entries at "
                f"{_pages(left)}",
            )
        verdict = _pass("DRV-2")
    return verdict


def check_DRV_3(m: DriverModel, op: DriverOp, obs: DriverObservation) -> Verdict | None:
    """DRV-3: -EAGAIN only when not blockable; otherwise 0 (and never another answer)."""
    verdict = None
    for call, reply in _answered(obs):
        assert call.update is not None, "a sync call carries its update"
        if call.update.blockable and reply != 0:
            return _fail("DRV-3", f"the {_span(call)} callback answered {reply}; blockable means 0")
        if reply not in (0, EAGAIN):
            return _fail("DRV-3", f"the {_span(call)} callback answered {reply}; only 0 or -EAGAIN")
        verdict = _pass("DRV-3")
    return verdict


def _callback_half(m: DriverModel, obs: DriverObservation) -> Verdict | None:
    """A callback that changed the device page table took D exclusively while doing it."""
    verdict = None
    for call in obs.syncs():
        if call.before == call.after or call.raised is not None:
            continue
        if not any(
            e.target == m.lock and e.outcome is LockOutcome.ACQUIRED and _exclusive(e.primitive)
            for e in call.events
        ):
            return _fail(
                "DRV-4",
                f"the {_span(call)} callback changed the device page table without taking "
                f"{m.lock} for writing, so a fault's check and commit are not excluded",
            )
        verdict = _pass("DRV-4")
    return verdict


def _exclusive(primitive: str) -> bool:
    return primitive in (
        "mutex_lock",
        "mutex_trylock",
        "spin_lock",
        "spin_trylock",
        "down_write",
        "down_write_trylock",
    )


def check_DRV_4(m: DriverModel, op: DriverOp, obs: DriverObservation) -> Verdict | None:
    """DRV-4: every commit comes from a snapshot whose range_done returned True, called with D
    held; and the callback changes the device table only with D held for writing."""
    verdict = _callback_half(m, obs)
    if verdict is not None and verdict.status is Status.FAIL:
        return verdict
    if not isinstance(op, StepFault | RunFault):
        added = gained(m.table, obs.table)
        if added:
            return _fail(
                "DRV-4",
                f"{op.name} added device entries at {_pages(added)}; only a fault's commit may",
            )
        return verdict
    fault = m.faults[op.fault]
    held, licence, before = fault.held, fault.licence, m.table
    for record in obs.fault_steps:
        for_commit, held, licence = fault_step_licence(held, licence, record, m.lock)
        added = gained(before, record.table)
        before = record.table
        if not added:
            continue
        if not for_commit.granted:
            return _fail(
                "DRV-4",
                f"f{op.fault}'s {record.step.value} step committed {_pages(added)}, but "
                f"{for_commit.why}",
            )
        verdict = _pass("DRV-4")
    return verdict


def check_DRV_5(m: DriverModel, op: DriverOp, obs: DriverObservation) -> Verdict | None:
    """DRV-5: outside open windows every device entry maps the CPU's page, with no more rights."""
    windows = m.windows_after(op, obs)
    checked = False
    for addr, entry in obs.table:
        if m.in_window(addr, windows):
            continue
        checked = True
        pte = m.cpu_after(op, addr)
        if not pte.mapped or pte.pfn != entry.pfn:
            cpu = f"pfn {pte.pfn:#x}" if pte.mapped else pte.kind.value
            return _fail(
                "DRV-5",
                f"the device maps {addr:#x} to pfn {entry.pfn:#x}, the CPU to {cpu}, with no "
                "invalidation open",
            )
        if entry.write and not pte.write:
            return _fail(
                "DRV-5",
                f"the device may write {addr:#x} (pfn {entry.pfn:#x}), the CPU may not",
            )
    return _pass("DRV-5") if checked else None


def check_DRV_6(m: DriverModel, op: DriverOp, obs: DriverObservation) -> Verdict | None:
    """DRV-6 (SHOULD, graded): a non-blockable callback with nothing mapped in its span
    answers 0; an -EAGAIN there is counted as over-conservative, never failed."""
    verdict = None
    for call, reply in _answered(obs):
        assert call.update is not None, "a sync call carries its update"
        if call.update.blockable or in_span(call.before, call.update.start, call.update.end):
            continue
        if reply == EAGAIN:
            return Verdict(
                rule="DRV-6",
                status=Status.ALLOWED,
                detail=f"-EAGAIN to the {_span(call)} update with nothing mapped in it",
                latitude=OVER_CONSERVATIVE,
            )
        verdict = _pass("DRV-6")
    return verdict


#: The fault steps after which a fault may still hold D: it took D at LOCK, and keeps it through
#: CHECK until its UNLOCK step.
_HOLDING_STEPS: Final = frozenset({FaultStep.LOCK, FaultStep.CHECK})


def _locks(held: Sequence[Hold]) -> str:
    return ", ".join(f"{name} ({mode})" for name, mode in held)


def _kept_by_callbacks(obs: DriverObservation) -> Verdict | None:
    verdict = None
    for call in obs.callbacks:
        if call.raised is not None:
            continue
        left = kept(call.events)
        if left:
            what = (
                f"{_span(call)} callback answered {call.reply}"
                if call.kind == "sync"
                else "release callback returned"
            )
            return _fail(
                "DRV-7",
                f"the {what} still holding {_locks(left)}: a mirror has no end callback, so "
                "nothing releases it and every later step that takes it waits forever (bug #14)",
            )
        verdict = _pass("DRV-7")
    return verdict


def _kept_by_fault(m: DriverModel, op: StepFault | RunFault, obs: DriverObservation) -> Verdict:
    held = m.faults[op.fault].held
    for record in obs.fault_steps:
        held = kept(record.events, held)
        extra = [
            (name, mode)
            for name, mode in held
            if not (name == m.lock and record.step in _HOLDING_STEPS)
        ]
        if extra:
            return _fail(
                "DRV-7",
                f"f{op.fault}'s {record.step.value} step returned still holding {_locks(extra)}; "
                f"a fault keeps only {m.lock}, from its lock step to its unlock step",
            )
    return _pass("DRV-7")


def _kept_unaccounted(m: DriverModel, op: DriverOp, obs: DriverObservation) -> Verdict | None:
    """Any lock held after the step that no fault in progress keeps (taken anywhere else)."""
    keepers = {
        name
        for fault in m.faults.values()
        if not isinstance(op, StepFault | RunFault) or fault.id != op.fault
        for name, _ in fault.held
    }
    if isinstance(op, StepFault | RunFault):
        held = m.faults[op.fault].held
        for record in obs.fault_steps:
            held = kept(record.events, held)
        keepers.update(name for name, _ in held)
    for name, owners in obs.held:
        if name not in keepers:
            by = ", ".join(repr(owner) for owner in owners)
            return _fail(
                "DRV-7",
                f"after the step ({op.describe()}) the driver holds {name} (taken by {by}), "
                "which no fault in progress keeps: nothing will release it",
            )
    return None


def check_DRV_7(m: DriverModel, op: DriverOp, obs: DriverObservation) -> Verdict | None:
    """DRV-7: a callback returns holding no lock it took; a fault step keeps only D, and only
    from the fault's lock step to its unlock step; no other lock is left held after a step; and
    a step never waits for a lock that nothing able to run can release (a deadlock)."""
    if obs.deadlock is not None:
        return _fail("DRV-7", obs.deadlock)
    verdict = _kept_by_callbacks(obs)
    if verdict is not None and verdict.status is Status.FAIL:
        return verdict
    if isinstance(op, StepFault | RunFault):
        verdict = _kept_by_fault(m, op, obs)
        if verdict.status is Status.FAIL:
            return verdict
    elif isinstance(op, StartFault):
        verdict = _pass("DRV-7")
    return _kept_unaccounted(m, op, obs) or verdict


DRIVER_CHECKS: Final[Sequence[tuple[str, DriverCheck]]] = tuple(
    (rule.id, globals()[f"check_{rule.id.replace('-', '_')}"]) for rule in rules_of(DRIVER_SIDE)
)


def check_driver_step(m: DriverModel, op: DriverOp, obs: DriverObservation) -> list[Verdict]:
    """Every DRV rule's verdict on one step, in catalogue order (rules not exercised are absent)."""
    verdicts: list[Verdict] = []
    for _, check in DRIVER_CHECKS:
        verdict = check(m, op, obs)
        if verdict is not None:
            verdicts.append(verdict)
    return verdicts
