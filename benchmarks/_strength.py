"""What the strength tables of both sides are made of: one run per entry and seed, then a row
per entry."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from conformance._known_bad import KnownBad
from conformance._verdicts import Verdict


def run_row(
    entry: KnownBad[Any],
    seed: int,
    verdicts: Sequence[Verdict],
    first_failure: int | None,
    shrunk: int | None,
) -> dict[str, Any]:
    """One entry's run at one seed: caught against one of its rules or not, and how."""
    broken = {v.rule or v.status.name for v in verdicts}
    return {
        "entry": entry.name,
        "seed": seed,
        "caught": bool(broken & entry.rules),
        "rules": sorted(broken),
        "first_failure": first_failure,
        "shrunk": shrunk,
    }


def rows(
    entries: Sequence[KnownBad[Any]],
    runs: Sequence[dict[str, Any]],
    shortest_of: Callable[[KnownBad[Any]], int | None],
) -> list[dict[str, Any]]:
    """A row per entry: in how many seeds it was caught, the median cases to the first
    failure, the shortest length the exhaustive engine finds, and the shrunk lengths."""
    table = []
    for entry in entries:
        mine = [r for r in runs if r["entry"] == entry.name]
        shortest = None if entry.graded else shortest_of(entry)
        firsts = [r["first_failure"] for r in mine if r["first_failure"] is not None]
        ratios = [r["shrunk"] / shortest for r in mine if r["shrunk"] and shortest]
        table.append(
            {
                "entry": entry.name,
                "origin": entry.origin,
                "graded": entry.graded,
                "seeds": len(mine),
                "caught": sum(r["caught"] for r in mine),
                "median_cases_to_first_failure": statistics.median(firsts) if firsts else None,
                "shortest": shortest,
                "recorded_shortest": entry.shortest,
                "shrunk": [r["shrunk"] for r in mine],
                "worst_ratio": max(ratios) if ratios else None,
                "runs": mine,
            }
        )
    return table
