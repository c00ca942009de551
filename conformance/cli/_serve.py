"""``hmm-conformance serve``: a Python candidate over the wire protocol on stdin and stdout."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Final, final

from .._sides import SIDES, side_named
from ..core._side import CORE
from ._base import Options, Streams

__all__ = ["HELP", "NAME", "ServeOptions", "add", "execute", "options"]

NAME: Final = "serve"
HELP: Final = (
    "serve a Python candidate over the wire protocol on stdin/stdout (docs/wire-protocol.md)"
)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ServeOptions(Options):
    adapter: str
    side: str


def add(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--side",
        choices=tuple(SIDES),
        default=CORE.name,
        help="the side of the candidate served, and so its protocol (default core)",
    )
    command.add_argument(
        "--adapter",
        help="the candidate to serve, as MODULE:FACTORY (default: the side's reference, "
        + ", ".join(f"{side.default_adapter} for {name}" for name, side in SIDES.items())
        + ")",
    )


def options(args: argparse.Namespace) -> ServeOptions:
    return ServeOptions(
        adapter=args.adapter or side_named(args.side).default_adapter, side=args.side
    )


def execute(chosen: ServeOptions, streams: Streams) -> int:
    """Serve until the harness says goodbye; stdout carries the protocol."""
    del streams
    return side_named(chosen.side).serve(chosen.adapter)
