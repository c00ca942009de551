"""The core's checks of ranges and release: RNG and REL (docs/spec.md), one pure ``check_<ID>``
per rule over (model before, operation, observation).
"""

from __future__ import annotations

from hmm_ref import describe_result

from .._verdicts import Status, Verdict
from ._judging import (
    allowed,
    fail,
    invalidated_ranges,
    names,
    ok,
    result_of,
    stale_entry,
)
from ._model import (
    Model,
    Observation,
    RangeState,
    exact_overlap,
    snapshot_outcome,
)
from ._ops import (
    FaultSnapshot,
    InvalidateEnd,
    InvalidateStart,
    Observe,
    Operation,
    RangeDone,
    Release,
    Snapshot,
)

__all__ = [
    "check_REL_1",
    "check_REL_2",
    "check_REL_3",
    "check_RNG_1",
    "check_RNG_2",
    "check_RNG_3",
    "check_RNG_4",
    "check_RNG_5",
    "check_RNG_6",
    "check_RNG_7",
    "check_RNG_8",
    "check_RNG_9",
]

# -- RNG -------------------------------------------------------------------------------------


def check_RNG_1(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """RNG-1: a snapshot registers a valid range encoded with the range's own encoding."""
    if not isinstance(op, Snapshot) or op.end < op.start:
        return None
    if snapshot_outcome(m.cpu.vmas[op.vma], op.start, op.end)[0] != 0:
        return None
    if obs.result != 0:
        return fail("RNG-1", f"snapshot returned {result_of(obs)}, not 0")
    view = obs.range(op.range)
    if view is None:
        return None
    if not view.registered or not view.valid:
        return fail("RNG-1", f"r{op.range} is registered={view.registered} valid={view.valid}")
    probe = RangeState(
        id=op.range,
        start=op.start,
        end=op.end,
        encoding=op.encoding,
        registered=True,
        valid=True,
        entries=(),
    )
    if len(view.entries) != probe.npages:
        return fail("RNG-1", f"r{op.range} has {len(view.entries)} entries, not {probe.npages}")
    stale = stale_entry(m, probe, view.entries)
    if stale is not None:
        index, got, want = stale
        return fail(
            "RNG-1",
            f"r{op.range} entry {index} ({probe.page(index):#x}) is {got:#x}, not {want:#x} "
            f"(the encoding of {m.cpu.pte(probe.page(index)).kind.value})",
        )
    return ok("RNG-1")


def check_RNG_2(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """RNG-2: bad bounds, unreadable and special vmas fail with the right code and fill, and
    nothing writes a failed snapshot's entries afterwards (HMM never held it)."""
    if not isinstance(op, Snapshot):
        return _changed("RNG-2", m, op, obs)
    expected, fill = snapshot_outcome(m.cpu.vmas[op.vma], op.start, op.end)
    if expected == 0:
        return _changed("RNG-2", m, op, obs)
    if obs.result != expected:
        return fail("RNG-2", f"snapshot returned {result_of(obs)}, not {describe_result(expected)}")
    view = obs.range(op.range)
    if view is not None:
        if view.registered:
            return fail("RNG-2", f"the failed snapshot r{op.range} is registered")
        if fill is not None:
            value = op.encoding.values[fill]
            wrong = [i for i, entry in enumerate(view.entries) if entry != value]
            if wrong:
                return fail(
                    "RNG-2",
                    f"entry {wrong[0]} of r{op.range} is not values[{fill.name}] ({value:#x})",
                )
    return ok("RNG-2")


def check_RNG_3(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """RNG-3: an invalidation marks overlapping ranges invalid and clears the overlap."""
    if not isinstance(op, InvalidateStart | InvalidateEnd):
        return None
    return invalidated_ranges(m, op, obs, "RNG-3")


def _touched_below(rng: RangeState, op: Operation) -> bool:
    return isinstance(op, InvalidateStart | InvalidateEnd) and op.end == rng.start


def _untouchable(m: Model, op: Operation) -> list[tuple[str, RangeState]]:
    """The ranges this step must leave exactly as they were, with the rule that says so."""
    keep: list[tuple[str, RangeState]] = []
    bound = {rng.id for rng in m.bound_ranges()}
    for rng in m.ranges.values():
        if isinstance(op, Snapshot | FaultSnapshot | RangeDone | Observe) and op.range == rng.id:
            continue
        if rng.registered and rng.id not in bound:
            continue
        if rng.registered:
            if isinstance(op, InvalidateStart | InvalidateEnd) and (
                rng.empty
                or exact_overlap(op.start, op.end, rng.start, rng.end)
                or _touched_below(rng, op)
            ):
                continue
            if isinstance(op, InvalidateStart | InvalidateEnd) and op.start == rng.end:
                keep.append(("RNG-5", rng))  # "update.start == range.end is not an overlap"
                continue
            if isinstance(op, Release):
                continue  # either way in the seed profile; REL-3 decides under strict
            keep.append(("RNG-4", rng))
        elif rng.done:
            keep.append(("RNG-7", rng))
        else:  # a snapshot that failed, so never registered
            keep.append(("RNG-2", rng))
    return keep


def _changed(rule: str, m: Model, op: Operation, obs: Observation) -> Verdict | None:
    checked = False
    for owner, rng in _untouchable(m, op):
        if owner != rule:
            continue
        view = obs.range(rng.id)
        if view is None:
            continue
        checked = True
        if view.entries != rng.entries:
            return fail(
                rule, f"{op.name} changed the entries of r{rng.id}, which it must not touch"
            )
        if not rng.empty and view.valid != rng.valid:
            return fail(
                rule, f"{op.name} set r{rng.id} valid={view.valid}, which it must not touch"
            )
    return ok(rule) if checked else None


def check_RNG_4(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """RNG-4: a range the step neither overlaps nor touches keeps its valid flag and entries."""
    return _changed("RNG-4", m, op, obs)


def check_RNG_5(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """RNG-5 (MAY): a range the update touches below is invalidated (seed) or left alone."""
    if not isinstance(op, InvalidateStart | InvalidateEnd):
        return None
    verdict = _changed("RNG-5", m, op, obs)  # ranges the update touches above: untouched
    if verdict is not None and verdict.status is Status.FAIL:
        return verdict
    for rng in m.bound_ranges():
        if rng.empty or not _touched_below(rng, op):
            continue
        view = obs.range(rng.id)
        if view is None:
            continue
        if view.entries != rng.entries:
            return fail("RNG-5", f"r{rng.id} only touches the update, yet entries were cleared")
        if not rng.valid:
            continue  # already invalid: only the entries were at stake
        verdict = (
            ok("RNG-5")
            if not view.valid
            else allowed("RNG-5", f"left r{rng.id}, which the update only touches, valid")
        )
    return verdict


def check_RNG_6(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """RNG-6: valid is sticky until range_done."""
    checked = False
    for rng in m.registered_ranges():  # sticky even where REL-3 suspends the other rules
        view = obs.range(rng.id)
        if view is None or rng.valid or rng.empty:
            continue
        if isinstance(op, RangeDone) and op.range == rng.id:
            continue
        checked = True
        if view.valid:
            return fail("RNG-6", f"r{rng.id} became valid again after an invalidation")
    return ok("RNG-6") if checked else None


def _misuse(m: Model, op: RangeDone) -> str | None:
    rng = m.ranges.get(op.range)
    if rng is None:
        return "a range never snapshotted"
    if rng.empty:
        return "an empty range"
    if rng.done:
        return "a range already done"
    if rng.failed:
        return "a range whose snapshot failed"
    return None


def check_RNG_7(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """RNG-7: range_done returns the valid flag and unregisters; later steps leave it alone."""
    if isinstance(op, RangeDone) and _misuse(m, op) is None:
        rng = m.ranges[op.range]
        if obs.rejected is not None:
            return fail("RNG-7", f"range_done of r{op.range} was refused: {obs.rejected}")
        if obs.result is not rng.valid:
            return fail(
                "RNG-7",
                f"range_done of r{op.range} returned {result_of(obs)}; the range is "
                f"{'valid' if rng.valid else 'invalid'}",
            )
        view = obs.range(op.range)
        if view is not None and view.registered:
            return fail("RNG-7", f"r{op.range} is still registered after range_done")
        return ok("RNG-7")
    return _changed("RNG-7", m, op, obs)


def check_RNG_8(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """RNG-8: a range_done of True means every entry matches the CPU page table now."""
    if not isinstance(op, RangeDone) or obs.result is not True or _misuse(m, op) is not None:
        return None
    if m.released and not m.strict():
        return None  # the seed profile checks this only up to release (REL-3)
    rng = m.ranges[op.range]
    view = obs.range(op.range)
    stale = stale_entry(m, rng, view.entries if view is not None else rng.entries)
    if stale is not None:
        index, got, want = stale
        return fail(
            "RNG-8",
            f"range_done of r{op.range} returned True but entry {index} ({rng.page(index):#x}) "
            f"is {got:#x}; the CPU entry now encodes as {want:#x}",
        )
    return ok("RNG-8")


def check_RNG_9(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """RNG-9: range_done twice, on an unknown range or an empty one is refused."""
    if not isinstance(op, RangeDone):
        return None
    misuse = _misuse(m, op)
    if misuse is None:
        return None
    if obs.rejected is not None:
        return ok("RNG-9")
    return fail("RNG-9", f"range_done on {misuse} (r{op.range}) returned {result_of(obs)}")


# -- REL -------------------------------------------------------------------------------------


def check_REL_1(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """REL-1: release calls each mirror's release once; no callback comes after it."""
    if m.released:
        if obs.calls:
            return fail("REL-1", f"{names(c.mirror for c in obs.calls)} called after release")
        return None
    if not isinstance(op, Release):
        stray = [c.mirror for c in obs.calls if c.kind == "release"]
        return fail("REL-1", f"{op.name} called release on {names(stray)}") if stray else None
    released = [c.mirror for c in obs.calls if c.kind == "release"]
    if obs.syncs():
        return fail("REL-1", f"release called sync on {names(c.mirror for c in obs.syncs())}")
    if sorted(released) != sorted(m.mirrors):
        return fail(
            "REL-1",
            f"release called release on [{names(released)}], "
            f"not once on each of [{names(m.mirrors)}]",
        )
    return ok("REL-1")


def check_REL_2(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """REL-2 (MAY): release order newest first (seed) or another."""
    if not isinstance(op, Release) or m.released:
        return None
    order = [c.mirror for c in obs.calls if c.kind == "release"]
    if len(order) < 2:
        return None
    if order == m.mirrors:
        return ok("REL-2")
    return allowed("REL-2", f"released {names(order)} (newest first would be {names(m.mirrors)})")


def check_REL_3(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """REL-3 (SEED-DEFECT): ranges registered at release are invalid afterwards."""
    if not isinstance(op, Release) or m.released or not m.strict():
        return None
    checked = False
    for rng in m.registered_ranges():
        view = obs.range(rng.id)
        if view is None or rng.empty:
            continue
        checked = True
        if view.valid:
            return fail(
                "REL-3", f"r{rng.id} is still valid after release; its pages are going away"
            )
    return ok("REL-3") if checked else None
