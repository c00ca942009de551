"""The oracle, check by check: each failure mode of each rule gives FAIL against that rule.

The model before the step comes from driving the reference through a prefix of operations;
the observation of the last step is written by hand, as a broken candidate would produce it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hmm_ref as H
from conformance import (
    BUDGETS,
    Capability,
    CoreOperation,
    Handshake,
    InvalidateEnd,
    InvalidateStart,
    Observe,
    Profile,
    RangeDone,
    RangeView,
    RegisterMirror,
    Release,
    SetCpuEntry,
    Snapshot,
    UnregisterMirror,
    World,
    oracle,
    reference,
    replay,
    run,
    start,
)
from conformance._generation import ENCODINGS, VMAS, ptes
from conformance._side import Failure
from conformance.core._adapter import Candidate
from conformance.core._executor import Executor, StepOutcome
from conformance.core._judging import SEED_RELEASE_PATH
from conformance.core._model import CallRecord, Model, Observation, encode
from conformance.core._ops import Case as CoreCase
from conformance.oracle import CHECKS, Status, Verdict, check_step
from examples.exact_core import ExactCore

from . import candidates as C

ENC = H.DEFAULT_ENCODING
EAGAIN, ENOMEM = -H.Errno.EAGAIN, -H.Errno.ENOMEM


def page(index: int) -> int:
    return VMAS[0].start + index * H.PAGE_SIZE


WORLD = World(
    vmas=VMAS, ptes=tuple((page(i), H.Pte.present(0x100 + i, write=True)) for i in range(8))
)
FRESH = tuple(ENC.encode(H.Pte.present(0x100 + i, write=True)) for i in range(4))
REG0, REG1, REG2 = (RegisterMirror(mirror=m) for m in range(3))
SNAP0 = Snapshot(range=0, vma=0, start=page(0), end=page(4), encoding=ENC)
SNAP_HIGH = Snapshot(range=0, vma=0, start=page(4), end=page(8), encoding=ENC)
START = InvalidateStart(start=page(0), end=page(1), blockable=True)
NONBLOCK = InvalidateStart(start=page(0), end=page(1), blockable=False)
END = InvalidateEnd(start=page(0), end=page(1))


def model_after(
    *ops: CoreOperation,
    profile: Profile = Profile.SEED,
    capabilities: frozenset[Capability] = frozenset(Capability),
) -> Model:
    """The model after the reference took ``ops``."""
    candidate = reference()
    handshake = Handshake(protocol_version=1, name="ref", version="0", capabilities=capabilities)
    executor = Executor(candidate, handshake, profile, WORLD)
    assert executor.begin() is None
    for op in ops:
        assert not executor.step(op).failed, op
    return executor.model


def sync(
    mirror: int,
    op: InvalidateStart = START,
    *,
    reply: int = 0,
    blockable: bool | None = None,
    start: int | None = None,
    seen: tuple[tuple[int, RangeView], ...] = (),
) -> CallRecord:
    update = H.HmmUpdate(
        start=op.start if start is None else start,
        end=op.end,
        blockable=op.blockable if blockable is None else blockable,
    )
    return CallRecord(mirror=mirror, kind="sync", update=update, reply=reply, seen=seen)


def release(mirror: int) -> CallRecord:
    return CallRecord(mirror=mirror, kind="release")


def view(
    *, registered: bool = True, valid: bool = True, entries: tuple[int, ...] = FRESH
) -> RangeView:
    return RangeView(registered=registered, valid=valid, entries=entries)


CLEARED = (0, *FRESH[1:])
Case = tuple[Callable[[], Model], CoreOperation, Observation, str, str]

CASES: dict[str, Case] = {
    "REG-1 no ops is not EINVAL": (
        model_after,
        RegisterMirror(mirror=5, with_ops=False),
        Observation(result=0),
        "REG-1",
        "not -EINVAL",
    ),
    "REG-2 register fails": (model_after, REG0, Observation(result=ENOMEM), "REG-2", "not 0"),
    "REG-2 register refused": (
        model_after,
        REG0,
        Observation(rejected="no"),
        "REG-2",
        "returned a refusal, not 0",
    ),
    "REG-1 no-ops register hangs": (
        model_after,
        RegisterMirror(mirror=5, with_ops=False),
        Observation(would_hang="stuck"),
        "REG-1",
        "returned no return, not -EINVAL",
    ),
    "INV-2 mirror skipped silently": (
        lambda: model_after(REG0, REG1),
        START,
        Observation(result=0, calls=(sync(1),)),
        "INV-2",
        "blockable start did not call m0",
    ),
    "REG-3 gone mirror called": (
        lambda: model_after(REG0, REG1, UnregisterMirror(mirror=0)),
        START,
        Observation(result=0, calls=(sync(1), sync(0))),
        "REG-3",
        "m0 called after unregister",
    ),
    "REG-3 unregister refused": (
        lambda: model_after(REG0),
        UnregisterMirror(mirror=0),
        Observation(rejected="busy"),
        "REG-3",
        "was refused: busy",
    ),
    "REG-3 unregister calls": (
        lambda: model_after(REG0),
        UnregisterMirror(mirror=0),
        Observation(calls=(sync(0),)),
        "REG-3",
        "unregister called m0",
    ),
    "REG-5 register fails after poison": (
        lambda: model_after(REG0, REG1, UnregisterMirror(mirror=0), profile=Profile.STRICT),
        REG2,
        Observation(result=ENOMEM),
        "REG-5",
        "returned -ENOMEM",
    ),
    "INV-1 sync outside a start": (
        lambda: model_after(REG0),
        REG1,
        Observation(result=0, calls=(sync(0),)),
        "INV-1",
        "register called sync on m0",
    ),
    "INV-1 called twice": (
        lambda: model_after(REG0),
        START,
        Observation(result=0, calls=(sync(0), sync(0))),
        "INV-1",
        "m0 was called twice",
    ),
    "INV-1 wrong span": (
        lambda: model_after(REG0),
        START,
        Observation(result=0, calls=(sync(0, start=page(1)),)),
        "INV-1",
        "m0 got [0x11000, 0x11000)",
    ),
    "INV-1 blockable lost": (
        lambda: model_after(REG0),
        START,
        Observation(result=0, calls=(sync(0, blockable=False),)),
        "INV-1",
        "blockable=False from a blockable start",
    ),
    "INV-2 blockable fails": (
        lambda: model_after(REG0),
        START,
        Observation(result=EAGAIN, calls=(sync(0),)),
        "INV-2",
        "returned -EAGAIN, not 0",
    ),
    "INV-3 told blockable": (
        lambda: model_after(REG0),
        NONBLOCK,
        Observation(result=0, calls=(sync(0, NONBLOCK, blockable=True),)),
        "INV-3",
        "told m0 blockable=True",
    ),
    "INV-4 eagain swallowed": (
        lambda: model_after(REG0),
        NONBLOCK,
        Observation(result=0, calls=(sync(0, NONBLOCK, reply=EAGAIN),)),
        "INV-4",
        "m0 answered -EAGAIN but the start returned 0",
    ),
    "INV-5 eagain when blockable": (
        lambda: model_after(REG0),
        START,
        Observation(result=EAGAIN, calls=(sync(0, reply=EAGAIN),)),
        "INV-5",
        "a blockable start",
    ),
    "INV-5 invented error": (
        lambda: model_after(REG0),
        NONBLOCK,
        Observation(result=ENOMEM, calls=(sync(0, NONBLOCK),)),
        "INV-5",
        "which no mirror answered",
    ),
    "INV-6 mirror skipped": (
        lambda: model_after(REG0, REG1),
        NONBLOCK,
        Observation(result=0, calls=(sync(1, NONBLOCK),)),
        "INV-6",
        "without calling m0",
    ),
    "INV-8 error leaks out": (
        lambda: model_after(REG0),
        NONBLOCK,
        Observation(result=ENOMEM, calls=(sync(0, NONBLOCK, reply=ENOMEM),)),
        "INV-8",
        "returned -ENOMEM after m0 answered -ENOMEM",
    ),
    "INV-8 error stops the loop": (
        lambda: model_after(REG0, REG1),
        NONBLOCK,
        Observation(result=0, calls=(sync(1, NONBLOCK, reply=ENOMEM),)),
        "INV-8",
        "the loop stopped after m1 answered -ENOMEM: m0 not called",
    ),
    "INV-9 range still valid": (
        lambda: model_after(REG0, SNAP0),
        START,
        Observation(result=0, calls=(sync(0, seen=((0, view()),)),)),
        "INV-9",
        "r0 was still valid",
    ),
    "INV-9 range not cleared": (
        lambda: model_after(REG0, SNAP0),
        START,
        Observation(result=0, calls=(sync(0, seen=((0, view(valid=False)),)),)),
        "INV-9",
        "before r0 was cleared",
    ),
    "END-1 end calls mirrors": (
        lambda: model_after(REG0, START),
        END,
        Observation(calls=(sync(0),)),
        "END-1",
        "end called m0",
    ),
    "END-2 end misses a range": (
        lambda: model_after(START, SNAP0),
        END,
        Observation(ranges=((0, view()),)),
        "END-2",
        "r0 overlaps [0x10000, 0x11000) but is still valid",
    ),
    "END-2 end clears too much": (
        lambda: model_after(START, SNAP0),
        END,
        Observation(ranges=((0, view(valid=False, entries=(0, 0, *FRESH[2:]))),)),
        "END-2",
        "entry 1 (0x11000) outside the update changed",
    ),
    "END-2 entries lost": (
        lambda: model_after(START, SNAP0),
        END,
        Observation(ranges=((0, view(valid=False, entries=(0,))),)),
        "END-2",
        "1 entries where the range has 4",
    ),
    "END-3 end without start": (
        model_after,
        END,
        Observation(),
        "END-3",
        "no successful start open",
    ),
    "RNG-1 snapshot fails": (model_after, SNAP0, Observation(result=-22), "RNG-1", "not 0"),
    "RNG-1 not registered": (
        model_after,
        SNAP0,
        Observation(result=0, ranges=((0, view(registered=False)),)),
        "RNG-1",
        "registered=False valid=True",
    ),
    "RNG-1 wrong length": (
        model_after,
        SNAP0,
        Observation(result=0, ranges=((0, view(entries=FRESH[:3])),)),
        "RNG-1",
        "has 3 entries, not 4",
    ),
    "RNG-1 wrong entry": (
        model_after,
        SNAP0,
        Observation(result=0, ranges=((0, view(entries=(7, *FRESH[1:]))),)),
        "RNG-1",
        "entry 0 (0x10000) is 0x7, not 0x100003",
    ),
    "RNG-2 unreadable succeeds": (
        model_after,
        Snapshot(range=0, vma=2, start=VMAS[2].start, end=VMAS[2].end, encoding=ENC),
        Observation(result=0),
        "RNG-2",
        "returned 0, not -EPERM",
    ),
    "RNG-2 failure registered": (
        model_after,
        Snapshot(range=0, vma=2, start=VMAS[2].start, end=VMAS[2].end, encoding=ENC),
        Observation(result=-1, ranges=((0, view(entries=(8, 8))),)),
        "RNG-2",
        "is registered",
    ),
    "RNG-2 wrong fill": (
        model_after,
        Snapshot(range=0, vma=3, start=VMAS[3].start, end=VMAS[3].end, encoding=ENC),
        Observation(result=-22, ranges=((0, view(registered=False, entries=(8, 8))),)),
        "RNG-2",
        "not values[SPECIAL] (0x20)",
    ),
    "RNG-3 range left valid": (
        lambda: model_after(SNAP0),
        START,
        Observation(result=0, ranges=((0, view()),)),
        "RNG-3",
        "but is still valid",
    ),
    "RNG-4 entries touched": (
        lambda: model_after(SNAP0),
        REG0,
        Observation(result=0, ranges=((0, view(entries=CLEARED)),)),
        "RNG-4",
        "register changed the entries of r0",
    ),
    "RNG-4 valid touched": (
        lambda: model_after(SNAP0),
        REG0,
        Observation(result=0, ranges=((0, view(valid=False)),)),
        "RNG-4",
        "register set r0 valid=False",
    ),
    "RNG-5 touching range cleared": (
        lambda: model_after(SNAP_HIGH),
        InvalidateStart(start=page(2), end=page(4), blockable=True),
        Observation(result=0, ranges=((0, view(valid=False, entries=(0, 0, 0, 0))),)),
        "RNG-5",
        "yet entries were cleared",
    ),
    "RNG-6 valid again": (
        lambda: model_after(SNAP0, START, END),
        Observe(range=0),
        Observation(ranges=((0, view(entries=CLEARED)),)),
        "RNG-6",
        "became valid again",
    ),
    "RNG-7 done refused": (
        lambda: model_after(SNAP0),
        RangeDone(range=0),
        Observation(rejected="no"),
        "RNG-7",
        "was refused: no",
    ),
    "RNG-7 wrong answer": (
        lambda: model_after(SNAP0, START, END),
        RangeDone(range=0),
        Observation(result=True),
        "RNG-7",
        "returned True; the range is invalid",
    ),
    "RNG-7 still registered": (
        lambda: model_after(SNAP0),
        RangeDone(range=0),
        Observation(result=True, ranges=((0, view()),)),
        "RNG-7",
        "still registered after range_done",
    ),
    "RNG-7 done range touched later": (
        lambda: model_after(SNAP0, RangeDone(range=0)),
        START,
        Observation(result=0, ranges=((0, view(registered=False, entries=CLEARED)),)),
        "RNG-7",
        "invalidate_start changed the entries of r0",
    ),
    "RNG-8 stale entries": (
        lambda: model_after(SNAP0),
        RangeDone(range=0),
        Observation(result=True, ranges=((0, view(registered=False, entries=(5, *FRESH[1:]))),)),
        "RNG-8",
        "entry 0 (0x10000) is 0x5; the CPU entry now encodes as 0x100003",
    ),
    "RNG-9 misuse absorbed": (
        model_after,
        RangeDone(range=9),
        Observation(result=False),
        "RNG-9",
        "range_done on a range never snapshotted (r9) returned False",
    ),
    "REL-1 callback after release": (
        lambda: model_after(REG0, Release()),
        START,
        Observation(result=0, calls=(sync(0),)),
        "REL-1",
        "m0 called after release",
    ),
    "REL-1 release outside release": (
        lambda: model_after(REG0),
        REG1,
        Observation(result=0, calls=(release(0),)),
        "REL-1",
        "register called release on m0",
    ),
    "REL-1 sync during release": (
        lambda: model_after(REG0),
        Release(),
        Observation(calls=(release(0), sync(0))),
        "REL-1",
        "release called sync on m0",
    ),
    "REL-1 release skipped": (
        lambda: model_after(REG0, REG1),
        Release(),
        Observation(calls=(release(1),)),
        "REL-1",
        "not once on each of [m1, m0]",
    ),
    "RNG-5 upper boundary is no overlap": (
        lambda: model_after(SNAP0),
        InvalidateStart(start=page(4), end=page(5), blockable=True),
        Observation(result=0, ranges=((0, view(valid=False)),)),
        "RNG-5",
        "set r0 valid=False, which it must not touch",
    ),
    "RNG-5 invalid touching range cleared": (
        lambda: model_after(
            SNAP_HIGH,
            InvalidateStart(start=page(4), end=page(5), blockable=True),
            InvalidateEnd(start=page(4), end=page(5)),
        ),
        InvalidateStart(start=page(2), end=page(4), blockable=True),
        Observation(result=0, ranges=((0, view(valid=False, entries=(0, 0, 0, 0))),)),
        "RNG-5",
        "yet entries were cleared",
    ),
    "RNG-6 valid again after release": (
        lambda: model_after(SNAP0, START, END, Release()),
        Observe(range=0),
        Observation(ranges=((0, view(entries=CLEARED)),)),
        "RNG-6",
        "became valid again",
    ),
    "RNG-7 done range invalidated later": (
        lambda: model_after(SNAP0, RangeDone(range=0)),
        START,
        Observation(result=0, ranges=((0, view(registered=False, valid=False)),)),
        "RNG-7",
        "set r0 valid=False, which it must not touch",
    ),
    "REL-3 range stays valid": (
        lambda: model_after(SNAP0, profile=Profile.STRICT),
        Release(),
        Observation(ranges=((0, view()),)),
        "REL-3",
        "still valid after release",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_failure_mode_fails_its_rule(name: str) -> None:
    """The hand-made observation of a broken candidate fails exactly the named rule's check."""
    build, op, observation, rule, words = CASES[name]
    verdicts = {v.rule: v for v in check_step(build(), op, observation)}
    assert rule in verdicts, f"{rule} gave no verdict: {sorted(map(str, verdicts))}"
    assert verdicts[rule].status is Status.FAIL
    assert words in verdicts[rule].detail


def test_every_core_rule_has_a_check_and_every_failure_mode_is_tried() -> None:
    """One check per REG/INV/END/RNG/FLT/REL rule; this file tries a failure of each MUST rule
    but the FLT ones, which tests/test_checks_faults.py tries."""
    assert len(CHECKS) == 35
    tried = {case[3] for case in CASES.values()}
    musts = {rule for rule, _ in CHECKS} - {"REG-4", "INV-7", "RNG-5", "REL-2", "REL-3"}
    assert {rule for rule in musts - tried if not rule.startswith("FLT-")} == set()


def test_latitudes_and_passes_are_not_failures() -> None:
    """Seed behaviour passes; another listed behaviour is ALLOWED and says which."""
    model = model_after(REG0, REG1)
    both = Observation(result=EAGAIN, calls=(sync(1, NONBLOCK, reply=EAGAIN), sync(0, NONBLOCK)))
    verdicts = {v.rule: v for v in check_step(model, NONBLOCK, both)}
    assert verdicts["INV-7"].status is Status.ALLOWED
    assert verdicts["INV-7"].latitude == "went on to call m0 after -EAGAIN"
    assert verdicts["INV-4"].status is verdicts["INV-5"].status is Status.PASS
    mixed = Observation(
        result=EAGAIN, calls=(sync(1, NONBLOCK, reply=ENOMEM), sync(0, NONBLOCK, reply=EAGAIN))
    )
    assert {v.rule: v for v in check_step(model, NONBLOCK, mixed)}["INV-8"].status is Status.PASS
    swallowed = Observation(
        result=0, calls=(sync(1, NONBLOCK, reply=ENOMEM), sync(0, NONBLOCK, reply=EAGAIN))
    )
    assert "INV-8" not in {v.rule for v in check_step(model, NONBLOCK, swallowed)}


def test_poisoned_register_passes_under_strict_when_it_succeeds() -> None:
    """REG-5 passes for a candidate with the fix: the register returns 0."""
    model = model_after(REG0, REG1, UnregisterMirror(mirror=0), profile=Profile.STRICT)
    verdicts = {v.rule: v for v in check_step(model, REG2, Observation(result=0))}
    assert verdicts["REG-5"].status is Status.PASS
    assert "REG-2" not in verdicts


def test_inv_9_is_skipped_without_the_capability() -> None:
    """Without observe-in-callback, INV-9 is SKIP, not PASS."""
    model = model_after(REG0, SNAP0, capabilities=frozenset({Capability.RELEASE}))
    verdicts = {
        v.rule: v for v in check_step(model, START, Observation(result=0, calls=(sync(0),)))
    }
    assert verdicts["INV-9"].status is Status.SKIP


def test_rng_8_is_not_checked_after_release_in_the_seed_profile() -> None:
    """The seed profile checks RNG-8 only up to release (REL-3 is a seed defect)."""
    model = model_after(SNAP0, Release())
    stale = Observation(result=True, ranges=((0, view(registered=False, entries=(5, 5, 5, 5))),))
    assert "RNG-8" not in {v.rule for v in check_step(model, RangeDone(range=0), stale)}


def test_set_pte_steps_need_no_candidate_and_leave_ranges_alone() -> None:
    """A CPU store is not seen by the candidate, nor are ranges observed: nothing to judge."""
    model = model_after(SNAP0, START)
    verdicts = check_step(model, SetCpuEntry(addr=page(0), pte=H.PTE_NONE), Observation())
    assert [v for v in verdicts if v.status is not Status.PASS] == []


def test_verdicts_describe_themselves() -> None:
    """A verdict reads as STATUS RULE: detail, or just RULE for a bare pass."""
    assert Verdict(rule="INV-5", status=Status.FAIL, detail="x").describe() == "FAIL INV-5: x"
    assert Verdict(rule="INV-5", status=Status.PASS).describe() == "INV-5"
    assert Verdict(rule=None, status=Status.CRASH, detail="boom").describe() == "CRASH: boom"
    assert Status.HANG.failed
    assert not Status.ALLOWED.failed


def test_steps_without_observations_are_judged_on_what_was_seen() -> None:
    """With no range observed, the range rules give no verdict rather than a wrong one."""
    snapshot = {v.rule for v in check_step(model_after(), SNAP0, Observation(result=0))}
    assert "RNG-1" not in snapshot
    unreadable = Snapshot(range=0, vma=2, start=VMAS[2].start, end=VMAS[2].end, encoding=ENC)
    verdicts = {v.rule: v for v in check_step(model_after(), unreadable, Observation(result=-1))}
    assert verdicts["RNG-2"].status is Status.PASS


def test_an_unobserved_touching_range_gets_no_rng_5_verdict() -> None:
    """RNG-5 judges only what was observed."""
    touching = InvalidateStart(start=page(2), end=page(4), blockable=True)
    verdicts = {v.rule for v in check_step(model_after(SNAP_HIGH), touching, Observation(result=0))}
    assert "RNG-5" not in verdicts


def test_rel_3_does_not_judge_empty_ranges() -> None:
    """An empty range has no pages to go stale: REL-3 has nothing to say about it."""
    empty = Snapshot(range=0, vma=0, start=page(1), end=page(1), encoding=ENC)
    model = model_after(empty, profile=Profile.STRICT)
    stale = Observation(ranges=((0, view(entries=())),))
    assert "REL-3" not in {v.rule for v in check_step(model, Release(), stale)}


@given(pte=ptes, encoding=st.sampled_from(ENCODINGS))
def test_the_models_encoder_agrees_with_the_references(pte: H.Pte, encoding: H.PfnEncoding) -> None:
    """RNG-1's encoding, stated twice: in the model (from the rule) and in hmm_ref (from the
    seed). They are written apart so that a fault in one cannot hide in the other."""
    assert encode(encoding, pte) == encoding.encode(pte)


# -- a seed defect is scored once ----------------------------------------------------------


@dataclass
class FixedRelease(ExactCore):
    """A core with the later fix at release (ranges invalid), declaring strict; ``deaf`` says
    which invalidations it no longer hears after release: none, ends, or all of them."""

    deaf: str = "none"
    released: bool = False

    def handshake(self) -> Handshake:
        inner = super().handshake()
        return Handshake(
            protocol_version=inner.protocol_version,
            name="fixed-release",
            version=inner.version,
            capabilities=inner.capabilities | {Capability.STRICT},
        )

    def release(self) -> None:
        super().release()
        self.released = True

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        if self.released and self.deaf == "all":
            return 0
        return super().invalidate_start(start, end, blockable)

    def invalidate_end(self, start: int, end: int) -> None:
        if not (self.released and self.deaf in ("all", "end")):
            super().invalidate_end(start, end)


def steps(candidate: Candidate, *ops: CoreOperation) -> list[StepOutcome]:
    """Each step of ``ops`` on ``candidate`` under strict, up to the first that fails."""
    executor = Executor(candidate, candidate.handshake(), Profile.STRICT, WORLD)
    assert executor.begin() is None
    for op in ops:
        assert executor.model.caller_violation(op) is None, op
        if executor.step(op).failed:
            break
    return executor.steps


def verdicts_of(outcomes: list[StepOutcome], *rules: str) -> list[tuple[int, str, Status]]:
    """(step, rule, status) of every verdict on ``rules`` that is not a pass."""
    return [
        (outcome.index, verdict.rule, verdict.status)
        for outcome in outcomes
        for verdict in outcome.verdicts
        if verdict.rule in rules and verdict.status is not Status.PASS
    ]


#: r0 is snapshotted inside the window W = [page 0, page 1), then made invalid by X at page 1,
#: so REL-3 has nothing to decide at release; Y (page 2) and W's end come after release.
WINDOW = InvalidateStart(start=page(0), end=page(1), blockable=True)
AFTER_RELEASE = (
    WINDOW,
    SNAP0,
    InvalidateStart(start=page(1), end=page(2), blockable=True),
    Release(),
    InvalidateStart(start=page(2), end=page(3), blockable=True),
    InvalidateEnd(start=page(0), end=page(1)),
)


def test_after_release_the_seeds_misses_are_rel_3s_not_end_2s_or_rng_3s() -> None:
    """The reference hears nothing after release (its notifier is gone); under strict the
    ranges it then misses are the seed defect's consequence, recorded as ALLOWED naming REL-3
    on END-2 and RNG-3, never failed."""
    outcomes = steps(reference(), *AFTER_RELEASE)
    assert not any(outcome.failed for outcome in outcomes)
    assert verdicts_of(outcomes, "END-2", "RNG-3", "REL-3") == [
        (4, "RNG-3", Status.ALLOWED),
        (5, "END-2", Status.ALLOWED),
        (5, "RNG-3", Status.ALLOWED),
    ]
    allowed = [v for v in outcomes[5].verdicts if v.status is Status.ALLOWED]
    assert {v.latitude for v in allowed} == {SEED_RELEASE_PATH}
    assert "REL-3" in SEED_RELEASE_PATH


def test_with_a_valid_range_at_release_the_reference_fails_rel_3_alone() -> None:
    """Had r0 been valid at release, the same case fails REL-3 there, once, and ends."""
    ops = (WINDOW, SNAP0, Release(), InvalidateEnd(start=page(0), end=page(1)))
    outcomes = steps(reference(), *ops)
    assert [v.rule for v in outcomes[-1].failures()] == ["REL-3"]
    assert len(outcomes) == 3
    assert verdicts_of(outcomes, "END-2", "RNG-3") == []


@pytest.mark.parametrize("deaf", ["end", "all"])
def test_a_core_with_the_release_fix_is_still_held_to_end_2_after_release(deaf: str) -> None:
    """A core whose release invalidated a valid range has not taken the seed's path, so an end
    after release that misses the range fails END-2 (and RNG-3), as before the release."""
    ops = (WINDOW, SNAP0, Release(), InvalidateEnd(start=page(0), end=page(1)))
    outcomes = steps(FixedRelease(deaf=deaf), *ops)
    assert {v.rule for v in outcomes[-1].failures()} == {"END-2", "RNG-3"}
    assert verdicts_of(outcomes[:-1], "REL-3") == []


def test_a_core_that_hears_starts_after_release_is_held_to_end_2_too() -> None:
    """A start after release that reaches r0 shows the candidate is not on the seed's path: the
    end after it that misses r0 fails END-2, where the reference's miss was ALLOWED."""
    outcomes = steps(FixedRelease(deaf="end"), *AFTER_RELEASE)
    assert {v.rule for v in outcomes[-1].failures()} == {"END-2", "RNG-3"}
    assert len(outcomes) == len(AFTER_RELEASE)


def test_a_fixed_core_conforms_after_release() -> None:
    """With the fix and every invalidation heard after release, nothing fails or is allowed."""
    outcomes = steps(FixedRelease(), *AFTER_RELEASE)
    assert verdicts_of(outcomes, "END-2", "RNG-3", "REL-3") == []
    assert not any(outcome.failed for outcome in outcomes)


def test_a_core_on_the_seeds_path_that_ruins_a_range_after_release_still_fails() -> None:
    """Only a range left exactly as it was is the seed's path: a miss that also changes the
    range (here entries outside the update) fails RNG-3 as ever."""
    model = model_after(WINDOW, SNAP0, AFTER_RELEASE[2], Release(), profile=Profile.STRICT)
    rng = model.ranges[0]
    ruined = (rng.entries[0], rng.entries[1], rng.entries[2], 0)
    y = AFTER_RELEASE[4]
    observed = Observation(result=0, ranges=((0, view(valid=False, entries=ruined)),))
    verdicts = {v.rule: v for v in check_step(model, y, observed)}
    assert verdicts["RNG-3"].status is Status.FAIL
    unchanged = Observation(result=0, ranges=((0, view(valid=False, entries=rng.entries)),))
    assert {v.rule: v for v in check_step(model, y, unchanged)}["RNG-3"].status is Status.ALLOWED


def test_under_strict_the_reference_fails_only_the_seed_defects() -> None:
    """A whole strict run of the reference without faults fails REG-5 and REL-3 only; the
    misses after release it also makes are counted as ALLOWED under END-2 and RNG-3. (Seed 6's
    run meets such a miss before it stops at its first failure; some seeds stop sooner.)"""
    candidate = C.NoFault()  # the reference without faults, whose FLT-6 would end it sooner
    result = run(
        candidate,
        candidate.handshake(),
        profile=Profile.STRICT,
        budget=BUDGETS["ci"],
        seed_value=6,
    )
    failed = {rule for rule, counts in result.tally.counts.items() if counts[Status.FAIL]}
    assert result.failure is not None
    assert failed <= {"REG-5", "REL-3"}
    assert "REL-3" in failed
    for rule in ("END-2", "RNG-3"):
        assert set(result.tally.latitudes[rule]) == {SEED_RELEASE_PATH}


def test_a_rule_without_its_check_fails_the_import_naming_it() -> None:
    """The registry finds each core rule's check by name; a rule without one is an ImportError
    that says which function to write."""
    assert [check.__name__ for _, check in CHECKS] == [
        f"check_{rule_id.replace('-', '_')}" for rule_id, _ in CHECKS
    ]
    with pytest.raises(ImportError, match="rule REG-99 has no check: write check_REG_99"):
        oracle._check_of("REG-99")


class _ClearsFailedSnapshots(C.Wrapped):
    """Links a snapshot before the vma tests and leaves it linked when they fail: every later
    invalidation then clears the entries of a range HMM never held."""

    name = "clears-failed-snapshots"

    def __init__(self) -> None:
        super().__init__()
        self.failed: set[int] = set()
        self.cleared: set[int] = set()

    def snapshot(
        self, range_id: int, vma: int, start: int, end: int, encoding: H.PfnEncoding
    ) -> int:
        result = super().snapshot(range_id, vma, start, end, encoding)
        if result:
            self.failed.add(range_id)
        return result

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        self.cleared |= self.failed
        return super().invalidate_start(start, end, blockable)

    def observe(self, range_id: int) -> RangeView:
        view = super().observe(range_id)
        if range_id in self.cleared:
            return replace(view, entries=(0,) * len(view.entries))
        return view


def test_RNG_2_a_failed_snapshot_is_never_written_afterwards() -> None:
    """HMM never holds a failed snapshot: a later invalidation that writes its entries breaks
    RNG-2 (the reference leaves them as the failure filled them)."""
    special = VMAS[3]
    case = CoreCase(
        world=WORLD,
        ops=(
            Snapshot(range=0, vma=3, start=special.start, end=special.end, encoding=ENC),
            InvalidateStart(start=special.start, end=special.end, blockable=True),
        ),
    )
    assert isinstance(replay(*start(reference), case, Profile.SEED), tuple)
    failure = replay(*start(_ClearsFailedSnapshots), case, Profile.SEED)
    assert isinstance(failure, Failure)
    assert [v.rule for v in failure.verdicts] == ["RNG-2"]
    assert len(failure.case.ops) == 2
