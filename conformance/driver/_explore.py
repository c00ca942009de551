"""The driver side's exhaustive engine: every sequence of driver-side operations in a small
scope, breadth first, through the same executor and oracle as the random engine.

``hmm-conformance explore --side driver --depth K`` runs :func:`conformance._search.search`
over a :class:`DriverScope`. The world a case starts from is part of what is explored: each of
:data:`DRIVER_WORLDS` is a root of the search (two pages, one writable and one read-only; the
same in an encoding laid out unlike the default; a page and a poisoned page; three pages). In
each, the operations are a notifier start of each of three spans in both modes and the end of
each open window, a CPU change of a page inside a window to none or to a new page, up to two
device faults started over a span and stepped one step or run to their end, and the process's
exit. Sequences that leave the model (the CPU entries, the open windows and what faults froze
in them, each fault's next step, locks and licence, the device page table) and the driver's own
state (:mod:`conformance._fingerprint`) the same in the same world are continued once, so the
first failing sequence found is a shortest counterexample within the scope, even for a driver
that keeps what it has not shown; ``--every-sequence`` continues each one.

What the scope leaves out is not checked here: more pages and vmas, faults the rules make fail.
The random engine covers the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, TypeAlias, final

from hmm_ref import DEFAULT_ENCODING, PAGE_SIZE, PTE_NONE, PTE_POISON, PfnEncoding, Pte

from .._case import World
from .._exploring import Explored, Level, ScopeOption
from .._fingerprint import own_state
from .._generation import VMAS
from .._rules import Profile
from .._search import ScopedExplorer, search
from .._verdicts import Tally
from ._adapter import DriverCandidate, DriverHandshake
from ._executor import DriverExecutor, DriverStepOutcome
from ._machine import DRIVER_ENCODINGS
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
    "DRIVER_WORLDS",
    "DriverExploreResult",
    "DriverExplorer",
    "DriverScope",
    "DriverWorld",
    "driver_state_key",
    "search_driver",
]

#: What a search of the driver side found.
DriverExploreResult: TypeAlias = Explored[DriverHandshake, DriverCase, DriverStepOutcome]

_PAGES = tuple(VMAS[0].start + n * PAGE_SIZE for n in range(4))
_P0, _P1, _P2, _P3 = _PAGES


def _spans(pages: int) -> tuple[tuple[int, int], ...]:
    """One page, the next, and all of the first ``pages`` pages."""
    return ((_P0, _P1), (_P1, _P2), (_P0, _PAGES[pages] if pages < 4 else _P3 + PAGE_SIZE))


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class DriverWorld:
    """One world the driver scope explores: the CPU's pages, the driver's encoding, and the
    spans of faults and invalidations over them."""

    world: World
    encoding: PfnEncoding
    spans: tuple[tuple[int, int], ...]
    #: What it is there for, in a few words.
    why: str


_RW, _RO = Pte.present(0x100, write=True), Pte.present(0x101)

#: The worlds, simplest first. The first is where most bugs show; each other one adds what
#: some bug needs: an encoding laid out unlike the default, a poisoned page (an ERROR entry in
#: a snapshot), and three pages mapped at once (a batch for the callback to tear down).
DRIVER_WORLDS: Final = (
    DriverWorld(
        world=World(vmas=VMAS, ptes=((_P0, _RW), (_P1, _RO))),
        encoding=DEFAULT_ENCODING,
        spans=_spans(2),
        why="a writable and a read-only page",
    ),
    DriverWorld(
        world=World(vmas=VMAS, ptes=((_P0, _RW), (_P1, _RO))),
        encoding=DRIVER_ENCODINGS[-1],
        spans=_spans(2),
        why="the same, in an encoding laid out unlike the default",
    ),
    DriverWorld(
        world=World(vmas=VMAS, ptes=((_P0, _RW), (_P1, PTE_POISON))),
        encoding=DEFAULT_ENCODING,
        spans=_spans(2),
        why="a page and a poisoned page",
    ),
    DriverWorld(
        world=World(vmas=VMAS, ptes=((_P0, _RW), (_P1, _RO), (_P2, Pte.present(0x102)))),
        encoding=DEFAULT_ENCODING,
        spans=_spans(3),
        why="three pages",
    ),
)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class DriverScope:
    """What the driver side's exhaustive engine enumerates."""

    worlds: tuple[DriverWorld, ...] = DRIVER_WORLDS
    #: Faults a sequence may start.
    faults: int = 2
    #: What the CPU may change an entry to, inside a window.
    new_entries: tuple[Pte, ...] = (PTE_NONE, Pte.present(0x1AA, write=True))

    def describe(self) -> str:
        return (
            f"{len(self.worlds)} worlds of 2 or 3 pages and 3 spans, both modes, "
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


def operations(model: DriverModel, scope: DriverScope, world: int = 0) -> Iterator[DriverOp]:
    """Every operation the scope allows from ``model``'s state in ``world``, simplest first;
    the caller's side of the protocol is kept by the model, as in the random engine."""
    spans = scope.worlds[world].spans
    candidates: list[DriverOp] = []
    for fault in model.faults_in_progress():
        candidates += [RunFault(fault=fault), StepFault(fault=fault)]
    if len(model.faults) < scope.faults:
        candidates += [
            StartFault(fault=len(model.faults), start=start, end=end) for start, end in spans
        ]
    for start, end in spans:
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

    @property
    def worlds(self) -> int:
        return len(self.scope.worlds)

    def executor(self, world: int, tally: Tally) -> DriverExecutor:
        where = self.scope.worlds[world]
        return DriverExecutor(self.candidate, self.handshake, where.world, where.encoding, tally)

    def case(self, world: int, ops: tuple[DriverOp, ...]) -> DriverCase:
        where = self.scope.worlds[world]
        return DriverCase(world=where.world, encoding=where.encoding, ops=ops)

    def key(self, executor: DriverExecutor) -> Hashable:
        return driver_state_key(executor.model)

    def own_state(self, executor: DriverExecutor) -> Hashable:
        return own_state(executor.candidate, executor.handed)

    def operations(self, world: int, executor: DriverExecutor) -> Iterator[DriverOp]:
        return operations(executor.model, self.scope, world)


def search_driver(
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
class DriverExplorer(
    ScopedExplorer[DriverCandidate, DriverHandshake, DriverCase, DriverStepOutcome, DriverScope]
):
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

    def scope(self, bounds: Mapping[str, int]) -> DriverScope:
        return replace(DRIVER_SCOPE, faults=bounds.get("faults", DRIVER_SCOPE.faults))

    def space(
        self, candidate: DriverCandidate, handshake: DriverHandshake, profile: Profile
    ) -> _DriverSpace:
        return _DriverSpace(candidate=candidate, handshake=handshake, scope=DRIVER_SCOPE)

    def search(
        self,
        candidate: DriverCandidate,
        handshake: DriverHandshake,
        *,
        depth: int,
        profile: Profile,
        scope: DriverScope,
        time_limit: float | None,
        on_level: Callable[[Level], None] | None,
        merge: bool,
    ) -> DriverExploreResult:
        return search_driver(
            self._side,
            candidate,
            handshake,
            depth=depth,
            profile=profile,
            scope=scope,
            time_limit=time_limit,
            on_level=on_level,
            merge=merge,
        )
