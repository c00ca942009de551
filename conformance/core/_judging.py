"""What the core's checks share: how a verdict is written, and how a step's observation reads.

The checks themselves are in ``_checks_mirrors`` (REG, INV, END) and ``_checks_ranges`` (RNG,
REL); :mod:`conformance.oracle` runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Final

from hmm_ref import Errno, HmmPfnFlag, describe_result

from .._verdicts import Status, Verdict
from ._adapter import RangeView
from ._model import (
    CallRecord,
    Model,
    Observation,
    RangeState,
    exact_overlap,
    expected_entries,
)
from ._ops import (
    InvalidateEnd,
    InvalidateStart,
    Operation,
)

__all__ = [
    "EAGAIN",
    "SEED_RELEASE_PATH",
    "Check",
    "allowed",
    "bad_entries",
    "calls_to",
    "fail",
    "invalidated_ranges",
    "names",
    "ok",
    "result_of",
    "stale_entry",
]

EAGAIN: Final = -Errno.EAGAIN


Check = Callable[[Model, Operation, Observation], "Verdict | None"]


def ok(rule: str, detail: str = "") -> Verdict:
    return Verdict(rule=rule, status=Status.PASS, detail=detail)


def fail(rule: str, detail: str) -> Verdict:
    return Verdict(rule=rule, status=Status.FAIL, detail=detail)


def allowed(rule: str, latitude: str) -> Verdict:
    return Verdict(rule=rule, status=Status.ALLOWED, detail=latitude, latitude=latitude)


def names(mirrors: Iterable[int]) -> str:
    return ", ".join(f"m{m}" for m in mirrors) or "none"


def result_of(obs: Observation) -> str:
    if obs.rejected is not None:
        return "a refusal"
    if obs.would_hang is not None:
        return "no return"
    if isinstance(obs.result, bool) or obs.result is None:
        return repr(obs.result)
    return describe_result(obs.result)


def bad_entries(rng: RangeState, view: RangeView, start: int, end: int) -> list[str]:
    """Overlap entries that still carry VALID, and entries outside it that changed."""
    problems: list[str] = []
    valid_bit = rng.encoding.flag(HmmPfnFlag.VALID)
    for index, entry in enumerate(view.entries):
        addr = rng.page(index)
        if start <= addr < end:
            if entry & valid_bit:
                problems.append(f"entry {index} ({addr:#x}) = {entry:#x} still has VALID")
        elif index < len(rng.entries) and entry != rng.entries[index]:
            problems.append(f"entry {index} ({addr:#x}) outside the update changed")
    if len(view.entries) != len(rng.entries):
        problems.append(f"{len(view.entries)} entries where the range has {len(rng.entries)}")
    return problems


def stale_entry(m: Model, rng: RangeState, entries: Sequence[int]) -> tuple[int, int, int] | None:
    """The first entry that is not the encoding of the CPU entry now: (index, got, wanted).

    Entries the seed's walk leaves unwritten (after a poisoned page) are not compared.
    """
    expected, unwritten = expected_entries(m.cpu, rng)
    for index, (got, want) in enumerate(zip(entries, expected, strict=False)):
        if index not in unwritten | rng.unwritten | rng.faulted and got != want:
            return index, got, want
    return None


def calls_to(obs: Observation, mirrors: set[int]) -> list[CallRecord]:
    return [call for call in obs.calls if call.mirror in mirrors]


SEED_RELEASE_PATH: Final = (
    "a range registered at release is not reached after it: the seed's release path (REL-3), "
    "harmless since the range is invalid"
)


def invalidated_ranges(
    m: Model, op: InvalidateStart | InvalidateEnd, obs: Observation, rule: str
) -> Verdict | None:
    checked = attributed = False
    for rng in m.bound_ranges():
        if rng.empty or not exact_overlap(op.start, op.end, rng.start, rng.end):
            continue
        view = obs.range(rng.id)
        if view is None:
            continue
        checked = True
        if view.valid:
            problem = f"r{rng.id} overlaps [{op.start:#x}, {op.end:#x}) but is still valid"
        else:
            problems = bad_entries(rng, view, op.start, op.end)
            problem = f"r{rng.id}: {problems[0]}" if problems else ""
        if problem and m.seed_release_path(rng, view):
            attributed = True  # a seed defect is scored once, under its own rule
        elif problem:
            return fail(rule, problem)
    if attributed:
        return allowed(rule, SEED_RELEASE_PATH)
    return ok(rule) if checked else None
