"""The wire's client half, shared by every side: spawn, hello, one request and its calls, bye.

:class:`WireClient` owns a candidate program in a child process (:class:`Process`) and the
clock of what is under way. It sends a request and serves the candidate's calls back until the
reply comes, each line within the step's budget, and turns every way a child can go wrong into
one of three faults (:class:`CandidateHung`, :class:`CandidateCrashed`,
:class:`CandidateProtocolError`), after which the child is stopped and the next case starts a
fresh one. A side's client (the core's :class:`conformance.core._wire.WireCandidate`, the
driver's :class:`conformance.driver._wire.DriverWireCandidate`) says what its hello carries,
which calls it serves, which reply errors it understands, and turns requests into its adapter
protocol's methods.
"""

from __future__ import annotations

import enum
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO, ClassVar, NoReturn, Self, TypeVar

from .._case import CaseFormatError
from .._connect import DEFAULT_STEP_TIMEOUT, check_timeout
from .._errors import (
    AdapterError,
    CandidateCrashed,
    CandidateFault,
    CandidateHung,
    CandidateProtocolError,
)
from .._version import package_version
from ._messages import (
    MAX_LINE,
    MINOR_VERSION,
    WIRE_PROTOCOL_VERSION,
    Json,
    Message,
    decode,
    encode,
)
from ._process import BYE_TIMEOUT, MIN_HELLO_TIMEOUT, ExitedError, Process, TooLongError, quote
from ._process import exit_status as said_status

__all__ = ["WireClient"]

E = TypeVar("E", bound=enum.Enum)


class WireClient:
    """A candidate program spoken to in JSON lines; a side's client subclasses it."""

    #: Extra fields of the harness's hello (the side it speaks for).
    HELLO: ClassVar[Mapping[str, object]] = {}
    #: Exceptions a request may end with after its reply was read: the exchange is in step,
    #: so the child keeps running.
    IN_STEP: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(
        self,
        argv: Sequence[str],
        *,
        step_timeout: float = DEFAULT_STEP_TIMEOUT,
        hello_timeout: float | None = None,
        log: IO[str] | None = None,
        environment: Mapping[str, str] | None = None,
        extensions: bool = True,
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
        #: Use the extensions a candidate of protocol 1.1 offers (False: speak 1.0 to it).
        self._use_extensions = extensions
        #: Requests sent and calls answered: the round trips so far.
        self.round_trips = 0
        self._process: Process | None = None
        self._next_request = 0
        self._deadline = 0.0
        self._budget = ""
        self._depth = 0
        self._what = ""
        self._reset()

    def search_state(self) -> None:
        """The candidate's state is in its own process, which the protocol does not show: the
        exhaustive search merges on the model's state alone (:mod:`conformance._fingerprint`).
        """
        return

    @classmethod
    def factory(
        cls,
        argv: Sequence[str],
        *,
        step_timeout: float = DEFAULT_STEP_TIMEOUT,
        hello_timeout: float | None = None,
        log: IO[str] | None = None,
        environment: Mapping[str, str] | None = None,
        extensions: bool = True,
    ) -> Callable[[], Self]:
        """A factory of clients of ``argv`` (``environment``: variables to add to the minimal
        environment it runs in; ``extensions``: use what a candidate of protocol 1.1 offers);
        :class:`AdapterError` if ``step_timeout`` is no budget."""
        check_timeout(step_timeout)
        return lambda: cls(
            argv,
            step_timeout=step_timeout,
            hello_timeout=hello_timeout,
            log=log,
            environment=environment,
            extensions=extensions,
        )

    @property
    def program(self) -> str:
        return shlex.join(self._argv)

    # -- what a side says -----------------------------------------------------------------

    def _reset(self) -> None:
        """Set what the side keeps of the candidate to nothing (called by ``__init__``)."""

    def _serve_call(self, line: bytes, message: Message) -> None:
        """Answer one call of the candidate's (the side's calls)."""
        raise NotImplementedError

    def _refused_with(self, line: bytes, kind: str, text: str) -> NoReturn:
        """Raise what a reply's error of ``kind`` (not ``crash``) means on this side."""
        raise NotImplementedError

    def _raise_refusal(self, line: bytes, message: Message) -> NoReturn:
        """A reply with an error: a CRASH for ``crash``, else what the side makes of it."""
        error = message.obj("error")
        kind = error.string("kind")
        text = error.string("message")
        error.finish()
        message.integer("id")
        message.finish()
        if kind == "crash":
            self._fail(CandidateCrashed(f"{self._what}: the candidate reported a crash: {text}"))
        self._refused_with(line, kind, text)

    def _capabilities(self, line: bytes, message: Message, kinds: type[E]) -> frozenset[E]:
        """The hello's ``capabilities``, each one of ``kinds``; PROTOCOL for any other."""
        return self._members(line, message, "capabilities", kinds)

    def _members(self, line: bytes, message: Message, key: str, kinds: type[E]) -> frozenset[E]:
        """The hello's list ``key``, each one of ``kinds``; PROTOCOL for any other."""
        members = []
        for index, item in enumerate(message.array(key)):
            try:
                members.append(kinds(item))
            except ValueError:
                known = ", ".join(str(c.value) for c in kinds)
                self._protocol(line, f"{key}[{index}]: {item!r} is not one of {known}")
        return frozenset(members)

    def _extensions(self, line: bytes, message: Message, kinds: type[E]) -> frozenset[E]:
        """What a 1.1 hello's ``extensions`` offers, each one of ``kinds``; PROTOCOL for any
        other, or for ``extensions`` in a 1.0 hello. Empty when this client uses none."""
        if "extensions" not in message.data:
            return frozenset()
        if message.data.get("minor", 0) == 0:
            self._protocol(line, f"extensions come with minor {MINOR_VERSION}, not in 1.0")
        offered = self._members(line, message, "extensions", kinds)
        return offered if self._use_extensions else frozenset()

    def _on_reply(self, line: bytes, message: Message) -> None:
        """Check a reply without an error before its result is read (nothing by default)."""

    def _news(self) -> Json:
        """Fields to add to the next request (nothing by default): what changed on the
        harness's side that the candidate keeps a copy of, or what the harness wants sent with
        the reply."""
        return {}

    # -- the child process ------------------------------------------------------------------

    def _hello(self) -> tuple[bytes, Message]:
        """Start the child, say hello, and return its hello (type, protocol and ``minor``
        checked; a side reads the ``extensions`` of a 1.1 hello with :meth:`_extensions`)."""
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
                    **self.HELLO,
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
            if "minor" in message.data and message.integer("minor") not in (0, MINOR_VERSION):
                self._protocol(
                    line,
                    f"it speaks wire protocol 1.{message.data['minor']}; this harness speaks "
                    f"1.0 and 1.{MINOR_VERSION}: say minor {MINOR_VERSION} or leave it out",
                )
        except CaseFormatError as error:
            self._protocol(line, str(error))
        return line, message

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
            said = said_status(status) if status is not None else "closed its standard output"
        else:
            process.finish_stderr(0.1)  # the one holding stdout may hold stderr too
            said = (
                f"{said_status(exited)} without answering, and a process it started still "
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
        if message["type"] in ("request", "answer"):
            self.round_trips += 1
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

        Returns the reply's line and message; raises what the side makes of an error reply
        (:meth:`_raise_refusal`), and a fault for anything else.
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
            self._send(
                {"type": "request", "id": number, "method": method, **fields, **self._news()}
            )
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
                    self._on_reply(line, message)
                    return line, message
                except CaseFormatError as error:
                    self._protocol(line, str(error))
        except self.IN_STEP:
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

    def _restart(self, said: object, first: object) -> None:
        """After a fault: the restarted child's hello must say what the first one said."""
        if said != first:
            self._fail(
                CandidateProtocolError(f"hello: the restarted candidate said {said}, not {first}")
            )

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
