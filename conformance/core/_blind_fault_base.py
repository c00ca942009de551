"""A conforming ``hmm_vma_fault`` core, written blind: from kernel-semantics §3.8 and spec §5b.

It extends :class:`conformance.core._blind_base.BlindCore` (registration, snapshots,
invalidation, release) with ``fault``, the faulting snapshot of the seed (4.18-4.20
``mm/hmm.c``), page-granular as docs/spec.md §5b states it:

- the argument checks of ``hmm_vma_get_pfns`` in the same order (bounds: ``-EINVAL`` with the
  caller's requests left as they are; special vma: ``values[SPECIAL]`` and ``-EINVAL``; no
  read permission: ``values[NONE]`` and ``-EPERM``), then the range is registered, valid;
- the walk visits the pages first to last. ``hmm_vma_handle_pte`` first saves the entry (the
  request) and writes ``values[NONE]`` over it, then decides with ``hmm_pte_need_fault``;
- a hole or swap entry that needs a fault goes through ``hmm_vma_do_fault``
  (``handle_mm_fault`` with ``FAULT_FLAG_ALLOW_RETRY``, plus ``FAULT_FLAG_RETRY_NOWAIT`` when
  the call does not block, plus ``FAULT_FLAG_WRITE`` for a write fault): ``VM_FAULT_RETRY``
  gives ``-EBUSY``, ``VM_FAULT_ERROR`` writes ``values[ERROR]`` and gives ``-EFAULT``, success
  gives ``-EAGAIN`` and the walk restarts at that page (whose request is now ``values[NONE]``);
- a migration entry that needs a fault is waited for and the walk restarts at that page;
- a poisoned (unknown special) entry writes ``values[ERROR]`` and ends the walk, ``-EFAULT``;
- on an error every entry from the recorded position to the end becomes ``values[NONE]``,
  ``hmm_vma_range_done`` unlinks the range, and the error is returned (``valid`` is left as
  it was, as ``range_done`` leaves it).

Every decision is an overridable method, so that each faulty core changes one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from hmm_ref import (
    PAGE_SIZE,
    VM_FAULT_ERROR,
    Errno,
    HmmPfnFlag,
    HmmPfnValue,
    PfnEncoding,
    Pte,
    PteKind,
    VmFault,
)

from ._adapter import (
    PROTOCOL_VERSION,
    CandidateRejected,
    Capability,
    Handshake,
)
from ._blind_base import EINVAL, BlindCore, Range

__all__ = [
    "EBUSY",
    "EFAULT",
    "RESTART",
    "BlindFaultCore",
    "PteClass",
    "make",
]

EBUSY = -int(Errno.EBUSY)
EFAULT = -int(Errno.EFAULT)
#: What the page handler returns to ask for a restart of the walk (the kernel's -EAGAIN).
RESTART = -int(Errno.EAGAIN)


class PteClass(Enum):
    """How ``hmm_vma_handle_pte`` sorts a CPU entry."""

    HOLE = "hole"  # pte_none
    SWAP = "swap"  # a non-present, non-special swap entry
    DEVICE = "device"  # a device-private entry
    MIGRATION = "migration"  # a migration entry
    BAD = "bad"  # any other special entry (poison): values[ERROR], -EFAULT
    PRESENT = "present"


class BlindFaultCore(BlindCore):
    """The conforming core with ``hmm_vma_fault``. Faulty cores override one hook each."""

    name = "blind-fault-base"

    def handshake(self) -> Handshake:
        return Handshake(
            protocol_version=PROTOCOL_VERSION,
            name=self.name,
            version="1.0",
            capabilities=frozenset(
                {Capability.RELEASE, Capability.OBSERVE_IN_CALLBACK, Capability.FAULT}
            ),
        )

    # ----------------------------------------------------------------- hmm_vma_fault

    def fault(
        self,
        range_id: int,
        vma: int,
        start: int,
        end: int,
        encoding: PfnEncoding,
        *,
        pfns: Sequence[int],
        block: bool,
    ) -> int:
        assert self.cpu is not None
        area = self.cpu.vmas[vma]
        rng = Range(range_id, start, end, encoding, list(pfns))
        self.ranges[range_id] = rng
        if not self.bounds_ok(area.start, area.end, start, end):
            return self.fault_bounds_error(rng)
        self.create_hmm()
        if not self.may_snapshot():
            return EINVAL
        error = self.vma_error(rng, special=area.special, readable=area.read)
        if error:
            return error
        if end <= start:
            # The seed registers it, the walk fails, and the error path's range_done BUG()s.
            raise CandidateRejected(f"hmm_vma_fault on the empty range r{range_id}")
        self.fault_register(rng)
        ret, last = self.fault_walk(rng, block)
        if ret:
            self.fault_error(rng, last, ret)
        return self.fault_result(rng, ret)

    def fault_bounds_error(self, rng: Range) -> int:
        """Hook: the bounds are bad; the requests stay as the caller wrote them."""
        del rng
        return EINVAL

    def fault_register(self, rng: Range) -> None:
        """Hook: register the range, valid, at the head of hmm->ranges, before the walk."""
        rng.valid = True
        rng.registered = True
        rng.done = False
        self.link_range(rng)

    def fault_result(self, rng: Range, ret: int) -> int:
        """Hook: what hmm_vma_fault returns once the walk (and any error path) is over."""
        del rng
        return ret

    # ----------------------------------------------------------------- the walk

    def fault_walk(self, rng: Range, block: bool) -> tuple[int, int]:
        """Hook: walk_page_range from the start, again from the recorded position while the
        walk asks for a restart. Returns the final result and the recorded page index."""
        index = 0
        while True:
            ret, last = self.walk_pages(rng, index, block)
            if ret != RESTART:
                return ret, last
            index = self.restart_index(rng, last)

    def walk_pages(self, rng: Range, first: int, block: bool) -> tuple[int, int]:
        """Hook: one walk from page ``first`` to the end; stop at the first non-zero result."""
        npages = self.walk_npages(rng)
        for index in range(first, npages):
            ret = self.handle_page(rng, index, block)
            if ret:
                return ret, index
        return 0, len(rng.entries)

    def walk_npages(self, rng: Range) -> int:
        """Hook: how many pages the walk covers."""
        return len(rng.entries)

    def restart_index(self, rng: Range, last: int) -> int:
        """Hook: where the walk restarts after -EAGAIN (hmm_vma_walk.last)."""
        del rng
        return last

    def page_addr(self, rng: Range, index: int) -> int:
        return rng.start + index * PAGE_SIZE

    def read_request(self, rng: Range, index: int) -> int:
        """Hook: ``orig_pfn = *pfn; *pfn = range->values[HMM_PFN_NONE];``."""
        request = rng.entries[index]
        rng.entries[index] = self.none(rng)
        return request

    def classify(self, pte: Pte) -> PteClass:
        """Hook: pte_none / swap / device-private / migration / other special / present."""
        kind = pte.kind
        if kind is PteKind.NONE:
            return PteClass.HOLE
        if kind is PteKind.SWAP:
            return PteClass.SWAP
        if kind is PteKind.DEVICE_PRIVATE:
            return PteClass.DEVICE
        if kind is PteKind.MIGRATION:
            return PteClass.MIGRATION
        if kind is PteKind.POISON:
            return PteClass.BAD
        return PteClass.PRESENT

    def handle_page(self, rng: Range, index: int, block: bool) -> int:
        """Hook: hmm_vma_handle_pte for one page: 0, RESTART, EBUSY or EFAULT."""
        assert self.cpu is not None
        addr = self.page_addr(rng, index)
        request = self.read_request(rng, index)
        pte = self.cpu.pte(addr)
        fault, write = self.need_fault(rng.encoding, request, pte)
        cls = self.classify(pte)
        if cls is PteClass.MIGRATION:
            if fault:
                return self.wait_migration(rng, index)
            return self.migration_snapshot(rng, index)
        if cls is PteClass.BAD:
            return self.bad_entry(rng, index)
        if fault:  # a hole, a swap entry, a present page or a device-private one
            return self.do_fault(rng, index, write, block)
        if cls in (PteClass.PRESENT, PteClass.DEVICE):
            rng.entries[index] = self.encode(rng.encoding, pte)
        return 0

    def need_fault(self, encoding: PfnEncoding, request: int, pte: Pte) -> tuple[bool, bool]:
        """Hook: hmm_pte_need_fault: (fault, write_fault) for ``request`` over ``pte``."""
        valid = encoding.flag(HmmPfnFlag.VALID)
        write_bit = encoding.flag(HmmPfnFlag.WRITE)
        device_bit = encoding.flag(HmmPfnFlag.DEVICE_PRIVATE)
        if not request & valid:
            return False, False
        if pte.kind is PteKind.DEVICE_PRIVATE:
            if request & device_bit:
                return True, bool(request & write_bit)
            return False, False
        fault = not pte.mapped
        write = False
        if request & write_bit and not (pte.mapped and pte.write):
            write = True
            fault = True
        return fault, write

    def fault_flags(self, block: bool) -> tuple[bool, bool]:
        """Hook: (FAULT_FLAG_ALLOW_RETRY, FAULT_FLAG_RETRY_NOWAIT); the seed always allows retry."""
        return True, not block

    def do_fault(self, rng: Range, index: int, write: bool, block: bool) -> int:
        """Hook: hmm_vma_do_fault: the entry is already values[NONE]."""
        assert self.cpu is not None
        allow_retry, nowait = self.fault_flags(block)
        answer = self.cpu.handle_mm_fault(self.page_addr(rng, index), write, allow_retry, nowait)
        return self.fault_answer(rng, index, answer)

    def fault_answer(self, rng: Range, index: int, answer: int) -> int:
        """Hook: map handle_mm_fault's VM_FAULT_* bits to the walk's result."""
        if answer & VmFault.RETRY:
            return EBUSY
        if answer & VM_FAULT_ERROR:
            rng.entries[index] = self.error_value(rng)
            return EFAULT
        return RESTART

    def wait_migration(self, rng: Range, index: int) -> int:
        """Hook: migration_entry_wait, then walk the page again."""
        assert self.cpu is not None
        self.cpu.migration_entry_wait(self.page_addr(rng, index))
        return RESTART

    def migration_snapshot(self, rng: Range, index: int) -> int:
        """Hook: a migration entry nobody asked to fault: the entry stays values[NONE]."""
        del rng, index
        return 0

    def bad_entry(self, rng: Range, index: int) -> int:
        """Hook: an entry the walk cannot handle (poison): values[ERROR] and -EFAULT."""
        rng.entries[index] = self.error_value(rng)
        return EFAULT

    # ----------------------------------------------------------------- the error path

    def fault_error(self, rng: Range, last: int, ret: int) -> None:
        """Hook: hmm_pfns_clear from the recorded position, then hmm_vma_range_done."""
        del ret
        for index in range(self.clear_from(rng, last), len(rng.entries)):
            rng.entries[index] = self.cleared_value(rng)
        self.error_unregister(rng)

    def clear_from(self, rng: Range, last: int) -> int:
        """Hook: the first entry the error path clears (hmm_vma_walk.last)."""
        del rng
        return last

    def cleared_value(self, rng: Range) -> int:
        """Hook: what the error path writes (values[NONE])."""
        return self.none(rng)

    def error_unregister(self, rng: Range) -> None:
        """Hook: the error path's hmm_vma_range_done: the range leaves the list."""
        self.unlink_range(rng)
        rng.registered = False
        rng.done = False

    # ----------------------------------------------------------------- values

    def none(self, rng: Range) -> int:
        return rng.encoding.value(HmmPfnValue.NONE)

    def error_value(self, rng: Range) -> int:
        return rng.encoding.value(HmmPfnValue.ERROR)


def make() -> BlindFaultCore:
    """The factory: a fresh conforming core."""
    return BlindFaultCore()
