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

import itertools
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Final, final

from hmm_ref import DEFAULT_ENCODING, PAGE_SIZE, PTE_NONE, PTE_POISON, Errno, PfnEncoding, Pte

from .._engine import unreached
from .._generation import ENCODINGS, VMAS
from .._side import Failure
from .._verdicts import Tally
from ._adapter import Candidate, Capability, Handshake
from ._executor import Executor
from ._model import Model, Profile
from ._ops import (
    Case,
    CoreOperation,
    InvalidateEnd,
    InvalidateStart,
    RangeDone,
    RegisterMirror,
    Release,
    SetCpuEntry,
    Snapshot,
    UnregisterMirror,
    World,
)
from ._side import CORE, CoreFailure, CoreSide, replay_failure

__all__ = ["SCOPE", "ExploreResult", "Scope", "explore", "state_key"]

_BASE = VMAS[0].start


def _pages(first: int, last: int) -> tuple[int, int]:
    """The span of pages ``first`` to ``last - 1`` of the first vma."""
    return _BASE + first * PAGE_SIZE, _BASE + last * PAGE_SIZE


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """What the exhaustive engine enumerates."""

    world: World
    #: Mirror numbers a sequence may use, with or without ops.
    mirrors: int = 2
    #: Snapshots a sequence may take (refused ones included).
    ranges: int = 2
    #: The spans of snapshots and of invalidations, inside the first vma.
    spans: tuple[tuple[int, int], ...]
    #: Snapshots the rules make fail or leave empty, as (vma, start, end).
    refused: tuple[tuple[int, int, int], ...]
    blockable: tuple[bool, ...] = (True, False)
    #: What each registered mirror may answer a start.
    replies: tuple[int, ...] = (0, -Errno.EAGAIN, -Errno.ENOMEM)
    #: What the CPU may change an entry to, inside a window.
    new_entries: tuple[Pte, ...] = (PTE_NONE, Pte.present(0x1AA, write=True))
    encodings: tuple[PfnEncoding, ...] = (DEFAULT_ENCODING,)

    def describe(self) -> str:
        pages = len({addr for start, end in self.spans for addr in range(start, end, PAGE_SIZE)})
        return (
            f"{_count(self.mirrors, 'mirror')}, {_count(self.ranges, 'snapshot')}, "
            f"{_count(pages, 'page')}, {_count(len(self.spans), 'span')}, "
            f"{_modes(set(self.blockable))}, "
            f"replies in {{{', '.join(_reply_name(r) for r in self.replies)}}}"
        )


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'s' * (number != 1)}"


def _modes(modes: set[bool]) -> str:
    if len(modes) == 2:
        return "both modes"
    return "blockable only" if True in modes else "non-blockable only"


def _reply_name(reply: int) -> str:
    return f"-{Errno(-reply).name}" if reply else "0"


#: The default scope: the random engine's vmas; four pages of the first vma, mapped writable,
#: read-only, poisoned (the walk stops there) and to device memory; spans that meet as the
#: overlap rules care about; snapshots in two encodings (flags at the bottom and at the top).
SCOPE: Final = Scope(
    world=World(
        vmas=VMAS,
        ptes=(
            (_pages(0, 1)[0], Pte.present(0x100, write=True)),
            (_pages(1, 2)[0], Pte.present(0x101)),
            (_pages(2, 3)[0], PTE_POISON),
            (_pages(3, 4)[0], Pte.device_private(0x800, write=True)),
        ),
    ),
    spans=(_pages(0, 1), _pages(1, 2), _pages(0, 2), _pages(0, 4)),
    refused=(
        (0, VMAS[0].end - PAGE_SIZE, VMAS[1].start + PAGE_SIZE),  # runs past its vma
        (1, VMAS[0].end - PAGE_SIZE, VMAS[1].start + PAGE_SIZE),  # starts before its vma
        (2, VMAS[2].start, VMAS[2].end),  # unreadable
        (3, VMAS[3].start, VMAS[3].end),  # special
        (0, _BASE, _BASE),  # empty
        (0, VMAS[0].end, VMAS[0].end),  # empty, at the very end of its vma
    ),
    encodings=ENCODINGS[:2],
)

#: A range number no snapshot ever takes: range_done on it is the misuse RNG-9 is about.
UNKNOWN_RANGE: Final = 1_000_000


def state_key(model: Model) -> Hashable:
    """Everything the rules' state holds, as a hashable value.

    Two sequences with equal keys have the same future as far as the rules can tell: the same
    operations are allowed next, and each is judged against the same expectations.
    """
    windows = sorted(model.windows)
    rank = {window: index for index, window in enumerate(windows)}
    ranges = tuple(
        (
            r.id,
            r.start,
            r.end,
            r.encoding,
            r.registered,
            r.valid,
            r.entries,
            r.unwritten,
            frozenset(rank.get(w, -1) for w in r.windows_at_snapshot),
            r.done,
            r.failed,
            r.at_release,
        )
        for r in sorted(model.ranges.values(), key=lambda r: r.id)
    )
    return (
        model.cpu.entries(),
        tuple(model.mirrors),
        frozenset(model.refused),
        frozenset(model.gone),
        frozenset(model.released_mirrors),
        model.poisoned,
        model.released,
        model.release_fixed,
        ranges,
        tuple(model.windows[w] for w in windows),
    )


def operations(model: Model, scope: Scope) -> Iterator[CoreOperation]:
    """Every operation the scope allows from ``model``'s state, simplest first.

    The caller's side of the protocol is kept the same way as in the random engine: anything
    :meth:`Model.caller_violation` refuses is left out.
    """
    used_mirrors = len(model.known | model.refused)
    used_ranges = len(model.ranges)
    candidates: list[CoreOperation] = []
    if used_mirrors < scope.mirrors:
        candidates.append(RegisterMirror(mirror=used_mirrors))
        candidates.append(RegisterMirror(mirror=used_mirrors, with_ops=False))
    if used_ranges < scope.ranges:
        candidates.extend(
            Snapshot(range=used_ranges, vma=0, start=start, end=end, encoding=encoding)
            for encoding in scope.encodings
            for start, end in scope.spans
        )
    candidates.extend(
        InvalidateStart(
            start=start,
            end=end,
            blockable=blockable,
            replies=tuple((m, r) for m, r in zip(mirrors, replies, strict=True) if r),
        )
        for mirrors in [sorted(model.mirrors)]
        for blockable in scope.blockable
        for start, end in scope.spans
        for replies in itertools.product(scope.replies, repeat=len(mirrors))
    )
    candidates.extend(InvalidateEnd(start=start, end=end) for start, end in model.windows.values())
    candidates.extend(
        SetCpuEntry(addr=addr, pte=pte)
        for addr in model.changeable_pages()
        for pte in scope.new_entries
        if pte != model.cpu.pte(addr)
    )
    candidates.extend(RangeDone(range=range_id) for range_id in sorted(model.ranges))
    candidates.append(RangeDone(range=UNKNOWN_RANGE))
    candidates.extend(UnregisterMirror(mirror=m) for m in sorted(model.known | model.refused))
    if used_ranges < scope.ranges:
        candidates.extend(
            Snapshot(range=used_ranges, vma=vma, start=start, end=end, encoding=DEFAULT_ENCODING)
            for vma, start, end in scope.refused
        )
    if Capability.RELEASE in model.capabilities:
        candidates.append(Release())
    seen: set[CoreOperation] = set()
    for op in candidates:
        if op not in seen and model.caller_violation(op) is None:
            seen.add(op)
            yield op


@final
@dataclass(slots=True, kw_only=True)
class Level:
    """One depth of the search: the new states it found and the transitions it took."""

    depth: int
    states: int
    transitions: int
    seconds: float


@final
@dataclass(slots=True, kw_only=True)
class ExploreResult:
    """What one exhaustive search found."""

    handshake: Handshake
    profile: Profile
    scope: Scope
    #: The depth asked for.
    depth: int
    #: The deepest depth whose every transition was taken.
    completed: int = 0
    levels: list[Level] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    failure: CoreFailure | None = None
    #: Why the search stopped before ``depth`` without a failure (the time limit).
    stopped: str | None = None
    #: Set when a replayed path led somewhere else than the first time: the candidate is not
    #: deterministic, and merging states by the model's view of them is not sound for it.
    flaky: str | None = None
    seconds: float = 0.0
    unreached: tuple[str, ...] = ()

    @property
    def side(self) -> CoreSide:
        """The side explored: exhaustive search runs cores only."""
        return CORE

    @property
    def states(self) -> int:
        """Distinct model states visited, the initial one included."""
        return 1 + sum(level.states for level in self.levels)

    @property
    def transitions(self) -> int:
        return sum(level.transitions for level in self.levels)

    @property
    def conforms(self) -> bool:
        """No sequence of up to ``depth`` operations in the scope breaks a rule."""
        return self.failure is None and self.flaky is None and self.completed == self.depth


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
        return replay_failure(
            self.candidate, self.handshake, Case(world=self.scope.world, ops=ops), self.profile
        )

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


def explore(
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
    """Take every transition from every state up to ``depth`` operations, breadth first.

    Stops at the first failing step, or when ``time_limit`` seconds have passed, whichever
    comes first. With ``merge`` (the default) sequences that leave the model in the same
    state are continued from the first only; without it every sequence is continued, which
    costs far more but assumes nothing about what the candidate keeps that it has not shown.
    """
    began = clock()
    result = ExploreResult(handshake=handshake, profile=profile, scope=scope, depth=depth)
    search = _Search(
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
        CORE.rules, result.tally, profile, {c.value for c in handshake.capabilities}
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
