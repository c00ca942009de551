"""The core's checks of the faulting snapshot: FLT (docs/spec.md), one pure ``check_<ID>`` per
rule over (model before, operation, observation).

Each check works out the walk the rules demand (:func:`fault_walk`) from the CPU side as it was
before the call, which the observed calls into the fault handler say how to restore.
"""

from __future__ import annotations

from hmm_ref import PAGE_SIZE, HmmPfnValue, describe_result

from .._verdicts import Verdict
from ._adapter import RangeView
from ._faulting import HANDLE, FaultWalk, cpu_before, fault_walk
from ._judging import fail, ok, result_of
from ._model import Model, Observation, snapshot_outcome
from ._ops import FaultSnapshot, Operation

__all__ = [
    "check_FLT_1",
    "check_FLT_2",
    "check_FLT_3",
    "check_FLT_4",
    "check_FLT_5",
    "check_FLT_6",
]


#: The last walk worked out, with the step it is for: FLT-2, FLT-3 and FLT-4 judge one step.
_last: list[tuple[Model, FaultSnapshot, Observation, FaultWalk]] = []


def _walk(m: Model, op: FaultSnapshot, obs: Observation) -> FaultWalk:
    """The walk the rules demand. Under strict a blocking call must not allow retry (FLT-6);
    a candidate that does takes the seed's path, which FLT-6 alone reports (docs/spec.md 1.3:
    a seed defect's consequence is not a second failure), so the others judge that path."""
    if _last and _last[0][0] is m and _last[0][1] is op and _last[0][2] is obs:
        return _last[0][3]
    seed_path = any(call.allow_retry for call in obs.faults if call.kind == HANDLE)
    blocking_retry = not m.strict() or seed_path
    walk = fault_walk(cpu_before(m.cpu, obs.faults), op, blocking_retry=blocking_retry)
    _last[:] = [(m, op, obs, walk)]
    return walk


def _walked(m: Model, op: Operation, obs: Observation) -> tuple[FaultSnapshot, FaultWalk] | None:
    """A fault step that walks (is not refused), and the walk the rules demand of it."""
    if not isinstance(op, FaultSnapshot) or _refusal(m, op) is not None:
        return None
    return op, _walk(m, op, obs)


def _refusal(m: Model, op: Operation) -> tuple[int, HmmPfnValue | None] | None:
    """The refusal the rules demand of a fault step, or None for another step or a walk."""
    if not isinstance(op, FaultSnapshot):
        return None
    refusal = snapshot_outcome(m.cpu.vmas[op.vma], op.start, op.end)
    return refusal if refusal[0] != 0 else None


def check_FLT_1(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """FLT-1: a fault is refused as a snapshot is: bounds, special and unreadable vmas."""
    refusal = _refusal(m, op)
    if refusal is None or not isinstance(op, FaultSnapshot):
        return None
    expected, fill = refusal
    if obs.result != expected:
        return fail("FLT-1", f"fault returned {result_of(obs)}, not {describe_result(expected)}")
    if obs.faults:
        return fail("FLT-1", f"the refused fault called {obs.faults[0].kind}")
    view = obs.range(op.range)
    if view is not None:
        if view.registered:
            return fail("FLT-1", f"the refused fault r{op.range} is registered")
        want = op.pfns() if fill is None else (op.encoding.values[fill],) * len(op.requests)
        if view.entries != want:
            what = "left as the caller filled them" if fill is None else f"values[{fill.name}]"
            return fail("FLT-1", f"the entries of r{op.range} are not {what}")
    return ok("FLT-1")


def check_FLT_2(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """FLT-2: the pages asked for, and only they, are faulted, first to last; a migration is
    waited for; nothing is faulted after the handler failed."""
    if not isinstance(op, FaultSnapshot) or _refusal(m, op) is not None:
        return None
    want = _walk(m, op, obs).calls
    got = tuple((call.kind, call.addr, call.write) for call in obs.faults)
    for index, (seen, wanted) in enumerate(zip(got, want, strict=False)):
        if seen != wanted:
            return fail("FLT-2", f"call {index} was {_call(seen)}, not {_call(wanted)}")
    if len(got) != len(want):
        more = got[len(want)] if len(got) > len(want) else want[len(got)]
        verb = "then called" if len(got) > len(want) else "never called"
        return fail(
            "FLT-2", f"after {min(len(got), len(want))} calls the fault {verb} {_call(more)}"
        )
    return ok("FLT-2")


def _call(call: tuple[str, int, bool]) -> str:
    kind, addr, write = call
    return f"{kind}({addr:#x}{', write' if write and kind == HANDLE else ''})"


def check_FLT_3(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """FLT-3: a fault that returns 0 leaves a registered, valid range whose entries encode the
    CPU page table after its faults."""
    walked = _walked(m, op, obs)
    if walked is None or walked[1].result != 0:
        return None
    op, walk = walked
    if obs.result != 0:
        return fail("FLT-3", f"fault returned {result_of(obs)}, not 0")
    view = obs.range(op.range)
    if view is not None and not (view.registered and view.valid):
        return fail("FLT-3", f"r{op.range} is registered={view.registered} valid={view.valid}")
    if view is not None and len(view.entries) != len(walk.entries):
        return fail("FLT-3", f"r{op.range} has {len(view.entries)} entries, not {len(op.requests)}")
    for index, got, wanted in _differences(view, walk, frozenset()):
        pte = m.cpu.pte(op.start + index * PAGE_SIZE)
        return fail(
            "FLT-3",
            f"entry {index} of r{op.range} is {got:#x}, not {wanted:#x} (the encoding of "
            f"{pte.kind.value} after the faults)",
        )
    return ok("FLT-3")


def _differences(
    view: RangeView | None, walk: FaultWalk, loose: frozenset[int], none: int = -1
) -> list[tuple[int, int, int]]:
    """The entries of ``view`` that are not the walk's, but for ``loose`` ones equal to ``none``."""
    if view is None:
        return []
    return [
        (index, got, wanted)
        for index, (got, wanted) in enumerate(zip(view.entries, walk.entries, strict=True))
        if got != wanted and not (index in loose and got == none)
    ]


def check_FLT_4(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """FLT-4: a handler that retried gives -EBUSY, a failed fault or a poisoned entry -EFAULT;
    the entries from the failing page on are values[NONE]; nothing stays registered."""
    walked = _walked(m, op, obs)
    if walked is None or walked[1].result == 0:
        return None
    op, walk = walked
    if obs.result != walk.result:
        return fail("FLT-4", f"fault returned {result_of(obs)}, not {describe_result(walk.result)}")
    view = obs.range(op.range)
    if view is not None and view.registered:
        return fail("FLT-4", f"r{op.range} is still registered after the error")
    if view is not None and len(view.entries) != len(walk.entries):
        return fail("FLT-4", f"r{op.range} has {len(view.entries)} entries, not {len(op.requests)}")
    none = op.encoding.values[HmmPfnValue.NONE]
    for index, got, wanted in _differences(view, walk, walk.loose, none):
        return fail(
            "FLT-4",
            f"entry {index} of r{op.range} is {got:#x}, not {wanted:#x} (the failing page is "
            f"{walk.position})",
        )
    return ok("FLT-4")


def check_FLT_5(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """FLT-5: a non-blocking call's faults allow retry and say "do not wait"; a blocking call's
    never say "do not wait"."""
    if not isinstance(op, FaultSnapshot):
        return None
    handled = [call for call in obs.faults if call.kind == HANDLE]
    for call in handled:
        if not op.block and not (call.allow_retry and call.nowait):
            return fail(
                "FLT-5",
                f"the non-blocking fault at {call.addr:#x} passed allow_retry={call.allow_retry}"
                f" nowait={call.nowait}; the handler may sleep or drop mmap_sem",
            )
        if op.block and call.nowait:
            return fail("FLT-5", f"the blocking fault at {call.addr:#x} passed nowait")
    return ok("FLT-5") if handled else None


def check_FLT_6(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """FLT-6 (SEED-DEFECT): a blocking call's faults do not allow retry, so the handler waits
    and never drops mmap_sem (the 2019 fix); the seed allows it."""
    if not isinstance(op, FaultSnapshot) or not op.block or not m.strict():
        return None
    handled = [call for call in obs.faults if call.kind == HANDLE]
    if not handled:
        return None
    for call in handled:
        if call.allow_retry:
            dropped = " and the handler dropped mmap_sem" if call.dropped_sem else ""
            return fail(
                "FLT-6",
                f"the blocking fault at {call.addr:#x} allowed retry{dropped} (the seed's "
                "behaviour, bug #15)",
            )
    return ok("FLT-6")
