"""The driver-side Hypothesis state machine: draws operations, hands them to the executor.

A thin layer, like the core's (:mod:`conformance.core._machine`). Its rules are the three actors of
the driver's world: the CPU (a blockable invalidation, entries changed as an unmap, a migration
or a write-protection, an end), the OOM reaper (a non-blockable start; the unmap and the end
only if it returned 0, END-3), and the device (a fault started, stepped, or run to its end),
plus the process's exit. Preconditions keep the caller's side of the protocol (the model's
``caller_violation``), and a step that would wait for a lock is not taken, exactly as a
scheduler would let the holder run first: the executor refuses it and the rule moves on.

Composite rules (a whole CPU change, a whole fault) sit beside the single-step ones because
Hypothesis switches whole rules off per example: a pattern that needs all its steps survives
in the composite one, while the single steps let faults land inside an open window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Final, TypeAlias

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from hmm_ref import (
    MAX_OOM_REAP_RETRIES,
    PAGE_SIZE,
    PTE_MIGRATION,
    PTE_NONE,
    PTE_POISON,
    PTE_SWAP,
    PfnEncoding,
    Pte,
    PteKind,
)

from .._case import World
from .._generation import ENCODINGS, VMAS, ptes
from .._side import Failure, WouldWaitError
from .._stateful import CaseMachine
from .._stateful import CaseRecorder as Recorders
from ._adapter import DriverCapability
from ._draws import Race, races
from ._executor import DriverExecutor, DriverStepOutcome
from ._model import DriverModel, FaultState
from ._ops import (
    CpuSetEntry,
    DriverCase,
    DriverOp,
    Exit,
    NotifierEnd,
    NotifierStart,
    RunFault,
    StartFault,
    StepFault,
    driver_case_to_json,
    driver_decodes,
)

__all__ = [
    "CPU_CHANGES",
    "DRIVER_ENCODINGS",
    "DriverCaseRecorder",
    "DriverConformance",
    "driver_world_strategy",
]

_LOW, _HIGH = VMAS[0].start, VMAS[-1].end
#: Fault spans the driver must get an error for: (start, end) by kind.
_BAD_FAULTS: Final = {
    "crossing": (VMAS[0].end - PAGE_SIZE, VMAS[1].start + PAGE_SIZE),  # -EINVAL
    "unreadable": (VMAS[2].start, VMAS[2].end),  # -EPERM
    "special": (VMAS[3].start, VMAS[3].end),  # -EINVAL
    "outside": (_HIGH, _HIGH + PAGE_SIZE),  # no vma: -EFAULT
}
#: How the CPU changes an entry inside a window; shrinking prefers the first.
CPU_CHANGES: Final = ("unmap", "migrate", "write-protect", "any")
#: The encodings a driver's snapshots use: the core's that a driver can decode
#: (``hmm_pfn_to_pfn`` shifts an entry right by ``pfn_shift`` without masking, so drivers keep
#: their flags below the pfn, as nouveau and amdgpu did; the core's encoding with flags in the
#: top bits only tests HMM's encoder), and one whose flags and shift are laid out unlike those,
#: so that a driver that decodes with a fixed layout instead of its range's reads wrong pages.
DRIVER_ENCODINGS: Final = (
    *(encoding for encoding in ENCODINGS if driver_decodes(encoding)),
    PfnEncoding(flags=(0x4, 0x1, 0x2), values=(0x8, 0x0, 0x10), pfn_shift=6),
)


#: A failing driver case and its steps.
DriverFailure = Failure[DriverCase, DriverStepOutcome]


#: What the machine saw, and how it makes each case's executor.
DriverCaseRecorder: TypeAlias = Recorders[
    DriverCase, DriverStepOutcome, Callable[[World, PfnEncoding], DriverExecutor]
]


#: What a page of the world holds, by name; shrinking prefers the first. Each page's frame
#: number comes from its address, so a world is one small choice per page.
_PAGE_KINDS: Final = (
    "present-rw",
    "present-ro",
    "none",
    "device-private",
    "swap",
    "migration",
    "poison",
)


def _page(kind: str, addr: int) -> Pte:
    pfn = 0x100 + (addr - _LOW) // PAGE_SIZE
    if kind.startswith("present"):
        return Pte.present(pfn, write=kind == "present-rw")
    return {
        "none": PTE_NONE,
        "device-private": Pte.device_private(pfn + 0x700, write=True),
        "swap": PTE_SWAP,
        "migration": PTE_MIGRATION,
        "poison": PTE_POISON,
    }[kind]


#: A page's kind: half the time one a device can map, so that the device maps batches of pages
#: for invalidations to tear down (one kind in seven would leave it a page or two).
_page_kind: Final = st.one_of(st.sampled_from(_PAGE_KINDS[:2]), st.sampled_from(_PAGE_KINDS))


def driver_world_strategy() -> st.SearchStrategy[World]:
    """The core's vmas, with one drawn kind of entry for each page of the snapshottable ones."""
    pages = [addr for vma in VMAS[:2] for addr in range(vma.start, vma.end, PAGE_SIZE)]
    kinds = st.lists(_page_kind, min_size=len(pages), max_size=len(pages))
    return kinds.map(
        lambda drawn: World(
            vmas=VMAS,
            ptes=tuple(
                (addr, pte)
                for addr, kind in zip(pages, drawn, strict=True)
                if (pte := _page(kind, addr)) != PTE_NONE
            ),
        )
    )


#: The span a fault the case starts with maps: half the time its whole vma (a device that has
#: faulted its working set in), else any span in it.
_working_set: Final = st.one_of(st.just((0, 8)), st.tuples(st.integers(0, 7), st.integers(1, 8)))


def _changed(data: st.DataObject, kind: str, old: Pte) -> Pte:
    """The entry after a CPU change of ``kind`` to ``old``."""
    if kind == "unmap":
        return PTE_NONE
    if kind == "migrate":
        if data.draw(st.booleans(), label="mid-migration"):
            return PTE_MIGRATION
        pfn = data.draw(st.integers(0x200, 0x2FF), label="new pfn")
        return Pte.present(pfn, write=old.write)
    if kind == "write-protect" and old.mapped:
        return Pte(kind=old.kind, pfn=old.pfn, write=False)
    return data.draw(ptes, label="new entry")


class DriverConformance(CaseMachine[DriverCase, DriverOp, DriverExecutor]):
    """The driver side's state machine; ``bound`` makes a class of it whose cases run
    through a recorder."""

    #: Where the cases go, and how each makes its executor (set by ``bound``).
    recorder: ClassVar[DriverCaseRecorder]

    def __init__(self) -> None:
        super().__init__()
        self.encoding: PfnEncoding = ENCODINGS[0]
        self.next_fault = 0
        #: The OOM reaper's attempts so far, and whether one reaped every vma.
        self.reaper_attempts = 0
        self.reaped = False

    @property
    def model(self) -> DriverModel:
        assert self.executor is not None, "the world comes first"
        return self.executor.model

    def case(self) -> DriverCase:
        assert self.world is not None, "the world comes first"
        return DriverCase(world=self.world, encoding=self.encoding, ops=tuple(self.ops))

    def document(self) -> dict[str, object]:
        return driver_case_to_json(self.case())

    def _do(self, op: DriverOp) -> DriverStepOutcome | None:
        """Take ``op``; None if it would wait for a lock (then it is not part of the case)."""
        executor = self.check_caller(op)
        self.ops.append(op)  # the case so far holds the step under way, should it never return
        try:
            outcome = executor.step(op)
        except WouldWaitError:
            self.ops.pop()
            return None
        self.judge(outcome)
        return outcome

    def _free(self, op: DriverOp) -> bool:
        """True unless ``op`` would wait for a holder that can run first (a driver that
        raises is asked again by the step, which reports it; a step that would wait forever
        is taken, and fails DRV-7)."""
        assert self.executor is not None
        try:
            return self.executor.blocked(op) is None
        except Exception:
            return True

    def _runnable(self) -> list[int]:
        return [f for f in self.model.faults_in_progress() if self._free(StepFault(fault=f))]

    @initialize(
        world=driver_world_strategy(),
        encoding=st.sampled_from(DRIVER_ENCODINGS),
        mapped=st.lists(st.tuples(st.sampled_from((0, 1)), _working_set), max_size=1),
    )
    def set_up(
        self, world: World, encoding: PfnEncoding, mapped: list[tuple[int, tuple[int, int]]]
    ) -> None:
        """The world, the encoding the driver's snapshots use in it, and one or two faults
        run to the end, so that invalidations find the device mapping something (the engine's
        minimiser deletes them from a counterexample that does not need them)."""
        self.encoding = encoding
        self.begin_case(world, lambda: self.recorder.make_executor(world, encoding))
        for vma, (first, length) in [(0, (0, 8)), *mapped]:
            self._whole_fault(kind="ok", vma=vma, first=first, length=length)

    # -- the device -----------------------------------------------------------------

    def _fault_span(self, kind: str, vma: int, first: int, length: int) -> tuple[int, int]:
        if kind in _BAD_FAULTS:
            return _BAD_FAULTS[kind]
        span = VMAS[vma]
        start = span.start + min(first, span.npages - 1) * PAGE_SIZE
        return start, min(start + length * PAGE_SIZE, span.end)

    def _start_fault(self, kind: str, vma: int, first: int, length: int) -> int:
        start, end = self._fault_span(kind, vma, first, length)
        fault = self.next_fault
        self.next_fault += 1
        self._do(StartFault(fault=fault, start=start, end=end))
        return fault

    _kinds = st.one_of(st.just("ok"), st.sampled_from(sorted(_BAD_FAULTS)))

    def _whole_fault(
        self,
        *,
        kind: str,
        vma: int,
        first: int,
        length: int,
        race: Race | None = None,
        data: st.DataObject | None = None,
    ) -> None:
        fault = self._start_fault(kind, vma, first, length)
        if race is not None and kind == "ok":  # a fault the rules make fail ends at its snapshot
            # After the snapshot, or while the fault holds D (after its lock or its check):
            # there the reaper must be refused without a touch, and a blockable start or the
            # exit waits for the fault, unless the driver wrongly says it need not.
            for _ in range(race.after):
                if self.model.faults[fault].finished or not self._free(StepFault(fault=fault)):
                    break
                self._do(StepFault(fault=fault))
            assert data is not None, "a race draws its CPU change"
            self._race(race, self.model.faults[fault], data)
        if not self.model.faults[fault].finished and self._free(RunFault(fault=fault)):
            self._do(RunFault(fault=fault))

    def _race(self, race: Race, fault: FaultState, data: st.DataObject) -> None:
        """What comes between two steps of ``fault``: a CPU change, a reap, or the exit."""
        if race.event == "exit":
            if self._exit_allowed():
                self._do(Exit())
            return
        mapped = [addr for addr, _ in self.model.table]
        start, end = race.span(fault.start, fault.end, mapped)  # the process is alive
        if race.event == "cpu":
            self._cpu_update(data, start, end, changes=1, close=True)
        else:
            self._reap(start, end, close=True)

    @precondition(lambda self: not self.model.exited)
    @rule(
        kind=_kinds,
        vma=st.sampled_from((0, 1)),
        first=st.integers(0, 7),
        length=st.integers(1, 8),
        race=st.one_of(st.none(), races(), races()),  # two in three faults race
        data=st.data(),
    )
    def device_fault(
        self,
        *,
        kind: str,
        vma: int,
        first: int,
        length: int,
        race: Race | None,
        data: st.DataObject,
    ) -> None:
        """A fault taken from start to finish (or until a step would wait); ``race`` puts a
        CPU change, a reap or the process's exit after any of its steps (DRV-4, DRV-5)."""
        self._whole_fault(kind=kind, vma=vma, first=first, length=length, race=race, data=data)

    @rule(
        kind=_kinds,
        vma=st.sampled_from((0, 1)),
        first=st.integers(0, 7),
        length=st.integers(1, 8),
    )
    def start_fault(self, *, kind: str, vma: int, first: int, length: int) -> None:
        """A fault that starts, and takes its steps later, between other operations."""
        self._start_fault(kind, vma, first, length)

    @precondition(lambda self: bool(self._runnable()))
    @rule(data=st.data())
    def step_fault(self, data: st.DataObject) -> None:
        fault = data.draw(st.sampled_from(self._runnable()), label="fault")
        self._do(StepFault(fault=fault))

    @precondition(lambda self: bool(self._runnable()))
    @rule(data=st.data())
    def run_fault(self, data: st.DataObject) -> None:
        fault = data.draw(st.sampled_from(self._runnable()), label="fault")
        self._do(RunFault(fault=fault))

    # -- the CPU and the OOM reaper -------------------------------------------------

    def _span(self, data: st.DataObject, first: int, length: int) -> tuple[int, int]:
        """Anywhere, or over pages the device maps or a fault is after."""
        busy = {addr for addr, _ in self.model.table} | {
            fault.start for fault in self.model.faults.values() if not fault.finished
        }
        mapped = sorted(a for a in busy if _LOW <= a < _HIGH)
        over = bool(mapped) and data.draw(st.booleans(), label="over the device's pages")
        if over:
            page = data.draw(st.sampled_from(mapped), label="page")
            start = max(_LOW, page - (first % 2) * PAGE_SIZE)
            return start, min(_HIGH, page + (1 + length % 3) * PAGE_SIZE)
        start = _LOW + first * PAGE_SIZE
        return start, min(start + length * PAGE_SIZE, _HIGH)

    def _change(self, data: st.DataObject, start: int, end: int) -> None:
        pages = [a for a in self.model.changeable_pages() if start <= a < end]
        if pages:
            addr = data.draw(st.sampled_from(pages), label="changed page")
            kind = data.draw(st.sampled_from(CPU_CHANGES), label="change")
            self._do(CpuSetEntry(addr=addr, pte=_changed(data, kind, self.model.cpu.pte(addr))))

    @precondition(lambda self: not self.model.exited)
    @rule(
        first=st.integers(0, 15),
        length=st.integers(1, 16),
        changes=st.integers(0, 2),
        close=st.booleans(),
        data=st.data(),
    )
    def cpu_update(
        self, *, first: int, length: int, changes: int, close: bool, data: st.DataObject
    ) -> None:
        """The CPU changes mappings the kernel way: a blockable start, entries changed (an
        unmap, a migration, a write-protection), and an end, unless ``close`` is False:
        then the window stays open for faults and later changes to land in."""
        start, end = self._span(data, first, length)
        self._cpu_update(data, start, end, changes=changes, close=close)

    def _cpu_update(
        self, data: st.DataObject, start: int, end: int, *, changes: int, close: bool
    ) -> None:
        if self._do(NotifierStart(start=start, end=end, blockable=True)) is None:
            return  # the callback would wait for a fault that holds the lock
        for _ in range(changes):
            self._change(data, start, end)
        if close:
            self._do(NotifierEnd(start=start, end=end))

    @precondition(lambda self: bool(self.model.changeable_pages()))
    @rule(data=st.data())
    def cpu_change(self, data: st.DataObject) -> None:
        self._change(data, _LOW, _HIGH)

    @precondition(lambda self: bool(self.model.windows))
    @rule(data=st.data())
    def cpu_end(self, data: st.DataObject) -> None:
        start, end = data.draw(st.sampled_from(sorted(self.model.windows.values())))
        self._do(NotifierEnd(start=start, end=end))

    @precondition(lambda self: not self.model.exited and self._device_busy())
    @rule(first=st.integers(0, 15), length=st.integers(1, 16), close=st.booleans(), data=st.data())
    def reap(self, *, first: int, length: int, close: bool, data: st.DataObject) -> None:
        """The OOM reaper: a non-blockable start; only if it returned 0, the unmap and the
        end (END-3). Its unmap is for good, so it comes only while the device has something
        for it to find."""
        start, end = self._span(data, first, length)
        self._reap(start, end, close=close)

    def _reap(self, start: int, end: int, *, close: bool) -> bool:
        """A reap of ``[start, end)``; True if its start returned 0 and it was unmapped."""
        outcome = self._do(NotifierStart(start=start, end=end, blockable=False))
        if outcome is None or outcome.observation.result != 0:
            return False
        for addr in self.model.changeable_pages():
            if start <= addr < end and self.model.cpu.pte(addr).kind is not PteKind.NONE:
                self._do(CpuSetEntry(addr=addr, pte=PTE_NONE))
        if close:
            self._do(NotifierEnd(start=start, end=end))
        return True

    def _device_busy(self) -> bool:
        """True if the device maps something or a fault is in progress: the states an
        exit or a reaper pass, which end what a case can do with the mm, must find."""
        return bool(self.model.table) or bool(self.model.faults_in_progress())

    @precondition(
        lambda self: (
            not self.model.exited
            and self._device_busy()
            and self.reaper_attempts < MAX_OOM_REAP_RETRIES
            and not self.reaped
        )
    )
    @rule()
    def oom_reaper_pass(self) -> None:
        """One attempt of the OOM reaper as mm/oom_kill.c makes it: a non-blockable start over
        each whole vma it may discard (not the special one), unmapped and ended only if it
        returned 0 (MN-2, END-3). It tries again only after an attempt that some vma refused,
        at most ten times, as the reaper does."""
        self.reaper_attempts += 1
        done = [self._reap(vma.start, vma.end, close=True) for vma in VMAS if not vma.special]
        self.reaped = all(done)

    def _exit_allowed(self) -> bool:
        return (
            DriverCapability.RELEASE in self.model.capabilities
            and not self.model.exited
            and not self.model.windows
        )

    @precondition(lambda self: self._exit_allowed() and self._device_busy())
    @rule()
    def process_exit(self) -> None:
        self._do(Exit())
