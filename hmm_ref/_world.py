"""The CPU side that HMM reads: an address space (``struct mm_struct``), its vmas and page table.

Rules of this module:

- Everything is page granular. ``PAGE_SIZE`` is 4096; every vma bound is a multiple of it.
- The page table maps a virtual page to a :class:`Pte`. A page with no entry reads as
  :data:`PTE_NONE`, like an empty pte.
- ``set_pte`` is the raw store: it calls no notifier. Code that changes a mapping the kernel way
  brackets its stores with ``invalidate_range_start``/``_end`` (see ``_mmu_notifier``); the
  window bookkeeping here (:attr:`MmStruct.open_windows`) lets callers and harnesses check that.
- The mm also carries what the kernel keeps in ``mm_struct`` for the code we model: the notifier
  list (``mm->mmu_notifier_mm``), the HMM back-pointer (``mm->hmm``), the OOM flag
  ``MMF_OOM_SKIP``, and the kernel log lines that the modelled code prints.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, final

from ._errors import UsageCode, UsageError

if TYPE_CHECKING:
    from ._hmm import Hmm
    from ._mmu_notifier import MmuNotifier

__all__ = [
    "FAULT_PFN_BASE",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "PTE_MIGRATION",
    "PTE_NONE",
    "PTE_POISON",
    "PTE_SWAP",
    "VM_FAULT_ERROR",
    "FaultHandler",
    "FaultOutcome",
    "MmStruct",
    "Pte",
    "PteKind",
    "VmFault",
    "Vma",
    "fault_pfn",
    "page_aligned",
]

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
_PFN_LIMIT = 1 << 52  # x86-64's physical address space: 52 bits of address, 40 of pfn; be generous


def page_aligned(value: int) -> bool:
    """True if ``value`` is a non-negative multiple of :data:`PAGE_SIZE`."""
    return value >= 0 and value % PAGE_SIZE == 0


@final
class PteKind(enum.Enum):
    """What a CPU page-table entry holds, as far as HMM's page walk can tell."""

    #: ``pte_none``: nothing mapped. Snapshot encodes ``values[NONE]``.
    NONE = "none"
    #: A present page with a physical frame number and a write bit.
    PRESENT = "present"
    #: A device-private page (a non-present swap-type entry that names a device frame).
    DEVICE_PRIVATE = "device-private"
    #: A page swapped out (a non-present, non-special swap entry). Snapshot: ``values[NONE]``.
    SWAP = "swap"
    #: A page under migration. Snapshot: ``values[NONE]`` (no waiting in snapshot mode).
    MIGRATION = "migration"
    #: A hardware-poisoned or otherwise unknown special entry. Snapshot: ``values[ERROR]``,
    #: and the seed's walk stops there (kernel-semantics §3.7 rule 8).
    POISON = "poison"


_WITH_PFN = frozenset({PteKind.PRESENT, PteKind.DEVICE_PRIVATE})


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Pte:
    """One CPU page-table entry. ``pfn`` and ``write`` only mean something for mapped kinds."""

    kind: PteKind
    pfn: int = 0
    write: bool = False

    def __post_init__(self) -> None:
        if self.kind in _WITH_PFN:
            if not 0 <= self.pfn < _PFN_LIMIT:
                raise ValueError(
                    f"pfn {self.pfn} out of range [0, 2**52) for a {self.kind.value} pte"
                )
        elif self.pfn != 0 or self.write:
            raise ValueError(f"a {self.kind.value} pte has no pfn and no write bit; pass neither")

    @classmethod
    def present(cls, pfn: int, *, write: bool = False) -> Pte:
        """A present page mapping frame ``pfn``, writable if ``write``."""
        return cls(kind=PteKind.PRESENT, pfn=pfn, write=write)

    @classmethod
    def device_private(cls, pfn: int, *, write: bool = False) -> Pte:
        """A device-private page (migrated to device memory) with device frame ``pfn``."""
        return cls(kind=PteKind.DEVICE_PRIVATE, pfn=pfn, write=write)

    @property
    def mapped(self) -> bool:
        """True for the kinds that name a page frame (present or device-private)."""
        return self.kind in _WITH_PFN


#: The empty entry.
PTE_NONE = Pte(kind=PteKind.NONE)
#: A swapped-out page.
PTE_SWAP = Pte(kind=PteKind.SWAP)
#: A page under migration.
PTE_MIGRATION = Pte(kind=PteKind.MIGRATION)
#: A poisoned entry.
PTE_POISON = Pte(kind=PteKind.POISON)


@final
class FaultOutcome(enum.Enum):
    """What the CPU's fault handler does at a page: the world's answer, chosen by whoever writes
    the case, as a mirror's reply is."""

    #: It maps the page as asked (:meth:`MmStruct.handle_mm_fault` says how).
    OK = "ok"
    #: It must wait (I/O, a page lock). Allowed to retry, it returns ``VM_FAULT_RETRY`` instead,
    #: having dropped mmap_sem unless told not to wait; not allowed, it waits and maps the page.
    WAIT = "wait"
    #: It fails (``VM_FAULT_SIGBUS``).
    ERROR = "error"


class VmFault(enum.IntFlag):
    """The ``VM_FAULT_*`` bits ``handle_mm_fault`` returns that HMM reads (4.18 values)."""

    SIGBUS = 0x0002
    SIGSEGV = 0x0040
    RETRY = 0x0400


#: The bits HMM takes as a failed fault (the part of ``VM_FAULT_ERROR`` this world returns).
VM_FAULT_ERROR = VmFault.SIGBUS | VmFault.SIGSEGV

#: Page frames the fault handler maps are ``FAULT_PFN_BASE`` plus the page's number.
FAULT_PFN_BASE = 1 << 40


def fault_pfn(addr: int) -> int:
    """The frame the fault handler maps at ``addr`` when it needs a new page."""
    return FAULT_PFN_BASE + (addr >> PAGE_SHIFT)


class FaultHandler(Protocol):
    """Stands in for the mm's own fault handling (a harness that owns the CPU side)."""

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> int:
        """``handle_mm_fault`` at ``addr``: 0 or :class:`VmFault` bits."""
        ...

    def migration_entry_wait(self, addr: int) -> None:
        """Wait until the migration of the page at ``addr`` has finished."""
        ...


@final
@dataclass(frozen=True, eq=False, slots=True, kw_only=True)
class Vma:
    """A virtual memory area ``[start, end)`` of one mm. Compared by identity, like the kernel's.

    ``special`` stands for hugetlb or any VM_SPECIAL flag (VM_IO, VM_PFNMAP, VM_MIXEDMAP,
    VM_DONTEXPAND): HMM refuses to snapshot those and the OOM reaper does not reap them.
    """

    mm: MmStruct = field(repr=False)
    start: int
    end: int
    read: bool = True
    write: bool = True
    special: bool = False

    def contains(self, addr: int) -> bool:
        """True if ``addr`` lies inside ``[start, end)``."""
        return self.start <= addr < self.end

    @property
    def npages(self) -> int:
        """The number of pages the vma spans."""
        return (self.end - self.start) >> PAGE_SHIFT


@final
class MmStruct:
    """An address space: vmas, the CPU page table, and the per-mm state HMM and notifiers use."""

    def __init__(self, *, pid: int = 1, comm: str = "app") -> None:
        #: The owning task's pid and command name, as the OOM reaper's messages print them.
        self.pid = pid
        self.comm = comm
        self._vmas: list[Vma] = []
        self._ptes: dict[int, Pte] = {}
        self._log: list[str] = []
        #: ``mm->mmu_notifier_mm->list``, newest registration first.
        self.notifier_list: list[MmuNotifier] = []
        #: ``mm->hmm``: the HMM state of this mm, created lazily by ``hmm_register``.
        self.hmm: Hmm | None = None
        #: Set once ``mmu_notifier_release`` ran (``exit_mmap``): the process is gone.
        self.exiting = False
        #: ``MMF_OOM_SKIP``: set by the OOM reaper when it is done with this mm, reaped or not.
        self.mmf_oom_skip = False
        self._windows: Counter[tuple[int, int]] = Counter()
        self._alloc_failures = 0
        #: What the fault handler does at each page address; a page not listed gives OK.
        self.fault_outcomes: dict[int, FaultOutcome] = {}
        #: Replaces this mm's own fault handling when set (a harness that owns the CPU side).
        self.fault_handler: FaultHandler | None = None

    def __repr__(self) -> str:
        return f"<MmStruct pid={self.pid} vmas={len(self._vmas)} exiting={self.exiting}>"

    # -- vmas ----------------------------------------------------------------------------------

    @property
    def vmas(self) -> tuple[Vma, ...]:
        """The vmas in address order."""
        return tuple(self._vmas)

    def mmap(
        self, start: int, end: int, *, read: bool = True, write: bool = True, special: bool = False
    ) -> Vma:
        """Add the vma ``[start, end)`` and return it. It must be page aligned and free."""
        if not (page_aligned(start) and page_aligned(end)):
            raise UsageError(
                UsageCode.UNALIGNED,
                "mmap",
                f"vma [{start:#x}, {end:#x}) is not page aligned; use multiples of {PAGE_SIZE}",
            )
        if end <= start:
            raise UsageError(
                UsageCode.BAD_ADDRESS,
                "mmap",
                f"vma [{start:#x}, {end:#x}) is empty; give end > start",
            )
        for other in self._vmas:
            if start < other.end and other.start < end:
                raise UsageError(
                    UsageCode.BAD_ADDRESS,
                    "mmap",
                    f"vma [{start:#x}, {end:#x}) overlaps [{other.start:#x}, {other.end:#x})",
                )
        vma = Vma(mm=self, start=start, end=end, read=read, write=write, special=special)
        self._vmas.append(vma)
        self._vmas.sort(key=lambda v: v.start)
        return vma

    def find_vma(self, addr: int) -> Vma | None:
        """The vma that contains ``addr``, or None."""
        for vma in self._vmas:
            if vma.contains(addr):
                return vma
        return None

    # -- the page table ------------------------------------------------------------------------

    def pte(self, addr: int) -> Pte:
        """The entry for the page that contains ``addr`` (:data:`PTE_NONE` if there is none)."""
        return self._ptes.get(addr >> PAGE_SHIFT, PTE_NONE)

    def set_pte(self, addr: int, pte: Pte) -> None:
        """Store ``pte`` for the page at ``addr``, which must be page aligned and inside a vma.

        This is the raw store and calls no notifier: bracket it with an invalidation window when
        the page may be mirrored or snapshotted (the caller's side of RNG-8).
        """
        if not page_aligned(addr):
            raise UsageError(
                UsageCode.UNALIGNED, "set_pte", f"address {addr:#x} is not page aligned"
            )
        if self.find_vma(addr) is None:
            raise UsageError(
                UsageCode.BAD_ADDRESS, "set_pte", f"address {addr:#x} is in no vma; mmap it first"
            )
        if pte.kind is PteKind.NONE:
            self._ptes.pop(addr >> PAGE_SHIFT, None)
        else:
            self._ptes[addr >> PAGE_SHIFT] = pte

    def rss_pages(self) -> int:
        """The number of present pages (the reaper's "rss"; every page counts as anonymous)."""
        return sum(1 for pte in self._ptes.values() if pte.kind is PteKind.PRESENT)

    def clear_ptes(self, start: int, end: int) -> None:
        """Empty every entry in ``[start, end)`` (what ``unmap_page_range`` leaves behind)."""
        for page in range(start >> PAGE_SHIFT, end >> PAGE_SHIFT):
            self._ptes.pop(page, None)

    # -- invalidation windows (the caller's side of the notifier contract) ----------------------

    @property
    def open_windows(self) -> tuple[tuple[int, int], ...]:
        """The ``[start, end)`` windows whose start succeeded and whose end has not run yet."""
        return tuple(sorted(self._windows.elements()))

    def in_window(self, addr: int) -> bool:
        """True if an open invalidation window covers the page at ``addr``."""
        return any(start <= addr < end for start, end in self._windows)

    def _open_window(self, start: int, end: int) -> None:
        self._windows[(start, end)] += 1

    def _close_window(self, start: int, end: int) -> bool:
        key = (start, end)
        if key not in self._windows:
            return False
        self._windows[key] -= 1
        if self._windows[key] == 0:
            del self._windows[key]
        return True

    # -- the kernel log and fault injection ----------------------------------------------------

    @property
    def dmesg(self) -> tuple[str, ...]:
        """The lines that the modelled kernel code printed for this mm, oldest first."""
        return tuple(self._log)

    def printk(self, line: str) -> None:
        """Append ``line`` to :attr:`dmesg`."""
        self._log.append(line)

    def inject_alloc_failures(self, count: int) -> None:
        """Make the next ``count`` allocations of a ``struct hmm`` for this mm fail (failslab)."""
        if count < 0:
            raise ValueError("count must be >= 0")
        self._alloc_failures = count

    def _take_alloc_failure(self) -> bool:
        if self._alloc_failures:
            self._alloc_failures -= 1
            return True
        return False

    # -- faults (what ``hmm_vma_fault`` asks of the CPU side) --------------------------------

    def handle_mm_fault(self, addr: int, *, write: bool, allow_retry: bool, nowait: bool) -> int:
        """The CPU's fault handler at the page of ``addr``: 0, or :class:`VmFault` bits.

        ``allow_retry`` and ``nowait`` are ``FAULT_FLAG_ALLOW_RETRY`` and
        ``FAULT_FLAG_RETRY_NOWAIT``. The page's :attr:`fault_outcomes` entry decides; with OK
        (or WAIT when retry is not allowed) a page that is not mapped gets a new frame
        (:func:`fault_pfn`), writable if ``write``; a mapped page gains the write bit if
        ``write``. A write fault in a vma without write permission is refused (``SIGSEGV``),
        as the architecture's access check refuses it, and so is a fault on a poisoned entry.
        Only adding a mapping or a permission is modelled: no mapping a device may hold is
        replaced, so no notifier runs.
        """
        if self.fault_handler is not None:
            return self.fault_handler.handle_mm_fault(addr, write, allow_retry, nowait)
        page = addr - addr % PAGE_SIZE
        vma = self.find_vma(page)
        pte = self.pte(page)
        if vma is None or (write and not vma.write) or pte.kind is PteKind.POISON:
            return VmFault.SIGSEGV
        outcome = self.fault_outcomes.get(page, FaultOutcome.OK)
        if outcome is FaultOutcome.ERROR:
            return VmFault.SIGBUS
        if outcome is FaultOutcome.WAIT and allow_retry:
            return VmFault.RETRY
        if pte.kind is PteKind.PRESENT:
            self.set_pte(page, Pte.present(pte.pfn, write=pte.write or write))
        else:
            self.set_pte(page, Pte.present(fault_pfn(page), write=write))
        return 0

    def migration_entry_wait(self, addr: int) -> None:
        """Wait for the migration at ``addr`` to finish: the entry becomes the new page,
        present and read-only (:func:`fault_pfn`). Other entries are left alone."""
        if self.fault_handler is not None:
            self.fault_handler.migration_entry_wait(addr)
            return
        page = addr - addr % PAGE_SIZE
        if self.pte(page).kind is PteKind.MIGRATION:
            self.set_pte(page, Pte.present(fault_pfn(page)))
