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
    PTE_NONE,
    PTE_POISON,
    Errno,
    FaultOutcome,
    PfnEncoding,
    Pte,
)

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
            f"{_count(pages, 'page')}, {_count(len(self.spans), 'span')}, "
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


def _world(*ptes: Pte) -> World:
    """The random engine's vmas, with ``ptes`` on the first pages of the first."""
    return World(vmas=VMAS, ptes=tuple((_pages(n, n + 1)[0], pte) for n, pte in enumerate(ptes)))


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

    Over the first two pages (writable, read-only), both asked for write: mapped as asked,
    non-blocking; the handler waiting at the read-only page, non-blocking (-EBUSY); failing
    there, blocking (-EFAULT). A fault the rules refuse (an unreadable vma). Then the walk's
    other paths: asked for read over the first three pages (the third is device memory, not
    asked back); asked for write without VALID (nothing is faulted); every page of the world
    asked for read (the poisoned one ends the walk, -EFAULT); an empty page faulted in for read;
    and a span past its vma (-EINVAL, the requests left as they are).
    """
    both = _pages(0, 2)
    read_only = both[1] - PAGE_SIZE
    wait, error = ((read_only, FaultOutcome.WAIT),), ((read_only, FaultOutcome.ERROR),)
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


#: The default scope: the random engine's vmas, and two worlds of four pages of the first vma
#: (mapped writable, read-only, to device memory and poisoned, so that a snapshot shows every
#: kind of entry; then the same with the poisoned page before the device page, so that the
#: walk stops there and leaves the last entry unwritten, as the seed's does); spans that meet
#: as the overlap rules care about; snapshots in two encodings (flags at the bottom and at the
#: top).
SCOPE: Final = Scope(
    worlds=(
        _world(_WRITABLE, _READ_ONLY, _DEVICE, PTE_POISON),
        _world(_WRITABLE, _READ_ONLY, PTE_POISON, _DEVICE),
    ),
    spans=(_pages(0, 1), _pages(1, 2), _pages(0, 2), _pages(0, 4)),
    refused=(
        (0, VMAS[0].end - PAGE_SIZE, VMAS[1].start + PAGE_SIZE),  # runs past its vma
        (1, VMAS[0].end - PAGE_SIZE, VMAS[1].start + PAGE_SIZE),  # starts before its vma
        (2, VMAS[2].start, VMAS[2].end),  # unreadable
        (3, VMAS[3].start, VMAS[3].end),  # special
        (0, _BASE, _BASE),  # empty
        (0, VMAS[0].end, VMAS[0].end),  # empty, at the very end of its vma
    ),
    encodings=ENCODINGS[:2],
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
        for start, end in scope.spans
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
