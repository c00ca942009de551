"""Errors by blame, for every side: whose fault a failure is decides what the user sees.

- :class:`AdapterError`: the user's setup (a factory that does not load, a bad option, a file
  that cannot be written); one line that names the problem and the fix, exit status 2.
- :class:`CandidateFault` and its kinds: the candidate failed where the protocol cannot say so
  (it hung, its process died, it said something malformed); each becomes a HANG, CRASH or
  PROTOCOL verdict (conformance/_verdicts.py), with the fault's message as its detail.
- A malformed case is the case's fault: :class:`conformance._case.CaseFormatError`.

Also here, because every side loads its candidates the same way: :func:`resolve_factory`, the
one resolution of ``MODULE:FACTORY``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence

__all__ = [
    "AdapterError",
    "CandidateCrashed",
    "CandidateFault",
    "CandidateHung",
    "CandidateProtocolError",
    "checked_factory",
    "resolve_factory",
]


class CandidateFault(Exception):  # noqa: N818 - the candidate's fault, reported as a verdict
    """Raised by an adapter when its candidate failed in a way the protocol cannot express.

    The message is the verdict's detail: say what was asked and what happened.
    """


class CandidateHung(CandidateFault):
    """The candidate gave no answer within its time budget (a HANG verdict)."""


class CandidateCrashed(CandidateFault):
    """The candidate's process died, or it reported an internal failure (a CRASH verdict)."""


class CandidateProtocolError(CandidateFault):
    """The candidate said something the protocol does not allow (a PROTOCOL verdict)."""


class AdapterError(Exception):
    """The adapter could not be loaded or set up; the message names the problem and the fix."""


def resolve_factory(spec: str, example: str) -> Callable[[], object]:
    """Resolve ``MODULE:FACTORY`` to the callable it names; ``example`` shows the form."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise AdapterError(
            f"adapter {spec!r} is not of the form MODULE:FACTORY (for example {example})"
        )
    if os.getcwd() not in sys.path:
        # As `python -m` does: an adapter module next to the user is found.
        sys.path.insert(0, os.getcwd())
    try:
        factory: object = importlib.import_module(module_name)
    except Exception as error:  # any import-time failure is the user's module, reported as such
        raise AdapterError(
            f"adapter module {module_name!r} does not import ({type(error).__name__}: {error}); "
            "check the name and that it is installed or on PYTHONPATH"
        ) from error
    for part in attribute.split("."):
        if not hasattr(factory, part):
            raise AdapterError(f"module {module_name!r} has no attribute {attribute!r}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise AdapterError(f"{spec!r} is not callable; point at a function or class")
    return factory


def checked_factory(
    spec: str, example: str, methods: Sequence[str], what: str, see: str
) -> Callable[[], object]:
    """Resolve ``MODULE:FACTORY``; what the factory makes must have every one of ``methods``,
    or it is an :class:`AdapterError` naming the missing ones (``what`` it should have been,
    and where to ``see`` what that is)."""
    factory = resolve_factory(spec, example)

    def make() -> object:
        made = factory()
        missing = [name for name in methods if not callable(getattr(made, name, None))]
        if missing:
            raise AdapterError(
                f"{spec!r} returned {type(made).__name__}, which is not {what}: it lacks "
                f"{', '.join(missing)} ({see})"
            )
        return made

    return make
