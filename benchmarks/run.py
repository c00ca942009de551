"""The suite's strength and speed, measured side by side in one run.

    python3 tasks.py bench           # the whole set, about 50 minutes on 2 cores
    python -m benchmarks.run --quick # a smoke run (what the test suite runs)

It writes ``benchmarks/results.json`` and ``docs/benchmarks.md``. Every figure is a count or a
ratio measured in the same run on the same machine; none is asserted anywhere.

1. Overhead: the random engine's steps per second against the reference, as a ratio to a plain
   loop that applies the very same operations to the reference directly, and to a replay of
   them through the executor and oracle without Hypothesis; the gaps say where the time goes.
2. Strength: every catalogue entry over several seeds at the CI budget: in how many seeds it
   was caught against its rules, the median number of cases to the first failure, and the
   shrunk length over the shortest length the exhaustive engine finds; and that shortest
   length found by the merged search and by every sequence, with what each cost
   (``benchmarks/searches.py``).
3. The exhaustive engine: transitions per second against the reference, and the depth it
   completes in a fixed time.
4. Adapters: the same cases through each way of reaching a candidate (the reference in
   process and over the wire protocol, the C candidate in process and over the wire), as steps
   per second of the plain loop and of the executor, and as ratios.
5. The driver side (``benchmarks/driver.py``): its catalogue's strength, the blind set's
   included, and the reference driver's speed.
6. Generation (``benchmarks/generation.py``): how often the rare states behind each rule's
   checks come up, and every rule reached over many seeds at the smallest budget.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from conformance import (
    BUDGETS,
    Budget,
    Candidate,
    CandidateRejected,
    Case,
    FaultSnapshot,
    Handshake,
    InvalidateEnd,
    InvalidateStart,
    Operation,
    Profile,
    RangeDone,
    RegisterMirror,
    Release,
    SetCpuEntry,
    Snapshot,
    UnregisterMirror,
    explore,
    reference,
    replay,
    run,
    start,
)
from conformance._connect import connect
from conformance._known_bad import KnownBad
from conformance.ccore import build_server
from conformance.core._adapter import faults_of
from conformance.core._catalogue import CATALOGUE
from conformance.core._model import CpuState
from conformance.core._side import CORE, close_quietly
from conformance.core._watched import WatchedCandidate
from conformance.core._wire import WireCandidate, exec_factory
from conformance.driver._catalogue import DRIVER_CATALOGUE
from hmm_ref import HmmUpdate

from . import _strength, driver, generation, searches

ROOT = Path(__file__).resolve().parent.parent


#: The speed figures' budget in a smoke run (which checks the figures are made, not what they say).
QUICK: Final = Budget(name="quick", examples=20, steps=20)


@dataclass(frozen=True, slots=True)
class Settings:
    seeds: int
    budget: Budget
    explore_seconds: float
    entries: tuple[KnownBad[Candidate], ...]
    #: The budget of the speed figures (the strength figures use ``budget``).
    speed_budget: Budget


def machine() -> dict[str, Any]:
    """The machine and the versions the figures were measured with."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "hmm-conformance": importlib.metadata.version("hmm-conformance"),
        "hypothesis": importlib.metadata.version("hypothesis"),
    }


# -- 1. overhead ----------------------------------------------------------------------------


class _PlainMirror:
    """A mirror for the plain loop: answers from the start being applied, records nothing."""

    def __init__(self, loop: _PlainLoop, mirror: int) -> None:
        self.loop, self.mirror = loop, mirror

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        op = self.loop.current
        return op.reply(self.mirror) if isinstance(op, InvalidateStart) else 0

    def release(self) -> None:
        pass


class _PlainLoop:
    """The operations applied straight to a candidate: no model, no observation, no oracle."""

    def __init__(self, candidate: Candidate) -> None:
        self.candidate = candidate
        self.current: Operation | None = None

    def case(self, case: Case) -> int:
        cpu = CpuState(case.world)
        candidate = self.candidate
        candidate.begin(cpu)
        for op in case.ops:
            self.current = op
            if isinstance(op, RegisterMirror):
                candidate.register(
                    op.mirror, _PlainMirror(self, op.mirror) if op.with_ops else None
                )
            elif isinstance(op, UnregisterMirror):
                candidate.unregister(op.mirror)
            elif isinstance(op, Snapshot):
                candidate.snapshot(op.range, op.vma, op.start, op.end, op.encoding)
            elif isinstance(op, FaultSnapshot):
                cpu.outcomes = dict(op.handler)
                faults_of(candidate).fault(
                    op.range, op.vma, op.start, op.end, op.encoding, pfns=op.pfns(), block=op.block
                )
                cpu.outcomes = {}
            elif isinstance(op, RangeDone):
                with contextlib.suppress(CandidateRejected):  # a misuse it refuses (RNG-9)
                    candidate.range_done(op.range)
            elif isinstance(op, InvalidateStart):
                candidate.invalidate_start(op.start, op.end, op.blockable)
            elif isinstance(op, InvalidateEnd):
                candidate.invalidate_end(op.start, op.end)
            elif isinstance(op, SetCpuEntry):
                cpu.set_pte(op.addr, op.pte)
            elif isinstance(op, Release):
                candidate.release()
        return len(case.ops)


def _round_trips(candidate: Candidate) -> int:
    """The round trips a wire candidate has made so far (0 in process)."""
    if isinstance(candidate, WatchedCandidate):
        candidate = candidate.inner
    return candidate.round_trips if isinstance(candidate, WireCandidate) else 0


def _three_ways(
    candidate: Candidate, handshake: Handshake, seed: int, budget: Budget
) -> tuple[list[Case], int, tuple[float, float, float], int]:
    """One seed's run, then its cases through the executor, then through the plain loop: the
    cases, their steps, the seconds each way took, and the round trips of the executor's
    replay over the wire."""
    cases: list[Case] = []
    began = time.perf_counter()
    # Generated cases only: aimed ones are not kept, and would count steps the loops never see.
    result = run(candidate, handshake, budget=budget, seed_value=seed, keep=cases, aim=False)
    machine_seconds = time.perf_counter() - began
    assert result.failure is None, f"{handshake.name} must pass for its speed to mean anything"
    trips = _round_trips(candidate)
    began = time.perf_counter()
    for case in cases:
        replay(candidate, handshake, case, Profile.SEED, stop_at_failure=False)
    executor_seconds = time.perf_counter() - began
    trips = _round_trips(candidate) - trips
    loop = _PlainLoop(candidate)
    began = time.perf_counter()
    steps = sum(loop.case(case) for case in cases)
    plain_seconds = time.perf_counter() - began
    assert steps == result.tally.steps, (steps, result.tally.steps)
    return cases, steps, (machine_seconds, executor_seconds, plain_seconds), trips


def overhead(seed: int, budget: Budget) -> dict[str, Any]:
    """Steps per second three ways over the same cases, and where the time goes."""
    candidate, handshake = start(reference)
    cases, steps, (machine_seconds, executor_seconds, plain_seconds), _ = _three_ways(
        candidate, handshake, seed, budget
    )
    return {
        "seed": seed,
        "cases": len(cases),
        "steps": steps,
        "steps_per_second": {
            "state_machine": steps / machine_seconds,
            "executor_replay": steps / executor_seconds,
            "plain_loop": steps / plain_seconds,
        },
        "plain_over_state_machine": machine_seconds / plain_seconds,
        "plain_over_executor": executor_seconds / plain_seconds,
        "time_share": {
            "candidate": plain_seconds / machine_seconds,
            "observe_and_oracle": (executor_seconds - plain_seconds) / machine_seconds,
            "hypothesis": (machine_seconds - executor_seconds) / machine_seconds,
        },
    }


# -- 2. strength ------------------------------------------------------------------------------


def strength(settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each entry over ``settings.seeds`` seeds, two processes at a time; and each searched by
    the exhaustive engine, merged and every sequence (``benchmarks/searches.py``), whose
    merged length is the shortest the shrunk lengths are measured against."""
    searched = [searches.compare(entry) for entry in settings.entries]
    shortest = {row["entry"]: row["merged"]["length"] for row in searched}
    rows = _strength.measure(
        "core", settings.entries, settings.seeds, settings.budget, lambda e: shortest[e.name]
    )
    return rows, searched


# -- 3. the exhaustive engine -----------------------------------------------------------------


def exhaustive(seconds: float) -> dict[str, Any]:
    candidate, handshake = start(reference)
    result = explore(candidate, handshake, depth=99, time_limit=seconds)
    return {
        "time_limit": seconds,
        "completed_depth": result.completed,
        "states": result.states,
        "transitions": result.transitions,
        "transitions_per_second": result.transitions / result.seconds,
        "levels": [
            {"depth": lv.depth, "states": lv.states, "transitions": lv.transitions}
            for lv in result.levels
        ],
    }


# -- 4. adapters ------------------------------------------------------------------------------


def c_core_wire_1_0() -> Candidate:
    """The C core's wire server spoken to in protocol 1.0, without observe-ahead: what 1.1
    saves (``--adapter benchmarks.run:c_core_wire_1_0``)."""
    return exec_factory([str(build_server())], extensions=False)()


#: Each way of reaching a candidate that the benchmark compares, as ``--adapter`` names it.
ADAPTERS: tuple[tuple[str, str], ...] = (
    ("reference, in process", "conformance:reference"),
    ("reference, Python wire server", f"exec:{sys.executable} -m conformance serve"),
    ("C candidate, in process (cffi)", "conformance:c_core"),
    ("C candidate, C wire server", "conformance:c_core_wire"),
    ("C candidate, C wire server, protocol 1.0", "benchmarks.run:c_core_wire_1_0"),
)


def adapters(seed: int, budget: Budget) -> dict[str, Any]:
    """One seed's run through every adapter, three ways: the state machine, then its cases
    replayed through the executor, then through the plain loop."""
    rows: list[dict[str, Any]] = []
    for label, spec in ADAPTERS:
        candidate, handshake = start(connect(CORE, spec))
        try:
            cases, steps, (machine_seconds, executor_seconds, plain_seconds), trips = _three_ways(
                candidate, handshake, seed, budget
            )
        finally:
            close_quietly(candidate)
        rows.append(
            {
                "adapter": label,
                "spec": spec,
                "candidate": handshake.name,
                "cases": len(cases),
                "steps": steps,
                "steps_per_second": {
                    "state_machine": steps / machine_seconds,
                    "executor_replay": steps / executor_seconds,
                    "plain_loop": steps / plain_seconds,
                },
                "round_trips_per_step": trips / steps,
            }
        )
    # Every adapter declares the same capabilities, so the seed draws the very same cases.
    assert len({(row["cases"], row["steps"]) for row in rows}) == 1, rows
    c_in, c_wire, c_1_0 = (rows[i]["steps_per_second"] for i in (2, 3, 4))
    return {
        "seed": seed,
        "cases": rows[0]["cases"],
        "steps": rows[0]["steps"],
        "rows": rows,
        "c_wire_cost_per_step": {how: c_in[how] / c_wire[how] for how in c_in},
        "c_wire_1_0_cost_per_step": {how: c_in[how] / c_1_0[how] for how in c_in},
    }


# -- the report -------------------------------------------------------------------------------


def markdown(results: dict[str, Any]) -> str:
    m, o, x = results["machine"], results["overhead"], results["exhaustive"]
    rates = o["steps_per_second"]
    share = o["time_share"]
    lines = [
        "# Benchmarks",
        "",
        "Measured in one run of `python3 tasks.py bench` (written by `benchmarks/run.py`; do not",
        "edit by hand). Every figure is a count or a ratio from the same run; the raw numbers are",
        "in `benchmarks/results.json`.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['system']}; Python {m['python']},",
        f"hmm-conformance {m['hmm-conformance']}, Hypothesis {m['hypothesis']}. Budget "
        f"`{results['budget']}`, {results['seeds']} seed{'s' * (results['seeds'] != 1)}.",
        "",
        "## The random engine's overhead",
        "",
        f"Seed {o['seed']}: {o['cases']} cases, {o['steps']:,} steps against the reference, run",
        "three ways over the very same operations.",
        "",
        "| how | steps per second | ratio to the plain loop |",
        "|---|---:|---:|",
        f"| plain loop: the operations applied to the reference directly | "
        f"{rates['plain_loop']:,.0f} | 1.00 |",
        f"| executor replay: observe every range, judge every rule, advance the model | "
        f"{rates['executor_replay']:,.0f} | {1 / o['plain_over_executor']:.2f} |",
        f"| state machine: Hypothesis draws the operations, then the executor | "
        f"{rates['state_machine']:,.0f} | {1 / o['plain_over_state_machine']:.2f} |",
        "",
        f"Where the state machine's time goes: the candidate itself {share['candidate']:.0%}, "
        f"observing and judging {share['observe_and_oracle']:.0%}, Hypothesis "
        f"{share['hypothesis']:.0%}.",
        "Observing is the executor reading back every range after every step and the oracle",
        "checking all 29 core rules against the model. Hypothesis's part is its choice machinery:",
        "every step makes about ten recorded choices (the rule, its arguments, each mirror's",
        "answer), each kept in the tree that lets it shrink and avoid repeats. A cProfile of one",
        "CI-budget run (not part of this script) found 121,000 draws for 12,300 steps, and our",
        "own preconditions and model views under 2% of the time. That is the price of shrinking;",
        "the exhaustive engine, which makes no choices, runs the executor at its own speed.",
        "Against a real implementation (a C core over a pipe) the candidate's share grows and the",
        "harness's shrinks.",
        "",
        "## Strength: the catalogue over several seeds",
        "",
        "Caught: in how many seeds the random engine caught the entry against one of its rules.",
        "Shortest: the exhaustive engine's shortest counterexample. Ratio: the worst shrunk",
        "length over the shortest (target 1.00).",
        "",
        *_strength.table(results["strength"]),
    ]
    lines += searches.markdown(results["searches"])
    lines += [
        "",
        "## The exhaustive engine",
        "",
        f"Against the reference with a limit of {x['time_limit']:g} s: "
        f"{x['transitions_per_second']:,.0f} transitions per second, depth "
        f"{x['completed_depth']} completed ({x['states']:,} states, {x['transitions']:,} "
        "transitions in all).",
        "",
        "| depth | new states | transitions |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {lv['depth']} | {lv['states']:,} | {lv['transitions']:,} |" for lv in x["levels"]]
    a = results["adapters"]
    hows = ("state_machine", "executor_replay", "plain_loop")
    base = a["rows"][0]["steps_per_second"]
    cost = a["c_wire_cost_per_step"]
    lines += [
        "",
        "## Adapters: in process and over the wire",
        "",
        f"Seed {a['seed']}'s run ({a['cases']} cases, {a['steps']:,} steps; every adapter draws "
        "the same cases) through each way of reaching a candidate, three ways as above: the "
        "state machine (a real `hmm-conformance run`), the executor replaying its cases, and the "
        "plain loop. Steps per second, and in brackets the ratio to the reference in process.",
        "",
        "| adapter | state machine | executor replay | plain loop |",
        "|---|---:|---:|---:|",
    ]
    for row in a["rows"]:
        rates = row["steps_per_second"]
        cells = " | ".join(f"{rates[how]:,.0f} ({rates[how] / base[how]:.2f})" for how in hows)
        lines.append(f"| {row['adapter']} | {cells} |")
    old = a["c_wire_1_0_cost_per_step"]
    trips = {row["adapter"]: row["round_trips_per_step"] for row in a["rows"]}
    lines += [
        "",
        f"Per step of a conformance run the C wire server costs {cost['state_machine']:.2f}x the "
        f"C candidate in process (target: within 2x); {cost['executor_replay']:.2f}x once "
        f"Hypothesis's share is taken away, and {cost['plain_loop']:.2f}x per bare operation. "
        f"Spoken to in protocol 1.0 it costs {old['state_machine']:.2f}x, "
        f"{old['executor_replay']:.2f}x and {old['plain_loop']:.2f}x.",
        "A step over the wire is a request and its reply, plus a round trip for each callback",
        "the candidate makes; in protocol 1.0 also one for each range the executor observes",
        "after the step and inside each callback, which 1.1's observe-ahead sends with the reply",
        "and the callback instead (docs/wire-protocol.md). Round trips per step of the executor's",
        f"replay: {trips['C candidate, C wire server']:.2f} with observe-ahead, "
        f"{trips['C candidate, C wire server, protocol 1.0']:.2f} in 1.0 "
        f"({trips['reference, Python wire server']:.2f} for the Python wire server). Each is a",
        "JSON line encoded, written, waited for, read and checked field by field in Python; the",
        "C side of it is a small part: the Python wire server, which does the same work in",
        "Python on the other end, is slower again.",
    ]
    lines += driver.markdown(results)
    lines += generation.markdown(results)
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--explore-seconds", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and fast")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    settings = Settings(
        seeds=1 if args.quick else args.seeds,
        budget=BUDGETS["fast" if args.quick else "ci"],
        explore_seconds=1.0 if args.quick else args.explore_seconds,
        entries=CATALOGUE[:2] if args.quick else CATALOGUE,
        speed_budget=QUICK if args.quick else BUDGETS["ci"],
    )
    began = time.perf_counter()
    print(f"overhead at budget {settings.budget.name} ...", flush=True)
    results: dict[str, Any] = {
        "machine": machine(),
        "budget": settings.budget.name,
        "seeds": settings.seeds,
        "overhead": overhead(1, settings.speed_budget),
    }
    print(f"{len(settings.entries)} catalogue entries x {settings.seeds} seeds ...", flush=True)
    results["strength"], results["searches"] = strength(settings)
    print(f"the exhaustive engine for {settings.explore_seconds:g} s ...", flush=True)
    results["exhaustive"] = exhaustive(settings.explore_seconds)
    print("the adapters ...", flush=True)
    results["adapters"] = adapters(1, settings.speed_budget)
    drivers = DRIVER_CATALOGUE[:2] if args.quick else DRIVER_CATALOGUE
    print(f"{len(drivers)} driver entries x {settings.seeds} seeds ...", flush=True)
    results["driver_strength"] = driver.strength(drivers, settings.seeds, settings.budget)
    print("the driver side's speed ...", flush=True)
    results["driver_speed"] = driver.speed(1, settings.speed_budget, settings.explore_seconds)
    print("generation: rare states and every rule reached ...", flush=True)
    results["features"] = generation.features(1, settings.speed_budget)
    results["reach"] = generation.reach(2 if args.quick else 40)
    results["seconds"] = time.perf_counter() - began
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    args.markdown.write_text(markdown(results))
    print(f"done in {results['seconds']:.0f} s: {args.json}, {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
