"""What every command shares: exit codes, the parser's types, the options that reach a
candidate (frozen dataclasses), the streams, and starting, closing and saving.

A command module (``run.py``, ``replay.py``, ...) declares its arguments (``add``), reads them
into its frozen options (``options``) and runs (``execute``) with :class:`Streams`; nothing
passes an ``argparse.Namespace`` beyond ``options``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, NoReturn, TextIO, final

from .. import _engine as engine
from .._alarm import StuckCall, Watchdog
from .._connect import DEFAULT_STEP_TIMEOUT
from .._counting import BUDGETS, Budget, budget_from_env
from .._engine import RunResult
from .._exploring import Explored
from .._outputs import file_stem, save_replay, save_stuck
from .._report import replay_document
from .._side import Side

__all__ = [
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_VIOLATION",
    "AnySide",
    "Connection",
    "Options",
    "ParserExitError",
    "Sizing",
    "Streams",
    "close",
    "positive",
    "said_stuck",
    "save_replay_of",
    "say",
    "seconds",
    "seed_number",
    "start",
]

EXIT_OK: Final = 0
EXIT_VIOLATION: Final = 1
EXIT_USAGE: Final = 2
#: A side, whichever.
AnySide = Side[Any, Any, Any, Any]


class ParserExitError(Exception):
    """The parser's end: ``--help`` and ``--version`` (status 0), or a usage error (2)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Parser(argparse.ArgumentParser):
    """An argparse parser that reports through exceptions instead of exiting the process."""

    def _print_message(self, message: str, file: object = None) -> NoReturn:
        # --help and --version print through here and then exit; both end the parse with 0.
        raise ParserExitError(EXIT_OK, message)

    def error(self, message: str) -> NoReturn:
        raise ParserExitError(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 seconds")
    return value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def seed_number(text: str) -> int:
    """A seed as ``--seed`` takes it: a whole number, not negative, in any base ``int(x, 0)``
    reads."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a seed is not negative")
    return value


class Options:
    """A command's options (a frozen dataclass of its own); where it saves failing cases."""

    __slots__ = ()

    @property
    def saves_to(self) -> Path | None:
        """The replay directory, for a command that saves failing cases."""
        return None

    @property
    def wire_log(self) -> Path | None:
        """The file ``--wire-log`` names, for a command that reaches a candidate."""
        return None


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """How to reach the candidate: ``--adapter``, ``--step-timeout``, ``--isolate`` and
    ``--wire-log``."""

    adapter: str | None
    step_timeout: float = DEFAULT_STEP_TIMEOUT
    isolate: bool = False
    wire_log: Path | None = None

    @staticmethod
    def add(command: argparse.ArgumentParser, *, default_help: str) -> None:
        command.add_argument(
            "--adapter",
            default=None,
            help=f"the candidate: a factory as MODULE:FACTORY (default: {default_help}), or a "
            "core program that speaks the wire protocol as 'exec:PROGRAM [ARGS...]' "
            "(docs/wire-protocol.md)",
        )
        command.add_argument(
            "--step-timeout",
            type=seconds,
            default=DEFAULT_STEP_TIMEOUT,
            metavar="SECONDS",
            help="how long one step may take before it is a HANG, in process as over the wire "
            "(default %(default)g)",
        )
        command.add_argument(
            "--isolate",
            action="store_true",
            help="run a MODULE:FACTORY core in a child process of its own, served over the wire "
            "protocol, so that nothing it does can take the harness down",
        )
        command.add_argument(
            "--wire-log",
            type=Path,
            default=None,
            metavar="FILE",
            help="exec: only: write every line exchanged with the candidate to FILE",
        )

    @staticmethod
    def read(args: argparse.Namespace) -> Connection:
        return Connection(
            adapter=args.adapter,
            step_timeout=args.step_timeout,
            isolate=args.isolate,
            wire_log=args.wire_log,
        )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Sizing:
    """How much to generate: ``--budget``, ``--examples`` and ``--steps``; and how long to
    shrink: ``--shrinks``."""

    budget: str | None = None
    examples: int | None = None
    steps: int | None = None
    shrinks: int | None = None

    @staticmethod
    def add(command: argparse.ArgumentParser, *, per: str = "") -> None:
        command.add_argument(
            "--budget",
            choices=sorted(BUDGETS),
            default=None,
            help="fast, ci (default, or $HMM_CONFORMANCE_BUDGET) or thorough",
        )
        command.add_argument(
            "--examples", type=positive, help=f"cases to generate{per} (overrides the budget)"
        )
        command.add_argument(
            "--steps", type=positive, help="most steps in one case (overrides the budget)"
        )
        command.add_argument(
            "--shrinks",
            type=positive,
            help="most cases Hypothesis runs to shrink a failure before the minimiser takes it "
            "(200 on the core side; none on the driver side)",
        )

    @staticmethod
    def read(args: argparse.Namespace) -> Sizing:
        return Sizing(
            budget=args.budget, examples=args.examples, steps=args.steps, shrinks=args.shrinks
        )

    def resolve(self) -> Budget:
        """The budget named (or ``$HMM_CONFORMANCE_BUDGET``'s), with the overrides."""
        base = BUDGETS[self.budget] if self.budget else budget_from_env()
        custom = any(n is not None for n in (self.examples, self.steps, self.shrinks))
        return Budget(
            name=f"{base.name}+custom" if custom else base.name,
            examples=self.examples or base.examples,
            steps=self.steps or base.steps,
            shrinks=self.shrinks or base.shrinks,
        )


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Streams:
    """Where a command writes: its output, its errors, and the wire log if one was asked for
    (opened by ``main`` before the command runs)."""

    out: TextIO
    err: TextIO
    wire_log: IO[str] | None = None


def say(out: TextIO, text: str) -> None:
    out.write(f"[hmm-conformance] {text}\n")
    out.flush()


def said_stuck(call: StuckCall, replay_dir: Path | None, err: TextIO) -> None:
    """The watchdog's hook on the command line: where the call is stuck, and the case under
    way saved in ``replay_dir`` (if the command has one)."""
    err.write(call.describe())
    saved = None if replay_dir is None else save_stuck(call.describe().strip(), replay_dir)
    if saved is not None:
        path, note = saved
        err.write(f"hmm-conformance: {note or 'the case under way'}; replay file: {path}\n")
    err.flush()


def watchdog(replay_dir: Path | None) -> Watchdog:
    """The last resort for a candidate stuck where no signal reaches it: say where, and save
    the case under way (with a HANG verdict) before the process ends."""
    return Watchdog(on_stuck=lambda call: said_stuck(call, replay_dir, sys.stderr))


def start(
    side: AnySide,
    connection: Connection,
    streams: Streams,
    *,
    replay_dir: Path | None = None,
    quiet: bool = False,
) -> tuple[Any, Any]:
    """Load and start the candidate ``connection`` names for ``side`` (its default adapter if
    none), and say what it is unless ``quiet``."""
    candidate, handshake = engine.open_session(
        side,
        connection.adapter or side.default_adapter,
        step_timeout=connection.step_timeout,
        log=streams.wire_log,
        watchdog=watchdog(replay_dir),
        isolate=connection.isolate,
    )
    if not quiet:
        say(streams.out, side.introduce(handshake))
    return candidate, handshake


def close(side: AnySide, candidate: Any, out: TextIO) -> None:
    """Close the candidate; a failure to close is said, never raised."""
    problem = engine.close(side, candidate)
    if problem is not None:
        say(out, problem)


def save_replay_of(
    result: RunResult[Any, Any, Any] | Explored[Any, Any, Any], directory: Path, out: TextIO
) -> None:
    """Save the failing case under a name no earlier file has, and say where."""
    if isinstance(result, RunResult):
        stem = result.side.run_stem(result.handshake, result.profile, result.seed)
        document = replay_document(result)
    else:
        assert result.failure is not None, "only a failure is saved"
        case = result.failure.case
        digest = hashlib.sha256(json.dumps(result.side.case_to_json(case)).encode()).hexdigest()[:8]
        name = file_stem(result.handshake.name)
        stem = f"{name}-{result.profile.value}-explore-{len(case.ops)}ops-{digest}"
        document = replay_document(result, depth=result.depth)
    path, note = save_replay(directory, stem, document)
    if note is not None:
        say(out, note)
    say(out, f"replay file: {path}")
