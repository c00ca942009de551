"""Reports: every format tells the same story, and the JSON report validates against its schema."""

from __future__ import annotations

import importlib.resources
import json
from collections import Counter
from dataclasses import replace
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest

from conformance import (
    BUDGETS,
    Budget,
    Case,
    Failure,
    Profile,
    RangeDone,
    Release,
    RunResult,
    Snapshot,
    World,
    reference,
    run,
    start,
)
from conformance._engine import replay_failure
from conformance._machine import VMAS
from conformance._model import CallRecord, Observation
from conformance._report import (
    REPORT_FORMATS,
    describe_failure,
    headline,
    render,
    replay_document,
    rule_rows,
)
from conformance.oracle import Status, Verdict
from hmm_ref import DEFAULT_ENCODING

from . import candidates as C

SEED = 20261124


def _run(factory: object, profile: Profile = Profile.SEED) -> RunResult:
    assert callable(factory)
    candidate, handshake = start(factory)
    return run(candidate, handshake, profile=profile, budget=BUDGETS["ci"], seed_value=SEED)


@pytest.fixture(scope="module")
def passing() -> RunResult:
    return _run(reference)


@pytest.fixture(scope="module")
def failing() -> RunResult:
    return _run(C.ParentTree)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    text = (
        importlib.resources.files("conformance").joinpath("schemas/report.schema.json").read_text()
    )
    loaded: dict[str, Any] = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


@pytest.mark.parametrize("which", ["passing", "failing", "crashing", "strict"])
def test_json_reports_validate_against_the_shipped_schema(
    which: str, passing: RunResult, failing: RunResult, schema: dict[str, Any]
) -> None:
    """Reports of passing, failing, crashing and strict runs all validate."""
    result = {
        "passing": lambda: passing,
        "failing": lambda: failing,
        "crashing": lambda: _run(C.Crashes),
        "strict": lambda: _run(reference, Profile.STRICT),
    }[which]()
    report = json.loads(render(result, "json"))
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
    assert report["result"] == ("conforms" if which == "passing" else "violation")


def test_schema_rejects_a_report_that_lies(passing: RunResult, schema: dict[str, Any]) -> None:
    """The schema has teeth: a wrong status or a missing field does not validate."""
    report = json.loads(render(passing, "json"))
    report["rules"][0]["status"] = "fine"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, schema)
    del report["seed"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, schema)


def test_json_report_carries_the_matrix_and_the_counterexample(failing: RunResult) -> None:
    """The failing report names the rule, the shrunk case and each step's verdicts."""
    report = json.loads(render(failing, "json"))
    assert report["candidate"]["name"] == "parent-tree"
    assert report["failure"]["rules"] == ["INV-5"]
    assert report["failure"]["operations"] == len(report["failure"]["case"]["ops"])
    assert report["failure"]["steps"][-1]["verdicts"][0]["rule"] == "INV-5"
    rules = {rule["id"]: rule for rule in report["rules"]}
    assert rules["INV-5"]["status"] == "failed"
    assert len(rules) == 29


def test_junit_has_one_case_per_rule_and_the_failure(failing: RunResult) -> None:
    """JUnit XML parses, has a test case per rule, and puts the steps in the failure."""
    root = ElementTree.fromstring(render(failing, "junit"))
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == int(suite.get("tests", "0")) == 29
    failed = [case for case in cases if case.find("failure") is not None]
    assert any(case.get("name", "").startswith("INV-5 ") for case in failed)
    failure = next(c for c in failed if c.get("name", "").startswith("INV-5")).find("failure")
    assert failure is not None
    assert "non-blockable invalidate_start" in (failure.text or "")


def test_junit_reports_a_crash_as_an_error() -> None:
    """A crash, which breaks no rule, is a JUnit error on a harness test case."""
    root = ElementTree.fromstring(render(_run(C.Crashes), "junit"))
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("errors") == "1"
    error = suite.find("testcase[@name='harness']/error")
    assert error is not None
    assert "RuntimeError" in (error.text or "")


def test_ktap_is_version_1_with_a_plan_and_one_line_per_rule(failing: RunResult) -> None:
    """KTAP: the version line, the plan, ok/not ok per rule, SKIP directives, # diagnostics."""
    lines = render(failing, "ktap").splitlines()
    assert lines[:2] == ["KTAP version 1", "1..29"]
    results = [line for line in lines if line.startswith(("ok ", "not ok "))]
    assert len(results) == 29
    numbers = [int(line.removeprefix("not ").split()[1]) for line in results]
    assert numbers == list(range(1, 30))
    assert "not ok 10 INV-5" in lines
    assert any(line.startswith("ok 5 REG-5 # SKIP") for line in lines)
    assert all(line.startswith(("KTAP", "1..", "# ", "ok ", "not ok ")) for line in lines)


def test_markdown_has_the_table_and_the_counterexample(
    failing: RunResult, passing: RunResult
) -> None:
    """Markdown shows the result, a row per rule, and the counterexample when there is one."""
    text = render(failing, "md")
    assert "Result: **violation**" in text
    assert "| INV-5 | MUST |" in text
    assert "## Counterexample" in text
    assert "## Counterexample" not in render(passing, "md")


def test_every_format_is_rendered_and_unknown_ones_are_refused(passing: RunResult) -> None:
    """All four formats render; any other name is an error naming the choices."""
    assert all(render(passing, kind) for kind in REPORT_FORMATS)
    with pytest.raises(ValueError, match="json, junit, ktap, md"):
        render(passing, "html")


def test_clause_matrix_statuses(passing: RunResult) -> None:
    """Every rule of the core groups has a row, and the reference's rows are all good."""
    rows = rule_rows(passing)
    assert [row.rule.id for row in rows][:3] == ["REG-1", "REG-2", "REG-3"]
    assert {row.status for row in rows} <= {"ok", "not-in-profile", "never-reached", "allowed"}


def test_replay_document_is_a_case_with_its_failure(failing: RunResult) -> None:
    """The replay file is a loadable case plus what it broke."""
    document = replay_document(failing)
    assert document["format"] == "hmm-conformance/case"
    assert document["failure"][0]["rule"] == "INV-5"
    assert document["candidate"]["name"] == "parent-tree"


def test_failure_text_shows_refusals_hangs_releases_and_setup_crashes() -> None:
    """describe_failure spells every kind of step result and callback."""
    candidate, handshake = start(reference)
    world = World(vmas=VMAS)
    ops = (
        Snapshot(range=0, vma=0, start=VMAS[0].start, end=VMAS[0].end, encoding=DEFAULT_ENCODING),
        RangeDone(range=0),
        Release(),
    )
    passed = replay_failure(candidate, handshake, Case(world=world, ops=ops), Profile.SEED)
    text = describe_failure(passed)
    assert "2. range_done r0 -> True" in text
    assert "3. release (the process exits)" in text
    assert "did NOT fail again" in text

    step = passed.steps[0]
    odd = Failure(
        case=passed.case,
        steps=(
            type(step)(
                index=0,
                op=step.op,
                verdicts=(Verdict(rule="REL-1", status=Status.FAIL, detail="x"),),
                observation=Observation(
                    rejected="no", calls=(CallRecord(mirror=3, kind="release"),)
                ),
            ),
            type(step)(
                index=1,
                op=step.op,
                verdicts=(),
                observation=Observation(would_hang="stuck"),
            ),
        ),
    )
    text = describe_failure(odd)
    assert "-> refused" in text
    assert "m3.release()" in text
    assert "-> never returns" in text
    crash = Failure(
        case=passed.case,
        steps=(),
        setup_crash=Verdict(rule=None, status=Status.CRASH, detail="boom"),
    )
    assert "begin() crashed: boom" in describe_failure(crash)
    assert crash.verdicts[0].detail == "boom"


def test_headline_says_conforms_violates_or_flaky(passing: RunResult, failing: RunResult) -> None:
    """One line per outcome."""
    assert headline(passing).startswith("conforms: no rule failed in")
    assert headline(failing).startswith("NOT CONFORMING: INV-5, shrunk to 1 operation")
    flaky = replace(passing, flaky="it changed its mind")
    assert headline(flaky) == "NOT CONFORMING: it changed its mind"
    assert not flaky.conforms
    assert json.loads(render(flaky, "json"))["result"] == "flaky"


def test_failure_text_lists_the_callbacks_of_each_step() -> None:
    """The steps show each mirror callback with its blockable flag and the answer it gave."""
    candidate, handshake = start(C.BlockableStops)
    result = run(candidate, handshake, budget=BUDGETS["ci"], seed_value=SEED)
    assert result.failure is not None
    assert ".sync(blockable=True) -> -EAGAIN" in describe_failure(result.failure)


def test_an_inconclusive_run_says_so_in_every_report() -> None:
    """A run that left rules unreached is 'inconclusive', naming them, and the schema agrees."""
    candidate, handshake = start(reference)
    tiny = run(candidate, handshake, budget=Budget(name="tiny", examples=2, steps=3), seed_value=1)
    report = json.loads(render(tiny, "json"))
    assert report["result"] == "inconclusive"
    assert "RNG-8" in report["unreached"]
    schema_text = (
        importlib.resources.files("conformance").joinpath("schemas/report.schema.json").read_text()
    )
    jsonschema.validate(report, json.loads(schema_text))
    assert headline(tiny).startswith("INCONCLUSIVE: no rule failed, but ")
    assert "Result: **inconclusive**" in render(tiny, "md")


def test_ktap_notes_rules_that_failed_only_while_shrinking(failing: RunResult) -> None:
    """A rule that failed during the search but not in the final case gets a one-line note."""
    tally = replace(
        failing.tally, counts={**failing.tally.counts, "RNG-3": Counter({Status.FAIL: 4})}
    )
    lines = render(replace(failing, tally=tally), "ktap").splitlines()
    assert "# RNG-3 failed 4 times while the case was being shrunk" in lines
    assert "not ok 20 RNG-3" in lines
