"""How the core side shortens a failing case (:func:`conformance._engine.minimise` drives it).

:func:`edits` lists the variants of a case to try; :func:`order` says which of two cases is
further along. The minimiser keeps the first variant that still fails one of the same rules and
orders lower, then starts over from it: the edits tried first decide where it goes, and the
ones after them are tried only where those have nothing left to give.

First, each operation deleted on its own, then each two neighbours swapped (kept when the swap
makes the case fail a step earlier, which cuts it: a snapshot taken inside a window fails at
the window's end, and taken before the start, at the start). Those two were the whole shrinker
before issue 13 and still come first, so a case they shrink all the way shrinks to the very
same case as before. Then what one deletion at a time cannot reach:

- operations that the caller's side of the protocol ties together, deleted at once
  (:func:`_ties`). A start and the end that closes its window: without the start, the end has
  no window to close, which the replay refuses as the caller's fault (END-3); without the end,
  the window stays open, so a range snapshotted later is taken inside it and a core that counts
  the invalidations in flight (5.2's) counts one more at every later end, either of which can
  hide the failure. A snapshot and the range_dones of its range: without the snapshot each is
  a range_done on a range that never existed, which RNG-9 judges; without a range_done the
  range stays registered, and unregistering the last mirror is then refused (the seed's bug
  #11). Observes need no tie: the harness looks only at the ranges it knows;
- a CPU change folded into the world the case starts from, so that the window it needed can go;
- each swap again, followed by each shorter edit (one deletion, or one of the two above): a
  reorder that only a deletion after it makes worth it (the swap alone fails no earlier and is
  no shorter, so it is not kept);
- each operation moved further than one place, kept, like a swap, when the case then fails a
  step earlier: a start whose window a bug needs nothing inside of can move past what the
  window held, to where it fails at once, and its end falls away behind the failure. Adjacent
  swaps reach that only through cases that fail no earlier, which are never kept.

Left out: a register tied to its mirror's unregister (deleting the unregister alone is always
allowed, and then the register can go; only a core that one more registered mirror keeps from
failing would need both at once), and renumbering mirrors and ranges (no deletion makes two
operations share a number, and the numbers change neither a case's length nor what a core
does).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

from .._case import with_entry
from .._engine import swapped
from ._ops import (
    Case,
    CoreOperation,
    InvalidateEnd,
    InvalidateStart,
    RangeDone,
    SetCpuEntry,
    Snapshot,
)

__all__ = ["edits", "order"]


def edits(case: Case) -> Iterator[Case]:
    """Variants of ``case`` for the minimiser, each no longer than it, each once (the module's
    docstring says in which order, and why)."""
    seen = {case}
    swaps = [Case(world=case.world, ops=ops) for ops in swapped(case.ops)]
    moves = (Case(world=case.world, ops=ops) for ops in _moved(case.ops))
    for variant in chain(_deletions(case), swaps, _joint(case), *map(_shorter, swaps), moves):
        if variant not in seen:
            seen.add(variant)
            yield variant


def order(case: Case) -> tuple[int, ...]:
    """Shorter first, and nothing else: every edit the minimiser keeps makes a case shorter
    (a swap only when it makes the case fail earlier), so no reorder of the same length ever
    replaces a case another seed's run or an earlier version shrank to."""
    return (len(case.ops),)


def _deletions(case: Case) -> Iterator[Case]:
    """Each case one operation shorter."""
    ops = case.ops
    for index in range(len(ops)):
        yield Case(world=case.world, ops=ops[:index] + ops[index + 1 :])


def _moved(ops: tuple[CoreOperation, ...]) -> Iterator[tuple[CoreOperation, ...]]:
    """``ops`` with each operation moved to each place two or more away from its own (one away
    is a swap), the first operation first, to the front first."""
    for index, op in enumerate(ops):
        rest = ops[:index] + ops[index + 1 :]
        for place in range(len(ops)):
            if abs(place - index) > 1:
                yield (*rest[:place], op, *rest[place:])


def _shorter(case: Case) -> Iterator[Case]:
    """Every shorter variant of ``case``: one operation deleted, operations tied together
    deleted, or a CPU change folded into the world."""
    yield from _deletions(case)
    yield from _joint(case)


def _joint(case: Case) -> Iterator[Case]:
    """``case`` without each group of operations tied together, then with each CPU change
    folded into its world."""
    ops = case.ops
    for tied in _ties(ops):
        yield Case(world=case.world, ops=tuple(op for i, op in enumerate(ops) if i not in tied))
    for index, op in enumerate(ops):
        if isinstance(op, SetCpuEntry):
            world = with_entry(case.world, op.addr, op.pte)
            yield Case(world=world, ops=ops[:index] + ops[index + 1 :])


def _ties(ops: tuple[CoreOperation, ...]) -> Iterator[frozenset[int]]:
    """Groups of two operations or more (by index) to delete together: each start with the end
    that closes its window (:func:`_closing`), and each snapshot with the range_dones of its
    range."""
    for index, op in enumerate(ops):
        if isinstance(op, InvalidateStart):
            close = _closing(ops, index)
            tied = frozenset() if close is None else frozenset({index, close})
        elif isinstance(op, Snapshot):
            tied = frozenset({index}).union(
                later
                for later in range(index + 1, len(ops))
                if isinstance(done := ops[later], RangeDone) and done.range == op.range
            )
        else:
            continue
        if len(tied) > 1:
            yield tied


def _closing(ops: tuple[CoreOperation, ...], index: int) -> int | None:
    """The index of the end that closes the window the start at ``index`` opens, if any.

    An end closes the oldest open window of its span, as the model has it. A start is taken to
    open one: a refused non-blockable start opens none, and then the pair is only a guess,
    which the replay judges like any other variant."""
    start = ops[index]
    assert isinstance(start, InvalidateStart)
    span = (start.start, start.end)
    # Windows of this span still open when this one opens are closed first: skip their ends.
    before = ops[:index]
    earlier = sum(isinstance(op, InvalidateStart) and (op.start, op.end) == span for op in before)
    earlier -= sum(isinstance(op, InvalidateEnd) and (op.start, op.end) == span for op in before)
    for later in range(index + 1, len(ops)):
        op = ops[later]
        if isinstance(op, InvalidateEnd) and (op.start, op.end) == span:
            if earlier <= 0:
                return later
            earlier -= 1
    return None
