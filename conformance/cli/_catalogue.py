"""``hmm-conformance catalogue``: every side's known-bad candidates, each caught by its rules."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Final, TextIO, final

from .. import _engine as engine
from .._counting import Budget
from .._engine import RunResult
from .._known_bad import KnownBad
from .._rules import Profile
from .._sides import SIDES
from ._base import (
    EXIT_OK,
    EXIT_VIOLATION,
    AnySide,
    Options,
    Sizing,
    Streams,
    say,
    seed_number,
)

__all__ = ["HELP", "NAME", "CatalogueOptions", "add", "execute", "options"]

NAME: Final = "catalogue"
HELP: Final = "run every known-bad core and driver; each must be caught against its rule"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogueOptions(Options):
    sizing: Sizing
    seed: int
    #: ``all`` or a side's name: which tables.
    side: str


def add(command: argparse.ArgumentParser) -> None:
    Sizing.add(command, per=" per entry")
    command.add_argument("--seed", type=seed_number, default=1, help="random seed (default 1)")
    command.add_argument(
        "--side",
        choices=("all", *SIDES),
        default="all",
        help="which side's catalogue: all (default), or one side's",
    )


def options(args: argparse.Namespace) -> CatalogueOptions:
    return CatalogueOptions(sizing=Sizing.read(args), seed=args.seed, side=args.side)


def execute(chosen: CatalogueOptions, streams: Streams) -> int:
    """Run every side's known-bad candidates, in the registry's order; each must be caught
    (``--side`` picks one side's table)."""
    missed = 0
    for side in SIDES.values():
        if chosen.side in ("all", side.name):
            missed += _table(side, chosen, streams.out)
    return EXIT_VIOLATION if missed else EXIT_OK


def _table(side: AnySide, chosen: CatalogueOptions, out: TextIO) -> int:
    """One side's table; the number of entries not caught.

    Each entry goes through the random engine (caught or not, the rules it broke, the cases to
    the first failure, the shrunk length) and, for a side with an exhaustive engine, through it
    too (the shortest length in its scope, searched up to the entry's recorded length: "none"
    if it has none that short; without one, the recorded length). An entry the random engine
    misses, or catches against another rule, counts as missed; a graded entry is caught when
    the run conforms with its rules graded.
    """
    catalogue = side.catalogue
    plural, count = catalogue.plural, len(catalogue.entries)
    budget = chosen.sizing.resolve()
    say(out, f"{count} known-bad {plural}, budget {budget.name}, seed {chosen.seed}")
    lines = [_catalogue_row("entry", "caught", "rule broken", "1st fail", "shrunk", "shortest")]
    missed = longer = 0
    for entry in catalogue.entries:
        row = _entry(side, entry, budget, chosen.seed)
        missed += not row.caught
        shrunk = len(row.result.failure.case.ops) if row.result.failure else None
        at_best = entry.shortest_for(row.broken, row.shortest)
        longer += bool(shrunk and at_best and shrunk > at_best)
        lines.append(
            _catalogue_row(
                entry.name,
                row.verdict,
                row.shown,
                row.result.first_failure or "-",
                shrunk or "-",
                row.shortest or ("-" if side.explorer is None else "none"),
                origin=entry.origin,
            )
        )
    out.write("\n".join(lines) + "\n")
    if longer:
        say(
            out,
            f"{longer} {catalogue.counterexamples} were shrunk to more than the shortest length",
        )
    if missed:
        say(out, f"{missed} known-bad {plural} were NOT caught against their rules")
        return missed
    say(
        out,
        f"every one of the {count} known-bad {plural} was caught against its rule"
        + catalogue.caught_note,
    )
    return 0


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class _Row:
    """What one entry's run showed."""

    caught: bool
    #: The rules shown, and the verdict shown ("yes", "graded", "NO").
    shown: str
    verdict: str
    result: RunResult[Any, Any, Any]
    #: The shortest counterexample in the side's exhaustive scope, or the recorded length.
    shortest: int | None
    #: The rules the run's failure broke (none if it conformed).
    broken: frozenset[str] = frozenset()


def _entry(side: AnySide, entry: KnownBad[Any], budget: Budget, seed: int) -> _Row:
    """Run one entry through the random engine, and through the side's explorer if it has one."""
    candidate, handshake = engine.start(side, entry.make)
    explorer = side.explorer
    try:
        result = engine.run(side, candidate, handshake, budget=budget, seed_value=seed)
        if explorer is None:
            shortest: int | None = entry.shortest
        else:
            bound = explorer.explore(
                candidate,
                handshake,
                depth=entry.shortest,
                profile=Profile.SEED,
                bounds={},
                time_limit=None,
                on_level=None,
                merge=True,
            )
            shortest = len(bound.failure.case.ops) if bound.failure else None
    finally:
        engine.close(side, candidate)
    if entry.graded:
        caught = result.conforms and result.graded > 0
        shown = f"{', '.join(sorted(entry.rules))} x{result.graded}"
        verdict = "graded" if caught else "NO"
        return _Row(caught=caught, shown=shown, verdict=verdict, result=result, shortest=shortest)
    failure = result.failure
    broken = (
        frozenset(v.rule or v.status.name for v in failure.verdicts) if failure else frozenset()
    )
    caught = bool(broken & entry.rules)
    return _Row(
        caught=caught,
        shown=", ".join(sorted(broken)) or "-",
        verdict="yes" if caught else "NO",
        result=result,
        shortest=shortest,
        broken=broken,
    )


#: Each column's width: a longer cell widens its own line, and a space still parts it from the
#: next.
_CATALOGUE_COLUMNS = ("<34", "<7", "<21", ">8", ">7", ">9")


def _catalogue_row(*cells: object, origin: str = "origin") -> str:
    """One line of a catalogue table: entry, caught, rules, 1st fail, shrunk, shortest."""
    row = " ".join(
        f"{cell!s:{width}}" for cell, width in zip(cells, _CATALOGUE_COLUMNS, strict=True)
    )
    return f"{row}  {origin}"
