"""A candidate that declares ``fault``, for the fault tests: ``hmm_ref`` driven directly.

:class:`FaultingReference` runs ``hmm_ref.hmm_vma_fault`` on an ``hmm_ref.MmStruct`` made from
the case's vmas, whose fault handler forwards to the harness's CPU view and copies the page's
entry back after each call, so that the walk reads what the handler did. It is a local driver,
independent of ``conformance.core._reference``. Run as ``python tests/fault_reference.py``, it
serves itself over the wire protocol.
"""

from __future__ import annotations

from collections.abc import Sequence

import hmm_ref as H
from conformance.core._adapter import (
    PROTOCOL_VERSION,
    CandidateRejected,
    Capability,
    CpuView,
    Handshake,
    RangeView,
)
from conformance.core._wire_server import serve_stdio


class _Forward:
    """The mm's fault handling, done by the harness's CPU view; the page's entry copied back."""

    def __init__(self, mm: H.MmStruct, cpu: CpuView) -> None:
        self._mm, self._cpu = mm, cpu

    def _copy(self, addr: int) -> None:
        page = addr - addr % H.PAGE_SIZE
        if self._mm.find_vma(page) is not None:
            self._mm.set_pte(page, self._cpu.pte(page))

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> int:
        answer = self._cpu.handle_mm_fault(addr, write, allow_retry, nowait)
        self._copy(addr)
        return answer

    def migration_entry_wait(self, addr: int) -> None:
        self._cpu.migration_entry_wait(addr)
        self._copy(addr)


class FaultingReference:
    """``hmm_ref`` with ``hmm_vma_fault``, as a candidate that declares ``fault``."""

    def __init__(self) -> None:
        self._cpu: CpuView | None = None
        self._mm = H.MmStruct()
        self._vmas: list[H.Vma] = []
        self._ranges: dict[int, H.HmmRange] = {}

    def handshake(self) -> Handshake:
        return Handshake(
            protocol_version=PROTOCOL_VERSION,
            name="hmm_ref faults",
            version="test",
            capabilities=frozenset({Capability.FAULT}),
        )

    def begin(self, cpu: CpuView) -> None:
        self._cpu, self._mm, self._ranges = cpu, H.MmStruct(), {}
        self._vmas = [
            self._mm.mmap(v.start, v.end, read=v.read, write=v.write, special=v.special)
            for v in cpu.vmas
        ]
        self._mm.fault_handler = _Forward(self._mm, cpu)

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
        target = self._vmas[vma]
        for addr in range(max(start, target.start), min(end, target.end), H.PAGE_SIZE):
            self._mm.set_pte(addr, self._cpu.pte(addr))
        handle = H.HmmRange(vma=target, start=start, end=end, encoding=encoding, pfns=pfns)
        self._ranges[range_id] = handle
        return H.hmm_vma_fault(handle, block)

    def observe(self, range_id: int) -> RangeView:
        handle = self._ranges.get(range_id)
        if handle is None:
            raise CandidateRejected(f"range r{range_id} was never faulted")
        return RangeView(registered=handle.registered, valid=handle.valid, entries=handle.pfns)

    def range_done(self, range_id: int) -> bool:
        return H.hmm_vma_range_done(self._ranges[range_id])

    # The rest of the protocol, which the fault tests do not use.

    def register(self, mirror: int, ops: H.HmmMirrorOps | None) -> int:
        return H.hmm_mirror_register(H.HmmMirror(ops), self._mm)

    def unregister(self, mirror: int) -> None:
        raise NotImplementedError

    def snapshot(
        self, range_id: int, vma: int, start: int, end: int, encoding: H.PfnEncoding
    ) -> int:
        raise NotImplementedError

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        raise NotImplementedError

    def invalidate_end(self, start: int, end: int) -> None:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._ranges.clear()


if __name__ == "__main__":
    raise SystemExit(serve_stdio(FaultingReference()))
