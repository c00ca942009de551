"""Running the suite, for any side: a Hypothesis run over many cases, and the replay of one case.

:func:`run` runs a side's state machine on a started candidate for a budget of cases, and, if
a case fails, replays it on the same candidate step by step and shortens it further
(:func:`minimise`) so that the report shows every step's verdicts. :func:`replay` runs a saved
case the same way, without Hypothesis. Everything that differs between the sides comes through
their :class:`~conformance._side.Side`; each side's public functions (``conformance.run``,
``conformance.driver.run_driver``) are these, with the side filled in.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import IO, Any, Generic, TypeVar, final

from hypothesis import seed
from hypothesis.stateful import RuleBasedStateMachine

from . import _aiming as aiming
from ._alarm import Watchdog
from ._case import CaseFormatError
from ._connect import connect
from ._counting import LIVE, Budget, CaseCount, Recorder, budget_from_env
from ._driving import FailureT, drive, errors_end_generation, flaky_note, interrupted, settle
from ._errors import AdapterError, CandidateFault
from ._isolation import Interrupted
from ._rules import Level, Profile, Rule, out_of_force
from ._side import (
    CandidateT,
    CaseT,
    Failure,
    HandshakeT,
    Handshaking,
    OpT,
    Side,
    StepT,
    WouldWaitError,
)
from ._verdicts import Status, Tally

__all__ = [
    "RunInterrupted",
    "RunResult",
    "close",
    "confirm",
    "graded",
    "minimise",
    "replay",
    "run",
    "start",
    "swapped",
]


def unreached(
    rules: Collection[Rule], tally: Tally, profile: Profile, declared: Collection[str]
) -> tuple[str, ...]:
    """The rules in force that no step exercised: a run that leaves any proves nothing of them.

    ``declared`` are the capabilities the candidate declared, by value."""
    reached = {
        rule_id
        for rule_id, counts in tally.counts.items()
        if counts[Status.PASS] + counts[Status.ALLOWED] + counts[Status.FAIL]
    }
    return tuple(
        rule.id
        for rule in rules
        if out_of_force(rule, strict=profile is Profile.STRICT, capabilities=declared) is None
        and rule.id not in reached
    )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult(Generic[HandshakeT, CaseT, StepT]):
    """What one run found, on any side."""

    side: Side[Any, HandshakeT, CaseT, StepT]
    handshake: HandshakeT
    profile: Profile
    budget: Budget
    seed: int
    tally: Tally
    failure: Failure[CaseT, StepT] | None
    #: Set when Hypothesis saw a failure it could not reproduce (a nondeterministic candidate).
    flaky: str | None = None
    #: Rules in force that no step exercised; with any, the run is inconclusive.
    unreached: tuple[str, ...] = ()
    #: How many cases were generated up to and including the first that failed.
    first_failure: int | None = None
    #: How many cases were generated: the budget, or up to the first failure.
    cases: int = 0
    #: The failure is one an earlier run saved in the example database, tried first.
    from_database: bool = False
    #: The rules no generated case reached, which the run then reached with aimed cases.
    aimed: tuple[str, ...] = ()
    #: How many aimed cases it ran (one may reach several rules).
    aimed_cases: int = 0
    #: The failure came from aiming, not from a generated case.
    aimed_failure: bool = False

    @property
    def shrink_cases(self) -> int:
        """How many cases were run after the first failure, to shrink it and replay it."""
        return self.tally.cases - self.cases - self.aimed_cases

    @property
    def conforms(self) -> bool:
        """No rule failed, and every rule in force was exercised (a graded SHOULD is no
        failure)."""
        return self.failure is None and self.flaky is None and not self.unreached

    @property
    def graded(self) -> int:
        """How many answers the side's SHOULD rules graded (allowed, but not the best)."""
        return graded(self.side.rules, self.tally)


def graded(rules: Collection[Rule], tally: Tally) -> int:
    """How many answers ``rules``' SHOULD rules graded in ``tally``."""
    return sum(
        tally.counts[rule.id][Status.ALLOWED]
        for rule in rules
        if rule.level is Level.SHOULD and rule.id in tally.counts
    )


def _declared(handshake: Handshaking) -> set[str]:
    return {capability.value for capability in handshake.capabilities}


def start(
    side: Side[CandidateT, HandshakeT, Any, Any], factory: Callable[[], CandidateT]
) -> tuple[CandidateT, HandshakeT]:
    """Make the candidate and read its handshake; :class:`AdapterError` if either fails.

    A :class:`CandidateFault` from the handshake (an out-of-process candidate that hung, died or
    said a malformed hello) is the candidate's failure, not a setup error: it propagates.
    """
    try:
        candidate = factory()
    except AdapterError:
        raise
    except Exception as error:
        raise AdapterError(f"the adapter factory raised {type(error).__name__}: {error}") from error
    try:
        handshake = candidate.handshake()
    except CandidateFault:
        close(side, candidate)
        raise
    except Exception as error:
        raise AdapterError(f"handshake() raised {type(error).__name__}: {error}") from error
    return candidate, side.check_handshake(handshake)


def open_session(
    side: Side[CandidateT, HandshakeT, Any, Any],
    spec: str,
    *,
    step_timeout: float,
    log: IO[str] | None,
    watchdog: Watchdog | None,
    isolate: bool,
) -> tuple[CandidateT, HandshakeT]:
    """Connect the adapter ``spec`` names for ``side`` and start its candidate: how the command
    line and the pytest plugin alike begin a session (:func:`close` ends it)."""
    factory = connect(
        side, spec, step_timeout=step_timeout, log=log, watchdog=watchdog, isolate=isolate
    )
    return start(side, factory)


def close(side: Side[CandidateT, Any, Any, Any], candidate: CandidateT) -> str | None:
    """Close the candidate; a failure to close is reported, never raised."""
    try:
        candidate.close()
    except Exception as error:
        return f"the {side.who}'s close() raised {type(error).__name__}: {error}"
    return None


def replay(
    side: Side[CandidateT, HandshakeT, CaseT, StepT],
    candidate: CandidateT,
    handshake: HandshakeT,
    case: CaseT,
    profile: Profile,
    *,
    tally: Tally | None = None,
    stop_at_failure: bool = True,
) -> Failure[CaseT, StepT] | tuple[StepT, ...]:
    """Run ``case`` step by step; a :class:`Failure` at the first failing step, else every
    outcome. :class:`CaseFormatError` if a step breaks the caller's side of the protocol, or
    would wait for a lock with this candidate (the case does not apply to it)."""
    executor = side.executor(candidate, handshake, case, profile, tally)
    LIVE.document = lambda: side.case_to_json(case)
    crash = executor.begin()
    if crash is not None:
        return Failure(case=case, steps=(), setup_crash=crash)
    for number, op in enumerate(case.ops, start=1):
        violation = executor.caller_violation(op)
        if violation is not None:
            raise CaseFormatError(f"step {number} ({op.describe()}): {violation}")
        try:
            outcome = executor.step(op)
        except WouldWaitError as error:
            raise CaseFormatError(
                f"step {number} ({op.describe()}) cannot be taken now: {error}"
            ) from None
        if outcome.failed and stop_at_failure:
            # Operations after the failing step change nothing: the case ends there.
            return Failure(case=side.with_ops(case, number), steps=tuple(executor.steps))
    return tuple(executor.steps)


def confirm(
    side: Side[CandidateT, HandshakeT, CaseT, StepT],
    candidate: CandidateT,
    handshake: HandshakeT,
    case: CaseT,
    profile: Profile,
) -> Failure[CaseT, StepT]:
    """Replay a case that failed; if it does not fail again, say it was not reproduced."""
    outcome = replay(side, candidate, handshake, case, profile)
    if isinstance(outcome, Failure):
        return outcome
    return Failure(case=case, steps=outcome, reproduced=False)


def _broken(failure: Failure[Any, Any]) -> set[str]:
    return {verdict.rule or verdict.status.name for verdict in failure.verdicts}


def swapped(ops: tuple[OpT, ...]) -> list[tuple[OpT, ...]]:
    """``ops`` with each two neighbours swapped, the first two first: the reorders a side's
    :meth:`Side.edits` offers the minimiser."""
    return [
        (*ops[:index], ops[index + 1], ops[index], *ops[index + 2 :])
        for index in range(len(ops) - 1)
    ]


def minimise(
    side: Side[CandidateT, HandshakeT, CaseT, StepT],
    candidate: CandidateT,
    handshake: HandshakeT,
    failure: Failure[CaseT, StepT],
    profile: Profile,
) -> Failure[CaseT, StepT]:
    """Try the side's edits of the case (deleting operations, swapping two neighbours, ...)
    while the case gets shorter (or, same length, lower in the side's :meth:`Side.order`) and
    still breaks one of the same rules.

    Hypothesis shrinks the choices behind a case; this pass shrinks the case itself, which
    operations-as-data make cheap. A swap helps when the failure then comes a step earlier: a
    snapshot taken inside a window fails at the window's end, and taken before it at its start.
    """
    best, broken = failure, _broken(failure)
    shrinking = True
    while shrinking:
        shrinking = False
        for case in side.edits(best.case):
            try:
                outcome = replay(side, candidate, handshake, case, profile)
            except CaseFormatError:  # that edit breaks the caller's side, or would wait
                continue
            if (
                isinstance(outcome, Failure)
                and _broken(outcome) & broken
                and side.order(outcome.case) < side.order(best.case)
            ):
                best, shrinking = outcome, True
                break
    return best


class RunInterrupted(BaseException):
    """SIGINT or SIGTERM stopped a run; :attr:`result` is what it had found by then (its
    failure, if any, as last seen, not shrunk further), to save and report."""

    def __init__(self, cause: BaseException, result: RunResult[Any, Any, Any]) -> None:
        super().__init__(str(cause) or "interrupted")
        self.result = result
        #: The exit status a command should end with: 130 for SIGINT, 143 for SIGTERM.
        self.exit_status = cause.exit_status if isinstance(cause, Interrupted) else 130


#: A side's run result.
ResultT = TypeVar("ResultT", bound=RunResult[Any, Any, Any])


def conclude(
    machine: type[RuleBasedStateMachine],
    budget: Budget,
    database: Path | None,
    recorder: Recorder[FailureT],
    *,
    who: str,
    replay: Callable[[FailureT], FailureT],
    minimise: Callable[[FailureT], FailureT],
    as_flaky: Callable[[FailureT], FailureT],
    result: Callable[[FailureT | None, str | None, bool], ResultT],
    aim: Callable[[], None] | None = None,
) -> ResultT:
    """Run the machine and settle what it found: the end of a run, the same for every side.

    ``result`` makes the side's result of (failure, flaky note, from the example database);
    ``aim``, run when the machine found no failure, aims cases at the rules it never reached.
    A signal at any point, the final replay and minimise included, is a
    :class:`RunInterrupted` that carries the failure found so far.
    """
    try:
        saved = drive(machine, budget, database, failed=lambda: recorder.failing is not None)
        interrupted()
        if aim is not None and recorder.failing is None:
            aim()
            interrupted()
        failure, flaky = settle(
            recorder.failing,
            recorder.first_seen,
            replay=replay,
            minimise=minimise,
            as_flaky=as_flaky,
        )
    except (KeyboardInterrupt, Interrupted) as stop:
        raise RunInterrupted(stop, result(recorder.failing, None, False)) from None
    note = flaky_note(who, recorder.count.first_failure) if flaky else None
    return result(failure, note, saved)


def aim_at_unreached(
    side: Side[CandidateT, HandshakeT, CaseT, StepT],
    candidate: CandidateT,
    handshake: HandshakeT,
    *,
    profile: Profile,
    tally: Tally,
    recorder: Recorder[Failure[CaseT, StepT]],
    report: aiming.Report,
) -> None:
    """Run a case aimed at each rule in force that no case reached, if the side's scope has
    one (``conformance._aiming``), counting into ``tally``; a failure goes to ``recorder`` as
    a generated case's would. ``report`` says what was aimed at and whether it failed."""
    explorer = side.explorer
    missing = unreached(side.rules, tally, profile, _declared(handshake))
    if explorer is None or not missing:
        return
    found = aiming.aim(explorer.space(candidate, handshake, profile), missing)
    report.rules = tuple(rule for rule in missing if rule in found.cases)
    cases = tuple(dict.fromkeys(found.cases.values()))
    report.cases = len(cases)
    for case in (*cases, found.failing):
        if case is not None:
            outcome = replay(side, candidate, handshake, case, profile, tally=tally)
            if isinstance(outcome, Failure):
                recorder.failing = recorder.first_seen = outcome
                report.failed = True
                return


def run(
    side: Side[CandidateT, HandshakeT, CaseT, StepT],
    candidate: CandidateT,
    handshake: HandshakeT,
    *,
    profile: Profile = Profile.SEED,
    budget: Budget | None = None,
    seed_value: int | None = None,
    on_case: Callable[[int], None] | None = None,
    keep: list[CaseT] | None = None,
    database: Path | None = None,
    aim: bool = True,
) -> RunResult[HandshakeT, CaseT, StepT]:
    """Check ``candidate`` of ``side`` over a budget of generated cases; shrink and replay a
    failure. The arguments are the public ``conformance.run``'s, which documents them.
    """
    given = budget or budget_from_env()
    budget = replace(given, shrinks=side.shrinks) if given.shrinks is None else given
    chosen_seed = seed_value if seed_value is not None else secrets.randbelow(2**32)
    tally = Tally()
    count = CaseCount(limit=budget.examples, shrink_limit=budget.shrinks, on_case=on_case)
    machine, recorder = side.machine(
        candidate, handshake, profile=profile, tally=tally, count=count, keep=keep
    )

    aimed = aiming.Report()
    base: RunResult[HandshakeT, CaseT, StepT] = RunResult(
        side=side, handshake=handshake, profile=profile, budget=budget, seed=chosen_seed,
        tally=tally, failure=None,
    )  # fmt: skip

    def result(
        failure: Failure[CaseT, StepT] | None, flaky: str | None, saved: bool
    ) -> RunResult[HandshakeT, CaseT, StepT]:
        return replace(
            base, failure=failure, flaky=flaky, first_failure=count.first_failure,
            unreached=unreached(side.rules, tally, profile, _declared(handshake)),
            cases=count.generated, from_database=saved, aimed=aimed.rules,
            aimed_cases=aimed.cases, aimed_failure=failure is not None and aimed.failed,
        )  # fmt: skip

    LIVE.start(
        side.run_stem(handshake, profile, chosen_seed), profile=profile.value, seed=chosen_seed,
        candidate={"name": handshake.name, "version": handshake.version},
    )  # fmt: skip
    return conclude(
        seed(chosen_seed)(errors_end_generation(machine, count)),
        budget,
        database,
        recorder,
        who=side.who,
        replay=lambda seen: confirm(side, candidate, handshake, seen.case, profile),
        minimise=lambda found: minimise(side, candidate, handshake, found, profile),
        as_flaky=lambda seen: replace(seen, reproduced=False),
        result=result,
        aim=partial(
            aim_at_unreached, side, candidate, handshake, profile=profile, tally=tally,
            recorder=recorder, report=aimed,
        ) if aim else None,
    )  # fmt: skip
