"""The base of every side's Hypothesis state machine.

A side's machine (``core/_machine.py``, ``driver/_machine.py``) draws the side's operations as
rules. What every side's machine does around its rules is stated here, once: it begins each
case on a fresh executor (a crash in ``begin()`` is the case's failure), checks that the
generator kept the caller's side of the protocol, hands a failing case with its steps to its
recorder and ends the case there, keeps the case so far for an interrupted run's report, and
gives every case that ran to the recorder's ``keep`` list (benchmarks and corpora).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar, final

from hypothesis.stateful import RuleBasedStateMachine

from ._case import World
from ._counting import LIVE, Recorder
from ._generation import StepFailedError
from ._side import CaseT, Failure, StepT
from ._verdicts import Judged, Verdict

__all__ = ["CaseMachine", "CaseRecorder", "MachineExecutor"]

OpT = TypeVar("OpT")
MakerT = TypeVar("MakerT")
OpT_contra = TypeVar("OpT_contra", contravariant=True)
StepT_co = TypeVar("StepT_co", bound=Judged, covariant=True)


@final
@dataclass(slots=True, kw_only=True)
class CaseRecorder(Recorder[Failure[CaseT, StepT]], Generic[CaseT, StepT, MakerT]):
    """What a side's machine saw (:class:`~conformance._counting.Recorder`), and how it makes
    each case's executor (``make_executor``: from the world, and whatever else the side's case
    is set in)."""

    make_executor: MakerT
    #: If set, every case that ran is appended to it (for benchmarks and corpora).
    keep: list[CaseT] | None = None

    def failed(self, case: CaseT, steps: Sequence[StepT], crash: Verdict | None = None) -> None:
        """A case failed, with these steps (``crash``: in ``begin()``)."""
        self.saw(Failure(case=case, steps=tuple(steps), setup_crash=crash))


class MachineExecutor(Protocol[OpT_contra, StepT_co]):
    """What a machine asks of its side's executor."""

    @property
    def steps(self) -> Sequence[StepT_co]: ...

    def begin(self) -> Verdict | None: ...

    def caller_violation(self, op: OpT_contra) -> str | None: ...


ExecutorT = TypeVar("ExecutorT", bound=MachineExecutor[Any, Any])


class CaseMachine(RuleBasedStateMachine, Generic[CaseT, OpT, ExecutorT]):
    """A side's state machine: its cases, one at a time, through its recorder.

    A side's machine says what its case so far is (:meth:`case`) and how it reads as JSON
    (:meth:`document`), begins each case with :meth:`begin_case`, checks each operation with
    :meth:`check_caller` before taking it and each outcome with :meth:`judge` after.
    """

    #: Where the cases go (:meth:`bound` makes a class of the machine bound to one).
    recorder: ClassVar[CaseRecorder[Any, Any, Any]]

    @classmethod
    def bound(cls, recorder: CaseRecorder[Any, Any, Any]) -> type[RuleBasedStateMachine]:
        """A class of this machine whose cases run through ``recorder``."""
        return type(cls.__name__, (cls,), {"recorder": recorder})

    def __init__(self) -> None:
        super().__init__()
        self.executor: ExecutorT | None = None
        self.world: World | None = None
        self.ops: list[OpT] = []

    def case(self) -> CaseT:
        """The case so far: the world and the operations taken."""
        raise NotImplementedError

    def document(self) -> dict[str, object]:
        """The case so far as a replay file's JSON."""
        raise NotImplementedError

    def begin_case(self, world: World, make: Callable[[], ExecutorT]) -> None:
        """Begin a case in ``world`` on the executor ``make`` makes (once the case counts:
        :class:`BudgetSpent` first if it may not start); a crash in ``begin()`` fails it."""
        self.recorder.count.begin()
        LIVE.document = self.document
        self.world = world
        executor = self.executor = make()
        crash = executor.begin()
        if crash is not None:
            self.recorder.failed(self.case(), executor.steps, crash)
            raise StepFailedError(crash.describe())

    def check_caller(self, op: OpT) -> ExecutorT:
        """The executor, once sure the generator kept the caller's side of the protocol."""
        executor = self.executor
        assert executor is not None, "the world comes first"
        violation = executor.caller_violation(op)
        assert violation is None, f"the generator broke the caller protocol: {violation}"
        return executor

    def judge(self, outcome: Judged) -> None:
        """A failed step ends the case, recorded with its steps."""
        if outcome.failed:
            assert self.executor is not None, "a step was taken"
            self.recorder.failed(self.case(), self.executor.steps)
            raise StepFailedError("; ".join(v.describe() for v in outcome.failures()))

    def teardown(self) -> None:
        keep = self.recorder.keep
        if keep is not None and self.world is not None:
            keep.append(self.case())
