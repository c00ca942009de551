"""The core's checks of mirrors and invalidation: REG, INV and END (docs/spec.md), one pure
``check_<ID>`` per rule over (model before, operation, observation).
"""

from __future__ import annotations

from hmm_ref import Errno, HmmUpdateEvent, describe_result

from .._rules import GATES
from .._verdicts import Status, Verdict
from ._adapter import Capability
from ._judging import (
    EAGAIN,
    allowed,
    bad_entries,
    calls_to,
    fail,
    invalidated_ranges,
    names,
    ok,
    result_of,
)
from ._model import (
    Model,
    Observation,
    exact_overlap,
)
from ._ops import (
    InvalidateEnd,
    InvalidateStart,
    Operation,
    RegisterMirror,
    Release,
    UnregisterMirror,
)

__all__ = [
    "check_END_1",
    "check_END_2",
    "check_END_3",
    "check_INV_1",
    "check_INV_2",
    "check_INV_3",
    "check_INV_4",
    "check_INV_5",
    "check_INV_6",
    "check_INV_7",
    "check_INV_8",
    "check_INV_9",
    "check_REG_1",
    "check_REG_2",
    "check_REG_3",
    "check_REG_4",
    "check_REG_5",
]

# -- REG -------------------------------------------------------------------------------------


def check_REG_1(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """REG-1: register without ops returns -EINVAL and changes nothing."""
    if not isinstance(op, RegisterMirror) or op.with_ops:
        return None  # a refused mirror has no ops, so nothing can call it later
    if obs.result == -Errno.EINVAL:
        return ok("REG-1")
    return fail("REG-1", f"register without ops returned {result_of(obs)}, not -EINVAL")


def check_REG_2(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """REG-2: a successful register returns 0 (its taking part is INV-2/INV-6)."""
    if not isinstance(op, RegisterMirror) or not op.with_ops or m.poisoned:
        return None
    if obs.result == 0:
        return ok("REG-2")
    return fail("REG-2", f"register returned {result_of(obs)}, not 0")


def check_REG_3(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """REG-3: an unregistered mirror is never called again; unregistering twice is a no-op."""
    stray = calls_to(obs, m.gone)
    if stray:
        return fail("REG-3", f"{names(sorted({c.mirror for c in stray}))} called after unregister")
    if isinstance(op, UnregisterMirror):
        if obs.rejected is not None:
            return fail("REG-3", f"unregister of m{op.mirror} was refused: {obs.rejected}")
        if obs.calls:
            return fail("REG-3", f"unregister called {names(c.mirror for c in obs.calls)}")
        return ok("REG-3")
    if isinstance(op, InvalidateStart) and m.gone:
        return ok("REG-3")
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
        return ok("REG-4")
    return allowed("REG-4", f"called {names(order)} (newest first would be {names(seed_order)})")


def check_REG_5(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """REG-5 (SEED-DEFECT): register after unregistering one of several mirrors succeeds."""
    if not isinstance(op, RegisterMirror) or not op.with_ops or not m.poisoned or not m.strict():
        return None
    if obs.would_hang is not None:
        return fail(
            "REG-5", f"register never returns after an earlier unregister: {obs.would_hang}"
        )
    if obs.result != 0:
        return fail("REG-5", f"register after an earlier unregister returned {result_of(obs)}")
    return ok("REG-5")


# -- INV -------------------------------------------------------------------------------------


def _missing(m: Model, obs: Observation) -> list[int]:
    called = {call.mirror for call in obs.syncs()}
    return [mirror for mirror in m.mirrors if mirror not in called]


def check_INV_1(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-1: each called mirror gets exactly this update, at most once per start."""
    syncs = obs.syncs()
    if not isinstance(op, InvalidateStart):
        if syncs and not isinstance(op, InvalidateEnd | Release):
            return fail("INV-1", f"{op.name} called sync on {names(c.mirror for c in syncs)}")
        return None
    if not syncs:
        return None
    seen: set[int] = set()
    for call in syncs:
        update = call.update
        assert update is not None
        if call.mirror in seen:
            return fail("INV-1", f"m{call.mirror} was called twice by one start")
        seen.add(call.mirror)
        if (update.start, update.end, update.event) != (
            op.start,
            op.end,
            HmmUpdateEvent.INVALIDATE,
        ):
            return fail(
                "INV-1",
                f"m{call.mirror} got [{update.start:#x}, {update.end:#x}) {update.event.value}, "
                f"not [{op.start:#x}, {op.end:#x}) invalidate",
            )
        if op.blockable and not update.blockable:
            return fail("INV-1", f"m{call.mirror} got blockable=False from a blockable start")
    return ok("INV-1")


def check_INV_2(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-2: a blockable start calls every mirror, ignores the answers, and returns 0."""
    if not isinstance(op, InvalidateStart) or not op.blockable:
        return None
    missing = _missing(m, obs)
    if missing:
        answered = [(c.mirror, c.reply) for c in obs.syncs() if c.reply]
        detail = f"blockable start did not call {names(missing)}"
        if answered:
            detail += " after " + ", ".join(
                f"m{x} answered {describe_result(r)}" for x, r in answered
            )
        return fail("INV-2", detail)
    if obs.result != 0:
        return fail("INV-2", f"blockable start returned {result_of(obs)}, not 0")
    return ok("INV-2")


def check_INV_3(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-3: a non-blockable start passes blockable=False to every mirror it calls."""
    if not isinstance(op, InvalidateStart) or op.blockable or not obs.syncs():
        return None
    wrong = [c.mirror for c in obs.syncs() if c.update is not None and c.update.blockable]
    if wrong:
        return fail("INV-3", f"non-blockable start told {names(wrong)} blockable=True")
    return ok("INV-3")


def check_INV_4(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-4: a non-blockable start fails with -EAGAIN if a called mirror answered -EAGAIN."""
    if not isinstance(op, InvalidateStart) or op.blockable:
        return None
    eagain = [c.mirror for c in obs.syncs() if c.reply == EAGAIN]
    if not eagain:
        return None
    if obs.result == EAGAIN:
        return ok("INV-4")
    return fail("INV-4", f"m{eagain[0]} answered -EAGAIN but the start returned {result_of(obs)}")


def check_INV_5(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-5: -EAGAIN only if non-blockable and a mirror called in this start answered it."""
    if not isinstance(op, InvalidateStart):
        return None
    replies = {c.reply for c in obs.syncs()}
    if obs.result == EAGAIN:
        if not op.blockable and EAGAIN in replies:
            return ok("INV-5")
        why = "a blockable start" if op.blockable else "no mirror called answered -EAGAIN"
        return fail(
            "INV-5",
            f"start returned -EAGAIN, but {why} (called: {names(c.mirror for c in obs.syncs())})",
        )
    if obs.result == 0:
        return ok("INV-5")
    if isinstance(obs.result, int) and obs.result in replies:
        return None  # a mirror's other error leaking out is INV-8's
    return fail("INV-5", f"start returned {result_of(obs)}, which no mirror answered")


def check_INV_6(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-6: a start that returns 0 has called every mirror registered at the time."""
    if not isinstance(op, InvalidateStart) or obs.result != 0:
        return None
    missing = _missing(m, obs)
    if missing:
        return fail("INV-6", f"start returned 0 without calling {names(missing)}")
    return ok("INV-6")


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
        return allowed("INV-7", f"went on to call {names(later)} after -EAGAIN")
    return ok("INV-7")


def check_INV_8(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """INV-8: answers other than 0 and -EAGAIN change neither the result nor the loop."""
    if not isinstance(op, InvalidateStart):
        return None
    syncs = obs.syncs()
    others = [call for call in syncs if call.reply not in (0, EAGAIN)]
    if not others:
        return None
    if not op.blockable and any(call.reply == EAGAIN for call in syncs):
        return ok("INV-8") if obs.result == EAGAIN else None
    first = others[0]
    told = f"m{first.mirror} answered {describe_result(first.reply)}"
    if obs.result != 0:
        return fail("INV-8", f"start returned {result_of(obs)} after {told}")
    missing = _missing(m, obs)
    if missing:
        return fail("INV-8", f"the loop stopped after {told}: {names(missing)} not called")
    return ok("INV-8")


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
                return fail("INV-9", f"m{call.mirror} ran while r{range_id} was still valid")
            problems = [p for p in bad_entries(rng, view, op.start, op.end) if "VALID" in p]
            if problems:
                return fail(
                    "INV-9", f"m{call.mirror} ran before r{range_id} was cleared: {problems[0]}"
                )
    return ok("INV-9")


# -- END -------------------------------------------------------------------------------------


def check_END_1(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """END-1: invalidate_range_end calls no mirror."""
    if not isinstance(op, InvalidateEnd):
        return None
    if obs.syncs():
        return fail("END-1", f"end called {names(c.mirror for c in obs.syncs())}")
    return ok("END-1")


#: The latitude END-2 and RNG-3 record where a miss is REL-3's consequence (docs/spec.md 1.3).
def check_END_2(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """END-2: end invalidates overlapping ranges too (a snapshot taken inside the window)."""
    if not isinstance(op, InvalidateEnd):
        return None
    return invalidated_ranges(m, op, obs, "END-2")


def check_END_3(m: Model, op: Operation, obs: Observation) -> Verdict | None:
    """END-3: end follows only a start that succeeded (the caller's side, kept by the harness)."""
    if isinstance(op, InvalidateEnd):
        if (op.start, op.end) in m.windows.values():
            return ok("END-3")
        return fail(
            "END-3",
            f"the case ends [{op.start:#x}, {op.end:#x}) with no successful start open; the "
            "caller must not call end after a failed non-blockable start (fix the case)",
        )
    if isinstance(op, InvalidateStart) and not op.blockable and obs.result == EAGAIN:
        return ok("END-3")
    return None
