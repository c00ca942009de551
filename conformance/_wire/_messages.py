"""The wire protocol's envelope, shared by every side: lines, messages, their fields.

Each message is one JSON object on one line. :func:`decode` turns a line into a
:class:`Message` whose fields are read with checks and which refuses, at :meth:`Message.finish`,
any field nobody read; :func:`encode` writes one. What the fields of each side's requests and
calls are is the side's (``conformance.core._wire_messages``, ``conformance.driver._wire``);
the values both sides send (vmas, updates) are here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final, TypeAlias

from hmm_ref import HmmUpdate

from .._case import CaseFormatError, VmaSpec
from .._case_json import Reader
from ._process import MAX_LINE

__all__ = [
    "MAX_LINE",
    "MINOR_VERSION",
    "WIRE_PROTOCOL_VERSION",
    "Json",
    "Message",
    "WireFormatError",
    "decode",
    "encode",
    "update_from_json",
    "update_to_json",
    "vmas_from_json",
    "vmas_to_json",
]

Json: TypeAlias = dict[str, Any]

#: The version of the wire protocol this module speaks.
WIRE_PROTOCOL_VERSION: Final = 1
#: Its minor version: 1.1 lets a candidate's hello say ``minor`` and offer ``extensions``, which
#: the harness then uses or not (a side says which it knows). A hello without ``minor`` is 1.0.
MINOR_VERSION: Final = 1


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

    def value(self, key: str) -> object:
        """A field of any type, which the caller checks."""
        return self._get(key)

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


# -- values both sides send ------------------------------------------------------------


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
