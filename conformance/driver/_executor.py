"""The driver-side executor: apply one operation, observe the driver, judge, advance the model.

The harness owns the mm, the HMM core (``hmm_ref``, the seed) and the sleep monitor. For each
case it builds the mm from the world, hands the driver a :class:`DriverEnv`, and registers the
driver's callbacks as a mirror: HMM calls a recorder, the recorder calls a
:class:`hmm_ref.NonBlockGuard`, and the guard calls the driver, inside a non-block section when
the update is not blockable. The recorder reads the device page table just before and just
after the driver's callback, and the monitor's lock calls and sleeps made meanwhile.

A driver that raises is a CRASH verdict; a :class:`CandidateFault` (a driver that overran the
step's budget, in a :class:`conformance.driver._watched.WatchedDriver`) is the HANG, CRASH or
PROTOCOL verdict that :func:`conformance.core._executor.fault_verdict` makes of it, as on the core
side.

A step that would wait for a lock is not taken: :meth:`DriverExecutor.step` asks the driver
first and raises :class:`WouldWaitError` without doing anything, which a generator treats as a
precondition not met (the holder runs first) and a replay as a case that does not apply to this
driver. That holds only while a fault that holds a lock can take its next step: if none can, the
step would wait forever, and it is judged as a deadlock (DRV-7), never skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, TypeAlias, assert_never, final

from hmm_ref import (
    DeviceEntry,
    FaultStep,
    HmmError,
    HmmMirror,
    HmmRange,
    HmmUpdate,
    MmStruct,
    NonBlockGuard,
    PfnEncoding,
    SleepMonitor,
    WouldBlockError,
    exit_mmap,
    hmm_mirror_register,
    mmu_notifier_invalidate_range_end,
    mmu_notifier_invalidate_range_start,
)

from .._case import CaseFormatError, World
from .._errors import CandidateFault
from .._fingerprint import handing
from .._side import StepKeeping, WouldWaitError
from .._verdicts import (
    Outcome,
    Status,
    StepEndedError,
    Tally,
    Verdict,
    crash_verdict,
    fault_verdict,
)
from ._adapter import DriverCandidate, DriverEnv, DriverHandshake, FaultView
from ._model import (
    CallbackRecord,
    DriverModel,
    DriverObservation,
    FaultStepRecord,
    HmmCall,
    Table,
    table_of,
)
from ._ops import (
    CpuSetEntry,
    DriverOp,
    Exit,
    NotifierEnd,
    NotifierStart,
    RunFault,
    StartFault,
    StepFault,
)
from ._oracle import check_driver_step

__all__ = ["RUN_LIMIT", "DriverExecutor", "DriverStepOutcome", "WouldWaitError", "build_mm"]

#: The most steps one RunFault takes: a fault that has not finished by then stays in progress.
RUN_LIMIT: Final = 16


#: One step: the operation, what was seen, and every verdict on it.
DriverStepOutcome: TypeAlias = Outcome[DriverOp, DriverObservation]


def _crash(what: str) -> StepEndedError:
    return StepEndedError(crash_verdict(what))


def _fault(fault: CandidateFault) -> StepEndedError:
    return StepEndedError(fault_verdict(fault))


def _protocol(detail: str) -> StepEndedError:
    return StepEndedError(Verdict(rule=None, status=Status.PROTOCOL, detail=detail))


def build_mm(world: World) -> MmStruct:
    """The process's address space for ``world``; :class:`CaseFormatError` if it cannot be."""
    mm = MmStruct(pid=4242, comm="device-user")
    try:
        for vma in world.vmas:
            mm.mmap(vma.start, vma.end, read=vma.read, write=vma.write, special=vma.special)
        for addr, pte in world.ptes:
            mm.set_pte(addr, pte)
    except HmmError as error:
        raise CaseFormatError(f"case.world: {error}") from None
    return mm


@final
class _Callbacks:
    """The mirror ops the harness registers for the driver: the recorder around the guard."""

    def __init__(self, executor: DriverExecutor) -> None:
        self._executor = executor

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        return self._executor._on_callback("sync", update)

    def release(self) -> None:
        self._executor._on_callback("release", None)


@final
class DriverExecutor(StepKeeping[DriverOp, DriverObservation]):
    """Runs one driver case, step by step."""

    def __init__(
        self,
        candidate: DriverCandidate,
        handshake: DriverHandshake,
        world: World,
        encoding: PfnEncoding,
        tally: Tally | None = None,
    ) -> None:
        self.candidate = candidate
        self.mm = build_mm(world)
        self.model = DriverModel.for_world(world, handshake.lock, handshake.capabilities)
        self.monitor = SleepMonitor()
        self.guard = NonBlockGuard(candidate, self.monitor)
        self.mirror = HmmMirror(_Callbacks(self))
        self.env = DriverEnv(
            mm=self.mm,
            monitor=self.monitor,
            encoding=encoding,
            mirror=self.mirror,
            on_call=self._on_hmm_call,
        )
        self.tally = tally if tally is not None else Tally()
        self.steps: list[DriverStepOutcome] = []
        #: What the harness handed the driver: not its own state (:mod:`.._fingerprint`).
        self.handed = handing(env=self.env, mm=self.mm, monitor=self.monitor, mirror=self.mirror)
        self._ranges: dict[int, tuple[int, HmmRange]] = {}
        self._calls: list[HmmCall] = []
        self._mark = 0
        self._callbacks: list[CallbackRecord] = []
        self.tally.cases += 1

    def begin(self) -> Verdict | None:
        """Start the case on the driver and register its mirror; a verdict if that fails."""
        try:
            try:
                self.candidate.begin(self.env)
            except CandidateFault as fault:
                raise _fault(fault) from None
            except Exception:
                raise _crash("begin() raised") from None
            registered = hmm_mirror_register(self.mirror, self.mm)
            assert registered == 0, "a fresh mm registers a mirror"
            self.model.table = self._table()
        except StepEndedError as error:
            return error.verdict
        return None

    # -- what the driver is asked and what it calls back ---------------------------------------

    def _table(self) -> Table:
        try:
            entries: object = self.candidate.device_page_table()
        except CandidateFault as fault:
            raise _fault(fault) from None
        except Exception:
            raise _crash("device_page_table() raised") from None
        if not (
            isinstance(entries, Mapping)
            and all(
                type(addr) is int and isinstance(entry, DeviceEntry)
                for addr, entry in entries.items()
            )
        ):
            raise _protocol(
                f"device_page_table() answered {entries!r}, not a mapping of page to DeviceEntry"
            )
        return table_of(entries)

    def _ask(self, what: str, answer: object) -> bool:
        if not isinstance(answer, bool):
            raise _protocol(f"{what} answered {answer!r}, not a bool")
        return answer

    def _on_hmm_call(
        self, kind: Literal["get_pfns", "range_done"], range_: HmmRange, result: int | bool
    ) -> None:
        number, _ = self._ranges.setdefault(id(range_), (len(self._ranges), range_))
        self._calls.append(
            HmmCall(
                kind=kind,
                range=number,
                start=range_.start,
                end=range_.end,
                result=result,
                at=len(self.monitor.events) - self._mark,
            )
        )

    def _on_callback(self, kind: Literal["sync", "release"], update: HmmUpdate | None) -> int:
        before = self._table()
        mark = len(self.monitor.events)
        reply: object = None

        def record(raised: str | None, after: Table) -> None:
            self._callbacks.append(
                CallbackRecord(
                    kind=kind,
                    update=update,
                    reply=reply if isinstance(reply, int) else None,
                    before=before,
                    after=after,
                    events=self.monitor.events[mark:],
                    raised=raised,
                )
            )

        try:
            if update is None:
                self.guard.release()
            else:
                reply = self.guard.sync_cpu_device_pagetables(update)
        except Exception as error:
            record(f"{type(error).__name__}: {error}", before)
            raise
        if update is not None and (not isinstance(reply, int) or isinstance(reply, bool)):
            record("a malformed answer", self._table())
            raise _protocol(f"sync_cpu_device_pagetables answered {reply!r}, not an int")
        record(None, self._table())
        return reply if isinstance(reply, int) else 0

    # -- one step ---------------------------------------------------------------------------

    def caller_violation(self, op: DriverOp) -> str | None:
        """Why ``op`` breaks the caller's side of the protocol now, or None (the model's)."""
        return self.model.caller_violation(op)

    def waits(self, op: DriverOp) -> str | None:
        """Why ``op`` would wait for a lock now, or None; the driver's answers are checked."""
        candidate = self.candidate
        if isinstance(op, NotifierStart) and op.blockable:
            if self._ask("invalidation_would_block", candidate.invalidation_would_block(True)):
                return "the blockable callback would wait for the driver's lock"
        elif isinstance(op, Exit):
            if self._ask("release_would_block", candidate.release_would_block()):
                return "the driver's release would wait for its lock"
        elif isinstance(op, StepFault | RunFault) and self._ask(
            "fault_would_block", candidate.fault_would_block(op.fault)
        ):
            return f"fault f{op.fault}'s next step would wait for a lock"
        return None

    def deadlock(self, op: DriverOp, reason: str) -> str | None:
        """None if a fault that holds a lock can take its next step first (then ``op`` waits for
        it); otherwise what ``op`` would wait for forever, and who holds what (DRV-7).

        Between steps only a fault in progress may hold a lock, and only a holder can release
        one: if every holder's next step would wait too, or nothing that can run holds a lock at
        all, ``op`` would never be woken.
        """
        own = op.fault if isinstance(op, StepFault | RunFault) else None
        holders = [
            fault
            for fault in self.model.faults_in_progress()
            if fault != own and self.model.faults[fault].held
        ]
        for fault in holders:
            if not self._ask("fault_would_block", self.candidate.fault_would_block(fault)):
                return None
        held = "; ".join(
            f"{name} held by {', '.join(repr(owner) for owner in owners)}"
            for name, owners in self.monitor.holders
        )
        waiting = (
            f", and the faults that hold locks ({', '.join(f'f{f}' for f in holders)}) "
            "would wait too"
            if holders
            else ", and no other fault that could release a lock holds one"
        )
        return (
            f"deadlock: the step ({op.describe()}) would wait forever ({reason}): "
            f"{held or 'no lock is held at all'}{waiting}"
        )

    def blocked(self, op: DriverOp) -> str | None:
        """Why ``op`` must wait for a step that can run first, or None: it can be taken now
        (as a failure if it would wait forever, see :meth:`deadlock`)."""
        reason = self.waits(op)
        if reason is None or self.deadlock(op, reason) is not None:
            return None
        return reason

    def advance(self, op: DriverOp, observation: DriverObservation) -> None:
        self.model.advance(op, observation)

    def step(self, op: DriverOp) -> DriverStepOutcome:
        """Apply ``op``, judge it, and advance the model unless the step failed.

        Raises :class:`WouldWaitError` (having done nothing) if the step would wait for a lock.
        The caller keeps the caller's side of the protocol (:meth:`DriverModel.caller_violation`).
        """
        violations = len(self.monitor.violations)
        self._callbacks, self._calls = [], []
        try:
            try:
                reason = self.waits(op)
            except StepEndedError:
                raise
            except CandidateFault as fault:
                raise _fault(fault) from None
            except Exception:
                raise _crash(f"asking whether {op.name} would wait raised") from None
            deadlock = None if reason is None else self.deadlock(op, reason)
            if reason is not None and deadlock is None:
                raise WouldWaitError(reason)
            if deadlock is not None:
                observation = DriverObservation(
                    table=self._table(), held=self.monitor.holders, deadlock=deadlock
                )
            else:
                observation = self._observe(op, violations)
            verdicts = tuple(check_driver_step(self.model, op, observation))
        except StepEndedError as error:
            observation = DriverObservation(
                callbacks=tuple(self._callbacks),
                violations=self.monitor.violations[violations:],
            )
            verdicts = (error.verdict,)
        return self.keep(op, observation, verdicts)

    def _observe(self, op: DriverOp, violations: int) -> DriverObservation:
        result: int | None = None
        steps: tuple[FaultStepRecord, ...] = ()
        view: FaultView | None = None
        blocked: str | None = None
        try:
            result, steps, view = self._apply(op)
        except StepEndedError:
            raise
        except CandidateFault as fault:
            raise _fault(fault) from None
        except WouldBlockError as error:
            if len(self.monitor.violations) == violations:
                raise StepEndedError(
                    Verdict(
                        rule=None,
                        status=Status.HANG,
                        detail=f"{op.name}: the driver waited for a lock that a step which cannot "
                        f"run now holds, after its would_block said it would not: {error}",
                    )
                ) from None
            blocked = str(error)  # a non-blockable callback slept: DRV-1 says so
        except Exception:
            raise _crash(f"{op.name} raised") from None
        return DriverObservation(
            result=result,
            callbacks=tuple(self._callbacks),
            fault_steps=steps,
            fault=view,
            violations=self.monitor.violations[violations:],
            table=self._table(),
            blocked=blocked,
            held=self.monitor.holders,
        )

    def _apply(
        self, op: DriverOp
    ) -> tuple[int | None, tuple[FaultStepRecord, ...], FaultView | None]:
        match op:
            case NotifierStart():
                ret = mmu_notifier_invalidate_range_start(
                    self.mm, op.start, op.end, blockable=op.blockable
                )
                return ret, (), None
            case NotifierEnd():
                mmu_notifier_invalidate_range_end(self.mm, op.start, op.end)
            case CpuSetEntry():
                self.mm.set_pte(op.addr, op.pte)
            case Exit():
                exit_mmap(self.mm)
            case StartFault():
                self.candidate.start_fault(op.fault, op.start, op.end)
                return None, (), self._view(op.fault)
            case StepFault():
                return None, (self._fault_step(op.fault),), self._view(op.fault)
            case RunFault():
                return None, *self._run(op.fault)
            case _:
                assert_never(op)
        return None, (), None

    def _run(self, fault: int) -> tuple[tuple[FaultStepRecord, ...], FaultView]:
        records = [self._fault_step(fault)]
        view = self._view(fault)
        while (
            view.next_step is not None
            and len(records) < RUN_LIMIT
            and not self._ask("fault_would_block", self.candidate.fault_would_block(fault))
        ):
            records.append(self._fault_step(fault))
            view = self._view(fault)
        return tuple(records), view

    def _fault_step(self, fault: int) -> FaultStepRecord:
        self._calls, self._mark = [], len(self.monitor.events)
        taken: object = self.candidate.step_fault(fault)
        if not isinstance(taken, FaultStep):
            raise _protocol(f"step_fault(f{fault}) answered {taken!r}, not a FaultStep")
        return FaultStepRecord(
            step=taken,
            events=self.monitor.events[self._mark :],
            calls=tuple(self._calls),
            table=self._table(),
        )

    def _view(self, fault: int) -> FaultView:
        view: object = self.candidate.fault_view(fault)
        step: object = getattr(view, "next_step", None)
        if not (
            isinstance(view, FaultView)
            and (step is None or isinstance(step, FaultStep))
            and (step is None) == isinstance(view.result, int)
        ):
            raise _protocol(
                f"fault_view(f{fault}) answered {view!r}: a FaultView with a next step while in "
                "progress, and a result once finished"
            )
        return view
