"""The driver side's exhaustive engine: every sequence of driver-side operations in a small
scope, breadth first, through the same executor and oracle as the random engine.

``hmm-conformance explore --side driver --depth K`` runs :func:`conformance._search.search`
over a :class:`DriverScope`: two pages of the first vma (one writable, one read-only), every
span over them, both modes of the notifier start, a CPU change to none or to a new page inside
a window, up to two device faults started, stepped one step or run to their end, and the
process's exit. Sequences that leave the model in the same state (the CPU entries, the open
windows and what faults froze in them, each fault's next step, locks and licence, the device
page table) are continued once, so the first failing sequence found is a shortest
counterexample within the scope, for a driver that keeps nothing it has not shown; otherwise
``--every-sequence`` continues each one.

What the scope leaves out is not checked here: one encoding, the two pages, faults the rules
make fail. The random engine covers the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, TypeAlias, final

from hmm_ref import DEFAULT_ENCODING, PAGE_SIZE, PTE_NONE, PfnEncoding, Pte

from .._case import World
from .._exploring import Explored, Level, ScopeOption
from .._generation import VMAS
from .._rules import Profile
from .._search import search
from .._verdicts import Tally
from ._adapter import DriverCandidate, DriverHandshake
from ._executor import DriverExecutor, DriverStepOutcome
from ._model import DriverModel
from ._ops import (
    CpuSetEntry,
    DriverCase,
    DriverOp,
    Exit,
    NotifierEnd,
    NotifierStart,
    RunFault,
    StartFault,
    StepFault,
)

if TYPE_CHECKING:
    from ._side import DriverSide

__all__ = [
    "DRIVER_SCOPE",
    "DriverExploreResult",
    "DriverExplorer",
    "DriverScope",
    "driver_state_key",
    "explore_driver",
]

#: What a search of the driver side found.
DriverExploreResult: TypeAlias = Explored[DriverHandshake, DriverCase, DriverStepOutcome]

_P0, _P1, _P2 = VMAS[0].start, VMAS[0].start + PAGE_SIZE, VMAS[0].start + 2 * PAGE_SIZE


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class DriverScope:
    """What the driver side's exhaustive engine enumerates."""

    world: World = field(
        default_factory=lambda: World(
            vmas=VMAS,
            ptes=((_P0, Pte.present(0x100, write=True)), (_P1, Pte.present(0x101))),
        )
    )
    encoding: PfnEncoding = DEFAULT_ENCODING
    #: Faults a sequence may start.
    faults: int = 2
    #: The spans of faults and of invalidations.
    spans: tuple[tuple[int, int], ...] = ((_P0, _P1), (_P1, _P2), (_P0, _P2))
    #: What the CPU may change an entry to, inside a window.
    new_entries: tuple[Pte, ...] = (PTE_NONE, Pte.present(0x1AA, write=True))

    def describe(self) -> str:
        return (
            f"{len(self.spans)} spans over {len(self.world.ptes)} pages, both modes, "
            f"{self.faults} faults, {len(self.new_entries)} CPU changes, the exit"
        )


DRIVER_SCOPE: Final = DriverScope()


def driver_state_key(model: DriverModel) -> Hashable:
    """Everything the driver-side rules read of the model, as a hashable key."""
    windows = sorted(
        (span, tuple(sorted(model.frozen.get(window, ()))))
        for window, span in model.windows.items()
    )
    faults = tuple(
        (fault.id, fault.start, fault.end, fault.view, fault.held, fault.licence)
        for fault in sorted(model.faults.values(), key=lambda fault: fault.id)
    )
    return (model.cpu.entries(), tuple(windows), faults, model.table, model.exited)


def operations(model: DriverModel, scope: DriverScope) -> Iterator[DriverOp]:
    """Every operation the scope allows from ``model``'s state, simplest first; the caller's
    side of the protocol is kept by the model, as in the random engine."""
    candidates: list[DriverOp] = []
    for fault in model.faults_in_progress():
        candidates += [RunFault(fault=fault), StepFault(fault=fault)]
    if len(model.faults) < scope.faults:
        candidates += [
            StartFault(fault=len(model.faults), start=start, end=end) for start, end in scope.spans
        ]
    for start, end in scope.spans:
        candidates += [NotifierStart(start=start, end=end, blockable=b) for b in (False, True)]
    candidates += [
        NotifierEnd(start=start, end=end) for start, end in sorted(model.windows.values())
    ]
    candidates += [
        CpuSetEntry(addr=addr, pte=pte)
        for addr in model.changeable_pages()
        for pte in scope.new_entries
        if pte != model.cpu.pte(addr)
    ]
    candidates.append(Exit())
    seen: set[DriverOp] = set()
    for op in candidates:
        if op not in seen and model.caller_violation(op) is None:
            seen.add(op)
            yield op


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class _DriverSpace:
    """The driver scope as the search walks it (:class:`conformance._search.Space`)."""

    candidate: DriverCandidate
    handshake: DriverHandshake
    scope: DriverScope

    def executor(self, tally: Tally) -> DriverExecutor:
        world, encoding = self.scope.world, self.scope.encoding
        return DriverExecutor(self.candidate, self.handshake, world, encoding, tally)

    def case(self, ops: tuple[DriverOp, ...]) -> DriverCase:
        return DriverCase(world=self.scope.world, encoding=self.scope.encoding, ops=ops)

    def key(self, executor: DriverExecutor) -> Hashable:
        return driver_state_key(executor.model)

    def operations(self, executor: DriverExecutor) -> Iterator[DriverOp]:
        return operations(executor.model, self.scope)


def explore_driver(
    side: DriverSide,
    candidate: DriverCandidate,
    handshake: DriverHandshake,
    *,
    depth: int,
    profile: Profile = Profile.SEED,
    scope: DriverScope = DRIVER_SCOPE,
    time_limit: float | None = None,
    on_level: Callable[[Level], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    merge: bool = True,
) -> DriverExploreResult:
    """Every driver-side sequence of up to ``depth`` operations in ``scope``, breadth first,
    until the first failing step."""
    space = _DriverSpace(candidate=candidate, handshake=handshake, scope=scope)
    return search(
        side,
        candidate,
        handshake,
        space,
        depth=depth,
        profile=profile,
        time_limit=time_limit,
        on_level=on_level,
        clock=clock,
        merge=merge,
    )


@final
class DriverExplorer:
    """The driver side's exhaustive engine, as ``hmm-conformance explore --side driver``
    reaches it."""

    options: Final = (
        ScopeOption(
            name="faults",
            default=DRIVER_SCOPE.faults,
            help=f"device faults a sequence may start (default {DRIVER_SCOPE.faults})",
        ),
    )

    def __init__(self, side: DriverSide) -> None:
        self._side = side

    @staticmethod
    def scope(bounds: Mapping[str, int]) -> DriverScope:
        return replace(DRIVER_SCOPE, faults=bounds.get("faults", DRIVER_SCOPE.faults))

    def describe(self, bounds: Mapping[str, int]) -> str:
        return self.scope(bounds).describe()

    def explore(
        self,
        candidate: DriverCandidate,
        handshake: DriverHandshake,
        *,
        depth: int,
        profile: Profile,
        bounds: Mapping[str, int],
        time_limit: float | None,
        on_level: Callable[[Level], None] | None,
        merge: bool,
    ) -> DriverExploreResult:
        return explore_driver(
            self._side,
            candidate,
            handshake,
            depth=depth,
            profile=profile,
            scope=self.scope(bounds),
            time_limit=time_limit,
            on_level=on_level,
            merge=merge,
        )
