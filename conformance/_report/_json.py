"""The JSON report (schema: ``conformance/schemas/report.schema.json``) and the replay file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from .._engine import RunResult
from .._side import Side
from .._verdicts import Status, Verdict
from .._version import package_version
from ._rows import AnyFailure, AnyResult, Checked, RuleRow
from ._summary import UNFINISHED, flakiness, outcome_of

__all__ = ["REPORT_FORMAT", "failure_json", "placeholder", "render", "replay_document", "to_json"]


REPORT_FORMAT: Final = "hmm-conformance/report"


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


def failure_json(side: Side[Any, Any, Any, Any], failure: AnyFailure) -> dict[str, Any]:
    return {
        "rules": sorted({v.rule for v in failure.verdicts if v.rule is not None}),
        "verdicts": [_verdict_json(v) for v in failure.verdicts],
        "reproduced": failure.reproduced,
        "operations": len(failure.case.ops),
        "case": side.case_to_json(failure.case),
        "steps": [_step_json(side, step) for step in failure.steps],
    }


def to_json(result: AnyResult, rows: Sequence[RuleRow]) -> dict[str, Any]:
    """The JSON report (schema: ``conformance/schemas/report.schema.json``)."""
    handshake = result.handshake
    return {
        "format": REPORT_FORMAT,
        "version": 1,
        **result.side.header(),
        "tool": {
            "name": "hmm-conformance",
            "version": package_version(),
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
            "shrinks": result.budget.shrinks,
        },
        "seed": result.seed,
        "result": outcome_of(result),
        "flaky": flakiness(result),
        "unreached": list(result.unreached),
        "totals": {
            "cases": result.cases,
            "first_failure": result.first_failure,
            "from_database": result.from_database,
            "shrink_cases": result.shrink_cases,
            "aimed": list(result.aimed),
            "aimed_cases": result.aimed_cases,
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
            failure_json(result.side, result.failure) if result.failure is not None else None
        ),
    }


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
        failure=failure_json(result.side, result.failure)["verdicts"],
    )
    return document


def render(result: AnyResult, rows: Sequence[RuleRow]) -> str:
    return json.dumps(to_json(result, rows), indent=2) + "\n"


def placeholder() -> str:
    document = {"format": REPORT_FORMAT, "version": 1, "result": "unfinished"}
    return json.dumps({**document, "detail": UNFINISHED}, indent=2) + "\n"
