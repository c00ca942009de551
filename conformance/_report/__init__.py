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

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Final

from . import _json, _junit, _ktap, _markdown
from ._json import REPORT_FORMAT, replay_document
from ._rows import (
    AnyFailure,
    AnyResult,
    Checked,
    RuleRow,
    clause_matrix,
    describe_failure,
    rule_rows,
)
from ._summary import headline

__all__ = [
    "FORMATS",
    "REPORT_FORMAT",
    "REPORT_FORMATS",
    "AnyFailure",
    "AnyResult",
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

#: Every report format, by the name ``--report`` takes: a module with ``render(result, rows)``
#: and ``placeholder()``. A new format is a module of this package and a row here.
FORMATS: Final[dict[str, ModuleType]] = {
    "json": _json,
    "junit": _junit,
    "ktap": _ktap,
    "md": _markdown,
}
REPORT_FORMATS: Final = tuple(FORMATS)


def render(result: AnyResult, kind: str) -> str:
    """The report of ``result`` in format ``kind`` (one of :data:`REPORT_FORMATS`)."""
    if kind not in FORMATS:
        raise ValueError(f"unknown report format {kind!r}; one of {', '.join(REPORT_FORMATS)}")
    renderer: Callable[[AnyResult, Sequence[RuleRow]], str] = FORMATS[kind].render
    return renderer(result, rule_rows(result))


def placeholder(kind: str) -> str:
    """The report of format ``kind`` written before a run starts: not green in any reader, so
    a run that never gets to write its real report leaves no earlier report standing."""
    made: Callable[[], str] = FORMATS[kind].placeholder
    return made()
