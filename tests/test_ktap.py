"""KTAP reports, read against the KTAP v1 grammar the way the kernel's KUnit tool reads them.

The grammar is Documentation/dev-tools/ktap.rst: a version line, a plan ``1..N``, result lines
``ok|not ok N [description] [# [directive] [diagnostic]]`` numbered from 1, and ``#`` diagnostic
lines (the reports use no subtests, so an indented line is an error here). The overall status is
decided as tools/testing/kunit/kunit_parser.py decides it: a result line whose directive is SKIP
is a skip (``ok`` or ``not ok``), any other ``ok`` a pass and ``not ok`` a failure; a test the plan
promised but the output lacks is a crash; then crashed beats failed, failed beats passed, passed
beats skipped, and no test at all is NO_TESTS. The parser is written here from that description.
"""

from __future__ import annotations

import enum
import re
from collections import Counter
from dataclasses import dataclass
from typing import Final, final

import pytest

from conformance._report import AnyResult, render, rule_rows
from conformance._report._summary import cases

from .test_driver_reports import DRIVER_SHAPES, driver_result
from .test_reports import CORE_SHAPES, FLAKY, core_result

_VERSION: Final = re.compile(r"KTAP version (?P<version>[0-9]+)")
_PLAN: Final = re.compile(r"1\.\.(?P<count>[0-9]+)")
_RESULT: Final = re.compile(
    r"(?P<result>ok|not ok) (?P<number>[0-9]+)(?: (?P<description>[^#]+?))?"
    r"(?: #(?: (?P<directive>.*))?)?"
)
_DIAGNOSTIC: Final = re.compile(r"#(?: .*)?")
#: kunit_parser reads a diagnostic of this form as the header of a subtest.
_SUBTEST_HEADER: Final = re.compile(r"# Subtest: ")


class KtapError(ValueError):
    """The text is not KTAP v1 as the reports write it."""


class Status(enum.Enum):
    """The statuses kunit_parser gives a test and a whole output."""

    SUCCESS = "success"
    FAILURE = "failure"
    SKIPPED = "skipped"
    CRASHED = "crashed"
    NO_TESTS = "no tests"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ResultLine:
    """One test's result line, with the diagnostic lines just before it."""

    number: int
    ok: bool
    description: str
    #: What follows the "#" of the result line ("" if none): a directive, then diagnostic data.
    directive: str
    diagnostics: tuple[str, ...]

    @property
    def status(self) -> Status:
        if self.directive.split(" ", 1)[0] == "SKIP":
            return Status.SKIPPED
        return Status.SUCCESS if self.ok else Status.FAILURE


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Ktap:
    """A parsed KTAP v1 output."""

    version: int
    plan: int
    tests: tuple[ResultLine, ...]

    @property
    def status(self) -> Status:
        """The overall status, as kunit_parser decides it."""
        counts = Counter(test.status for test in self.tests[: self.plan])
        counts[Status.CRASHED] += max(0, self.plan - len(self.tests))
        if not counts.total():
            return Status.NO_TESTS
        for status in (Status.CRASHED, Status.FAILURE, Status.SUCCESS):
            if counts[status]:
                return status
        return Status.SKIPPED

    def test(self, description: str) -> ResultLine:
        [found] = [test for test in self.tests if test.description == description]
        return found


def parse_ktap(text: str) -> Ktap:
    """Parse ``text`` strictly; :class:`KtapError` names the first line that breaks the grammar."""
    if not text.endswith("\n"):
        raise KtapError("the output does not end with a newline")
    lines = text[:-1].split("\n")
    version = _VERSION.fullmatch(lines[0])
    if version is None:
        raise KtapError(f"line 1: {lines[0]!r} is not a version line")
    plan = _PLAN.fullmatch(lines[1]) if len(lines) > 1 else None
    if plan is None:
        raise KtapError("line 2: the version line is not followed by a plan")
    tests: list[ResultLine] = []
    diagnostics: list[str] = []
    for number, line in enumerate(lines[2:], start=3):
        result = _RESULT.fullmatch(line)
        if line != line.lstrip():
            raise KtapError(f"line {number}: indented (a subtest); the reports use none")
        if result is not None:
            if int(result["number"]) != len(tests) + 1:
                raise KtapError(
                    f"line {number}: test {result['number']} where {len(tests) + 1} was due"
                )
            tests.append(
                ResultLine(
                    number=int(result["number"]),
                    ok=result["result"] == "ok",
                    description=result["description"] or "",
                    directive=result["directive"] or "",
                    diagnostics=tuple(diagnostics),
                )
            )
            diagnostics = []
        elif _SUBTEST_HEADER.match(line):
            raise KtapError(f"line {number}: a diagnostic that reads as a subtest header")
        elif _DIAGNOSTIC.fullmatch(line):
            diagnostics.append(line)
        else:
            raise KtapError(f"line {number}: {line!r} is not a KTAP v1 line")
    return Ktap(version=int(version["version"]), plan=int(plan["count"]), tests=tuple(tests))


# -- the parser itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("KTAP version 1\n1..2\nok 1 test_1\nok 2 test_2 # rcode=0\n", Status.SUCCESS),
        ("KTAP version 1\n1..2\nok 1 test_1\n# test_2: FAIL\nnot ok 2 test_2\n", Status.FAILURE),
        ("KTAP version 1\n1..1\nnot ok 1 test # TIMEOUT 30 seconds\n", Status.FAILURE),
        ("KTAP version 1\n1..2\nok 1 a # SKIP not here\nnot ok 2 b # SKIP\n", Status.SKIPPED),
        ("KTAP version 1\n1..2\nok 1 a # SKIP not here\nok 2 b\n", Status.SUCCESS),
        ("KTAP version 1\n1..3\nok 1 a\nnot ok 2 b\n", Status.CRASHED),
        ("KTAP version 1\n1..0\n", Status.NO_TESTS),
        ("KTAP version 1\n1..1\nok 1\n#\n", Status.SUCCESS),
    ],
)
def test_the_parser_decides_as_kunit_does(text: str, status: Status) -> None:
    """Skips do not count against a run, failures and missing tests do, nothing is no tests."""
    assert parse_ktap(text).status is status


def test_the_parser_reads_a_result_line_into_its_parts() -> None:
    """Number, description, directive and the diagnostics before it."""
    ktap = parse_ktap(
        "KTAP version 1\n1..2\n# why\n# more\nnot ok 1 INV-5\nok 2 REG-5 # SKIP x y\n"
    )
    first, second = ktap.tests
    assert (first.number, first.ok, first.description, first.directive) == (1, False, "INV-5", "")
    assert first.diagnostics == ("# why", "# more")
    assert (second.description, second.directive, second.status) == (
        "REG-5",
        "SKIP x y",
        Status.SKIPPED,
    )
    assert ktap.test("INV-5") is first


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("KTAP version 1\n1..1\nok 1 a", "does not end with a newline"),
        ("TAP version 14\n1..1\nok 1 a\n", "line 1: 'TAP version 14' is not a version line"),
        ("KTAP version 1\n", "line 2: the version line is not followed by a plan"),
        ("KTAP version 1\nok 1 a\n", "line 2: the version line is not followed by a plan"),
        ("KTAP version 1\n1..2\nok 2 a\n", "line 3: test 2 where 1 was due"),
        ("KTAP version 1\n1..1\n  ok 1 a\n", "line 3: indented (a subtest)"),
        ("KTAP version 1\n1..1\nok 1 a#b\n", "line 3: 'ok 1 a#b' is not a KTAP v1 line"),
        ("KTAP version 1\n1..1\nfine\nok 1 a\n", "line 3: 'fine' is not a KTAP v1 line"),
        ("KTAP version 1\n1..1\n#no space\nok 1 a\n", "line 3: '#no space' is not"),
        ("KTAP version 1\n1..1\n# Subtest: a\nok 1 a\n", "line 3: a diagnostic that reads as"),
    ],
)
def test_the_parser_refuses_what_is_not_ktap(text: str, error: str) -> None:
    """A line outside the grammar is an error naming the line."""
    with pytest.raises(KtapError, match=re.escape(error)):
        parse_ktap(text)


# -- the reports ---------------------------------------------------------------------------------

SHAPES: Final = [("core", shape) for shape in CORE_SHAPES] + [
    ("driver", shape) for shape in DRIVER_SHAPES
]


def _result(side: str, shape: str) -> AnyResult:
    return core_result(shape) if side == "core" else driver_result(shape)


def _ktap(side: str, shape: str) -> Ktap:
    return parse_ktap(render(_result(side, shape), "ktap"))


@pytest.mark.parametrize(("side", "shape"), SHAPES)
def test_every_report_fits_the_grammar_and_its_plan(side: str, shape: str) -> None:
    """Every line parses, the plan counts the tests, and only a conforming run is a SUCCESS."""
    ktap = _ktap(side, shape)
    assert ktap.version == 1
    assert ktap.plan == len(ktap.tests)
    assert ktap.status is (Status.SUCCESS if shape == "conforms" else Status.FAILURE)


@pytest.mark.parametrize("side", ["core", "driver"])
def test_a_conforming_report_is_one_line_per_rule_as_before(side: str) -> None:
    """A conforming run has no harness test and no note: each rule is ok, or skipped with why."""
    result = _result(side, "conforms")
    rows = rule_rows(result)
    expected = [
        "KTAP version 1",
        f"1..{len(rows)}",
        f"# hmm-conformance: {result.handshake.name}, profile seed, seed {result.seed}",
        *(
            f"ok {number} {row.rule.id}" + (f" # SKIP {row.note}" if row.note else "")
            for number, row in enumerate(rows, start=1)
        ),
    ]
    assert render(result, "ktap").splitlines() == expected


@pytest.mark.parametrize(
    ("side", "shape", "diagnostic"),
    [
        ("core", "hang", "# HANG at step 2 (invalidate_end [0x10000, 0x11000)): invalidate_end: "),
        ("core", "crash", "# CRASH at step 1 (non-blockable invalidate_start [0x1"),
        ("core", "crash-run", "# CRASH at step 1 (non-blockable invalidate_start [0x1"),
        ("core", "protocol", "# PROTOCOL at step 1 (register mirror m0): register answered '0'"),
        ("core", "setup-crash", "# CRASH in begin(), before the first step: begin() raised"),
        ("driver", "hang", "# HANG at step 4 (CPU: blockable invalidate_start [0x10000, 0x1"),
        ("driver", "crash", "# CRASH at step 2 (fault f0 runs): run_fault raised"),
        ("driver", "protocol", "# PROTOCOL at step 3 (CPU: blockable invalidate_start [0x1"),
        ("driver", "setup-crash", "# CRASH in begin(), before the first step: begin() raised"),
    ],
)
def test_a_harness_verdict_fails_a_last_harness_test(
    side: str, shape: str, diagnostic: str
) -> None:
    """HANG, CRASH and PROTOCOL name no rule, so a "harness" test fails, saying where and why."""
    ktap = _ktap(side, shape)
    harness = ktap.tests[-1]
    assert (harness.description, harness.ok, harness.number) == ("harness", False, ktap.plan)
    assert harness.diagnostics[-1].startswith(diagnostic)
    # The shrunk steps come with it, since no rule's test shows them.
    assert harness.diagnostics[0].startswith("# world: 4 vmas")
    assert ktap.status is Status.FAILURE


@pytest.mark.parametrize("side", ["core", "driver"])
def test_an_inconclusive_run_fails_the_rules_it_never_reached(side: str) -> None:
    """A rule in force never reached is no skip: it fails, saying so; rules out of force skip."""
    result = _result(side, "inconclusive")
    ktap = _ktap(side, "inconclusive")
    assert result.unreached
    for rule in result.unreached:
        test = ktap.test(rule)
        assert (test.ok, test.status) == (False, Status.FAILURE)
        assert test.diagnostics[-1] == (
            f"# INCONCLUSIVE: {rule} never came up in {cases(result.tally.cases)}: the run proves "
            "nothing of it; raise --examples or --budget, or try another --seed"
        )
    skipped = [row.rule.id for row in rule_rows(result) if row.note]
    assert all(ktap.test(rule).status is Status.SKIPPED for rule in skipped)
    assert all(test.description != "harness" for test in ktap.tests)


@pytest.mark.parametrize(
    ("side", "shape"),
    [
        ("core", "flaky"),
        ("core", "flaky-run"),
        ("core", "flaky-no-case"),
        ("core", "flaky-first-seen"),
        ("core", "flaky-crash-first-seen"),
        ("core", "unreproduced"),
        ("driver", "flaky-run"),
        ("driver", "flaky-first-seen"),
    ],
)
def test_a_flaky_run_fails_the_harness_test(side: str, shape: str) -> None:
    """Flakiness fails the "harness" test with a FLAKY note, and the case as first seen if kept."""
    result = _result(side, shape)
    ktap = _ktap(side, shape)
    harness = ktap.test("harness")
    assert not harness.ok
    note = result.flaky or "the candidate failed a case and passed it on replay"
    # The note may run over several lines, each a diagnostic of its own.
    note = note if note.startswith("FLAKY: ") else f"FLAKY: {note}"
    flaky = [f"# {line}" for line in note.splitlines()]
    start = harness.diagnostics.index(flaky[0])
    assert list(harness.diagnostics[start : start + len(flaky)]) == flaky
    if result.failure is not None and result.failure.verdicts:
        assert harness.diagnostics[-1].startswith("# as first seen, the case broke ")
        shown = [line for test in ktap.tests for line in test.diagnostics]
        assert any("did NOT fail again" in line for line in shown)
    assert ktap.status is Status.FAILURE


def test_a_flaky_run_shows_the_rule_it_broke_when_first_seen() -> None:
    """The rule the case broke before it passed on replay fails, with the steps as first seen."""
    failure = core_result("flaky-first-seen").failure
    assert failure is not None
    step = failure.steps[-1]
    ktap = _ktap("core", "flaky-first-seen")
    broken = ktap.test("INV-5")
    assert not broken.ok
    shown = f"# {step.index + 1:>3}. {step.op.describe()}"
    assert any(line.startswith(shown) for line in broken.diagnostics)
    assert ktap.test("harness").diagnostics == (
        f"# FLAKY: {FLAKY}",
        f"# as first seen, the case broke INV-5 at step {step.index + 1} ({step.op.describe()}); "
        "its replay did not fail",
    )


@pytest.mark.parametrize("side", ["core", "driver"])
def test_a_rule_violation_fails_its_rule_and_adds_no_harness_test(side: str) -> None:
    """A broken rule is its own failing test, with the steps; there is no harness test."""
    ktap = _ktap(side, "violation")
    failed = [test for test in ktap.tests if not test.ok]
    rules = {"core": "INV-5", "driver": "DRV-4"}[side]
    assert rules in {test.description for test in failed}
    assert all(test.description != "harness" for test in ktap.tests)
    assert ktap.status is Status.FAILURE
