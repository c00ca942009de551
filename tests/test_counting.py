"""A budget of N cases is N cases, and shrinking is counted apart from generation."""

from __future__ import annotations

import pytest

from conformance import Budget, reference, run, start
from conformance._counting import BudgetSpent, CaseCount, ShrinkingSpent
from conformance.driver import DriverCase, reference_driver, run_driver, start_driver
from conformance.oracle import Status

from . import candidates as C


def test_a_case_count_stops_at_its_limit_and_counts_shrinking_apart() -> None:
    """Cases up to the limit are generated; the next raises; after a failure, cases shrink."""
    progress: list[int] = []
    count = CaseCount(limit=3, on_case=progress.append)
    for _ in range(3):
        count.begin()
    with pytest.raises(BudgetSpent):
        count.begin()
    assert (count.generated, count.shrinking, progress) == (3, 0, [1, 2])
    failing = CaseCount(limit=3)
    failing.begin()
    failing.begin()
    failing.failed()
    failing.failed()  # a second failing step of the same case changes nothing
    for _ in range(5):  # shrinking is never stopped by the budget
        failing.begin()
    assert (failing.generated, failing.first_failure, failing.shrinking) == (2, 2, 5)


@pytest.mark.parametrize("examples", [1, 20, 250])
def test_a_core_run_generates_exactly_its_budget(examples: int) -> None:
    """Hypothesis throws some cases away; every case that ran counts, and no more run."""
    progress: list[int] = []
    candidate, handshake = start(reference)
    result = run(
        candidate,
        handshake,
        budget=Budget(name="test", examples=examples, steps=40),
        seed_value=2,
        on_case=progress.append,
    )
    assert result.cases == examples
    assert result.budget.shrinks == 200  # the core side's own, where the budget sets none
    assert result.tally.cases == examples + result.aimed_cases  # aimed cases are counted apart
    assert result.shrink_cases == 0
    assert progress == list(range(1, examples))


def test_a_driver_run_generates_exactly_its_budget() -> None:
    """The driver side counts its cases the same way, and keeps every case it ran if asked."""
    candidate, handshake = start_driver(reference_driver)
    kept: list[DriverCase] = []
    result = run_driver(
        candidate,
        handshake,
        budget=Budget(name="test", examples=30, steps=20),
        seed_value=2,
        keep=kept,
    )
    assert (result.cases, result.tally.cases, len(kept)) == (30, 30, 30)
    assert result.budget.shrinks is None  # the driver side's own: no bound
    assert all(case.world.vmas for case in kept)


def test_the_cases_of_a_failing_run_are_generated_up_to_the_first_failure_then_shrinking() -> None:
    """Generated cases stop at the first failure; the cases after it are shrinking's, and the
    progress count never moves past the first failure."""
    progress: list[int] = []
    candidate, handshake = start(C.NoClear)
    result = run(
        candidate,
        handshake,
        budget=Budget(name="test", examples=100, steps=30),
        seed_value=10,
        on_case=progress.append,
    )
    assert result.failure is not None
    assert result.first_failure is not None
    assert result.cases == result.first_failure
    assert result.shrink_cases > 0
    assert result.tally.cases == result.cases + result.shrink_cases
    assert max(progress, default=0) < result.first_failure


def test_a_case_count_stops_shrinking_at_its_shrink_limit() -> None:
    """After the first failure, cases shrink up to the shrink limit; the next raises."""
    count = CaseCount(limit=3, shrink_limit=2)
    count.begin()
    count.failed()
    count.begin()
    count.begin()
    with pytest.raises(ShrinkingSpent):
        count.begin()
    assert (count.generated, count.first_failure, count.shrinking) == (1, 1, 2)


def test_shrinking_stops_at_the_budgets_shrinks_and_the_minimiser_still_gets_the_shortest() -> None:
    """Hypothesis goes on simplifying the world and the swarm behind a case long after it is
    one snapshot; with the budget's shrinks spent, the run takes its last failing case."""

    def shrunk(shrinks: int) -> tuple[int, int, set[str]]:
        candidate, handshake = start(C.ForgetsRanges)
        budget = Budget(name="test", examples=250, steps=40, shrinks=shrinks)
        result = run(candidate, handshake, budget=budget, seed_value=9)
        assert result.failure is not None
        rules = {v.describe() for v in result.failure.verdicts if v.status is not Status.PASS}
        return result.shrink_cases, len(result.failure.case.ops), rules

    long, short = shrunk(100_000), shrunk(30)
    assert long[0] > 60
    assert short[0] == 30
    assert long[1:] == short[1:]
    assert short[1] == 1
