"""What the core's generated cases are drawn from: the world, the case's swarm, the spans a
snapshot may be refused for, where an invalidation falls, and what a mirror answers. The state
machine (``_machine.py``) draws from these.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, final

from hypothesis import strategies as st

from hmm_ref import (
    PAGE_SIZE,
    PTE_MIGRATION,
    PTE_NONE,
    PTE_POISON,
    PTE_SWAP,
    Errno,
    FaultOutcome,
    HmmPfnValue,
    PfnEncoding,
    Pte,
    PteKind,
)

from .._case import CpuState
from .._generation import ENCODINGS, VMAS, ptes
from ._ops import (
    World,
)

__all__ = [
    "DRIVER_SPANS",
    "EMPTY",
    "HIGH",
    "KINDS",
    "KIND_DEVICE",
    "KIND_NONE",
    "LOW",
    "REFUSED",
    "REFUSED_SPANS",
    "REPLIES",
    "SNAPSHOTTABLE",
    "SNAPSHOTTABLE_PAGES",
    "WHERE",
    "Swarm",
    "core_ptes",
    "encodings",
    "entries_of",
    "seams",
    "swarms",
    "vma_span",
    "world_strategy",
]

LOW, HIGH = VMAS[0].start, VMAS[-1].end
SNAPSHOTTABLE: Final = (0, 1)
#: The pages of the snapshottable vmas, in address order: those a world gives entries to.
SNAPSHOTTABLE_PAGES: Final = tuple(
    addr for index in SNAPSHOTTABLE for addr in range(VMAS[index].start, VMAS[index].end, PAGE_SIZE)
)
#: Snapshots the rules make fail (RNG-2), by kind: (vma, start, end).
REFUSED_SPANS: Final = {
    "beyond": (0, VMAS[0].end - PAGE_SIZE, VMAS[1].start + PAGE_SIZE),
    "before": (1, VMAS[0].end - PAGE_SIZE, VMAS[1].start + PAGE_SIZE),
    "unreadable": (2, VMAS[2].start, VMAS[2].end),
    "special": (3, VMAS[3].start, VMAS[3].end),
}
#: Empty snapshots, which RNG-9 is about: inside the vma, or at its very end (RNG-2 refuses).
EMPTY: Final = {"empty": VMAS[0].start, "empty-at-end": VMAS[0].end}
REFUSED: Final = (*REFUSED_SPANS, *EMPTY)
#: Where a driver's fault asks for pages: as drawn three times in four ("ok"), else a span the
#: rules refuse, as a device may fault at any address of the process: a special or unreadable
#: vma, or across a vma's end.
DRIVER_SPANS: Final = st.sampled_from(("ok",) * 3 * len(REFUSED_SPANS) + tuple(REFUSED_SPANS))

#: Where a start falls when a range is live: over it, anywhere, or at its boundary; when a
#: window is open, also over exactly its span (a start nested in one of the same span).
WHERE: Final = ("over", "anywhere", "boundary", "window")

#: What a mirror answers; shrinking prefers the first (0).
REPLIES: Final = (0, -Errno.EAGAIN, -Errno.ENOMEM, -Errno.EIO)


_U64: Final = (1 << 64) - 1
#: The largest page frame number a CPU entry may name (``hmm_ref.Pte``'s bound).
_PFN_TOP: Final = (1 << 52) - 1

#: The CPU entries of the core's worlds: the shared ones, and pages anywhere in the physical
#: address space, whose entries need all 64 bits once shifted.
core_ptes: Final = st.one_of(
    ptes,
    st.builds(Pte.present, st.integers(0, _PFN_TOP), write=st.booleans()),
    st.builds(Pte.device_private, st.integers(0, _PFN_TOP), write=st.booleans()),
)


@st.composite
def _drawn_encoding(draw: st.DrawFn) -> PfnEncoding:
    """Any encoding hmm.h allows: a VALID bit anywhere, WRITE and DEVICE_PRIVATE bits or none,
    any shift, and values that may carry the VALID bit or every bit."""
    bit = st.integers(0, 63).map(lambda at: 1 << at)
    valid = draw(bit, label="VALID")
    flags = (valid, draw(bit | st.just(0)), draw(bit | st.just(0)))
    value = st.sampled_from((0, _U64, valid)) | st.integers(0, _U64) | bit.map(lambda b: b | valid)
    error, none, special = (draw(value, label=name.name) for name in HmmPfnValue)
    if none in (error, special):  # hmm.h: NONE differs from both
        none = next(v for v in (error ^ valid, error ^ 1, error ^ 2) if v not in (error, special))
    return PfnEncoding(
        flags=flags,
        values=(error, none, special),
        pfn_shift=draw(st.integers(0, 63), label="pfn_shift"),
    )


#: A snapshot's encoding: one of the drivers' (the first shrinks first), or any other.
encodings: Final = st.sampled_from(ENCODINGS) | _drawn_encoding()


#: The kinds of entry a page may hold: a frame the CPU maps (near or anywhere), no mapping,
#: device-private memory, a swap, a migration or a poisoned entry.
KINDS: Final = (
    st.builds(
        Pte.present, st.integers(0x100, 0x1FF) | st.integers(0, _PFN_TOP), write=st.booleans()
    ),
    st.just(PTE_NONE),
    st.builds(
        Pte.device_private,
        st.integers(0x800, 0x8FF) | st.integers(0, _PFN_TOP),
        write=st.booleans(),
    ),
    st.just(PTE_SWAP),
    st.just(PTE_MIGRATION),
    st.just(PTE_POISON),
)


def entries_of(kinds: tuple[int, ...]) -> st.SearchStrategy[Pte]:
    """CPU entries of the :data:`KINDS` numbered ``kinds``; with none, of every kind, mixed as
    :data:`core_ptes` mixes them."""
    return st.one_of(*(KINDS[kind] for kind in kinds)) if kinds else core_ptes


def vma_span(vma: int, first: int, length: int) -> tuple[int, int]:
    """Up to ``length`` pages of vma number ``vma`` from its page ``first`` (its last page if
    ``first`` is beyond it), cut at the vma's end."""
    span = VMAS[vma]
    start = span.start + min(first, span.npages - 1) * PAGE_SIZE
    return start, min(start + length * PAGE_SIZE, span.end)


#: The numbers in :data:`KINDS` of no mapping and of device-private memory, which make seams.
KIND_NONE, KIND_DEVICE = 1, 2
#: Entries a fault for read must fill: no mapping, or one swapped or migrating.
_FILLED: Final = frozenset({PteKind.NONE, PteKind.SWAP, PteKind.MIGRATION})


def seams(cpu: CpuState) -> list[tuple[int, int]]:
    """The seams of the CPU's page table, as (vma, page): a device-private page just below one
    a fault must fill, in the same snapshottable vma."""
    return [
        (vma, index)
        for vma in SNAPSHOTTABLE
        for index in range(VMAS[vma].npages - 1)
        if cpu.pte(VMAS[vma].start + index * PAGE_SIZE).kind is PteKind.DEVICE_PRIVATE
        and cpu.pte(VMAS[vma].start + (index + 1) * PAGE_SIZE).kind in _FILLED
    ]


def world_strategy(
    kinds: tuple[int, ...] = (), *, refusals: bool = False
) -> st.SearchStrategy[World]:
    """The fixed vmas, the special one readable or not (which test the seed makes first, the
    special one, then shows; with ``refusals``, never readable), with an entry of ``kinds``
    (:func:`entries_of`) drawn for each page of the snapshottable ones."""
    pages = SNAPSHOTTABLE_PAGES
    entries = st.lists(entries_of(kinds), min_size=len(pages), max_size=len(pages))
    readable = st.just(False) if refusals else st.sampled_from((True, False))
    special = readable.map(lambda read: replace(VMAS[3], read=read))
    return st.tuples(entries, special).map(
        lambda drawn: World(
            vmas=(*VMAS[:3], drawn[1]),
            ptes=tuple(
                (addr, pte) for addr, pte in zip(pages, drawn[0], strict=True) if pte != PTE_NONE
            ),
        )
    )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Swarm:
    """The shape of one case, drawn before its first operation (swarm testing, Groce et al.,
    ISSTA 2012: a case that may use fewer features uses those it has more deeply).

    Hypothesis already switches whole rules off per case; a swarm also varies what the rules
    that remain draw, so that the rarer states a bug can hide in come up in some cases often,
    not in every case seldom. Each field shrinks to the plain case.
    """

    #: Mirrors registered before the first rule: up to five, so that several are often live.
    mirrors: int
    #: Then the oldest of them unregistered, three or more registered first, so that two or
    #: more stay around the gap.
    retire_oldest: bool
    #: A snapshot taken before the first mirror registers, live while they do.
    early_snapshot: bool
    #: Invalidation windows opened over one span after the mirrors, still open (two: nested).
    windows: int
    #: Whether those starts are blockable (the OOM reaper's are not).
    windows_blockable: bool
    #: The encodings this case's snapshots draw from, every path that snapshots included.
    encodings: tuple[PfnEncoding, ...]
    #: The requests this case's faults ask of a page (``FaultSnapshot.requests``' bits), the
    #: first asking for the page (a fault that asks nothing is a snapshot): some cases ask
    #: every page for write, some only for read.
    requests: tuple[int, ...]
    #: What the CPU's fault handler may do at a page in this case: some cases only map
    #: pages, some make every fault wait, some fail it.
    outcomes: tuple[FaultOutcome, ...]
    #: Operations before the mm may be released (past the budget's steps: never): the steps
    #: after release mostly meet its refusals, so a case that releases early spends itself
    #: there.
    release_after: int
    #: The kinds of CPU entry (:data:`KINDS`, by number) this case's world holds and its CPU
    #: changes to, besides the mixture of all: some worlds are all holes, some all migrating
    #: pages, as a fault's bugs need. None: the mixture only.
    kinds: tuple[int, ...]
    #: Where this case's snapshots that stay live fall, as (vma, first page, pages): some
    #: cases take the same few spans again and again, as a driver's threads mirroring one
    #: buffer do, so that ranges of equal bounds are live together. None: anywhere. (Faults
    #: draw their own: over spans already faulted in, they would find nothing to fault.)
    spans: tuple[tuple[int, int, int], ...]
    #: Whether this case's faults start at a seam, where one exists: a device-private page
    #: just below a page the fault must fill. There the walk writes the device entry, which
    #: the caller never asks to fault, then restarts past it after the handler. Drawn
    #: anywhere, a fault's span seldom starts there: it often starts lower, at a page that
    #: stops the walk first (poison, a failing handler). The machine draws it, for a core
    #: that faults only (``FaultRules._seamed``), and gives such a case holes and device pages.
    seams: bool = False
    #: Whether this case dwells on what the rules refuse: its world's special vma is
    #: unreadable too (only there does the order of RNG-2's two tests show), and the driver's
    #: fault path asks for refused spans as well (:data:`DRIVER_SPANS`). Elsewhere those come
    #: from the snapshot and fault rules alone, in few cases.
    refusals: bool = False

    def span(self, vma: int, first: int, length: int) -> tuple[int, int, int]:
        """Where a snapshot drawn at page ``first`` of vma ``vma`` (``length`` pages) falls, as
        (vma, start, end): there (:func:`vma_span`), or on the case's span that ``first``
        picks."""
        if self.spans:
            vma, first, length = self.spans[first % len(self.spans)]
        return (vma, *vma_span(vma, first, length))


def swarms() -> st.SearchStrategy[Swarm]:
    """A case's swarm: the plain one (a few mirrors, the default encoding) shrinks first."""
    return st.builds(
        Swarm,
        mirrors=st.integers(0, 5),
        retire_oldest=st.booleans(),
        early_snapshot=st.booleans(),
        windows=st.integers(0, 2),
        windows_blockable=st.booleans(),
        encodings=st.lists(encodings, min_size=1, max_size=3, unique=True).map(tuple),
        requests=st.tuples(
            st.sampled_from((1, 3, 5, 7)), st.lists(st.integers(0, 7), max_size=2)
        ).map(lambda drawn: tuple(dict.fromkeys((drawn[0], *drawn[1])))),
        outcomes=st.lists(st.sampled_from(FaultOutcome), min_size=1, max_size=3, unique=True).map(
            tuple
        ),
        release_after=st.sampled_from(range(0, 81, 8)),
        kinds=st.tuples(*(st.booleans() for _ in KINDS)).map(
            lambda inside: tuple(kind for kind, chosen in enumerate(inside) if chosen)
        ),
        spans=st.just(())
        | st.lists(
            st.tuples(st.sampled_from(SNAPSHOTTABLE), st.integers(0, 7), st.integers(1, 8)),
            min_size=1,
            max_size=2,
        ).map(tuple),
        refusals=st.booleans(),
    )
