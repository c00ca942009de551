"""A wire-protocol server for any in-process candidate: ``hmm-conformance serve``.

It reads the harness's messages from a binary input stream and writes its own to a binary
output stream (standard input and output when run as ``hmm-conformance serve``), and turns each
request into a call of a :class:`conformance.Candidate`. The candidate's mirror callbacks and its
reads of the CPU page table become calls back to the harness; while one waits for its answer,
the harness may send nested ``observe`` requests, which are served at once.

It speaks protocol 1.1 and offers ``observe-ahead``: a request that carries ``observe`` gets
the views it names with its reply (``after``) and with each ``sync`` call it makes
(``in_sync``); a harness that does not ask is served as in 1.0.

A candidate that declares the ``fault`` capability is also served the ``fault`` request (its
``Faults.fault``), and its calls into the CPU's fault handling (``handle_mm_fault``,
``migration_entry_wait``) become calls back to the harness as its page-table reads do. For any
other candidate ``fault`` is an unknown method, as it always was.

It is a complete, small server of docs/wire-protocol.md: one to read before writing your own, to
compare yours against, and to measure the protocol's cost (``--adapter 'exec:hmm-conformance
serve'`` is the reference over a pipe).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Final, cast, final

from hmm_ref import PAGE_SIZE, HmmUpdate, Pte

from .._case import CaseFormatError, VmaSpec
from .._case_json import encoding_from_json
from .._wire._connection import Connection, HarnessGone, serve_connection
from ._adapter import (
    Candidate,
    CandidateRejected,
    CandidateWouldHang,
    Capability,
    Faults,
    Handshake,
)
from ._wire_messages import (
    FAULT_REQUEST_FIELDS,
    MINOR_VERSION,
    REQUEST_FIELDS,
    Json,
    Message,
    ObserveAhead,
    Observed,
    WireExtension,
    WireFormatError,
    entries_from_json,
    observed_to_json,
    ptes_from_json,
    range_view_to_json,
    span_pages,
    update_to_json,
    vmas_from_json,
)

__all__ = ["HarnessGone", "serve"]


@final
class _Server:
    """One connection's state: the candidate, the case's vmas, and the mirrors' ops."""

    def __init__(self, candidate: Candidate, connection: Connection) -> None:
        self.candidate = candidate
        self.connection = connection
        self.vmas: tuple[VmaSpec, ...] = ()
        #: The requests it serves: ``fault`` too once the candidate declared it.
        self.requests: Mapping[str, tuple[str, ...]] = REQUEST_FIELDS
        #: The ranges the request in progress wants seen with each sync call (observe-ahead).
        self.in_sync: tuple[int, ...] = ()

    # -- calls back to the harness --------------------------------------------------------

    def call(self, method: str, **fields: object) -> Message:
        """Call the harness and serve its nested requests until the answer comes."""
        number = self.connection.next_call()
        self.connection.send({"type": "call", "id": number, "method": method, **fields})
        while True:
            message = self.connection.receive()
            kind = message.string("type")
            if kind == "request":
                self.serve_request(message)
                continue
            if kind == "bye":
                raise HarnessGone("the harness said bye while a call was waiting")
            if kind != "answer" or message.integer("id") != number:
                raise WireFormatError(f"expected the answer to call {number}, got {message.data}")
            return message

    # -- requests -------------------------------------------------------------------------

    def serve_request(self, message: Message) -> None:
        number = message.integer("id")
        method = message.string("method")
        if method not in self.requests:
            raise WireFormatError(f"unknown request method {method!r}")
        ahead = None
        if "observe" in message.data:
            ahead = ObserveAhead.from_json(message.obj("observe"))
        outer, self.in_sync = self.in_sync, ahead.in_sync if ahead else ()
        reply: Json = {"type": "reply", "id": number}
        try:
            reply["result"] = self._dispatch(method, message)
        except CandidateRejected as error:
            reply["error"] = {"kind": "rejected", "message": str(error)}
        except CandidateWouldHang as error:
            reply["error"] = {"kind": "would-hang", "message": str(error)}
        except (HarnessGone, CaseFormatError):
            raise
        except Exception:
            reply["error"] = {"kind": "crash", "message": traceback.format_exc()}
        finally:
            self.in_sync = outer
        if ahead and ahead.after and reply.get("error", {}).get("kind") != "crash":
            reply["observed"] = self.observed(ahead.after)
        self.connection.send(reply)

    def observed(self, ranges: Sequence[int]) -> list[Json]:
        """What ``observe`` says of each of ``ranges`` now, as observe-ahead sends it."""
        items = []
        for range_id in ranges:
            seen: Observed
            try:
                seen = self.candidate.observe(range_id)
            except CandidateRejected as error:
                seen = ("rejected", str(error))
            except (HarnessGone, CaseFormatError):
                raise  # the harness left, or broke the protocol, while observe called it
            except Exception:
                seen = ("crash", traceback.format_exc())
            items.append(observed_to_json(range_id, seen))
        return items

    def _dispatch(self, method: str, message: Message) -> object:
        result = _HANDLERS[method](self, message)
        message.finish()
        return result

    def begin(self, message: Message) -> None:
        self.vmas = vmas_from_json(message)
        self.candidate.begin(_RemoteCpu(self))

    def register(self, message: Message) -> int:
        mirror = message.integer("mirror")
        ops = _RemoteMirror(self, mirror) if message.boolean("with_ops") else None
        return self.candidate.register(mirror, ops)

    def snapshot(self, message: Message) -> int:
        return self.candidate.snapshot(
            message.integer("range"),
            message.integer("vma"),
            message.integer("start"),
            message.integer("end"),
            encoding_from_json(message.obj("encoding")),
        )

    def fault(self, message: Message) -> int:
        start, end = message.integer("start"), message.integer("end")
        pfns = entries_from_json(message.array("pfns"), f"{message.where}.pfns")
        if len(pfns) != span_pages(start, end):
            raise WireFormatError(
                f"{message.where}.pfns: {len(pfns)} entries for [{start:#x}, {end:#x}), "
                f"which has {span_pages(start, end)} pages"
            )
        return cast("Faults", self.candidate).fault(  # it declared the fault capability
            message.integer("range"),
            message.integer("vma"),
            start,
            end,
            encoding_from_json(message.obj("encoding")),
            pfns=pfns,
            block=message.boolean("block"),
        )


#: One handler per request method: read the fields, call the candidate, return the result.
_HANDLERS: Final[Mapping[str, Callable[[_Server, Message], object]]] = {
    "begin": _Server.begin,
    "register": _Server.register,
    "unregister": lambda s, m: s.candidate.unregister(m.integer("mirror")),
    "snapshot": _Server.snapshot,
    "fault": _Server.fault,
    "observe": lambda s, m: range_view_to_json(s.candidate.observe(m.integer("range"))),
    "range_done": lambda s, m: s.candidate.range_done(m.integer("range")),
    "invalidate_start": lambda s, m: s.candidate.invalidate_start(
        m.integer("start"), m.integer("end"), m.boolean("blockable")
    ),
    "invalidate_end": lambda s, m: s.candidate.invalidate_end(m.integer("start"), m.integer("end")),
    "release": lambda s, m: s.candidate.release(),
}


@final
class _RemoteMirror:
    """A mirror's ops whose calls go to the harness."""

    def __init__(self, server: _Server, mirror: int) -> None:
        self._server = server
        self._mirror = mirror

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        server = self._server
        seen = {"observed": server.observed(server.in_sync)} if server.in_sync else {}
        answer = server.call("sync", mirror=self._mirror, update=update_to_json(update), **seen)
        result = answer.integer("result")
        answer.finish()
        return result

    def release(self) -> None:
        answer = self._server.call("release", mirror=self._mirror)
        answer.null("result")
        answer.finish()


@final
class _RemoteCpu:
    """The CPU side of the case, read from the harness one page at a time, and its fault
    handling, which the harness does."""

    def __init__(self, server: _Server) -> None:
        self._server = server

    @property
    def vmas(self) -> Sequence[VmaSpec]:
        return self._server.vmas

    def pte(self, addr: int) -> Pte:
        start = addr - addr % PAGE_SIZE
        answer = self._server.call("read_ptes", start=start, end=start + PAGE_SIZE)
        (pte,) = ptes_from_json(
            answer.array("result"), "answer.result", span_pages(start, start + PAGE_SIZE)
        )
        answer.finish()
        return pte

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> int:
        answer = self._server.call(
            "handle_mm_fault", addr=addr, write=write, allow_retry=allow_retry, nowait=nowait
        )
        result = answer.integer("result")
        answer.finish()
        return result

    def migration_entry_wait(self, addr: int) -> None:
        answer = self._server.call("migration_entry_wait", addr=addr)
        answer.null("result")
        answer.finish()


def serve(candidate: Candidate, source: IO[bytes], sink: IO[bytes], errors: IO[str]) -> int:
    """Serve ``candidate`` until bye or the end of ``source``; the exit status.

    0 after bye or at the end of input; 2, with the reason written to ``errors``, when the
    harness breaks the protocol.
    """
    connection = Connection(source, sink)
    server = _Server(candidate, connection)
    try:
        handshake: Handshake = candidate.handshake()
        if Capability.FAULT in handshake.capabilities:
            server.requests = {**REQUEST_FIELDS, **FAULT_REQUEST_FIELDS}
        hello = {
            "name": handshake.name,
            "version": handshake.version,
            "capabilities": sorted(c.value for c in handshake.capabilities),
            "minor": MINOR_VERSION,
            "extensions": [WireExtension.OBSERVE_AHEAD.value],
        }
        return serve_connection(connection, "core", hello, server.serve_request, errors)
    finally:
        candidate.close()


def serve_stdio(candidate: Candidate) -> int:
    """:func:`serve` on this process's standard streams."""
    return serve(candidate, sys.stdin.buffer, sys.stdout.buffer, sys.stderr)
