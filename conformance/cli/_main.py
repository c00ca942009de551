"""``main(argv)``: parse, open the wire log, run one command, and turn what ends it into an exit
code (0 conforms, 1 a violation, 2 a usage or setup error on one line, 130/143 a signal)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Final, TextIO

from .._engine import RunInterrupted
from .._errors import AdapterError, CandidateFault
from .._isolation import guarded
from .._report import describe_failure
from .._verdicts import fault_verdict
from .._version import package_version
from . import _catalogue as catalogue
from . import _demo as demo
from . import _explore as explore
from . import _replay as replay
from . import _run as run
from . import _scenario as scenario
from . import _serve as serve
from ._base import (
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VIOLATION,
    Options,
    Parser,
    ParserExitError,
    Streams,
    save_replay_of,
    say,
)

__all__ = ["COMMANDS", "main"]

#: Every command, in the order ``--help`` lists them: each module has ``NAME``, ``HELP``,
#: ``add`` (its arguments), ``options`` (them, read into its frozen options) and ``execute``.
COMMANDS: Final[tuple[ModuleType, ...]] = (run, replay, explore, catalogue, demo, scenario, serve)


def parser() -> Parser:
    """The command line's parser, one subcommand per module of :data:`COMMANDS`."""
    root = Parser(
        prog="hmm-conformance",
        description="Check implementations of the Linux HMM mirror protocol (blockable "
        "mmu notifiers) against the rules of docs/spec.md.",
    )
    version = package_version()
    root.add_argument("--version", action="version", version=f"%(prog)s {version}")
    commands = root.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for command in COMMANDS:
        command.add(commands.add_parser(command.NAME, help=command.HELP))
    return root


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    except ParserExitError as usage:
        if usage.status == EXIT_OK:  # --help, --version
            out.write(usage.message)
            return EXIT_OK
        err.write(usage.message)
        return usage.status
    command = next(command for command in COMMANDS if args.command == command.NAME)
    chosen: Options = command.options(args)
    execute: Callable[[Any, Streams], int] = command.execute
    if command is serve:  # stdin and stdout are the protocol's; its harness guards it
        return _dispatch(execute, chosen, out, err)
    with guarded() as guard:
        try:
            status = _dispatch(execute, chosen, out, err)
        except RunInterrupted as stop:
            _save_interrupted(stop, chosen.saves_to, out)
            status = stop.exit_status
        except BaseException:
            # A signal may come out of the code it interrupted as another exception (a
            # library's bookkeeping turns it into its own); the guard knows it came.
            if guard.received is None:
                raise
            status = guard.received.exit_status
    if guard.received is not None:
        err.write(f"hmm-conformance: {guard.received}; every process it started was stopped\n")
        return guard.received.exit_status
    return status


def _save_interrupted(stop: RunInterrupted, replay_dir: Path | None, out: TextIO) -> None:
    """A run stopped by a signal: save the failure it had found, as far as it had shrunk it."""
    if stop.result.failure is not None:
        say(out, "interrupted after a failure; the case as far as it was shrunk:")
        out.write(describe_failure(stop.result.side, stop.result.failure) + "\n")
        if replay_dir is not None:
            save_replay_of(stop.result, replay_dir, out)


def _dispatch(
    execute: Callable[[Any, Streams], int], chosen: Options, out: TextIO, err: TextIO
) -> int:
    """Run the command; the exit code, with setup errors and a first-hello fault said on
    ``err``."""
    try:
        with contextlib.ExitStack() as stack:
            log = None
            if chosen.wire_log is not None:
                try:
                    log = stack.enter_context(chosen.wire_log.open("w"))
                except OSError as error:
                    raise AdapterError(
                        f"--wire-log: cannot write {str(chosen.wire_log)!r}: {error.strerror}"
                    ) from None
            return execute(chosen, Streams(out=out, err=err, wire_log=log))
    except AdapterError as error:
        err.write(f"hmm-conformance: error: {error}\n")
        return EXIT_USAGE
    except CandidateFault as fault:
        # Only the first hello can fail outside a case: every later fault is a step's verdict.
        verdict = fault_verdict(fault)
        err.write(
            "hmm-conformance: NOT CONFORMING: the candidate failed before the first case: "
            f"{verdict.status.name}: {verdict.detail}\n"
        )
        return EXIT_VIOLATION
