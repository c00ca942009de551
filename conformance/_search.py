"""The exhaustive engine's search, once for every side: every sequence up to a depth, breadth
first, through the side's own executor and oracle.

A side's explorer gives a :class:`Space`: how to begin a fresh case, which operations its scope
allows from a state, the key two sequences that reach the same model state share, the
candidate's own state there, and the case a sequence of operations makes. :func:`search` does
the rest. Sequences that leave both the model and the candidate in the same state are explored
once, from the first (shortest) one that reached it, so the search visits states, not
sequences, and the first failing sequence it meets is a shortest counterexample within the
scope; ``merge=False`` continues every sequence instead.

Why both: a candidate can keep what the model does not (a flag a failed start left set, the
order in which a snapshot and a register came), so two sequences the model cannot tell apart
may have different futures on the candidate. Merging on the model alone would continue only
the first and lose a shortest counterexample through the second. The candidate's own state
(:mod:`conformance._fingerprint`) is what tells them apart: two sequences that leave the model
and a deterministic candidate in the same states have the same futures, step for step, so
continuing one of them loses nothing. A candidate whose own state is not a function of its
path (it keeps something from one case to the next) shows it on a replay; the search then
merges on the model's state alone from there on, and says so (``Explored.merged_on_model``).

Candidates cannot be copied, so each transition replays its state's path on a fresh ``begin()``
and then takes the new step: a transition from depth d costs d + 1 steps. A step that would
wait for a lock a holder that can run first keeps (:class:`WouldWaitError`) is not a
transition: the holder's own steps are in the scope.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Protocol, TypeVar, final

from . import _engine as engine
from ._engine import unreached
from ._exploring import Explored, Level
from ._rules import Profile
from ._side import CaseT, Failure, HandshakeT, Side, SideExecutor, StepT, WouldWaitError
from ._verdicts import Tally

__all__ = ["ScopedExplorer", "Space", "search"]

OpT = TypeVar("OpT")
ExecutorT = TypeVar("ExecutorT", bound=SideExecutor[Any, Any])
CaseT_co = TypeVar("CaseT_co", covariant=True)
CandidateT = TypeVar("CandidateT")


class _Scope(Protocol):
    def describe(self) -> str: ...


ScopeT = TypeVar("ScopeT", bound=_Scope)


class Space(Protocol[OpT, ExecutorT, CaseT_co]):
    """What a side's scope gives the search: its worlds (the world a case starts from is part
    of what is explored: each is a root of the search), and for each, its executors and cases.
    """

    @property
    def worlds(self) -> int:
        """How many worlds the scope explores, numbered from 0."""
        ...

    def executor(self, world: int, tally: Tally) -> ExecutorT:
        """A fresh executor for one sequence in ``world`` (not begun), counting into
        ``tally``."""
        ...

    def case(self, world: int, ops: tuple[OpT, ...]) -> CaseT_co:
        """The case that ``ops`` make in ``world``."""
        ...

    def key(self, executor: ExecutorT) -> Hashable:
        """The model state the executor has reached, as a key to merge on."""
        ...

    def own_state(self, executor: ExecutorT) -> Hashable:
        """The candidate's own state in the executor's case, as a key to merge on too."""
        ...

    def operations(self, world: int, executor: ExecutorT) -> Iterable[OpT]:
        """The operations the scope allows from the executor's state in ``world``, in a fixed
        order."""
        ...


@final
@dataclass(frozen=True, slots=True)
class _State(Generic[OpT]):
    """A state of the search: its world, the first path that reached it there, and the steps
    out of it."""

    world: int
    path: tuple[OpT, ...]
    #: The world and the model's state.
    key: Hashable
    #: The candidate's own state (None when the search does not merge on it).
    own: Hashable
    steps: tuple[OpT, ...]


@final
@dataclass(frozen=True, slots=True)
class _Unsteady(Generic[CaseT, StepT]):
    """The candidate did something else on a replay than the first time."""

    reason: str
    #: What failed on the replay, if something did.
    failure: Failure[CaseT, StepT] | None = None


#: A step that would wait for a holder that can run first: not a transition.
_WAITS: Final = object()

_NOT_SHORTEST = "the candidate is not deterministic, so no search can promise a shortest case"


@final
@dataclass(slots=True, kw_only=True)
class _Search(Generic[OpT, ExecutorT, HandshakeT, CaseT, StepT]):
    side: Side[Any, HandshakeT, CaseT, StepT]
    candidate: Any
    handshake: HandshakeT
    profile: Profile
    space: Space[OpT, ExecutorT, CaseT]
    merge: bool
    deadline: float | None
    clock: Callable[[], float]
    seen: set[Hashable] = field(default_factory=set)
    scratch: Tally = field(default_factory=Tally)
    #: Why the search merges on the model's state alone, once it does.
    merged_on_model: str | None = None

    def fresh(self, world: int) -> tuple[ExecutorT, Failure[CaseT, StepT] | None]:
        executor = self.space.executor(world, self.scratch)
        crash = executor.begin()
        if crash is None:
            return executor, None
        return executor, Failure(case=self.space.case(world, ()), steps=(), setup_crash=crash)

    def failure(self, world: int, ops: tuple[OpT, ...]) -> Failure[CaseT, StepT]:
        case = self.space.case(world, ops)
        return engine.confirm(self.side, self.candidate, self.handshake, case, self.profile)

    def key(self, world: int, executor: ExecutorT) -> Hashable:
        """The state's key: its world's number, and the model state there (a model need not
        say which world it is in; the encoding, for one, is not part of the driver's)."""
        return world, self.space.key(executor)

    def own(self, executor: ExecutorT) -> Hashable:
        """The candidate's own state, if the search merges on it."""
        if not self.merge or self.merged_on_model is not None:
            return None
        return self.space.own_state(executor)

    def state(
        self, world: int, path: tuple[OpT, ...], executor: ExecutorT, key: Hashable, own: Hashable
    ) -> _State[OpT]:
        steps = tuple(self.space.operations(world, executor))
        return _State(world, path, key, own, steps)

    def roots(self, result: Explored[HandshakeT, CaseT, StepT]) -> list[_State[OpT]]:
        """The initial state of every world, or nothing if the candidate failed to set one up
        (then ``result.failure`` says how)."""
        roots: list[_State[OpT]] = []
        for world in range(self.space.worlds):
            executor, result.failure = self.fresh(world)
            if result.failure is not None:
                return []
            key, own = self.key(world, executor), self.own(executor)
            roots.append(self.state(world, (), executor, key, own))
            self.seen.add((key, own))
        return roots

    def level(
        self, frontier: list[_State[OpT]], result: Explored[HandshakeT, CaseT, StepT]
    ) -> tuple[list[_State[OpT]], int, bool]:
        """Every transition out of ``frontier``: the new states, how many were taken, and
        whether the search stops here: at a failure, a replay that went differently, or the
        deadline (which ``result`` then records).
        """
        found: list[_State[OpT]] = []
        transitions = 0
        for state in frontier:
            for index, op in enumerate(state.steps):
                if self.deadline is not None and self.clock() > self.deadline:
                    result.stopped = "the time limit ran out"
                    return found, transitions, True
                outcome = self.take(result.tally, state, op, recheck=index == 0)
                if outcome is _WAITS:
                    continue
                transitions += 1
                if isinstance(outcome, Failure):
                    result.failure = outcome
                    return found, transitions, True
                if isinstance(outcome, _Unsteady):
                    result.flaky, result.failure = outcome.reason, outcome.failure
                    return found, transitions, True
                executor: ExecutorT = outcome  # type: ignore[assignment]
                key, own = self.key(state.world, executor), self.own(executor)
                if (key, own) not in self.seen or not self.merge:
                    self.seen.add((key, own))
                    found.append(self.state(state.world, (*state.path, op), executor, key, own))
        return found, transitions, False

    def replay(self, state: _State[OpT], recheck: bool) -> ExecutorT | _Unsteady[CaseT, StepT]:
        """A fresh case with ``state``'s path taken again, or what went differently; with
        ``recheck``, the candidate's own state is compared with the first time's too (once per
        state: a candidate that keeps something from case to case shows it on any replay)."""
        executor, crash = self.fresh(state.world)
        if crash is not None:
            return _Unsteady(
                f"begin() failed after {self.scratch.cases - 1} cases that began; {_NOT_SHORTEST}",
                crash,
            )
        count = f"{len(state.path)} operation{'s' * (len(state.path) != 1)}"
        for taken in state.path:
            try:
                failed = executor.step(taken).failed
            except WouldWaitError:
                return _Unsteady(
                    f"a step of the same {count} was taken before and would wait on replay; "
                    f"{_NOT_SHORTEST}"
                )
            if failed:
                return _Unsteady(
                    f"the same {count} passed before and failed on replay; {_NOT_SHORTEST}",
                    self.failure(state.world, state.path),
                )
        if self.key(state.world, executor) != state.key:
            return _Unsteady(f"the same {count} led to another state on replay; {_NOT_SHORTEST}")
        if recheck and state.own is not None and self.own(executor) != state.own:
            self.merged_on_model = (
                f"the candidate's own state after the same {count} was another on replay (it "
                "keeps something from one case to the next), so from there on sequences were "
                "merged on the model's state alone; --every-sequence is sure to find a "
                "shortest case"
            )
        return executor

    def take(self, tally: Tally, state: _State[OpT], op: OpT, recheck: bool) -> object:
        """Replay ``state``'s path on a fresh case, then take ``op``: the executor after it,
        the failure, what the candidate did differently on the replay, or ``_WAITS``."""
        executor = self.replay(state, recheck)
        if isinstance(executor, _Unsteady):
            return executor
        try:
            outcome = executor.step(op)
        except WouldWaitError:
            return _WAITS
        tally.add(outcome.verdicts)
        if outcome.failed:
            return self.failure(state.world, (*state.path, op))
        return executor


def search(
    side: Side[Any, HandshakeT, CaseT, StepT],
    candidate: object,
    handshake: HandshakeT,
    space: Space[OpT, ExecutorT, CaseT],
    *,
    depth: int,
    profile: Profile,
    time_limit: float | None = None,
    on_level: Callable[[Level], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    merge: bool = True,
) -> Explored[HandshakeT, CaseT, StepT]:
    """Take every transition from every state of ``space`` up to ``depth`` operations,
    breadth first, until the first failing step or ``time_limit`` seconds."""
    began = clock()
    result: Explored[HandshakeT, CaseT, StepT] = Explored(
        side=side, handshake=handshake, profile=profile, depth=depth
    )
    run: _Search[OpT, ExecutorT, HandshakeT, CaseT, StepT] = _Search(
        side=side,
        candidate=candidate,
        handshake=handshake,
        profile=profile,
        space=space,
        merge=merge,
        deadline=None if time_limit is None else began + time_limit,
        clock=clock,
    )
    result.roots = space.worlds
    frontier = run.roots(result)
    for level in range(1, depth + 1 if result.failure is None else 1):
        level_began = clock()
        frontier, transitions, stop = run.level(frontier, result)
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
    result.merged_on_model = run.merged_on_model
    result.seconds = clock() - began
    result.unreached = unreached(
        side.rules, result.tally, profile, {c.value for c in handshake.capabilities}
    )
    return result


class ScopedExplorer(Generic[CandidateT, HandshakeT, CaseT, StepT, ScopeT]):
    """What every side's explorer (:class:`conformance._exploring.Explorer`) does the same way:
    turn the command's bounds into its scope, describe it, and search it. A side says how in
    :meth:`scope` and :meth:`search`."""

    def scope(self, bounds: Mapping[str, int]) -> ScopeT:
        """The side's scope with the bounds given."""
        raise NotImplementedError

    def search(
        self,
        candidate: CandidateT,
        handshake: HandshakeT,
        *,
        depth: int,
        profile: Profile,
        scope: ScopeT,
        time_limit: float | None,
        on_level: Callable[[Level], None] | None,
        merge: bool,
    ) -> Explored[HandshakeT, CaseT, StepT]:
        """The side's search of ``scope``."""
        raise NotImplementedError

    def describe(self, bounds: Mapping[str, int]) -> str:
        return self.scope(bounds).describe()

    def explore(
        self,
        candidate: CandidateT,
        handshake: HandshakeT,
        *,
        depth: int,
        profile: Profile,
        bounds: Mapping[str, int],
        time_limit: float | None,
        on_level: Callable[[Level], None] | None,
        merge: bool,
    ) -> Explored[HandshakeT, CaseT, StepT]:
        return self.search(
            candidate,
            handshake,
            depth=depth,
            profile=profile,
            scope=self.scope(bounds),
            time_limit=time_limit,
            on_level=on_level,
            merge=merge,
        )
