"""``hmm-conformance replay FILE``: re-run a saved case step by step, on the side it records."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Final, final

from .. import _engine as engine
from .._case import CaseFormatError
from .._case_file import read_case_file
from .._errors import AdapterError
from .._report import describe_failure
from .._rules import Profile
from .._side import Failure
from .._sides import side_named
from ._base import EXIT_OK, EXIT_VIOLATION, Connection, Options, Streams, close, say, start
from ._run import ADAPTERS_HELP

__all__ = ["HELP", "NAME", "ReplayOptions", "add", "execute", "options"]

NAME: Final = "replay"
HELP: Final = "re-run a saved case step by step"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayOptions(Options):
    file: Path
    connection: Connection
    #: ``--profile``, overriding the one the file records.
    profile: Profile | None

    @property
    def wire_log(self) -> Path | None:
        return self.connection.wire_log


def add(command: argparse.ArgumentParser) -> None:
    command.add_argument("file", type=Path, help="a replay file written by a failing run")
    Connection.add(command, default_help=ADAPTERS_HELP)
    command.add_argument(
        "--profile",
        choices=[p.value for p in Profile],
        default=None,
        help="override the profile recorded in the file",
    )


def options(args: argparse.Namespace) -> ReplayOptions:
    return ReplayOptions(
        file=args.file,
        connection=Connection.read(args),
        profile=None if args.profile is None else Profile(args.profile),
    )


def execute(chosen: ReplayOptions, streams: Streams) -> int:
    """Replay the file's case against its side's reference unless ``--adapter`` names another
    candidate of that side; every step's verdicts, and the exit code."""
    out, name = streams.out, repr(str(chosen.file))
    loaded = read_case_file(chosen.file)
    side = side_named(loaded.side)
    profile = chosen.profile or loaded.profile or Profile.SEED
    problem = side.profile_problem(profile)
    if chosen.profile is not None and problem is not None:
        raise AdapterError(f"--profile {profile.value} {problem} ({name} is a {side.name} case)")
    candidate, handshake = start(side, chosen.connection, streams, quiet=True)
    try:
        outcome = engine.replay(side, candidate, handshake, loaded.case, profile)
    except CaseFormatError as error:  # a step breaks the caller's side of the protocol
        raise AdapterError(f"replay file {name}: {error}") from None
    finally:
        close(side, candidate, out)
    count = len(loaded.case.ops)
    say(out, f"replaying {count} operations against {side.target(handshake, profile)}")
    if isinstance(outcome, Failure):
        out.write(describe_failure(side, outcome) + "\n")
        rules = sorted({v.rule or v.status.name for v in outcome.verdicts})
        say(out, f"NOT CONFORMING: {', '.join(rules)}")
        return EXIT_VIOLATION
    for step in outcome:
        out.write(f"{step.index + 1:>3}. {step.op.describe()}: ok\n")
    say(out, "every step held")
    return EXIT_OK
