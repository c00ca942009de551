""":class:`SeedFaultCore`: :class:`SeedCore` with the seed's ``hmm_vma_fault``, the base of the
catalogue's known-bad faulting snapshots.

Each decision the walk makes is a method of its own (which pages it faults and how, what a
failed fault returns, what an error leaves), so that a catalogue entry overrides one of them.
Only the entries about faults declare :attr:`Capability.FAULT`: the others run as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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

from ._adapter import Capability, Handshake
from ._seed_core import SeedCore, SeedRange

__all__ = ["SeedFaultCore"]


@dataclass(slots=True)
class SeedFaultCore(SeedCore):
    """A seed core that also faults, as the seed's ``hmm_vma_fault`` does."""

    def handshake(self) -> Handshake:
        base = SeedCore.handshake(self)
        return Handshake(
            protocol_version=base.protocol_version,
            name=base.name,
            version=base.version,
            capabilities=base.capabilities | {Capability.FAULT},
        )

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
        rng = self.ranges[range_id] = SeedRange(start, end, encoding, list(pfns))
        if not self.in_bounds(area.start, area.end, start, end):
            return -Errno.EINVAL
        self.make_hmm()
        if area.special or not area.read:
            fill = HmmPfnValue.SPECIAL if area.special else HmmPfnValue.NONE
            rng.entries = [encoding.value(fill)] * len(rng.entries)
            return -Errno.EINVAL if area.special else -Errno.EPERM
        rng.registered = rng.valid = True
        index = 0
        while index < len(rng.entries):
            result = self.fault_page(rng, index, block)
            if result < 0:
                self.give_up(rng, index)
                return result
            index += result
        return 0

    def fault_page(self, rng: SeedRange, index: int, block: bool) -> int:
        """Walk one page: 1 to go on to the next, 0 to walk it again, or an error."""
        assert self.cpu is not None
        addr = rng.start + index * PAGE_SIZE
        pte = self.cpu.pte(addr)
        if pte.kind is PteKind.POISON:
            return -Errno.EFAULT
        fault, write = self.need(rng.encoding, rng.entries[index], pte)
        if not fault:
            rng.entries[index] = self.encode(rng.encoding, pte)
            return 1
        rng.entries[index] = rng.encoding.value(HmmPfnValue.NONE)
        if pte.kind is PteKind.MIGRATION:
            self.cpu.migration_entry_wait(addr)
            return 0
        allow_retry, nowait = self.fault_flags(block)
        answer = self.cpu.handle_mm_fault(addr, write, allow_retry, nowait)
        if answer:
            return self.fault_error(rng, index, answer)
        return 0

    def need(self, encoding: PfnEncoding, request: int, pte: Pte) -> tuple[bool, bool]:
        """Whether the request makes the walk fault the page, and for write."""
        if not request & encoding.flag(HmmPfnFlag.VALID):
            return False, False
        write = bool(request & encoding.flag(HmmPfnFlag.WRITE))
        if pte.kind is PteKind.DEVICE_PRIVATE:
            return bool(request & encoding.flag(HmmPfnFlag.DEVICE_PRIVATE)), write
        write = write and not (pte.kind is PteKind.PRESENT and pte.write)
        return write or pte.kind is not PteKind.PRESENT, write

    def fault_flags(self, block: bool) -> tuple[bool, bool]:
        """``(allow_retry, nowait)``: the seed always allows retry (bug #15)."""
        return True, not block

    def fault_error(self, rng: SeedRange, index: int, answer: int) -> int:
        """What a fault the handler did not complete returns."""
        if answer & VmFault.RETRY:
            return -Errno.EBUSY
        assert answer & VM_FAULT_ERROR
        rng.entries[index] = rng.encoding.value(HmmPfnValue.ERROR)
        return -Errno.EFAULT

    def give_up(self, rng: SeedRange, index: int) -> None:
        """The error path: values[NONE] from the failing page on, and the range unregistered."""
        none = rng.encoding.value(HmmPfnValue.NONE)
        rng.entries[index:] = [none] * (len(rng.entries) - index)
        rng.registered = False
