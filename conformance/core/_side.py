"""The core side: an HMM core checked against the REG, INV, END, RNG and REL rules.

:data:`CORE` plugs the core's executor, state machine, case format and failure description into
the engine and the reports (:class:`~conformance._side.Side`). The functions below are the
engine's with this side filled in: they are the public ``conformance.start``, ``run`` and
``replay``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final, final

from hypothesis.stateful import RuleBasedStateMachine

from hmm_ref import VmFault, describe_result

from .. import _engine as engine
from .._alarm import Watchdog
from .._case import FaultCall
from .._counting import Budget, CaseCount, Recorder
from .._engine import RunResult
from .._exploring import Level
from .._known_bad import Catalogue
from .._outputs import file_stem, printable
from .._rules import Profile, Rule, rules_of
from .._verdicts import Tally
from . import _shrink
from ._adapter import Candidate, Handshake, check_handshake, load_factory
from ._catalogue import CATALOGUE
from ._executor import CoreFailure, Executor, StepOutcome
from ._explore import CoreExplorer, ExploreResult, search
from ._machine import CaseRecorder, HmmConformance
from ._ops import Case, case_from_json, case_to_json, op_to_json
from ._scope import SCOPE, Scope
from ._watched import watched
from ._wire import exec_factory
from ._wire_server import serve_stdio

__all__ = [
    "CORE",
    "CoreFailure",
    "CoreResult",
    "CoreSide",
    "close_quietly",
    "explore",
    "replay",
    "replay_failure",
    "run",
    "start",
]

#: What a run of a core found.
CoreResult = RunResult[Handshake, Case, StepOutcome]


@final
class CoreSide:
    """The core side, as the engine and the reports see it."""

    name: Final = "core"
    who: Final = "candidate"
    #: At 200, every catalogue entry still shrinks to its shortest (seeds 1-5), the faulting
    #: ones in a quarter of the time: past that, Hypothesis mostly simplifies the world behind
    #: a case the minimiser shortens as well (docs/catalogue.md, "Shrinking a core's case").
    shrinks: Final = 200

    default_adapter: Final = "conformance:reference"
    summary: Final = "an HMM core against the REG/INV/END/RNG/REL rules"

    @property
    def rules(self) -> tuple[Rule, ...]:
        return rules_of("core")

    @property
    def explorer(self) -> CoreExplorer:
        return CoreExplorer(self)

    @property
    def catalogue(self) -> Catalogue[Candidate]:
        return Catalogue(entries=CATALOGUE, plural="cores")

    def load(self, spec: str) -> Callable[[], Candidate]:
        return load_factory(spec)

    def watch(
        self, factory: Callable[[], Candidate], *, seconds: float, watchdog: Watchdog | None
    ) -> Callable[[], Candidate]:
        return watched(factory, seconds=seconds, watchdog=watchdog)

    def over_wire(
        self,
        argv: Sequence[str],
        *,
        step_timeout: float,
        log: IO[str] | None,
        environment: Mapping[str, str] | None,
    ) -> Callable[[], Candidate]:
        return exec_factory(argv, step_timeout=step_timeout, log=log, environment=environment)

    serve_args: Final = ()

    def serve(self, spec: str) -> int:
        candidate, _ = start(load_factory(spec))
        return serve_stdio(candidate)

    def profile_problem(self, profile: Profile) -> str | None:
        return None

    def introduce(self, handshake: Handshake) -> str:
        capabilities = ", ".join(sorted(c.value for c in handshake.capabilities)) or "none"
        return (
            f"candidate {printable(handshake.name)} {printable(handshake.version)} "
            f"(capabilities: {capabilities})"
        )

    def target(self, handshake: Handshake, profile: Profile) -> str:
        return f"{printable(handshake.name)}, profile {profile.value}"

    def setting(self, profile: Profile) -> str:
        return f"profile {profile.value}"

    def check_handshake(self, handshake: object) -> Handshake:
        return check_handshake(handshake)

    def executor(
        self,
        candidate: Candidate,
        handshake: Handshake,
        case: Case,
        profile: Profile,
        tally: Tally | None,
    ) -> Executor:
        return Executor(candidate, handshake, profile, case.world, tally)

    def machine(
        self,
        candidate: Candidate,
        handshake: Handshake,
        *,
        profile: Profile,
        tally: Tally,
        count: CaseCount,
        keep: list[Case] | None,
    ) -> tuple[type[RuleBasedStateMachine], Recorder[CoreFailure]]:
        recorder = CaseRecorder(
            make_executor=lambda world: Executor(candidate, handshake, profile, world, tally),
            count=count,
            keep=keep,
        )
        machine = HmmConformance.for_capabilities(handshake.capabilities)
        return machine.bound(recorder), recorder

    def edits(self, case: Case) -> Iterator[Case]:
        return _shrink.edits(case)

    def order(self, case: Case) -> tuple[int, ...]:
        return _shrink.order(case)

    def with_ops(self, case: Case, count: int) -> Case:
        return Case(world=case.world, ops=case.ops[:count])

    def case_to_json(self, case: Case) -> dict[str, Any]:
        return case_to_json(case)

    def case_from_json(self, document: Mapping[str, Any]) -> Case:
        return case_from_json(document)

    def run_stem(self, handshake: Handshake, profile: Profile, seed: int) -> str:
        return f"{file_stem(handshake.name)}-{profile.value}-seed{seed}"

    def header(self) -> dict[str, str]:
        """What a report says of the side: nothing (a report without ``side`` is a core's)."""
        return {}

    def step_json(self, step: StepOutcome) -> dict[str, Any]:
        return op_to_json(step.op)

    def result_text(self, step: StepOutcome) -> str:
        obs = step.observation
        if obs.rejected is not None:
            return "refused"
        if obs.would_hang is not None:
            return "never returns"
        if isinstance(obs.result, bool):
            return str(obs.result)
        if isinstance(obs.result, int):
            return describe_result(obs.result)
        return ""

    def describe_failure(self, failure: CoreFailure) -> str:
        """The shrunk case as numbered, readable steps, with the rule broken and why."""
        case = failure.case
        lines = [
            f"world: {len(case.world.vmas)} vmas, {len(case.world.ptes)} CPU entries set "
            "(see the replay file)",
        ]
        if failure.setup_crash is not None:
            lines.append(f"begin() crashed: {failure.setup_crash.detail}")
            return "\n".join(lines)
        for step in failure.steps:
            shown = self.result_text(step)
            lines.append(
                f"{step.index + 1:>3}. {step.op.describe()}" + (f" -> {shown}" if shown else "")
            )
            for call in step.observation.calls:
                if call.kind == "release":
                    lines.append(f"       m{call.mirror}.release()")
                    continue
                assert call.update is not None, "a sync call carries its update"
                lines.append(
                    f"       m{call.mirror}.sync(blockable={call.update.blockable}) -> "
                    f"{describe_result(call.reply)}"
                )
            lines.extend(f"       {_fault_call(call)}" for call in step.observation.faults)
            for verdict in step.failures():
                lines.append(f"       {verdict.describe()}")
        if not failure.reproduced:
            lines.append(
                "the replay of this case did NOT fail again: the candidate is not deterministic"
            )
        return "\n".join(lines)

    def conforming_note(self, tally: Tally) -> str:
        return ""


def _fault_call(call: FaultCall) -> str:
    """One call into the CPU's fault handling, as a failure's steps show it."""
    if call.kind != "handle_mm_fault":
        return f"{call.kind}({call.addr:#x})"
    flags = [
        name
        for name, on in (
            ("write", call.write),
            ("allow_retry", call.allow_retry),
            ("nowait", call.nowait),
        )
        if on
    ]
    answer = VmFault(call.answer).name if call.answer else "0"
    return f"handle_mm_fault({call.addr:#x}{''.join(', ' + f for f in flags)}) -> {answer}"


#: The core side.
CORE: Final = CoreSide()


def start(factory: Callable[[], Candidate]) -> tuple[Candidate, Handshake]:
    """Make the candidate and read its handshake; :class:`AdapterError` if either fails.

    A :class:`CandidateFault` from the handshake (an out-of-process candidate that hung, died or
    said a malformed hello) is the candidate's failure, not a setup error: it propagates.
    """
    return engine.start(CORE, factory)


def close_quietly(candidate: Candidate) -> str | None:
    """Close the candidate; a failure to close is reported, never raised."""
    return engine.close(CORE, candidate)


def replay(
    candidate: Candidate,
    handshake: Handshake,
    case: Case,
    profile: Profile,
    *,
    tally: Tally | None = None,
    stop_at_failure: bool = True,
) -> CoreFailure | tuple[StepOutcome, ...]:
    """Run ``case`` step by step; a :class:`Failure` if a step fails, else every outcome."""
    return engine.replay(
        CORE, candidate, handshake, case, profile, tally=tally, stop_at_failure=stop_at_failure
    )


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
    comes first. With ``merge`` (the default) sequences that leave the model and the candidate
    in the same state are continued from the first only; without it every sequence is
    continued, which costs far more but needs no sight of the candidate's state.
    """
    return search(
        CORE,
        candidate,
        handshake,
        depth=depth,
        profile=profile,
        scope=scope,
        time_limit=time_limit,
        on_level=on_level,
        clock=clock,
        merge=merge,
    )


def replay_failure(
    candidate: Candidate, handshake: Handshake, case: Case, profile: Profile
) -> CoreFailure:
    """Replay a case that failed; if it does not fail again, say it was not reproduced."""
    return engine.confirm(CORE, candidate, handshake, case, profile)


def run(
    candidate: Candidate,
    handshake: Handshake,
    *,
    profile: Profile = Profile.SEED,
    budget: Budget | None = None,
    seed_value: int | None = None,
    on_case: Callable[[int], None] | None = None,
    keep: list[Case] | None = None,
    database: Path | None = None,
    aim: bool = True,
) -> CoreResult:
    """Check ``candidate`` over a budget of generated cases; shrink and replay a failure.

    ``budget`` defaults to ``$HMM_CONFORMANCE_BUDGET`` or ``ci``, as on the command line.
    ``on_case`` is called with the number of generated cases after each; ``keep``, if given,
    receives every case that ran (shrinking's attempts included), for benchmarks and corpora.
    ``database``, a directory, keeps failing cases in Hypothesis's example database: a later
    run tries them first. ``aim``: once the generated cases are spent without a failure,
    search the exhaustive scope for a case that reaches each rule in force they never reached,
    and run those too (``conformance._aiming``); False leaves such rules unreached (the run is
    then INCONCLUSIVE). :class:`RunInterrupted` if SIGINT or SIGTERM stops the run.
    """
    return engine.run(
        CORE,
        candidate,
        handshake,
        profile=profile,
        budget=budget,
        seed_value=seed_value,
        on_case=on_case,
        keep=keep,
        database=database,
        aim=aim,
    )
