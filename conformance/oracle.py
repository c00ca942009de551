"""The oracle: one pure check per rule ID over (model before, operation, observation).

Each ``check_<ID>`` returns a :class:`Verdict` when the step exercised the rule, or None when it
did not. Checks never change the model. :func:`check_step` runs all of them in catalogue order.
A verdict names its rule, so a failure leads straight to docs/spec.md and back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Final

from hmm_ref import Errno, HmmPfnFlag, HmmUpdateEvent, describe_result

from ._rules import GATES, rules_of

# The verdicts are every side's vocabulary (conformance/_verdicts.py); this public module names
# them for the users of its checks.
from ._verdicts import Status, Verdict
from .core._adapter import Capability, RangeView
from .core._model import (
    CallRecord,
    Model,
    Observation,
    RangeState,
    exact_overlap,
    expected_entries,
    snapshot_outcome,
)
from .core._ops import (
    InvalidateEnd,
    InvalidateStart,
    Observe,
    Operation,
    RangeDone,
    RegisterMirror,
    Release,
    Snapshot,
    UnregisterMirror,
)

__all__ = ["CHECKS", "Status", "Verdict", "check_step"]

EAGAIN: Final = -Errno.EAGAIN


Check = Callable[[Model, Operation, Observation], "Verdict | None"]


def _pass(rule: str, detail: str = "") -> Verdict:
    return Verdict(rule=rule, status=Status.PASS, detail=detail)


def _fail(rule: str, detail: str) -> Verdict:
    return Verdict(rule=rule, status=Status.FAIL, detail=detail)


def _allowed(rule: str, latitude: str) -> Verdict:
    return Verdict(rule=rule, status=Status.ALLOWED, detail=latitude, latitude=latitude)


def _names(mirrors: Iterable[int]) -> str:
    return ", ".join(f"m{m}" for m in mirrors) or "none"


def _result(obs: Observation) -> str:
    if obs.rejected is not None:
        return "a refusal"
    if obs.would_hang is not None:
        return "no return"
    if isinstance(obs.result, bool) or obs.result is None:
        return repr(obs.result)
    return describe_result(obs.result)


def _bad_entries(rng: RangeState, view: RangeView, start: int, end: int) -> list[str]:
    """Overlap entries that still carry VALID, and entries outside it that changed."""
    problems: list[str] = []
    valid_bit = rng.encoding.flag(HmmPfnFlag.VALID)
    for index, entry in enumerate(view.entries):
        addr = rng.page(index)
        if start <= addr < end:
            if entry & valid_bit:
                problems.append(f"entry {index} ({addr:#x}) = {entry:#x} still has VALID")
        elif index < len(rng.entries) and entry != rng.entries[index]:
            problems.append(f"entry {index} ({addr:#x}) outside the update changed")
    if len(view.entries) != len(rng.entries):
        problems.append(f"{len(view.entries)} entries where the range has {len(rng.entries)}")
    return problems


def _stale(m: Model, rng: RangeState, entries: Sequence[int]) -> tuple[int, int, int] | None:
    """The first entry that is not the encoding of the CPU entry now: (index, got, wanted).

    Entries the seed's walk leaves unwritten (after a poisoned page) are not compared.
    """
    expected, unwritten = expected_entries(m.cpu, rng)
    for index, (got, want) in enumerate(zip(entries, expected, strict=False)):
        if index not in unwritten | rng.unwritten and got != want:
            return index, got, want
    return None


def _calls_to(obs: Observation, mirrors: set[int]) -> list[CallRecord]:
    return [call for call in obs.calls if call.mirror in mirrors]


# -- REG -------------------------------------------------------------------------------------


def check_REG_1(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """REG-1: register without ops returns -EINVAL and changes nothing."""
    if not isinstance(op, RegisterMirror) or op.with_ops:
        return None  # a refused mirror has no ops, so nothing can call it later
    if obs.result == -Errno.EINVAL:
        return _pass("REG-1")
    return _fail("REG-1", f"register without ops returned {_result(obs)}, not -EINVAL")


def check_REG_2(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """REG-2: a successful register returns 0 (its taking part is INV-2/INV-6)."""
    if not isinstance(op, RegisterMirror) or not op.with_ops or m.poisoned:
        return None
    if obs.result == 0:
        return _pass("REG-2")
    return _fail("REG-2", f"register returned {_result(obs)}, not 0")


def check_REG_3(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """REG-3: an unregistered mirror is never called again; unregistering twice is a no-op."""
    stray = _calls_to(obs, m.gone)
    if stray:
        return _fail(
            "REG-3", f"{_names(sorted({c.mirror for c in stray}))} called after unregister"
        )
    if isinstance(op, UnregisterMirror):
        if obs.rejected is not None:
            return _fail("REG-3", f"unregister of m{op.mirror} was refused: {obs.rejected}")
        if obs.calls:
            return _fail("REG-3", f"unregister called {_names(c.mirror for c in obs.calls)}")
        return _pass("REG-3")
    if isinstance(op, InvalidateStart) and m.gone:
        return _pass("REG-3")
    return None


def check_REG_4(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """REG-4 (MAY): mirrors are called newest first, or in another order."""
    if not isinstance(op, InvalidateStart):
        return None
    order = [call.mirror for call in obs.syncs()]
    if len(set(order)) < 2:
        return None
    seed_order = [mirror for mirror in m.mirrors if mirror in order]
    if order == seed_order:
        return _pass("REG-4")
    return _allowed("REG-4", f"called {_names(order)} (newest first would be {_names(seed_order)})")


def check_REG_5(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """REG-5 (SEED-DEFECT): register after unregistering one of several mirrors succeeds."""
    if not isinstance(op, RegisterMirror) or not op.with_ops or not m.poisoned or not m.strict():
        return None
    if obs.would_hang is not None:
        return _fail(
            "REG-5", f"register never returns after an earlier unregister: {obs.would_hang}"
        )
    if obs.result != 0:
        return _fail("REG-5", f"register after an earlier unregister returned {_result(obs)}")
    return _pass("REG-5")


# -- INV -------------------------------------------------------------------------------------


def _missing(m: Model, obs: Observation) -> list[int]:
    called = {call.mirror for call in obs.syncs()}
    return [mirror for mirror in m.mirrors if mirror not in called]


def check_INV_1(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-1: each called mirror gets exactly this update, at most once per start."""
    syncs = obs.syncs()
    if not isinstance(op, InvalidateStart):
        if syncs and not isinstance(op, InvalidateEnd | Release):
            return _fail("INV-1", f"{op.name} called sync on {_names(c.mirror for c in syncs)}")
        return None
    if not syncs:
        return None
    seen: set[int] = set()
    for call in syncs:
        update = call.update
        assert update is not None
        if call.mirror in seen:
            return _fail("INV-1", f"m{call.mirror} was called twice by one start")
        seen.add(call.mirror)
        if (update.start, update.end, update.event) != (
            op.start,
            op.end,
            HmmUpdateEvent.INVALIDATE,
        ):
            return _fail(
                "INV-1",
                f"m{call.mirror} got [{update.start:#x}, {update.end:#x}) {update.event.value}, "
                f"not [{op.start:#x}, {op.end:#x}) invalidate",
            )
        if op.blockable and not update.blockable:
            return _fail("INV-1", f"m{call.mirror} got blockable=False from a blockable start")
    return _pass("INV-1")


def check_INV_2(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-2: a blockable start calls every mirror, ignores the answers, and returns 0."""
    if not isinstance(op, InvalidateStart) or not op.blockable:
        return None
    missing = _missing(m, obs)
    if missing:
        answered = [(c.mirror, c.reply) for c in obs.syncs() if c.reply]
        detail = f"blockable start did not call {_names(missing)}"
        if answered:
            detail += " after " + ", ".join(
                f"m{x} answered {describe_result(r)}" for x, r in answered
            )
        return _fail("INV-2", detail)
    if obs.result != 0:
        return _fail("INV-2", f"blockable start returned {_result(obs)}, not 0")
    return _pass("INV-2")


def check_INV_3(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-3: a non-blockable start passes blockable=False to every mirror it calls."""
    if not isinstance(op, InvalidateStart) or op.blockable or not obs.syncs():
        return None
    wrong = [c.mirror for c in obs.syncs() if c.update is not None and c.update.blockable]
    if wrong:
        return _fail("INV-3", f"non-blockable start told {_names(wrong)} blockable=True")
    return _pass("INV-3")


def check_INV_4(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-4: a non-blockable start fails with -EAGAIN if a called mirror answered -EAGAIN."""
    if not isinstance(op, InvalidateStart) or op.blockable:
        return None
    eagain = [c.mirror for c in obs.syncs() if c.reply == EAGAIN]
    if not eagain:
        return None
    if obs.result == EAGAIN:
        return _pass("INV-4")
    return _fail("INV-4", f"m{eagain[0]} answered -EAGAIN but the start returned {_result(obs)}")


def check_INV_5(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-5: -EAGAIN only if non-blockable and a mirror called in this start answered it."""
    if not isinstance(op, InvalidateStart):
        return None
    replies = {c.reply for c in obs.syncs()}
    if obs.result == EAGAIN:
        if not op.blockable and EAGAIN in replies:
            return _pass("INV-5")
        why = "a blockable start" if op.blockable else "no mirror called answered -EAGAIN"
        return _fail(
            "INV-5",
            f"start returned -EAGAIN, but {why} (called: {_names(c.mirror for c in obs.syncs())})",
        )
    if obs.result == 0:
        return _pass("INV-5")
    if isinstance(obs.result, int) and obs.result in replies:
        return None  # a mirror's other error leaking out is INV-8's
    return _fail("INV-5", f"start returned {_result(obs)}, which no mirror answered")


def check_INV_6(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-6: a start that returns 0 has called every mirror registered at the time."""
    if not isinstance(op, InvalidateStart) or obs.result != 0:
        return None
    missing = _missing(m, obs)
    if missing:
        return _fail("INV-6", f"start returned 0 without calling {_names(missing)}")
    return _pass("INV-6")


def check_INV_7(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-7 (MAY): after a mirror's -EAGAIN the rest are skipped (seed), or still called."""
    if not isinstance(op, InvalidateStart) or op.blockable:
        return None
    syncs = obs.syncs()
    first = next((i for i, call in enumerate(syncs) if call.reply == EAGAIN), None)
    if first is None:
        return None
    later = [call.mirror for call in syncs[first + 1 :]]
    if later:
        return _allowed("INV-7", f"went on to call {_names(later)} after -EAGAIN")
    return _pass("INV-7")


def check_INV_8(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-8: answers other than 0 and -EAGAIN change neither the result nor the loop."""
    if not isinstance(op, InvalidateStart):
        return None
    syncs = obs.syncs()
    others = [call for call in syncs if call.reply not in (0, EAGAIN)]
    if not others:
        return None
    if not op.blockable and any(call.reply == EAGAIN for call in syncs):
        return _pass("INV-8") if obs.result == EAGAIN else None
    first = others[0]
    told = f"m{first.mirror} answered {describe_result(first.reply)}"
    if obs.result != 0:
        return _fail("INV-8", f"start returned {_result(obs)} after {told}")
    missing = _missing(m, obs)
    if missing:
        return _fail("INV-8", f"the loop stopped after {told}: {_names(missing)} not called")
    return _pass("INV-8")


def check_INV_9(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-9: when a mirror callback runs, every overlapping range is already invalid."""
    if not isinstance(op, InvalidateStart):
        return None
    overlapping = {
        r.id: r
        for r in m.bound_ranges()
        if not r.empty and exact_overlap(op.start, op.end, r.start, r.end)
    }
    if not overlapping or not obs.syncs():
        return None
    if Capability(GATES["INV-9"]) not in m.capabilities:
        return Verdict(rule="INV-9", status=Status.SKIP, detail=f"needs {GATES['INV-9']}")
    for call in obs.syncs():
        for range_id, view in call.seen:
            rng = overlapping.get(range_id)
            if rng is None:
                continue
            if view.valid:
                return _fail("INV-9", f"m{call.mirror} ran while r{range_id} was still valid")
            problems = [p for p in _bad_entries(rng, view, op.start, op.end) if "VALID" in p]
            if problems:
                return _fail(
                    "INV-9", f"m{call.mirror} ran before r{range_id} was cleared: {problems[0]}"
                )
    return _pass("INV-9")


# -- END -------------------------------------------------------------------------------------


def check_END_1(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """END-1: invalidate_range_end calls no mirror."""
    if not isinstance(op, InvalidateEnd):
        return None
    if obs.syncs():
        return _fail("END-1", f"end called {_names(c.mirror for c in obs.syncs())}")
    return _pass("END-1")


#: The latitude END-2 and RNG-3 record where a miss is REL-3's consequence (docs/spec.md 1.3).
SEED_RELEASE_PATH: Final = (
    "a range registered at release is not reached after it: the seed's release path (REL-3), "
    "harmless since the range is invalid"
)


def _invalidated_ranges(
    m: Model, op: InvalidateStart | InvalidateEnd, obs: Observation, rule: str
) -> Verdict | None:
    checked = attributed = False
    for rng in m.bound_ranges():
        if rng.empty or not exact_overlap(op.start, op.end, rng.start, rng.end):
            continue
        view = obs.range(rng.id)
        if view is None:
            continue
        checked = True
        if view.valid:
            problem = f"r{rng.id} overlaps [{op.start:#x}, {op.end:#x}) but is still valid"
        else:
            problems = _bad_entries(rng, view, op.start, op.end)
            problem = f"r{rng.id}: {problems[0]}" if problems else ""
        if problem and m.seed_release_path(rng, view):
            attributed = True  # a seed defect is scored once, under its own rule
        elif problem:
            return _fail(rule, problem)
    if attributed:
        return _allowed(rule, SEED_RELEASE_PATH)
    return _pass(rule) if checked else None


def check_END_2(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """END-2: end invalidates overlapping ranges too (a snapshot taken inside the window)."""
    if not isinstance(op, InvalidateEnd):
        return None
    return _invalidated_ranges(m, op, obs, "END-2")


def check_END_3(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """END-3: end follows only a start that succeeded (the caller's side, kept by the harness)."""
    if isinstance(op, InvalidateEnd):
        if (op.start, op.end) in m.windows.values():
            return _pass("END-3")
        return _fail(
            "END-3",
            f"the case ends [{op.start:#x}, {op.end:#x}) with no successful start open; the "
            "caller must not call end after a failed non-blockable start (fix the case)",
        )
    if isinstance(op, InvalidateStart) and not op.blockable and obs.result == EAGAIN:
        return _pass("END-3")
    return None


# -- RNG -------------------------------------------------------------------------------------


def check_RNG_1(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """RNG-1: a snapshot registers a valid range encoded with the range's own encoding."""
    if not isinstance(op, Snapshot) or op.end < op.start:
        return None
    if snapshot_outcome(m.cpu.vmas[op.vma], op.start, op.end)[0] != 0:
        return None
    if obs.result != 0:
        return _fail("RNG-1", f"snapshot returned {_result(obs)}, not 0")
    view = obs.range(op.range)
    if view is None:
        return None
    if not view.registered or not view.valid:
        return _fail("RNG-1", f"r{op.range} is registered={view.registered} valid={view.valid}")
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
        return _fail("RNG-1", f"r{op.range} has {len(view.entries)} entries, not {probe.npages}")
    stale = _stale(m, probe, view.entries)
    if stale is not None:
        index, got, want = stale
        return _fail(
            "RNG-1",
            f"r{op.range} entry {index} ({probe.page(index):#x}) is {got:#x}, not {want:#x} "
            f"(the encoding of {m.cpu.pte(probe.page(index)).kind.value})",
        )
    return _pass("RNG-1")


def check_RNG_2(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """RNG-2: bad bounds, unreadable and special vmas fail with the right code and fill."""
    if not isinstance(op, Snapshot):
        return None
    expected, fill = snapshot_outcome(m.cpu.vmas[op.vma], op.start, op.end)
    if expected == 0:
        return None
    if obs.result != expected:
        return _fail("RNG-2", f"snapshot returned {_result(obs)}, not {describe_result(expected)}")
    view = obs.range(op.range)
    if view is not None:
        if view.registered:
            return _fail("RNG-2", f"the failed snapshot r{op.range} is registered")
        if fill is not None:
            value = op.encoding.values[fill]
            wrong = [i for i, entry in enumerate(view.entries) if entry != value]
            if wrong:
                return _fail(
                    "RNG-2",
                    f"entry {wrong[0]} of r{op.range} is not values[{fill.name}] ({value:#x})",
                )
    return _pass("RNG-2")


def check_RNG_3(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """RNG-3: an invalidation marks overlapping ranges invalid and clears the overlap."""
    if not isinstance(op, InvalidateStart | InvalidateEnd):
        return None
    return _invalidated_ranges(m, op, obs, "RNG-3")


def _touched_below(rng: RangeState, op: Operation) -> bool:
    return isinstance(op, InvalidateStart | InvalidateEnd) and op.end == rng.start


def _untouchable(m: Model, op: Operation) -> list[tuple[str, RangeState]]:
    """The ranges this step must leave exactly as they were, with the rule that says so."""
    keep: list[tuple[str, RangeState]] = []
    bound = {rng.id for rng in m.bound_ranges()}
    for rng in m.ranges.values():
        if isinstance(op, Snapshot | RangeDone | Observe) and op.range == rng.id:
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
            return _fail(
                rule, f"{op.name} changed the entries of r{rng.id}, which it must not touch"
            )
        if not rng.empty and view.valid != rng.valid:
            return _fail(
                rule, f"{op.name} set r{rng.id} valid={view.valid}, which it must not touch"
            )
    return _pass(rule) if checked else None


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
            return _fail("RNG-5", f"r{rng.id} only touches the update, yet entries were cleared")
        if not rng.valid:
            continue  # already invalid: only the entries were at stake
        verdict = (
            _pass("RNG-5")
            if not view.valid
            else _allowed("RNG-5", f"left r{rng.id}, which the update only touches, valid")
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
            return _fail("RNG-6", f"r{rng.id} became valid again after an invalidation")
    return _pass("RNG-6") if checked else None


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
            return _fail("RNG-7", f"range_done of r{op.range} was refused: {obs.rejected}")
        if obs.result is not rng.valid:
            return _fail(
                "RNG-7",
                f"range_done of r{op.range} returned {_result(obs)}; the range is "
                f"{'valid' if rng.valid else 'invalid'}",
            )
        view = obs.range(op.range)
        if view is not None and view.registered:
            return _fail("RNG-7", f"r{op.range} is still registered after range_done")
        return _pass("RNG-7")
    return _changed("RNG-7", m, op, obs)


def check_RNG_8(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """RNG-8: a range_done of True means every entry matches the CPU page table now."""
    if not isinstance(op, RangeDone) or obs.result is not True or _misuse(m, op) is not None:
        return None
    if m.released and not m.strict():
        return None  # the seed profile checks this only up to release (REL-3)
    rng = m.ranges[op.range]
    view = obs.range(op.range)
    stale = _stale(m, rng, view.entries if view is not None else rng.entries)
    if stale is not None:
        index, got, want = stale
        return _fail(
            "RNG-8",
            f"range_done of r{op.range} returned True but entry {index} ({rng.page(index):#x}) "
            f"is {got:#x}; the CPU entry now encodes as {want:#x}",
        )
    return _pass("RNG-8")


def check_RNG_9(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """RNG-9: range_done twice, on an unknown range or an empty one is refused."""
    if not isinstance(op, RangeDone):
        return None
    misuse = _misuse(m, op)
    if misuse is None:
        return None
    if obs.rejected is not None:
        return _pass("RNG-9")
    return _fail("RNG-9", f"range_done on {misuse} (r{op.range}) returned {_result(obs)}")


# -- REL -------------------------------------------------------------------------------------


def check_REL_1(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """REL-1: release calls each mirror's release once; no callback comes after it."""
    if m.released:
        if obs.calls:
            return _fail("REL-1", f"{_names(c.mirror for c in obs.calls)} called after release")
        return None
    if not isinstance(op, Release):
        stray = [c.mirror for c in obs.calls if c.kind == "release"]
        return _fail("REL-1", f"{op.name} called release on {_names(stray)}") if stray else None
    released = [c.mirror for c in obs.calls if c.kind == "release"]
    if obs.syncs():
        return _fail("REL-1", f"release called sync on {_names(c.mirror for c in obs.syncs())}")
    if sorted(released) != sorted(m.mirrors):
        return _fail(
            "REL-1",
            f"release called release on [{_names(released)}], "
            f"not once on each of [{_names(m.mirrors)}]",
        )
    return _pass("REL-1")


def check_REL_2(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """REL-2 (MAY): release order newest first (seed) or another."""
    if not isinstance(op, Release) or m.released:
        return None
    order = [c.mirror for c in obs.calls if c.kind == "release"]
    if len(order) < 2:
        return None
    if order == m.mirrors:
        return _pass("REL-2")
    return _allowed(
        "REL-2", f"released {_names(order)} (newest first would be {_names(m.mirrors)})"
    )


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
            return _fail(
                "REL-3", f"r{rng.id} is still valid after release; its pages are going away"
            )
    return _pass("REL-3") if checked else None


CHECKS: Final[Sequence[tuple[str, Check]]] = tuple(
    (rule_id, globals()[f"check_{rule_id.replace('-', '_')}"])
    for rule_id in (rule.id for rule in rules_of("core"))
)


def check_step(m: Model, op: Operation, obs: Observation) -> list[Verdict]:
    """Every rule's verdict on one step, in catalogue order (rules not exercised are absent)."""
    verdicts: list[Verdict] = []
    for _, check in CHECKS:
        verdict = check(m, op, obs)
        if verdict is not None:
            verdicts.append(verdict)
    return verdicts
