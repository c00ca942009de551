"""Counting a run's cases the way its user reads them: a budget of N generated cases is N.

Hypothesis counts only the cases it calls valid toward ``max_examples``: a case that ran out of
enabled rules, or out of room for its choices, is thrown away and another is drawn, though its
steps ran against the candidate and were judged. A budget of 250 cases then ran 274-330. Here
every case that ran counts, and once the budget is spent the next case stops the run before it
runs a step, with :class:`BudgetSpent`, a ``BaseException`` so that Hypothesis passes it up
as it does ``KeyboardInterrupt``: nothing is shrunk, replayed or saved for it.

After the first failure the cases Hypothesis runs are shrinking attempts; they are counted apart
and are not progress. They may be bounded too (:attr:`Budget.shrinks`, or the side's own bound):
Hypothesis shrinks every choice behind a case, and once the case is down to its few operations
it goes on simplifying the world and the swarm behind them, in hundreds to thousands of cases
that no longer shorten it. After that many, :class:`ShrinkingSpent` hands the last failing case
to the side's minimiser (``conformance._engine.minimise``), which shortens the case itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar, final

from ._errors import AdapterError
from ._isolation import received

__all__ = [
    "BUDGETS",
    "BUDGET_ENV",
    "LIVE",
    "Budget",
    "BudgetSpent",
    "CaseCount",
    "Live",
    "Recorder",
    "ShrinkingSpent",
    "budget_from_env",
]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """How much to generate: cases, and the most steps in one case; and how many cases
    Hypothesis may run to shrink a failure before the minimiser takes it as it is (None: the
    side's own bound, ``Side.shrinks``, which may be none)."""

    name: str
    examples: int
    steps: int
    shrinks: int | None = None


#: Settings profiles: ``fast`` for development, ``ci`` for CI (the default), ``thorough``.
BUDGETS: Final = {
    "fast": Budget(name="fast", examples=100, steps=30),
    "ci": Budget(name="ci", examples=250, steps=40),
    "thorough": Budget(name="thorough", examples=2000, steps=60),
}
BUDGET_ENV: Final = "HMM_CONFORMANCE_BUDGET"


def budget_from_env(default: str = "ci") -> Budget:
    """The budget named by ``$HMM_CONFORMANCE_BUDGET``, or ``default``."""
    name = os.environ.get(BUDGET_ENV, default)
    if name not in BUDGETS:
        raise AdapterError(
            f"${BUDGET_ENV}={name!r} is not a budget; use one of {', '.join(BUDGETS)}"
        )
    return BUDGETS[name]


class BudgetSpent(BaseException):
    """The budget of generated cases is spent: the run ends without a failure."""


class ShrinkingSpent(BaseException):
    """The budget's shrinking cases are spent: Hypothesis stops, and the last failing case
    goes to the minimiser as it is."""


@final
@dataclass(slots=True, kw_only=True)
class CaseCount:
    """The cases of one run: generated, shrinking attempts, and the first that failed."""

    #: How many cases to generate; None for no limit of ours (Hypothesis's alone).
    limit: int | None = None
    #: How many shrinking cases to run after the first failure; None for no limit of ours.
    shrink_limit: int | None = None
    #: Called with the number of generated cases after each one.
    on_case: Callable[[int], None] | None = field(default=None)
    #: Cases generated, counting from 1, up to and including the first that failed.
    generated: int = 0
    #: Cases run after the first failure: Hypothesis's shrinking attempts.
    shrinking: int = 0
    #: The number of the first generated case that failed.
    first_failure: int | None = None

    def begin(self) -> None:
        """A case is about to start; :class:`BudgetSpent` if none may, or
        :class:`ShrinkingSpent` once a failure's shrinking has run its cases (and the signal
        again if one came and the code it interrupted swallowed it).

        A case counts once its world is drawn: it then runs against the candidate, even if
        Hypothesis abandons it later for want of an enabled rule or of room for choices.
        """
        signalled = received()
        if signalled is not None:  # swallowed on its way up: raise it again, here
            raise signalled
        if self.first_failure is not None:
            if self.shrink_limit is not None and self.shrinking >= self.shrink_limit:
                raise ShrinkingSpent
            self.shrinking += 1
            return
        if self.limit is not None and self.generated >= self.limit:
            raise BudgetSpent
        if self.generated and self.on_case is not None:
            self.on_case(self.generated)
        self.generated += 1

    def failed(self) -> None:
        """The case under way failed a step."""
        if self.first_failure is None:
            self.first_failure = self.generated


@final
@dataclass(slots=True)
class Live:
    """The case under way, for the last resort: when a candidate is stuck where no signal
    reaches it, the watchdog's thread saves this case before the process ends. One run at a
    time per process, so one holder for the process."""

    #: The replay file's name, without the suffix, and the fields it has besides the case
    #: (the profile, the seed and the candidate).
    stem: str = "candidate"
    header: dict[str, object] = field(default_factory=dict)
    #: The case under way, as a replay file's JSON; None before the first case.
    document: Callable[[], dict[str, object]] | None = None

    def start(self, stem: str, **header: object) -> None:
        """A run begins: what its replay files are called and say."""
        self.stem, self.header, self.document = stem, header, None


#: The case under way in this process.
LIVE: Final = Live()


FailureT = TypeVar("FailureT")


@dataclass(slots=True, kw_only=True)
class Recorder(Generic[FailureT]):
    """What a side's state machine saw, for its engine: the cases it counted, the last case
    that failed (Hypothesis ends on its shrunk one) and the first, each as it was seen with
    its steps, which is what a run reports if the candidate passes it when run again."""

    count: CaseCount = field(default_factory=CaseCount)
    failing: FailureT | None = None
    first_seen: FailureT | None = None

    def saw(self, failure: FailureT) -> None:
        """A case failed: keep it, and the first one."""
        self.failing = failure
        if self.first_seen is None:
            self.first_seen = failure
        self.count.failed()
