"""The messages of the wire protocol (docs/wire-protocol.md), shared by its client and server.

Each message is one JSON object on one line. This module turns lines into checked messages and
back, and the protocol's values (vmas, CPU entries, encodings, updates, range views) into their
JSON forms and back, so that the client (:mod:`conformance.core._wire`) and the Python server
(:mod:`conformance.core._wire_server`) cannot disagree about a field. The JSON Schemas in
``conformance/schemas/wire-v1-*.schema.json`` state the same forms for other languages; a test
keeps the two in step.

Protocol 1.1 adds one extension, ``observe-ahead``: a request may say which ranges the harness
will observe once it is answered (``observe.after``) and inside each ``sync`` call it causes
(``observe.in_sync``), and the candidate sends those views with its reply and with each such
call (``observed``), instead of one ``observe`` round trip per range. :class:`ObserveAhead` is
the request's field; :func:`observed_to_json` and :func:`observed_from_json` are one view, or
one refusal, of what the candidate sends.

A candidate that declares the ``fault`` capability also serves the ``fault`` request
(:data:`FAULT_REQUEST_FIELDS`: ``hmm_vma_fault``), and while it serves one it calls the harness's
fault handler back (:data:`FAULT_CALL_FIELDS`); to any other candidate these are unknown, as they
were before.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, final

from hmm_ref import PAGE_SIZE, Pte

from .._case import CaseFormatError
from .._case_json import pte_from_json, pte_to_json
from .._wire._messages import (
    MAX_LINE,
    WIRE_PROTOCOL_VERSION,
    Json,
    Message,
    WireFormatError,
    decode,
    encode,
    update_from_json,
    update_to_json,
    vmas_from_json,
    vmas_to_json,
)
from ._adapter import RangeView

__all__ = [
    "CALL_FIELDS",
    "FAULT_CALL_FIELDS",
    "FAULT_REQUEST_FIELDS",
    "MAX_LINE",
    "MINOR_VERSION",
    "OBSERVE_ERRORS",
    "REQUEST_FIELDS",
    "WIRE_PROTOCOL_VERSION",
    "Json",
    "Message",
    "ObserveAhead",
    "Observed",
    "WireExtension",
    "WireFormatError",
    "decode",
    "encode",
    "entries_from_json",
    "observed_from_json",
    "observed_to_json",
    "ptes_from_json",
    "ptes_to_json",
    "range_view_from_json",
    "range_view_to_json",
    "span_pages",
    "update_from_json",
    "update_to_json",
    "vmas_from_json",
    "vmas_to_json",
]

#: The minor version of the wire protocol this module speaks: 1.1, which adds
#: :class:`WireExtension`. A hello without ``minor`` speaks 1.0.
MINOR_VERSION: Final = 1


@final
class WireExtension(enum.Enum):
    """What a candidate of protocol 1.1 may offer in its hello's ``extensions``."""

    #: The candidate sends the views the harness will ask for with its reply and its ``sync``
    #: calls (:class:`ObserveAhead`).
    OBSERVE_AHEAD = "observe-ahead"


#: The kinds of error an observation may carry in ``observed``, as an ``observe`` reply would.
OBSERVE_ERRORS: Final = ("rejected", "crash")


@final
@dataclass(frozen=True, slots=True)
class ObserveAhead:
    """A request's ``observe`` field: the ranges to observe once it is handled (``after``, sent
    with the reply) and at each ``sync`` call it makes (``in_sync``, sent with the call)."""

    after: tuple[int, ...]
    in_sync: tuple[int, ...]

    def to_json(self) -> Json:
        return {"after": list(self.after), "in_sync": list(self.in_sync)}

    @classmethod
    def from_json(cls, message: Message) -> ObserveAhead:
        ahead = cls(after=_handles(message, "after"), in_sync=_handles(message, "in_sync"))
        message.finish()
        return ahead


def _handles(message: Message, key: str) -> tuple[int, ...]:
    handles = []
    for index, item in enumerate(message.array(key)):
        if not isinstance(item, int) or isinstance(item, bool) or item < 0:
            raise WireFormatError(f"{message.where}.{key}[{index}]: expected a range number")
        handles.append(item)
    return tuple(handles)


#: One observation the candidate sent: the view, or the kind and message of its refusal.
Observed = RangeView | tuple[str, str]


#: Each request's fields, besides ``type``, ``id`` and ``method``.
REQUEST_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "begin": ("vmas",),
    "register": ("mirror", "with_ops"),
    "unregister": ("mirror",),
    "snapshot": ("range", "vma", "start", "end", "encoding"),
    "observe": ("range",),
    "range_done": ("range",),
    "invalidate_start": ("start", "end", "blockable"),
    "invalidate_end": ("start", "end"),
    "release": (),
}

#: Each call's fields (a candidate calling back into the harness), besides the envelope.
CALL_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "sync": ("mirror", "update"),
    "release": ("mirror",),
    "read_ptes": ("start", "end"),
}

#: The request of a candidate that declares the ``fault`` capability: ``hmm_vma_fault`` of a new
#: range whose entries start as ``pfns`` (the requests, one a page), and ``block``.
FAULT_REQUEST_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "fault": ("range", "vma", "start", "end", "encoding", "pfns", "block"),
}

#: The calls such a candidate makes back while it serves a ``fault``: the CPU's fault handler
#: (answered with 0 or ``VM_FAULT_*`` bits) and the wait for a migration (answered with null).
FAULT_CALL_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "handle_mm_fault": ("addr", "write", "allow_retry", "nowait"),
    "migration_entry_wait": ("addr",),
}


# -- values --------------------------------------------------------------------------------


def ptes_to_json(ptes: Sequence[Pte]) -> list[Json]:
    return [pte_to_json(pte) for pte in ptes]


def ptes_from_json(items: Sequence[object], where: str, count: int) -> tuple[Pte, ...]:
    """``count`` CPU entries; :class:`WireFormatError` names the first bad one."""
    if len(items) != count:
        raise WireFormatError(f"{where}: {len(items)} entries for {count} pages")
    ptes = []
    for index, item in enumerate(items):
        entry = Message(item, f"{where}[{index}]")
        try:
            ptes.append(pte_from_json(entry))
        except ValueError as error:  # a pfn out of range, or a pfn on an entry without one
            if isinstance(error, CaseFormatError):
                raise
            raise WireFormatError(f"{where}[{index}]: {error}") from None
        entry.finish()
    return tuple(ptes)


def span_pages(start: int, end: int) -> int:
    """The pages of ``[start, end)``."""
    return (end - start) // PAGE_SIZE


def range_view_to_json(view: RangeView) -> Json:
    return {"registered": view.registered, "valid": view.valid, "entries": list(view.entries)}


def entries_from_json(items: Sequence[object], where: str) -> tuple[int, ...]:
    """Range entries (a view's, or a fault's requests): unsigned 64-bit integers;
    :class:`WireFormatError` names the first that is not one."""
    entries: list[int] = []
    for index, entry in enumerate(items):
        if not isinstance(entry, int) or isinstance(entry, bool) or not 0 <= entry < 2**64:
            raise WireFormatError(
                f"{where}[{index}]: expected an unsigned 64-bit integer, got {entry!r}"
            )
        entries.append(entry)
    return tuple(entries)


def range_view_from_json(message: Message) -> RangeView:
    entries = entries_from_json(message.array("entries"), f"{message.where}.entries")
    view = RangeView(
        registered=message.boolean("registered"),
        valid=message.boolean("valid"),
        entries=entries,
    )
    message.finish()
    return view


def observed_to_json(range_id: int, seen: Observed) -> Json:
    """One item of ``observed``: the range's number, then its view or its error."""
    if isinstance(seen, RangeView):
        return {"range": range_id, **range_view_to_json(seen)}
    kind, text = seen
    return {"range": range_id, "error": {"kind": kind, "message": text}}


def observed_from_json(
    items: Sequence[object], where: str, ranges: Sequence[int]
) -> list[Observed]:
    """The ``observed`` of ``ranges``, one item each in their order; :class:`WireFormatError`
    names the first item that is missing, of another range, or malformed."""
    if len(items) != len(ranges):
        raise WireFormatError(
            f"{where}: {len(items)} observations for the {len(ranges)} ranges asked for "
            f"({', '.join(f'r{r}' for r in ranges) or 'none'})"
        )
    seen: list[Observed] = []
    for index, (item, wanted) in enumerate(zip(items, ranges, strict=True)):
        message = Message(item, f"{where}[{index}]")
        got = message.integer("range")
        if got != wanted:
            raise WireFormatError(f"{message.where}.range: r{got}, where r{wanted} was asked for")
        if "error" not in message.data:
            seen.append(range_view_from_json(message))
            continue
        error = message.obj("error")
        kind, text = error.string("kind"), error.string("message")
        error.finish()
        message.finish()
        if kind not in OBSERVE_ERRORS:
            raise WireFormatError(f"{error.where}.kind: {kind!r} is not rejected or crash")
        seen.append((kind, text))
    return seen
