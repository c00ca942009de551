"""The case format: the vocabulary every side's cases share, below the sides.

A case is a :class:`World` (the vmas and the initial CPU page table) and a sequence of
operations, each a frozen value of one side (:class:`Operation` is the base of all of them) with
a JSON form that round-trips exactly. This module holds what the sides' case files have in
common: the header, the world, spans, entries and encodings; ``_case_json`` reads and writes
them, with a typed reader whose errors name the path of the field that is wrong. Each side's
module of operations (``core/_ops.py``, ``driver/_ops.py``) builds on both and never on the
other side's.

A case read from JSON is held to what the engine assumes of every case, so that a bad file is the
file's fault and never shows up as a CRASH of the candidate: the world has at least one vma, in
address order without overlaps, and entries only inside them; handles and addresses fit the wire
protocol (C ints, 64-bit words); spans are small enough for the model and the reference to walk
page by page; and no object carries a field this format does not define.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeAlias, final

from hmm_ref import PAGE_SIZE, PTE_NONE, FaultOutcome, Pte, PteKind, VmFault, fault_pfn

__all__ = [
    "ADDRESS_END",
    "CASE_FORMAT",
    "CASE_VERSION",
    "MAX_ERRNO",
    "MAX_HANDLE",
    "MAX_PAGES",
    "MAX_VMAS",
    "REPLAY_FIELDS",
    "CaseFormatError",
    "CpuState",
    "FaultCall",
    "Json",
    "Operation",
    "VmaSpec",
    "World",
    "exact_overlap",
    "mapped_by",
    "span",
    "with_entry",
]

CASE_FORMAT: Final = "hmm-conformance/case"
CASE_VERSION: Final = 1

Json: TypeAlias = dict[str, Any]

#: The largest mirror, range or fault number and vma index: the wire's C servers read handles
#: into an ``int``.
MAX_HANDLE: Final = 2**31 - 1
#: Addresses are unsigned 64-bit words on the wire, so every span ends at or below this.
ADDRESS_END: Final = 2**64 - PAGE_SIZE
#: The most pages a vma, a snapshot, a window or a fault covers, and the vmas of a world together:
#: the model and the reference walk every page of each (``HmmRange`` allocates one entry per
#: page up front), so a larger span would exhaust memory, a crash that is the case's fault.
MAX_PAGES: Final = 1 << 16
#: The most vmas a world has: the model looks a page up in the vmas one by one.
MAX_VMAS: Final = 256
#: A mirror's callback answers 0 or a negative errno; the kernel's errnos end at ``MAX_ERRNO``.
MAX_ERRNO: Final = 4095
#: Fields a replay file carries beside the case (``conformance._report.replay_document``): what
#: the failing run recorded. ``replay`` reads the profile; the others are for the reader.
REPLAY_FIELDS: Final = ("profile", "seed", "depth", "candidate", "failure")


class CaseFormatError(ValueError):
    """A case, world or operation in JSON form is malformed; the message says where and why."""


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class VmaSpec:
    """One vma of the world: ``[start, end)`` and its permissions."""

    start: int
    end: int
    read: bool = True
    write: bool = True
    special: bool = False

    @property
    def npages(self) -> int:
        return (self.end - self.start) // PAGE_SIZE


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class World:
    """The CPU side at the start of a case: vmas in address order and the non-empty entries."""

    vmas: tuple[VmaSpec, ...]
    ptes: tuple[tuple[int, Pte], ...] = ()


def with_entry(world: World, addr: int, pte: Pte) -> World:
    """``world`` with the entry of ``addr`` set to ``pte`` from the start: a CPU change folded
    into the world a case starts from (an edit of both sides' shrinkers)."""
    ptes = tuple((a, p) for a, p in world.ptes if a != addr)
    if pte != PTE_NONE:
        ptes = tuple(sorted((*ptes, (addr, pte))))
    return World(vmas=world.vmas, ptes=ptes)


class Operation:
    """Base of every operation; ``name`` is the tag of its JSON form."""

    name: ClassVar[str]

    def describe(self) -> str:
        """One line a reader understands without the JSON."""
        raise NotImplementedError


def span(name: str, start: int, end: int, *, empty: bool = False) -> None:
    if start % PAGE_SIZE or end % PAGE_SIZE or start < 0:
        raise CaseFormatError(f"{name}: [{start:#x}, {end:#x}) is not page aligned")
    if end < start or (end == start and not empty):
        raise CaseFormatError(
            f"{name}: [{start:#x}, {end:#x}) is {'reversed' if end < start else 'empty'}"
        )
    if end > ADDRESS_END:
        raise CaseFormatError(
            f"{name}: [{start:#x}, {end:#x}) ends above {ADDRESS_END:#x}, the last page end "
            "a 64-bit address holds"
        )
    if (end - start) // PAGE_SIZE > MAX_PAGES:
        raise CaseFormatError(
            f"{name}: [{start:#x}, {end:#x}) covers {(end - start) // PAGE_SIZE} pages; a span "
            f"covers at most {MAX_PAGES}"
        )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class FaultCall:
    """One call a candidate made into the CPU's fault handling, and what it did."""

    #: ``handle_mm_fault``, or ``migration_entry_wait``.
    kind: str
    addr: int
    write: bool = False
    allow_retry: bool = False
    nowait: bool = False
    #: What the handler answered (0 or ``VM_FAULT_*`` bits; 0 for a wait).
    answer: int = 0
    #: The page's entry before the call, and after it.
    before: Pte = PTE_NONE
    after: Pte = PTE_NONE

    @property
    def dropped_sem(self) -> bool:
        """True if the handler dropped mmap_sem (it retried without being told not to wait)."""
        return bool(self.answer & VmFault.RETRY) and not self.nowait


@final
class CpuState:
    """The CPU side of a case, owned by the harness; candidates see it as a ``CpuView``.

    During a fault step the harness sets :attr:`outcomes` (what the fault handler does at each
    page) and :attr:`on_fault` (told of every call); outside one, every fault maps its page.
    """

    def __init__(self, world: World) -> None:
        self._vmas = world.vmas
        self._ptes: dict[int, Pte] = {addr: pte for addr, pte in world.ptes if pte != PTE_NONE}
        self.outcomes: dict[int, FaultOutcome] = {}
        self.on_fault: Callable[[FaultCall], None] | None = None

    @property
    def vmas(self) -> Sequence[VmaSpec]:
        return self._vmas

    def pte(self, addr: int) -> Pte:
        return self._ptes.get(addr - addr % PAGE_SIZE, PTE_NONE)

    def entries(self) -> tuple[tuple[int, Pte], ...]:
        """The non-empty entries, in address order."""
        return tuple(sorted(self._ptes.items()))

    def set_pte(self, addr: int, pte: Pte) -> None:
        if pte == PTE_NONE:
            self._ptes.pop(addr, None)
        else:
            self._ptes[addr] = pte

    def _vma(self, addr: int) -> VmaSpec | None:
        return next((v for v in self._vmas if v.start <= addr < v.end), None)

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> int:
        """The CPU's fault handler at the page of ``addr``: 0, or ``VM_FAULT_*`` bits.

        The page's outcome decides (:class:`hmm_ref.FaultOutcome`): ERROR answers
        ``VM_FAULT_SIGBUS``; WAIT answers ``VM_FAULT_RETRY`` if retry is allowed (dropping
        mmap_sem unless ``nowait``), or else waits and maps the page, as OK does. Mapping gives a
        page with no mapping (or a device-private one) a new frame, writable if ``write``, and a
        present page the write bit if ``write``. A write fault in a vma without write
        permission, a fault outside every vma, and one on a poisoned entry answer
        ``VM_FAULT_SIGSEGV``.
        """
        page = addr - addr % PAGE_SIZE
        before = self.pte(page)
        vma = self._vma(page)
        outcome = self.outcomes.get(page, FaultOutcome.OK)
        answer = 0
        if vma is None or (write and not vma.write) or before.kind is PteKind.POISON:
            answer = VmFault.SIGSEGV
        elif outcome is FaultOutcome.ERROR:
            answer = VmFault.SIGBUS
        elif outcome is FaultOutcome.WAIT and allow_retry:
            answer = VmFault.RETRY
        elif before.kind is PteKind.PRESENT:
            self.set_pte(page, Pte.present(before.pfn, write=before.write or write))
        else:
            self.set_pte(page, Pte.present(fault_pfn(page), write=write))
        self._told(
            FaultCall(
                kind="handle_mm_fault",
                addr=addr,
                write=write,
                allow_retry=allow_retry,
                nowait=nowait,
                answer=int(answer),
                before=before,
                after=self.pte(page),
            )
        )
        return int(answer)

    def migration_entry_wait(self, addr: int) -> None:
        """Wait for the migration of the page at ``addr``: a migration entry becomes the new
        page, present and read-only; any other entry is left as it is."""
        page = addr - addr % PAGE_SIZE
        before = self.pte(page)
        if before.kind is PteKind.MIGRATION:
            self.set_pte(page, Pte.present(fault_pfn(page)))
        self._told(
            FaultCall(kind="migration_entry_wait", addr=addr, before=before, after=self.pte(page))
        )

    def _told(self, call: FaultCall) -> None:
        if self.on_fault is not None:
            self.on_fault(call)


def exact_overlap(start: int, end: int, low: int, high: int) -> bool:
    """True if ``[start, end)`` and ``[low, high)`` share a page."""
    return start < high and low < end


def mapped_by(world: World) -> Callable[[int], bool]:
    """Whether an address lies in a vma of ``world``, whose vmas are in address order."""
    starts = [vma.start for vma in world.vmas]

    def mapped(addr: int) -> bool:
        index = bisect.bisect_right(starts, addr) - 1
        return index >= 0 and addr < world.vmas[index].end

    return mapped
