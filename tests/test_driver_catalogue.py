"""The drivers' catalogue: every known-bad driver is caught against its rule, shrunk to its
shortest length; the over-conservative one is graded, not failed."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conformance import Budget, World, cli
from conformance._generation import ENCODINGS, VMAS
from conformance._known_bad import KnownBad
from conformance._side import Failure
from conformance.core import _side as core_side
from conformance.driver import _explore as driver_explore
from conformance.driver import _side as driver_side
from conformance.driver._adapter import DriverCandidate
from conformance.driver._blind_base import BlindBase
from conformance.driver._blind_catalogue import BLIND_CATALOGUE
from conformance.driver._catalogue import DRIVER_CATALOGUE, BaseDriver
from conformance.driver._explore import DriverExploreResult, search_driver
from conformance.driver._ops import DriverCase, RunFault, StartFault
from conformance.driver._side import (
    DRIVER,
    DriverFailure,
    replay_driver,
    run_driver,
    start_driver,
)
from conformance.oracle import Status

SEED = 1
#: Small enough for CI, large enough that every entry is found (the command uses `ci`).
BUDGET = Budget(name="driver-catalogue-test", examples=60, steps=20)
BY_NAME = {entry.name: entry for entry in DRIVER_CATALOGUE}
#: The same budget on the command line.
SMALL = ("--budget", "fast", "--examples", "60", "--steps", "20")


#: The entries written with the suite; the blind set's are measured over five seeds at the
#: default budget by the benchmarks instead (docs/benchmarks.md), which CI's time cannot hold.
HAND_WRITTEN = tuple(entry for entry in DRIVER_CATALOGUE if entry not in BLIND_CATALOGUE)


def test_the_catalogue_holds_the_blind_set_after_the_hand_written_entries() -> None:
    assert DRIVER_CATALOGUE[len(HAND_WRITTEN) :] == BLIND_CATALOGUE
    assert len(BLIND_CATALOGUE) == 26
    assert all(entry.name.startswith("blind-") for entry in BLIND_CATALOGUE)
    assert all(entry.origin.startswith("blind set: ") for entry in BLIND_CATALOGUE)


@pytest.mark.parametrize("entry", HAND_WRITTEN, ids=lambda entry: entry.name)
def test_every_known_bad_driver_is_caught_against_its_rule(
    entry: KnownBad[DriverCandidate],
) -> None:
    """Each bug fails one of its rules, shrunk to its shortest length; the graded entry
    conforms, with over-conservative answers counted under DRV-6 and nothing failed."""
    candidate, handshake = start_driver(entry.make)
    result = run_driver(candidate, handshake, budget=BUDGET, seed_value=SEED)
    if entry.graded:
        assert result.failure is None
        assert result.conforms
        assert result.graded > 0
        assert result.tally.counts["DRV-6"][Status.FAIL] == 0
        return
    assert result.failure is not None, f"{entry.name} was not caught"
    broken = {verdict.rule for verdict in result.failure.verdicts}
    assert broken & entry.rules, f"{entry.name} broke {broken}, not {set(entry.rules)}"
    assert len(result.failure.case.ops) == entry.shortest
    assert result.first_failure is not None


def test_the_catalogue_has_the_drivers_the_issue_lists_with_their_origins() -> None:
    """The six kinds the issue names, each against its rule, uniquely named, with an origin."""
    required = {
        "sleeps-when-not-blockable": "DRV-1",
        "eagain-when-blockable": "DRV-3",
        "commit-ignores-range-done": "DRV-4",
        "checks-before-locking": "DRV-4",
        "leaves-last-page": "DRV-2",
        "over-conservative": "DRV-6",
    }
    assert all(rule in BY_NAME[name].rules for name, rule in required.items())
    assert len(BY_NAME) == len(DRIVER_CATALOGUE)
    assert all(entry.origin for entry in DRIVER_CATALOGUE)
    assert [entry.name for entry in DRIVER_CATALOGUE if entry.graded] == ["over-conservative"]
    assert all("bug #" in BY_NAME[name].origin for name in required if name != "leaves-last-page")


def test_the_catalogue_document_lists_every_driver_in_order() -> None:
    """docs/catalogue.md's drivers' table has a row per entry: rules, name, shortest."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "catalogue.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| DRV-")]
    assert [row.split("`")[1] for row in rows] == [entry.name for entry in DRIVER_CATALOGUE]
    for row, entry in zip(rows, DRIVER_CATALOGUE, strict=True):
        rules = ", ".join(sorted(entry.rules)) + (" (graded)" if entry.graded else "")
        assert row.split("|")[1].strip() == rules
        assert row.split("|")[3].strip() == (str(entry.shortest) if entry.shortest else "-")


def _rows(out: str) -> dict[str, list[str]]:
    names = {entry.name for entry in DRIVER_CATALOGUE} | {"not-a-bug", "not-graded"}
    return {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line.split()[:1] and line.split()[0] in names
    }


def test_the_catalogue_command_shows_caught_graded_and_missed_drivers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A row per driver; a graded one that conforms is "graded"; any miss makes it exit 1."""
    bug, graded = BY_NAME["checks-before-locking"], BY_NAME["over-conservative"]
    monkeypatch.setattr(driver_side, "DRIVER_CATALOGUE", (bug, graded))
    out = io.StringIO()
    assert cli.main(["catalogue", "--side", "driver", *SMALL], stdout=out) == 0
    rows = _rows(out.getvalue())
    assert rows["checks-before-locking"][:3] == ["checks-before-locking", "yes", "DRV-4"]
    assert rows["checks-before-locking"][4:6] == ["2", "2"]
    assert rows["over-conservative"][:3] == ["over-conservative", "graded", "DRV-6"]
    assert int(rows["over-conservative"][3].removeprefix("x")) > 0
    assert "every one of the 2 known-bad drivers was caught" in out.getvalue()
    assert "known-bad cores" not in out.getvalue()

    not_a_bug: KnownBad[DriverCandidate] = KnownBad(
        name="not-a-bug", make=BaseDriver, rules=frozenset({"DRV-1"}), shortest=3, origin="none"
    )
    not_graded = replace(graded, name="not-graded", make=BaseDriver)
    monkeypatch.setattr(driver_side, "DRIVER_CATALOGUE", (not_a_bug, not_graded))
    out = io.StringIO()
    tiny = ("--examples", "10", "--steps", "10")  # neither can be caught at any budget
    assert cli.main(["catalogue", "--side", "driver", *tiny], stdout=out) == 1
    rows = _rows(out.getvalue())
    # explore finds no counterexample up to the recorded length of a driver with no bug
    assert rows["not-a-bug"][:6] == ["not-a-bug", "NO", "-", "-", "-", "none"]
    assert rows["not-graded"][:3] == ["not-graded", "NO", "DRV-6"]
    assert "2 known-bad drivers were NOT caught" in out.getvalue()


def test_the_catalogue_command_flags_a_driver_shrunk_past_its_shortest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the exhaustive engine finds a shorter case than the shrinker kept, the command says
    so (the target is equality). Here the search is handed a shorter case."""
    entry = BY_NAME["checks-before-locking"]  # shrunk to 2 operations
    real = driver_explore.search_driver

    def shorter(*args: Any, **how: Any) -> DriverExploreResult:
        result = real(*args, **how)
        assert result.failure is not None
        case = result.failure.case
        trimmed: DriverFailure = Failure(case=replace(case, ops=case.ops[:1]), steps=())
        return replace(result, failure=trimmed)

    monkeypatch.setattr(driver_explore, "search_driver", shorter)
    monkeypatch.setattr(driver_side, "DRIVER_CATALOGUE", (entry,))
    out = io.StringIO()
    assert cli.main(["catalogue", "--side", "driver", *SMALL], stdout=out) == 0
    assert "1 driver counterexamples were shrunk to more than the shortest length" in out.getvalue()


def test_the_catalogue_command_runs_both_tables_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --side, the cores' table comes first, then the drivers'."""
    monkeypatch.setattr(core_side, "CATALOGUE", ())
    monkeypatch.setattr(driver_side, "DRIVER_CATALOGUE", (BY_NAME["checks-before-locking"],))
    out = io.StringIO()
    assert cli.main(["catalogue", *SMALL], stdout=out) == 0
    text = out.getvalue()
    assert text.index("0 known-bad cores") < text.index("1 known-bad drivers")


@pytest.mark.parametrize(
    "entry", [e for e in DRIVER_CATALOGUE if not e.graded], ids=lambda entry: entry.name
)
def test_the_exhaustive_engine_finds_each_drivers_recorded_shortest_length(
    entry: KnownBad[DriverCandidate],
) -> None:
    """The breadth-first search finds a counterexample of exactly the recorded length, against
    one of the entry's rules: so no shorter one exists in the driver scope (the search would
    have met it at a shallower depth)."""
    candidate, handshake = start_driver(entry.make)
    result = search_driver(DRIVER, candidate, handshake, depth=entry.shortest)
    assert result.failure is not None
    assert len(result.failure.case.ops) == entry.shortest
    assert result.completed == entry.shortest - 1
    assert {verdict.rule for verdict in result.failure.verdicts} & entry.rules


def test_the_blind_sets_base_driver_conforms() -> None:
    """The control: the blind set's base, with no bug, conforms."""
    candidate, handshake = start_driver(BlindBase)
    result = run_driver(candidate, handshake, budget=BUDGET, seed_value=SEED)
    assert result.failure is None
    assert result.conforms


def test_a_driver_that_checks_early_checks_nothing_when_its_snapshot_fails() -> None:
    """checks-before-locking calls range_done only after a snapshot that succeeded: a fault
    outside every vma fails at its snapshot (no vma: no HMM call at all), with no range_done,
    and conforms."""
    candidate, handshake = start_driver(BY_NAME["checks-before-locking"].make)
    outside = StartFault(fault=0, start=0x40000, end=0x41000)
    steps = replay_driver(
        candidate,
        handshake,
        DriverCase(world=World(vmas=VMAS), encoding=ENCODINGS[0], ops=(outside, RunFault(fault=0))),
    )
    assert isinstance(steps, tuple)
    [run] = [step for step in steps if isinstance(step.op, RunFault)]
    assert [call.kind for record in run.observation.fault_steps for call in record.calls] == []
    assert run.observation.fault is not None
    assert run.observation.fault.result == -14
