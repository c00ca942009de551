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
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, TypeAlias, final

from .. import _engine as engine
from .._engine import unreached
from .._exploring import Explored, Level, ScopeOption
from .._side import Failure
from .._verdicts import Tally
from ._adapter import Candidate, Handshake
from ._executor import CoreFailure, Executor, StepOutcome
from ._model import Profile
from ._ops import (
    Case,
    CoreOperation,
)
from ._scope import SCOPE, Scope, operations, state_key

if TYPE_CHECKING:
    from ._side import CoreSide

__all__ = ["SCOPE", "CoreExplorer", "ExploreResult", "Scope", "search", "state_key"]


#: What a search of the core found.
ExploreResult: TypeAlias = Explored[Handshake, Case, StepOutcome]


@final
@dataclass(frozen=True, slots=True)
class _State:
    """A state of the search: the first path that reached it, and the steps out of it."""

    path: tuple[CoreOperation, ...]
    key: Hashable
    steps: tuple[CoreOperation, ...]


@final
@dataclass(slots=True, kw_only=True)
class _Search:
    side: CoreSide
    candidate: Candidate
    handshake: Handshake
    profile: Profile
    scope: Scope
    merge: bool
    deadline: float | None
    clock: Callable[[], float]
    seen: set[Hashable] = field(default_factory=set)
    scratch: Tally = field(default_factory=Tally)

    def fresh(self) -> tuple[Executor, CoreFailure | None]:
        executor = Executor(
            self.candidate, self.handshake, self.profile, self.scope.world, self.scratch
        )
        crash = executor.begin()
        if crash is None:
            return executor, None
        return executor, Failure(
            case=Case(world=self.scope.world, ops=()), steps=(), setup_crash=crash
        )

    def failure(self, ops: tuple[CoreOperation, ...]) -> CoreFailure:
        case = Case(world=self.scope.world, ops=ops)
        return engine.confirm(self.side, self.candidate, self.handshake, case, self.profile)

    def level(
        self, frontier: list[_State], result: ExploreResult
    ) -> tuple[list[_State], int, bool]:
        """Every transition out of ``frontier``: the new states, how many were taken, and
        whether the search stops here: at a failure, a replay that went differently, or the
        deadline (which ``result`` then records).
        """
        found: list[_State] = []
        transitions = 0
        for state in frontier:
            for op in state.steps:
                if self.deadline is not None and self.clock() > self.deadline:
                    result.stopped = "the time limit ran out"
                    return found, transitions, True
                transitions += 1
                outcome = _take(self, result.tally, state, op)
                if isinstance(outcome, Failure):
                    result.failure = outcome
                    return found, transitions, True
                if isinstance(outcome, _Unsteady):
                    result.flaky, result.failure = outcome.reason, outcome.failure
                    return found, transitions, True
                key = state_key(outcome.model)
                if key not in self.seen or not self.merge:
                    self.seen.add(key)
                    steps = tuple(operations(outcome.model, self.scope))
                    found.append(_State((*state.path, op), key, steps))
        return found, transitions, False


def _first_frontier(search: _Search, result: ExploreResult) -> list[_State]:
    """The initial state, or nothing if the candidate failed to set the world up (then
    ``result.failure`` says how)."""
    executor, result.failure = search.fresh()
    if result.failure is not None:
        return []
    root = state_key(executor.model)
    search.seen.add(root)
    return [_State(path=(), key=root, steps=tuple(operations(executor.model, search.scope)))]


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
    began = clock()
    result = ExploreResult(side=side, handshake=handshake, profile=profile, depth=depth)
    search = _Search(
        side=side,
        candidate=candidate,
        handshake=handshake,
        profile=profile,
        scope=scope,
        merge=merge,
        deadline=None if time_limit is None else began + time_limit,
        clock=clock,
    )
    frontier = _first_frontier(search, result)
    for level in range(1, depth + 1 if result.failure is None else 1):
        level_began = clock()
        frontier, transitions, stop = search.level(frontier, result)
        if transitions:  # a limit that ran out as the level began leaves no row
            result.levels.append(
                Level(
                    depth=level,
                    states=len(frontier),
                    transitions=transitions,
                    seconds=clock() - level_began,
                )
            )
            if on_level is not None:
                on_level(result.levels[-1])
        if result.stopped is not None:
            result.stopped = f"the time limit of {time_limit:g} s ran out at depth {level}"
        if stop:
            break
        result.completed = level
    result.tally.cases = result.transitions
    result.seconds = clock() - began
    result.unreached = unreached(
        side.rules, result.tally, profile, {c.value for c in handshake.capabilities}
    )
    return result


@final
@dataclass(frozen=True, slots=True)
class _Unsteady:
    """The candidate did something else on a replay than the first time."""

    reason: str
    #: What failed on the replay, if something did.
    failure: CoreFailure | None = None


_NOT_SHORTEST = "the candidate is not deterministic, so no search can promise a shortest case"


def _take(
    search: _Search, tally: Tally, state: _State, op: CoreOperation
) -> Executor | CoreFailure | _Unsteady:
    """Replay ``state``'s path on a fresh case, then take ``op``: the executor after it, the
    failure, or what the candidate did differently on the replay."""
    executor, crash = search.fresh()
    if crash is not None:
        return _Unsteady(
            f"begin() failed after {search.scratch.cases - 1} cases that began; {_NOT_SHORTEST}",
            crash,
        )
    count = f"{len(state.path)} operation{'s' * (len(state.path) != 1)}"
    for taken in state.path:
        if executor.step(taken).failed:
            return _Unsteady(
                f"the same {count} passed before and failed on replay; {_NOT_SHORTEST}",
                search.failure(state.path),
            )
    if state_key(executor.model) != state.key:
        return _Unsteady(f"the same {count} led to another state on replay; {_NOT_SHORTEST}")
    outcome = executor.step(op)
    tally.add(outcome.verdicts)
    if outcome.failed:
        return search.failure((*state.path, op))
    return executor


@final
class CoreExplorer:
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

    @staticmethod
    def scope(bounds: Mapping[str, int]) -> Scope:
        """:data:`SCOPE` with the bounds given."""
        return replace(
            SCOPE,
            mirrors=bounds.get("mirrors", SCOPE.mirrors),
            ranges=bounds.get("snapshots", SCOPE.ranges),
        )

    def describe(self, bounds: Mapping[str, int]) -> str:
        return self.scope(bounds).describe()

    def explore(
        self,
        candidate: Candidate,
        handshake: Handshake,
        *,
        depth: int,
        profile: Profile,
        bounds: Mapping[str, int],
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
            scope=self.scope(bounds),
            time_limit=time_limit,
            on_level=on_level,
            merge=merge,
        )
