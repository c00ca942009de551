"""A protocol side, as the engine, the reports, the command line and the plugin see it.

The suite checks more than one side of the protocol: an HMM core (the ``core`` side) and a
mirror driver (the ``driver`` side). Each side has its own operations, model, oracle, state
machine and adapter protocol; what they have in common is what this module states once:

- :class:`Side`, the small bundle through which a side plugs in. The engine
  (:mod:`conformance._engine`) runs, replays and minimises cases of any side through it, and
  the reports describe any side's failure through it;
- :class:`Failure`, a failing case and its steps, for every side;
- :class:`SideExecutor`, what the engine asks of a side's executor to replay a case;
- :class:`WouldWaitError`, a step that cannot be taken now (it would wait for a lock).

A side is one object satisfying :class:`Side`; :mod:`conformance._sides` holds the registry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, final

from hypothesis.stateful import RuleBasedStateMachine

from ._connect import Connectable
from ._counting import CaseCount, Recorder
from ._known_bad import Catalogue
from ._rules import Profile, Rule
from ._verdicts import Outcome, Tally, Verdict

if TYPE_CHECKING:
    from ._exploring import Explorer

__all__ = [
    "Failure",
    "Handshaking",
    "Side",
    "SideExecutor",
    "StepKeeping",
    "WouldWaitError",
]


class WouldWaitError(Exception):
    """The step would wait for a lock another step holds; nothing was done."""


class _Described(Protocol):
    """An operation, as the engine and the reports handle one of any side."""

    def describe(self) -> str: ...


OpT_co = TypeVar("OpT_co", bound=_Described, covariant=True)


class _Case(Protocol[OpT_co]):
    """A case of any side: at least its operations."""

    @property
    def ops(self) -> tuple[OpT_co, ...]: ...


class _Step(Protocol[OpT_co]):
    """One step's outcome, of any side."""

    @property
    def index(self) -> int: ...
    @property
    def op(self) -> OpT_co: ...
    @property
    def failed(self) -> bool: ...
    def failures(self) -> list[Verdict]: ...


CaseT = TypeVar("CaseT", bound=_Case[Any])
StepT = TypeVar("StepT", bound=_Step[Any])
StepT_co = TypeVar("StepT_co", bound=_Step[Any], covariant=True)


class _Candidate(Protocol):
    """What the engine calls on any side's candidate itself; the rest goes through the side."""

    def handshake(self) -> object: ...
    def close(self) -> None: ...


class _Valued(Protocol):
    @property
    def value(self) -> str: ...


class Handshaking(Protocol):
    """What the engine and the reports read of any side's handshake."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def protocol_version(self) -> int: ...
    @property
    def capabilities(self) -> frozenset[_Valued]: ...


HandshakeT = TypeVar("HandshakeT", bound=Handshaking)
CandidateT = TypeVar("CandidateT", bound=_Candidate)
CandidateT_contra = TypeVar("CandidateT_contra", bound=_Candidate, contravariant=True)
OpT_contra = TypeVar("OpT_contra", contravariant=True)
OpT = TypeVar("OpT")
ObservationT = TypeVar("ObservationT")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Failure(Generic[CaseT, StepT]):
    """A failing case and the outcome of each of its steps: shrunk and replayed, or (for a
    failure that did not fail again, or an interrupted run) as the state machine saw it."""

    case: CaseT
    steps: tuple[StepT, ...]
    #: A crash in ``begin()``, before any step.
    setup_crash: Verdict | None = None
    #: False if the replay did not fail again: the candidate is not deterministic.
    reproduced: bool = True

    @property
    def verdicts(self) -> list[Verdict]:
        """The failing verdicts of the failing step (or the setup crash)."""
        if self.setup_crash is not None:
            return [self.setup_crash]
        return self.steps[-1].failures() if self.steps else []


class SideExecutor(Protocol[OpT_contra, StepT_co]):
    """What the engine asks of a side's executor, which runs one case on one candidate."""

    def begin(self) -> Verdict | None:
        """Set the case's world up; a crash verdict if the candidate failed at it."""
        ...

    def caller_violation(self, op: OpT_contra) -> str | None:
        """Why ``op`` breaks the caller's side of the protocol now, or None."""
        ...

    def step(self, op: OpT_contra) -> StepT_co:
        """Apply ``op`` and judge it (:class:`WouldWaitError` if it cannot be taken now)."""
        ...

    @property
    def steps(self) -> Sequence[StepT_co]:
        """Every step taken so far."""
        ...


class StepKeeping(Generic[OpT, ObservationT]):
    """The base of every side's executor: the steps judged so far, the run's tally, and how a
    judged step is kept (:meth:`keep`)."""

    steps: list[Outcome[OpT, ObservationT]]
    tally: Tally

    def advance(self, op: OpT, observation: ObservationT) -> None:
        """Take a step that did not fail into the side's model."""
        raise NotImplementedError

    def keep(
        self, op: OpT, observation: ObservationT, verdicts: tuple[Verdict, ...]
    ) -> Outcome[OpT, ObservationT]:
        """Keep a judged step: number it, count its verdicts, and advance the model past it
        unless it failed."""
        outcome = Outcome(index=len(self.steps), op=op, observation=observation, verdicts=verdicts)
        self.steps.append(outcome)
        self.tally.add(verdicts)
        if not outcome.failed:
            self.advance(op, observation)
        return outcome


class Side(Connectable, Protocol[CandidateT_contra, HandshakeT, CaseT, StepT]):
    """One side of the protocol, plugged into the engine, the reports and the commands.

    ``CandidateT`` is what an adapter gives (the side's adapter protocol), ``HandshakeT`` what
    the candidate says of itself, ``CaseT`` a case of the side's operations and ``StepT`` the
    outcome of one step. How an adapter spec reaches the side's candidates is
    :class:`~conformance._connect.Connectable`'s part of it.
    """

    #: The side's name: ``--side``, the reports' ``side`` field, a replay file's ``side``.
    @property
    def name(self) -> str: ...

    #: What the reports call the thing checked: "candidate", "driver".
    @property
    def who(self) -> str: ...

    #: How many cases Hypothesis may run to shrink a failure before the side's minimiser
    #: takes it, where the budget leaves it to the side; None for no bound but Hypothesis's
    #: own (docs/catalogue.md, "Shrinking a core's case").
    @property
    def shrinks(self) -> int | None: ...

    #: What the side checks, for ``--side``'s help ("a mirror driver against the DRV rules").
    @property
    def summary(self) -> str: ...

    #: The rules a run of this side checks, in catalogue order.
    @property
    def rules(self) -> tuple[Rule, ...]: ...

    #: The adapter a command uses when ``--adapter`` is not given.
    @property
    def default_adapter(self) -> str: ...

    #: The side's exhaustive engine (``hmm-conformance explore``), or None if it has none.
    @property
    def explorer(self) -> Explorer[CandidateT_contra, HandshakeT, CaseT, StepT] | None: ...

    #: The side's known-bad candidates (``hmm-conformance catalogue``).
    @property
    def catalogue(self) -> Catalogue[Any]: ...

    def profile_problem(self, profile: Profile) -> str | None:
        """Why ``profile`` does not apply to this side (the end of a sentence that starts
        with the option), or None."""
        ...

    def introduce(self, handshake: HandshakeT) -> str:
        """What the command says of a started candidate."""
        ...

    def target(self, handshake: HandshakeT, profile: Profile) -> str:
        """What a replay is run against, after "against" ("ref, profile seed")."""
        ...

    def setting(self, profile: Profile) -> str:
        """What a run says of its setting, before its budget ("profile seed")."""
        ...

    def check_handshake(self, handshake: object) -> HandshakeT:
        """The handshake if it is well-formed; :class:`AdapterError` naming what is not."""
        ...

    def executor(
        self,
        candidate: CandidateT_contra,
        handshake: HandshakeT,
        case: CaseT,
        profile: Profile,
        tally: Tally | None,
    ) -> SideExecutor[Any, StepT]:
        """An executor that runs ``case`` (its world and setting; not its operations)."""
        ...

    def machine(
        self,
        candidate: CandidateT_contra,
        handshake: HandshakeT,
        *,
        profile: Profile,
        tally: Tally,
        count: CaseCount,
        keep: list[CaseT] | None,
    ) -> tuple[type[RuleBasedStateMachine], Recorder[Failure[CaseT, StepT]]]:
        """The state machine that generates this side's cases, and the recorder it reports
        its failing cases to."""
        ...

    def edits(self, case: CaseT) -> Iterator[CaseT]:
        """Variants of ``case`` for the minimiser to try, no longer than it."""
        ...

    def order(self, case: CaseT) -> tuple[int, ...]:
        """How far along shrinking ``case`` is: the minimiser keeps an edit only if its case
        orders lower (shorter first; a side may rank same-length cases too, so that a reorder
        that a later deletion needs is kept, and no reorder is ever undone)."""
        ...

    def with_ops(self, case: CaseT, count: int) -> CaseT:
        """``case`` cut to its first ``count`` operations."""
        ...

    def case_to_json(self, case: CaseT) -> dict[str, Any]:
        """The case as a replay file's JSON (:func:`case_from_json` reads it back)."""
        ...

    def case_from_json(self, document: Mapping[str, Any]) -> CaseT:
        """A case read from a replay file; :class:`CaseFormatError` naming what is wrong."""
        ...

    def run_stem(self, handshake: HandshakeT, profile: Profile, seed: int) -> str:
        """The stem of a run's replay file (before ``.json``)."""
        ...

    def header(self) -> dict[str, str]:
        """What a report and a replay file say of the side (``{"side": NAME}``; the core,
        the first side, says nothing)."""
        ...

    def step_json(self, step: StepT) -> dict[str, Any]:
        """A step's operation as JSON."""
        ...

    def result_text(self, step: StepT) -> str:
        """What a step returned, in a few words (empty if nothing to say)."""
        ...

    def describe_failure(self, failure: Failure[CaseT, StepT]) -> str:
        """The failing case as numbered, readable steps, with the rule broken and why."""
        ...

    def conforming_note(self, tally: Tally) -> str:
        """What a conforming run's headline adds (say, answers graded); empty if nothing."""
        ...
