"""Wire servers that misbehave on purpose, for tests/test_wire.py.

Run as ``python tests/wire_servers.py MODE [ARG]``: the reference served over the wire protocol,
except for the one thing MODE breaks. A broken line is written straight to standard output and
the server then waits to be killed, as a real broken server would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import IO, NoReturn, cast

from conformance import Candidate, CandidateRejected, CpuView, Handshake, RangeView, reference
from conformance.core._adapter import faults_of
from conformance.core._wire_server import serve, serve_stdio
from hmm_ref import HmmMirrorOps, PfnEncoding


def _stuck() -> NoReturn:
    """Wait to be killed."""
    while True:
        time.sleep(60)


def _say(line: str) -> NoReturn:
    sys.stdout.buffer.write(line.encode() + b"\n")
    sys.stdout.buffer.flush()
    _stuck()


class Misbehaving:
    """The reference, with one behaviour broken by ``mode``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.inner: Candidate = reference()
        self.requests = 0

    def _tick(self) -> None:
        self.requests += 1
        if self.mode == "flood-stderr":
            sys.stderr.write("x" * 65536 + "\n")
            sys.stderr.flush()

    def handshake(self) -> Handshake:
        said = self.inner.handshake()
        if self.mode == "env":
            return Handshake(
                protocol_version=1,
                name=",".join(sorted(os.environ)),
                version=said.version,
                capabilities=said.capabilities,
            )
        return said

    def begin(self, cpu: CpuView) -> None:
        self._tick()
        self.cpu = cpu
        self.inner.begin(cpu)

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        self._tick()
        return self.inner.register(mirror, ops)

    def unregister(self, mirror: int) -> None:
        self._tick()
        if self.mode == "wrong-id":
            _say('{"type":"reply","id":999999,"result":null}')
        self.inner.unregister(mirror)

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
        self._tick()
        return faults_of(self.inner).fault(
            range_id, vma, start, end, encoding, pfns=pfns, block=block
        )

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        self._tick()
        if self.mode == "garbage":
            _say("this is not JSON")
        if self.mode == "crash-on-read-only-vma" and vma == 1:
            raise RuntimeError("no support for read-only vmas")
        return self.inner.snapshot(range_id, vma, start, end, encoding)

    def observe(self, range_id: int) -> RangeView:
        if self.mode == "observe-hang":
            _stuck()
        if self.mode == "observe-exit":
            os._exit(4)
        if self.mode == "observe-refused":
            raise CandidateRejected(f"r{range_id} is none of your business")
        if self.mode == "observe-raises":
            raise RuntimeError(f"lost r{range_id}")
        if self.mode == "observe-reads-cpu":
            self.cpu.pte(self.cpu.vmas[0].start)
        return self.inner.observe(range_id)

    def range_done(self, range_id: int) -> bool:
        self._tick()
        if self.mode == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        if self.mode == "int-for-bool":
            return cast(bool, 1)  # serve() writes it as it is: "result": 1
        return self.inner.range_done(range_id)

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        self._tick()
        if self.mode == "hang":
            _stuck()
        if self.mode == "exit-mid-step":
            sys.stderr.write("about to exit in the middle of invalidate_start\n")
            sys.stderr.flush()
            os._exit(3)
        if self.mode == "unknown-message":
            _say('{"type":"gossip","id":1}')
        if self.mode == "sync-unknown-mirror":
            _say(
                '{"type":"call","id":77,"method":"sync","mirror":42,"update":'
                '{"start":0,"end":4096,"event":"invalidate","blockable":true}}'
            )
        return self.inner.invalidate_start(start, end, blockable)

    def invalidate_end(self, start: int, end: int) -> None:
        self._tick()
        self.inner.invalidate_end(start, end)

    def release(self) -> None:
        self._tick()
        self.inner.release()

    def close(self) -> None:
        self.inner.close()


class Tampered:
    """Standard output, with what observe-ahead sends changed by ``mode`` on the way out."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.out = sys.stdout.buffer

    def write(self, data: bytes) -> int:
        message = json.loads(data)
        if "observed" in message:
            if self.mode == "ahead-dropped":
                del message["observed"]
            elif self.mode == "ahead-renumbered":
                message["observed"][0]["range"] += 1
            else:  # ahead-shortened
                message["observed"].pop()
        return self.out.write(json.dumps(message).encode() + b"\n")

    def flush(self) -> None:
        self.out.flush()


def scripted(responses: list[str]) -> int:
    """For each line read, write the next response (which may hold several lines).

    ``<hang>`` waits to be killed, ``<exit>`` exits with status 5; at the end of the script
    the server exits with status 0.
    """
    for response in responses:
        if not sys.stdin.buffer.readline():
            return 0
        if response == "<hang>":
            _stuck()
        if response == "<exit>":
            return 5
        # surrogateescape: a test may pass bytes that are not UTF-8 through argv
        sys.stdout.buffer.write(response.encode("utf-8", "surrogateescape") + b"\n")
        sys.stdout.buffer.flush()
    return 0


def taped(log: list[str]) -> int:
    """Play back a recorded conversation: read each line the harness said in it, and exit 7,
    saying so, at the first it says otherwise; say each line the candidate said."""
    for entry in log:
        direction, line = entry.split(" ", 1)
        if direction == "<":
            sys.stdout.buffer.write(line.encode() + b"\n")
            sys.stdout.buffer.flush()
            continue
        said = sys.stdin.buffer.readline().decode().rstrip("\n")
        if said != line:
            sys.stderr.write(f"the tape says\n{line}\nthe harness said\n{said}\n")
            return 7
    return 0


def main(argv: list[str]) -> int:
    mode = argv[0]
    argument = argv[1] if len(argv) > 1 else None
    if mode == "script":
        return scripted(argv[1:])
    if mode in ("script-file", "tape"):
        # script-file: a JSON list of responses; tape: one of logged lines.
        assert argument is not None, f"{mode} needs the file of a JSON list"
        with open(argument) as file:
            return (taped if mode == "tape" else scripted)(json.load(file))
    if mode == "close-stdout":
        sys.stdin.buffer.readline()
        os.close(1)
        _stuck()
    if mode in ("deaf", "long-line"):
        # Say hello, then never read again, or answer the first request with an endless line.
        sys.stdin.buffer.readline()
        sys.stdout.buffer.write(
            b'{"type":"hello","protocol":1,"name":"s","version":"1","capabilities":[]}\n'
        )
        sys.stdout.buffer.flush()
        if mode == "long-line":
            sys.stdin.buffer.readline()
            sys.stdout.buffer.write(b"x" * (2 << 20))
            sys.stdout.buffer.flush()
        _stuck()
    if mode == "silent":
        _stuck()
    if mode == "wrong-version":
        sys.stdin.buffer.readline()
        _say(
            '{"type":"hello","protocol":2,"name":"from-the-future","version":"9","capabilities":[]}'
        )
    if mode in ("grandchild", "grandchild-setsid", "hang-setsid"):
        # A child of its own (in a session of its own, out of the server's process group, for
        # the -setsid modes) that outlives it unless the harness kills it. Each start adds a
        # line "SERVER GRANDCHILD" to the file.
        assert argument is not None, f"{mode} needs a file to write the pids to"
        child = subprocess.Popen(["sleep", "600"], start_new_session=mode != "grandchild")
        with open(argument, "a") as file:
            file.write(f"{os.getpid()} {child.pid}\n")
        return serve_stdio(Misbehaving("hang" if mode == "hang-setsid" else mode))
    if mode in ("exit-0-leaving-stdout", "exit-0-after-hello", "exit-0-mid-step"):
        # Exit 0 while a child it started keeps its standard streams open: no end of file
        # comes. Before its hello, after it, or on the first request.
        assert argument is not None, f"{mode} needs a file to write the grandchild's pid to"
        if mode != "exit-0-leaving-stdout":
            sys.stdin.buffer.readline()
            sys.stdout.buffer.write(
                b'{"type":"hello","protocol":1,"name":"s","version":"1","capabilities":[]}\n'
            )
            sys.stdout.buffer.flush()
        if mode == "exit-0-mid-step":
            sys.stdin.buffer.readline()
        child = subprocess.Popen(["sleep", "600"], start_new_session=True)
        with open(argument, "w") as file:
            file.write(str(child.pid))
        return 0
    sink = cast(IO[bytes], Tampered(mode)) if mode.startswith("ahead-") else sys.stdout.buffer
    return serve(Misbehaving(mode), sys.stdin.buffer, sink, sys.stderr)


def env_reporter() -> Candidate:
    """A factory for ``--isolate`` tests: the reference, named after its environment."""
    return Misbehaving("env")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
