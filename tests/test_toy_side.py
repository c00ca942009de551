"""A third side, defined in tests/toy_side.py, runs through every entry point: the engine's
run and replay, the four reports, the command line's run and replay, and the pytest plugin.
Registering it is the only step: no shared module knows of it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import _engine as engine
from conformance._case import CaseFormatError
from conformance._counting import BUDGETS, Budget
from conformance._errors import AdapterError
from conformance._report import render, rule_rows
from conformance._sides import SIDES, register, side_named, side_of
from conformance.cli import main

from .toy_side import TOY, Breaks, Echo, Off, Poke, ToyCase


@pytest.fixture
def toy() -> Iterator[None]:
    """The toy side, registered for one test."""
    register(TOY)
    try:
        yield
    finally:
        del SIDES[TOY.name]


def _main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.usefixtures("toy")
def test_the_engine_runs_shrinks_and_replays_a_third_side() -> None:
    """Off breaks TOY-1 from 6 up: the run finds it and shrinks it to the one poke of 6;
    Echo conforms with TOY-1 exercised; a replay of the case fails Off and passes Echo."""
    candidate, handshake = engine.start(TOY, Off)
    result = engine.run(TOY, candidate, handshake, budget=BUDGETS["fast"], seed_value=1)
    assert not result.conforms
    assert result.failure is not None
    assert result.failure.case == ToyCase((Poke(6),))
    assert [verdict.rule for verdict in result.failure.verdicts] == ["TOY-1"]
    kept: list[ToyCase] = []
    good = engine.run(TOY, Echo(), handshake, budget=BUDGETS["fast"], seed_value=1, keep=kept)
    assert good.conforms
    assert good.unreached == ()
    assert len(kept) >= good.cases
    assert isinstance(engine.replay(TOY, Echo(), handshake, result.failure.case, good.profile),
                      tuple)  # fmt: skip
    again = engine.confirm(TOY, Off(), handshake, ToyCase((Poke(1), Poke(7))), good.profile)
    assert again.steps[-1].answer == 8
    with pytest.raises(CaseFormatError, match="not negative"):
        engine.replay(TOY, Echo(), handshake, ToyCase((Poke(-1),)), good.profile)


@pytest.mark.usefixtures("toy")
def test_every_report_renders_a_third_side() -> None:
    """The clause matrix has the toy's one rule; JSON names the side; KTAP and JUnit fail."""
    candidate, handshake = engine.start(TOY, Off)
    result = engine.run(TOY, candidate, handshake, budget=BUDGETS["fast"], seed_value=2)
    assert [(row.rule.id, row.status) for row in rule_rows(result)] == [("TOY-1", "failed")]
    document = json.loads(render(result, "json"))
    assert document["side"] == "toy"
    assert document["result"] == "violation"
    assert document["failure"]["steps"][-1]["op"] == {"op": "poke", "value": 6}
    assert "not ok 1 TOY-1" in render(result, "ktap")
    assert 'failures="1"' in render(result, "junit")
    assert "poke(6) -> 7" in render(result, "md")


@pytest.mark.usefixtures("toy")
def test_the_command_line_runs_and_replays_a_third_side(tmp_path: Path) -> None:
    """``run --side toy`` saves the failing case; ``replay`` reads its side from the file."""
    report = tmp_path / "r.json"
    status, out, _ = _main("run", "--side", "toy", "--adapter", "tests.toy_side:Off",
                           "--budget", "fast", "--seed", "1", "--replay-dir", str(tmp_path),
                           "--report", "json", str(report))  # fmt: skip
    assert status == 1
    assert "[hmm-conformance] toy off" in out
    assert "side toy, budget fast" in out
    assert "NOT CONFORMING: TOY-1, shrunk to 1 operation" in out
    assert json.loads(report.read_text())["side"] == "toy"
    saved = tmp_path / "off-toy-seed1.json"
    assert json.loads(saved.read_text())["side"] == "toy"
    status, out, _ = _main("replay", "--adapter", "tests.toy_side:Off", str(saved))
    assert (status, "replaying 1 operations against the toy off" in out) == (1, True)
    status, out, _ = _main("replay", str(saved))  # the side's default adapter: Echo
    assert (status, "every step held" in out) == (0, True)
    status, _, err = _main("replay", "--profile", "strict", str(saved))
    assert status == 2
    assert "--profile strict does not apply to toys" in err


@pytest.mark.usefixtures("toy")
def test_the_catalogue_runs_a_third_side_and_explore_refuses_one_without_an_explorer() -> None:
    """A side's known-bad candidates are its catalogue hook's: ``catalogue --side toy`` runs
    them; ``explore`` offers only the sides that have an exhaustive engine."""
    status, out, _ = _main("catalogue", "--side", "toy", "--budget", "fast")
    assert status == 0
    [row] = [line.split() for line in out.splitlines() if line.startswith("off-by-one")]
    assert row[:3] == ["off-by-one", "yes", "TOY-1"]
    assert row[4:6] == ["1", "1"]  # shrunk to the recorded shortest length
    assert "every one of the 1 known-bad toys was caught against its rule" in out
    assert "known-bad cores" not in out
    status, _, err = _main("explore", "--side", "toy")
    assert status == 2
    assert "--side toy: the toy side has no exhaustive engine yet; explore --side takes core" in err


@pytest.mark.usefixtures("toy")
def test_the_plugin_runs_a_third_side(pytester: pytest.Pytester) -> None:
    """``--hmm-side=toy`` runs the toy side in pytest, and fails Off with its counterexample."""
    toy = ("--hmm-side=toy", "--hmm-budget=fast", "--hmm-seed=1", "-p", "no:cacheprovider")
    result = pytester.runpytest("--hmm-adapter=tests.toy_side:Off", *toy)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*NOT CONFORMING: TOY-1*", "*poke(6) -> 7*"])
    result = pytester.runpytest("--hmm-adapter=tests.toy_side:Echo", *toy)
    result.assert_outcomes(passed=1)


def test_the_registry_names_its_sides_and_refuses_a_second_of_a_name(toy: None) -> None:
    """A name taken is refused; an unknown name is an error listing the sides there are, in a
    replay file as on the command line."""
    with pytest.raises(ValueError, match="'toy' is registered already"):
        register(TOY)
    assert side_named("toy") is TOY
    with pytest.raises(AdapterError, match="no side 'gpu': the sides are core, driver, toy"):
        side_named("gpu")
    with pytest.raises(CaseFormatError, match="'gpu' is not 'core', 'driver' or 'toy'"):
        side_of({"side": "gpu"})
    assert side_of([]) is SIDES["core"]


def test_an_error_of_the_harness_in_a_case_is_raised_not_lost() -> None:
    """An exception of the harness's own (not a step's verdict) while a case runs ends the run
    with that exception: shrinking it does not spend the budget and end the run as if no case
    had failed."""
    candidate, handshake = engine.start(TOY, Breaks)
    small = Budget(name="small", examples=3, steps=30)  # fewer cases than shrinking takes
    with pytest.raises(RuntimeError, match="a bug in the harness"):
        engine.run(TOY, candidate, handshake, budget=small, seed_value=1)
