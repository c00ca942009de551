"""The reference adapter: ``hmm_ref`` driven through the adapter protocol.

Each case gets a fresh ``hmm_ref.MmStruct`` with the case's vmas; HMM's notifier is the only one
on its chain, so the chain's result is HMM's own. ``hmm_ref`` reads the CPU page table from its
mm, so before each snapshot the adapter copies the entries of the snapshot's pages from the
harness's view (the only moment the seed's code reads them); a fault goes to the harness's
fault handler, and the entry it leaves is copied back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import final

import hmm_ref as H

from .._version import package_version
from ._adapter import (
    PROTOCOL_VERSION,
    CandidateRejected,
    CandidateWouldHang,
    Capability,
    CpuView,
    Handshake,
    RangeView,
)

__all__ = ["ReferenceCandidate", "reference"]


@final
class ReferenceCandidate:
    """``hmm_ref`` as a candidate: the seed's behaviour, the default everywhere."""

    def __init__(self) -> None:
        self._cpu: CpuView | None = None
        self._mm = H.MmStruct()
        self._vmas: list[H.Vma] = []
        self._mirrors: dict[int, H.HmmMirror] = {}
        self._ranges: dict[int, H.HmmRange] = {}

    def handshake(self) -> Handshake:
        return Handshake(
            protocol_version=PROTOCOL_VERSION,
            name="hmm_ref",
            version=package_version(),
            capabilities=frozenset(Capability),
        )

    def begin(self, cpu: CpuView) -> None:
        self._cpu = cpu
        self._mm = H.MmStruct()
        self._vmas = [
            self._mm.mmap(v.start, v.end, read=v.read, write=v.write, special=v.special)
            for v in cpu.vmas
        ]
        self._mirrors = {}
        self._ranges = {}

    def register(self, mirror: int, ops: H.HmmMirrorOps | None) -> int:
        handle = H.HmmMirror(ops)
        self._mirrors[mirror] = handle
        try:
            return H.hmm_mirror_register(handle, self._mm)
        except H.WouldLivelockError as error:
            raise CandidateWouldHang(str(error)) from error

    def unregister(self, mirror: int) -> None:
        handle = self._mirrors.get(mirror)
        if handle is not None:
            H.hmm_mirror_unregister(handle)

    def snapshot(
        self, range_id: int, vma: int, start: int, end: int, encoding: H.PfnEncoding
    ) -> int:
        assert self._cpu is not None, "begin() comes first"
        target = self._load(vma, start, end)
        # Operations are page aligned and never reversed (checked when they are made).
        handle = H.HmmRange(vma=target, start=start, end=end, encoding=encoding)
        self._ranges[range_id] = handle
        return H.hmm_vma_get_pfns(handle)

    def fault(
        self,
        range_id: int,
        vma: int,
        start: int,
        end: int,
        encoding: H.PfnEncoding,
        *,
        pfns: Sequence[int],
        block: bool,
    ) -> int:
        assert self._cpu is not None, "begin() comes first"
        target = self._load(vma, start, end)
        handle = H.HmmRange(vma=target, start=start, end=end, encoding=encoding, pfns=pfns)
        self._ranges[range_id] = handle
        self._mm.fault_handler = _Forward(self._cpu, self._mm)
        try:
            return H.hmm_vma_fault(handle, block)
        finally:
            self._mm.fault_handler = None

    def _load(self, vma: int, start: int, end: int) -> H.Vma:
        """Vma number ``vma``, its entries in ``[start, end)`` copied from the harness's view."""
        assert self._cpu is not None, "begin() comes first"
        target = self._vmas[vma]
        for addr in range(max(start, target.start), min(end, target.end), H.PAGE_SIZE):
            self._mm.set_pte(addr, self._cpu.pte(addr))
        return target

    def _range(self, range_id: int) -> H.HmmRange:
        handle = self._ranges.get(range_id)
        if handle is None:
            raise CandidateRejected(f"range r{range_id} was never snapshotted")
        return handle

    def observe(self, range_id: int) -> RangeView:
        handle = self._range(range_id)
        return RangeView(registered=handle.registered, valid=handle.valid, entries=handle.pfns)

    def range_done(self, range_id: int) -> bool:
        handle = self._range(range_id)
        try:
            return H.hmm_vma_range_done(handle)
        except H.UsageError as error:
            raise CandidateRejected(str(error)) from error

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        return H.mmu_notifier_invalidate_range_start(self._mm, start, end, blockable=blockable)

    def invalidate_end(self, start: int, end: int) -> None:
        # The harness ends only windows that a successful start opened (END-3).
        H.mmu_notifier_invalidate_range_end(self._mm, start, end)

    def release(self) -> None:
        H.mmu_notifier_release(self._mm)

    def close(self) -> None:
        self._mirrors.clear()
        self._ranges.clear()


@final
class _Forward:
    """The reference mm's fault handling, done by the harness's CPU side and copied back."""

    def __init__(self, cpu: CpuView, mm: H.MmStruct) -> None:
        self._cpu = cpu
        self._mm = mm

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> int:
        answer = self._cpu.handle_mm_fault(addr, write, allow_retry, nowait)
        self._mm.set_pte(addr, self._cpu.pte(addr))
        return answer

    def migration_entry_wait(self, addr: int) -> None:
        self._cpu.migration_entry_wait(addr)
        self._mm.set_pte(addr, self._cpu.pte(addr))


def reference() -> ReferenceCandidate:
    """The factory behind ``--adapter conformance:reference`` (the default adapter)."""
    return ReferenceCandidate()
