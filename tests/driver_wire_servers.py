"""Driver wire servers that misbehave on purpose, for tests/test_driver_wire.py.

Run as ``python tests/driver_wire_servers.py MODE [ARGS...]``: a driver served over the driver
side's wire protocol (``conformance.driver._wire_server``), with one thing broken by MODE:

- ``entry NAME``: the driver catalogue's entry NAME, served as it is;
- ``hang-on-sync``, ``waits-in-sync``, ``exit-mid-step``, ``core-hello``: the reference driver
  broken as the name says; ``swallow-would-block`` and ``call-after-would-block``: the catalogue's
  ``sleeps-when-not-blockable``, which then swallows the error of its blocking lock call (and,
  for the second, makes one more call);
- ``tamper-reply METHOD FIELD JSON``, ``tamper-call METHOD FIELD JSON`` and
  ``tamper-hello - FIELD JSON``: the reference driver, with FIELD of every reply to a METHOD
  request (of every METHOD call it makes, of its hello) set to the JSON value (``"DELETE"``
  deletes it): the server's lines broken one field at a time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from typing import IO, Any, NoReturn

from conformance.driver._adapter import DriverCandidate, DriverEnv, DriverHandshake, FaultView
from conformance.driver._catalogue import DRIVER_CATALOGUE
from conformance.driver._reference import reference_driver
from conformance.driver._side import start_driver
from conformance.driver._wire_server import serve_driver, serve_driver_stdio
from hmm_ref import DeviceEntry, FaultStep, HmmUpdate, WouldBlockError


def _stuck() -> NoReturn:
    """Wait to be killed."""
    while True:
        time.sleep(60)


def _entry(name: str) -> DriverCandidate:
    return next(entry for entry in DRIVER_CATALOGUE if entry.name == name).make()


class Misbehaving:
    """A driver, with one behaviour broken by ``mode``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        faulty = mode in ("swallow-would-block", "call-after-would-block")
        self.inner = _entry("sleeps-when-not-blockable") if faulty else reference_driver()

    def handshake(self) -> DriverHandshake:
        return self.inner.handshake()

    def begin(self, env: DriverEnv) -> None:
        self.env = env
        self.inner.begin(env)

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        if self.mode == "hang-on-sync":
            _stuck()
        if self.mode == "waits-in-sync":
            self.env.monitor.might_sleep("a flush", owner="sync")
            self.env.monitor.wait("a fence", owner="sync")
        try:
            return self.inner.sync_cpu_device_pagetables(update)
        except WouldBlockError:
            if self.mode == "call-after-would-block":
                self.env.monitor.wait("a fence", owner="sync")
            return 0  # it goes on as if it had the lock

    def release(self) -> None:
        self.inner.release()

    def start_fault(self, fault: int, start: int, end: int) -> None:
        self.inner.start_fault(fault, start, end)

    def step_fault(self, fault: int) -> FaultStep:
        if self.mode == "exit-mid-step":
            sys.stderr.write("about to exit in the middle of step_fault\n")
            sys.stderr.flush()
            os._exit(3)
        return self.inner.step_fault(fault)

    def fault_view(self, fault: int) -> FaultView:
        return self.inner.fault_view(fault)

    def fault_would_block(self, fault: int) -> bool:
        return self.inner.fault_would_block(fault)

    def invalidation_would_block(self, blockable: bool) -> bool:
        return self.inner.invalidation_would_block(blockable)

    def release_would_block(self) -> bool:
        return self.inner.release_would_block()

    def device_page_table(self) -> Mapping[int, DeviceEntry]:
        return self.inner.device_page_table()

    def close(self) -> None:
        self.inner.close()


class _Tap:
    """The harness's lines, read through: which method each request id asked for."""

    def __init__(self, source: IO[bytes], methods: dict[int, str]) -> None:
        self._source = source
        self._methods = methods

    def readline(self) -> bytes:
        line = self._source.readline()
        if line:
            message = json.loads(line)
            if message.get("type") == "request":
                self._methods[message["id"]] = message["method"]
        return line


class _Tamper:
    """The server's lines, with one field of the chosen replies or calls changed."""

    def __init__(self, sink: IO[bytes], kind: str, method: str, field: str, value: Any) -> None:
        self._sink = sink
        self._kind = kind
        self._method = method
        self._field = field
        self._value = value
        self.methods: dict[int, str] = {}

    def write(self, line: bytes) -> int:
        message = json.loads(line)
        said = (
            message.get("method")
            if self._kind == "call"
            else self.methods.get(message.get("id", 0))
        )
        if message["type"] == self._kind and (self._kind == "hello" or said == self._method):
            if self._value == "DELETE":
                del message[self._field]
            else:
                message[self._field] = self._value
            if self._field == "error":
                del message["result"]
            line = json.dumps(message).encode() + b"\n"
        return self._sink.write(line)

    def flush(self) -> None:
        self._sink.flush()


def main(mode: str, *args: str) -> int:
    if mode == "core-hello":
        sys.stdin.readline()
        sys.stdout.write(
            '{"type":"hello","protocol":1,"name":"c","version":"1","capabilities":[]}\n'
        )
        sys.stdout.flush()
        _stuck()
    if mode == "entry":
        candidate, handshake = start_driver(lambda: _entry(args[0]))
        return serve_driver_stdio(candidate, handshake)
    if mode.startswith("tamper-"):
        method, field, value = args
        sink = _Tamper(sys.stdout.buffer, mode.removeprefix("tamper-"), method, field,
                       json.loads(value) if value != "DELETE" else value)  # fmt: skip
        source = _Tap(sys.stdin.buffer, sink.methods)
        candidate, handshake = start_driver(reference_driver)
        return serve_driver(candidate, handshake, source, sink, sys.stderr)  # type: ignore[arg-type]
    candidate, handshake = start_driver(lambda: Misbehaving(mode))
    return serve_driver_stdio(candidate, handshake)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
