"""Reading a replay file: what is wrong with the file is its fault, never the candidate's.

``hmm-conformance replay FILE`` runs a case saved by a failing run (or written by hand). Before
any candidate starts, :func:`read_case_file` reads and decodes the whole file, so that a file
that cannot be read, is not UTF-8 or not JSON, nests without end, names an unknown profile or
holds a case the engine cannot run is one :class:`~conformance.core._adapter.AdapterError` (exit 2)
naming the file and what is wrong with it, not a traceback and not a CRASH verdict against the
candidate.

Two limits protect the reader itself: the file's size (a replay file is a few KiB; the bound
keeps ``/dev/zero`` or a mistyped path to a disk image from exhausting memory), and the depth of
nesting, scanned before :func:`json.loads` recurses into it (a deep enough file would otherwise
raise ``RecursionError`` inside the decoder).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, final

from ._case import CaseFormatError
from ._case_json import shown
from ._errors import AdapterError
from ._rules import Profile
from ._side import Side
from ._sides import side_of

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "CaseFile", "read_case_file"]

#: The largest replay file read: far above the few KiB a failing run writes.
MAX_FILE_BYTES: Final = 16 << 20
#: The deepest nesting read. A replay file nests five levels (an encoding's flags in an
#: operation); the bound is generous, and far below where ``json.loads`` runs out of stack.
MAX_DEPTH: Final = 64

#: A whole string (skipped: brackets inside it do not nest), a bracket, or the quote that opens
#: a string never closed (the scan ends there; ``json.loads`` then says what is wrong).
_TOKENS: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[][{}]|"', re.DOTALL)
_BOM: Final = "\ufeff"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class CaseFile:
    """A decoded replay file: the case, the side it is for, and the profile it recorded."""

    #: A case of the side's (a core :class:`~conformance.core._ops.Case`, a
    #: :class:`~conformance.driver._ops.DriverCase`, ...).
    case: Any
    #: The side's name (``"core"``, ``"driver"``, ...).
    side: str
    #: The profile the failing run used, or None if the file records none (a hand-written case).
    profile: Profile | None


def read_case_file(path: Path) -> CaseFile:
    """Read and decode the replay file at ``path``: everything ``replay`` needs before it starts
    a candidate.

    The replay command calls this first and dispatches on the result::

        loaded = read_case_file(args.file)  # AdapterError: exit 2 with its one-line message
        side = side_named(loaded.side)  # the registry's row, which replays its cases
        profile = Profile(args.profile) if args.profile else loaded.profile or Profile.SEED

    Raises :class:`AdapterError`, with one line naming the file, for a file that cannot be read
    (the system's reason), is too large, is not UTF-8 (at which byte), nests deeper than
    :data:`MAX_DEPTH`, is not JSON, does not hold an object, records an unknown profile, or
    names no side there is, or holds a case that its side's ``case_from_json`` refuses (the
    field and what is allowed). A leading byte-order mark is skipped, as RFC 8259 permits.
    """
    name = repr(str(path))
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise AdapterError(f"cannot read replay file {name}: {error.strerror or error}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise AdapterError(
            f"replay file {name} is larger than {MAX_FILE_BYTES >> 20} MiB; a replay file is "
            "the few KiB a failing run writes"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise AdapterError(
            f"replay file {name} is not UTF-8: byte {raw[error.start]:#04x} at offset "
            f"{error.start} ({error.reason}); save it as UTF-8"
        ) from None
    text = text.removeprefix(_BOM)
    _check_depth(text, name)
    document = _loads(text, name)
    if not isinstance(document, dict):
        raise AdapterError(
            f"replay file {name} holds a JSON {_json_type(document)}, not an object; a replay "
            "file is the object a failing run writes"
        )
    try:
        side = side_of(document)
        profile = _profile(document, side)
        case = side.case_from_json(document)
    except CaseFormatError as error:
        raise AdapterError(f"replay file {name}: {error}") from None
    return CaseFile(case=case, side=side.name, profile=profile)


def _check_depth(text: str, name: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` before :func:`json.loads` recurses into it.

    Counting brackets outside strings finds the depth the decoder would reach: it parses
    strings the same way up to the first error, where it stops.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    for token in _TOKENS.finditer(text):
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, token.start()) + 1
                column = token.start() - text.rfind("\n", 0, token.start())
                raise AdapterError(
                    f"replay file {name} nests deeper than {MAX_DEPTH} levels (line {line}, "
                    f"column {column}); replay files nest five levels deep"
                )
        elif bracket in "]}":
            depth -= 1
        elif bracket == '"':
            return


class _DuplicateFieldError(Exception):
    """Internal: an object names one field twice."""


def _unique_fields(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """An object's fields; JSON leaves a repeated name's meaning open, so refuse one."""
    fields: dict[str, object] = {}
    for key, value in pairs:
        if key in fields:
            raise _DuplicateFieldError(key)
        fields[key] = value
    return fields


def _loads(text: str, name: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_unique_fields)
    except json.JSONDecodeError as error:
        raise AdapterError(
            f"replay file {name} is not JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}"
        ) from None
    except _DuplicateFieldError as error:
        raise AdapterError(
            f"replay file {name}: an object names the field {shown(error.args[0])} twice; "
            "give each field once"
        ) from None
    except ValueError:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        raise AdapterError(
            f"replay file {name} holds a number of more than {sys.get_int_max_str_digits()} "
            "digits; no field of a case needs more than 20"
        ) from None


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"


def _profile(document: dict[str, object], side: Side[Any, Any, Any, Any]) -> Profile | None:
    """The profile the file records; :class:`CaseFormatError` if it is none this tool has."""
    if "profile" not in document:
        return None
    recorded = document["profile"]
    names = [profile.value for profile in Profile]
    if recorded not in names:
        raise CaseFormatError(
            f"case.profile: unknown profile {shown(recorded)}; one of {', '.join(names)}"
        )
    profile = Profile(recorded)
    problem = side.profile_problem(profile)
    if problem is not None:
        raise CaseFormatError(f"case.profile: {profile.value!r} {problem}")
    return profile
