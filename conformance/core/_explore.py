"""The exhaustive engine: every operation sequence up to a depth, breadth first.

``hmm-conformance explore --depth K`` enumerates the operations a small :class:`Scope` allows
(a few mirrors and snapshots, a handful of pages and spans, both modes, a few replies) and runs
every sequence of up to K of them through the same executor and oracle as the random engine.
The world a case starts from is part of what is explored: each of the scope's worlds is a root
of the search, simplest first. Sequences that leave both the model and the candidate in the
same state are explored once, from the first (shortest) one that reached it, so the search
visits states, not sequences, and the first failing sequence it meets is a shortest
counterexample within the scope.

Candidates cannot be copied, so each transition replays its state's path on a fresh ``begin()``
and then takes the new step: a transition from depth d costs d + 1 steps.

The candidate's state is part of the key because the model holds only what the candidate has
shown: a candidate can keep what it has not shown yet (a flag left set by a failed start, the
order in which a snapshot and a register came), and merging on the model alone would continue
only the first of two sequences it tells apart. A candidate in process is walked for its state
(:mod:`conformance._fingerprint`); one that says what its state is (``search_state()``) is
taken at its word, and one over the wire, whose state is in another process, is merged on the
model alone, as is a candidate that keeps something from case to case (the result says so).
``merge=False`` (``--every-sequence``) continues every sequence instead, at a far higher cost:
the reference the merged search is measured against.

The scope is small on purpose, and what it leaves out is not checked here: two worlds of four
pages, snapshots of the first vma only, the replies 0, -EAGAIN and -ENOMEM. The random engine
covers the rest; "no counterexample" from this engine means none within the scope.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, TypeAlias, final

from .._exploring import Explored, Level, ScopeOption
from .._fingerprint import own_state
from .._search import ScopedExplorer
from .._search import search as search_space
from .._verdicts import Tally
from ._adapter import Candidate, Handshake
from ._executor import Executor, StepOutcome
from ._model import Profile
from ._ops import Case, CoreOperation
from ._scope import SCOPE, Scope, operations, state_key

if TYPE_CHECKING:
    from ._side import CoreSide

__all__ = ["SCOPE", "CoreExplorer", "CoreSpace", "ExploreResult", "Scope", "search", "state_key"]


#: What a search of the core found.
ExploreResult: TypeAlias = Explored[Handshake, Case, StepOutcome]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class CoreSpace:
    """The core's scope as the search walks it (:class:`conformance._search.Space`)."""

    candidate: Candidate
    handshake: Handshake
    profile: Profile
    scope: Scope

    @property
    def worlds(self) -> int:
        return len(self.scope.worlds)

    def executor(self, world: int, tally: Tally) -> Executor:
        where = self.scope.worlds[world]
        return Executor(self.candidate, self.handshake, self.profile, where, tally)

    def case(self, world: int, ops: tuple[CoreOperation, ...]) -> Case:
        return Case(world=self.scope.worlds[world], ops=ops)

    def key(self, executor: Executor) -> Hashable:
        return state_key(executor.model)

    def own_state(self, executor: Executor) -> Hashable:
        return own_state(executor.candidate, executor.handed)

    def operations(self, world: int, executor: Executor) -> Iterator[CoreOperation]:
        return operations(executor.model, self.scope)


def search(
    side: CoreSide,
    candidate: Candidate,
    handshake: Handshake,
    *,
    depth: int,
    profile: Profile = Profile.SEED,
    scope: Scope = SCOPE,
    time_limit: float | None = None,
    on_level: Callable[[Level], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    merge: bool = True,
) -> ExploreResult:
    """Take every transition from every state up to ``depth`` operations, breadth first
    (``conformance.explore`` documents the arguments)."""
    space = CoreSpace(candidate=candidate, handshake=handshake, profile=profile, scope=scope)
    return search_space(
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
class CoreExplorer(ScopedExplorer[Candidate, Handshake, Case, StepOutcome, Scope]):
    """The core's exhaustive engine, as ``hmm-conformance explore`` reaches it."""

    options: Final = (
        ScopeOption(
            name="mirrors",
            default=SCOPE.mirrors,
            help=f"mirror numbers a sequence may use (default {SCOPE.mirrors})",
        ),
        ScopeOption(
            name="snapshots",
            default=SCOPE.ranges,
            help=f"snapshots a sequence may take (default {SCOPE.ranges})",
        ),
    )

    def __init__(self, side: CoreSide) -> None:
        self._side = side

    def scope(self, bounds: Mapping[str, int]) -> Scope:
        """:data:`SCOPE` with the bounds given."""
        return replace(
            SCOPE,
            mirrors=bounds.get("mirrors", SCOPE.mirrors),
            ranges=bounds.get("snapshots", SCOPE.ranges),
        )

    def space(self, candidate: Candidate, handshake: Handshake, profile: Profile) -> CoreSpace:
        return CoreSpace(candidate=candidate, handshake=handshake, profile=profile, scope=SCOPE)

    def search(
        self,
        candidate: Candidate,
        handshake: Handshake,
        *,
        depth: int,
        profile: Profile,
        scope: Scope,
        time_limit: float | None,
        on_level: Callable[[Level], None] | None,
        merge: bool,
    ) -> ExploreResult:
        return search(
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
