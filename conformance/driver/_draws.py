"""What the driver machine draws beside operations: the events that race a device fault.

A fault is four steps apart (snapshot, lock, check, unlock), and anything the rest of the system
does can come between two of them. The CPU's invalidation, the OOM reaper's and the process's
exit are the events a driver's fault path must survive; a :class:`Race` says which comes, after
how many of the fault's steps, and over which part of the fault's span. Each field shrinks to
the simplest race: a CPU change over the whole span, right after the snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, final

from hypothesis import strategies as st

from hmm_ref import PAGE_SIZE

from .._generation import VMAS

__all__ = ["RACE_EVENTS", "Race", "races"]

#: What can come between two steps of a fault; shrinking prefers the first.
RACE_EVENTS: Final = ("cpu", "reaper", "exit")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Race:
    """An event between two steps of a fault."""

    event: Literal["cpu", "reaper", "exit"]
    #: How many of the fault's steps come first: 1, right after its snapshot (half the time),
    #: or 2 or 3, while it holds D after its lock or its check.
    after: int = 1
    #: Over what: the fault's whole span, one page of it (the rest of the snapshot stays
    #: fresh, so a commit of it is seen), the whole vma (as the OOM reaper does), or every
    #: page the device maps (the work a callback must do while the fault holds its lock).
    over: Literal["span", "page", "vma", "device"] = "span"
    #: Which page of the span, counted from its start (wrapped to the span's length).
    page: int = 0

    def span(self, start: int, end: int, mapped: Sequence[int] = ()) -> tuple[int, int]:
        """The span the event covers, for a fault over ``[start, end)`` while the device maps
        the pages ``mapped``."""
        if self.over == "span" or (self.over == "device" and not mapped):
            return start, end
        if self.over == "device":
            return min(mapped), max(mapped) + PAGE_SIZE
        if self.over == "page":
            pages = max(1, (end - start) // PAGE_SIZE)
            first = start + (self.page % pages) * PAGE_SIZE
            return first, first + PAGE_SIZE
        vma = next((v for v in VMAS if v.start <= start < v.end), VMAS[0])
        return vma.start, vma.end


def _event(draw: int) -> Literal["cpu", "reaper", "exit"]:
    """Two draws in ten are the exit, which ends what the case can do with the mm."""
    return "exit" if draw >= 8 else RACE_EVENTS[draw % 2]


def races() -> st.SearchStrategy[Race]:
    """Every event (the exit two times in ten), after one to three steps, over any of the
    four spans."""
    return st.builds(
        Race,
        event=st.integers(0, 9).map(_event),
        after=st.sampled_from((1, 2, 1, 3)),
        # One page, half the time: over the whole span the seed clears the snapshot's every
        # entry, so a stale snapshot committed anyway commits nothing and shows nothing.
        over=st.sampled_from(("span", "page", "vma", "device", "page")),
        page=st.integers(0, 7),
    )
