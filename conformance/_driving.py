"""Driving Hypothesis for the engine: a state machine run for a budget of cases, the failure
it found settled (replayed, minimised, or kept as first seen when it does not fail again), and
the signals and harness errors that must not be lost on the way.
"""

from __future__ import annotations

import contextlib
import sys
import unittest
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Final, Protocol, TypeVar

from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
from hypothesis.errors import Flaky, HypothesisException, Unsatisfiable
from hypothesis.internal.conjecture import providers
from hypothesis.internal.constants_ast import Constants
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from ._counting import Budget, BudgetSpent, CaseCount, ShrinkingSpent
from ._generation import StepFailedError
from ._isolation import received

__all__ = [
    "FailureT",
    "FailuresOnly",
    "drive",
    "errors_end_generation",
    "flaky_note",
    "interrupted",
    "seed_only",
    "settle",
]


def interrupted() -> None:
    """Raise the signal that came, if the code it interrupted swallowed it (Hypothesis may
    turn it into a flaky failure of its own)."""
    signalled = received()
    if signalled is not None:
        raise signalled


def drive(
    machine: type[RuleBasedStateMachine],
    budget: Budget,
    database: Path | None,
    *,
    failed: Callable[[], bool],
) -> bool:
    """Run a state machine for ``budget`` until a step fails and its case is shrunk; True if
    the failure is one an earlier run saved in the example ``database``.

    Shared by both sides' engines; the machine's recorder keeps the failing cases (``failed``
    says whether there are any), and its :class:`CaseCount` stops the run when the budget of
    generated cases is spent. Saved failures are tried first, in a pass of their own, so that
    a failure from the database is told apart from one the seed generated: only the latter
    comes back with ``--seed``.
    """
    examples = None if database is None else FailuresOnly(database, failed)
    if examples is not None:
        # With nothing saved, Hypothesis says it was told to run no test case; with only
        # entries that no longer replay as a case (saved by an older machine), that no case
        # satisfied it. Either way there is nothing to try first.
        with contextlib.suppress(unittest.SkipTest, Unsatisfiable):
            _hypothesis(machine, budget, examples, [Phase.reuse, Phase.shrink])
        if failed():
            return True
    _hypothesis(
        machine, budget, examples, [Phase.explicit, Phase.generate, Phase.target, Phase.shrink]
    )
    return False


class FailuresOnly(ExampleDatabase):
    """The example database of one candidate, which keeps failing cases only.

    Hypothesis saves a case also when a ``BaseException`` leaves it, and :class:`BudgetSpent`
    ends every run that way, in the case after the last: without this gate a run that passed
    kept that unfinished case, and the next run's first pass replayed it. Saves are kept only
    once ``failed()`` says a step failed; reading and deleting go through unchanged.
    """

    def __init__(self, path: Path, failed: Callable[[], bool]) -> None:
        super().__init__()
        self._saved = DirectoryBasedExampleDatabase(path)
        self._failed = failed

    def save(self, key: bytes, value: bytes) -> None:
        if self._failed():
            self._saved.save(key, value)

    def fetch(self, key: bytes) -> Iterable[bytes]:
        return self._saved.fetch(key)

    def delete(self, key: bytes, value: bytes) -> None:
        self._saved.delete(key, value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self._saved.move(src, dest, value)


_NO_CONSTANTS: Final = Constants()


@contextlib.contextmanager
def seed_only() -> Iterator[None]:
    """Keep the modules loaded out of what Hypothesis draws.

    Hypothesis (6.131 on) mixes the literals of every local module in ``sys.modules`` into its
    draws, a few percent of them. The cases a seed draws would then depend on which modules
    happen to be loaded (a user's adapter, a new module of ours, the command line or the pytest
    plugin) and on the constants in them: the same seed, other cases. Inside this block it
    draws from its own constants only. A Hypothesis without the hook has nothing to keep out.
    """
    hook = getattr(providers, "_get_local_constants", None)
    cache = getattr(getattr(providers, "CONSTANTS_CACHE", None), "cache", None)
    if hook is None or cache is None:
        yield
        return
    # The constants allowed for each kind of draw are cached, local ones included: start
    # without what an earlier draw outside this block cached, and leave nothing behind.
    cache.clear()
    providers._get_local_constants = lambda: _NO_CONSTANTS
    try:
        yield
    finally:
        providers._get_local_constants = hook
        cache.clear()


def _hypothesis(
    machine: type[RuleBasedStateMachine],
    budget: Budget,
    examples: ExampleDatabase | None,
    phases: list[Phase],
) -> None:
    with seed_only(), contextlib.suppress(StepFailedError, BudgetSpent, ShrinkingSpent, Flaky):
        # The recorder has the failing cases; settle() decides what they show.
        run_state_machine_as_test(
            machine,
            settings=settings(
                # Hypothesis's count leaves out the cases it threw away, so ours (CaseCount)
                # reaches the budget first and ends the run after exactly that many cases.
                max_examples=budget.examples,
                stateful_step_count=budget.steps,
                deadline=None,
                database=examples,
                derandomize=False,
                suppress_health_check=list(HealthCheck),
                verbosity=Verbosity.quiet,
                print_blob=False,
                # The first failure ends generation: the cases after it are shrinking.
                report_multiple_bugs=False,
                # The explain phase annotates Hypothesis's own report, which we do not print;
                # it costs more than the shrinking itself.
                phases=phases,
            ),
        )


class _Found(Protocol):
    """A side's failure, as :func:`settle` handles it."""

    @property
    def reproduced(self) -> bool: ...


FailureT = TypeVar("FailureT", bound=_Found)


def settle(
    failing: FailureT | None,
    first_seen: FailureT | None,
    *,
    replay: Callable[[FailureT], FailureT],
    minimise: Callable[[FailureT], FailureT],
    as_flaky: Callable[[FailureT], FailureT],
) -> tuple[FailureT | None, bool]:
    """What a run reports once the state machine is done: the failure, shrunk, and whether it
    is flaky. Shared by both sides' engines.

    The last failing case (Hypothesis's shrunk one) is replayed, then the first one seen; the
    first that fails again is minimised. Only if neither does is the run FLAKY, with the first
    case as it was seen. Hypothesis's own verdict is not trusted for this: it says "flaky" also
    when a candidate's behaviour changed between cases and every replay now fails.
    """
    if failing is None or first_seen is None:
        return None, False
    for seen in dict.fromkeys((failing, first_seen)):
        again = replay(seen)
        if again.reproduced:
            return minimise(again), False
    return as_flaky(first_seen), True


def flaky_note(who: str, seen: int | None) -> str:
    """What a failure that did not fail again says, in every report."""
    case = f"case {seen}" if seen is not None else "a case"
    return (
        f"FLAKY: the {who} failed {case} once and passed it when it was run again; it keeps "
        "state across cases or is not deterministic, and the case as first seen is kept"
    )


def errors_end_generation(
    machine: type[RuleBasedStateMachine], count: CaseCount
) -> type[RuleBasedStateMachine]:
    """``machine``, with a case that ended in an error of the harness's own (an exception
    that is no step's verdict) counted as the run's failure, as a failing step is.

    Hypothesis shrinks such an error as it shrinks a failing step, and reports it at the end;
    counted as generated cases, its shrinking attempts would spend the budget, and
    :class:`BudgetSpent` would end the run as if no case had failed. The teardown runs in
    Hypothesis's ``finally``, where the error on its way up is the one being handled.
    """

    def teardown(self: RuleBasedStateMachine) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, Exception) and not isinstance(
            error, StepFailedError | HypothesisException
        ):
            count.failed()
        machine.teardown(self)

    return type(machine.__name__, (machine,), {"teardown": teardown})
