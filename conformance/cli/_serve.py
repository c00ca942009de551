"""``hmm-conformance serve``: a Python candidate over the wire protocol on stdin and stdout."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Final, final

from ..core._adapter import load_factory
from ..core._side import CORE, start
from ..core._wire_server import serve_stdio
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


def add(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--adapter",
        default=CORE.default_adapter,
        help=f"the candidate to serve, as MODULE:FACTORY (default: {CORE.default_adapter})",
    )


def options(args: argparse.Namespace) -> ServeOptions:
    return ServeOptions(adapter=args.adapter)


def execute(chosen: ServeOptions, streams: Streams) -> int:
    """Serve until the harness says goodbye; stdout carries the protocol."""
    del streams
    candidate, _ = start(load_factory(chosen.adapter))
    return serve_stdio(candidate)
