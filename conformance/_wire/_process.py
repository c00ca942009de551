"""The wire's transport: a candidate program in a child process, spoken to in lines.

:class:`Process` starts a program with its argument list (no shell), a minimal environment and a
process group of its own; it writes lines to it and reads lines back, each within a deadline,
drains its standard error as it comes (keeping the tail for a crash report), and kills it with
everything it started (:func:`conformance._isolation.kill_tree`). What the lines say is a side's
wire protocol (the core's: :mod:`conformance.core._wire`, docs/wire-protocol.md).
"""

from __future__ import annotations

import os
import select
import selectors
import signal
import subprocess
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import IO, Final, final

from .._isolation import kill_tree

__all__ = [
    "BYE_TIMEOUT",
    "EXIT_POLL",
    "MAX_LINE",
    "MIN_HELLO_TIMEOUT",
    "QUOTE",
    "STDERR_TAIL",
    "ExitedError",
    "Process",
    "TooLongError",
    "exit_status",
    "minimal_environment",
    "quote",
]

#: The longest line either side may send, in bytes, newline included.
MAX_LINE: Final = 1 << 20
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


def quote(line: bytes) -> str:
    text = line.decode("utf-8", "replace").rstrip("\n")
    return text if len(text) <= QUOTE else f"{text[:QUOTE]}... ({len(text)} characters)"


def minimal_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
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


def exit_status(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


@final
class Process:
    """One running child: non-blocking pipes, a line buffer, and the tail of its stderr."""

    def __init__(
        self, argv: Sequence[str], log: IO[str] | None, environment: Mapping[str, str] | None
    ) -> None:
        self.popen = subprocess.Popen(  # an argument list: no shell
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=minimal_environment(environment),
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
        """:class:`ExitedError` if the child has exited and has left nothing more to read.

        No end of file tells the harness so when a process it started holds its pipes open.
        """
        status = self.popen.poll()
        if status is not None and not select.select([self._stdout], [], [], 0)[0]:
            raise ExitedError(status)

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
                raise TooLongError(bytes(self._lines[:QUOTE]))
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


class TooLongError(Exception):
    """Internal: the candidate sent a line longer than the protocol allows."""


class ExitedError(Exception):
    """Internal: the candidate exited, but a process it started holds its output open."""
