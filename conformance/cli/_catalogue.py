"""``hmm-conformance catalogue``: every known-bad core and driver, each caught against its rule."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Final, TextIO, final

from ..core._catalogue import CATALOGUE
from ..core._explore import explore
from ..core._side import CORE, close_quietly, run, start
from ..driver._catalogue import DRIVER_CATALOGUE
from ..driver._ops import DRIVER_SIDE
from ..driver._side import close_driver, run_driver, start_driver
from ._base import EXIT_OK, EXIT_VIOLATION, Options, Sizing, Streams, say, seed_number

__all__ = ["HELP", "NAME", "CatalogueOptions", "add", "execute", "options"]

NAME: Final = "catalogue"
HELP: Final = "run every known-bad core and driver; each must be caught against its rule"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogueOptions(Options):
    sizing: Sizing
    seed: int
    #: ``all``, ``core`` or ``driver``: which tables.
    side: str


def add(command: argparse.ArgumentParser) -> None:
    Sizing.add(command, per=" per entry")
    command.add_argument("--seed", type=seed_number, default=1, help="random seed (default 1)")
    command.add_argument(
        "--side",
        choices=("all", CORE.name, DRIVER_SIDE),
        default="all",
        help="which catalogue: all (default), the cores, or the drivers",
    )


def options(args: argparse.Namespace) -> CatalogueOptions:
    return CatalogueOptions(sizing=Sizing.read(args), seed=args.seed, side=args.side)


def execute(chosen: CatalogueOptions, streams: Streams) -> int:
    """Run every known-bad core, then every known-bad driver; each must be caught (``--side``
    picks one table)."""
    missed = 0
    if chosen.side in ("all", CORE.name):
        missed += _cores(chosen, streams.out)
    if chosen.side in ("all", DRIVER_SIDE):
        missed += _drivers(chosen, streams.out)
    return EXIT_VIOLATION if missed else EXIT_OK


def _cores(chosen: CatalogueOptions, out: TextIO) -> int:
    """The cores' table; the number of entries not caught.

    Each entry goes through the random engine (caught or not, the rules it broke, the cases to
    the first failure, the shrunk length) and the exhaustive one (the shortest length in its
    scope, searched up to the entry's recorded length: "none" if it has none that short). An
    entry the random engine misses, or catches against another rule, counts as missed.
    """
    budget = chosen.sizing.resolve()
    say(out, f"{len(CATALOGUE)} known-bad cores, budget {budget.name}, seed {chosen.seed}")
    lines = [_catalogue_row("entry", "caught", "rule broken", "1st fail", "shrunk", "shortest")]
    missed = longer = 0
    for entry in CATALOGUE:
        candidate, handshake = start(entry.make)
        try:
            result = run(candidate, handshake, budget=budget, seed_value=chosen.seed)
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
        say(out, f"{longer} counterexamples were shrunk to more than the shortest length")
    if missed:
        say(out, f"{missed} known-bad cores were NOT caught against their rules")
        return missed
    say(out, f"every one of the {len(CATALOGUE)} known-bad cores was caught against its rule")
    return 0


_CATALOGUE_COLUMNS = ("<32", "<8", "<22", ">9", ">8", ">10")


def _catalogue_row(*cells: object, origin: str = "origin") -> str:
    """One line of either catalogue table: entry, caught, rules, 1st fail, shrunk, shortest."""
    row = "".join(
        f"{cell!s:{width}}" for cell, width in zip(cells, _CATALOGUE_COLUMNS, strict=True)
    )
    return f"{row}  {origin}"


def _drivers(chosen: CatalogueOptions, out: TextIO) -> int:
    """The drivers' table; the number of entries not caught.

    An entry is caught when the driver run fails one of its rules; the graded entry (a SHOULD
    latitude, not a bug) is "graded" when the run conforms with DRV-6 grades. "shortest" is the
    entry's recorded shortest length, which the shrunk length should equal.
    """
    budget = chosen.sizing.resolve()
    say(out, f"{len(DRIVER_CATALOGUE)} known-bad drivers, budget {budget.name}, seed {chosen.seed}")
    lines = [_catalogue_row("entry", "caught", "rule broken", "1st fail", "shrunk", "shortest")]
    missed = longer = 0
    for entry in DRIVER_CATALOGUE:
        candidate, handshake = start_driver(entry.make)
        try:
            result = run_driver(candidate, handshake, budget=budget, seed_value=chosen.seed)
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
        say(out, f"{longer} driver counterexamples were shrunk to more than the shortest length")
    if missed:
        say(out, f"{missed} known-bad drivers were NOT caught against their rules")
        return missed
    say(
        out,
        f"every one of the {len(DRIVER_CATALOGUE)} known-bad drivers was caught against its "
        "rule (the over-conservative one graded under DRV-6, as it must be, not failed)",
    )
    return 0
