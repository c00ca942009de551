"""The driver-side model: what the harness saw of a step, and what the rules say the state is.

The oracle (:mod:`conformance.driver._oracle`) judges a driver from three things, as the core
oracle does: the model before the step, the operation, and the observation. The observation is
everything the harness saw without trusting the driver's word for it: the callbacks it made
into the driver and the device page table just before and after each; every lock call the
driver made on the harness's monitor, and every sleep it recorded in a non-blockable section;
every HMM call the driver made through the env, with what HMM answered; and the device page
table after each step of a fault.

The model keeps the caller's side of the protocol that generators must keep:

- the CPU changes an entry only inside an open invalidation window, and end follows only a start
  that succeeded (END-3);
- a page that a fault snapshotted while a window covering it was open is not changed again
  before that window ends. This is the seed's window hole (docs/spec.md, RNG-8 open point (a))
  seen from the driver: the snapshot, its ``range_done`` and the commit can all fall inside the
  window, after its start told the driver, and nothing tells the driver again at end (END-1);
  later kernels closed it with the invalidation counter (5.2) and sequence numbers (5.5);
- the process exits only when no window is open (``exit_mmap`` runs when the last user is gone).

Lock holdings are attributed by step, not by the owner names a driver passes: in a sequential
harness every lock call made during a fault's step is that fault's, and every one made during a
callback is the callback's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias, assert_never, final

from hmm_ref import (
    PAGE_SIZE,
    PTE_NONE,
    DeviceEntry,
    FaultStep,
    HmmUpdate,
    LockEvent,
    LockOutcome,
    Pte,
    SleepViolation,
)

from .._case import CpuState, World, exact_overlap
from ._adapter import DriverCapability, FaultView
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

__all__ = [
    "CallbackRecord",
    "DriverModel",
    "DriverObservation",
    "FaultState",
    "FaultStepRecord",
    "HmmCall",
    "Hold",
    "Licence",
    "Table",
    "fault_step_licence",
    "gained",
    "holds",
    "in_span",
    "kept",
    "table_of",
]

#: A device page table as the harness keeps it: (page, entry) pairs in address order.
Table: TypeAlias = tuple[tuple[int, DeviceEntry], ...]
#: A lock held by a fault or callback, and how: ``exclusive`` or ``shared``.
Hold: TypeAlias = tuple[str, Literal["exclusive", "shared"]]

_SHARED = frozenset({"down_read", "down_read_trylock"})
_RELEASES = {
    "mutex_unlock": "exclusive",
    "spin_unlock": "exclusive",
    "up_write": "exclusive",
    "up_read": "shared",
}


def table_of(entries: Mapping[int, DeviceEntry]) -> Table:
    """A device page table in the harness's form."""
    return tuple(sorted(entries.items()))


def in_span(table: Table, start: int, end: int) -> list[int]:
    """The pages of ``table`` inside ``[start, end)``."""
    return [addr for addr, _ in table if start <= addr < end]


def gained(before: Table, after: Table) -> list[int]:
    """The pages that ``after`` maps and ``before`` did not, or maps differently: commits.

    Removing an entry is never a commit: a device that maps less can never see a stale page.
    """
    old = dict(before)
    return [addr for addr, entry in after if old.get(addr) != entry]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class HmmCall:
    """One HMM call the driver made through the env."""

    kind: Literal["get_pfns", "range_done"]
    #: Which range object it was about (numbered in the order the harness first saw them).
    range: int
    start: int
    end: int
    #: ``hmm_vma_get_pfns``'s int or ``hmm_vma_range_done``'s bool.
    result: int | bool
    #: How many of the record's lock events came before this call.
    at: int


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRecord:
    """One callback the harness made into the driver, with the device table around it."""

    kind: Literal["sync", "release"]
    update: HmmUpdate | None = None
    #: What a sync answered; None for release, or if the callback raised.
    reply: int | None = None
    before: Table = ()
    after: Table = ()
    #: The lock calls made during the callback.
    events: tuple[LockEvent, ...] = ()
    #: Set if the callback raised (its message).
    raised: str | None = None


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class FaultStepRecord:
    """One step of a fault: which it was, its lock calls and HMM calls, the table after it."""

    step: FaultStep
    events: tuple[LockEvent, ...] = ()
    calls: tuple[HmmCall, ...] = ()
    table: Table = ()


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class DriverObservation:
    """Everything the harness saw of one driver-side step."""

    #: What an invalidation start returned (the HMM core's result); None for other steps.
    result: int | None = None
    callbacks: tuple[CallbackRecord, ...] = ()
    #: The steps a fault took (one for StepFault, any number for RunFault).
    fault_steps: tuple[FaultStepRecord, ...] = ()
    #: Where the fault stands after the step (fault operations only).
    fault: FaultView | None = None
    #: Sleeping calls recorded in non-blockable sections during the step (DRV-1).
    violations: tuple[SleepViolation, ...] = ()
    #: The device page table after the step.
    table: Table = ()
    #: Set if a non-blockable callback blocked on a held lock (it slept: DRV-1).
    blocked: str | None = None
    #: Every lock held once the step is done, with its holders as the driver named them.
    held: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: Set if the step would wait for a lock that nothing able to run can release (DRV-7): the
    #: step was not taken, and this says what it waited for and who holds what.
    deadlock: str | None = None

    def syncs(self) -> list[CallbackRecord]:
        return [call for call in self.callbacks if call.kind == "sync"]


def _after(held: tuple[Hold, ...], event: LockEvent) -> tuple[Hold, ...]:
    """The holdings after one lock call."""
    if event.outcome is LockOutcome.ACQUIRED:
        mode: Literal["exclusive", "shared"] = (
            "shared" if event.primitive in _SHARED else "exclusive"
        )
        return (*held, (event.target, mode))
    if event.outcome is LockOutcome.RELEASED:
        released = (event.target, _RELEASES.get(event.primitive, "exclusive"))
        if released in held:
            index = held.index(released)
            return held[:index] + held[index + 1 :]
    return held


def kept(events: Iterable[LockEvent], held: tuple[Hold, ...] = ()) -> tuple[Hold, ...]:
    """The holdings after ``events``, starting from ``held``: what a callback or step kept."""
    for event in events:
        held = _after(held, event)
    return held


def holds(held: Iterable[Hold], lock: str, *, exclusive: bool = False) -> bool:
    """True if ``held`` has ``lock`` (exclusively, if asked)."""
    return any(name == lock and (mode == "exclusive" or not exclusive) for name, mode in held)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Licence:
    """Whether a fault may commit now, and if not, why not (DRV-4)."""

    granted: bool
    why: str = "no range_done has confirmed a snapshot yet"


def fault_step_licence(
    held: tuple[Hold, ...], licence: Licence, record: FaultStepRecord, lock: str
) -> tuple[Licence, tuple[Hold, ...], Licence]:
    """Replay one fault step: (the licence a commit in it has, holdings after, licence after).

    A ``range_done`` that returns True while the fault holds ``lock`` grants the licence; a
    False one, one called without the lock, or a new snapshot takes it away, and so does
    releasing the lock. The harness sees the table only between steps, so a commit counts as
    made after the step's last HMM call (or under the licence carried in, if it made none), and
    after any release of the lock in that step.
    """
    position = 0

    def advance(upto: int) -> None:
        nonlocal held, licence, position
        for event in record.events[position:upto]:
            held = _after(held, event)
            if licence.granted and not holds(held, lock):
                licence = Licence(granted=False, why=f"it released {lock} after range_done")
        position = max(position, upto)

    for call in record.calls:
        advance(call.at)
        if call.kind == "get_pfns":
            licence = Licence(granted=False, why="no range_done since its latest snapshot")
        elif call.result is not True:
            licence = Licence(
                granted=False, why="range_done of its snapshot returned False (stale)"
            )
        elif not holds(held, lock):
            licence = Licence(
                granted=False, why=f"range_done returned True but was called without {lock} held"
            )
        else:
            licence = Licence(granted=True, why="")
    for_commit = licence
    advance(len(record.events))
    if for_commit.granted and not licence.granted:
        # D was released later in the same step: the harness cannot see whether the commit
        # came before the release, so the step that commits must end with D still held (the
        # check step; its unlock is a step of its own).
        for_commit = licence
    return for_commit, held, licence


@final
@dataclass(slots=True, kw_only=True)
class FaultState:
    """What the model knows of one fault."""

    id: int
    start: int
    end: int
    view: FaultView
    held: tuple[Hold, ...] = ()
    licence: Licence = field(default_factory=lambda: Licence(granted=False))

    @property
    def finished(self) -> bool:
        return self.view.next_step is None


@final
@dataclass(slots=True, kw_only=True)
class DriverModel:
    """The driver-side state the rules define, advanced one operation at a time."""

    cpu: CpuState
    #: The name of the driver lock D (from the handshake).
    lock: str
    capabilities: frozenset[DriverCapability] = frozenset()
    #: Open invalidation windows by id: ``[start, end)``.
    windows: dict[int, tuple[int, int]] = field(default_factory=dict)
    next_window: int = 0
    #: Pages a fault snapshotted while the window (by id) was open: fixed until it ends.
    frozen: dict[int, set[int]] = field(default_factory=dict)
    faults: dict[int, FaultState] = field(default_factory=dict)
    #: The device page table last observed.
    table: Table = ()
    exited: bool = False

    @classmethod
    def for_world(
        cls, world: World, lock: str, capabilities: frozenset[DriverCapability]
    ) -> DriverModel:
        return cls(cpu=CpuState(world), lock=lock, capabilities=capabilities)

    # -- views for checks and generators ---------------------------------------------------

    def in_window(self, addr: int, windows: Iterable[tuple[int, int]] | None = None) -> bool:
        """True if an open window (or one of ``windows``) covers the page at ``addr``."""
        spans = self.windows.values() if windows is None else windows
        return any(start <= addr < end for start, end in spans)

    def changeable_pages(self) -> list[int]:
        """Pages the CPU may change now: in a vma, inside an open window, and not frozen."""
        frozen = set().union(*self.frozen.values()) if self.frozen else set()
        return sorted(
            addr
            for vma in self.cpu.vmas
            for addr in range(vma.start, vma.end, PAGE_SIZE)
            if self.in_window(addr) and addr not in frozen
        )

    def faults_in_progress(self) -> list[int]:
        return sorted(fault.id for fault in self.faults.values() if not fault.finished)

    def windows_after(self, op: DriverOp, obs: DriverObservation) -> list[tuple[int, int]]:
        """The windows open once ``op`` is done."""
        spans = list(self.windows.values())
        if isinstance(op, NotifierStart) and (op.blockable or obs.result == 0):
            spans.append((op.start, op.end))
        elif isinstance(op, NotifierEnd) and (op.start, op.end) in spans:
            spans.remove((op.start, op.end))
        return spans

    def cpu_after(self, op: DriverOp, addr: int) -> Pte:
        """The CPU entry of ``addr`` once ``op`` is done."""
        if isinstance(op, Exit):
            return PTE_NONE
        if isinstance(op, CpuSetEntry) and op.addr == addr:
            return op.pte
        return self.cpu.pte(addr)

    def caller_violation(self, op: DriverOp) -> str | None:
        """Why ``op`` breaks the caller's side of the protocol now, or None if it does not."""
        if isinstance(op, StartFault | StepFault | RunFault):
            return self._fault_violation(op)
        if self.exited:
            return "the process has exited; its mappings change no more"
        if isinstance(op, NotifierEnd) and (op.start, op.end) not in self.windows.values():
            return "no successful start of this span is open: end follows only such a start (END-3)"
        if isinstance(op, CpuSetEntry) and op.addr not in self.changeable_pages():
            return (
                "the CPU changes an entry only inside an open invalidation window, and not one a "
                "fault snapshotted while that window was open (docs/driver-side.md)"
            )
        if isinstance(op, Exit):
            return self._exit_violation()
        return None

    def _exit_violation(self) -> str | None:
        if DriverCapability.RELEASE not in self.capabilities:
            return "the driver did not declare the release capability"
        if self.windows:
            return "exit_mmap runs when no other thread changes the mappings: end every window"
        return None

    def _fault_violation(self, op: StartFault | StepFault | RunFault) -> str | None:
        fault = self.faults.get(op.fault)
        if isinstance(op, StartFault):
            return (
                f"fault f{op.fault} exists already in this case; use a new number"
                if fault
                else None
            )
        if fault is None:
            return f"fault f{op.fault} was never started"
        return f"fault f{op.fault} has finished" if fault.finished else None

    # -- advancing ---------------------------------------------------------------------------

    def advance(self, op: DriverOp, obs: DriverObservation) -> None:
        """Move to the state after ``op``."""
        match op:
            case NotifierStart():
                if op.blockable or obs.result == 0:
                    self.windows[self.next_window] = (op.start, op.end)
                    self.next_window += 1
            case NotifierEnd():
                window = min(w for w, span in self.windows.items() if span == (op.start, op.end))
                del self.windows[window]
                self.frozen.pop(window, None)
            case CpuSetEntry():
                self.cpu.set_pte(op.addr, op.pte)
            case Exit():
                self.exited = True
                for addr, _ in self.cpu.entries():
                    self.cpu.set_pte(addr, PTE_NONE)
            case StartFault():
                assert obs.fault is not None, "a fault's view is observed after each fault step"
                self.faults[op.fault] = FaultState(
                    id=op.fault, start=op.start, end=op.end, view=obs.fault
                )
            case StepFault() | RunFault():
                self._fault_steps(self.faults[op.fault], obs)
            case _:
                assert_never(op)
        self.table = obs.table

    def _fault_steps(self, fault: FaultState, obs: DriverObservation) -> None:
        for record in obs.fault_steps:
            _, fault.held, fault.licence = fault_step_licence(
                fault.held, fault.licence, record, self.lock
            )
            for call in record.calls:
                if call.kind == "get_pfns" and call.result == 0:
                    self._freeze(call.start, call.end)
        assert obs.fault is not None, "a fault's view is observed after each fault step"
        fault.view = obs.fault

    def _freeze(self, start: int, end: int) -> None:
        for window, (low, high) in self.windows.items():
            if exact_overlap(low, high, start, end):
                self.frozen.setdefault(window, set()).update(
                    range(max(low, start), min(high, end), PAGE_SIZE)
                )
