"""Connectors: how an adapter spec becomes a factory of candidates, once for every side.

``--adapter`` (and ``--hmm-adapter``, and a side's default adapter) names a candidate in one of
the forms of :data:`CONNECTORS`:

- ``exec:PROGRAM [ARGS...]``, a program of any language that speaks the wire protocol
  (docs/wire-protocol.md), each step within the step's budget, in a process group of its own;
- ``MODULE:FACTORY``, a Python adapter in process, each outermost call within the step's
  budget too (``watch=False`` leaves it unwatched), or with ``isolate`` in a child process that
  serves it over the wire protocol (``hmm-conformance serve``).

:func:`connect` resolves a spec for any :class:`~conformance._side.Side`; what differs by side
is asked of the side (:class:`Connectable`): how it loads and checks a Python factory, how it
watches one, and how it speaks the wire protocol (a side without one says so).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Protocol, final

from ._alarm import Watchdog
from ._errors import AdapterError

__all__ = [
    "CONNECTORS",
    "DEFAULT_STEP_TIMEOUT",
    "EXEC_PREFIX",
    "Connectable",
    "Connection",
    "Connector",
    "check_timeout",
    "connect",
    "parse_exec",
]

#: The prefix of a program adapter.
EXEC_PREFIX: Final = "exec:"
#: Seconds a candidate gets for one step unless ``--step-timeout`` says otherwise.
DEFAULT_STEP_TIMEOUT: Final = 10.0


class Connectable(Protocol):
    """What :func:`connect` asks of a side (every :class:`~conformance._side.Side` has it)."""

    def load(self, spec: str) -> Callable[[], Any]:
        """The Python factory ``MODULE:FACTORY`` names, checking what it makes is this side's
        candidate; :class:`AdapterError` naming what is wrong."""
        ...

    def watch(
        self, factory: Callable[[], Any], *, seconds: float, watchdog: Watchdog | None
    ) -> Callable[[], Any]:
        """``factory``, each candidate it makes with every outermost call within ``seconds``."""
        ...

    def over_wire(
        self,
        argv: Sequence[str],
        *,
        step_timeout: float,
        log: IO[str] | None,
        environment: Mapping[str, str] | None,
    ) -> Callable[[], Any]:
        """A factory of candidates that are the program ``argv`` speaking the wire protocol;
        :class:`AdapterError` if this side has no wire protocol."""
        ...

    #: The arguments of ``hmm-conformance serve`` that pick this side (none for the core).
    @property
    def serve_args(self) -> tuple[str, ...]: ...

    def serve(self, spec: str) -> int:
        """Serve the Python candidate ``spec`` names over the wire protocol on standard input
        and output until the harness says bye; the exit status."""
        ...


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """How a spec is to be connected: the step's budget and what goes with it."""

    step_timeout: float
    log: IO[str] | None
    watchdog: Watchdog | None
    isolate: bool
    watch: bool


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Connector:
    """One form of adapter spec: the specs starting with ``prefix``, and how one resolves."""

    prefix: str
    resolve: Callable[[Connectable, str, Connection], Callable[[], Any]]


def parse_exec(spec: str) -> list[str]:
    """``exec:PROGRAM [ARGS...]`` as an argument list; :class:`AdapterError` if malformed or
    if the program is not there."""
    argv = _split_exec(spec)
    _check_program(spec, argv[0])
    return argv


def _split_exec(spec: str) -> list[str]:
    assert spec.startswith(EXEC_PREFIX)
    try:
        argv = shlex.split(spec[len(EXEC_PREFIX) :])
    except ValueError as error:
        raise AdapterError(f"adapter {spec!r}: {error}; quote the program's arguments") from None
    if not argv:
        raise AdapterError(f"adapter {spec!r} names no program; write exec:PROGRAM [ARGS...]")
    return argv


def _check_program(spec: str, program: str) -> None:
    if os.sep not in program:
        if shutil.which(program) is None:
            raise AdapterError(
                f"adapter {spec!r}: no program {program!r} on PATH; give its path (./{program})"
            )
    elif not Path(program).is_file():
        raise AdapterError(f"adapter {spec!r}: {program!r} does not exist; is it built?")


def check_timeout(step_timeout: float) -> None:
    """:class:`AdapterError` unless ``step_timeout`` is a positive number of seconds."""
    if step_timeout <= 0:
        raise AdapterError(f"the step timeout must be positive, not {step_timeout!r}")


def _program(side: Connectable, spec: str, how: Connection) -> Callable[[], Any]:
    if how.isolate:
        raise AdapterError(
            f"adapter {spec!r}: --isolate runs a Python MODULE:FACTORY adapter in a process of "
            "its own; an exec: program has one already, so leave out --isolate"
        )
    argv = _split_exec(spec)
    # The side first: one without a wire protocol says so whether or not the program is there.
    factory = side.over_wire(argv, step_timeout=how.step_timeout, log=how.log, environment=None)
    _check_program(spec, argv[0])
    return factory


def _python(side: Connectable, spec: str, how: Connection) -> Callable[[], Any]:
    if how.isolate:
        return _isolated(side, spec, how)
    factory = side.load(spec)
    if not how.watch:
        return factory
    return side.watch(factory, seconds=how.step_timeout, watchdog=how.watchdog)


def _isolated(side: Connectable, spec: str, how: Connection) -> Callable[[], Any]:
    """``--isolate``: the Python adapter in a child process, served over the wire protocol by
    ``hmm-conformance serve``, with every isolation of an ``exec:`` program.

    The module is not imported here (an import that hangs or crashes is the child's); a module
    that does not import makes the child exit before its hello, a CRASH that quotes the error.
    The child runs with this interpreter, in this directory, with ``PYTHONPATH`` passed on.
    """
    module, colon, attribute = spec.partition(":")
    if not (module and colon and attribute):
        raise AdapterError(
            f"adapter {spec!r} is not of the form MODULE:FACTORY (for example "
            "mypkg.hmm_adapter:make_candidate)"
        )
    passed = {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
    return side.over_wire(
        [sys.executable, "-m", "conformance", "serve", *side.serve_args, "--adapter", spec],
        step_timeout=how.step_timeout,
        log=how.log,
        environment=passed,
    )


#: Every form of adapter spec, tried in order: the first whose prefix the spec has resolves it.
CONNECTORS: Final = (
    Connector(prefix=EXEC_PREFIX, resolve=_program),  # exec:PROGRAM [ARGS...]
    Connector(prefix="", resolve=_python),  # MODULE:FACTORY
)


def connect(
    side: Connectable,
    spec: str,
    *,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    log: IO[str] | None = None,
    watchdog: Watchdog | None = None,
    isolate: bool = False,
    watch: bool = True,
) -> Callable[[], Any]:
    """The factory of ``side``'s candidates that ``spec`` names (see :data:`CONNECTORS`), each
    step within ``step_timeout``; :class:`AdapterError` naming what is wrong with the spec."""
    check_timeout(step_timeout)
    how = Connection(
        step_timeout=step_timeout, log=log, watchdog=watchdog, isolate=isolate, watch=watch
    )
    connector = next(c for c in CONNECTORS if spec.startswith(c.prefix))
    return connector.resolve(side, spec, how)
