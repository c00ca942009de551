"""The ``hmm-conformance`` command: a thin ``main(argv)`` over functions with injected streams.

Exit codes: 0 the candidate conforms (or the command succeeded), 1 a rule was violated,
2 a usage or setup error (one line on stderr naming the problem and the fix).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from ._demo import run_demo

__all__ = ["main"]

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_USAGE = 2


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


def _parser() -> _Parser:
    parser = _Parser(
        prog="hmm-conformance",
        description="Check implementations of the Linux HMM mirror protocol (blockable "
        "mmu notifiers) against the rules of docs/spec.md.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {importlib.metadata.version('hmm-conformance')}",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    commands.add_parser(
        "demo", help="walk through the seed's scenarios with the reference and print each step"
    )
    return parser


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
        if usage.status == EXIT_OK:  # --help
            out.write(usage.message)
            return EXIT_OK
        err.write(usage.message)
        return usage.status
    if args.command == "demo":
        return run_demo(out)
    raise AssertionError(f"unhandled command {args.command!r}")  # pragma: no cover
