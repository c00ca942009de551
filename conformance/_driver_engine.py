"""Running the driver side: a Hypothesis run over many cases, shrinking, and replay.

The same shape as the core's engine (:mod:`conformance._engine`): :func:`run_driver` starts the
driver once, runs the driver state machine for a budget of cases, and if a case fails, replays
the shrunk case step by step and shortens it further by deleting operations
(:func:`minimise_driver`). :func:`replay_driver` runs a saved case without Hypothesis. A run in
which a DRV rule never came up proves nothing of it, so it is INCONCLUSIVE, not "conforms".

There are no profiles on this side: the drivers run on the seed's HMM core, so a result always
says ``profile seed``.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar, Final, final

from hypothesis import seed

from hmm_ref import PTE_NONE

from ._case import CaseFormatError, World
from ._counting import LIVE, CaseCount
from ._driver_adapter import DriverCandidate, DriverHandshake, check_driver_handshake
from ._driver_executor import DriverExecutor, DriverStepOutcome, WouldWaitError
from ._driver_machine import DriverCaseRecorder, DriverFailure, driver_machine_for
from ._driver_ops import (
    DRIVER_SIDE,
    CpuSetEntry,
    DriverCase,
    DriverOperation,
    driver_case_to_json,
)
from ._engine import Budget, budget_from_env, conclude
from ._errors import AdapterError, CandidateFault
from ._outputs import file_stem
from ._rules import Profile, rules_of
from ._verdicts import Status, Tally

__all__ = [
    "DriverFailure",
    "DriverRunResult",
    "close_driver",
    "minimise_driver",
    "replay_driver",
    "replay_driver_failure",
    "run_driver",
    "start_driver",
]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class DriverRunResult:
    """What one driver-side run found."""

    side: ClassVar[str] = DRIVER_SIDE
    handshake: DriverHandshake
    budget: Budget
    seed: int
    tally: Tally
    failure: DriverFailure | None
    flaky: str | None = None
    #: DRV rules that no step exercised; with any, the run is inconclusive.
    unreached: tuple[str, ...] = ()
    first_failure: int | None = None
    #: How many cases were generated: the budget, or up to the first failure.
    cases: int = 0
    #: The failure is one an earlier run saved in the example database, tried first.
    from_database: bool = False
    #: The drivers run on the seed's core: there is no other profile on this side.
    profile: Profile = Profile.SEED

    @property
    def conforms(self) -> bool:
        """No rule failed, and every DRV rule was exercised (a graded DRV-6 is no failure)."""
        return self.failure is None and self.flaky is None and not self.unreached

    @property
    def shrink_cases(self) -> int:
        """How many cases were run after the first failure, to shrink it and replay it."""
        return self.tally.cases - self.cases

    @property
    def graded(self) -> int:
        """How many answers DRV-6 graded as over-conservative."""
        return self.tally.counts.get("DRV-6", Counter())[Status.ALLOWED]


def start_driver(factory: Callable[[], DriverCandidate]) -> tuple[DriverCandidate, DriverHandshake]:
    """Make the driver and read its handshake; :class:`AdapterError` if either fails.

    A :class:`CandidateFault` from the handshake (it hung past its budget) is the driver's
    failure, not a setup error: it propagates, as :func:`conformance.start`'s does.
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
        close_driver(candidate)
        raise
    except Exception as error:
        raise AdapterError(f"handshake() raised {type(error).__name__}: {error}") from error
    return candidate, check_driver_handshake(handshake)


def close_driver(candidate: DriverCandidate) -> str | None:
    """Close the driver; a failure to close is reported, never raised."""
    try:
        candidate.close()
    except Exception as error:
        return f"the driver's close() raised {type(error).__name__}: {error}"
    return None


def unreached_driver(tally: Tally) -> tuple[str, ...]:
    """The DRV rules that no step exercised."""
    return tuple(
        rule.id
        for rule in rules_of(DRIVER_SIDE)
        if not sum(tally.counts.get(rule.id, Counter())[status] for status in _EXERCISED)
    )


_EXERCISED: Final = (Status.PASS, Status.ALLOWED, Status.FAIL)


def replay_driver(
    candidate: DriverCandidate,
    handshake: DriverHandshake,
    case: DriverCase,
    *,
    tally: Tally | None = None,
) -> DriverFailure | tuple[DriverStepOutcome, ...]:
    """Run ``case`` step by step; a :class:`DriverFailure` at the first failing step, else every
    outcome. :class:`CaseFormatError` if a step breaks the caller's protocol, or would wait for
    a lock with this driver (the case does not apply to it)."""
    executor = DriverExecutor(candidate, handshake, case.world, case.encoding, tally)
    LIVE.document = lambda: driver_case_to_json(case)
    crash = executor.begin()
    if crash is not None:
        return DriverFailure(case=case, steps=(), setup_crash=crash)
    for number, op in enumerate(case.ops, start=1):
        violation = executor.model.caller_violation(op)
        if violation is not None:
            raise CaseFormatError(f"step {number} ({op.describe()}): {violation}")
        try:
            outcome = executor.step(op)
        except WouldWaitError as error:
            raise CaseFormatError(
                f"step {number} ({op.describe()}) cannot be taken now: {error}"
            ) from None
        if outcome.failed:
            trimmed = DriverCase(world=case.world, encoding=case.encoding, ops=case.ops[:number])
            return DriverFailure(case=trimmed, steps=tuple(executor.steps))
    return tuple(executor.steps)


def replay_driver_failure(
    candidate: DriverCandidate, handshake: DriverHandshake, case: DriverCase
) -> DriverFailure:
    """Replay a case that failed; if it does not fail again, say it was not reproduced."""
    outcome = replay_driver(candidate, handshake, case)
    if isinstance(outcome, DriverFailure):
        return outcome
    return DriverFailure(case=case, steps=outcome, reproduced=False)


def _broken(failure: DriverFailure) -> set[str]:
    return {verdict.rule or verdict.status.name for verdict in failure.verdicts}


def _edits(case: DriverCase) -> Iterator[DriverCase]:
    """Shorter variants of ``case``: a run of operations deleted, longest runs first (halves,
    quarters, ..., single operations); a CPU change folded into the world it starts from; two
    neighbours swapped (the same length, which a later deletion may then shorten)."""
    ops = case.ops

    def variant(new_ops: tuple[DriverOperation, ...], world: World = case.world) -> DriverCase:
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
            ptes = tuple((a, p) for a, p in case.world.ptes if a != op.addr)
            if op.pte != PTE_NONE:
                ptes = tuple(sorted((*ptes, (op.addr, op.pte))))
            world = World(vmas=case.world.vmas, ptes=ptes)
            yield variant(ops[:index] + ops[index + 1 :], world)
    for index in range(len(ops) - 1):
        yield variant((*ops[:index], ops[index + 1], ops[index], *ops[index + 2 :]))


def minimise_driver(
    candidate: DriverCandidate, handshake: DriverHandshake, failure: DriverFailure
) -> DriverFailure:
    """Delete operations, or swap two neighbours, while the case gets shorter and still
    breaks one of the same rules (the core's pass, :func:`conformance._engine.minimise`)."""
    best, broken = failure, _broken(failure)
    shrinking = True
    while shrinking:
        shrinking = False
        for case in _edits(best.case):
            try:
                outcome = replay_driver(candidate, handshake, case)
            except CaseFormatError:  # that edit breaks the caller's side, or would wait
                continue
            if (
                isinstance(outcome, DriverFailure)
                and _broken(outcome) & broken
                and len(outcome.case.ops) < len(best.case.ops)
            ):
                best, shrinking = outcome, True
                break
    return best


def run_driver(
    candidate: DriverCandidate,
    handshake: DriverHandshake,
    *,
    budget: Budget | None = None,
    seed_value: int | None = None,
    on_case: Callable[[int], None] | None = None,
    database: Path | None = None,
) -> DriverRunResult:
    """Check the driver over a budget of generated cases; shrink and replay a failure.

    The arguments are :func:`conformance.run`'s, and so is the budget's default.
    """
    budget = budget or budget_from_env()
    chosen_seed = seed_value if seed_value is not None else secrets.randbelow(2**32)
    tally = Tally()
    recorder = DriverCaseRecorder(
        make_executor=lambda world, encoding: DriverExecutor(
            candidate, handshake, world, encoding, tally
        ),
        count=CaseCount(limit=budget.examples, on_case=on_case),
    )

    def result(failure: DriverFailure | None, flaky: str | None, saved: bool) -> DriverRunResult:
        return DriverRunResult(
            handshake=handshake,
            budget=budget,
            seed=chosen_seed,
            tally=tally,
            failure=failure,
            flaky=flaky,
            unreached=unreached_driver(tally),
            first_failure=recorder.count.first_failure,
            cases=recorder.count.generated,
            from_database=saved,
        )

    LIVE.start(
        f"{file_stem(handshake.name)}-{DRIVER_SIDE}-seed{chosen_seed}",
        profile=Profile.SEED.value,
        seed=chosen_seed,
        candidate={"name": handshake.name, "version": handshake.version},
    )
    return conclude(
        seed(chosen_seed)(driver_machine_for(recorder)),
        budget,
        database,
        recorder,
        who="driver",
        replay=lambda seen: replay_driver_failure(candidate, handshake, seen.case),
        minimise=lambda found: minimise_driver(candidate, handshake, found),
        as_flaky=lambda seen: replace(seen, reproduced=False),
        result=result,
    )
