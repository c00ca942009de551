"""The messages of the wire protocol (docs/wire-protocol.md), shared by its client and server.

Each message is one JSON object on one line. This module turns lines into checked messages and
back, and the protocol's values (vmas, CPU entries, encodings, updates, range views) into their
JSON forms and back, so that the client (:mod:`conformance.core._wire`) and the Python server
(:mod:`conformance.core._wire_server`) cannot disagree about a field. The JSON Schemas in
``conformance/schemas/wire-v1-*.schema.json`` state the same forms for other languages; a test
keeps the two in step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias

from hmm_ref import PAGE_SIZE, HmmUpdate, Pte

from .._case import CaseFormatError, VmaSpec
from .._case_json import Reader, pte_from_json, pte_to_json
from .._wire._process import MAX_LINE
from ._adapter import RangeView

__all__ = [
    "CALL_FIELDS",
    "MAX_LINE",
    "REQUEST_FIELDS",
    "WIRE_PROTOCOL_VERSION",
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

Json: TypeAlias = dict[str, Any]

#: The version of the wire protocol this module speaks.
WIRE_PROTOCOL_VERSION: Final = 1

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


class WireFormatError(CaseFormatError):
    """A line does not fit the protocol; the message names the field.

    Field checks raise the :class:`CaseFormatError` they share with replay files; callers catch
    that base class.
    """


class Message(Reader):
    """Typed access to one message's fields that remembers which were read.

    :meth:`finish` then refuses any field nobody asked for, as the schemas'
    ``additionalProperties: false`` does.
    """

    def __init__(self, data: object, where: str) -> None:
        super().__init__(data, where)
        self._read: set[str] = set()

    def _get(self, key: str) -> object:
        self._read.add(key)
        return super()._get(key)

    def boolean(self, key: str, default: bool | None = None) -> bool:
        self._read.add(key)
        return super().boolean(key, default)

    def obj(self, key: str) -> Message:
        return Message(self._get(key), f"{self.where}.{key}")

    def null(self, key: str) -> None:
        """A field that must be present and ``null``."""
        value = self._get(key)
        if value is not None:
            raise WireFormatError(f"{self.where}.{key}: expected null, got {value!r}")

    def finish(self) -> None:
        """Refuse the fields that were never read."""
        extra = sorted(set(self.data) - self._read)
        if extra:
            raise WireFormatError(f"{self.where}: unknown field {extra[0]!r}")


def encode(message: Json) -> bytes:
    """One message as one line."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes, where: str) -> Message:
    """Parse one line into a message with a string ``type``; :class:`WireFormatError` if not."""
    try:
        data = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise WireFormatError(f"{where}: not UTF-8 ({error.reason})") from None
    except json.JSONDecodeError as error:
        raise WireFormatError(f"{where}: not JSON ({error.msg} at column {error.colno})") from None
    message = Message(data, where)
    message.string("type")
    return message


# -- values --------------------------------------------------------------------------------


def vmas_to_json(vmas: Sequence[VmaSpec]) -> list[Json]:
    return [
        {"start": v.start, "end": v.end, "read": v.read, "write": v.write, "special": v.special}
        for v in vmas
    ]


def vmas_from_json(message: Message) -> tuple[VmaSpec, ...]:
    vmas = []
    for index, item in enumerate(message.array("vmas")):
        vma = Message(item, f"{message.where}.vmas[{index}]")
        vmas.append(
            VmaSpec(
                start=vma.integer("start"),
                end=vma.integer("end"),
                read=vma.boolean("read"),
                write=vma.boolean("write"),
                special=vma.boolean("special"),
            )
        )
        vma.finish()
    return tuple(vmas)


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


def update_to_json(update: HmmUpdate) -> Json:
    return {
        "start": update.start,
        "end": update.end,
        "event": update.event.value,
        "blockable": update.blockable,
    }


def update_from_json(message: Message) -> HmmUpdate:
    event = message.string("event")
    if event != "invalidate":
        raise WireFormatError(f"{message.where}.event: {event!r} is not 'invalidate'")
    update = HmmUpdate(
        start=message.integer("start"),
        end=message.integer("end"),
        blockable=message.boolean("blockable"),
    )
    message.finish()
    return update


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
