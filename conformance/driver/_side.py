"""The driver side: a mirror driver checked against the DRV rules (docs/driver-side.md).

:data:`DRIVER` plugs the driver's executor, state machine, case format and failure description
into the engine and the reports (:class:`~conformance._side.Side`). The functions below are the
engine's with this side filled in: the public ``conformance.driver.start_driver``,
``run_driver`` and ``replay_driver``. A run in which a DRV rule never came up proves nothing of
it, so it is INCONCLUSIVE, not "conforms".

There are no profiles on this side: the drivers run on the seed's HMM core, so a result always
says ``profile seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final, final

from hypothesis.stateful import RuleBasedStateMachine

from hmm_ref import describe_result

from .. import _engine as engine
from .._alarm import Watchdog
from .._counting import Budget, CaseCount, Recorder
from .._engine import RunResult
from .._known_bad import Catalogue
from .._outputs import file_stem, printable
from .._rules import Profile, Rule, rules_of
from .._verdicts import Tally
from ._adapter import (
    DriverCandidate,
    DriverHandshake,
    check_driver_handshake,
    load_driver_factory,
)
from ._catalogue import DRIVER_CATALOGUE
from ._executor import DriverExecutor, DriverStepOutcome
from ._explore import DRIVER_SCOPE, DriverExplorer, DriverExploreResult, DriverScope, search_driver
from ._machine import DriverCaseRecorder, DriverConformance, DriverFailure
from ._model import in_span
from ._ops import (
    DRIVER_SIDE,
    DriverCase,
    NotifierStart,
    RunFault,
    StepFault,
    driver_case_from_json,
    driver_case_to_json,
    driver_op_to_json,
)
from ._shrink import edits, order
from ._watched import watched_driver
from ._wire import driver_exec_factory
from ._wire_server import serve_driver_stdio

__all__ = [
    "DRIVER",
    "DriverFailure",
    "DriverRunResult",
    "DriverSide",
    "minimise_driver",
    "replay_driver",
    "replay_driver_failure",
    "run_driver",
    "start_driver",
]

#: What a run of a driver found.
DriverRunResult = RunResult[DriverHandshake, DriverCase, DriverStepOutcome]


def _entries(pages: list[int]) -> str:
    return ", ".join(f"{addr:#x}" for addr in pages) or "none"


@final
class DriverSide:
    """The driver side, as the engine and the reports see it."""

    name: Final = DRIVER_SIDE
    who: Final = "driver"
    #: No bound: a driver's generated case is 30 to 45 operations of interleaved fault steps,
    #: and from where Hypothesis stands after 200 or 1,000 shrinking cases the minimiser ends
    #: above the shortest in some seeds (docs/driver-side.md, "Shrinking").
    shrinks: Final = None

    default_adapter: Final = "conformance:reference_driver"
    summary: Final = "a mirror driver against the DRV rules (docs/driver-side.md)"

    @property
    def explorer(self) -> DriverExplorer:
        return DriverExplorer(self)

    @property
    def catalogue(self) -> Catalogue[DriverCandidate]:
        return Catalogue(
            entries=DRIVER_CATALOGUE,
            plural="drivers",
            counterexamples="driver counterexamples",
            caught_note=(
                " (the over-conservative one graded under DRV-6, as it must be, not failed)"
            ),
        )

    @property
    def rules(self) -> tuple[Rule, ...]:
        return rules_of(DRIVER_SIDE)

    def load(self, spec: str) -> Callable[[], DriverCandidate]:
        return load_driver_factory(spec)

    def watch(
        self, factory: Callable[[], DriverCandidate], *, seconds: float, watchdog: Watchdog | None
    ) -> Callable[[], DriverCandidate]:
        return watched_driver(factory, seconds=seconds, watchdog=watchdog)

    def over_wire(
        self,
        argv: Sequence[str],
        *,
        step_timeout: float,
        log: IO[str] | None,
        environment: Mapping[str, str] | None,
    ) -> Callable[[], DriverCandidate]:
        return driver_exec_factory(
            argv, step_timeout=step_timeout, log=log, environment=environment
        )

    serve_args: Final = ("--side", DRIVER_SIDE)

    def serve(self, spec: str) -> int:
        candidate, handshake = start_driver(load_driver_factory(spec))
        return serve_driver_stdio(candidate, handshake)

    def profile_problem(self, profile: Profile) -> str | None:
        if profile is Profile.SEED:
            return None
        return "applies to the core side; drivers run on the seed's core"

    def introduce(self, handshake: DriverHandshake) -> str:
        capabilities = ", ".join(sorted(c.value for c in handshake.capabilities)) or "none"
        return (
            f"driver {printable(handshake.name)} {printable(handshake.version)} (lock "
            f"{handshake.lock}; capabilities: {capabilities})"
        )

    def target(self, handshake: DriverHandshake, profile: Profile) -> str:
        return f"the driver {printable(handshake.name)}"

    def setting(self, profile: Profile) -> str:
        return f"side {DRIVER_SIDE}"

    def check_handshake(self, handshake: object) -> DriverHandshake:
        return check_driver_handshake(handshake)

    def executor(
        self,
        candidate: DriverCandidate,
        handshake: DriverHandshake,
        case: DriverCase,
        profile: Profile,
        tally: Tally | None,
    ) -> DriverExecutor:
        return DriverExecutor(candidate, handshake, case.world, case.encoding, tally)

    def machine(
        self,
        candidate: DriverCandidate,
        handshake: DriverHandshake,
        *,
        profile: Profile,
        tally: Tally,
        count: CaseCount,
        keep: list[DriverCase] | None,
    ) -> tuple[type[RuleBasedStateMachine], Recorder[DriverFailure]]:
        recorder = DriverCaseRecorder(
            make_executor=lambda world, encoding: DriverExecutor(
                candidate, handshake, world, encoding, tally
            ),
            count=count,
            keep=keep,
        )
        return DriverConformance.bound(recorder), recorder

    def edits(self, case: DriverCase) -> Iterator[DriverCase]:
        return edits(case)

    def order(self, case: DriverCase) -> tuple[int, ...]:
        return order(case)

    def with_ops(self, case: DriverCase, count: int) -> DriverCase:
        return DriverCase(world=case.world, encoding=case.encoding, ops=case.ops[:count])

    def case_to_json(self, case: DriverCase) -> dict[str, Any]:
        return driver_case_to_json(case)

    def case_from_json(self, document: Mapping[str, Any]) -> DriverCase:
        return driver_case_from_json(document)

    def run_stem(self, handshake: DriverHandshake, profile: Profile, seed: int) -> str:
        return f"{file_stem(handshake.name)}-{DRIVER_SIDE}-seed{seed}"

    def header(self) -> dict[str, str]:
        return {"side": DRIVER_SIDE}

    def step_json(self, step: DriverStepOutcome) -> dict[str, Any]:
        return driver_op_to_json(step.op)

    def result_text(self, step: DriverStepOutcome) -> str:
        obs = step.observation
        if isinstance(step.op, NotifierStart) and obs.result is not None:
            return describe_result(obs.result)
        if isinstance(step.op, StepFault | RunFault) and obs.fault_steps:
            text = ", ".join(record.step.value for record in obs.fault_steps)
            if obs.fault is not None and obs.fault.result is not None:
                text += f"; done: {describe_result(obs.fault.result)}"
            return text
        return ""

    def describe_failure(self, failure: DriverFailure) -> str:
        """The shrunk driver case as numbered, readable steps, with the rule broken and why."""
        case = failure.case
        lines = [
            f"world: {len(case.world.vmas)} vmas, {len(case.world.ptes)} CPU entries set; the "
            f"driver's encoding: flags {', '.join(hex(f) for f in case.encoding.flags)}, pfn_shift "
            f"{case.encoding.pfn_shift} (see the replay file)",
        ]
        if failure.setup_crash is not None:
            lines.append(f"begin() crashed: {failure.setup_crash.describe()}")
            return "\n".join(lines)
        for step in failure.steps:
            shown = self.result_text(step)
            lines.append(
                f"{step.index + 1:>3}. {step.op.describe()}" + (f" -> {shown}" if shown else "")
            )
            obs = step.observation
            for call in obs.callbacks:
                if call.update is None:
                    lines.append("       driver.release()")
                    continue
                answer = describe_result(call.reply) if call.reply is not None else call.raised
                span = (call.update.start, call.update.end)
                lines.append(
                    f"       driver.sync(blockable={call.update.blockable}) -> {answer}; device "
                    f"entries in the span before: {_entries(in_span(call.before, *span))}, after: "
                    f"{_entries(in_span(call.after, *span))}"
                )
            for record in obs.fault_steps:
                calls = "; ".join(
                    f"{c.kind}([{c.start:#x}, {c.end:#x})) -> {c.result}" for c in record.calls
                )
                if calls:
                    lines.append(f"       {record.step.value}: {calls}")
            for violation in obs.violations:
                lines.append(
                    f"       slept: {violation.primitive}({violation.target}) from "
                    f"{violation.caller}"
                )
            for verdict in step.failures():
                lines.append(f"       {verdict.describe()}")
        if failure.steps:
            table = failure.steps[-1].observation.table
            lines.append(
                "device page table after the last step: "
                + (
                    ", ".join(
                        f"{addr:#x} -> pfn {entry.pfn:#x}{' rw' if entry.write else ''}"
                        for addr, entry in table
                    )
                    or "empty"
                )
            )
        if not failure.reproduced:
            lines.append(
                "the replay of this case did NOT fail again: the driver is not deterministic"
            )
        return "\n".join(lines)

    def conforming_note(self, tally: Tally) -> str:
        count = engine.graded(self.rules, tally)  # DRV-6 is the side's one SHOULD rule
        return f"; DRV-6 graded {count} answers over-conservative" if count else ""


#: The driver side.
DRIVER: Final = DriverSide()


def start_driver(factory: Callable[[], DriverCandidate]) -> tuple[DriverCandidate, DriverHandshake]:
    """Make the driver and read its handshake; :class:`AdapterError` if either fails.

    A :class:`CandidateFault` from the handshake (it hung past its budget) is the driver's
    failure, not a setup error: it propagates, as :func:`conformance.start`'s does.
    """
    return engine.start(DRIVER, factory)


def replay_driver(
    candidate: DriverCandidate,
    handshake: DriverHandshake,
    case: DriverCase,
    *,
    tally: Tally | None = None,
) -> DriverFailure | tuple[DriverStepOutcome, ...]:
    """Run ``case`` step by step; a :class:`DriverFailure` at the first failing step, else every
    outcome. :class:`CaseFormatError` if a step breaks the caller's protocol, or would wait for
    a lock that a fault of the case holds and can release (the case does not apply to this
    driver); a step that would wait forever is a DRV-7 failure."""
    return engine.replay(DRIVER, candidate, handshake, case, Profile.SEED, tally=tally)


def replay_driver_failure(
    candidate: DriverCandidate, handshake: DriverHandshake, case: DriverCase
) -> DriverFailure:
    """Replay a case that failed; if it does not fail again, say it was not reproduced."""
    return engine.confirm(DRIVER, candidate, handshake, case, Profile.SEED)


def minimise_driver(
    candidate: DriverCandidate, handshake: DriverHandshake, failure: DriverFailure
) -> DriverFailure:
    """Delete runs of operations, fold a CPU change into the world, or swap two neighbours,
    while the case gets shorter and still breaks one of the same rules."""
    return engine.minimise(DRIVER, candidate, handshake, failure, Profile.SEED)


def explore_driver(
    candidate: DriverCandidate,
    handshake: DriverHandshake,
    *,
    depth: int,
    scope: DriverScope = DRIVER_SCOPE,
    time_limit: float | None = None,
    merge: bool = True,
) -> DriverExploreResult:
    """Every driver-side sequence of up to ``depth`` operations in ``scope`` (its worlds
    included), breadth first, until the first failing step: a shortest counterexample in the
    scope; ``merge=False`` continues every sequence, not one per state of the model and the
    driver."""
    return search_driver(
        DRIVER,
        candidate,
        handshake,
        depth=depth,
        scope=scope,
        time_limit=time_limit,
        merge=merge,
    )


def run_driver(
    candidate: DriverCandidate,
    handshake: DriverHandshake,
    *,
    budget: Budget | None = None,
    seed_value: int | None = None,
    on_case: Callable[[int], None] | None = None,
    keep: list[DriverCase] | None = None,
    database: Path | None = None,
    aim: bool = True,
) -> DriverRunResult:
    """Check the driver over a budget of generated cases; shrink and replay a failure.

    The arguments are :func:`conformance.run`'s (without a profile), and so is the budget's
    default.
    """
    return engine.run(
        DRIVER,
        candidate,
        handshake,
        budget=budget,
        seed_value=seed_value,
        on_case=on_case,
        keep=keep,
        database=database,
        aim=aim,
    )
