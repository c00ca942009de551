"""A wire-protocol server for any in-process driver: ``hmm-conformance serve --side driver``.

It turns each request of the driver side's wire protocol (docs/wire-protocol.md, "The driver
side") into a call of a :class:`DriverCandidate`, and what the driver asks of the kernel into
calls back to the harness, which owns HMM and the locks:

- The driver's env is local: an mm with the case's vmas (a driver reads no CPU entry; it learns
  them from snapshots), a mirror registered after ``begin`` and unlinked by HMM's release before
  the driver's ``release`` runs, as the harness's is. Its ``hmm_vma_get_pfns`` and
  ``hmm_vma_range_done`` are calls to the harness, on a range number the server gives each of
  the driver's :class:`hmm_ref.HmmRange`.
- Its locks are ``hmm_ref``'s, made on a local monitor whose listener forwards every lock call
  and sleep point to the harness as a ``lock`` call. The harness's locks decide: the server
  checks that its own agree, and an error answer (a blocking call on a held lock) abandons the
  request, which is replied to with that error, as the protocol asks.

Like the core side's server (:mod:`conformance.core._wire_server`), it is a complete, small
server to read before writing one in another language, and the way to measure the protocol's
cost (``--side driver --adapter 'exec:hmm-conformance serve --side driver'``).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Mapping
from typing import IO, Final, final

from hmm_ref import (
    FaultStep,
    HmmMirror,
    HmmRange,
    HmmUpdate,
    LockEvent,
    LockOutcome,
    MmStruct,
    PfnEncoding,
    SleepMonitor,
    hmm_mirror_register,
    mmu_notifier_release,
)

from .._case import CaseFormatError
from .._case_json import encoding_from_json
from .._wire._connection import Connection, HarnessGone, serve_connection
from .._wire._messages import Json, Message, WireFormatError, update_from_json, vmas_from_json
from ._adapter import DriverCandidate, DriverEnv, DriverHandshake
from ._wire import DRIVER_REQUEST_FIELDS

__all__ = ["serve_driver", "serve_driver_stdio"]


class _Refused(Exception):  # noqa: N818 - the harness's answer, passed back as the reply
    """The harness answered a call with an error: the request is abandoned with it."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _DivergedError(Exception):
    """The harness's lock answered otherwise than the server's own copy of it."""


@final
class _Release:
    """The mirror ops of the server's local mirror: HMM's release reaches the driver."""

    def __init__(self, candidate: DriverCandidate) -> None:
        self._candidate = candidate

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        raise AssertionError("the local mm is never invalidated: updates come as sync requests")

    def release(self) -> None:
        self._candidate.release()


@final
class _DriverServer:
    """One connection's state: the driver, and the local env of the case in progress."""

    def __init__(self, candidate: DriverCandidate, connection: Connection) -> None:
        self.candidate = candidate
        self.connection = connection
        self.mm = MmStruct(pid=4242, comm="device-user")
        self.ranges: dict[int, tuple[int, HmmRange]] = {}
        self.refused: _Refused | None = None

    # -- calls back to the harness --------------------------------------------------------

    def call(self, method: str, **fields: object) -> Message:
        """Call the harness and wait for its answer; :class:`_Refused` if it is an error.

        A driver that goes on after an error answer is relayed as it is: the harness judges it.
        """
        number = self.connection.next_call()
        self.connection.send({"type": "call", "id": number, "method": method, **fields})
        message = self.connection.receive()
        kind = message.string("type")
        if kind == "bye":
            raise HarnessGone("the harness said bye while a call was waiting")
        if kind != "answer" or message.integer("id") != number:
            raise WireFormatError(f"expected the answer to call {number}, got {message.data}")
        if "error" in message.data:
            error = message.obj("error")
            self.refused = _Refused(error.string("kind"), error.string("message"))
            error.finish()
            message.finish()
            raise self.refused
        return message

    def forward(self, event: LockEvent) -> None:
        """The local monitor's listener: the harness performs the same call on its lock."""
        try:
            answer = self.call(
                "lock", primitive=event.primitive, lock=event.target, owner=event.owner
            )
        except _Refused as refused:
            if event.outcome is LockOutcome.WOULD_BLOCK and refused.kind == "would-block":
                return  # the local lock raises WouldBlockError next; the reply echoes this
            raise
        result = answer.value("result")
        answer.finish()
        expected: object = None
        if event.primitive.endswith("_trylock"):
            expected = event.outcome is LockOutcome.ACQUIRED
        if event.outcome is LockOutcome.WOULD_BLOCK or result != expected:
            raise _DivergedError(
                f"{event.primitive}({event.target}) by {event.owner!r}: the harness answered "
                f"{result!r}, where this server's own lock says {event.outcome.value}"
            )

    def number(self, range_: HmmRange) -> int:
        """The case's number for one of the driver's ranges (a new number for a new range)."""
        number, _ = self.ranges.setdefault(id(range_), (len(self.ranges), range_))
        return number

    def get_pfns(self, range_: HmmRange) -> int:
        answer = self.call(
            "get_pfns", range=self.number(range_), start=range_.start, end=range_.end
        )
        result = answer.obj("result")
        ret = result.integer("ret")
        pfns = result.array("pfns")
        result.finish()
        answer.finish()
        if ret == 0:
            values = [p for p in pfns if type(p) is int]
            if len(values) != len(pfns) or len(values) != range_.npages:
                raise WireFormatError(
                    f"answer.result.pfns: {len(pfns)} entries for {range_.npages} pages, "
                    "each an integer"
                )
            range_._pfns[:] = values  # HMM fills the caller's array
        return ret

    def range_done(self, range_: HmmRange) -> bool:
        answer = self.call("range_done", range=self.number(range_))
        valid = answer.boolean("result")
        answer.finish()
        return valid

    # -- requests -------------------------------------------------------------------------

    def serve_request(self, message: Message) -> None:
        number = message.integer("id")
        method = message.string("method")
        if method not in DRIVER_REQUEST_FIELDS:
            raise WireFormatError(f"unknown request method {method!r}")
        reply: Json = {"type": "reply", "id": number}
        if "ranges" in message.data:
            self.update_ranges(message)
        try:
            reply["result"] = _HANDLERS[method](self, message)
            message.finish()
        except (HarnessGone, CaseFormatError):
            raise
        except Exception:
            refused = self.refused
            if refused is not None:
                reply["error"] = {"kind": refused.kind, "message": refused.message}
            else:
                reply["error"] = {"kind": "crash", "message": traceback.format_exc()}
        self.refused = None  # the next request starts with no call refused
        self.connection.send(reply)

    def update_ranges(self, message: Message) -> None:
        """Copy the entries HMM wrote into the driver's ranges (an invalidation's range pass)."""
        by_number = dict(self.ranges.values())
        for index, item in enumerate(message.array("ranges")):
            news = Message(item, f"{message.where}.ranges[{index}]")
            number = news.integer("range")
            pfns = news.array("pfns")
            news.finish()
            range_ = by_number.get(number)
            values = [p for p in pfns if type(p) is int]
            if range_ is None or len(values) != len(pfns) or len(values) != range_.npages:
                raise WireFormatError(
                    f"{news.where}: range r{number} is not one of the driver's, or its pfns "
                    "are not one integer per page"
                )
            range_._pfns[:] = values  # HMM writes into the driver's array

    def begin(self, message: Message) -> None:
        vmas = vmas_from_json(message)
        encoding: PfnEncoding = encoding_from_json(message.obj("encoding"))
        self.mm = MmStruct(pid=4242, comm="device-user")
        for vma in vmas:
            self.mm.mmap(vma.start, vma.end, read=vma.read, write=vma.write, special=vma.special)
        self.ranges = {}
        mirror = HmmMirror(_Release(self.candidate))
        env = DriverEnv(
            mm=self.mm,
            monitor=SleepMonitor(listener=self.forward),
            encoding=encoding,
            mirror=mirror,
            on_call=lambda kind, range_, result: None,
            get_pfns=self.get_pfns,
            range_done=self.range_done,
        )
        self.candidate.begin(env)
        hmm_mirror_register(mirror, self.mm)

    def fault_view(self, message: Message) -> Json:
        view = self.candidate.fault_view(message.integer("fault"))
        step: FaultStep | None = view.next_step
        return {"next_step": None if step is None else step.value, "result": view.result}

    def device_page_table(self, message: Message) -> list[Json]:
        table = self.candidate.device_page_table()
        return [
            {"addr": addr, "pfn": entry.pfn, "write": entry.write}
            for addr, entry in sorted(table.items())
        ]


#: One handler per request method: read the fields, call the driver, return the result.
_HANDLERS: Final[Mapping[str, Callable[[_DriverServer, Message], object]]] = {
    "begin": _DriverServer.begin,
    "sync": lambda s, m: s.candidate.sync_cpu_device_pagetables(update_from_json(m.obj("update"))),
    "release": lambda s, m: mmu_notifier_release(s.mm),
    "start_fault": lambda s, m: s.candidate.start_fault(
        m.integer("fault"), m.integer("start"), m.integer("end")
    ),
    "step_fault": lambda s, m: s.candidate.step_fault(m.integer("fault")).value,
    "fault_view": _DriverServer.fault_view,
    "fault_would_block": lambda s, m: s.candidate.fault_would_block(m.integer("fault")),
    "invalidation_would_block": lambda s, m: s.candidate.invalidation_would_block(
        m.boolean("blockable")
    ),
    "release_would_block": lambda s, m: s.candidate.release_would_block(),
    "device_page_table": _DriverServer.device_page_table,
}


def serve_driver(
    candidate: DriverCandidate,
    handshake: DriverHandshake,
    source: IO[bytes],
    sink: IO[bytes],
    errors: IO[str],
) -> int:
    """Serve ``candidate`` until bye or the end of ``source``; the exit status.

    0 after bye or at the end of input; 2, with the reason written to ``errors``, when the
    harness breaks the protocol.
    """
    connection = Connection(source, sink)
    server = _DriverServer(candidate, connection)
    hello = {
        "name": handshake.name,
        "version": handshake.version,
        "lock": handshake.lock,
        "capabilities": sorted(c.value for c in handshake.capabilities),
    }
    try:
        return serve_connection(connection, "driver", hello, server.serve_request, errors)
    finally:
        candidate.close()


def serve_driver_stdio(candidate: DriverCandidate, handshake: DriverHandshake) -> int:
    """:func:`serve_driver` on this process's standard streams."""
    return serve_driver(candidate, handshake, sys.stdin.buffer, sys.stdout.buffer, sys.stderr)
