"""``hmm-conformance explore``: every operation sequence up to a depth, breadth first."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, final

from .._errors import AdapterError
from .._exploring import Explored, Level, ScopeOption
from .._outputs import check_directory
from .._report import clause_matrix, describe_failure, rule_rows
from .._rules import Profile
from .._sides import SIDES, side_named
from ..core._side import CORE
from ._base import (
    EXIT_OK,
    EXIT_VIOLATION,
    AnySide,
    Connection,
    Options,
    Streams,
    close,
    positive,
    save_replay_of,
    say,
    seconds,
    start,
)
from ._run import PROFILE_HELP, add_replay_dir

__all__ = ["HELP", "NAME", "ExploreOptions", "add", "execute", "explore_headline", "options"]

NAME: Final = "explore"
HELP: Final = "check every operation sequence up to a depth, breadth first (shortest failures)"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ExploreOptions(Options):
    depth: int
    side: AnySide
    connection: Connection
    profile: Profile
    #: The scope's bounds, by the explorer's option names.
    bounds: Mapping[str, int]
    every_sequence: bool
    time_limit: float | None
    replay_dir: Path

    @property
    def wire_log(self) -> Path | None:
        return self.connection.wire_log


def add(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--depth", type=positive, default=3, help="longest sequence to check (default 3)"
    )
    command.add_argument(
        "--side",
        choices=list(SIDES),
        default=CORE.name,
        help="the side to explore (default core)",
    )
    Connection.add(command, default_help="the side's reference")
    command.add_argument(
        "--profile", choices=[p.value for p in Profile], default="seed", help=PROFILE_HELP
    )
    for option in _scope_options():
        command.add_argument(
            f"--{option.name}", type=positive, default=option.default, help=option.help
        )
    command.add_argument(
        "--every-sequence",
        action="store_true",
        help="continue every sequence, not one per state of the model and the candidate: far "
        "slower, but sure to find a shortest case even for a candidate whose state the search "
        "cannot see (over the wire, in C)",
    )
    command.add_argument(
        "--time-limit",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="stop after this long; the result then says how deep the search got",
    )
    add_replay_dir(command)


def options(args: argparse.Namespace) -> ExploreOptions:
    side = side_named(args.side)
    options = side.explorer.options if side.explorer is not None else ()
    return ExploreOptions(
        depth=args.depth,
        side=side,
        connection=Connection.read(args),
        profile=Profile(args.profile),
        bounds={option.name: getattr(args, option.name) for option in options},
        every_sequence=args.every_sequence,
        time_limit=args.time_limit,
        replay_dir=args.replay_dir,
    )


def execute(chosen: ExploreOptions, streams: Streams) -> int:
    """Search, print each depth's progress, the matrix and the verdict; save a failure."""
    out = streams.out
    check_directory(chosen.replay_dir, "--replay-dir")
    side, explorer = chosen.side, chosen.side.explorer
    if explorer is None:
        explorable = ", ".join(name for name, s in SIDES.items() if s.explorer is not None)
        raise AdapterError(
            f"--side {side.name}: the {side.name} side has no exhaustive engine yet; "
            f"explore --side takes {explorable}"
        )
    candidate, handshake = start(side, chosen.connection, streams, replay_dir=chosen.replay_dir)
    say(
        out,
        f"profile {chosen.profile.value}: every sequence of up to {chosen.depth} operations "
        f"over {explorer.describe(chosen.bounds)}",
    )
    out.write(f"{'depth':>5}{'new states':>12}{'transitions':>13}{'seconds':>9}\n")

    def progress(level: Level) -> None:
        out.write(
            f"{level.depth:>5}{level.states:>12,}{level.transitions:>13,}{level.seconds:>9.2f}\n"
        )
        out.flush()

    try:
        result = explorer.explore(
            candidate,
            handshake,
            depth=chosen.depth,
            profile=chosen.profile,
            bounds=chosen.bounds,
            time_limit=chosen.time_limit,
            merge=not chosen.every_sequence,
            on_level=progress,
        )
    finally:
        close(side, candidate, out)
    out.write("\n" + clause_matrix(rule_rows(result)) + "\n\n")
    if result.merged_on_model is not None:
        say(out, f"note: {result.merged_on_model}")
    if result.failure is None:
        say(out, explore_headline(result))
        return EXIT_OK if result.conforms and not result.unreached else EXIT_VIOLATION
    say(out, explore_headline(result) + ":")
    out.write(describe_failure(side, result.failure) + "\n")
    save_replay_of(result, chosen.replay_dir, out)
    return EXIT_VIOLATION


def _scope_options() -> list[ScopeOption]:
    """The scope options of every side's explorer, each name once."""
    found: dict[str, ScopeOption] = {}
    for side in SIDES.values():
        if side.explorer is not None:
            for option in side.explorer.options:
                found.setdefault(option.name, option)
    return list(found.values())


def _operations(count: int) -> str:
    return f"{count} operation{'s' * (count != 1)}"


def explore_headline(result: Explored[Any, Any, Any]) -> str:
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
