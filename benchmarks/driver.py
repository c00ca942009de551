"""The driver side's strength and speed, for ``benchmarks/run.py``.

1. Strength: every driver catalogue entry (the blind set's included) over several seeds at the
   CI budget: in how many seeds it was caught against one of its rules, the median number of
   cases to the first failure, and the shrunk length against the shortest length the driver
   side's exhaustive engine finds.
2. Speed: the reference driver's steps per second in process, as the state machine draws them
   and as the executor replays the same cases without Hypothesis; and the driver explorer's
   transitions per second.
"""

from __future__ import annotations

import time
from typing import Any

from conformance import Budget
from conformance._known_bad import KnownBad
from conformance.driver._adapter import DriverCandidate
from conformance.driver._ops import DriverCase
from conformance.driver._reference import reference_driver
from conformance.driver._side import explore_driver, replay_driver, run_driver, start_driver

from ._strength import measure

#: The deepest the exhaustive engine looks for an entry's shortest counterexample.
SHORTEST_DEPTH = 6


def _shortest(entry: KnownBad[Any]) -> int | None:
    candidate, handshake = start_driver(entry.make)
    found = explore_driver(candidate, handshake, depth=SHORTEST_DEPTH).failure
    return len(found.case.ops) if found else None


def strength(
    entries: tuple[KnownBad[DriverCandidate], ...], seeds: int, budget: Budget
) -> list[dict[str, Any]]:
    """Each entry over ``seeds`` seeds, two processes at a time."""
    return measure("driver", entries, seeds, budget, _shortest)


def speed(seed: int, budget: Budget, explore_seconds: float) -> dict[str, Any]:
    """The reference driver in process: the state machine, the executor replay of the same
    cases, and the exhaustive engine."""
    candidate, handshake = start_driver(reference_driver)
    cases: list[DriverCase] = []
    began = time.perf_counter()
    result = run_driver(candidate, handshake, budget=budget, seed_value=seed, keep=cases)
    machine_seconds = time.perf_counter() - began
    assert result.conforms, "the reference driver must conform for its speed to mean anything"
    steps = result.tally.steps
    began = time.perf_counter()
    for case in cases:
        replay_driver(candidate, handshake, case)
    executor_seconds = time.perf_counter() - began
    explored = explore_driver(candidate, handshake, depth=99, time_limit=explore_seconds)
    return {
        "seed": seed,
        "cases": len(cases),
        "steps": steps,
        "steps_per_second": {
            "state_machine": steps / machine_seconds,
            "executor_replay": steps / executor_seconds,
        },
        "explore": {
            "time_limit": explore_seconds,
            "completed_depth": explored.completed,
            "states": explored.states,
            "transitions": explored.transitions,
            "transitions_per_second": explored.transitions / explored.seconds,
        },
    }


def markdown(results: dict[str, Any]) -> list[str]:
    """The driver side's section of docs/benchmarks.md."""
    s = results["driver_speed"]
    rates, x = s["steps_per_second"], s["explore"]
    lines = [
        "",
        "## The driver side",
        "",
        "Strength: every driver catalogue entry, the blind set's included (written from",
        "`../shared/kernel/` and docs/driver-side.md by someone who had not read the generators",
        "or the oracle, measured, then added), over the same seeds at the same budget. Shortest:",
        f"the driver explorer's shortest counterexample, searched to depth {SHORTEST_DEPTH}",
        '("-": none in its scope of four small worlds).',
        "",
        "| entry | caught | median cases to 1st failure | shortest | shrunk per seed | ratio |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for row in results["driver_strength"]:
        ratio = f"{row['worst_ratio']:.2f}" if row["worst_ratio"] is not None else "-"
        median = row["median_cases_to_first_failure"]
        caught = "graded" if row["graded"] else f"{row['caught']}/{row['seeds']}"
        lines.append(
            f"| `{row['entry']}` | {caught} | {median if median is not None else '-'} | "
            f"{row['shortest'] or '-'} | "
            f"{', '.join(str(n) if n else '-' for n in row['shrunk'])} | {ratio} |"
        )
    lines += [
        "",
        f"Speed, the reference driver in process, seed {s['seed']} ({s['cases']} cases, "
        f"{s['steps']:,} steps): {rates['state_machine']:,.0f} steps per second as the state "
        f"machine draws them, {rates['executor_replay']:,.0f} as the executor replays the same "
        "cases. The wire protocol does not carry drivers yet, so there is no figure over it.",
        f"The driver explorer: {x['transitions_per_second']:,.0f} transitions per second, depth "
        f"{x['completed_depth']} completed in {x['time_limit']:g} s ({x['states']:,} states, "
        f"{x['transitions']:,} transitions).",
    ]
    return lines
