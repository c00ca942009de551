"""Reports: the clause matrix, and the same facts as JSON, JUnit XML, KTAP v1 and Markdown.

Every format is built from :func:`rule_rows` (one row per rule the run checks: the core's
groups for a core run, DRV for a driver run) and the run's failure, so they cannot disagree.
A driver run's reports say ``"side": "driver"`` in JSON and show DRV-6's graded answers as
``graded: over-conservative: N``; a core run's reports are what they were before the driver
side existed.

Only a run that conforms reads as green, in every format. Three outcomes break no rule and
must still fail a CI job: a harness verdict (HANG, CRASH or PROTOCOL: a verdict with no rule,
so no rule row fails), a flaky run (a case failed once and passed on replay), and an
inconclusive one (a rule in force never came up, so the run proves nothing of it). The first
two add a "harness" test to JUnit and KTAP that fails; a rule never reached fails its own test
(it is no skip: only rules out of force are skipped). A conforming run has none of these, so
its reports are unchanged by them.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, final
from xml.etree import ElementTree

from ._engine import RunResult
from ._outputs import printable
from ._rules import Level, Profile, Rule, out_of_force
from ._side import Failure, Handshaking, Side
from ._verdicts import Status, Tally, Verdict

#: A run of any side, as the renderers take it.
AnyResult = RunResult[Any, Any, Any]
#: A failure of any side.
AnyFailure = Failure[Any, Any]

__all__ = [
    "REPORT_FORMAT",
    "REPORT_FORMATS",
    "Checked",
    "RuleRow",
    "clause_matrix",
    "describe_failure",
    "headline",
    "placeholder",
    "render",
    "replay_document",
    "rule_rows",
]

REPORT_FORMAT: Final = "hmm-conformance/report"
REPORT_FORMATS: Final = ("json", "junit", "ktap", "md")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RuleRow:
    """One line of the clause matrix."""

    rule: Rule
    #: ok, allowed, graded (a SHOULD rule's latitude), failed, never-reached, skipped or
    #: not-in-profile.
    status: str
    passed: int
    allowed: int
    failed: int
    latitudes: tuple[tuple[str, int], ...]
    note: str = ""

    @property
    def exercised(self) -> int:
        return self.passed + self.allowed + self.failed


class Checked(Protocol):
    """What the clause matrix and a replay file need of a run, random or exhaustive."""

    @property
    def side(self) -> Side[Any, Any, Any, Any]: ...
    @property
    def handshake(self) -> Handshaking: ...
    @property
    def profile(self) -> Profile: ...
    @property
    def tally(self) -> Tally: ...
    @property
    def failure(self) -> AnyFailure | None: ...
    @property
    def flaky(self) -> str | None: ...


def rule_rows(result: Checked) -> list[RuleRow]:
    """The clause matrix of a run: every rule of its side's groups, in catalogue order."""
    failure = result.failure
    strict = result.profile is Profile.STRICT
    declared = {capability.value for capability in result.handshake.capabilities}
    failing = {v.rule for v in failure.verdicts} if failure else set()
    rows = []
    for rule in result.side.rules:
        counts: Mapping[Status, int] = result.tally.counts.get(rule.id, {})
        passed, allowed = counts.get(Status.PASS, 0), counts.get(Status.ALLOWED, 0)
        failed = counts.get(Status.FAIL, 0)
        note = out_of_force(rule, strict=strict, capabilities=declared) or ""
        # A flaky run may keep no failure, but a rule that failed in it did fail.
        if rule.id in failing or (failed and (failure is not None or result.flaky is not None)):
            status = "failed"
        elif note:
            status = "not-in-profile" if rule.level is Level.SEED_DEFECT else "skipped"
        elif allowed:
            status = "graded" if rule.level is Level.SHOULD else "allowed"
        elif passed:
            status = "ok"
        else:
            status = "never-reached"
        latitudes = tuple(sorted(result.tally.latitudes.get(rule.id, {}).items()))
        rows.append(
            RuleRow(
                rule=rule,
                status=status,
                passed=passed,
                allowed=allowed,
                failed=failed,
                latitudes=latitudes,
                note=note,
            )
        )
    return rows


def clause_matrix(rows: Sequence[RuleRow]) -> str:
    """The clause matrix as a plain-text table."""
    lines = [f"{'rule':<7}{'level':<13}{'exercised':>10}{'allowed':>9}{'failed':>8}  verdict"]
    for row in rows:
        verdict = row.status + (f" ({row.note})" if row.note else "")
        if row.status == "graded":
            verdict += ": " + "; ".join(f"{text}: {count}" for text, count in row.latitudes)
        elif row.latitudes:
            verdict += ": " + "; ".join(text for text, _ in row.latitudes[:2])
        lines.append(
            f"{row.rule.id:<7}{row.rule.level.value:<13}{row.exercised:>10}{row.allowed:>9}"
            f"{row.failed:>8}  {verdict}"
        )
    return "\n".join(lines)


def describe_failure(side: Side[Any, Any, Any, Any], failure: AnyFailure) -> str:
    """The failing case as numbered, readable steps, with the rule broken and why."""
    return side.describe_failure(failure)


def _broken_names(failure: AnyFailure) -> str:
    return ", ".join(sorted({v.rule or v.status.name for v in failure.verdicts}))


def _flaky(result: AnyResult) -> str | None:
    """Why the run is flaky, or None: the engine's note, or a failure that did not come back."""
    if result.flaky is not None:
        return result.flaky
    if result.failure is not None and not result.failure.reproduced:
        return f"the {result.side.who} failed a case and passed it on replay"
    return None


def _harness_verdicts(result: AnyResult) -> list[Verdict]:
    """The verdicts of the failing step that name no rule: HANG, CRASH, PROTOCOL."""
    if result.failure is None:
        return []
    return [verdict for verdict in result.failure.verdicts if verdict.rule is None]


def _where(failure: AnyFailure) -> str:
    """Where the failing case failed: its step number and operation, or begin()."""
    if failure.setup_crash is not None:
        return "in begin(), before the first step"
    step = failure.steps[-1]
    return f"at step {step.index + 1} ({step.op.describe()})"


def _harness_lines(result: AnyResult) -> list[str]:
    """A note per problem outside the rules (a harness verdict, flakiness); none if none."""
    failure, flaky = result.failure, _flaky(result)
    lines = []
    if failure is not None:
        where = _where(failure)
        lines = [
            f"{verdict.status.name} {where}: {(verdict.detail.splitlines() or [''])[0]}"
            for verdict in failure.verdicts
            if verdict.rule is None
        ]
    if flaky is not None:
        # The engine's note may name itself already.
        lines.append(flaky if flaky.startswith("FLAKY") else f"FLAKY: {flaky}")
        if failure is not None and failure.verdicts:
            lines.append(
                f"as first seen, the case broke {_broken_names(failure)} {_where(failure)}; "
                "its replay did not fail"
            )
    return lines


def _never_reached(result: AnyResult, rules: Sequence[str]) -> str:
    """Why rules never reached fail: the run proves nothing of them."""
    them = "it" if len(rules) == 1 else "them"
    names = ", ".join(rules)
    if result.failure is not None or _flaky(result) is not None:
        return (
            f"{names} never came up before the run stopped at its failure, after "
            f"{result.cases} cases: the run proves nothing of {them}"
        )
    return (
        f"INCONCLUSIVE: {names} never came up in {result.cases} cases: the run proves "
        f"nothing of {them}; raise --examples or --budget, or try another --seed"
    )


def headline(result: AnyResult) -> str:
    """One line: whether the candidate conforms, and if not, which rules it broke."""
    flaky = _flaky(result)
    if flaky is not None:
        seen = ""
        if result.failure is not None and result.failure.verdicts:
            seen = f"; as first seen, {_broken_names(result.failure)} {_where(result.failure)}"
        return f"NOT CONFORMING: {flaky}{seen}"
    if result.failure is None and result.unreached:
        return (
            f"INCONCLUSIVE: no rule failed, but {', '.join(result.unreached)} never came up in "
            f"{result.cases} cases; raise --examples or --budget, or try another --seed"
        )
    if result.failure is None:
        return (
            f"conforms: no rule failed in {result.cases} cases ({result.tally.steps} steps)"
            + result.side.conforming_note(result.tally)
        )
    rules = _broken_names(result.failure)
    count = len(result.failure.case.ops)
    return (
        f"NOT CONFORMING: {rules}, shrunk to {count} operation{'s' * (count != 1)}{_found(result)}"
    )


def _found(result: AnyResult) -> str:
    """When the first failure came, and what shrinking it cost."""
    if result.first_failure is None:
        return ""
    if result.from_database:
        return (
            f"; a failure an earlier run saved in the example database, tried first (--seed "
            f"does not bring it back: the replay file does), shrunk in {result.shrink_cases} more"
        )
    return (
        f"; first failed at case {result.first_failure} of {result.budget.examples}, shrunk "
        f"in {result.shrink_cases} more"
    )


def _verdict_json(verdict: Verdict) -> dict[str, Any]:
    return {"rule": verdict.rule, "status": verdict.status.value, "detail": verdict.detail}


def _step_json(side: Side[Any, Any, Any, Any], step: Any) -> dict[str, Any]:
    return {
        "index": step.index,
        "op": side.step_json(step),
        "description": step.op.describe(),
        "result": side.result_text(step),
        "verdicts": [_verdict_json(v) for v in step.verdicts if v.status is not Status.PASS],
    }


def _failure_json(side: Side[Any, Any, Any, Any], failure: AnyFailure) -> dict[str, Any]:
    return {
        "rules": sorted({v.rule for v in failure.verdicts if v.rule is not None}),
        "verdicts": [_verdict_json(v) for v in failure.verdicts],
        "reproduced": failure.reproduced,
        "operations": len(failure.case.ops),
        "case": side.case_to_json(failure.case),
        "steps": [_step_json(side, step) for step in failure.steps],
    }


def _outcome(result: AnyResult) -> str:
    """The run's outcome, worst first: flaky, a harness verdict, a violation, inconclusive."""
    if _flaky(result) is not None:
        return "flaky"
    harness = _harness_verdicts(result)
    if harness:
        return harness[0].status.value
    if result.failure is not None:
        return "violation"
    return "inconclusive" if result.unreached else "conforms"


def to_json(result: AnyResult, rows: Sequence[RuleRow]) -> dict[str, Any]:
    """The JSON report (schema: ``conformance/schemas/report.schema.json``)."""
    handshake = result.handshake
    return {
        "format": REPORT_FORMAT,
        "version": 1,
        **result.side.header(),
        "tool": {
            "name": "hmm-conformance",
            "version": importlib.metadata.version("hmm-conformance"),
        },
        "candidate": {
            "name": handshake.name,
            "version": handshake.version,
            "protocol_version": handshake.protocol_version,
            "capabilities": sorted(c.value for c in handshake.capabilities),
        },
        "profile": result.profile.value,
        "budget": {
            "name": result.budget.name,
            "examples": result.budget.examples,
            "steps": result.budget.steps,
        },
        "seed": result.seed,
        "result": _outcome(result),
        "flaky": _flaky(result),
        "unreached": list(result.unreached),
        "totals": {
            "cases": result.cases,
            "first_failure": result.first_failure,
            "from_database": result.from_database,
            "shrink_cases": result.shrink_cases,
            "steps": result.tally.steps,
            "crash": result.tally.harness.get(Status.CRASH, 0),
            "hang": result.tally.harness.get(Status.HANG, 0),
            "protocol": result.tally.harness.get(Status.PROTOCOL, 0),
        },
        "rules": [
            {
                "id": row.rule.id,
                "level": row.rule.level.value,
                "title": row.rule.title,
                "status": row.status,
                "note": row.note,
                "exercised": row.exercised,
                "passed": row.passed,
                "allowed": row.allowed,
                "failed": row.failed,
                "latitudes": dict(row.latitudes),
            }
            for row in rows
        ],
        "failure": (
            _failure_json(result.side, result.failure) if result.failure is not None else None
        ),
    }


def to_junit(result: AnyResult, rows: Sequence[RuleRow]) -> str:
    """JUnit XML: one test case per rule, and a "harness" case for a harness verdict or a
    flaky run; the failure carries the shrunk steps."""
    # The counts are filled in from the elements once they exist, so they cannot disagree;
    # the placeholders keep the attributes in their order.
    suite = ElementTree.Element(
        "testsuite",
        name=f"hmm-conformance[{printable(result.handshake.name)}]",
        tests="",
        failures="",
        skipped="",
        errors="",
    )
    ElementTree.SubElement(
        ElementTree.SubElement(suite, "properties"),
        "property",
        name="seed",
        value=str(result.seed),
    )
    for row in rows:
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname=f"hmm-conformance.{row.rule.group}",
            name=f"{row.rule.id} {row.rule.title}",
        )
        if row.status == "failed":
            details = (
                [v.detail for v in result.failure.verdicts if v.rule == row.rule.id]
                if result.failure is not None
                else []
            )
            failure = ElementTree.SubElement(
                case, "failure", message="; ".join(details) or "failed"
            )
            if result.failure is not None:
                failure.text = result.side.describe_failure(result.failure)
        elif row.status == "never-reached":
            kind = "skipped" if _stopped(result) else "failure"
            ElementTree.SubElement(case, kind, message=_never_reached(result, [row.rule.id]))
        elif row.status in ("skipped", "not-in-profile"):
            ElementTree.SubElement(case, "skipped", message=row.note)
    harness = _harness_lines(result)
    if harness:
        case = ElementTree.SubElement(
            suite, "testcase", classname="hmm-conformance", name="harness"
        )
        # A harness verdict is the run going wrong (JUnit's error); flakiness alone is the
        # candidate failing a case (a failure).
        kind = "error" if _harness_verdicts(result) else "failure"
        element = ElementTree.SubElement(case, kind, message="; ".join(harness))
        element.text = (
            result.side.describe_failure(result.failure)
            if result.failure is not None
            else harness[0]
        )
    suite.set("tests", str(len(suite.findall("testcase"))))
    for count, tag in (("failures", "failure"), ("skipped", "skipped"), ("errors", "error")):
        suite.set(count, str(len(suite.findall(f"testcase/{tag}"))))
    suites = ElementTree.Element("testsuites")
    suites.append(suite)
    _xml_safe(suites)
    ElementTree.indent(suites)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        + ElementTree.tostring(suites, encoding="unicode")
        + "\n"
    )


#: What XML 1.0 does not allow in a document, even escaped: most C0 controls, surrogates, and
#: U+FFFE/U+FFFF. A candidate's text may hold any of them.
_NOT_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(root: ElementTree.Element) -> None:
    """Replace what XML cannot hold, in every attribute and text, so the file always parses."""
    for element in root.iter():
        for key, value in element.attrib.items():
            element.set(key, _NOT_XML.sub("?", value))
        if element.text is not None:
            element.text = _NOT_XML.sub("?", element.text)


def _diagnostics(text: str) -> list[str]:
    # One line each, and what a candidate said (its name, an exception's text) as plain text:
    # nothing it sends can end a diagnostic and forge a test line.
    return [f"# {printable(line, limit=_LINE)}" for line in text.splitlines()]


#: The longest diagnostic or Markdown line kept from a candidate's text.
_LINE: Final = 2000


def _stopped(result: AnyResult) -> bool:
    """The run stopped at a failure (or a flaky case): rules not reached by then are not the
    run's verdict, which is already a failure."""
    return result.failure is not None or _flaky(result) is not None


def to_ktap(result: AnyResult, rows: Sequence[RuleRow]) -> str:
    """KTAP v1, the kernel's test output format: one test per rule, and a last test named
    "harness" (counted in the plan) when the run had a harness verdict or was flaky."""
    handshake = result.handshake
    harness = _harness_lines(result)
    lines = [
        "KTAP version 1",
        f"1..{len(rows) + bool(harness)}",
        f"# hmm-conformance: {printable(handshake.name)}, profile {result.profile.value}, seed "
        f"{result.seed}",
    ]
    broken = {v.rule for v in result.failure.verdicts} if result.failure is not None else set()
    for number, row in enumerate(rows, start=1):
        name = row.rule.id
        if row.status == "failed":
            if result.failure is not None and row.rule.id in broken:
                lines.extend(_diagnostics(result.side.describe_failure(result.failure)))
            else:
                lines.append(f"# {name} failed {row.failed} times while the case was being shrunk")
            lines.append(f"not ok {number} {name}")
        elif row.status == "never-reached" and not _stopped(result):
            lines.append(f"# {_never_reached(result, [name])}")
            lines.append(f"not ok {number} {name}")
        elif row.status == "never-reached":
            lines.append(f"ok {number} {name} # SKIP {_never_reached(result, [name])}")
        elif row.status in ("skipped", "not-in-profile"):
            lines.append(f"ok {number} {name} # SKIP {row.note}")
        else:
            lines.append(f"ok {number} {name}")
    if harness:
        # The steps go here unless the test of a rule the case broke shows them above.
        if result.failure is not None and all(rule is None for rule in broken):
            lines.extend(_diagnostics(result.side.describe_failure(result.failure)))
        # A note may run over several lines (the engine's note on a flaky run quotes
        # Hypothesis); each is a diagnostic line of its own.
        lines.extend(_diagnostics("\n".join(harness)))
        lines.append(f"not ok {len(rows) + 1} harness")
    return "\n".join(lines) + "\n"


def _markdown_counts(result: AnyResult) -> str:
    if result.first_failure is None:
        return ""
    return (
        f" (the first failure at case {result.first_failure}), {result.shrink_cases} run to "
        "shrink it"
    )


def to_markdown(result: AnyResult, rows: Sequence[RuleRow]) -> str:
    """A Markdown summary for a CI job page or a review comment."""
    handshake = result.handshake
    lines = [
        f"# hmm-conformance: {printable(handshake.name)} {printable(handshake.version)}",
        "",
        f"Result: **{_outcome(result)}**; profile `{result.profile.value}`, budget "
        f"`{result.budget.name}`, seed `{result.seed}`, {result.cases} cases generated"
        f"{_markdown_counts(result)}, {result.tally.steps} steps.",
        "",
    ]
    never = [row.rule.id for row in rows if row.status == "never-reached"]
    notes = [*_harness_lines(result), *([_never_reached(result, never)] if never else [])]
    if notes:
        lines += [*("- " + note.replace("\n", "\n  ") for note in notes), ""]
    lines += [
        "| rule | level | exercised | allowed | failed | verdict |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        verdict = row.status + (f" ({row.note})" if row.note else "")
        lines.append(
            f"| {row.rule.id} | {row.rule.level.value} | {row.exercised} | {row.allowed} | "
            f"{row.failed} | {verdict} |"
        )
    if result.failure is not None:
        title = "Counterexample" if _flaky(result) is None else "Counterexample, as first seen"
        lines += ["", f"## {title}", "", "```", result.side.describe_failure(result.failure), "```"]
    return "\n".join(lines) + "\n"


#: What a placeholder report says: the run it was written for did not finish.
UNFINISHED: Final = (
    "the run did not finish (it was interrupted, or ended by the watchdog); this placeholder "
    "was written before it started"
)


def placeholder(kind: str) -> str:
    """The report of format ``kind`` written before a run starts: not green in any reader, so
    a run that never gets to write its real report leaves no earlier report standing."""
    if kind == "json":
        document = {"format": REPORT_FORMAT, "version": 1, "result": "unfinished"}
        return json.dumps({**document, "detail": UNFINISHED}, indent=2) + "\n"
    if kind == "junit":
        suites = ElementTree.Element("testsuites")
        suite = ElementTree.SubElement(
            suites, "testsuite", name="hmm-conformance", tests="1", failures="0", errors="1"
        )
        case = ElementTree.SubElement(suite, "testcase", classname="hmm-conformance", name="run")
        ElementTree.SubElement(case, "error", message=UNFINISHED)
        ElementTree.indent(suites)
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            + ElementTree.tostring(suites, encoding="unicode")
            + "\n"
        )
    if kind == "ktap":
        return f"KTAP version 1\n1..1\n# {UNFINISHED}\nnot ok 1 hmm-conformance\n"
    return f"# hmm-conformance\n\nResult: **unfinished**: {UNFINISHED}.\n"


def render(result: AnyResult, kind: str) -> str:
    """The report of ``result`` in format ``kind`` (one of :data:`REPORT_FORMATS`)."""
    rows = rule_rows(result)
    if kind == "json":
        return json.dumps(to_json(result, rows), indent=2) + "\n"
    if kind == "junit":
        return to_junit(result, rows)
    if kind == "ktap":
        return to_ktap(result, rows)
    if kind == "md":
        return to_markdown(result, rows)
    raise ValueError(f"unknown report format {kind!r}; one of {', '.join(REPORT_FORMATS)}")


def replay_document(result: Checked, **found_by: int) -> dict[str, Any]:
    """The replay file of a failing run: the case, and what it broke, for ``replay``.

    ``found_by`` records how the case was found (``seed=`` for a random run, ``depth=`` for
    an exhaustive one); the seed of a :class:`RunResult` is recorded unless given. A driver
    case carries ``"side": "driver"``, which ``replay`` dispatches on.
    """
    assert result.failure is not None
    if isinstance(result, RunResult):
        found_by.setdefault("seed", result.seed)
    document = result.side.case_to_json(result.failure.case)
    document.update(
        profile=result.profile.value,
        **found_by,
        candidate={"name": result.handshake.name, "version": result.handshake.version},
        failure=_failure_json(result.side, result.failure)["verdicts"],
    )
    return document
