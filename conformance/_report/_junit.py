"""The JUnit XML report: one test case per rule, and a "harness" case when the run went wrong."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final
from xml.etree import ElementTree

from .._outputs import printable
from ._rows import AnyResult, RuleRow
from ._summary import (
    UNFINISHED,
    harness_lines,
    harness_verdicts,
    never_reached,
    stopped_at_failure,
)

__all__ = ["placeholder", "render", "to_junit"]


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
        _rule_case(suite, result, row)
    _harness_case(suite, result)
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


def _rule_case(suite: ElementTree.Element, result: AnyResult, row: RuleRow) -> None:
    """A rule's test case: failed with the shrunk steps, failed or skipped if never reached,
    skipped if out of force, passed otherwise."""
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
        failure = ElementTree.SubElement(case, "failure", message="; ".join(details) or "failed")
        if result.failure is not None:
            failure.text = result.side.describe_failure(result.failure)
    elif row.status == "never-reached":
        kind = "skipped" if stopped_at_failure(result) else "failure"
        ElementTree.SubElement(case, kind, message=never_reached(result, [row.rule.id]))
    elif row.status in ("skipped", "not-in-profile"):
        ElementTree.SubElement(case, "skipped", message=row.note)


def _harness_case(suite: ElementTree.Element, result: AnyResult) -> None:
    """The "harness" test case, when the run had a harness verdict or was flaky."""
    harness = harness_lines(result)
    if not harness:
        return
    case = ElementTree.SubElement(suite, "testcase", classname="hmm-conformance", name="harness")
    # A harness verdict is the run going wrong (JUnit's error); flakiness alone is the
    # candidate failing a case (a failure).
    kind = "error" if harness_verdicts(result) else "failure"
    element = ElementTree.SubElement(case, kind, message="; ".join(harness))
    element.text = (
        result.side.describe_failure(result.failure) if result.failure is not None else harness[0]
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


def render(result: AnyResult, rows: Sequence[RuleRow]) -> str:
    return to_junit(result, rows)


def placeholder() -> str:
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
