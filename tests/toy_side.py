"""A third protocol side, the smallest there can be, defined outside the package.

It has one operation (:class:`Poke`), one rule (TOY-1: a poke answers the value it was given),
an adapter protocol of one call and two candidates (:class:`Echo` keeps the rule, :class:`Off`
answers one more for values above 5). It plugs in through :class:`conformance._side.Side`
alone, and tests/test_toy_side.py runs it through the engine, the command line, the reports
and the pytest plugin: adding a side touches no shared module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final, final

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from conformance._alarm import Watchdog
from conformance._case import CaseFormatError
from conformance._case_json import Reader
from conformance._counting import CaseCount, Recorder
from conformance._errors import AdapterError, resolve_factory
from conformance._generation import StepFailedError
from conformance._known_bad import Catalogue, KnownBad
from conformance._rules import Level, Profile, Rule
from conformance._side import Failure
from conformance._verdicts import Judged, Status, Tally, Verdict

TOY_RULE: Final = Rule(id="TOY-1", level=Level.MUST, title="a poke answers its value")


@final
@dataclass(frozen=True, slots=True)
class Poke:
    """The toy side's one operation."""

    value: int

    def describe(self) -> str:
        return f"poke({self.value})"


@final
@dataclass(frozen=True, slots=True)
class ToyCase:
    ops: tuple[Poke, ...]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ToyStep(Judged):
    index: int
    op: Poke
    answer: int
    verdicts: tuple[Verdict, ...]


@final
@dataclass(frozen=True, slots=True)
class ToyHandshake:
    name: str
    version: str = "1"
    protocol_version: int = 1
    capabilities: frozenset[Status] = frozenset()


class Echo:
    """A toy candidate that keeps TOY-1."""

    name = "echo"

    def handshake(self) -> ToyHandshake:
        return ToyHandshake(name=self.name)

    def poke(self, value: int) -> int:
        return value

    def close(self) -> None:
        pass


class Off(Echo):
    """A toy candidate that answers one more than it was given, for values above 5."""

    name = "off"

    def poke(self, value: int) -> int:
        return value + 1 if value > 5 else value


@dataclass(slots=True)
class ToyExecutor:
    candidate: Echo
    tally: Tally
    steps: list[ToyStep] = field(default_factory=list)

    def begin(self) -> Verdict | None:
        self.tally.cases += 1
        return None

    def caller_violation(self, op: Poke) -> str | None:
        return None if op.value >= 0 else "a poke's value is not negative"

    def step(self, op: Poke) -> ToyStep:
        answer = self.candidate.poke(op.value)
        status = Status.PASS if answer == op.value else Status.FAIL
        verdict = Verdict(rule=TOY_RULE.id, status=status, detail=f"poked {op.value}, got {answer}")
        outcome = ToyStep(index=len(self.steps), op=op, answer=answer, verdicts=(verdict,))
        self.steps.append(outcome)
        self.tally.add(outcome.verdicts)
        return outcome


@final
class ToySide:
    """The toy side, as the engine, the reports and the commands see it."""

    name: Final = "toy"
    who: Final = "toy"
    shrinks: Final = 50
    default_adapter: Final = "tests.toy_side:Echo"
    summary: Final = "a toy candidate against TOY-1"

    @property
    def rules(self) -> tuple[Rule, ...]:
        return (TOY_RULE,)

    #: Toys have no exhaustive engine.
    explorer: Final = None

    @property
    def catalogue(self) -> Catalogue[Any]:
        off = KnownBad(
            name="off-by-one", make=Off, rules=frozenset({"TOY-1"}), shortest=1, origin="a toy"
        )
        return Catalogue(entries=(off,), plural="toys")

    def load(self, spec: str) -> Callable[[], Any]:
        return resolve_factory(spec, "tests.toy_side:Echo")

    def watch(
        self, factory: Callable[[], Any], *, seconds: float, watchdog: Watchdog | None
    ) -> Callable[[], Any]:
        return factory  # toys answer at once

    def over_wire(
        self,
        argv: Sequence[str],
        *,
        step_timeout: float,
        log: IO[str] | None,
        environment: Mapping[str, str] | None,
    ) -> Callable[[], Any]:
        raise AdapterError("the toy side runs Python candidates in process only")

    serve_args: Final = ("--side", "toy")

    def serve(self, spec: str) -> int:
        raise AdapterError("the toy side has no wire protocol to serve candidates over")

    def profile_problem(self, profile: Profile) -> str | None:
        return None if profile is Profile.SEED else "does not apply to toys"

    def introduce(self, handshake: ToyHandshake) -> str:
        return f"toy {handshake.name}"

    def target(self, handshake: ToyHandshake, profile: Profile) -> str:
        return f"the toy {handshake.name}"

    def setting(self, profile: Profile) -> str:
        return "side toy"

    def check_handshake(self, handshake: object) -> ToyHandshake:
        if not isinstance(handshake, ToyHandshake):
            raise AdapterError("a toy's handshake() returns a ToyHandshake")
        return handshake

    def executor(
        self, candidate: Echo, handshake: ToyHandshake, case: ToyCase, profile: Profile,
        tally: Tally | None,
    ) -> ToyExecutor:  # fmt: skip
        return ToyExecutor(candidate, tally if tally is not None else Tally())

    def machine(
        self,
        candidate: Echo,
        handshake: ToyHandshake,
        *,
        profile: Profile,
        tally: Tally,
        count: CaseCount,
        keep: list[ToyCase] | None,
    ) -> tuple[type[RuleBasedStateMachine], Recorder[Failure[ToyCase, ToyStep]]]:
        recorder: Recorder[Failure[ToyCase, ToyStep]] = Recorder(count=count)

        class ToyMachine(RuleBasedStateMachine):
            def __init__(self) -> None:
                super().__init__()
                self.ops: list[Poke] = []
                self.executor = ToyExecutor(candidate, tally)

            @initialize()
            def set_up(self) -> None:
                recorder.count.begin()
                self.executor.begin()

            @rule(value=st.integers(0, 9))
            def poke(self, value: int) -> None:
                self.ops.append(Poke(value))
                outcome = self.executor.step(Poke(value))
                if outcome.failed:
                    steps = tuple(self.executor.steps)
                    recorder.saw(Failure(case=ToyCase(tuple(self.ops)), steps=steps))
                    raise StepFailedError(outcome.failures()[0].describe())

            def teardown(self) -> None:
                if keep is not None:
                    keep.append(ToyCase(tuple(self.ops)))

        return ToyMachine, recorder

    def edits(self, case: ToyCase) -> Iterator[ToyCase]:
        for index in range(len(case.ops)):
            yield ToyCase(case.ops[:index] + case.ops[index + 1 :])

    def order(self, case: ToyCase) -> tuple[int, ...]:
        return (len(case.ops),)

    def with_ops(self, case: ToyCase, count: int) -> ToyCase:
        return ToyCase(case.ops[:count])

    def case_to_json(self, case: ToyCase) -> dict[str, Any]:
        return {"format": "hmm-conformance/case", "version": 1, "side": self.name,
                "ops": [{"op": "poke", "value": op.value} for op in case.ops]}  # fmt: skip

    def case_from_json(self, document: Mapping[str, Any]) -> ToyCase:
        reader = Reader(dict(document), "case")
        reader.only(("format", "version", "side", "ops", "profile", "seed", "candidate",
                     "failure"), "a toy case")  # fmt: skip
        ops = []
        for index, item in enumerate(reader.array("ops")):
            if not isinstance(item, dict) or not isinstance(item.get("value"), int):
                raise CaseFormatError(f"case.ops[{index}]: a poke is {{'value': N}}")
            ops.append(Poke(item["value"]))
        return ToyCase(tuple(ops))

    def run_stem(self, handshake: ToyHandshake, profile: Profile, seed: int) -> str:
        return f"{handshake.name}-toy-seed{seed}"

    def header(self) -> dict[str, str]:
        return {"side": self.name}

    def step_json(self, step: ToyStep) -> dict[str, Any]:
        return {"op": "poke", "value": step.op.value}

    def result_text(self, step: ToyStep) -> str:
        return str(step.answer)

    def describe_failure(self, failure: Failure[ToyCase, ToyStep]) -> str:
        lines = [
            f"{step.index + 1:>3}. {step.op.describe()} -> {step.answer}" for step in failure.steps
        ]
        lines += [f"       {verdict.describe()}" for verdict in failure.verdicts]
        return "\n".join(lines)

    def conforming_note(self, tally: Tally) -> str:
        return ""


#: The toy side.
TOY: Final = ToySide()


class Breaks(Echo):
    """A toy candidate whose poke of 9 raises: the toy executor lets it through, as a harness
    with a bug of its own would let an error through."""

    name = "breaks"

    def poke(self, value: int) -> int:
        if value == 9:
            raise RuntimeError("a bug in the harness")
        return value
