"""Reports: every format tells the same story, and the JSON report validates against its schema.

Only a conforming run reads as green. The shapes below are one run of each outcome a report
must tell apart; tests/test_ktap.py and tests/test_driver_reports.py read them too.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, final
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
    Snapshot,
    World,
    reference,
    run,
    start,
)
from conformance._generation import VMAS
from conformance._report import (
    REPORT_FORMATS,
    describe_failure,
    headline,
    render,
    replay_document,
    rule_rows,
)
from conformance.core._model import CallRecord, Observation
from conformance.core._ops import CoreOperation, InvalidateEnd, InvalidateStart, RegisterMirror
from conformance.core._side import CORE, CoreFailure, CoreResult, replay_failure
from conformance.oracle import Status, Verdict
from hmm_ref import DEFAULT_ENCODING

from . import candidates as C

SEED = 20261124


#: What a flaky run's engine says, in the shapes built by hand.
FLAKY = "the candidate failed a case once and passed it on replay (as a test says it)"
TINY = Budget(name="tiny", examples=2, steps=3)


@functools.cache
def core_result(shape: str) -> CoreResult:
    """The core run of one shape of :data:`CORE_SHAPES`, made once per process."""
    return _SHAPES[shape][0]()


def _run(factory: object) -> CoreResult:
    assert callable(factory)
    candidate, handshake = start(factory)
    return run(candidate, handshake, budget=BUDGETS["ci"], seed_value=SEED)


def _replayed(factory: object, *ops: CoreOperation) -> CoreFailure:
    """The failure of a case replayed on a candidate (not reproduced if it did not fail)."""
    assert callable(factory)
    candidate, handshake = start(factory)
    return replay_failure(candidate, handshake, Case(world=World(vmas=VMAS), ops=ops), Profile.SEED)


def _graft(**changes: Any) -> CoreResult:
    """The conforming run with one thing changed: that thing alone must make it not green."""
    return replace(core_result("conforms"), **changes)


def _tiny() -> CoreResult:
    """A run too short to reach every rule: inconclusive."""
    candidate, handshake = start(reference)
    return run(candidate, handshake, budget=TINY, seed_value=1, aim=False)


def _flaky_run() -> CoreResult:
    C.Flaky.failed_once = False
    return _run(C.Flaky)


def _first_seen(shape: str) -> CoreFailure:
    """A shape's failure as a flaky run keeps it: as first seen, not reproduced on replay."""
    failure = core_result(shape).failure
    assert failure is not None
    return replace(failure, reproduced=False)


HANG = (InvalidateStart(start=VMAS[0].start, end=VMAS[0].start + 0x1000, blockable=True),
        InvalidateEnd(start=VMAS[0].start, end=VMAS[0].start + 0x1000))  # fmt: skip
#: Each shape, and the outcome its JSON report gives.
_SHAPES: dict[str, tuple[Callable[[], CoreResult], str]] = {
    "conforms": (lambda: _run(reference), "conforms"),
    "violation": (lambda: _run(C.ParentTree), "violation"),
    "crash-run": (lambda: _run(C.Crashes), "crash"),
    "hang": (lambda: _graft(failure=_replayed(C.Hangs, *HANG)), "hang"),
    "crash": (lambda: _graft(failure=core_result("crash-run").failure), "crash"),
    "protocol": (
        lambda: _graft(failure=_replayed(C.Nonsense, RegisterMirror(mirror=0))),
        "protocol",
    ),
    "setup-crash": (lambda: _graft(failure=_replayed(C.CrashesAtBegin)), "crash"),
    "inconclusive": (_tiny, "inconclusive"),
    "flaky-run": (_flaky_run, "flaky"),
    # A flaky run that kept no case: its rules failed in the search, and nothing shows where.
    "flaky-no-case": (lambda: replace(core_result("flaky-run"), failure=None), "flaky"),
    "flaky": (lambda: _graft(flaky=FLAKY), "flaky"),
    "flaky-first-seen": (lambda: _graft(flaky=FLAKY, failure=_first_seen("violation")), "flaky"),
    "flaky-crash-first-seen": (lambda: _graft(flaky=FLAKY, failure=_first_seen("crash")), "flaky"),
    "unreproduced": (lambda: _graft(failure=_replayed(reference, *HANG)), "flaky"),
}
CORE_SHAPES = tuple(_SHAPES)


def core_outcome(shape: str) -> str:
    """The JSON outcome of a shape."""
    return _SHAPES[shape][1]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Junit:
    """A JUnit report as CI reads it: each test case's outcome, and the suite's counts."""

    #: Test case (the rule ID, or "harness") -> passed, failure, error or skipped.
    outcomes: dict[str, str]
    #: Test case -> the message of its failure, error or skip.
    messages: dict[str, str]
    #: Test case -> the text of its failure or error.
    texts: dict[str, str]

    @property
    def green(self) -> bool:
        """What CI shows: no failure and no error."""
        return not {"failure", "error"} & set(self.outcomes.values())


def read_junit(text: str) -> Junit:
    """Parse a JUnit report, checking that every count in it agrees with its test cases."""
    root = ElementTree.fromstring(text)
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    outcomes, messages, texts = {}, {}, {}
    for case in suite.findall("testcase"):
        name = case.get("name", "").split(" ")[0]
        children = list(case)
        assert len(children) <= 1, f"{name} has {len(children)} outcomes"
        assert name not in outcomes, f"{name} is reported twice"
        outcomes[name] = children[0].tag if children else "passed"
        for child in children:
            assert child.tag in ("failure", "error", "skipped"), child.tag
            messages[name], texts[name] = child.get("message", ""), child.text or ""
    counted = Counter(outcomes.values())
    assert suite.get("tests") == str(len(outcomes))
    assert suite.get("failures") == str(counted["failure"])
    assert suite.get("errors") == str(counted["error"])
    assert suite.get("skipped") == str(counted["skipped"])
    return Junit(outcomes=outcomes, messages=messages, texts=texts)


@pytest.fixture(scope="module")
def passing() -> CoreResult:
    return core_result("conforms")


@pytest.fixture(scope="module")
def failing() -> CoreResult:
    return core_result("violation")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    text = (
        importlib.resources.files("conformance").joinpath("schemas/report.schema.json").read_text()
    )
    loaded: dict[str, Any] = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


@pytest.mark.parametrize("shape", CORE_SHAPES)
def test_json_reports_of_every_outcome_validate_and_name_it(
    shape: str, schema: dict[str, Any]
) -> None:
    """Each outcome validates and has its own result: hang, crash, protocol, flaky, and so on."""
    result = core_result(shape)
    report = json.loads(render(result, "json"))
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
    assert report["result"] == core_outcome(shape)
    assert (report["flaky"] is not None) == (core_outcome(shape) == "flaky")
    assert report["flaky"] in (
        None,
        result.flaky,
        "the candidate failed a case and passed it on replay",
    )


def test_a_strict_run_report_validates(schema: dict[str, Any]) -> None:
    """The strict profile's documented failure of the reference validates too: a snapshot,
    then release (REL-3), replayed under strict. (test_engine finds it by a strict run.)"""
    candidate, handshake = start(reference)
    stale = Case(
        world=World(vmas=VMAS),
        ops=(
            Snapshot(
                range=0, vma=0, start=VMAS[0].start, end=VMAS[0].end, encoding=DEFAULT_ENCODING
            ),
            Release(),
        ),
    )
    failure = replay_failure(candidate, handshake, stale, Profile.STRICT)
    assert {verdict.rule for verdict in failure.verdicts} >= {"REL-3"}
    report = json.loads(render(_graft(failure=failure, profile=Profile.STRICT), "json"))
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
    assert report["result"] == "violation"
    assert report["profile"] == "strict"


def test_json_keeps_a_flaky_failure_as_first_seen(schema: dict[str, Any]) -> None:
    """A flaky run's failure is the case as first seen, its steps and verdicts, not reproduced."""
    report = json.loads(render(core_result("flaky-first-seen"), "json"))
    assert report["result"] == "flaky"
    assert report["flaky"] == FLAKY
    assert report["failure"]["reproduced"] is False
    assert report["failure"]["rules"] == ["INV-5"]
    assert report["failure"]["steps"][-1]["verdicts"][0]["rule"] == "INV-5"
    # Only a failure that did not come back may have no failing verdict.
    unreproduced = json.loads(render(core_result("unreproduced"), "json"))
    assert unreproduced["failure"]["verdicts"] == []
    jsonschema.validate(unreproduced, schema, cls=jsonschema.Draft202012Validator)
    unreproduced["failure"]["reproduced"] = True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(unreproduced, schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("shape", CORE_SHAPES)
def test_junit_counts_agree_and_only_a_conforming_run_is_green(shape: str) -> None:
    """tests=, failures=, errors= and skipped= count the test cases; only conforms is green."""
    junit = read_junit(render(core_result(shape), "junit"))
    assert junit.green == (shape == "conforms")


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ("hang", "HANG at step 2 (invalidate_end [0x10000, 0x11000)): invalidate_end: waits"),
        ("crash", "CRASH at step 1 (non-blockable invalidate_start ["),
        ("protocol", "PROTOCOL at step 1 (register mirror m0): register answered '0', not an int"),
        ("setup-crash", "CRASH in begin(), before the first step: begin() raised"),
    ],
)
def test_junit_reports_a_harness_verdict_as_a_counted_error(shape: str, message: str) -> None:
    """A verdict with no rule is an error on a "harness" test case, counted, naming the step."""
    junit = read_junit(render(core_result(shape), "junit"))
    broken = {name: outcome for name, outcome in junit.outcomes.items() if outcome != "passed"}
    assert {name: o for name, o in broken.items() if o != "skipped"} == {"harness": "error"}
    assert junit.messages["harness"].startswith(message)
    assert "world: 4 vmas" in junit.texts["harness"]


def test_junit_fails_rules_never_reached_and_skips_rules_out_of_force() -> None:
    """An inconclusive run: each rule in force never reached fails; rules out of force skip."""
    result = core_result("inconclusive")
    junit = read_junit(render(result, "junit"))
    assert result.unreached
    for rule in result.unreached:
        assert junit.outcomes[rule] == "failure"
        assert junit.messages[rule].startswith(f"INCONCLUSIVE: {rule} never came up in 2 cases")
    assert junit.outcomes["REG-5"] == junit.outcomes["REL-3"] == "skipped"
    assert junit.messages["REG-5"] == "strict profile only"
    assert "harness" not in junit.outcomes


@pytest.mark.parametrize(
    ("shape", "kind"),
    [
        ("flaky", "failure"),
        ("flaky-run", "failure"),
        ("flaky-no-case", "failure"),
        ("flaky-first-seen", "failure"),
        ("flaky-crash-first-seen", "error"),
        ("unreproduced", "failure"),
    ],
)
def test_junit_reports_a_flaky_run_on_the_harness_case(shape: str, kind: str) -> None:
    """Flakiness fails the "harness" case with its note, and the case as first seen if kept."""
    result = core_result(shape)
    junit = read_junit(render(result, "junit"))
    assert junit.outcomes["harness"] == kind
    assert "FLAKY: " in junit.messages["harness"]
    if result.failure is not None:
        assert "did NOT fail again" in junit.texts["harness"]
    if shape == "flaky-first-seen":
        assert junit.outcomes["INV-5"] == "failure"
        assert "as first seen, the case broke INV-5 at step 1 (" in junit.messages["harness"]


@pytest.mark.parametrize("shape", CORE_SHAPES)
def test_markdown_names_the_outcome_and_why(shape: str) -> None:
    """The result line names the outcome; a harness verdict, flakiness or a gap is spelled out."""
    result = core_result(shape)
    text = render(result, "md")
    assert f"Result: **{core_outcome(shape)}**" in text
    notes = [line for line in text.splitlines() if line.startswith("- ")]
    gap = f"- {', '.join(result.unreached)} never came up before the run stopped at its failure"
    expected = {
        "conforms": [],
        "violation": [gap] if result.unreached else [],
        "hang": ["- HANG at step 2 (invalidate_end [0x10000, 0x11000)): "],
        "protocol": ["- PROTOCOL at step 1 (register mirror m0): "],
        "setup-crash": ["- CRASH in begin(), before the first step: begin() raised"],
        "inconclusive": [f"- INCONCLUSIVE: {', '.join(result.unreached)} never came up in 2 "],
        "flaky": [f"- FLAKY: {FLAKY}"],
        "flaky-first-seen": [
            f"- FLAKY: {FLAKY}",
            "- as first seen, the case broke INV-5 at step 1",
        ],
        "unreproduced": ["- FLAKY: the candidate failed a case and passed it on replay"],
    }.get(shape)
    if expected is not None:
        assert len(notes) == len(expected)
        assert all(note.startswith(start) for note, start in zip(notes, expected, strict=True))
    else:
        assert notes
    if result.failure is not None:
        first_seen = "## Counterexample, as first seen" in text
        assert first_seen == (core_outcome(shape) == "flaky")


def test_schema_rejects_a_report_that_lies(passing: CoreResult, schema: dict[str, Any]) -> None:
    """The schema has teeth: a wrong status or a missing field does not validate."""
    report = json.loads(render(passing, "json"))
    report["rules"][0]["status"] = "fine"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, schema)
    del report["seed"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(report, schema)


def test_json_report_carries_the_matrix_and_the_counterexample(failing: CoreResult) -> None:
    """The failing report names the rule, the shrunk case and each step's verdicts."""
    report = json.loads(render(failing, "json"))
    assert report["candidate"]["name"] == "parent-tree"
    assert report["failure"]["rules"] == ["INV-5"]
    assert report["failure"]["operations"] == len(report["failure"]["case"]["ops"])
    assert report["failure"]["steps"][-1]["verdicts"][0]["rule"] == "INV-5"
    rules = {rule["id"]: rule for rule in report["rules"]}
    assert rules["INV-5"]["status"] == "failed"
    assert len(rules) == 35


def test_junit_has_one_case_per_rule_and_the_failure(failing: CoreResult) -> None:
    """JUnit XML parses, has a test case per rule, and puts the steps in the failure."""
    root = ElementTree.fromstring(render(failing, "junit"))
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == int(suite.get("tests", "0")) == 35
    failed = [case for case in cases if case.find("failure") is not None]
    assert any(case.get("name", "").startswith("INV-5 ") for case in failed)
    failure = next(c for c in failed if c.get("name", "").startswith("INV-5")).find("failure")
    assert failure is not None
    assert "non-blockable invalidate_start" in (failure.text or "")


def test_junit_reports_a_crash_as_an_error() -> None:
    """A crash, which breaks no rule, is a JUnit error on a harness test case."""
    root = ElementTree.fromstring(render(core_result("crash-run"), "junit"))
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("errors") == "1"
    error = suite.find("testcase[@name='harness']/error")
    assert error is not None
    assert "RuntimeError" in (error.text or "")


def test_ktap_is_version_1_with_a_plan_and_one_line_per_rule(failing: CoreResult) -> None:
    """KTAP: the version line, the plan, ok/not ok per rule, SKIP directives, # diagnostics."""
    lines = render(failing, "ktap").splitlines()
    assert lines[:2] == ["KTAP version 1", "1..35"]
    results = [line for line in lines if line.startswith(("ok ", "not ok "))]
    assert len(results) == 35
    numbers = [int(line.removeprefix("not ").split()[1]) for line in results]
    assert numbers == list(range(1, 36))
    assert "not ok 10 INV-5" in lines
    assert any(line.startswith("ok 5 REG-5 # SKIP") for line in lines)
    assert all(line.startswith(("KTAP", "1..", "# ", "ok ", "not ok ")) for line in lines)


def test_markdown_has_the_table_and_the_counterexample(
    failing: CoreResult, passing: CoreResult
) -> None:
    """Markdown shows the result, a row per rule, and the counterexample when there is one."""
    text = render(failing, "md")
    assert "Result: **violation**" in text
    assert "| INV-5 | MUST |" in text
    assert "## Counterexample" in text
    assert "## Counterexample" not in render(passing, "md")


def test_every_format_is_rendered_and_unknown_ones_are_refused(passing: CoreResult) -> None:
    """All four formats render; any other name is an error naming the choices."""
    assert all(render(passing, kind) for kind in REPORT_FORMATS)
    with pytest.raises(ValueError, match="json, junit, ktap, md"):
        render(passing, "html")


def test_clause_matrix_statuses(passing: CoreResult) -> None:
    """Every rule of the core groups has a row, and the reference's rows are all good."""
    rows = rule_rows(passing)
    assert [row.rule.id for row in rows][:3] == ["REG-1", "REG-2", "REG-3"]
    assert {row.status for row in rows} <= {"ok", "not-in-profile", "never-reached", "allowed"}


def test_replay_document_is_a_case_with_its_failure(failing: CoreResult) -> None:
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
    text = describe_failure(CORE, passed)
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
    text = describe_failure(CORE, odd)
    assert "-> refused" in text
    assert "m3.release()" in text
    assert "-> never returns" in text
    crash: CoreFailure = Failure(
        case=passed.case,
        steps=(),
        setup_crash=Verdict(rule=None, status=Status.CRASH, detail="boom"),
    )
    assert "begin() crashed: boom" in describe_failure(CORE, crash)
    assert crash.verdicts[0].detail == "boom"


def test_headline_says_conforms_violates_or_flaky(passing: CoreResult, failing: CoreResult) -> None:
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
    result = run(candidate, handshake, budget=BUDGETS["ci"], seed_value=3)  # shrinks soonest
    assert result.failure is not None
    assert ".sync(blockable=True) -> -EAGAIN" in describe_failure(CORE, result.failure)


def test_an_inconclusive_run_says_so_in_every_report() -> None:
    """A run that left rules unreached is 'inconclusive', naming them, and the schema agrees."""
    tiny = core_result("inconclusive")
    report = json.loads(render(tiny, "json"))
    assert report["result"] == "inconclusive"
    assert tiny.unreached
    assert report["unreached"] == list(tiny.unreached)
    schema_text = (
        importlib.resources.files("conformance").joinpath("schemas/report.schema.json").read_text()
    )
    jsonschema.validate(report, json.loads(schema_text))
    assert headline(tiny).startswith("INCONCLUSIVE: no rule failed, but ")
    assert "Result: **inconclusive**" in render(tiny, "md")


def test_ktap_notes_rules_that_failed_only_while_shrinking(failing: CoreResult) -> None:
    """A rule that failed during the search but not in the final case gets a one-line note."""
    tally = replace(
        failing.tally, counts={**failing.tally.counts, "RNG-3": Counter({Status.FAIL: 4})}
    )
    lines = render(replace(failing, tally=tally), "ktap").splitlines()
    assert "# RNG-3 failed 4 times while the case was being shrunk" in lines
    assert "not ok 20 RNG-3" in lines


def test_headline_of_a_flaky_run_says_what_failed_first() -> None:
    """A flaky run's headline gives the engine's note, then what the case broke when first seen."""
    assert headline(core_result("flaky-first-seen")).startswith(
        f"NOT CONFORMING: {FLAKY}; as first seen, INV-5 at step 1 (non-blockable invalidate_start"
    )
    assert headline(core_result("unreproduced")) == (
        "NOT CONFORMING: the candidate failed a case and passed it on replay"
    )
    assert headline(core_result("flaky")) == f"NOT CONFORMING: {FLAKY}"


def test_a_rule_that_failed_in_a_flaky_run_is_failed_in_the_matrix() -> None:
    """A flaky run keeps no shrunk case, but the rule it failed is not "ok" in the matrix."""
    result = core_result("flaky-no-case")
    failed = [row for row in rule_rows(result) if row.failed]
    assert failed
    assert {row.status for row in failed} == {"failed"}


def test_one_case_is_said_in_the_singular() -> None:
    """A run of one case says "1 case" in the headline and in every format's notes."""
    one = replace(_tiny(), cases=1)
    assert "never came up in 1 case;" in headline(one)
    assert "never came up in 1 case:" in render(one, "ktap")
    assert "1 case generated" in render(one, "md")
    assert "1 cases" not in render(one, "junit") + render(one, "md") + headline(one)
