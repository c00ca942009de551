"""What the exhaustive engine enumerates: the :class:`Scope` (its worlds, each a root of the
search), the operations it allows from a model state (:func:`operations`), and the key by which
two sequences reach the same model state (:func:`state_key`), which the search merges on with
the candidate's own state.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, replace
from typing import Final, final

from hmm_ref import (
    DEFAULT_ENCODING,
    PAGE_SIZE,
    PTE_MIGRATION,
    PTE_NONE,
    PTE_POISON,
    Errno,
    FaultOutcome,
    PfnEncoding,
    Pte,
)

from .._case import VmaSpec
from .._generation import ENCODINGS, VMAS
from ._adapter import Capability
from ._model import Model
from ._ops import (
    CoreOperation,
    FaultSnapshot,
    InvalidateEnd,
    InvalidateStart,
    RangeDone,
    RegisterMirror,
    Release,
    SetCpuEntry,
    Snapshot,
    UnregisterMirror,
    World,
)

__all__ = ["SCOPE", "UNKNOWN_RANGE", "Scope", "operations", "state_key"]

_BASE = VMAS[0].start


def _pages(first: int, last: int) -> tuple[int, int]:
    """The span of pages ``first`` to ``last - 1`` of the first vma."""
    return _BASE + first * PAGE_SIZE, _BASE + last * PAGE_SIZE


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """What the exhaustive engine enumerates."""

    #: The worlds a case may start from, simplest first: each is a root of the search.
    worlds: tuple[World, ...]
    #: Mirror numbers a sequence may use, with or without ops.
    mirrors: int = 2
    #: Snapshots a sequence may take (refused ones included).
    ranges: int = 2
    #: The spans of snapshots and of invalidations, inside the first vma.
    spans: tuple[tuple[int, int], ...]
    #: Spans of invalidations alone, across vmas (an unmap or a reap runs over several).
    crossing: tuple[tuple[int, int], ...] = ()
    #: Snapshots the rules make fail or leave empty, as (vma, start, end).
    refused: tuple[tuple[int, int, int], ...]
    blockable: tuple[bool, ...] = (True, False)
    #: What each registered mirror may answer a start.
    replies: tuple[int, ...] = (0, -Errno.EAGAIN, -Errno.ENOMEM)
    #: What the CPU may change an entry to, inside a window.
    new_entries: tuple[Pte, ...] = (PTE_NONE, Pte.present(0x1AA, write=True))
    encodings: tuple[PfnEncoding, ...] = (DEFAULT_ENCODING,)
    #: Faults a sequence may make as its first range, for a candidate that declares them.
    faults: tuple[FaultSnapshot, ...] = ()

    @property
    def world(self) -> World:
        """The first world, the simplest."""
        return self.worlds[0]

    def describe(self) -> str:
        pages = len({addr for start, end in self.spans for addr in range(start, end, PAGE_SIZE)})
        return (
            f"{_count(len(self.worlds), 'world')}, "
            f"{_count(self.mirrors, 'mirror')}, {_count(self.ranges, 'snapshot')}, "
            f"{_count(pages, 'page')}, {_count(len(self.spans), 'span')}"
            f"{f' (and {len(self.crossing)} across vmas)' if self.crossing else ''}, "
            f"{_modes(set(self.blockable))}, "
            f"replies in {{{', '.join(_reply_name(r) for r in self.replies)}}}"
        )


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'s' * (number != 1)}"


def _modes(modes: set[bool]) -> str:
    if len(modes) == 2:
        return "both modes"
    return "blockable only" if True in modes else "non-blockable only"


def _reply_name(reply: int) -> str:
    return f"-{Errno(-reply).name}" if reply else "0"


_WRITABLE, _READ_ONLY = Pte.present(0x100, write=True), Pte.present(0x101)
_DEVICE = Pte.device_private(0x800, write=True)
#: A read-only frame whose top bit runs past 64 in an encoding that shifts by 13 or more,
#: which the entry must lose (RNG-1: entries are 64-bit words).
_HIGH = Pte.present(1 << 51)
#: The random engine's vmas with the special one unreadable too: which refusal wins (RNG-2).
_UNREADABLE_SPECIAL = (*VMAS[:3], replace(VMAS[3], read=False))


def _world(*ptes: Pte, vmas: tuple[VmaSpec, ...] = VMAS) -> World:
    """``vmas`` (the random engine's, unless given), with ``ptes`` on the first pages of the
    first."""
    return World(vmas=vmas, ptes=tuple((_pages(n, n + 1)[0], pte) for n, pte in enumerate(ptes)))


def _fault(
    vma: int,
    span: tuple[int, int],
    block: bool,
    requests: tuple[int, ...],
    handler: tuple[tuple[int, FaultOutcome], ...] = (),
) -> FaultSnapshot:
    return FaultSnapshot(
        range=0,
        vma=vma,
        start=span[0],
        end=span[1],
        encoding=DEFAULT_ENCODING,
        block=block,
        requests=requests,
        handler=handler,
    )


def _faults() -> tuple[FaultSnapshot, ...]:
    """The faults the scope may take, each in one range number (given when it is taken).

    Over the first two pages, both asked for write: mapped as asked, non-blocking; the handler
    waiting at the second page, non-blocking (-EBUSY); failing there, blocking (-EFAULT). A
    fault the rules refuse (an unreadable vma). Then the walk's other paths: asked for read
    over the first three pages; asked for write without VALID (nothing is faulted); every page
    of the world asked for read (the poisoned one ends the walk, -EFAULT); an empty page
    faulted in for read; and a span past its vma (-EINVAL, the requests left as they are).

    In the first world the first two pages are writable and read-only, and the third is device
    memory, not asked back. In the second the first page is device memory: asked with VALID but
    not DEVICE_PRIVATE, it is not faulted, and its entry then carries DEVICE_PRIVATE, which a
    walk that restarts from the start instead of where it was reads as a request to fault it
    back. The second page is under migration: the fault waits for it, restarts, and reads the
    page, read-only now, with the request it wrote there (values[NONE]), not the one asked.
    """
    both = _pages(0, 2)
    second = both[1] - PAGE_SIZE
    wait, error = ((second, FaultOutcome.WAIT),), ((second, FaultOutcome.ERROR),)
    beyond = (VMAS[0].end - PAGE_SIZE, VMAS[1].start + PAGE_SIZE)
    return (
        _fault(0, both, False, (3, 3)),
        _fault(0, both, False, (3, 3), wait),
        _fault(0, both, True, (3, 3), error),
        _fault(2, (VMAS[2].start, VMAS[2].end), True, (3, 3)),
        _fault(0, _pages(0, 3), False, (1, 1, 1)),
        _fault(0, both, False, (2, 2)),
        _fault(0, _pages(0, 4), True, (1, 1, 1, 1)),
        _fault(0, _pages(4, 5), False, (1,)),
        _fault(0, beyond, False, (1, 1)),
    )


#: Flags at the top, as the random engine's second encoding, shifted by 13 (the top bit of a
#: high frame falls off the word), and ``values[NONE]`` carrying VALID, as a driver may
#: choose: a page an invalidation clears must read as not valid all the same (RNG-3).
_TOP: Final = PfnEncoding(
    flags=ENCODINGS[1].flags, values=(0xE, ENCODINGS[1].flags[0] | 0xF, 0xE), pfn_shift=13
)

#: The default scope: the random engine's vmas, and two worlds of four pages of the first vma,
#: each a root of the search:
#:
#: - mapped writable, read-only (a frame too high for 64 bits in some encodings), to device
#:   memory, and poisoned: a snapshot shows every kind of entry;
#: - device memory, a page under migration (a fault waits for it, then restarts past the
#:   device page and finds the page read-only), a poisoned page that stops the walk and leaves
#:   the last entry unwritten, as the seed's walk does; and a special vma that is unreadable
#:   too, so that a snapshot of it shows which refusal wins.
#:
#: Spans that meet as the overlap rules care about, and one for invalidations alone, across the
#: first three vmas (over a refused snapshot of the unreadable one); snapshots in two encodings
#: (flags at the bottom, and at the top with NONE carrying VALID).
SCOPE: Final = Scope(
    worlds=(
        _world(_WRITABLE, _HIGH, _DEVICE, PTE_POISON),
        _world(_DEVICE, PTE_MIGRATION, PTE_POISON, _READ_ONLY, vmas=_UNREADABLE_SPECIAL),
    ),
    spans=(_pages(0, 1), _pages(1, 2), _pages(0, 2), _pages(0, 4)),
    crossing=((_BASE, VMAS[2].start + PAGE_SIZE),),
    refused=(
        (0, VMAS[0].end - PAGE_SIZE, VMAS[1].start + PAGE_SIZE),  # runs past its vma
        (1, VMAS[0].end - PAGE_SIZE, VMAS[1].start + PAGE_SIZE),  # starts before its vma
        (2, VMAS[2].start, VMAS[2].end),  # unreadable
        (3, VMAS[3].start, VMAS[3].end),  # special (and unreadable, in the second world)
        (0, _BASE, _BASE),  # empty
        (0, VMAS[0].end, VMAS[0].end),  # empty, at the very end of its vma
    ),
    encodings=(DEFAULT_ENCODING, _TOP),
    faults=_faults(),
)


#: A range number no snapshot ever takes: range_done on it is the misuse RNG-9 is about.
UNKNOWN_RANGE: Final = 1_000_000


def state_key(model: Model) -> Hashable:
    """Everything the rules' state holds, as a hashable value.

    Two sequences with equal keys have the same future as far as the rules can tell: the same
    operations are allowed next, and each is judged against the same expectations.
    """
    windows = sorted(model.windows)
    rank = {window: index for index, window in enumerate(windows)}
    ranges = tuple(
        (
            r.id,
            r.start,
            r.end,
            r.encoding,
            r.registered,
            r.valid,
            r.entries,
            r.unwritten,
            r.faulted,
            frozenset(rank.get(w, -1) for w in r.windows_at_snapshot),
            r.done,
            r.failed,
            r.at_release,
        )
        for r in sorted(model.ranges.values(), key=lambda r: r.id)
    )
    return (
        model.cpu.entries(),
        tuple(model.mirrors),
        frozenset(model.refused),
        frozenset(model.gone),
        frozenset(model.released_mirrors),
        model.poisoned,
        model.released,
        model.release_fixed,
        ranges,
        tuple(model.windows[w] for w in windows),
    )


def operations(model: Model, scope: Scope) -> Iterator[CoreOperation]:
    """Every operation the scope allows from ``model``'s state, simplest first.

    The caller's side of the protocol is kept the same way as in the random engine: anything
    :meth:`Model.caller_violation` refuses is left out.
    """
    used_mirrors = len(model.known | model.refused)
    used_ranges = len(model.ranges)
    candidates: list[CoreOperation] = []
    if used_mirrors < scope.mirrors:
        candidates.append(RegisterMirror(mirror=used_mirrors))
        candidates.append(RegisterMirror(mirror=used_mirrors, with_ops=False))
    if used_ranges < scope.ranges:
        candidates.extend(
            Snapshot(range=used_ranges, vma=0, start=start, end=end, encoding=encoding)
            for encoding in scope.encodings
            for start, end in scope.spans
        )
    candidates.extend(
        InvalidateStart(
            start=start,
            end=end,
            blockable=blockable,
            replies=tuple((m, r) for m, r in zip(mirrors, replies, strict=True) if r),
        )
        for mirrors in [sorted(model.mirrors)]
        for blockable in scope.blockable
        for start, end in scope.spans + scope.crossing
        for replies in itertools.product(scope.replies, repeat=len(mirrors))
    )
    candidates.extend(InvalidateEnd(start=start, end=end) for start, end in model.windows.values())
    candidates.extend(
        SetCpuEntry(addr=addr, pte=pte)
        for addr in model.changeable_pages()
        for pte in scope.new_entries
        if pte != model.cpu.pte(addr)
    )
    candidates.extend(RangeDone(range=range_id) for range_id in sorted(model.ranges))
    candidates.append(RangeDone(range=UNKNOWN_RANGE))
    candidates.extend(UnregisterMirror(mirror=m) for m in sorted(model.known | model.refused))
    # A number the scope never registers: unregistering it must do nothing (REG-3).
    candidates.append(UnregisterMirror(mirror=scope.mirrors))
    if used_ranges < scope.ranges:
        candidates.extend(
            Snapshot(range=used_ranges, vma=vma, start=start, end=end, encoding=DEFAULT_ENCODING)
            for vma, start, end in scope.refused
        )
    if not used_ranges and Capability.FAULT in model.capabilities:
        # A fault takes the first range only: what it does is the walk's, which no earlier range
        # changes, and each one more per state would double the cost of a search of depth 3.
        candidates.extend(replace(fault, range=used_ranges) for fault in scope.faults)
    if Capability.RELEASE in model.capabilities:
        candidates.append(Release())
    seen: set[CoreOperation] = set()
    for op in candidates:
        if op not in seen and model.caller_violation(op) is None:
            seen.add(op)
            yield op
