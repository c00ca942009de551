"""``hmm-conformance demo``: the seed's scenarios with the reference, step by step."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Final, final

from ..core._demo import run_demo
from ._base import Options, Streams

__all__ = ["HELP", "NAME", "DemoOptions", "add", "execute", "options"]

NAME: Final = "demo"
HELP: Final = "walk through the seed's scenarios with the reference and print each step"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class DemoOptions(Options):
    pass


def add(command: argparse.ArgumentParser) -> None:
    del command  # no options


def options(args: argparse.Namespace) -> DemoOptions:
    del args
    return DemoOptions()


def execute(chosen: DemoOptions, streams: Streams) -> int:
    del chosen
    return run_demo(streams.out)
