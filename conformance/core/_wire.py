"""The wire adapter: a candidate in a child process, spoken to in JSON lines.

The protocol is docs/wire-protocol.md.

``--adapter exec:PROGRAM [ARGS...]`` makes a :class:`WireCandidate`. It starts the program with
its argument list (no shell), a minimal environment and a process group of its own, says hello,
and then turns each call of the adapter protocol into a request, answering the candidate's calls
back (mirror callbacks, reads of the CPU page table) until the reply comes.

The harness must never hang or crash because of a candidate (all of which the shared client,
:class:`conformance._wire._client.WireClient`, does), so every read and write is bounded
by the step's time budget, the candidate's standard error is drained as it comes (its last
4 KiB are kept for the crash report), and every way a child can go wrong is one of three faults
(:class:`CandidateHung`, :class:`CandidateCrashed`, :class:`CandidateProtocolError`), which the
executor reports as HANG, CRASH and PROTOCOL verdicts. After a fault the candidate is killed
with everything it started (:func:`conformance._isolation.kill_tree`: its process group, its
descendants, whatever still holds its pipes); the next case starts a fresh process, so
Hypothesis goes on shrinking.

:mod:`conformance._connect` turns an adapter spec into a factory; this module is how the core
side speaks to a program (:func:`exec_factory`).

A candidate of protocol 1.1 may offer ``observe-ahead``. The executor then says before each
step which ranges it will observe (:meth:`WireCandidate.expect_observes`); the step's request
carries that, and the candidate sends the views with its reply and its ``sync`` calls, which
:meth:`WireCandidate.observe` hands out without a round trip each. The views are the ones an
``observe`` request would have got at that moment, so the verdicts are the same either way.

A candidate that declares the ``fault`` capability gets :meth:`WireCandidate.fault` as a
``fault`` request, and calls the harness's fault handler back while it serves one
(``handle_mm_fault`` and ``migration_entry_wait``, answered by the case's :class:`CpuView`).
To a candidate that does not, those calls are unknown, as they always were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NoReturn, final

from hmm_ref import PAGE_SIZE, HmmMirrorOps, PfnEncoding

from .._case import CaseFormatError
from .._case_json import encoding_to_json
from .._wire._client import WireClient
from ._adapter import (
    PROTOCOL_VERSION,
    CandidateCrashed,
    CandidateRejected,
    CandidateWouldHang,
    Capability,
    CpuView,
    Handshake,
    RangeView,
)
from ._wire_messages import (
    CALL_FIELDS,
    FAULT_CALL_FIELDS,
    Json,
    Message,
    ObserveAhead,
    Observed,
    WireExtension,
    observed_from_json,
    ptes_to_json,
    range_view_from_json,
    update_from_json,
    vmas_to_json,
)

__all__ = ["WireCandidate", "exec_factory"]


@final
class WireCandidate(WireClient):
    """A candidate in a child process; see the module docstring and docs/wire-protocol.md."""

    IN_STEP = (CandidateRejected, CandidateWouldHang)

    def _reset(self) -> None:
        self._handshake: Handshake | None = None
        self._offered: frozenset[WireExtension] = frozenset()
        self._cpu: CpuView | None = None
        self._mirrors: dict[int, HmmMirrorOps] = {}
        #: What the executor will observe in the next step, for its request to carry.
        self._pending: ObserveAhead | None = None
        #: What the outermost request in progress asked to be sent ahead.
        self._asked: ObserveAhead | None = None
        #: The views sent ahead and not yet handed out, by range.
        self._seen: dict[int, Observed] = {}

    def _spawn(self) -> tuple[Handshake, frozenset[WireExtension]]:
        line, message = self._hello()
        try:
            handshake = Handshake(
                protocol_version=PROTOCOL_VERSION,
                name=message.string("name"),
                version=message.string("version"),
                capabilities=self._capabilities(line, message, Capability),
            )
            offered = self._extensions(line, message, WireExtension)
            message.finish()
        except CaseFormatError as error:
            self._protocol(line, str(error))
        return handshake, offered

    # -- observe-ahead ----------------------------------------------------------------------

    def observes_ahead(self) -> bool:
        """Whether the candidate sends the views the executor will ask for (protocol 1.1)."""
        return WireExtension.OBSERVE_AHEAD in self._offered

    def expect_observes(self, after: Sequence[int], in_sync: Sequence[int]) -> None:
        """The next step will observe ``after`` once its call returns, and ``in_sync`` inside
        each ``sync`` call it makes: its request asks for those views to come with it."""
        self._seen = {}
        self._pending = ObserveAhead(tuple(after), tuple(in_sync)) if after or in_sync else None

    def _news(self) -> Json:
        news = super()._news()
        if self._depth == 1:  # a nested request asks nothing: the outermost one asked already
            self._asked, self._pending, self._seen = self._pending, None, {}
            if self._asked is not None:
                news["observe"] = self._asked.to_json()
        return news

    def _keep(self, line: bytes, message: Message, ranges: Sequence[int], what: str) -> None:
        """Keep the views ``message`` carries of ``ranges`` (``what`` it is) for the observes
        to come; PROTOCOL if it carries none, others, or some it was not asked for."""
        if not ranges:
            if "observed" in message.data:
                self._protocol(line, f"observed in {what}, where no views were asked for")
            return
        asked = ", ".join(f"r{r}" for r in ranges)
        if "observed" not in message.data:
            self._protocol(line, f"no observed in {what}, where the views of {asked} were asked")
        items = message.array("observed")
        del message.data["observed"]  # read: the result's own checks see the reply as in 1.0
        self._seen = dict(
            zip(ranges, observed_from_json(items, "message.observed", ranges), strict=True)
        )

    def _on_reply(self, line: bytes, message: Message) -> None:
        if self._depth == 1:
            self._keep(line, message, self._asked.after if self._asked else (), "the reply")

    def _raise_refusal(self, line: bytes, message: Message) -> NoReturn:
        error = message.data.get("error")
        if isinstance(error, dict) and error.get("kind") == "crash":
            message.data.pop("observed", None)  # the step ends here: nobody looks at them
        elif self._depth == 1:
            self._keep(line, message, self._asked.after if self._asked else (), "the reply")
        super()._raise_refusal(line, message)

    def _handed_out(self, seen: Observed) -> RangeView:
        """A view sent ahead, or what its refusal means, as an ``observe`` reply's would."""
        if isinstance(seen, RangeView):
            return seen
        kind, text = seen
        if kind == "crash":
            self._fail(CandidateCrashed(f"observe: the candidate reported a crash: {text}"))
        raise CandidateRejected(text)

    def _refused_with(self, line: bytes, kind: str, text: str) -> NoReturn:
        if kind == "rejected":
            raise CandidateRejected(text)
        if kind == "would-hang":
            raise CandidateWouldHang(text)
        self._protocol(line, f"error.kind {kind!r} is not rejected, would-hang or crash")

    def _calls(self) -> Mapping[str, tuple[str, ...]]:
        """The calls this candidate may make: the fault handler's too if it declared ``fault``."""
        handshake = self._handshake
        if handshake is not None and Capability.FAULT in handshake.capabilities:
            return {**CALL_FIELDS, **FAULT_CALL_FIELDS}
        return CALL_FIELDS

    def _serve_call(self, line: bytes, message: Message) -> None:
        number = message.integer("id")
        method = message.string("method")
        calls = self._calls()
        if method not in calls:
            self._protocol(line, f"unknown call {method!r}; one of {', '.join(calls)}")
        result: object = None
        if method == "read_ptes":
            result = self._read_ptes(line, message)
        elif method in FAULT_CALL_FIELDS:
            result = self._cpu_fault(method, message)
        else:
            mirror = message.integer("mirror")
            ops = self._mirrors.get(mirror)
            if ops is None:
                self._protocol(line, f"a {method} call for mirror {mirror}, which has no ops")
            if method == "sync":
                update = update_from_json(message.obj("update"))
                in_sync = self._asked.in_sync if self._asked else ()
                self._keep(line, message, in_sync, "a sync call")
                message.finish()
                try:
                    result = ops.sync_cpu_device_pagetables(update)
                finally:
                    self._seen = {}  # seen in this call, for this call only
            else:
                message.finish()
                ops.release()
        self._send({"type": "answer", "id": number, "result": result})

    def _read_ptes(self, line: bytes, message: Message) -> list[Json]:
        start, end = message.integer("start"), message.integer("end")
        message.finish()
        cpu = self._cpu
        assert cpu is not None, "begin() comes first"
        inside = any(vma.start <= start < end <= vma.end for vma in cpu.vmas)
        if start % PAGE_SIZE or end % PAGE_SIZE or not inside:
            self._protocol(
                line, f"read_ptes [{start:#x}, {end:#x}) is not page aligned inside one vma"
            )
        return ptes_to_json([cpu.pte(addr) for addr in range(start, end, PAGE_SIZE)])

    def _cpu_fault(self, method: str, message: Message) -> int | None:
        """``handle_mm_fault`` or ``migration_entry_wait``, answered by the case's CPU view."""
        addr = message.address("addr")
        cpu = self._cpu
        assert cpu is not None, "begin() comes first"
        if method == "migration_entry_wait":
            message.finish()
            cpu.migration_entry_wait(addr)
            return None
        write, allow_retry = message.boolean("write"), message.boolean("allow_retry")
        nowait = message.boolean("nowait")
        message.finish()
        return cpu.handle_mm_fault(addr, write, allow_retry, nowait)

    # -- the adapter protocol ---------------------------------------------------------------

    def handshake(self) -> Handshake:
        if self._handshake is None:
            self._handshake, self._offered = self._spawn()
        return self._handshake

    def begin(self, cpu: CpuView) -> None:
        if self._process is None:
            self._restart(self._spawn(), (self._handshake, self._offered))
        self._pending, self._seen = None, {}
        self._cpu = cpu
        self._mirrors = {}
        self._null_result("begin", vmas=vmas_to_json(cpu.vmas))

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        if ops is not None:
            self._mirrors[mirror] = ops
        else:
            self._mirrors.pop(mirror, None)
        return self._int_result("register", mirror=mirror, with_ops=ops is not None)

    def unregister(self, mirror: int) -> None:
        self._null_result("unregister", mirror=mirror)

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        return self._int_result(
            "snapshot",
            range=range_id,
            vma=vma,
            start=start,
            end=end,
            encoding=encoding_to_json(encoding),
        )

    def fault(
        self,
        range_id: int,
        vma: int,
        start: int,
        end: int,
        encoding: PfnEncoding,
        *,
        pfns: Sequence[int],
        block: bool,
    ) -> int:
        """``hmm_vma_fault``, for a candidate that declared ``fault`` (the ``Faults`` protocol)."""
        return self._int_result(
            "fault",
            range=range_id,
            vma=vma,
            start=start,
            end=end,
            encoding=encoding_to_json(encoding),
            pfns=list(pfns),
            block=block,
        )

    def observe(self, range_id: int) -> RangeView:
        seen = self._seen.pop(range_id, None)
        if seen is not None:
            return self._handed_out(seen)
        line, message = self._request("observe", range=range_id)
        try:
            view = range_view_from_json(message.obj("result"))
            message.finish()
        except CaseFormatError as error:
            self._protocol(line, str(error))
        return view

    def range_done(self, range_id: int) -> bool:
        return self._bool_result("range_done", range=range_id)

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        return self._int_result("invalidate_start", start=start, end=end, blockable=blockable)

    def invalidate_end(self, start: int, end: int) -> None:
        self._null_result("invalidate_end", start=start, end=end)

    def release(self) -> None:
        self._null_result("release")


#: A factory of :class:`WireCandidate` for ``argv`` (see :meth:`WireClient.factory`).
exec_factory = WireCandidate.factory
