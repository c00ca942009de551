"""What every format says the same way: the headline, the harness's problems (a verdict with no
rule, flakiness), rules never reached, and the run's outcome."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from .._outputs import printable
from .._verdicts import Verdict
from ._rows import AnyFailure, AnyResult

__all__ = [
    "LINE",
    "UNFINISHED",
    "broken_names",
    "cases",
    "diagnostics",
    "flakiness",
    "harness_lines",
    "harness_verdicts",
    "headline",
    "never_reached",
    "outcome_of",
    "stopped_at_failure",
    "where_failed",
]


def broken_names(failure: AnyFailure) -> str:
    return ", ".join(sorted({v.rule or v.status.name for v in failure.verdicts}))


def flakiness(result: AnyResult) -> str | None:
    """Why the run is flaky, or None: the engine's note, or a failure that did not come back."""
    if result.flaky is not None:
        return result.flaky
    if result.failure is not None and not result.failure.reproduced:
        return f"the {result.side.who} failed a case and passed it on replay"
    return None


def harness_verdicts(result: AnyResult) -> list[Verdict]:
    """The verdicts of the failing step that name no rule: HANG, CRASH, PROTOCOL."""
    if result.failure is None:
        return []
    return [verdict for verdict in result.failure.verdicts if verdict.rule is None]


def where_failed(failure: AnyFailure) -> str:
    """Where the failing case failed: its step number and operation, or begin()."""
    if failure.setup_crash is not None:
        return "in begin(), before the first step"
    step = failure.steps[-1]
    return f"at step {step.index + 1} ({step.op.describe()})"


def harness_lines(result: AnyResult) -> list[str]:
    """A note per problem outside the rules (a harness verdict, flakiness); none if none."""
    failure, flaky = result.failure, flakiness(result)
    lines = []
    if failure is not None:
        where = where_failed(failure)
        lines = [
            f"{verdict.status.name} {where}: {(verdict.detail.splitlines() or [''])[0]}"
            for verdict in failure.verdicts
            if verdict.rule is None
        ]
    if flaky is not None:
        # The engine's note may name itself already.
        lines.append(flaky if flaky.startswith("FLAKY") else f"FLAKY: {flaky}")
        if failure is not None and failure.verdicts:
            lines.append(
                f"as first seen, the case broke {broken_names(failure)} {where_failed(failure)}; "
                "its replay did not fail"
            )
    return lines


def cases(count: int) -> str:
    """``count`` cases, in words: "1 case", "250 cases"."""
    return f"{count} case{'s' * (count != 1)}"


def never_reached(result: AnyResult, rules: Sequence[str]) -> str:
    """Why rules never reached fail: the run proves nothing of them."""
    them = "it" if len(rules) == 1 else "them"
    names = ", ".join(rules)
    if result.failure is not None or flakiness(result) is not None:
        return (
            f"{names} never came up before the run stopped at its failure, after "
            f"{cases(result.cases)}: the run proves nothing of {them}"
        )
    return (
        f"INCONCLUSIVE: {names} never came up in {cases(result.cases)}: the run proves "
        f"nothing of {them}; raise --examples or --budget, or try another --seed"
    )


def headline(result: AnyResult) -> str:
    """One line: whether the candidate conforms, and if not, which rules it broke."""
    flaky = flakiness(result)
    if flaky is not None:
        seen = ""
        if result.failure is not None and result.failure.verdicts:
            seen = f"; as first seen, {broken_names(result.failure)} {where_failed(result.failure)}"
        return f"NOT CONFORMING: {flaky}{seen}"
    if result.failure is None and result.unreached:
        return (
            f"INCONCLUSIVE: no rule failed, but {', '.join(result.unreached)} never came up in "
            f"{cases(result.cases)}; raise --examples or --budget, or try another --seed"
        )
    if result.failure is None:
        return (
            f"conforms: no rule failed in {cases(result.cases)} ({result.tally.steps} steps)"
            + aimed_note(result)
            + result.side.conforming_note(result.tally)
        )
    rules = broken_names(result.failure)
    count = len(result.failure.case.ops)
    return (
        f"NOT CONFORMING: {rules}, shrunk to {count} operation{'s' * (count != 1)}{_found(result)}"
    )


def aimed_note(result: AnyResult) -> str:
    """The cases a run aimed at the rules its generated cases never reached, if any."""
    if not result.aimed:
        return ""
    return (
        f" and {result.aimed_cases} more aimed at {', '.join(result.aimed)}, which no generated "
        "case reached"
    )


def _found(result: AnyResult) -> str:
    """When the first failure came, and what shrinking it cost."""
    if result.aimed_failure:
        return (
            f"; found by a case aimed at the rules no generated case reached, after "
            f"{cases(result.cases)}, shrunk in {result.shrink_cases} more"
        )
    if result.first_failure is None:
        return ""
    if result.from_database:
        return (
            f"; a failure an earlier run saved in the example database, tried first (--seed "
            f"does not bring it back: the replay file does), shrunk in {result.shrink_cases} more"
        )
    return (
        f"; first failed at case {result.first_failure} of {result.budget.examples}, shrunk "
        f"in {result.shrink_cases} more"
    )


def outcome_of(result: AnyResult) -> str:
    """The run's outcome, worst first: flaky, a harness verdict, a violation, inconclusive."""
    if flakiness(result) is not None:
        return "flaky"
    harness = harness_verdicts(result)
    if harness:
        return harness[0].status.value
    if result.failure is not None:
        return "violation"
    return "inconclusive" if result.unreached else "conforms"


def stopped_at_failure(result: AnyResult) -> bool:
    """The run stopped at a failure (or a flaky case): rules not reached by then are not the
    run's verdict, which is already a failure."""
    return result.failure is not None or flakiness(result) is not None


#: The longest diagnostic or Markdown line kept from a candidate's text.
LINE: Final = 2000


def diagnostics(text: str) -> list[str]:
    # One line each, and what a candidate said (its name, an exception's text) as plain text:
    # nothing it sends can end a diagnostic and forge a test line.
    return [f"# {printable(line, limit=LINE)}" for line in text.splitlines()]


#: What a placeholder report says: the run it was written for did not finish.
UNFINISHED: Final = (
    "the run did not finish (it was interrupted, or ended by the watchdog); this placeholder "
    "was written before it started"
)
