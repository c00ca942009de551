"""The executor: apply one operation to a candidate, observe, judge, advance the model.

Every step goes the same way, whatever produced the operation (Hypothesis, the exhaustive
engine, a replay file): the harness calls the candidate, recording every mirror callback and
answering it from the operation's ``replies``; it then observes every range the case knows,
hands (model before, operation, observation) to the oracle, and advances the model.

A candidate that raises is a CRASH verdict with its traceback, one that answers with the wrong
type is a PROTOCOL verdict naming the answer; neither escapes into the harness. An adapter's
:class:`CandidateFault` (an out-of-process candidate that hung, died or broke the wire protocol)
becomes a HANG, CRASH or PROTOCOL verdict with the fault's own message.
"""

from __future__ import annotations

from typing import TypeAlias, assert_never, final

from hmm_ref import HmmMirrorOps, HmmUpdate

from .._case import FaultCall
from .._fingerprint import handing
from .._side import Failure, StepKeeping
from .._verdicts import (
    Outcome,
    Status,
    StepEndedError,
    Tally,
    Verdict,
    crash_verdict,
    fault_verdict,
)
from ..oracle import check_step
from ._adapter import (
    Candidate,
    CandidateFault,
    CandidateRejected,
    CandidateWouldHang,
    Capability,
    Handshake,
    ObservesAhead,
    RangeView,
    faults_of,
)
from ._model import CallRecord, CpuState, Model, Observation, Profile
from ._ops import (
    Case,
    CoreOperation,
    FaultSnapshot,
    InvalidateEnd,
    InvalidateStart,
    Observe,
    Operation,
    RangeDone,
    RegisterMirror,
    Release,
    SetCpuEntry,
    Snapshot,
    UnregisterMirror,
    World,
)

__all__ = ["CoreFailure", "Executor", "StepOutcome"]


#: One step: the operation, what was seen, and every verdict on it.
StepOutcome: TypeAlias = Outcome[CoreOperation, Observation]


@final
class _HarnessMirror:
    """The ops the harness gives the candidate for one mirror: answer and record each call."""

    def __init__(self, executor: Executor, mirror: int) -> None:
        self._executor = executor
        self._mirror = mirror

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        return self._executor._on_sync(self._mirror, update)

    def release(self) -> None:
        self._executor._record(CallRecord(mirror=self._mirror, kind="release"))


@final
class Executor(StepKeeping[CoreOperation, Observation]):
    """Runs one case against one candidate, step by step."""

    def __init__(
        self,
        candidate: Candidate,
        handshake: Handshake,
        profile: Profile,
        world: World,
        tally: Tally | None = None,
    ) -> None:
        self.candidate = candidate
        self.cpu = CpuState(world)
        self.model = Model(profile=profile, cpu=self.cpu, capabilities=handshake.capabilities)
        self.tally = tally if tally is not None else Tally()
        self.steps: list[StepOutcome] = []
        #: What the harness handed the candidate, which is not its own state: the CPU view
        #: and each mirror's ops (:func:`conformance._fingerprint.own_state`).
        self.handed = handing(cpu=self.cpu)
        self._calls: list[CallRecord] = []
        self._op: Operation | None = None
        self._callback_error: Verdict | None = None
        #: The candidate, if it fetches with each step's call what the step observes.
        self._ahead: ObservesAhead | None = None
        if isinstance(candidate, ObservesAhead) and candidate.observes_ahead():
            self._ahead = candidate
        self.tally.cases += 1

    def begin(self) -> Verdict | None:
        """Start the case on the candidate; a CRASH verdict if it fails."""
        try:
            self.candidate.begin(self.cpu)
        except CandidateFault as fault:
            return fault_verdict(fault)
        except Exception:
            return crash_verdict("begin() raised")
        return None

    # -- callbacks from the candidate ---------------------------------------------------------

    def _record(self, call: CallRecord) -> None:
        self._calls.append(call)

    def _on_sync(self, mirror: int, update: HmmUpdate) -> int:
        op = self._op
        reply = op.reply(mirror) if isinstance(op, InvalidateStart) else 0
        seen: tuple[tuple[int, RangeView], ...] = ()
        if Capability.OBSERVE_IN_CALLBACK in self.model.capabilities:
            try:
                seen = self._observe([r.id for r in self.model.registered_ranges()])
            except StepEndedError as error:
                self._callback_error = error.verdict
        self._record(CallRecord(mirror=mirror, kind="sync", update=update, reply=reply, seen=seen))
        return reply

    # -- one step -----------------------------------------------------------------------------

    def caller_violation(self, op: CoreOperation) -> str | None:
        """Why ``op`` breaks the caller's side of the protocol now, or None (the model's)."""
        return self.model.caller_violation(op)

    def advance(self, op: CoreOperation, observation: Observation) -> None:
        self.model.advance(op, observation)

    def step(self, op: CoreOperation) -> StepOutcome:
        """Apply ``op``, judge it, and advance the model unless the step failed."""
        self._op, self._calls, self._callback_error = op, [], None
        try:
            observation = self._apply(op)
            if self._callback_error is not None:
                raise StepEndedError(self._callback_error)
            verdicts = tuple(check_step(self.model, op, observation))
        except StepEndedError as error:
            observation = Observation(calls=tuple(self._calls))
            verdicts = (error.verdict,)
        finally:
            self._op = None
        return self.keep(op, observation, verdicts)

    def _apply(self, op: CoreOperation) -> Observation:
        result: int | bool | None = None
        rejected = would_hang = None
        watch = set(self.model.ranges)
        if isinstance(op, Snapshot | FaultSnapshot):
            watch.add(op.range)
        observed = [] if isinstance(op, SetCpuEntry) else sorted(watch)
        if self._ahead is not None:
            self._expect(op, observed)
        faults: list[FaultCall] = []
        if isinstance(op, FaultSnapshot):
            self.cpu.outcomes, self.cpu.on_fault = dict(op.handler), faults.append
        try:
            result = self._call(op)
        except CandidateRejected as error:
            rejected = str(error) or type(error).__name__
        except CandidateWouldHang as error:
            would_hang = str(error) or type(error).__name__
        except StepEndedError:
            raise
        except CandidateFault as fault:
            raise StepEndedError(fault_verdict(fault)) from None
        except Exception:
            raise StepEndedError(crash_verdict(f"{op.name} raised")) from None
        finally:
            self.cpu.outcomes, self.cpu.on_fault = {}, None
        if would_hang is not None and not (isinstance(op, RegisterMirror) and self.model.poisoned):
            raise StepEndedError(
                Verdict(rule=None, status=Status.HANG, detail=f"{op.name}: {would_hang}")
            )
        ranges = self._observe(observed) if observed else ()
        return Observation(
            result=result,
            rejected=rejected,
            would_hang=would_hang,
            calls=tuple(self._calls),
            ranges=ranges,
            faults=tuple(faults),
        )

    def _expect(self, op: CoreOperation, after: list[int]) -> None:
        """Tell a candidate that fetches ahead what this step will observe: ``after`` its
        call, and in the callbacks of an invalidation, the only step that makes them when the
        candidate is right (see ``_on_sync``; one that calls back elsewhere is observed there
        as ever)."""
        assert self._ahead is not None
        in_sync: list[int] = []
        if isinstance(op, InvalidateStart) and (
            Capability.OBSERVE_IN_CALLBACK in self.model.capabilities
        ):
            in_sync = [r.id for r in self.model.registered_ranges()]
        self._ahead.expect_observes(after, in_sync)

    def _call(self, op: CoreOperation) -> int | bool | None:
        candidate = self.candidate
        match op:
            case RegisterMirror():
                ops: HmmMirrorOps | None = None
                if op.with_ops:
                    ops = _HarnessMirror(self, op.mirror)
                    self.handed[id(ops)] = (ops, ("mirror", op.mirror))
                return self._typed(op, candidate.register(op.mirror, ops), int)
            case UnregisterMirror():
                candidate.unregister(op.mirror)
            case Snapshot():
                answer = candidate.snapshot(op.range, op.vma, op.start, op.end, op.encoding)
                return self._typed(op, answer, int)
            case FaultSnapshot():
                # It declared FAULT, or the model would have refused the step.
                answer = faults_of(candidate).fault(
                    op.range, op.vma, op.start, op.end, op.encoding, pfns=op.pfns(), block=op.block
                )
                return self._typed(op, answer, int)
            case RangeDone():
                return self._typed(op, candidate.range_done(op.range), bool)
            case InvalidateStart():
                answer = candidate.invalidate_start(op.start, op.end, op.blockable)
                return self._typed(op, answer, int)
            case InvalidateEnd():
                candidate.invalidate_end(op.start, op.end)
            case Release():
                candidate.release()
            case Observe() | SetCpuEntry():
                pass  # the harness looks, or the CPU changes its own table: no call
            case _:
                assert_never(op)
        return None

    @staticmethod
    def _typed(op: Operation, answer: object, kind: type[int] | type[bool]) -> int | bool:
        if kind is int and isinstance(answer, int) and not isinstance(answer, bool):
            return answer
        if kind is bool and isinstance(answer, bool):
            return answer
        raise StepEndedError(
            Verdict(
                rule=None,
                status=Status.PROTOCOL,
                detail=f"{op.name} answered {answer!r}, not a{'n int' if kind is int else ' bool'}",
            )
        )

    def _observe(self, range_ids: list[int]) -> tuple[tuple[int, RangeView], ...]:
        seen: list[tuple[int, RangeView]] = []
        for range_id in range_ids:
            try:
                view: object = self.candidate.observe(range_id)  # untyped candidates exist
            except CandidateRejected as error:
                raise StepEndedError(
                    Verdict(
                        rule=None,
                        status=Status.PROTOCOL,
                        detail=f"observe(r{range_id}) was refused: {error}",
                    )
                ) from None
            except CandidateFault as fault:
                raise StepEndedError(fault_verdict(fault)) from None
            except Exception:
                raise StepEndedError(crash_verdict(f"observe(r{range_id}) raised")) from None
            if not (
                isinstance(view, RangeView) and all(type(entry) is int for entry in view.entries)
            ):
                raise StepEndedError(
                    Verdict(
                        rule=None,
                        status=Status.PROTOCOL,
                        detail=f"observe(r{range_id}) answered {view!r}, not a RangeView of ints",
                    )
                )
            seen.append((range_id, view))
        return tuple(seen)


#: A failing core case and its steps.
CoreFailure: TypeAlias = Failure[Case, StepOutcome]
