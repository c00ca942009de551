"""What the strength tables of both sides are made of: one run per entry and seed, then a row
per entry, then the table in docs/benchmarks.md."""

from __future__ import annotations

import multiprocessing
import os
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from conformance import BUDGETS, Budget
from conformance import _engine as engine
from conformance._known_bad import KnownBad
from conformance._sides import side_named


def one_run(job: tuple[str, str, int, str]) -> dict[str, Any]:
    """One catalogue entry of a side at one seed: caught against one of its rules or not, and
    how. (A top-level function: the pool's processes call it by name.)"""
    side_name, name, seed, budget_name = job
    side = side_named(side_name)
    entry = next(e for e in side.catalogue.entries if e.name == name)
    candidate, handshake = engine.start(side, entry.make)
    result = engine.run(side, candidate, handshake, budget=BUDGETS[budget_name], seed_value=seed)
    failure = result.failure
    broken = {v.rule or v.status.name for v in failure.verdicts} if failure else set()
    return {
        "entry": name,
        "seed": seed,
        "caught": bool(broken & entry.rules),
        "rules": sorted(broken),
        "first_failure": result.first_failure,
        "shrunk": len(failure.case.ops) if failure else None,
    }


def measure(
    side_name: str,
    entries: Sequence[KnownBad[Any]],
    seeds: int,
    budget: Budget,
    shortest_of: Callable[[KnownBad[Any]], int | None],
) -> list[dict[str, Any]]:
    """Each entry over ``seeds`` seeds, two processes at a time, and a row per entry."""
    jobs = [
        (side_name, entry.name, seed, budget.name)
        for entry in entries
        for seed in range(1, seeds + 1)
    ]
    with multiprocessing.get_context("spawn").Pool(min(2, os.cpu_count() or 1)) as pool:
        runs = pool.map(one_run, jobs)
    return rows(entries, runs, shortest_of)


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
        ratios = [
            r["shrunk"] / at_best
            for r in mine
            if r["shrunk"] and (at_best := entry.shortest_for(r["rules"], shortest))
        ]
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


def table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The rows as docs/benchmarks.md's strength table, its header included."""
    lines = [
        "| entry | caught | median cases to 1st failure | shortest | shrunk per seed | ratio |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        ratio = f"{row['worst_ratio']:.2f}" if row["worst_ratio"] is not None else "-"
        median = row["median_cases_to_first_failure"]
        caught = "graded" if row["graded"] else f"{row['caught']}/{row['seeds']}"
        lines.append(
            f"| `{row['entry']}` | {caught} | {median if median is not None else '-'} | "
            f"{row['shortest'] or '-'} | "
            f"{', '.join(str(n) if n else '-' for n in row['shrunk'])} | {ratio} |"
        )
    return lines
