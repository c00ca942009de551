"""The model's statement of ``hmm_vma_fault`` (docs/spec.md, FLT rules): what a call must do.

Worked out from the rules' text, not taken from ``hmm_ref``: from the CPU side as it was before
the call, :func:`fault_walk` gives the calls into the fault handler the walk must make, in
order, the result, and the entries. The CPU's own fault handling is the harness's
(:class:`conformance._case.CpuState`), which the walk drives on a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, final

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

from .._case import CpuState, FaultCall, World
from ._model import encode
from ._ops import FaultSnapshot

__all__ = ["FaultWalk", "cpu_before", "fault_walk", "needs_fault"]

#: ``handle_mm_fault`` and ``migration_entry_wait``, as :class:`FaultCall` names them.
HANDLE: Final = "handle_mm_fault"
WAIT: Final = "migration_entry_wait"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class FaultWalk:
    """What one ``hmm_vma_fault`` must do."""

    result: int
    #: The calls into the CPU's fault handling, in order: (kind, address, write).
    calls: tuple[tuple[str, int, bool], ...]
    #: The entries after the call.
    entries: tuple[int, ...]
    #: On an error, the failing page's index; None on success.
    position: int | None = None
    #: Entries before the failing page that may be ``values[NONE]`` instead: the run of pages
    #: with no CPU entry just before it, which the kernel's walk may take as one hole.
    loose: frozenset[int] = frozenset()


def needs_fault(encoding: PfnEncoding, request: int, pte: Pte) -> tuple[bool, bool]:
    """Whether the entry ``request`` makes the walk fault ``pte``'s page, and for write.

    Without VALID, never. A device-private page only if DEVICE_PRIVATE is asked (for write if
    WRITE is). Any other page if the CPU maps nothing there, or if WRITE is asked and the CPU
    entry is not writable (then for write).
    """
    flags = encoding.flags
    if not request & flags[HmmPfnFlag.VALID]:
        return False, False
    write_asked = bool(request & flags[HmmPfnFlag.WRITE])
    if pte.kind is PteKind.DEVICE_PRIVATE:
        return bool(request & flags[HmmPfnFlag.DEVICE_PRIVATE]), write_asked
    mapped = pte.kind is PteKind.PRESENT
    write = write_asked and not (mapped and pte.write)
    return write or not mapped, write


def cpu_before(cpu: CpuState, calls: tuple[FaultCall, ...]) -> CpuState:
    """A copy of ``cpu`` as it was before ``calls`` changed it."""
    copy = CpuState(World(vmas=tuple(cpu.vmas), ptes=cpu.entries()))
    for call in reversed(calls):
        copy.set_pte(call.addr - call.addr % PAGE_SIZE, call.before)
    return copy


def fault_walk(cpu: CpuState, op: FaultSnapshot, *, blocking_retry: bool) -> FaultWalk:
    """The walk ``op`` must take over ``cpu`` (which it changes, as the candidate's calls do).

    Every fault allows retry, and says "do not wait" when ``op.block`` is false; a blocking
    call allows retry only if ``blocking_retry`` (the seed; the 2019 fix does not, FLT-6).
    """
    cpu.outcomes = dict(op.handler)
    entries = list(op.pfns())
    before = {i: cpu.pte(op.start + i * PAGE_SIZE) for i in range(len(entries))}
    none = op.encoding.values[HmmPfnValue.NONE]
    calls: list[tuple[str, int, bool]] = []
    allow_retry = blocking_retry or not op.block
    index, result = 0, 0
    while index < len(entries) and len(calls) <= 4 * len(entries):
        addr = op.start + index * PAGE_SIZE
        pte = cpu.pte(addr)
        if pte.kind is PteKind.POISON:
            result = -Errno.EFAULT
            break
        fault, write = needs_fault(op.encoding, entries[index], pte)
        if not fault:
            entries[index] = encode(op.encoding, pte)
            index += 1
        elif pte.kind is PteKind.MIGRATION:
            entries[index] = none  # the request is read once (FLT-2)
            calls.append((WAIT, addr, False))
            cpu.migration_entry_wait(addr)
        else:
            entries[index] = none
            calls.append((HANDLE, addr, write))
            answer = cpu.handle_mm_fault(addr, write, allow_retry, not op.block)
            if answer & VmFault.RETRY:
                result = -Errno.EBUSY
                break
            if answer & VM_FAULT_ERROR:
                result = -Errno.EFAULT
                break
    cpu.outcomes = {}
    if result == 0:
        return FaultWalk(result=0, calls=tuple(calls), entries=tuple(entries))
    entries[index:] = [none] * (len(entries) - index)
    loose: set[int] = set()
    hole = index - 1
    while hole >= 0 and before[hole].kind is PteKind.NONE:
        loose.add(hole)
        hole -= 1
    return FaultWalk(
        result=result,
        calls=tuple(calls),
        entries=tuple(entries),
        position=index,
        loose=frozenset(loose),
    )
