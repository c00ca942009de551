"""What the core's generated cases are drawn from: the world, the spans a snapshot may be
refused for, where an invalidation falls, and what a mirror answers. The state machine
(``_machine.py``) draws from these.
"""

from __future__ import annotations

from typing import Final

from hypothesis import strategies as st

from hmm_ref import (
    PAGE_SIZE,
    PTE_NONE,
    Errno,
)

from .._generation import VMAS, ptes
from ._ops import (
    World,
)

__all__ = [
    "EMPTY",
    "HIGH",
    "LOW",
    "REFUSED",
    "REFUSED_SPANS",
    "REPLIES",
    "SNAPSHOTTABLE",
    "WHERE",
    "world_strategy",
]

LOW, HIGH = VMAS[0].start, VMAS[-1].end
SNAPSHOTTABLE: Final = (0, 1)
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

#: Where a start falls when a range is live: over it, anywhere, or at its boundary.
WHERE: Final = ("over", "anywhere", "boundary")

#: What a mirror answers; shrinking prefers the first (0).
REPLIES: Final = (0, -Errno.EAGAIN, -Errno.ENOMEM, -Errno.EIO)


def world_strategy() -> st.SearchStrategy[World]:
    """The fixed vmas, with a drawn entry for each page of the snapshottable ones."""
    pages = [
        vma.start + index * PAGE_SIZE
        for vma in (VMAS[i] for i in SNAPSHOTTABLE)
        for index in range(vma.npages)
    ]
    entries = st.lists(ptes, min_size=len(pages), max_size=len(pages))
    return entries.map(
        lambda drawn: World(
            vmas=VMAS,
            ptes=tuple(
                (addr, pte) for addr, pte in zip(pages, drawn, strict=True) if pte != PTE_NONE
            ),
        )
    )
