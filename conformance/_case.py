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

from hmm_ref import PAGE_SIZE, PTE_NONE, Pte

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
class CpuState:
    """The CPU side of a case, owned by the harness; candidates see it as a ``CpuView``."""

    def __init__(self, world: World) -> None:
        self._vmas = world.vmas
        self._ptes: dict[int, Pte] = {addr: pte for addr, pte in world.ptes if pte != PTE_NONE}

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
