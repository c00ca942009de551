"""The driver side's strength and speed, for ``benchmarks/run.py``.

1. Strength: every driver catalogue entry (the blind set's included) over several seeds at the
   CI budget: in how many seeds it was caught against one of its rules, the median number of
   cases to the first failure, and the shrunk length against the shortest length the driver
   side's exhaustive engine finds.
2. Speed: steps per second of the reference driver and the C driver, each in process and over
   the wire, as the state machine draws them and as the executor replays the same cases without
   Hypothesis; and the driver explorer's transitions per second.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from conformance import Budget
from conformance._connect import connect
from conformance._known_bad import KnownBad
from conformance.driver._adapter import DriverCandidate
from conformance.driver._ops import DriverCase
from conformance.driver._reference import reference_driver
from conformance.driver._side import (
    DRIVER,
    explore_driver,
    replay_driver,
    run_driver,
    start_driver,
)

from ._strength import measure, table

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


#: Each way of reaching a driver that the benchmark compares, as ``--adapter`` names it.
ADAPTERS: tuple[tuple[str, str], ...] = (
    ("reference, in process", "conformance:reference_driver"),
    ("reference, Python wire server", f"exec:{sys.executable} -m conformance serve --side driver"),
    ("C driver, in process (cffi)", "conformance:c_driver"),
    ("C driver, C wire server", "conformance:c_driver_wire"),
)


def _two_ways(spec: str, seed: int, budget: Budget) -> dict[str, Any]:
    """One seed's run of the driver ``spec`` names: the state machine, then the same cases
    replayed through the executor."""
    candidate, handshake = start_driver(connect(DRIVER, spec))
    try:
        cases: list[DriverCase] = []
        began = time.perf_counter()
        result = run_driver(candidate, handshake, budget=budget, seed_value=seed, keep=cases)
        machine_seconds = time.perf_counter() - began
        assert result.conforms, f"{spec} must conform for its speed to mean anything"
        began = time.perf_counter()
        for case in cases:
            replay_driver(candidate, handshake, case)
        executor_seconds = time.perf_counter() - began
    finally:
        candidate.close()
    steps = result.tally.steps
    return {
        "spec": spec,
        "candidate": handshake.name,
        "cases": len(cases),
        "steps": steps,
        "steps_per_second": {
            "state_machine": steps / machine_seconds,
            "executor_replay": steps / executor_seconds,
        },
    }


def speed(seed: int, budget: Budget, explore_seconds: float) -> dict[str, Any]:
    """Every adapter of :data:`ADAPTERS` at one seed, and the exhaustive engine."""
    rows = [{"adapter": label, **_two_ways(spec, seed, budget)} for label, spec in ADAPTERS]
    # Every adapter declares the same capabilities, so the seed draws the very same cases.
    assert len({(row["cases"], row["steps"]) for row in rows}) == 1, rows
    candidate, handshake = start_driver(reference_driver)
    explored = explore_driver(candidate, handshake, depth=99, time_limit=explore_seconds)
    c_in, c_wire = rows[2]["steps_per_second"], rows[3]["steps_per_second"]
    return {
        "seed": seed,
        "cases": rows[0]["cases"],
        "steps": rows[0]["steps"],
        "rows": rows,
        "c_wire_cost_per_step": {how: c_in[how] / c_wire[how] for how in c_in},
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
    x = s["explore"]
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
        *table(results["driver_strength"]),
    ]
    cost = s["c_wire_cost_per_step"]
    lines += [
        "",
        f"Speed at seed {s['seed']} ({s['cases']} cases, {s['steps']:,} steps), steps per second",
        "as the state machine draws them and as the executor replays the same cases; every",
        "adapter gets the same cases, so the rows compare the same work:",
        "",
        "| adapter | state machine | executor replay |",
        "|---|---:|---:|",
    ]
    for row in s["rows"]:
        rate = row["steps_per_second"]
        lines.append(
            f"| {row['adapter']} | {rate['state_machine']:,.0f} | {rate['executor_replay']:,.0f} |"
        )
    lines += [
        "",
        f"Per step the C driver over the wire costs {cost['state_machine']:.2f}x the C driver in",
        f"process in a conformance run ({cost['executor_replay']:.2f}x in the executor's replay).",
        "A step over the wire is its request and reply, plus a round trip for each lock call and",
        "HMM call the driver makes, and the executor's reads of the device page table and of the",
        "fault before and after it.",
        f"The driver explorer: {x['transitions_per_second']:,.0f} transitions per second, depth "
        f"{x['completed_depth']} completed in {x['time_limit']:g} s ({x['states']:,} states, "
        f"{x['transitions']:,} transitions).",
    ]
    return lines
