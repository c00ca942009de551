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

A Python ``MODULE:FACTORY`` adapter runs in process, each call within the same step budget
(:class:`conformance._isolation.WatchedCandidate`), or, with :func:`isolated_factory`, in a
child process served by ``hmm-conformance serve``.
"""

from __future__ import annotations

import importlib.metadata
import os
import select
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Final, NoReturn, final

from hmm_ref import PAGE_SIZE, HmmMirrorOps, PfnEncoding

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
    load_factory,
)
from ._case import CaseFormatError, encoding_to_json
from ._driver_adapter import DriverCandidate, load_driver_factory
from ._isolation import Watchdog, kill_tree, watched, watched_driver
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

__all__ = [
    "DEFAULT_STEP_TIMEOUT",
    "EXEC_PREFIX",
    "WireCandidate",
    "adapter_factory",
    "driver_factory",
    "exec_factory",
    "isolated_factory",
    "parse_exec",
]

#: What ``--adapter`` starts with to name a program instead of a Python factory.
EXEC_PREFIX: Final = "exec:"
#: Seconds a candidate has for one step (every nested call of it included).
DEFAULT_STEP_TIMEOUT: Final = 10.0
#: Seconds a new process has to say hello, at the least: starting a program (an interpreter, a
#: sanitizer build) can take far longer than a step, and more so on a loaded machine.
MIN_HELLO_TIMEOUT: Final = 10.0
#: How much of the candidate's standard error is kept for a crash report.
STDERR_TAIL: Final = 4096
#: How long a candidate has to answer ``bye`` and exit before its group is killed.
BYE_TIMEOUT: Final = 2.0
#: How much of an offending line a verdict quotes.
QUOTE: Final = 300
#: How often, in seconds, the harness checks whether a candidate that says nothing has exited
#: (a process it started may hold its standard output open, so no end of file comes).
EXIT_POLL: Final = 0.05


def _quote(line: bytes) -> str:
    text = line.decode("utf-8", "replace").rstrip("\n")
    return text if len(text) <= QUOTE else f"{text[:QUOTE]}... ({len(text)} characters)"


def _minimal_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    environment = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HMM_CONFORMANCE_WIRE": "1",
    }
    if "HOME" in os.environ:
        environment["HOME"] = os.environ["HOME"]
    environment.update(extra or {})
    return environment


def _exit_status(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


@final
class _Process:
    """One running child: non-blocking pipes, a line buffer, and the tail of its stderr."""

    def __init__(
        self, argv: Sequence[str], log: IO[str] | None, environment: Mapping[str, str] | None
    ) -> None:
        self.popen = subprocess.Popen(  # an argument list: no shell
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_minimal_environment(environment),
            start_new_session=True,
            close_fds=True,
        )
        stdin, stdout, stderr = self.popen.stdin, self.popen.stdout, self.popen.stderr
        assert stdin is not None
        assert stdout is not None
        assert stderr is not None
        # If the harness forgets it (or exits normally) first, it is killed all the same.
        self._finalizer = weakref.finalize(self, kill_tree, self.popen, (stdin, stdout, stderr))
        self._stdin, self._stdout, self._stderr = stdin.fileno(), stdout.fileno(), stderr.fileno()
        for fd in (self._stdin, self._stdout, self._stderr):
            os.set_blocking(fd, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._stdout, selectors.EVENT_READ)
        self._selector.register(self._stderr, selectors.EVENT_READ)
        self._lines = bytearray()
        self.stderr_tail = bytearray()
        self._log = log

    def note(self, direction: str, line: bytes) -> None:
        if self._log is not None:
            self._log.write(f"{direction} {line.decode('utf-8', 'replace').rstrip()}\n")
            self._log.flush()

    def _drain_stderr(self) -> bool:
        """Read what stderr has; False at its end."""
        try:
            chunk = os.read(self._stderr, 65536)
        except BlockingIOError:
            return True
        if not chunk:
            self._selector.unregister(self._stderr)
            return False
        self.stderr_tail += chunk
        del self.stderr_tail[:-STDERR_TAIL]
        return True

    def send(self, line: bytes, deadline: float) -> bool:
        """Write one line before ``deadline``; False if the time ran out, EOFError if closed."""
        self.note(">", line)
        view = memoryview(line)
        while view:
            try:
                written = os.write(self._stdin, view)
            except BlockingIOError:
                written = 0
            except (BrokenPipeError, ConnectionResetError):
                raise EOFError from None
            view = view[written:]
            if view:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # Keep its stderr flowing while it is not reading: it may be blocked there.
                with selectors.DefaultSelector() as writable:
                    writable.register(self._stdin, selectors.EVENT_WRITE)
                    writable.select(min(remaining, EXIT_POLL))
                self._drain_stderr()
                self._check_running()
        return True

    def _check_running(self) -> None:
        """:class:`_ExitedError` if the child has exited and has left nothing more to read.

        No end of file tells the harness so when a process it started holds its pipes open.
        """
        status = self.popen.poll()
        if status is not None and not select.select([self._stdout], [], [], 0)[0]:
            raise _ExitedError(status)

    def receive(self, deadline: float) -> bytes | None:
        """One line, or None if the time ran out first; EOFError at the end of its stdout."""
        while True:
            newline = self._lines.find(b"\n")
            if newline >= 0:
                line = bytes(self._lines[: newline + 1])
                del self._lines[: newline + 1]
                self.note("<", line)
                return line
            if len(self._lines) >= MAX_LINE:
                raise _TooLongError(bytes(self._lines[:QUOTE]))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready = self._selector.select(min(remaining, EXIT_POLL))
            if not ready:
                self._check_running()
            for key, _ in ready:
                if key.fd == self._stderr:
                    self._drain_stderr()
                    continue
                chunk = os.read(self._stdout, 65536)  # readable: it does not block
                if not chunk:
                    self._selector.unregister(self._stdout)
                    raise EOFError
                self._lines += chunk

    def finish_stderr(self, seconds: float) -> None:
        """Read stderr until it ends or ``seconds`` pass (after the child died)."""
        deadline = time.monotonic() + seconds
        while self._stderr in self._selector.get_map() and time.monotonic() < deadline:
            if self._selector.select(deadline - time.monotonic()):
                self._drain_stderr()

    def exit_status(self, seconds: float) -> int | None:
        try:
            return self.popen.wait(seconds)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        self._selector.close()
        self._finalizer()


class _TooLongError(Exception):
    """Internal: the candidate sent a line longer than the protocol allows."""


class _ExitedError(Exception):
    """Internal: the candidate exited, but a process it started holds its output open."""


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
        self._process: _Process | None = None
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
            self._process = _Process(self._argv, self._log, self._environment)
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
                    "harness": f"hmm-conformance {_version()}",
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
            said = _exit_status(status) if status is not None else "closed its standard output"
        else:
            process.finish_stderr(0.1)  # the one holding stdout may hold stderr too
            said = (
                f"{_exit_status(exited)} without answering, and a process it started still "
                "holds its standard output open"
            )
        tail = process.stderr_tail.decode("utf-8", "replace").strip()
        detail = f"{self._what}: the candidate {said}"
        detail += f"; the end of its standard error:\n{tail}" if tail else " (no standard error)"
        self._fail(CandidateCrashed(detail))

    def _protocol(self, line: bytes, problem: str) -> NoReturn:
        self._fail(CandidateProtocolError(f"{self._what}: {problem}; it sent: {_quote(line)}"))

    def _send(self, message: Json) -> None:
        assert self._process is not None
        try:
            sent = self._process.send(encode(message), self._deadline)
        except EOFError:
            self._crashed()
        except _ExitedError as exited:
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
        except _ExitedError as exited:
            self._crashed(exited.args[0])
        except _TooLongError as error:
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


def _version() -> str:
    return importlib.metadata.version("hmm-conformance")


def parse_exec(spec: str) -> list[str]:
    """``exec:PROGRAM [ARGS...]`` as an argument list; :class:`AdapterError` if malformed."""
    assert spec.startswith(EXEC_PREFIX)
    try:
        argv = shlex.split(spec[len(EXEC_PREFIX) :])
    except ValueError as error:
        raise AdapterError(f"adapter {spec!r}: {error}; quote the program's arguments") from None
    if not argv:
        raise AdapterError(f"adapter {spec!r} names no program; write exec:PROGRAM [ARGS...]")
    program = argv[0]
    if os.sep not in program:
        found = shutil.which(program)
        if found is None:
            raise AdapterError(
                f"adapter {spec!r}: no program {program!r} on PATH; give its path (./{program})"
            )
    elif not Path(program).is_file():
        raise AdapterError(f"adapter {spec!r}: {program!r} does not exist; is it built?")
    return argv


def _check_timeout(step_timeout: float) -> None:
    if step_timeout <= 0:
        raise AdapterError(f"the step timeout must be positive, not {step_timeout!r}")


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
    _check_timeout(step_timeout)
    return lambda: WireCandidate(
        argv,
        step_timeout=step_timeout,
        hello_timeout=hello_timeout,
        log=log,
        environment=environment,
    )


def isolated_factory(
    spec: str,
    *,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    hello_timeout: float | None = None,
    log: IO[str] | None = None,
) -> Callable[[], Candidate]:
    """``--isolate``: the Python adapter ``MODULE:FACTORY`` in a child process, served over the
    wire protocol by ``hmm-conformance serve``, with every isolation of an ``exec:`` program.

    The module is not imported here (an import that hangs or crashes is the child's); a module
    that does not import makes the child exit before its hello, a CRASH that quotes the error.
    The child runs with this interpreter, in this directory, with ``PYTHONPATH`` passed on.
    """
    if spec.startswith(EXEC_PREFIX):
        raise AdapterError(
            f"adapter {spec!r}: --isolate runs a Python MODULE:FACTORY adapter in a process of "
            "its own; an exec: program has one already, so leave out --isolate"
        )
    module, colon, attribute = spec.partition(":")
    if not (module and colon and attribute):
        raise AdapterError(
            f"adapter {spec!r} is not of the form MODULE:FACTORY (for example "
            "mypkg.hmm_adapter:make_candidate)"
        )
    passed = {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
    return exec_factory(
        [sys.executable, "-m", "conformance", "serve", "--adapter", spec],
        step_timeout=step_timeout,
        hello_timeout=hello_timeout,
        log=log,
        environment=passed,
    )


def adapter_factory(
    spec: str,
    *,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    log: IO[str] | None = None,
    watch: bool = True,
    watchdog: Watchdog | None = None,
) -> Callable[[], Candidate]:
    """The factory that ``--adapter`` names: ``exec:PROGRAM [ARGS...]`` or ``MODULE:FACTORY``.

    A Python candidate's every call gets ``step_timeout`` too, as a program's every step does
    (:class:`conformance._isolation.WatchedCandidate`, with ``watchdog`` as its last resort, the
    shared one by default); ``watch=False`` leaves it unwatched.
    """
    _check_timeout(step_timeout)
    if spec.startswith(EXEC_PREFIX):
        return exec_factory(parse_exec(spec), step_timeout=step_timeout, log=log)
    factory = load_factory(spec)
    if not watch:
        return factory
    return watched(factory, seconds=step_timeout, watchdog=watchdog)


def driver_factory(
    spec: str,
    *,
    step_timeout: float = DEFAULT_STEP_TIMEOUT,
    watch: bool = True,
    watchdog: Watchdog | None = None,
) -> Callable[[], DriverCandidate]:
    """The factory of the driver that ``--side driver --adapter`` names, each call of its
    drivers within ``step_timeout`` (:class:`conformance._isolation.WatchedDriver`) unless
    ``watch`` is False."""
    _check_timeout(step_timeout)
    factory = load_driver_factory(spec)
    if not watch:
        return factory
    return watched_driver(factory, seconds=step_timeout, watchdog=watchdog)
