"""How the driver side shortens a failing case (:func:`conformance._engine.minimise` drives it).

:func:`edits` lists the variants of a case to try, shorter ones first; :func:`order` says which
of two cases is further along, so that a same-length reorder can be kept without ever being
undone. docs/driver-side.md, "Shrinking", says what each edit is for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final

from .._case import World, with_entry
from .._engine import swapped
from ._ops import (
    CpuSetEntry,
    DriverCase,
    DriverOp,
    Exit,
    NotifierEnd,
    NotifierStart,
    RunFault,
    StartFault,
    StepFault,
)

__all__ = ["edits", "order"]


def edits(case: DriverCase) -> Iterator[DriverCase]:
    """Variants of ``case`` for the minimiser, shorter ones first (:func:`_shorter`), then
    two neighbours swapped (the same length, kept if it orders lower), then each swap with
    each shorter edit after it: a reorder that only a deletion after it makes worth it, in
    the direction :func:`order` would not keep on its own."""
    yield from _shorter(case)
    swaps = [
        DriverCase(world=case.world, encoding=case.encoding, ops=ops) for ops in swapped(case.ops)
    ]
    yield from swaps
    for swap in swaps:
        yield from _shorter(swap)


def order(case: DriverCase) -> tuple[int, ...]:
    """Shorter first; then the faults' operations before the events around them, so that an
    event moves after the fault steps it can follow (a window opened before a snapshot moves
    after it, and then its end can go)."""
    return (len(case.ops), *(_RANK[type(op)] for op in case.ops))


#: The order of same-length driver cases (:meth:`DriverSide.order`): faults, then events.
_RANK: Final[Mapping[type[DriverOp], int]] = {
    StartFault: 0,
    StepFault: 1,
    RunFault: 2,
    CpuSetEntry: 3,
    NotifierStart: 4,
    NotifierEnd: 5,
    Exit: 6,
}


def _shorter(case: DriverCase) -> Iterator[DriverCase]:
    """Shorter variants of ``case``: a run of operations deleted, longest runs first (halves,
    quarters, ..., single operations); a CPU change folded into the world it starts from; two
    or more steps of one fault in a row made one run of it; a run of two or more deleted and
    one more step given to a fault that remains (what the run did, another fault may do in one
    step: map the page the callback must clear)."""
    ops = case.ops

    def variant(new_ops: tuple[DriverOp, ...], world: World = case.world) -> DriverCase:
        return DriverCase(world=world, encoding=case.encoding, ops=new_ops)

    size = max(1, len(ops) // 2)
    while True:
        for index in range(len(ops) - size + 1):
            yield variant(ops[:index] + ops[index + size :])
        if size == 1:
            break
        size //= 2
    for index, op in enumerate(ops):
        if isinstance(op, CpuSetEntry):
            yield variant(ops[:index] + ops[index + 1 :], with_entry(case.world, op.addr, op.pte))
    for index, op in enumerate(ops):
        if not isinstance(op, StepFault) or (index and ops[index - 1] == op):
            continue
        end = index
        while end < len(ops) and ops[end] == op:
            end += 1
        if end - index >= 2:
            yield variant((*ops[:index], RunFault(fault=op.fault), *ops[end:]))
    yield from (variant(shorter) for shorter in _steps_for_runs(ops))


def _steps_for_runs(ops: tuple[DriverOp, ...]) -> Iterator[tuple[DriverOp, ...]]:
    """``ops`` with a run of two or more deleted and, in its place, one more step of a fault
    that the rest steps, right after that fault's last step: one operation shorter at least."""
    for size in range(len(ops), 1, -1):
        for index in range(len(ops) - size + 1):
            rest = ops[:index] + ops[index + size :]
            last: dict[int, int] = {}
            for position, op in enumerate(rest):
                if isinstance(op, StepFault):
                    last[op.fault] = position
            for fault, position in last.items():
                yield (*rest[: position + 1], StepFault(fault=fault), *rest[position + 1 :])
