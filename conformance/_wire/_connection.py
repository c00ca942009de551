"""The server half of the wire, shared by every side's Python server.

A server reads the harness's messages from one binary stream and writes its own to another
(standard input and output under ``hmm-conformance serve``); :class:`Connection` is that pair,
with the call ids the server uses, and :class:`HarnessGone` is the harness leaving.
:func:`serve_connection` is the conversation around a side's requests: the hello, the requests
one at a time until bye, and the exit status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Final, final

from .._case import CaseFormatError
from ._messages import WIRE_PROTOCOL_VERSION, Json, Message, WireFormatError, decode, encode

__all__ = ["EXIT_HARNESS_ERROR", "Connection", "HarnessGone", "serve_connection"]

#: The exit status when the harness breaks the protocol (the message goes to stderr).
EXIT_HARNESS_ERROR: Final = 2


class HarnessGone(Exception):  # noqa: N818 - the other side left, not a fault of ours
    """The harness closed the connection or said bye while a call was waiting."""


@final
class Connection:
    """Lines in, lines out; the call ids this side uses."""

    def __init__(self, source: IO[bytes], sink: IO[bytes]) -> None:
        self._source = source
        self._sink = sink
        self._calls = 0

    def send(self, message: Json) -> None:
        self._sink.write(encode(message))
        self._sink.flush()

    def receive(self) -> Message:
        line = self._source.readline()
        if not line:
            raise HarnessGone("the harness closed the connection")
        return decode(line, "message")

    def next_call(self) -> int:
        self._calls += 1
        return self._calls


def serve_connection(
    connection: Connection,
    side: str,
    hello: Json,
    serve_request: Callable[[Message], None],
    errors: IO[str],
) -> int:
    """Read the harness's hello (for ``side``), answer ``hello``, then serve requests until bye
    or the end of input (0); 2, with the reason written to ``errors``, when the harness breaks
    the protocol."""
    try:
        message = connection.receive()
        if message.string("type") != "hello":
            raise WireFormatError(f"expected the harness's hello, got {message.data}")
        protocol = message.integer("protocol")
        if protocol != WIRE_PROTOCOL_VERSION:
            raise WireFormatError(
                f"the harness speaks wire protocol {protocol}; this server speaks "
                f"{WIRE_PROTOCOL_VERSION}"
            )
        speaks = message.data.get("side", "core")
        if speaks != side:
            raise WireFormatError(
                f"the harness speaks for the {speaks} side; this server serves the {side} "
                f"side: run the harness with --side {side}"
            )
        connection.send({"type": "hello", "protocol": WIRE_PROTOCOL_VERSION, **hello})
        while True:
            message = connection.receive()
            kind = message.string("type")
            if kind == "bye":
                connection.send({"type": "bye"})
                return 0
            if kind != "request":
                raise WireFormatError(f"expected a request or bye, got {message.data}")
            serve_request(message)
    except HarnessGone:
        return 0
    except CaseFormatError as error:
        errors.write(f"hmm-conformance serve: the harness broke the wire protocol: {error}\n")
        return EXIT_HARNESS_ERROR
