"""The exhaustive engine's part of a side: what a search found, and the hook a side offers.

A side with an exhaustive engine (``hmm-conformance explore --side NAME``) gives an
:class:`Explorer` as its ``explorer``: the scope options it enumerates over, and the search
itself, breadth first, judging every step with the side's own executor and oracle, which
returns an :class:`Explored`. A side without one has ``explorer = None``, and the command says
so. The core's engine is ``conformance/core/_explore.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, final

from ._rules import Profile
from ._side import CaseT, Failure, HandshakeT, Side, StepT
from ._verdicts import Tally

if TYPE_CHECKING:
    from ._search import Space

__all__ = ["Explored", "Explorer", "Level", "ScopeOption"]

CandidateT_contra = TypeVar("CandidateT_contra", contravariant=True)


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
class Explored(Generic[HandshakeT, CaseT, StepT]):
    """What one exhaustive search found."""

    side: Side[Any, HandshakeT, CaseT, StepT]
    handshake: HandshakeT
    profile: Profile
    #: The depth asked for.
    depth: int
    #: The deepest depth whose every transition was taken.
    completed: int = 0
    levels: list[Level] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    failure: Failure[CaseT, StepT] | None = None
    #: Why the search stopped before ``depth`` without a failure (the time limit).
    stopped: str | None = None
    #: Set when a replayed path led somewhere else than the first time: the candidate is not
    #: deterministic, and merging states by the model's view of them is not sound for it.
    flaky: str | None = None
    seconds: float = 0.0
    unreached: tuple[str, ...] = ()
    #: The initial states: one per world the scope explores.
    roots: int = 1
    #: Set when the search stopped merging on the candidate's own state (it was not the same
    #: on a replay of the same path) and merged on the model's alone: why.
    merged_on_model: str | None = None

    @property
    def states(self) -> int:
        """Distinct states visited (of the model and the candidate), the initial ones
        included."""
        return self.roots + sum(level.states for level in self.levels)

    @property
    def transitions(self) -> int:
        return sum(level.transitions for level in self.levels)

    @property
    def conforms(self) -> bool:
        """No sequence of up to ``depth`` operations in the scope breaks a rule."""
        return self.failure is None and self.flaky is None and self.completed == self.depth


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ScopeOption:
    """One bound of an explorer's scope, as ``explore --NAME N`` sets it."""

    name: str
    default: int
    help: str


class Explorer(Protocol[CandidateT_contra, HandshakeT, CaseT, StepT]):
    """A side's exhaustive engine."""

    #: The bounds of the scope a command may set, besides the depth.
    @property
    def options(self) -> tuple[ScopeOption, ...]: ...

    def describe(self, bounds: Mapping[str, int]) -> str:
        """The scope with these bounds, in a few words ("2 mirrors, 2 snapshots, ...")."""
        ...

    def explore(
        self,
        candidate: CandidateT_contra,
        handshake: HandshakeT,
        *,
        depth: int,
        profile: Profile,
        bounds: Mapping[str, int],
        time_limit: float | None,
        on_level: Callable[[Level], None] | None,
        merge: bool,
    ) -> Explored[HandshakeT, CaseT, StepT]:
        """Every sequence of up to ``depth`` operations in the scope, breadth first, until the
        first failing step; ``merge`` continues one sequence per state of the model and the
        candidate."""
        ...

    def space(
        self, candidate: CandidateT_contra, handshake: HandshakeT, profile: Profile
    ) -> Space[Any, Any, CaseT]:
        """The default scope, as a search of it on ``candidate`` walks it (what a run aims
        with at the rules its cases never reached: ``conformance._aiming``)."""
        ...
