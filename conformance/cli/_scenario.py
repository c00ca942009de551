"""``hmm-conformance scenario NAME``: a scenario with the reference drivers, as a table."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Final, final

from ..core._scenario import oom_reaper_scenario
from ._base import Options, Streams

__all__ = ["HELP", "NAME", "ScenarioOptions", "add", "execute", "options"]

NAME: Final = "scenario"
HELP: Final = "run a scenario with the reference drivers and print its table"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ScenarioOptions(Options):
    name: str


def add(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "name",
        choices=("oom-reaper",),
        help="oom-reaper: the OOM reaper against the seed and its parent tree",
    )


def options(args: argparse.Namespace) -> ScenarioOptions:
    return ScenarioOptions(name=args.name)


def execute(chosen: ScenarioOptions, streams: Streams) -> int:
    del chosen  # one scenario so far
    return oom_reaper_scenario(streams.out)
