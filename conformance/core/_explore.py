"""The exhaustive engine: every operation sequence up to a depth, breadth first.

``hmm-conformance explore --depth K`` enumerates the operations a small :class:`Scope` allows
(a few mirrors and snapshots, a handful of pages and spans, both modes, a few replies) and runs
every sequence of up to K of them through the same executor and oracle as the random engine.
Sequences that leave the model in the same state are explored once, from the first (shortest)
one that reached it, so the search visits states, not sequences, and the first failing sequence
it meets is a shortest counterexample within the scope.

Candidates cannot be copied, so each transition replays its state's path on a fresh ``begin()``
and then takes the new step: a transition from depth d costs d + 1 steps.

Merging assumes that two sequences that leave the model in the same state leave the candidate
in the same state too. The model holds everything the candidate has shown (the entries and
flags of every range, which mirrors it was told of), so the assumption fails only for a
candidate that keeps something it has not shown yet, such as a flag left set by a failed start
that changes what the next start does. For such a candidate the first failure found is still a
real counterexample, but a shorter one may have been merged away; ``merge=False``
(``--every-sequence``) continues every sequence instead, at a far higher cost, and the random
engine, which never merges, is a check on it too.

The scope is small on purpose, and what it leaves out is not checked here: one encoding,
snapshots of the first vma only, the replies 0, -EAGAIN and -ENOMEM. The random engine covers
the rest; "no counterexample" from this engine means none within the scope.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, TypeAlias, final

from .._exploring import Explored, Level, ScopeOption
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

    #: The core's scope explores one world.
    worlds: Final = 1

    def executor(self, world: int, tally: Tally) -> Executor:
        return Executor(self.candidate, self.handshake, self.profile, self.scope.world, tally)

    def case(self, world: int, ops: tuple[CoreOperation, ...]) -> Case:
        return Case(world=self.scope.world, ops=ops)

    def key(self, executor: Executor) -> Hashable:
        return state_key(executor.model)

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
