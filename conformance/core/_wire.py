"""The wire adapter: a candidate in a child process, spoken to in JSON lines.

The protocol is docs/wire-protocol.md.

``--adapter exec:PROGRAM [ARGS...]`` makes a :class:`WireCandidate`. It starts the program with
its argument list (no shell), a minimal environment and a process group of its own, says hello,
and then turns each call of the adapter protocol into a request, answering the candidate's calls
back (mirror callbacks, reads of the CPU page table) until the reply comes.

The harness must never hang or crash because of a candidate, so every read and write is bounded
by the step's time budget, the candidate's standard error is drained as it comes (its last
4 KiB are kept for the crash report), and every way a child can go wrong is one of three faults
(:class:`CandidateHung`, :class:`CandidateCrashed`, :class:`CandidateProtocolError`), which the
executor reports as HANG, CRASH and PROTOCOL verdicts. After a fault the candidate is killed
with everything it started (:func:`conformance._isolation.kill_tree`: its process group, its
descendants, whatever still holds its pipes); the next case starts a fresh process, so
Hypothesis goes on shrinking.

:mod:`conformance._connect` turns an adapter spec into a factory; this module is how the core
side speaks to a program (:func:`exec_factory`).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, NoReturn, final

from hmm_ref import PAGE_SIZE, HmmMirrorOps, PfnEncoding

from .._case import CaseFormatError
from .._case_json import encoding_to_json
from .._connect import DEFAULT_STEP_TIMEOUT, check_timeout
from .._version import package_version
from .._wire._process import (
    BYE_TIMEOUT,
    MIN_HELLO_TIMEOUT,
    ExitedError,
    Process,
    TooLongError,
    exit_status,
    quote,
)
from ._adapter import (
    PROTOCOL_VERSION,
    AdapterError,
    Candidate,
    CandidateCrashed,
    CandidateFault,
    CandidateHung,
    CandidateProtocolError,
    CandidateRejected,
    CandidateWouldHang,
    Capability,
    CpuView,
    Handshake,
    RangeView,
)
from ._wire_messages import (
    CALL_FIELDS,
    MAX_LINE,
    WIRE_PROTOCOL_VERSION,
    Json,
    Message,
    decode,
    encode,
    ptes_to_json,
    range_view_from_json,
    update_from_json,
    vmas_to_json,
)

__all__ = ["WireCandidate", "exec_factory"]


@final
class WireCandidate:
    """A candidate in a child process; see the module docstring and docs/wire-protocol.md."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        step_timeout: float = DEFAULT_STEP_TIMEOUT,
        hello_timeout: float | None = None,
        log: IO[str] | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        if not argv:
            raise AdapterError("exec: names no program; write exec:PROGRAM [ARGS...]")
        self._argv = list(argv)
        self._environment = dict(environment or {})
        self._step_timeout = step_timeout
        self._hello_timeout = (
            hello_timeout if hello_timeout is not None else max(step_timeout, MIN_HELLO_TIMEOUT)
        )
        self._log = log
        self._process: Process | None = None
        self._handshake: Handshake | None = None
        self._cpu: CpuView | None = None
        self._mirrors: dict[int, HmmMirrorOps] = {}
        self._next_request = 0
        self._deadline = 0.0
        self._budget = ""
        self._depth = 0
        self._what = ""

    @property
    def program(self) -> str:
        return shlex.join(self._argv)

    # -- the child process ------------------------------------------------------------------

    def _spawn(self) -> Handshake:
        try:
            self._process = Process(self._argv, self._log, self._environment)
        except OSError as error:
            raise AdapterError(
                f"exec: cannot start {self.program!r}: {error.strerror or error}; check the "
                "path and that the file is an executable program"
            ) from None
        self._start_clock("hello", self._hello_timeout, "a new process's time to say hello")
        try:
            self._send(
                {
                    "type": "hello",
                    "protocol": WIRE_PROTOCOL_VERSION,
                    "harness": f"hmm-conformance {package_version()}",
                }
            )
            line, message = self._receive()
        except BaseException:
            # A fault has stopped the child already; an interruption leaves the hello half
            # done, and close() would read it as the answer to bye: stop the child here.
            if self._process is not None:
                self._stop()
            raise
        try:
            if message.string("type") != "hello":
                self._protocol(line, "the first message must be its hello")
            protocol = message.integer("protocol")
            if protocol != WIRE_PROTOCOL_VERSION:
                self._protocol(
                    line,
                    f"it speaks wire protocol {protocol}; this harness speaks "
                    f"{WIRE_PROTOCOL_VERSION}",
                )
            capabilities = []
            for index, item in enumerate(message.array("capabilities")):
                try:
                    capabilities.append(Capability(item))
                except ValueError:
                    known = ", ".join(c.value for c in Capability)
                    self._protocol(line, f"capabilities[{index}]: {item!r} is not one of {known}")
            handshake = Handshake(
                protocol_version=PROTOCOL_VERSION,
                name=message.string("name"),
                version=message.string("version"),
                capabilities=frozenset(capabilities),
            )
            message.finish()
        except CaseFormatError as error:
            self._protocol(line, str(error))
        return handshake

    def _start_clock(self, what: str, seconds: float, budget: str) -> None:
        """Name what is under way, and give it ``seconds`` (``budget`` says which limit that is)."""
        self._what = what
        self._deadline = time.monotonic() + seconds
        self._budget = f"{seconds:g} s ({budget})"

    def _stop(self) -> None:
        assert self._process is not None
        self._process.kill()
        self._process = None

    def _fail(self, fault: CandidateFault) -> NoReturn:
        """Kill the child and raise ``fault``; the next case starts a fresh one."""
        self._stop()
        raise fault

    def _crashed(self, exited: int | None = None) -> NoReturn:
        """CRASH: its stdout ended, or (``exited``) it exited while another process holds it."""
        process = self._process
        assert process is not None
        if exited is None:
            process.finish_stderr(1.0)
            status = process.exit_status(0.5)
            said = exit_status(status) if status is not None else "closed its standard output"
        else:
            process.finish_stderr(0.1)  # the one holding stdout may hold stderr too
            said = (
                f"{exit_status(exited)} without answering, and a process it started still "
                "holds its standard output open"
            )
        tail = process.stderr_tail.decode("utf-8", "replace").strip()
        detail = f"{self._what}: the candidate {said}"
        detail += f"; the end of its standard error:\n{tail}" if tail else " (no standard error)"
        self._fail(CandidateCrashed(detail))

    def _protocol(self, line: bytes, problem: str) -> NoReturn:
        self._fail(CandidateProtocolError(f"{self._what}: {problem}; it sent: {quote(line)}"))

    def _send(self, message: Json) -> None:
        assert self._process is not None
        try:
            sent = self._process.send(encode(message), self._deadline)
        except EOFError:
            self._crashed()
        except ExitedError as exited:
            self._crashed(exited.args[0])
        if not sent:
            self._fail(
                CandidateHung(
                    f"{self._what}: the candidate stopped reading its standard input "
                    f"within {self._budget}"
                )
            )

    def _receive(self) -> tuple[bytes, Message]:
        assert self._process is not None
        try:
            line = self._process.receive(self._deadline)
        except EOFError:
            self._crashed()
        except ExitedError as exited:
            self._crashed(exited.args[0])
        except TooLongError as error:
            self._protocol(error.args[0], f"a line longer than {MAX_LINE} bytes")
        if line is None:
            self._fail(CandidateHung(f"{self._what}: no answer within {self._budget}"))
        try:
            return line, decode(line, "message")
        except CaseFormatError as error:
            self._protocol(line, str(error))

    # -- one request and the calls it makes -------------------------------------------------

    def _request(self, method: str, **fields: object) -> tuple[bytes, Message]:
        """Send a request and serve the candidate's calls until its reply.

        Returns the reply's line and message; raises the candidate's refusal or would-hang as
        such, and a fault for anything else.
        """
        if self._process is None:
            raise CandidateCrashed(
                f"{method}: the candidate is not running (it failed earlier in this case)"
            )
        outermost = self._depth == 0
        if outermost:
            self._start_clock(method, self._step_timeout, "the step's budget, --step-timeout")
        self._next_request += 1
        number = self._next_request
        self._depth += 1
        try:
            self._send({"type": "request", "id": number, "method": method, **fields})
            while True:
                line, message = self._receive()
                try:
                    kind = message.string("type")
                    if kind == "call":
                        self._serve_call(line, message)
                        continue
                    if kind != "reply":
                        self._protocol(line, f"a {kind!r} message while {method} was in progress")
                    answered = message.integer("id")
                    if answered != number:
                        self._protocol(line, f"a reply to request {answered}, not {number}")
                    if "error" in message.data:
                        self._raise_refusal(line, message)
                    return line, message
                except CaseFormatError as error:
                    self._protocol(line, str(error))
        except (CandidateRejected, CandidateWouldHang):
            raise  # its reply was read: the exchange is in step
        except BaseException:
            # A fault has stopped the child already. Anything else (an interruption, an
            # error of the harness's own callbacks) leaves a request half done: stop it, and
            # the next case starts a fresh one.
            if self._process is not None:
                self._stop()
            raise
        finally:
            self._depth -= 1

    def _raise_refusal(self, line: bytes, message: Message) -> NoReturn:
        error = message.obj("error")
        kind = error.string("kind")
        text = error.string("message")
        error.finish()
        message.integer("id")
        message.finish()
        if kind == "rejected":
            raise CandidateRejected(text)
        if kind == "would-hang":
            raise CandidateWouldHang(text)
        if kind == "crash":
            self._fail(CandidateCrashed(f"{self._what}: the candidate reported a crash: {text}"))
        self._protocol(line, f"error.kind {kind!r} is not rejected, would-hang or crash")

    def _serve_call(self, line: bytes, message: Message) -> None:
        number = message.integer("id")
        method = message.string("method")
        if method not in CALL_FIELDS:
            self._protocol(line, f"unknown call {method!r}; one of {', '.join(CALL_FIELDS)}")
        result: object = None
        if method == "read_ptes":
            result = self._read_ptes(line, message)
        else:
            mirror = message.integer("mirror")
            ops = self._mirrors.get(mirror)
            if ops is None:
                self._protocol(line, f"a {method} call for mirror {mirror}, which has no ops")
            if method == "sync":
                update = update_from_json(message.obj("update"))
                message.finish()
                result = ops.sync_cpu_device_pagetables(update)
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

    def _int_result(self, method: str, **fields: object) -> int:
        line, message = self._request(method, **fields)
        value = message.data.get("result")
        if not isinstance(value, int) or isinstance(value, bool) or len(message.data) != 3:
            self._protocol(line, f"a reply to {method} carries an int result and nothing else")
        return value

    def _bool_result(self, method: str, **fields: object) -> bool:
        line, message = self._request(method, **fields)
        value = message.data.get("result")
        if not isinstance(value, bool) or len(message.data) != 3:
            self._protocol(line, f"a reply to {method} carries a bool result and nothing else")
        return value

    def _null_result(self, method: str, **fields: object) -> None:
        line, message = self._request(method, **fields)
        try:
            message.null("result")
            message.finish()
        except CaseFormatError as error:
            self._protocol(line, str(error))

    # -- the adapter protocol ---------------------------------------------------------------

    def handshake(self) -> Handshake:
        if self._handshake is None:
            self._handshake = self._spawn()
        return self._handshake

    def begin(self, cpu: CpuView) -> None:
        if self._process is None:
            said = self._spawn()
            if said != self._handshake:
                self._fail(
                    CandidateProtocolError(
                        f"hello: the restarted candidate said {said}, not {self._handshake}"
                    )
                )
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

    def observe(self, range_id: int) -> RangeView:
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

    def close(self) -> None:
        """Say bye, give the child a moment to exit, then kill its group whatever it did."""
        process = self._process
        if process is None:
            return
        self._start_clock("bye", min(self._step_timeout, BYE_TIMEOUT), "the time to say bye")
        self._send({"type": "bye"})
        line, message = self._receive()
        if message.data != {"type": "bye"}:
            self._protocol(line, "the answer to bye is bye")
        process.exit_status(BYE_TIMEOUT)
        self._stop()


def exec_factory(
    argv: Sequence[str],
    *,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    hello_timeout: float | None = None,
    log: IO[str] | None = None,
    environment: Mapping[str, str] | None = None,
) -> Callable[[], Candidate]:
    """A factory of :class:`WireCandidate` for ``argv`` (``environment``: variables to add to
    the minimal environment it runs in)."""
    check_timeout(step_timeout)
    return lambda: WireCandidate(
        argv,
        step_timeout=step_timeout,
        hello_timeout=hello_timeout,
        log=log,
        environment=environment,
    )
