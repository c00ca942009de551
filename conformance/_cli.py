"""The ``hmm-conformance`` command: a thin ``main(argv)`` over functions with injected streams.

Exit codes: 0 the candidate conforms (or the command succeeded), 1 a rule was violated (or the
candidate crashed, hung or broke the protocol), 2 a usage or setup error, reported as one line on
stderr that names the problem and the fix.

Two sides: ``run --side core`` (the default) checks an HMM core against the REG/INV/END/RNG/REL
rules; ``run --side driver`` checks a mirror driver against the DRV rules
(docs/driver-side.md). ``replay`` dispatches on the side a case file records, and ``catalogue``
runs the known-bad cores and then the known-bad drivers.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, TextIO

from . import _engine as engine
from ._adapter import AdapterError, CandidateFault, load_factory
from ._case_file import read_case_file
from ._catalogue import CATALOGUE
from ._core_side import CORE, close_quietly, run, start
from ._demo import run_demo
from ._driver_catalogue import DRIVER_CATALOGUE
from ._driver_ops import DRIVER_SIDE
from ._driver_side import close_driver, run_driver, start_driver
from ._engine import (
    BUDGETS,
    Budget,
    RunInterrupted,
    RunResult,
    budget_from_env,
)
from ._explore import SCOPE, ExploreResult, Level, explore
from ._isolation import StuckCall, Watchdog, guarded
from ._model import Profile
from ._ops import CaseFormatError, case_to_json
from ._outputs import (
    DATABASE_ENV,
    DEFAULT_DATABASE,
    check_directory,
    check_file,
    database_for,
    database_root,
    file_stem,
    save_replay,
    save_stuck,
)
from ._report import (
    REPORT_FORMATS,
    clause_matrix,
    describe_failure,
    headline,
    placeholder,
    render,
    replay_document,
    rule_rows,
)
from ._scenario import oom_reaper_scenario
from ._side import Failure, Side
from ._sides import SIDES, side_named
from ._verdicts import fault_verdict
from ._wire import DEFAULT_STEP_TIMEOUT
from ._wire_server import serve_stdio

__all__ = ["main"]

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_USAGE = 2
DEFAULT_ADAPTER = CORE.default_adapter
DEFAULT_DRIVER_ADAPTER = SIDES[DRIVER_SIDE].default_adapter
#: A side, whichever.
AnySide = Side[Any, Any, Any, Any]


class _ParserExitError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Parser(argparse.ArgumentParser):
    """An argparse parser that reports through exceptions instead of exiting the process."""

    def _print_message(self, message: str, file: object = None) -> NoReturn:
        # --help and --version print through here and then exit; both end the parse with 0.
        raise _ParserExitError(EXIT_OK, message)

    def error(self, message: str) -> NoReturn:
        raise _ParserExitError(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0 seconds")
    return value


def _positive(text: str) -> int:
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


def _parser() -> _Parser:
    parser = _Parser(
        prog="hmm-conformance",
        description="Check implementations of the Linux HMM mirror protocol (blockable "
        "mmu notifiers) against the rules of docs/spec.md.",
    )
    version = importlib.metadata.version("hmm-conformance")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    def add_adapter(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--adapter",
            default=None,
            help=f"the candidate: a factory as MODULE:FACTORY (default: {DEFAULT_ADAPTER}, the "
            f"reference core; on the driver side {DEFAULT_DRIVER_ADAPTER}, the reference "
            "driver), or a core program that speaks the wire protocol as 'exec:PROGRAM "
            "[ARGS...]' (docs/wire-protocol.md)",
        )
        command.add_argument(
            "--step-timeout",
            type=_seconds,
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

    profile_help = "seed (default): the seed's rules; strict: also demand the later fixes"

    run_cmd = commands.add_parser("run", help="check a candidate with generated, shrunk cases")
    run_cmd.add_argument(
        "--side",
        choices=tuple(SIDES),
        default=CORE.name,
        help="; ".join(
            f"{name}{' (default)' if side is CORE else ''}: {side.summary}"
            for name, side in SIDES.items()
        ),
    )
    add_adapter(run_cmd)
    run_cmd.add_argument(
        "--profile", choices=[p.value for p in Profile], default="seed", help=profile_help
    )
    run_cmd.add_argument(
        "--budget",
        choices=sorted(BUDGETS),
        default=None,
        help="fast, ci (default, or $HMM_CONFORMANCE_BUDGET) or thorough",
    )
    run_cmd.add_argument(
        "--examples", type=_positive, help="cases to generate (overrides the budget)"
    )
    run_cmd.add_argument(
        "--steps", type=_positive, help="most steps in one case (overrides the budget)"
    )
    run_cmd.add_argument("--seed", type=seed_number, help="random seed, to repeat a run exactly")
    run_cmd.add_argument(
        "--report",
        nargs=2,
        action="append",
        default=[],
        metavar=("FORMAT", "PATH"),
        help=f"also write a report: FORMAT is one of {', '.join(REPORT_FORMATS)}",
    )
    run_cmd.add_argument(
        "--replay-dir",
        default="hmm-conformance-failures",
        type=Path,
        help="where a failing case is saved (default: %(default)s)",
    )
    run_cmd.add_argument(
        "--database",
        type=Path,
        default=None,
        metavar="DIR",
        help="Hypothesis's example database: failing cases are kept there and tried first by "
        f"the next run of the same candidate (default: ${DATABASE_ENV}, or {DEFAULT_DATABASE})",
    )
    run_cmd.add_argument(
        "--no-database",
        action="store_true",
        help="neither try nor keep failing cases in the example database",
    )

    replay_cmd = commands.add_parser("replay", help="re-run a saved case step by step")
    replay_cmd.add_argument("file", type=Path, help="a replay file written by a failing run")
    add_adapter(replay_cmd)
    replay_cmd.add_argument(
        "--profile",
        choices=[p.value for p in Profile],
        default=None,
        help="override the profile recorded in the file",
    )

    explore_cmd = commands.add_parser(
        "explore",
        help="check every operation sequence up to a depth, breadth first (shortest failures)",
    )
    explore_cmd.add_argument(
        "--depth", type=_positive, default=3, help="longest sequence to check (default 3)"
    )
    add_adapter(explore_cmd)
    explore_cmd.add_argument(
        "--profile", choices=[p.value for p in Profile], default="seed", help=profile_help
    )
    explore_cmd.add_argument(
        "--mirrors",
        type=_positive,
        default=SCOPE.mirrors,
        help=f"mirror numbers a sequence may use (default {SCOPE.mirrors})",
    )
    explore_cmd.add_argument(
        "--snapshots",
        type=_positive,
        default=SCOPE.ranges,
        help=f"snapshots a sequence may take (default {SCOPE.ranges})",
    )
    explore_cmd.add_argument(
        "--every-sequence",
        action="store_true",
        help="continue every sequence, not one per model state: far slower, but sure to find a "
        "shortest case even for a candidate that keeps state it has not shown",
    )
    explore_cmd.add_argument(
        "--time-limit",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="stop after this long; the result then says how deep the search got",
    )
    explore_cmd.add_argument(
        "--replay-dir",
        default="hmm-conformance-failures",
        type=Path,
        help="where a failing case is saved (default: %(default)s)",
    )

    catalogue_cmd = commands.add_parser(
        "catalogue",
        help="run every known-bad core and driver; each must be caught against its rule",
    )
    catalogue_cmd.add_argument(
        "--budget",
        choices=sorted(BUDGETS),
        default=None,
        help="fast, ci (default, or $HMM_CONFORMANCE_BUDGET) or thorough",
    )
    catalogue_cmd.add_argument(
        "--seed", type=seed_number, default=1, help="random seed (default 1)"
    )
    catalogue_cmd.add_argument(
        "--side",
        choices=("all", CORE.name, DRIVER_SIDE),
        default="all",
        help="which catalogue: all (default), the cores, or the drivers",
    )
    catalogue_cmd.add_argument(
        "--examples", type=_positive, help="cases to generate per entry (overrides the budget)"
    )
    catalogue_cmd.add_argument(
        "--steps", type=_positive, help="most steps in one case (overrides the budget)"
    )

    commands.add_parser(
        "demo", help="walk through the seed's scenarios with the reference and print each step"
    )

    scenario_cmd = commands.add_parser(
        "scenario", help="run a scenario with the reference drivers and print its table"
    )
    scenario_cmd.add_argument(
        "name",
        choices=("oom-reaper",),
        help="oom-reaper: the OOM reaper against the seed and its parent tree",
    )

    serve_cmd = commands.add_parser(
        "serve",
        help="serve a Python candidate over the wire protocol on stdin/stdout "
        "(docs/wire-protocol.md)",
    )
    serve_cmd.add_argument(
        "--adapter",
        default=DEFAULT_ADAPTER,
        help=f"the candidate to serve, as MODULE:FACTORY (default: {DEFAULT_ADAPTER})",
    )
    return parser


def _say(out: TextIO, text: str) -> None:
    out.write(f"[hmm-conformance] {text}\n")
    out.flush()


def _budget(args: argparse.Namespace) -> Budget:
    base = BUDGETS[args.budget] if args.budget else budget_from_env()
    return Budget(
        name=base.name if args.examples is None and args.steps is None else f"{base.name}+custom",
        examples=args.examples or base.examples,
        steps=args.steps or base.steps,
    )


def _factory(side: AnySide, args: argparse.Namespace) -> Callable[[], Any]:
    """The factory that ``--adapter`` names for ``side`` (its default if none): a Python
    factory (watched by the step budget, or with ``--isolate`` in a child process), or a
    program over the wire."""
    return side.connect(
        args.adapter or side.default_adapter,
        step_timeout=args.step_timeout,
        log=args.wire_log_stream,
        watchdog=_watchdog(args),
        isolate=args.isolate,
    )


def _watchdog(args: argparse.Namespace) -> Watchdog:
    """The last resort for a candidate stuck where no signal reaches it: say where, and save
    the case under way (with a HANG verdict) before the process ends."""
    replay_dir: Path | None = getattr(args, "replay_dir", None)
    return Watchdog(on_stuck=lambda call: said_stuck(call, replay_dir, sys.stderr))


def said_stuck(call: StuckCall, replay_dir: Path | None, err: TextIO) -> None:
    """The watchdog's hook on the command line: where the call is stuck, and the case under
    way saved in ``replay_dir`` (if the command has one)."""
    err.write(call.describe())
    saved = None if replay_dir is None else save_stuck(call.describe().strip(), replay_dir)
    if saved is not None:
        path, note = saved
        err.write(f"hmm-conformance: {note or 'the case under way'}; replay file: {path}\n")
    err.flush()


def _start(side: AnySide, args: argparse.Namespace, out: TextIO) -> tuple[Any, Any]:
    """Load and start the candidate, and say what it is."""
    candidate, handshake = engine.start(side, _factory(side, args))
    _say(out, side.introduce(handshake))
    return candidate, handshake


def _close(side: AnySide, candidate: Any, out: TextIO) -> None:
    """Close the candidate; a failure to close is said, never raised."""
    problem = engine.close(side, candidate)
    if problem is not None:
        _say(out, problem)


def _save_replay(
    result: RunResult[Any, Any, Any] | ExploreResult, directory: Path, out: TextIO
) -> None:
    """Save the failing case under a name no earlier file has, and say where."""
    name = file_stem(result.handshake.name)
    if isinstance(result, RunResult):
        stem = result.side.run_stem(result.handshake, result.profile, result.seed)
        document = replay_document(result)
    else:
        assert result.failure is not None, "only a failure is saved"
        case = result.failure.case
        digest = hashlib.sha256(json.dumps(case_to_json(case)).encode()).hexdigest()[:8]
        stem = f"{name}-{result.profile.value}-explore-{len(case.ops)}ops-{digest}"
        document = replay_document(result, depth=result.depth)
    path, note = save_replay(directory, stem, document)
    if note is not None:
        _say(out, note)
    _say(out, f"replay file: {path}")


def _check_outputs(args: argparse.Namespace) -> None:
    """Every path the command will write, checked before it runs: a run is never lost to a
    report path found bad at its end."""
    for kind, path in getattr(args, "report", ()):
        if kind not in REPORT_FORMATS:
            raise AdapterError(f"--report {kind!r}: the formats are {', '.join(REPORT_FORMATS)}")
        check_file(Path(path), f"--report {kind}")
    check_directory(args.replay_dir, "--replay-dir")
    for kind, path in getattr(args, "report", ()):
        # Until the run writes it, the report says the run did not finish: an earlier green
        # report at the same path must not outlive a run that is killed or interrupted.
        try:
            Path(path).write_text(placeholder(kind))
        except OSError as error:
            raise AdapterError(
                f"--report {kind}: cannot write {path!r}: {error.strerror}"
            ) from None
    database_root(args.database, off=args.no_database)


def _database(args: argparse.Namespace, side: str, name: str, profile: Profile) -> Path | None:
    """This candidate's directory in the example database, or None when it is off."""
    root = database_root(args.database, off=args.no_database)
    return database_for(root, side, name, profile.value)


def command_run(args: argparse.Namespace, out: TextIO) -> int:
    """``hmm-conformance run``: the side's rules against a candidate of that side."""
    _check_outputs(args)
    side = side_named(args.side)
    profile = Profile(args.profile)
    problem = side.profile_problem(profile)
    if problem is not None:
        raise AdapterError(f"--profile {args.profile} {problem}")
    budget = _budget(args)
    candidate, handshake = _start(side, args, out)
    marks = {max(1, budget.examples * q // 4) for q in (1, 2, 3)}

    def progress(cases: int) -> None:
        if cases in marks:
            _say(out, f"{cases} cases checked")

    _say(
        out,
        f"{side.setting(profile)}, budget {budget.name}: {budget.examples} cases of "
        f"up to {budget.steps} steps",
    )
    try:
        result = engine.run(
            side,
            candidate,
            handshake,
            profile=profile,
            budget=budget,
            seed_value=args.seed,
            on_case=progress,
            database=_database(args, side.name, handshake.name, profile),
        )
    finally:
        _close(side, candidate, out)
    return _report_run(result, args, out)


def _report_run(result: RunResult[Any, Any, Any], args: argparse.Namespace, out: TextIO) -> int:
    """Print a run's matrix and verdict, write its reports and replay file; the exit code."""
    if result.failure is not None:  # first, so that nothing after it can lose the case
        _save_replay(result, args.replay_dir, out)
    if result.from_database:
        _say(out, f"seed {result.seed}; the failure came from the example database (see below)")
    else:
        _say(out, f"seed {result.seed} (repeat this run with --seed {result.seed})")
    out.write("\n" + clause_matrix(rule_rows(result)) + "\n\n")
    if result.failure is None:
        _say(out, headline(result))
    else:
        _say(out, headline(result) + ":")
        out.write(describe_failure(result.side, result.failure) + "\n")
    status = EXIT_OK if result.conforms else EXIT_VIOLATION
    for kind, path in args.report:
        try:
            Path(path).write_text(render(result, kind))
        except OSError as error:
            _say(out, f"error: the {kind} report could not be written to {path}: {error.strerror}")
            status = max(status, EXIT_USAGE)
        else:
            _say(out, f"{kind} report written to {path}")
    return status


def _operations(count: int) -> str:
    return f"{count} operation{'s' * (count != 1)}"


def explore_headline(result: ExploreResult) -> str:
    """One line: what the exhaustive search showed."""
    size = f"{result.states:,} states, {result.transitions:,} transitions, {result.seconds:.1f} s"
    failure = result.failure
    if failure is not None and failure.setup_crash is not None and result.flaky is None:
        return f"NOT CONFORMING: CRASH in begin(), before any operation ({size})"
    if failure is not None:
        rules = ", ".join(sorted({v.rule or v.status.name for v in failure.verdicts}))
        count = _operations(len(failure.case.ops))
        found = (
            f"{result.flaky}; a counterexample of {count}"
            if result.flaky is not None
            else f"a shortest counterexample in the scope has {count}"
        )
        return f"NOT CONFORMING: {rules}; {found} ({size})"
    if result.flaky is not None:
        return f"NOT CONFORMING: {result.flaky} ({size})"
    if result.stopped is not None:
        held = (
            f"every sequence of up to {_operations(result.completed)} in the scope holds"
            if result.completed
            else "no depth was completed"
        )
        return f"INCOMPLETE: {result.stopped}; {held} ({size}); raise --time-limit or lower --depth"
    if result.unreached:
        return (
            f"INCONCLUSIVE: no sequence of up to {_operations(result.depth)} in the scope breaks "
            f"a rule, but {', '.join(result.unreached)} never came up ({size}); raise --depth"
        )
    return (
        f"conforms: no sequence of up to {_operations(result.depth)} in the scope breaks a "
        f"rule ({size})"
    )


def command_explore(args: argparse.Namespace, out: TextIO) -> int:
    """``hmm-conformance explore``."""
    check_directory(args.replay_dir, "--replay-dir")
    candidate, handshake = _start(CORE, args, out)
    profile = Profile(args.profile)
    scope = replace(SCOPE, mirrors=args.mirrors, ranges=args.snapshots)
    _say(
        out,
        f"profile {profile.value}: every sequence of up to {args.depth} operations over "
        f"{scope.describe()}",
    )
    out.write(f"{'depth':>5}{'new states':>12}{'transitions':>13}{'seconds':>9}\n")

    def progress(level: Level) -> None:
        out.write(
            f"{level.depth:>5}{level.states:>12,}{level.transitions:>13,}{level.seconds:>9.2f}\n"
        )
        out.flush()

    try:
        result = explore(
            candidate,
            handshake,
            depth=args.depth,
            profile=profile,
            scope=scope,
            time_limit=args.time_limit,
            merge=not args.every_sequence,
            on_level=progress,
        )
    finally:
        _close(CORE, candidate, out)
    out.write("\n" + clause_matrix(rule_rows(result)) + "\n\n")
    if result.failure is None:
        _say(out, explore_headline(result))
        return EXIT_OK if result.conforms and not result.unreached else EXIT_VIOLATION
    _say(out, explore_headline(result) + ":")
    out.write(describe_failure(CORE, result.failure) + "\n")
    _save_replay(result, args.replay_dir, out)
    return EXIT_VIOLATION


def command_replay(args: argparse.Namespace, out: TextIO) -> int:
    """``hmm-conformance replay FILE``: against the side's reference unless ``--adapter``
    names another candidate of the side the file records."""
    loaded = read_case_file(args.file)
    side = side_named(loaded.side)
    if args.profile is None:
        profile = loaded.profile or Profile.SEED
    else:
        profile = Profile(args.profile)
        problem = side.profile_problem(profile)
        if problem is not None:
            raise AdapterError(
                f"--profile {args.profile} {problem} ({str(args.file)!r} is a {side.name} case)"
            )
    candidate, handshake = _start_quietly(side, args)
    try:
        outcome = engine.replay(side, candidate, handshake, loaded.case, profile)
    except CaseFormatError as error:  # a step breaks the caller's side of the protocol
        raise AdapterError(f"replay file {str(args.file)!r}: {error}") from None
    finally:
        _close(side, candidate, out)
    _say(
        out,
        f"replaying {len(loaded.case.ops)} operations against {side.target(handshake, profile)}",
    )
    if isinstance(outcome, Failure):
        out.write(describe_failure(side, outcome) + "\n")
        rules = sorted({v.rule or v.status.name for v in outcome.verdicts})
        _say(out, f"NOT CONFORMING: {', '.join(rules)}")
        return EXIT_VIOLATION
    for step in outcome:
        out.write(f"{step.index + 1:>3}. {step.op.describe()}: ok\n")
    _say(out, "every step held")
    return EXIT_OK


def _start_quietly(side: AnySide, args: argparse.Namespace) -> tuple[Any, Any]:
    """Load and start the candidate without saying what it is."""
    return engine.start(side, _factory(side, args))


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except _ParserExitError as usage:
        if usage.status == EXIT_OK:  # --help, --version
            out.write(usage.message)
            return EXIT_OK
        err.write(usage.message)
        return usage.status
    if args.command == "serve":  # stdin and stdout are the protocol's; its harness guards it
        return _dispatch(args, out, err)
    with guarded() as guard:
        try:
            status = _dispatch(args, out, err)
        except RunInterrupted as stop:
            _save_interrupted(stop, args, out)
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


def _save_interrupted(stop: RunInterrupted, args: argparse.Namespace, out: TextIO) -> None:
    """A run stopped by a signal: save the failure it had found, as far as it had shrunk it."""
    if stop.result.failure is not None:
        _say(out, "interrupted after a failure; the case as far as it was shrunk:")
        out.write(describe_failure(stop.result.side, stop.result.failure) + "\n")
        _save_replay(stop.result, args.replay_dir, out)


def _dispatch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the command; the exit code, with setup errors and a first-hello fault said on
    ``err``."""
    commands: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
        "run": command_run,
        "replay": command_replay,
        "explore": command_explore,
        "catalogue": command_catalogue,
        "demo": lambda _, stream: run_demo(stream),
        "scenario": lambda _, stream: oom_reaper_scenario(stream),
        "serve": command_serve,
    }
    try:
        with contextlib.ExitStack() as stack:
            log_path: Path | None = getattr(args, "wire_log", None)
            args.wire_log_stream = None
            if log_path is not None:
                try:
                    args.wire_log_stream = stack.enter_context(log_path.open("w"))
                except OSError as error:
                    raise AdapterError(
                        f"--wire-log: cannot write {str(log_path)!r}: {error.strerror}"
                    ) from None
            return commands[args.command](args, out)
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


def command_serve(args: argparse.Namespace, out: TextIO) -> int:
    """``hmm-conformance serve``: the candidate over the wire protocol on stdin and stdout."""
    del out  # stdout carries the protocol
    candidate, _ = start(load_factory(args.adapter))
    return serve_stdio(candidate)


def command_catalogue(args: argparse.Namespace, out: TextIO) -> int:
    """``hmm-conformance catalogue``: run every known-bad core, then every known-bad driver;
    each must be caught (``--side`` picks one table)."""
    missed = 0
    if args.side in ("all", "core"):
        missed += _core_catalogue(args, out)
    if args.side in ("all", DRIVER_SIDE):
        missed += _driver_catalogue(args, out)
    return EXIT_VIOLATION if missed else EXIT_OK


def _core_catalogue(args: argparse.Namespace, out: TextIO) -> int:
    """The cores' table; the number of entries not caught.

    Each entry goes through the random engine (caught or not, the rules it broke, the cases to
    the first failure, the shrunk length) and the exhaustive one (the shortest length in its
    scope, searched up to the entry's recorded length: "none" if it has none that short). An
    entry the random engine misses, or catches against another rule, counts as missed.
    """
    budget = _budget(args)
    _say(out, f"{len(CATALOGUE)} known-bad cores, budget {budget.name}, seed {args.seed}")
    lines = [_catalogue_row("entry", "caught", "rule broken", "1st fail", "shrunk", "shortest")]
    missed = longer = 0
    for entry in CATALOGUE:
        candidate, handshake = start(entry.make)
        try:
            result = run(candidate, handshake, budget=budget, seed_value=args.seed)
            bound = explore(candidate, handshake, depth=entry.shortest)
        finally:
            close_quietly(candidate)
        broken = (
            {v.rule or v.status.name for v in result.failure.verdicts} if result.failure else set()
        )
        caught = bool(broken & entry.rules)
        missed += not caught
        shrunk = len(result.failure.case.ops) if result.failure else None
        shortest = len(bound.failure.case.ops) if bound.failure else None
        longer += shrunk is not None and shortest is not None and shrunk > shortest
        lines.append(
            _catalogue_row(
                entry.name,
                "yes" if caught else "NO",
                ", ".join(sorted(broken)) or "-",
                result.first_failure or "-",
                shrunk or "-",
                shortest or "none",
                origin=entry.origin,
            )
        )
    out.write("\n".join(lines) + "\n")
    if longer:
        _say(out, f"{longer} counterexamples were shrunk to more than the shortest length")
    if missed:
        _say(out, f"{missed} known-bad cores were NOT caught against their rules")
        return missed
    _say(out, f"every one of the {len(CATALOGUE)} known-bad cores was caught against its rule")
    return 0


_CATALOGUE_COLUMNS = ("<32", "<8", "<22", ">9", ">8", ">10")


def _catalogue_row(*cells: object, origin: str = "origin") -> str:
    """One line of either catalogue table: entry, caught, rules, 1st fail, shrunk, shortest."""
    row = "".join(
        f"{cell!s:{width}}" for cell, width in zip(cells, _CATALOGUE_COLUMNS, strict=True)
    )
    return f"{row}  {origin}"


def _driver_catalogue(args: argparse.Namespace, out: TextIO) -> int:
    """The drivers' table; the number of entries not caught.

    An entry is caught when the driver run fails one of its rules; the graded entry (a SHOULD
    latitude, not a bug) is "graded" when the run conforms with DRV-6 grades. "shortest" is the
    entry's recorded shortest length, which the shrunk length should equal.
    """
    budget = _budget(args)
    _say(out, f"{len(DRIVER_CATALOGUE)} known-bad drivers, budget {budget.name}, seed {args.seed}")
    lines = [_catalogue_row("entry", "caught", "rule broken", "1st fail", "shrunk", "shortest")]
    missed = longer = 0
    for entry in DRIVER_CATALOGUE:
        candidate, handshake = start_driver(entry.make)
        try:
            result = run_driver(candidate, handshake, budget=budget, seed_value=args.seed)
        finally:
            close_driver(candidate)
        if entry.graded:
            caught = result.conforms and result.graded > 0
            shown, verdict = f"DRV-6 x{result.graded}", "graded" if caught else "NO"
        else:
            broken = (
                {v.rule or v.status.name for v in result.failure.verdicts}
                if result.failure
                else set()
            )
            caught = bool(broken & entry.rules)
            shown, verdict = ", ".join(sorted(broken)) or "-", "yes" if caught else "NO"
        missed += not caught
        shrunk = len(result.failure.case.ops) if result.failure else None
        longer += shrunk is not None and shrunk > entry.shortest
        lines.append(
            _catalogue_row(
                entry.name,
                verdict,
                shown,
                result.first_failure or "-",
                shrunk or "-",
                entry.shortest or "-",
                origin=entry.origin,
            )
        )
    out.write("\n".join(lines) + "\n")
    if longer:
        _say(out, f"{longer} driver counterexamples were shrunk to more than the shortest length")
    if missed:
        _say(out, f"{missed} known-bad drivers were NOT caught against their rules")
        return missed
    _say(
        out,
        f"every one of the {len(DRIVER_CATALOGUE)} known-bad drivers was caught against its "
        "rule (the over-conservative one graded under DRV-6, as it must be, not failed)",
    )
    return 0
