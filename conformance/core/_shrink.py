"""How the core side shortens a failing case (:func:`conformance._engine.minimise` drives it).

:func:`edits` lists the variants of a case to try; :func:`order` says which of two cases is
further along. The minimiser keeps the first variant that still fails one of the same rules and
orders lower, then starts over from it: the edits tried first decide where it goes, and the
ones after them are tried only where those have nothing left to give.

Each operation deleted on its own, then each two neighbours swapped (kept when the swap makes
the case fail a step earlier, which cuts it: a snapshot taken inside a window fails at the
window's end, and taken before the start, at the start).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

from .._engine import swapped
from ._ops import Case

__all__ = ["edits", "order"]


def edits(case: Case) -> Iterator[Case]:
    """Variants of ``case`` for the minimiser, each no longer than it (the module's docstring
    says in which order, and why)."""
    swaps = [Case(world=case.world, ops=ops) for ops in swapped(case.ops)]
    yield from chain(_deletions(case), swaps)


def order(case: Case) -> tuple[int, ...]:
    """Shorter first, and nothing else: every edit the minimiser keeps makes a case shorter
    (a swap only when it makes the case fail earlier)."""
    return (len(case.ops),)


def _deletions(case: Case) -> Iterator[Case]:
    """Each case one operation shorter."""
    ops = case.ops
    for index in range(len(ops)):
        yield Case(world=case.world, ops=ops[:index] + ops[index + 1 :])
