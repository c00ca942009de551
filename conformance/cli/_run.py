"""``hmm-conformance run``: a side's rules against a candidate, over generated, shrunk cases."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, final

from .. import _engine as engine
from .._engine import RunResult
from .._errors import AdapterError
from .._outputs import (
    DATABASE_ENV,
    DEFAULT_DATABASE,
    check_directory,
    check_file,
    database_for,
    database_root,
)
from .._report import (
    REPORT_FORMATS,
    clause_matrix,
    describe_failure,
    headline,
    placeholder,
    render,
    rule_rows,
)
from .._rules import Profile
from .._sides import SIDES, side_named
from ..core._side import CORE
from ._base import (
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VIOLATION,
    Connection,
    Options,
    Sizing,
    Streams,
    close,
    save_replay_of,
    say,
    seed_number,
    start,
)

__all__ = ["HELP", "NAME", "RunOptions", "add", "execute", "options"]

NAME: Final = "run"
HELP: Final = "check a candidate with generated, shrunk cases"
#: What ``--adapter`` defaults to, as the help says it.
ADAPTERS_HELP: Final = (
    "conformance:reference, the reference core; on the driver side "
    "conformance:reference_driver, the reference driver"
)
PROFILE_HELP: Final = "seed (default): the seed's rules; strict: also demand the later fixes"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions(Options):
    side: str
    connection: Connection
    profile: Profile
    sizing: Sizing
    seed: int | None
    #: ``--report FORMAT PATH``, the paths as given (the messages quote them so).
    reports: tuple[tuple[str, str], ...]
    replay_dir: Path
    database: Path | None
    no_database: bool
    no_aim: bool

    @property
    def saves_to(self) -> Path | None:
        return self.replay_dir

    @property
    def wire_log(self) -> Path | None:
        return self.connection.wire_log


def add(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--side",
        choices=tuple(SIDES),
        default=CORE.name,
        help="; ".join(
            f"{name}{' (default)' if side is CORE else ''}: {side.summary}"
            for name, side in SIDES.items()
        ),
    )
    Connection.add(command, default_help=ADAPTERS_HELP)
    command.add_argument(
        "--profile", choices=[p.value for p in Profile], default="seed", help=PROFILE_HELP
    )
    Sizing.add(command)
    command.add_argument("--seed", type=seed_number, help="random seed, to repeat a run exactly")
    command.add_argument(
        "--report",
        nargs=2,
        action="append",
        default=[],
        metavar=("FORMAT", "PATH"),
        help=f"also write a report: FORMAT is one of {', '.join(REPORT_FORMATS)}",
    )
    add_replay_dir(command)
    command.add_argument(
        "--database",
        type=Path,
        default=None,
        metavar="DIR",
        help="Hypothesis's example database: failing cases are kept there and tried first by "
        f"the next run of the same candidate (default: ${DATABASE_ENV}, or {DEFAULT_DATABASE})",
    )
    command.add_argument(
        "--no-database",
        action="store_true",
        help="neither try nor keep failing cases in the example database",
    )
    command.add_argument(
        "--no-aim",
        action="store_true",
        help="generated cases only: do not aim cases at the rules they never reached (such "
        "rules then make the run INCONCLUSIVE)",
    )


def add_replay_dir(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--replay-dir",
        default="hmm-conformance-failures",
        type=Path,
        help="where a failing case is saved (default: %(default)s)",
    )


def options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        side=args.side,
        connection=Connection.read(args),
        profile=Profile(args.profile),
        sizing=Sizing.read(args),
        seed=args.seed,
        reports=tuple((kind, path) for kind, path in args.report),
        replay_dir=args.replay_dir,
        database=args.database,
        no_database=args.no_database,
        no_aim=args.no_aim,
    )


def execute(chosen: RunOptions, streams: Streams) -> int:
    """Check the candidate; print the matrix and the verdict, save the failing case first,
    then write the reports. The exit code."""
    out = streams.out
    _check_outputs(chosen)
    side = side_named(chosen.side)
    problem = side.profile_problem(chosen.profile)
    if problem is not None:
        raise AdapterError(f"--profile {chosen.profile.value} {problem}")
    budget = chosen.sizing.resolve()
    candidate, handshake = start(side, chosen.connection, streams, replay_dir=chosen.replay_dir)
    marks = {max(1, budget.examples * q // 4) for q in (1, 2, 3)}

    def progress(cases: int) -> None:
        if cases in marks:
            say(out, f"{cases} cases checked")

    say(
        out,
        f"{side.setting(chosen.profile)}, budget {budget.name}: {budget.examples} cases of "
        f"up to {budget.steps} steps",
    )
    root = database_root(chosen.database, off=chosen.no_database)
    try:
        result = engine.run(
            side,
            candidate,
            handshake,
            profile=chosen.profile,
            budget=budget,
            seed_value=chosen.seed,
            on_case=progress,
            database=database_for(root, side.name, handshake.name, chosen.profile.value),
            aim=not chosen.no_aim,
        )
    finally:
        close(side, candidate, out)
    return _report(result, chosen, streams)


def _check_outputs(chosen: RunOptions) -> None:
    """Every path the run will write, checked before it starts: a run is never lost to a
    report path found bad at its end."""
    for kind, path in chosen.reports:
        if kind not in REPORT_FORMATS:
            raise AdapterError(f"--report {kind!r}: the formats are {', '.join(REPORT_FORMATS)}")
        check_file(Path(path), f"--report {kind}")
    check_directory(chosen.replay_dir, "--replay-dir")
    for kind, path in chosen.reports:
        # Until the run writes it, the report says the run did not finish: an earlier green
        # report at the same path must not outlive a run that is killed or interrupted.
        try:
            Path(path).write_text(placeholder(kind))
        except OSError as error:
            raise AdapterError(
                f"--report {kind}: cannot write {path!r}: {error.strerror}"
            ) from None
    database_root(chosen.database, off=chosen.no_database)


def _report(result: RunResult[Any, Any, Any], chosen: RunOptions, streams: Streams) -> int:
    """Print a run's matrix and verdict, write its reports and replay file; the exit code."""
    out = streams.out
    if result.failure is not None:  # first, so that nothing after it can lose the case
        save_replay_of(result, chosen.replay_dir, out)
    if result.from_database:
        say(out, f"seed {result.seed}; the failure came from the example database (see below)")
    else:
        say(out, f"seed {result.seed} (repeat this run with --seed {result.seed})")
    out.write("\n" + clause_matrix(rule_rows(result)) + "\n\n")
    if result.failure is None:
        say(out, headline(result))
    else:
        say(out, headline(result) + ":")
        out.write(describe_failure(result.side, result.failure) + "\n")
    status = EXIT_OK if result.conforms else EXIT_VIOLATION
    for kind, path in chosen.reports:
        try:
            Path(path).write_text(render(result, kind))
        except OSError as error:
            say(out, f"error: the {kind} report could not be written to {path}: {error.strerror}")
            status = max(status, EXIT_USAGE)
        else:
            say(out, f"{kind} report written to {path}")
    return status
