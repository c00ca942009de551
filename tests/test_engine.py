"""The engine end to end: generated runs, shrinking, replays, and candidates that misbehave."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import hmm_ref as H
from conformance import (
    BUDGETS,
    AdapterError,
    Budget,
    Candidate,
    Case,
    CaseFormatError,
    CoreOperation,
    Failure,
    InvalidateEnd,
    InvalidateStart,
    Profile,
    RangeDone,
    RegisterMirror,
    Release,
    SetCpuEntry,
    Snapshot,
    UnregisterMirror,
    World,
    reference,
    replay,
    run,
    start,
)
from conformance._generation import VMAS
from conformance._report import rule_rows
from conformance.core._side import CoreFailure, CoreResult, close_quietly, replay_failure
from conformance.oracle import Status
from examples.exact_core import ExactCore

from . import candidates as C

SEED = 20261124
SNAP_PAGE = Snapshot(
    range=0,
    vma=0,
    start=VMAS[0].start,
    end=VMAS[0].start + H.PAGE_SIZE,
    encoding=H.DEFAULT_ENCODING,
)
WORLD = World(vmas=VMAS, ptes=((VMAS[0].start, H.Pte.present(0x100, write=True)),))


def _run(
    factory: Callable[[], Candidate], profile: Profile = Profile.SEED, budget: str = "ci"
) -> CoreResult:
    candidate, handshake = start(factory)
    return run(candidate, handshake, profile=profile, budget=BUDGETS[budget], seed_value=SEED)


def _replay(
    factory: Callable[[], Candidate], *ops: CoreOperation, profile: Profile = Profile.SEED
) -> CoreFailure | None:
    candidate, handshake = start(factory)
    case = Case(world=WORLD, ops=ops)
    outcome = replay(candidate, handshake, case, profile)
    return outcome if isinstance(outcome, Failure) else None


def _rules(failure: CoreFailure | None) -> set[str | None]:
    assert failure is not None
    return {verdict.rule for verdict in failure.verdicts}


def test_reference_conforms_under_seed_and_exercises_every_rule() -> None:
    """At the CI budget the reference conforms and no rule of the profile is left unreached."""
    result = _run(reference)
    assert result.conforms
    statuses = {row.rule.id: row.status for row in rule_rows(result)}
    defects = (statuses.pop("REG-5"), statuses.pop("REL-3"), statuses.pop("FLT-6"))
    assert set(defects) == {"not-in-profile"}
    assert set(statuses.values()) == {"ok"}


def test_strict_run_fails_the_reference_on_a_seed_defect_shrunk_to_its_sequence() -> None:
    """Under strict the reference fails, as documented, on one of its seed defects, shrunk
    to that defect's own sequence: a snapshot, then release (REL-3); two registers, the
    older unregistered, and one more register (REG-5); or a blocking fault (FLT-6)."""
    result = _run(reference, Profile.STRICT)
    assert result.failure is not None
    shortest = {
        "REL-3": ["snapshot", "release"],
        "REG-5": ["register", "register", "unregister", "register"],
        "FLT-6": ["fault"],
    }
    [rule] = _rules(result.failure)
    assert rule is not None
    assert [op.name for op in result.failure.case.ops] == shortest[rule]


def test_strict_reference_fails_reg_5_and_rel_3_on_their_sequences() -> None:
    """Each seed defect's own sequence fails the reference under strict, against its rule."""
    livelock = _replay(
        reference,
        RegisterMirror(mirror=0),
        RegisterMirror(mirror=1),
        UnregisterMirror(mirror=0),
        RegisterMirror(mirror=2),
        profile=Profile.STRICT,
    )
    assert _rules(livelock) == {"REG-5"}
    assert livelock is not None
    assert "never returns" in livelock.verdicts[0].detail
    stale = _replay(
        reference,
        SNAP_PAGE,
        Release(),
        profile=Profile.STRICT,
    )
    assert _rules(stale) == {"REL-3"}


def test_seed_profile_accepts_the_seed_and_the_fix_at_release() -> None:
    """In the seed profile, a range may stay valid at release (seed) or turn invalid (fix)."""
    ops = (
        SNAP_PAGE,
        Release(),
        RangeDone(range=0),
    )
    assert _replay(reference, *ops) is None
    assert _replay(ExactCore, *ops) is None


def test_strict_needs_the_strict_capability() -> None:
    """A candidate that does not declare strict is not driven into the defect sequences."""
    result = _run(C.NoStrict, Profile.STRICT, "fast")
    assert result.conforms
    statuses = {row.rule.id: row.status for row in rule_rows(result)}
    assert statuses["REG-5"] == statuses["REL-3"] == "not-in-profile"


def test_undeclared_capabilities_are_skipped() -> None:
    """Without release or observe-in-callback, the gated rules are SKIP, never generated."""
    result = _run(C.Minimal, budget="fast")
    assert result.conforms
    statuses = {row.rule.id: row.status for row in rule_rows(result)}
    assert {statuses[r] for r in ("INV-9", "REL-1", "REL-2", "REL-3")} <= {
        "skipped",
        "not-in-profile",
    }
    assert statuses["INV-9"] == "skipped"


def test_a_candidate_taking_every_latitude_conforms_with_allowed_verdicts() -> None:
    """The exact-overlap, oldest-first core conforms; its latitudes are reported, not failed."""
    result = _run(ExactCore, budget="fast")
    assert result.conforms
    statuses = {row.rule.id: row.status for row in rule_rows(result)}
    assert {statuses[r] for r in ("REG-4", "INV-7", "RNG-5", "REL-2")} == {"allowed"}


@pytest.mark.parametrize(
    ("factory", "rule", "most", "seed"),
    [
        (C.ParentTree, "INV-5", 1, SEED),
        (C.BlockableStops, "INV-2", 3, 4),
        (C.NoClear, "RNG-3", 3, 10),
    ],
)
def test_broken_candidates_are_caught_against_their_rule(
    factory: type[C.Wrapped], rule: str, most: int, seed: int
) -> None:
    """Each hand-broken candidate fails its own rule at the CI budget, fully shrunk. (Seeds
    whose failure Hypothesis shrinks in a few hundred cases, not over a thousand: CI time.)"""
    candidate, handshake = start(factory)
    result = run(candidate, handshake, budget=BUDGETS["ci"], seed_value=seed)
    assert result.failure is not None
    assert result.failure.reproduced
    assert rule in _rules(result.failure)
    assert len(result.failure.case.ops) <= most


def test_a_raising_candidate_is_a_crash_verdict_with_its_traceback() -> None:
    """An exception in the candidate becomes CRASH with the traceback; the harness goes on."""
    result = _run(C.Crashes, budget="fast")
    assert result.failure is not None
    verdict = result.failure.verdicts[0]
    assert verdict.status is Status.CRASH
    assert "RuntimeError: oops in invalidate_start" in verdict.detail
    assert isinstance(result.failure.case.ops[-1], InvalidateStart)


def test_a_crash_at_begin_is_reported_before_any_step() -> None:
    """A candidate that cannot begin a case fails with a CRASH and no steps."""
    result = _run(C.CrashesAtBegin, budget="fast")
    assert result.failure is not None
    assert result.failure.setup_crash is not None
    assert "OSError: cannot set up" in result.failure.setup_crash.detail
    assert result.failure.case.ops == ()


@pytest.mark.parametrize(
    ("factory", "status", "words"),
    [
        (C.Nonsense, Status.PROTOCOL, "register answered '0', not an int"),
        (C.BadObserve, Status.PROTOCOL, "not a RangeView"),
        (C.ForgetsRanges, Status.PROTOCOL, "observe(r0) was refused: what is r0?"),
        (C.Hangs, Status.HANG, "waits forever on a lock"),
        (C.ObserveFailsInCallback, Status.CRASH, "RuntimeError: observe while invalidating"),
    ],
)
def test_misbehaving_candidates_get_their_verdict(
    factory: type[C.Wrapped], status: Status, words: str
) -> None:
    """Nonsense answers and failed observations are PROTOCOL or CRASH; a call that would
    never return is HANG; in each case the run ends cleanly with the verdict."""
    result = _run(factory)
    assert result.failure is not None
    verdict = result.failure.verdicts[0]
    assert verdict.status is status
    assert words in verdict.detail


SNAP_ALL = Snapshot(
    range=0, vma=0, start=VMAS[0].start, end=VMAS[0].end, encoding=H.DEFAULT_ENCODING
)
REFUSED_CASES: dict[str, tuple[tuple[CoreOperation, ...], str]] = {
    "register on a poisoned hmm": (
        (
            RegisterMirror(mirror=0),
            RegisterMirror(mirror=1),
            UnregisterMirror(mirror=0),
            RegisterMirror(mirror=2),
        ),
        "step 4 (register mirror m2): a mirror was unregistered",
    ),
    "end without start": (
        (InvalidateEnd(start=VMAS[0].start, end=VMAS[0].end),),
        "step 1 (invalidate_end [0x10000, 0x18000)): no successful start",
    ),
    "register after release": ((Release(), RegisterMirror(mirror=0)), "the mm has exited"),
    "CPU change outside a window": (
        (SetCpuEntry(addr=VMAS[0].start, pte=H.PTE_NONE),),
        "the CPU changes an entry only inside an open invalidation window",
    ),
    "orphaning a snapshot": (
        (RegisterMirror(mirror=0), SNAP_ALL, UnregisterMirror(mirror=0)),
        "step 3 (unregister mirror m0): this unregister could leave",
    ),
    "mirror number reused": (
        (RegisterMirror(mirror=0), RegisterMirror(mirror=0)),
        "m0 was registered before",
    ),
    "range number reused": ((SNAP_ALL, SNAP_ALL), "range r0 exists already"),
}


@pytest.mark.parametrize("name", list(REFUSED_CASES))
def test_replay_refuses_cases_that_break_the_callers_side(name: str) -> None:
    """A case the generators would never make is refused with the step and the reason."""
    ops, message = REFUSED_CASES[name]
    with pytest.raises(CaseFormatError) as caught:
        _replay(reference, *ops)
    assert message in str(caught.value)


def test_a_failure_that_does_not_happen_again_is_marked_not_reproduced() -> None:
    """Replaying a 'failing' case that passes gives a Failure with reproduced=False."""
    candidate, handshake = start(reference)
    failure = replay_failure(
        candidate, handshake, Case(world=WORLD, ops=(Release(),)), Profile.SEED
    )
    assert not failure.reproduced
    assert [step.op for step in failure.steps] == [Release()]


def test_a_flaky_candidate_keeps_its_failing_case_as_first_seen() -> None:
    """A candidate that fails once and then passes is FLAKY, with the failing case, its steps
    and its verdicts as they were when it failed, not Hypothesis's internal message."""
    C.Flaky.failed_once = False
    result = _run(C.Flaky, budget="fast")
    assert result.flaky is not None
    assert result.flaky.startswith(f"FLAKY: the candidate failed case {result.first_failure} once")
    assert "Inconsistent" not in result.flaky
    failure = result.failure
    assert failure is not None
    assert not failure.reproduced
    assert len(failure.steps) == len(failure.case.ops) > 0
    failing = failure.steps[-1].op
    assert isinstance(failing, InvalidateStart)
    assert not failing.blockable
    assert any(v.rule == "INV-5" for v in failure.verdicts)
    assert not result.conforms


def test_a_handshake_that_raises_is_a_setup_error() -> None:
    """start() turns a raising handshake into an AdapterError that names it."""
    with pytest.raises(AdapterError, match="handshake\\(\\) raised ConnectionError: no answer"):
        start(C.RaisingHandshake)


def test_close_failures_are_reported_not_raised() -> None:
    """close_quietly returns the problem instead of raising it."""
    assert close_quietly(C.BadClose()) == "the candidate's close() raised OSError: device busy"
    assert close_quietly(C.Wrapped()) is None


def test_unregistering_a_mirror_never_registered_is_a_no_op() -> None:
    """REG-3: an unknown mirror's unregister does nothing and fails nothing."""
    assert _replay(reference, UnregisterMirror(mirror=9)) is None


def test_a_run_that_leaves_a_rule_unreached_is_inconclusive() -> None:
    """No failure is not conformance: a rule in force that never came up makes the run
    inconclusive, and the rules out of force (gated, seed defects) do not count."""
    candidate, handshake = start(reference)
    tiny = run(
        candidate,
        handshake,
        budget=Budget(name="tiny", examples=2, steps=3),
        seed_value=1,
        aim=False,
    )
    assert tiny.failure is None
    assert not tiny.conforms
    assert tiny.unreached
    for rule in tiny.unreached:  # in force, and never exercised
        assert sum(tiny.tally.counts.get(rule, {}).values()) == 0, rule
    assert "REG-5" not in tiny.unreached
    minimal = _run(C.Minimal, budget="fast")
    assert minimal.unreached == ()
