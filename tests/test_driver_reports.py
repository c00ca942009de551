"""Driver-side reports: the shrunk steps read as the harness saw them, in every format.

As on the core side (tests/test_reports.py), only a conforming run reads as green: the shapes
below are one driver run of each outcome; tests/test_ktap.py reads them too.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import jsonschema
import pytest

from conformance import BUDGETS, Budget, World
from conformance._generation import ENCODINGS, VMAS
from conformance._report import describe_failure, headline, render, replay_document
from conformance._side import Failure
from conformance.driver._catalogue import (
    CommitIgnoresRangeDone,
    ReleaseKeepsEntries,
    SleepsWhenNotBlockable,
)
from conformance.driver._ops import (
    DriverCase,
    DriverOp,
    Exit,
    NotifierStart,
    RunFault,
    StartFault,
    StepFault,
)
from conformance.driver._reference import reference_driver
from conformance.driver._side import (
    DRIVER,
    DriverFailure,
    DriverRunResult,
    replay_driver,
    replay_driver_failure,
    run_driver,
    start_driver,
)
from hmm_ref import Pte

from . import driver_candidates as B
from .test_reports import read_junit

P0, P1, P2 = 0x10000, 0x11000, 0x12000
WORLD = World(vmas=VMAS, ptes=((P0, Pte.present(0x100, write=True)), (P1, Pte.present(0x101))))
MAPPED = (StartFault(fault=0, start=P0, end=P2), RunFault(fault=0))


#: Every DRV rule comes up at this budget and seed (as in tests/test_driver_engine.py).
SMALL = Budget(name="small", examples=60, steps=20)
SEED = 7
FLAKY = "the driver failed a case once and passed it on replay (as a test says it)"
STALE = (
    StartFault(fault=0, start=P0, end=P1),
    StepFault(fault=0),
    NotifierStart(start=P0, end=P1, blockable=False),
    RunFault(fault=0),
)


def _failure(factory: object, *ops: DriverOp) -> DriverFailure:
    assert callable(factory)
    candidate, handshake = start_driver(factory)
    case = DriverCase(world=WORLD, encoding=ENCODINGS[0], ops=ops)
    outcome = replay_driver(candidate, handshake, case)
    assert isinstance(outcome, Failure)
    return outcome


@functools.cache
def driver_result(shape: str) -> DriverRunResult:
    """The driver run of one shape of :data:`DRIVER_SHAPES`, made once per process."""
    return _SHAPES[shape][0]()


def _run(factory: object, budget: Budget = SMALL, *, aim: bool = True) -> DriverRunResult:
    assert callable(factory)
    candidate, handshake = start_driver(factory)
    return run_driver(candidate, handshake, budget=budget, seed_value=SEED, aim=aim)


def _graft(**changes: Any) -> DriverRunResult:
    """The conforming run with one thing changed: that thing alone must make it not green."""
    return replace(driver_result("conforms"), **changes)


def _flaky_run() -> DriverRunResult:
    B.FLAKY.failed = False
    return _run(B.Flaky)


def _first_seen() -> DriverFailure:
    failure = driver_result("violation").failure
    assert failure is not None
    return replace(failure, reproduced=False)


#: Each shape, and the outcome its JSON report gives.
_SHAPES: dict[str, tuple[Callable[[], DriverRunResult], str]] = {
    "conforms": (lambda: _run(reference_driver), "conforms"),
    "violation": (lambda: _graft(failure=_failure(CommitIgnoresRangeDone, *STALE)), "violation"),
    "hang": (
        lambda: _graft(
            failure=_failure(
                B.SaysItNeverBlocks,
                MAPPED[0],
                StepFault(fault=0),
                StepFault(fault=0),
                NotifierStart(start=P0, end=P1, blockable=True),
            )
        ),
        "hang",
    ),
    "crash": (lambda: _graft(failure=_failure(B.CrashesInStep, *MAPPED)), "crash"),
    "protocol": (
        lambda: _graft(
            failure=_failure(
                B.ReplyNotAnInt, *MAPPED, NotifierStart(start=P0, end=P1, blockable=True)
            )
        ),
        "protocol",
    ),
    "setup-crash": (lambda: _graft(failure=_failure(B.CrashesInBegin, *MAPPED)), "crash"),
    "inconclusive": (
        lambda: _run(reference_driver, Budget(name="tiny", examples=1, steps=1), aim=False),
        "inconclusive",
    ),
    "flaky-run": (_flaky_run, "flaky"),
    "flaky-first-seen": (lambda: _graft(flaky=FLAKY, failure=_first_seen()), "flaky"),
}
DRIVER_SHAPES = tuple(_SHAPES)


def test_a_stale_commit_reads_step_by_step_with_the_hmm_calls() -> None:
    """Each step, its result, the fault's HMM calls, the failing verdict, the table after."""
    text = describe_failure(DRIVER, _failure(CommitIgnoresRangeDone, *STALE))
    assert text.splitlines() == [
        "world: 4 vmas, 2 CPU entries set; the driver's encoding: flags 0x1, 0x2, 0x4, "
        "pfn_shift 12 (see the replay file)",
        "  1. device fault f0 over [0x10000, 0x11000) starts",
        "  2. fault f0 takes a step -> snapshot",
        "       snapshot: get_pfns([0x10000, 0x11000)) -> 0",
        "  3. OOM reaper: non-blockable invalidate_start [0x10000, 0x11000) -> 0",
        "       driver.sync(blockable=False) -> 0; device entries in the span before: none, "
        "after: none",
        "  4. fault f0 runs -> lock, check, unlock; done: 0",
        "       check: range_done([0x10000, 0x11000)) -> False",
        "       FAIL DRV-4: f0's check step committed 0x10000, but range_done of its snapshot "
        "returned False (stale)",
        "device page table after the last step: 0x10000 -> pfn 0x100 rw",
    ]


def test_a_release_and_a_sleep_are_shown_where_they_happened() -> None:
    """The release callback is a line of its own; a sleep names the call and its caller."""
    released = describe_failure(DRIVER, _failure(ReleaseKeepsEntries, *MAPPED, Exit()))
    assert "       driver.release()" in released
    assert "FAIL DRV-5: the device maps 0x10000 to pfn 0x100, the CPU to none" in released
    slept = describe_failure(
        DRIVER,
        _failure(SleepsWhenNotBlockable, *MAPPED, NotifierStart(start=P0, end=P1, blockable=False)),
    )
    assert "       slept: mutex_lock(sleeps-when-not-blockable.lock) from " in slept
    assert "SleepsWhenNotBlockable.lock_without_sleeping (_catalogue.py:" in slept


def test_a_setup_crash_and_an_unreproduced_failure_say_so() -> None:
    """begin() crashing is one line; a case that passed on replay says the driver is flaky."""
    candidate, handshake = start_driver(B.CrashesInBegin)
    result = run_driver(candidate, handshake, budget=BUDGETS["fast"], seed_value=1)
    assert result.failure is not None
    text = describe_failure(DRIVER, result.failure)
    assert text.splitlines()[1].startswith("begin() crashed: CRASH: begin() raised")
    assert headline(result).startswith(
        "NOT CONFORMING: CRASH, shrunk to 0 operations; first failed at case 1 of "
    )
    assert replay_document(result)["side"] == "driver"
    candidate, handshake = start_driver(reference_driver)
    empty = DriverCase(world=WORLD, encoding=ENCODINGS[0])
    failure = replay_driver_failure(candidate, handshake, empty)
    assert describe_failure(DRIVER, failure).splitlines()[1:] == [
        "the replay of this case did NOT fail again: the driver is not deterministic"
    ]


@pytest.mark.parametrize("shape", DRIVER_SHAPES)
def test_driver_json_reports_of_every_outcome_validate_and_name_it(shape: str) -> None:
    """Each driver outcome validates against the report schema and has its own result."""
    schema = json.loads(
        importlib.resources.files("conformance").joinpath("schemas/report.schema.json").read_text()
    )
    report = json.loads(render(driver_result(shape), "json"))
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
    assert report["side"] == "driver"
    assert report["result"] == _SHAPES[shape][1]


@pytest.mark.parametrize("shape", DRIVER_SHAPES)
def test_driver_junit_counts_agree_and_only_a_conforming_run_is_green(shape: str) -> None:
    """tests=, failures=, errors= and skipped= count the test cases; only conforms is green."""
    junit = read_junit(render(driver_result(shape), "junit"))
    assert junit.green == (shape == "conforms")
    harness = {
        "hang": "error",
        "crash": "error",
        "protocol": "error",
        "setup-crash": "error",
        "flaky-run": "failure",
        "flaky-first-seen": "failure",
    }.get(shape)
    assert junit.outcomes.get("harness") == harness


@pytest.mark.parametrize(
    ("shape", "note"),
    [
        ("hang", "- HANG at step 4 (CPU: blockable invalidate_start [0x10000, 0x11000)): "),
        ("crash", "- CRASH at step 2 (fault f0 runs): run_fault raised"),
        ("protocol", "- PROTOCOL at step 3 (CPU: blockable invalidate_start [0x10000, 0x11000)): "),
        ("setup-crash", "- CRASH in begin(), before the first step: "),
        ("inconclusive", "- INCONCLUSIVE: DRV-"),
        ("flaky-run", "- FLAKY: the driver failed "),
        ("flaky-first-seen", f"- FLAKY: {FLAKY}"),
    ],
)
def test_driver_markdown_says_why_a_run_is_not_green(shape: str, note: str) -> None:
    """The result line names the outcome, and a note says what went wrong and where."""
    text = render(driver_result(shape), "md")
    assert f"Result: **{_SHAPES[shape][1]}**" in text
    assert any(line.startswith(note) for line in text.splitlines())
