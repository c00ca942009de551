"""The ``fault`` request over the wire: a Python candidate gives there what it gives in process,
the C server says the documented exchange, and both ends refuse what does not fit."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from typing import Any

import pytest

import hmm_ref as H
from conformance import VmaSpec, World
from conformance._case import CpuState
from conformance.ccore import build_server
from conformance.core._adapter import CandidateProtocolError, Capability, Handshake
from conformance.core._reference import ReferenceCandidate
from conformance.core._side import close_quietly
from conformance.core._wire import WireCandidate, exec_factory
from conformance.core._wire_server import serve

from .test_ccore_fault import random_cases, run_faults
from .test_wire import (
    HARNESS_HELLO,
    ROOT,
    TO_CANDIDATE,
    TO_HARNESS,
    _request,
    documented_exchange,
    no_process_left_behind,  # noqa: F401 - autouse: no child process is left running here either
    server,
)

FAULT_SERVER = [sys.executable, "-m", "conformance", "serve"]  # the reference, served
#: The child imports this tree's conformance, whatever the environment installed.
HERE = {"PYTHONPATH": str(ROOT)}
ENCODING = {"flags": [1, 2, 4], "values": [504, 0, 1008], "pfn_shift": 8}
VMA = {"start": 0x10000, "end": 0x20000, "read": True, "write": True, "special": False}


@pytest.mark.parametrize("extensions", [True, False], ids=["1.1", "1.0"])
def test_a_python_candidate_over_the_wire_faults_as_in_process(extensions: bool) -> None:
    """Sixty random worlds: the same results, ranges, fault calls and CPU entries, with and
    without observe-ahead; every line fits its schema."""
    log = io.StringIO()
    make = exec_factory(FAULT_SERVER, environment=HERE, log=log, extensions=extensions)
    over_wire = make()
    in_process = ReferenceCandidate()
    try:
        assert Capability.FAULT in over_wire.handshake().capabilities
        assert over_wire.observes_ahead() is extensions
        for world, ops in random_cases(5, 60):
            assert run_faults(over_wire, world, ops) == run_faults(in_process, world, ops)
    finally:
        over_wire.close()
    kinds = set()
    for line in log.getvalue().splitlines():
        direction, text = line.split(" ", 1)
        message = json.loads(text)
        (TO_CANDIDATE if direction == ">" else TO_HARNESS).validate(message)
        kinds.add(f"{direction}{message['type']}:{message.get('method', '')}")
        assert ("observed" in message) <= extensions
    assert {">request:fault", "<call:handle_mm_fault", "<call:migration_entry_wait"} <= kinds


def test_the_documented_fault_exchange_is_what_the_c_server_says() -> None:
    """docs/wire-protocol.md's fault example: valid messages, and the C server's very lines."""
    exchange = documented_exchange("Faulting: the `fault` capability")
    assert len(exchange) > 20
    for direction, message in exchange:
        (TO_CANDIDATE if direction == ">" else TO_HARNESS).validate(message)
    harness = "".join(json.dumps(m) + "\n" for d, m in exchange if d == ">")
    done = subprocess.run(
        [str(build_server())], input=harness.encode(), capture_output=True, timeout=60, check=True
    )
    said = [json.loads(line) for line in done.stdout.decode().splitlines()]
    expected = [m for d, m in exchange if d == "<"]
    said[0]["version"] = expected[0]["version"]
    assert said == expected


# -- the Python server, in process ---------------------------------------------------------


def _answer(number: int, result: object) -> dict[str, Any]:
    return {"type": "answer", "id": number, "result": result}


def _call(number: int, method: str, **fields: object) -> dict[str, Any]:
    return {"type": "call", "id": number, "method": method, **fields}


def _serve(candidate: Any, *messages: dict[str, Any]) -> tuple[int, list[dict[str, Any]], str]:
    source = HARNESS_HELLO + b"".join(json.dumps(m).encode() + b"\n" for m in messages)
    sink, errors = io.BytesIO(), io.StringIO()
    status = serve(candidate, io.BytesIO(source), sink, errors)
    said = [json.loads(line) for line in sink.getvalue().splitlines()]
    return status, said, errors.getvalue()


def _fault(number: int, **changes: object) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "range": 0, "vma": 0, "start": 0x10000, "end": 0x12000, "encoding": ENCODING,
        "pfns": [1, 3], "block": False,
    }  # fmt: skip
    return _request(number, "fault", **{**fields, **changes})


PRESENT = {"kind": "present", "pfn": 7, "write": False}
WRITABLE = {"kind": "present", "pfn": 8, "write": True}


def test_the_python_server_carries_a_fault_and_its_calls() -> None:
    """A migration waited for at page 0 and a write fault at page 1: each a call to the harness,
    each followed by a read of the page's new entry."""
    status, said, _ = _serve(
        ReferenceCandidate(),
        _request(1, "begin", vmas=[VMA]),
        _fault(2),
        _answer(1, [{"kind": "migration"}]),
        _answer(2, [{"kind": "none"}]),
        _answer(3, None),
        _answer(4, [PRESENT]),
        _answer(5, 0),
        _answer(6, [WRITABLE]),
        {"type": "bye"},
    )
    assert status == 0
    assert "fault" in said[0]["capabilities"]
    assert said[1:-1] == [
        {"type": "reply", "id": 1, "result": None},
        _call(1, "read_ptes", start=0x10000, end=0x11000),
        _call(2, "read_ptes", start=0x11000, end=0x12000),
        _call(3, "migration_entry_wait", addr=0x10000),
        _call(4, "read_ptes", start=0x10000, end=0x11000),
        _call(5, "handle_mm_fault", addr=0x11000, write=True, allow_retry=True, nowait=True),
        _call(6, "read_ptes", start=0x11000, end=0x12000),
        {"type": "reply", "id": 2, "result": 0},
    ]


class _NoFaults:
    """The fault candidate, not declaring ``fault``."""

    def __new__(cls) -> Any:
        candidate = ReferenceCandidate()
        said = candidate.handshake()
        candidate.handshake = lambda: Handshake(  # type: ignore[method-assign]
            protocol_version=said.protocol_version, name=said.name, version=said.version
        )
        return candidate


@pytest.mark.parametrize(
    ("make", "messages", "problem"),
    [
        (_NoFaults, [_fault(2)], "unknown request method 'fault'"),
        (ReferenceCandidate, [_fault(2, pfns=[1])], "1 entries for [0x10000, 0x12000)"),
        (ReferenceCandidate, [_fault(2, pfns=[1, -1])], "pfns[1]: expected an unsigned 64-bit"),
        (ReferenceCandidate,
         [_fault(2, end=0x11000, pfns=[1]), _answer(1, [{"kind": "none"}]), _answer(2, "0")],
         "message.result: expected an integer"),
        (ReferenceCandidate,
         [_fault(2, end=0x11000, pfns=[1]), _answer(1, [{"kind": "migration"}]), _answer(2, 0)],
         "message.result: expected null, got 0"),
    ],
)  # fmt: skip
def test_the_python_server_exits_2_on_a_fault_it_cannot_read(
    make: Any, messages: list[dict[str, Any]], problem: str
) -> None:
    status, _, errors = _serve(make(), _request(1, "begin", vmas=[VMA]), *messages)
    assert status == 2
    assert problem in errors


# -- the client, against scripted servers ------------------------------------------------------


def _scripted(capabilities: list[str], *responses: str) -> WireCandidate:
    hello = {"type": "hello", "protocol": 1, "name": "s", "version": "1"}
    line = json.dumps({**hello, "capabilities": capabilities})
    candidate = WireCandidate(server("script", line, *responses), step_timeout=2)
    candidate.handshake()
    world = World(vmas=(VmaSpec(start=0x10000, end=0x20000),))
    candidate._cpu = CpuState(world)  # as begin() would have set it
    return candidate


def _said(call: str, **fields: object) -> str:
    return json.dumps({"type": "call", "id": 1, "method": call, **fields})


@pytest.mark.parametrize(
    ("capabilities", "call", "message"),
    [
        ([], _said("handle_mm_fault", addr=0x10000, write=False, allow_retry=True, nowait=True),
         "unknown call 'handle_mm_fault'; one of sync, release, read_ptes"),
        ([], _said("migration_entry_wait", addr=0x10000), "unknown call 'migration_entry_wait'"),
        (["fault"], _said("handle_mm_fault", addr=0x10000, write=False, allow_retry=True),
         "missing field 'nowait'"),
        (["fault"], _said("migration_entry_wait", addr=-4096), "is not an address"),
        (["fault"], _said("migration_entry_wait", addr=0x10000, write=True),
         "unknown field 'write'"),
    ],
)  # fmt: skip
def test_the_client_refuses_fault_calls_that_do_not_fit(
    capabilities: list[str], call: str, message: str
) -> None:
    candidate = _scripted(capabilities, call)
    with pytest.raises(CandidateProtocolError, match=re.escape(message)):
        candidate.fault(0, 0, 0x10000, 0x11000, H.DEFAULT_ENCODING, pfns=(1,), block=True)
    candidate.close()


def test_the_client_answers_fault_calls_with_the_cpu_s_fault_handling() -> None:
    """The answers are the CPU view's: its handler's bits, null for a wait; its entries change."""
    candidate = _scripted(
        ["fault"],
        _said("handle_mm_fault", addr=0x10000, write=True, allow_retry=True, nowait=False),
        json.dumps(_call(2, "migration_entry_wait", addr=0x11000)),
        '{"type":"reply","id":1,"result":-16}',
    )
    cpu = candidate._cpu
    assert isinstance(cpu, CpuState)
    cpu.set_pte(0x11000, H.PTE_MIGRATION)
    log: list[str] = []
    cpu.on_fault = lambda call: log.append(f"{call.kind} {call.answer}")
    assert (
        candidate.fault(0, 0, 0x10000, 0x12000, H.DEFAULT_ENCODING, pfns=(3, 1), block=True) == -16
    )
    assert log == ["handle_mm_fault 0", "migration_entry_wait 0"]
    assert cpu.pte(0x10000) == H.Pte.present(H.fault_pfn(0x10000), write=True)
    assert cpu.pte(0x11000) == H.Pte.present(H.fault_pfn(0x11000))
    close_quietly(candidate)
