"""How often the states behind each rule's checks occur: the generators' blind spots, measured.

A bug that only shows in a rare state (three mirrors around an unregistered one, two windows
open over the same span, a range snapshotted before the first mirror) is caught only as often
as generation reaches that state. :func:`feature_rates` replays a run's cases on the reference
and counts, for every rule check, which of the :data:`FEATURES` held in the state the checked
step was taken from (a :class:`Feature`) or showed in the step itself (a :class:`Trigger`: a
fault that restarts past a device entry, which the state before it only makes possible; a
snapshot of a special vma that is unreadable too), so that a rare state shows as a small number
before a bug hides in it.
``tasks.py bench`` prints the table (docs/benchmarks.md), and a test keeps every feature common.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, final

from hmm_ref import DEFAULT_ENCODING, PAGE_SIZE, PteKind

from .._rules import Profile
from .._verdicts import Status
from ._adapter import Candidate
from ._draws import SNAPSHOTTABLE_PAGES, seams
from ._executor import Executor
from ._model import Model, Observation
from ._ops import Case, CoreOperation, FaultSnapshot, Snapshot

__all__ = ["FEATURES", "Feature", "FeatureRates", "Trigger", "feature_names", "feature_rates"]

_EXERCISED: Final = (Status.PASS, Status.ALLOWED, Status.FAIL)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Feature:
    """A state a bug can hide in, by name, with its test on the model before a step and the
    snapshots the case took before any mirror was registered (which the model does not keep)."""

    name: str
    meaning: str
    holds: Callable[[Model, frozenset[int]], bool]


def _repeats(spans: list[tuple[int, int]]) -> bool:
    """Whether a span comes up twice."""
    return len(set(spans)) < len(spans)


def _same_span(m: Model, _: frozenset[int]) -> bool:
    return _repeats(list(m.windows.values()))


def _twin_ranges(m: Model, _: frozenset[int]) -> bool:
    return _repeats([(r.start, r.end) for r in m.registered_ranges() if r.valid and not r.empty])


def _migrating(m: Model, _: frozenset[int]) -> bool:
    return any(m.cpu.pte(addr).kind is PteKind.MIGRATION for addr in SNAPSHOTTABLE_PAGES)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Trigger:
    """A step a bug can hide in, by name, with its test on the step's operation, what the
    replay observed of it, and the model after it: a state alone does not show it."""

    name: str
    meaning: str
    shows: Callable[[CoreOperation, Observation, Model], bool]


def _restart_past_device(op: CoreOperation, seen: Observation, after: Model) -> bool:
    if not isinstance(op, FaultSnapshot):
        return False
    return any(
        after.cpu.pte(addr).kind is PteKind.DEVICE_PRIVATE
        for call in seen.faults
        if not call.answer  # mapped, or waited for: the walk goes on from that page
        for addr in range(op.start, call.addr, PAGE_SIZE)
    )


def _special_unreadable(op: CoreOperation, _: Observation, after: Model) -> bool:
    if not isinstance(op, Snapshot | FaultSnapshot):
        return False
    vma = after.cpu.vmas[op.vma]
    return vma.special and not vma.read


FEATURES: Final[tuple[Feature | Trigger, ...]] = (
    Feature(
        name="mirrors>=3",
        meaning="three or more mirrors registered",
        holds=lambda m, _: len(m.mirrors) >= 3,
    ),
    Feature(
        name="mirror-gone",
        meaning="a mirror unregistered while two or more stay registered",
        holds=lambda m, _: bool(m.gone) and len(m.mirrors) >= 2,
    ),
    Feature(
        name="windows>=2",
        meaning="two or more invalidation windows open (nested)",
        holds=lambda m, _: len(m.windows) >= 2,
    ),
    Feature(name="same-span", meaning="two open windows over the same span", holds=_same_span),
    Feature(
        name="ranges>=2",
        meaning="two or more ranges registered",
        holds=lambda m, _: len(m.registered_ranges()) >= 2,
    ),
    Feature(
        name="twin-ranges",
        meaning="two valid ranges registered over the same pages",
        holds=_twin_ranges,
    ),
    Feature(
        name="early-range",
        meaning="a range registered before the first mirror, still registered with mirrors",
        holds=lambda m, early: (
            bool(m.mirrors) and any(r.id in early for r in m.registered_ranges())
        ),
    ),
    Feature(
        name="migrating",
        meaning="a page the CPU is migrating, which a fault must wait for",
        holds=_migrating,
    ),
    Feature(
        name="device-below-hole",
        meaning="a device-private page just below one a fault must fill, in one vma",
        holds=lambda m, _: bool(seams(m.cpu)),
    ),
    Trigger(
        name="restart-past-device",
        meaning=(
            "a fault that called the handler or waited for a migration above a device-private "
            "page it had walked: it restarts past the device entry it wrote"
        ),
        shows=_restart_past_device,
    ),
    Trigger(
        name="special-unreadable",
        meaning=(
            "a snapshot or fault of a special vma that cannot be read either: which of the two "
            "refusals of RNG-2 (FLT-1) a core tests first shows only there"
        ),
        shows=_special_unreadable,
    ),
    Feature(
        name="other-encoding",
        meaning="a registered range whose encoding is not the default",
        holds=lambda m, _: any(r.encoding != DEFAULT_ENCODING for r in m.registered_ranges()),
    ),
)


@final
@dataclass(slots=True)
class FeatureRates:
    """For each rule, how many checks it made, and how many of them in each feature's state;
    and how many cases reached each feature at all."""

    checks: Counter[str] = field(default_factory=Counter)
    within: dict[str, Counter[str]] = field(default_factory=dict)
    cases: int = 0
    cases_with: Counter[str] = field(default_factory=Counter)

    def rate(self, rule: str, feature: str) -> float:
        """The share of ``rule``'s checks made in ``feature``'s state (0 if it made none)."""
        made = self.checks[rule]
        return self.within.get(rule, Counter())[feature] / made if made else 0.0


def _replay(case: Case, make: Callable[[], Candidate], rates: FeatureRates) -> None:
    candidate = make()
    executor = Executor(candidate, candidate.handshake(), Profile.SEED, case.world)
    if executor.begin() is not None:
        return
    early, reached, model = frozenset[int](), set[str](), executor.model
    for op in case.ops:
        holding = [f.name for f in FEATURES if isinstance(f, Feature) and f.holds(model, early)]
        outcome = executor.step(op)
        holding += [
            t.name
            for t in FEATURES
            if isinstance(t, Trigger) and t.shows(op, outcome.observation, model)
        ]
        reached.update(holding)
        for verdict in outcome.verdicts:
            if verdict.rule is not None and verdict.status in _EXERCISED:
                rates.checks[verdict.rule] += 1
                rates.within.setdefault(verdict.rule, Counter()).update(holding)
        if outcome.failed:
            break
        if isinstance(op, Snapshot) and not model.known:
            early |= {op.range}
    rates.cases += 1
    rates.cases_with.update(reached)


def feature_rates(cases: Iterable[Case], make: Callable[[], Candidate]) -> FeatureRates:
    """Replay ``cases`` on the candidate ``make`` makes (the reference, as a rule) and count
    the features behind every rule check."""
    rates = FeatureRates()
    for case in cases:
        _replay(case, make, rates)
    return rates


def feature_names() -> Sequence[str]:
    """The features' names, in table order."""
    return [feature.name for feature in FEATURES]
