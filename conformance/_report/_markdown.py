"""The Markdown report, for a CI job's summary page."""

from __future__ import annotations

from collections.abc import Sequence

from .._outputs import printable
from ._rows import AnyResult, RuleRow
from ._summary import UNFINISHED, cases, flakiness, harness_lines, never_reached, outcome_of

__all__ = ["placeholder", "render", "to_markdown"]


def _markdown_counts(result: AnyResult) -> str:
    if result.first_failure is None:
        return ""
    return (
        f" (the first failure at case {result.first_failure}), {result.shrink_cases} run to "
        "shrink it"
    )


def to_markdown(result: AnyResult, rows: Sequence[RuleRow]) -> str:
    """A Markdown summary for a CI job page or a review comment."""
    handshake = result.handshake
    lines = [
        f"# hmm-conformance: {printable(handshake.name)} {printable(handshake.version)}",
        "",
        f"Result: **{outcome_of(result)}**; profile `{result.profile.value}`, budget "
        f"`{result.budget.name}`, seed `{result.seed}`, {cases(result.cases)} generated"
        f"{_markdown_counts(result)}, {result.tally.steps} steps.",
        "",
    ]
    never = [row.rule.id for row in rows if row.status == "never-reached"]
    notes = [*harness_lines(result), *([never_reached(result, never)] if never else [])]
    if notes:
        lines += [*("- " + note.replace("\n", "\n  ") for note in notes), ""]
    lines += [
        "| rule | level | exercised | allowed | failed | verdict |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        verdict = row.status + (f" ({row.note})" if row.note else "")
        lines.append(
            f"| {row.rule.id} | {row.rule.level.value} | {row.exercised} | {row.allowed} | "
            f"{row.failed} | {verdict} |"
        )
    if result.failure is not None:
        title = "Counterexample" if flakiness(result) is None else "Counterexample, as first seen"
        lines += ["", f"## {title}", "", "```", result.side.describe_failure(result.failure), "```"]
    return "\n".join(lines) + "\n"


def render(result: AnyResult, rows: Sequence[RuleRow]) -> str:
    return to_markdown(result, rows)


def placeholder() -> str:
    return f"# hmm-conformance\n\nResult: **unfinished**: {UNFINISHED}.\n"
