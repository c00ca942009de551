"""The driver side's wire client: a mirror driver in a child process, spoken to in JSON lines.

docs/wire-protocol.md, "The driver side". ``--side driver --adapter exec:PROGRAM [ARGS...]``
makes a :class:`DriverWireCandidate`: each method of :class:`DriverCandidate` is a request, and
the driver's calls back are what a driver asks of the kernel around it. The harness keeps, as
it does in process, the mm, HMM (``hmm_ref``) and the state of the driver's locks: a
:class:`conformance.driver._host.DriverHost` performs each ``lock`` call on the harness's own
lock of that name and each ``get_pfns`` and ``range_done`` on a range it keeps by the driver's
number, and each request carries the entries HMM has written into those ranges since.

A call that cannot complete (a blocking primitive on a held lock, a misuse) is answered with an
error; the driver must abandon its request and reply with the same error, and the request then
raises the very exception the harness's lock or HMM raised, so the executor judges it exactly
as it judges an in-process driver that raised there. Isolation, time budgets and the
HANG/CRASH/PROTOCOL faults are :class:`conformance._wire._client.WireClient`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final, NoReturn, final

from hmm_ref import DeviceEntry, FaultStep, HmmError, HmmUpdate, WouldBlockError

from .._case import CaseFormatError, VmaSpec
from .._case_json import encoding_to_json
from .._wire._client import WireClient
from .._wire._messages import Json, Message, update_to_json, vmas_to_json
from ._adapter import (
    DRIVER_PROTOCOL_VERSION,
    DriverCapability,
    DriverEnv,
    DriverHandshake,
    FaultView,
)
from ._host import LOCK_PRIMITIVES, SLEEP_POINTS, DriverHost

__all__ = [
    "DRIVER_CALL_FIELDS",
    "DRIVER_REQUEST_FIELDS",
    "DriverWireCandidate",
    "driver_exec_factory",
]

#: Each request's fields, besides ``type``, ``id`` and ``method``.
DRIVER_REQUEST_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "begin": ("vmas", "encoding"),
    "sync": ("update",),
    "release": (),
    "start_fault": ("fault", "start", "end"),
    "step_fault": ("fault",),
    "fault_view": ("fault",),
    "fault_would_block": ("fault",),
    "invalidation_would_block": ("blockable",),
    "release_would_block": (),
    "device_page_table": (),
}

#: Each call's fields (the driver calling back into the harness), besides the envelope.
DRIVER_CALL_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "lock": ("primitive", "lock", "owner"),
    "get_pfns": ("range", "start", "end"),
    "range_done": ("range",),
}

_STEPS: Final = {step.value: step for step in FaultStep}


class _CallRefused(Exception):  # noqa: N818 - a refusal answered to the driver, not a fault
    """Internal: a call that cannot complete; ``kind`` is its error answer's kind."""

    def __init__(self, kind: str, error: HmmError) -> None:
        super().__init__(str(error))
        self.kind = kind
        self.error = error


@final
class DriverWireCandidate(WireClient):
    """A mirror driver in a child process; see the module docstring."""

    HELLO: ClassVar[Mapping[str, object]] = {"side": "driver"}
    IN_STEP = (HmmError,)

    def _reset(self) -> None:
        self._handshake: DriverHandshake | None = None
        self._host = DriverHost()
        self._refused: _CallRefused | None = None

    # -- hello and replies ------------------------------------------------------------------

    def _spawn(self) -> DriverHandshake:
        line, message = self._hello()
        if "lock" not in message.data:
            self._protocol(
                line,
                "its hello names no lock: a driver names its lock D; a core candidate runs "
                "with --side core",
            )
        try:
            handshake = DriverHandshake(
                protocol_version=DRIVER_PROTOCOL_VERSION,
                name=message.string("name"),
                version=message.string("version"),
                lock=message.string("lock"),
                capabilities=self._capabilities(line, message, DriverCapability),
            )
            message.finish()
        except CaseFormatError as error:
            self._protocol(line, str(error))
        return handshake

    def _refused_with(self, line: bytes, kind: str, text: str) -> NoReturn:
        if kind not in ("would-block", "usage"):
            self._protocol(line, f"error.kind {kind!r} is not would-block, usage or crash")
        refused, self._refused = self._refused, None
        if refused is None or refused.kind != kind:
            self._protocol(
                line,
                f"a {kind} error, but the harness answered none of its calls with one: a "
                "driver replies with would-block or usage only to echo the error of a call",
            )
        raise refused.error

    def _on_reply(self, line: bytes, message: Message) -> None:
        if self._refused is not None:
            self._protocol(
                line,
                f"a result after the harness answered a call with a {self._refused.kind} error: "
                "abandon the request and reply with that error",
            )

    def _news(self) -> Json:
        """The entries HMM wrote into the driver's ranges since it last saw them (see
        :meth:`DriverHost.news`): each request brings them to the driver's copy."""
        changed = self._host.news()
        if not changed:
            return {}
        return {"ranges": [{"range": n, "pfns": list(pfns)} for n, pfns in changed.items()]}

    # -- the driver's calls -----------------------------------------------------------------

    def _serve_call(self, line: bytes, message: Message) -> None:
        number = message.integer("id")
        method = message.string("method")
        if method not in DRIVER_CALL_FIELDS:
            self._protocol(line, f"unknown call {method!r}; one of {', '.join(DRIVER_CALL_FIELDS)}")
        if self._refused is not None:
            self._protocol(
                line,
                f"a {method} call after the harness answered a call with a "
                f"{self._refused.kind} error: abandon the request and reply with that error",
            )
        result: object
        try:
            if method == "lock":
                result = self._lock(line, message)
            elif method == "get_pfns":
                range_number = message.integer("range")
                start, end = message.integer("start"), message.integer("end")
                message.finish()
                ret, pfns = self._host.get_pfns(range_number, start, end)
                result = {"ret": ret, "pfns": list(pfns)}
            else:
                range_number = message.integer("range")
                message.finish()
                result = self._host.range_done(range_number)
        except WouldBlockError as error:
            self._refuse(number, _CallRefused("would-block", error))
            return
        except HmmError as error:
            self._refuse(number, _CallRefused("usage", error))
            return
        self._send({"type": "answer", "id": number, "result": result})

    def _refuse(self, number: int, refused: _CallRefused) -> None:
        """Answer a call with an error; the request must now end with the same one."""
        self._refused = refused
        error = {"kind": refused.kind, "message": str(refused)}
        self._send({"type": "answer", "id": number, "error": error})

    def _lock(self, line: bytes, message: Message) -> bool | None:
        primitive = message.string("primitive")
        name = message.string("lock")
        owner = message.string("owner")
        message.finish()
        if primitive in SLEEP_POINTS:
            self._host.sleep(primitive, name, owner)
            return None
        if primitive not in LOCK_PRIMITIVES:
            known = ", ".join((*LOCK_PRIMITIVES, *SLEEP_POINTS))
            self._protocol(line, f"lock primitive {primitive!r} is not one of {known}")
        return self._host.lock(primitive, name, owner)

    # -- the driver protocol ----------------------------------------------------------------

    @property
    def name(self) -> str:
        """The driver's name, as its hello gave it: how a non-block section is labelled."""
        return self._handshake.name if self._handshake is not None else self.program

    def handshake(self) -> DriverHandshake:
        if self._handshake is None:
            self._handshake = self._spawn()
        return self._handshake

    def begin(self, env: DriverEnv) -> None:
        if self._process is None:
            self._restart(self._spawn(), self._handshake)
        self._host.begin(env)
        self._refused = None
        vmas = [
            VmaSpec(start=v.start, end=v.end, read=v.read, write=v.write, special=v.special)
            for v in env.mm.vmas
        ]
        self._null_result("begin", vmas=vmas_to_json(vmas), encoding=encoding_to_json(env.encoding))

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        return self._int_result("sync", update=update_to_json(update))

    def release(self) -> None:
        self._null_result("release")

    def start_fault(self, fault: int, start: int, end: int) -> None:
        self._null_result("start_fault", fault=fault, start=start, end=end)

    def step_fault(self, fault: int) -> FaultStep:
        line, message = self._request("step_fault", fault=fault)
        try:
            step = message.string("result")
            message.finish()
        except CaseFormatError as error:
            self._protocol(line, str(error))
        if step not in _STEPS:
            self._protocol(line, f"step {step!r} is not one of {', '.join(_STEPS)}")
        return _STEPS[step]

    def fault_view(self, fault: int) -> FaultView:
        line, message = self._request("fault_view", fault=fault)
        try:
            view = message.obj("result")
            step = view.data.get("next_step")
            result = view.data.get("result")
            view.null("next_step") if step is None else view.string("next_step")
            view.null("result") if result is None else view.integer("result")
            view.finish()
            message.finish()
        except CaseFormatError as error:
            self._protocol(line, str(error))
        if step is not None and step not in _STEPS:
            self._protocol(line, f"next_step {step!r} is not one of {', '.join(_STEPS)} or null")
        return FaultView(
            next_step=None if step is None else _STEPS[str(step)],
            result=result if isinstance(result, int) else None,
        )

    def fault_would_block(self, fault: int) -> bool:
        return self._bool_result("fault_would_block", fault=fault)

    def invalidation_would_block(self, blockable: bool) -> bool:
        return self._bool_result("invalidation_would_block", blockable=blockable)

    def release_would_block(self) -> bool:
        return self._bool_result("release_would_block")

    def device_page_table(self) -> Mapping[int, DeviceEntry]:
        line, message = self._request("device_page_table")
        table: dict[int, DeviceEntry] = {}
        try:
            for index, item in enumerate(message.array("result")):
                entry = Message(item, f"result[{index}]")
                addr = entry.integer("addr")
                table[addr] = DeviceEntry(pfn=entry.integer("pfn"), write=entry.boolean("write"))
                entry.finish()
            message.finish()
        except CaseFormatError as error:
            self._protocol(line, str(error))
        return table


#: A factory of :class:`DriverWireCandidate` for ``argv`` (see :meth:`WireClient.factory`).
driver_exec_factory = DriverWireCandidate.factory
