"""The verdicts, the vocabulary every side of the suite shares: a rule's outcome on one step,
the harness's own outcomes (a candidate that crashed, hung or broke the protocol), and the
counts of a run.

Both sides' oracles, executors and engines, and the reports, speak in these; they sit below all
of them so that no side's modules import another side's (docs/spec.md §1.4 says what each
status means).
"""

from __future__ import annotations

import enum
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Generic, TypeVar, final

from ._errors import CandidateCrashed, CandidateFault, CandidateHung, CandidateProtocolError

__all__ = [
    "Judged",
    "Outcome",
    "Status",
    "StepEndedError",
    "Tally",
    "Verdict",
    "crash_verdict",
    "fault_verdict",
]

OpT = TypeVar("OpT")
ObservationT = TypeVar("ObservationT")


@final
class Status(enum.Enum):
    """The outcome of one rule in one step (or of the step itself, for harness verdicts)."""

    PASS = "pass"
    #: A MAY rule, and the candidate took a latitude other than the seed's.
    ALLOWED = "allowed"
    FAIL = "fail"
    #: The candidate raised or died.
    CRASH = "crash"
    #: The candidate did not answer in its budget (or said it never would).
    HANG = "hang"
    #: The candidate's answer did not fit the protocol.
    PROTOCOL = "protocol"
    #: The rule needs a capability the candidate did not declare.
    SKIP = "skip"

    @property
    def failed(self) -> bool:
        return self in (Status.FAIL, Status.CRASH, Status.HANG, Status.PROTOCOL)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """One rule's verdict on one step; ``rule`` is None for CRASH, HANG and PROTOCOL."""

    rule: str | None
    status: Status
    detail: str = ""
    #: For ALLOWED: which latitude the candidate took.
    latitude: str | None = None

    def describe(self) -> str:
        name = self.rule or self.status.name
        text = f"{name}: {self.detail}" if self.detail else name
        if self.rule is not None and self.status is not Status.PASS:
            text = f"{self.status.name} {text}"
        return text


class Judged:
    """What every side's step outcome has: its verdicts, and whether any of them failed (a base
    for the outcomes' dataclasses, which give ``verdicts`` as a field)."""

    __slots__ = ()
    verdicts: tuple[Verdict, ...]

    @property
    def failed(self) -> bool:
        return any(verdict.status.failed for verdict in self.verdicts)

    def failures(self) -> list[Verdict]:
        return [verdict for verdict in self.verdicts if verdict.status.failed]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome(Judged, Generic[OpT, ObservationT]):
    """One step of a side's case: the operation, what was seen, and every verdict on it."""

    index: int
    op: OpT
    observation: ObservationT
    verdicts: tuple[Verdict, ...]


@final
@dataclass(slots=True)
class Tally:
    """Verdict counts per rule across a run, and the latitudes taken (the clause matrix)."""

    counts: dict[str, Counter[Status]] = field(default_factory=dict)
    latitudes: dict[str, Counter[str]] = field(default_factory=dict)
    harness: Counter[Status] = field(default_factory=Counter)
    steps: int = 0
    cases: int = 0

    def add(self, verdicts: tuple[Verdict, ...]) -> None:
        self.steps += 1
        for verdict in verdicts:
            if verdict.rule is None:
                self.harness[verdict.status] += 1
                continue
            self.counts.setdefault(verdict.rule, Counter())[verdict.status] += 1
            if verdict.latitude is not None:
                self.latitudes.setdefault(verdict.rule, Counter())[verdict.latitude] += 1


_FAULTS: dict[type[CandidateFault], Status] = {
    CandidateHung: Status.HANG,
    CandidateCrashed: Status.CRASH,
    CandidateProtocolError: Status.PROTOCOL,
}


def fault_verdict(fault: CandidateFault) -> Verdict:
    """The verdict for an adapter's fault; a fault of no known kind is a crash."""
    status = next(
        (status for kind, status in _FAULTS.items() if isinstance(fault, kind)), Status.CRASH
    )
    return Verdict(rule=None, status=status, detail=str(fault) or type(fault).__name__)


class StepEndedError(Exception):
    """Inside an executor: the candidate failed in a way that ends the step with a harness
    verdict (CRASH, HANG, PROTOCOL); the step's outcome is that verdict."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.detail)
        self.verdict = verdict


def crash_verdict(what: str) -> Verdict:
    """A CRASH verdict for the exception being handled: ``what`` raised, and its traceback."""
    return Verdict(rule=None, status=Status.CRASH, detail=f"{what}\n{traceback.format_exc()}")
