"""The messages of the wire protocol (docs/wire-protocol.md), shared by its client and server.

Each message is one JSON object on one line. This module turns lines into checked messages and
back, and the protocol's values (vmas, CPU entries, encodings, updates, range views) into their
JSON forms and back, so that the client (:mod:`conformance.core._wire`) and the Python server
(:mod:`conformance.core._wire_server`) cannot disagree about a field. The JSON Schemas in
``conformance/schemas/wire-v1-*.schema.json`` state the same forms for other languages; a test
keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

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
    "MAX_LINE",
    "REQUEST_FIELDS",
    "WIRE_PROTOCOL_VERSION",
    "Json",
    "Message",
    "WireFormatError",
    "decode",
    "encode",
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


def range_view_from_json(message: Message) -> RangeView:
    entries: list[int] = []
    for index, entry in enumerate(message.array("entries")):
        if not isinstance(entry, int) or isinstance(entry, bool) or not 0 <= entry < 2**64:
            raise WireFormatError(
                f"{message.where}.entries[{index}]: expected an unsigned 64-bit integer, "
                f"got {entry!r}"
            )
        entries.append(entry)
    view = RangeView(
        registered=message.boolean("registered"),
        valid=message.boolean("valid"),
        entries=tuple(entries),
    )
    message.finish()
    return view
