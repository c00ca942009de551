"""The C candidate's wire server (conformance/ccore/server.c): it speaks docs/wire-protocol.md,
line for line and within the schemas, and leaves with status 2, naming the problem, when the
harness breaks the protocol."""

from __future__ import annotations

import importlib.resources
import io
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import hmm_ref as H
from conformance import (
    Budget,
    Case,
    Failure,
    Profile,
    RegisterMirror,
    UnregisterMirror,
    World,
    c_core,
    replay,
    run,
    start,
)
from conformance._generation import VMAS
from conformance.ccore import build_server
from conformance.core._side import close_quietly
from conformance.core._wire import WireCandidate, exec_factory

pytestmark = pytest.mark.usefixtures("ccore_build_dir")

SEED = 3
BUDGET = Budget(name="ccore-wire", examples=12, steps=30)
HELLO: dict[str, Any] = {"type": "hello", "protocol": 1, "harness": "test"}
VMA = {"start": 65536, "end": 131072, "read": True, "write": True, "special": False}
BEGIN: dict[str, Any] = {"type": "request", "id": 1, "method": "begin", "vmas": [VMA]}
ENCODING = {"flags": [1, 2, 4], "values": [504, 0, 1008], "pfn_shift": 8}


def _schema(direction: str) -> jsonschema.Draft202012Validator:
    text = (
        importlib.resources.files("conformance")
        .joinpath(f"schemas/wire-v1-{direction}.schema.json")
        .read_text()
    )
    return jsonschema.Draft202012Validator(json.loads(text))


TO_CANDIDATE = _schema("to-candidate")
TO_HARNESS = _schema("to-harness")


@pytest.fixture(scope="module")
def server() -> Path:
    return build_server()


def _talk(server: Path, *lines: dict[str, Any] | str) -> tuple[list[dict[str, Any]], str, int]:
    """Feed the server these lines (objects are sent as JSON); what it said, its stderr, status."""
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    done = subprocess.run(
        [str(server)], input=text.encode(), capture_output=True, timeout=60, check=False
    )
    said = [json.loads(line) for line in done.stdout.decode().splitlines()]
    for message in said:
        TO_HARNESS.validate(message)
    return said, done.stderr.decode(), done.returncode


def _request(id: int, method: str, **fields: object) -> dict[str, Any]:
    return {"type": "request", "id": id, "method": method, **fields}


def _answer(id: int, result: object) -> dict[str, Any]:
    return {"type": "answer", "id": id, "result": result}


def _reply(id: int, result: object) -> dict[str, Any]:
    return {"type": "reply", "id": id, "result": result}


def test_the_documented_exchange(server: Path) -> None:
    """docs/wire-protocol.md's full exchange, with the whole span read in one call."""
    said, stderr, status = _talk(
        server,
        HELLO,
        BEGIN,
        _request(2, "register", mirror=0, with_ops=True),
        _request(3, "snapshot", range=0, vma=0, start=65536, end=73728, encoding=ENCODING),
        _answer(1, [{"kind": "present", "pfn": 42, "write": True}, {"kind": "none"}]),
        _request(4, "observe", range=0),
        _request(5, "invalidate_start", start=65536, end=69632, blockable=False),
        _request(6, "observe", range=0),
        _answer(2, -11),
        {"type": "bye"},
    )
    assert said == [
        {
            "type": "hello",
            "protocol": 1,
            "name": "hmm-c",
            "version": said[0]["version"],
            "capabilities": ["release", "observe-in-callback", "strict", "fault"],
            "minor": 1,
            "extensions": ["observe-ahead"],
        },
        _reply(1, None),
        _reply(2, 0),
        {"type": "call", "id": 1, "method": "read_ptes", "start": 65536, "end": 73728},
        _reply(3, 0),
        _reply(4, {"registered": True, "valid": True, "entries": [10755, 0]}),
        {
            "type": "call",
            "id": 2,
            "method": "sync",
            "mirror": 0,
            "update": {"start": 65536, "end": 69632, "event": "invalidate", "blockable": False},
        },
        _reply(6, {"registered": True, "valid": False, "entries": [0, 0]}),
        _reply(5, -11),
        {"type": "bye"},
    ]
    assert (stderr, status) == ("", 0)


def _observed(*items: tuple[int, bool, list[int]]) -> list[dict[str, Any]]:
    return [{"range": r, "registered": True, "valid": v, "entries": e} for r, v, e in items]


def test_the_documented_exchange_in_1_1(server: Path) -> None:
    """docs/wire-protocol.md's exchange of version 1.1: the views come with the reply and with
    the sync call, and the nested observe that comes meanwhile gets none of them."""
    after = {"after": [0], "in_sync": [0]}
    said, stderr, status = _talk(
        server,
        HELLO,
        BEGIN,
        _request(2, "register", mirror=0, with_ops=True),
        _request(3, "snapshot", range=0, vma=0, start=65536, end=73728, encoding=ENCODING,
                 observe={"after": [0], "in_sync": []}),
        _answer(1, [{"kind": "present", "pfn": 42, "write": True}, {"kind": "none"}]),
        _request(4, "invalidate_start", start=65536, end=69632, blockable=False, observe=after),
        _request(5, "observe", range=0),
        _answer(2, -11),
        _request(6, "range_done", range=0, observe={"after": [0, 7], "in_sync": []}),
        {"type": "bye"},
    )  # fmt: skip
    cleared = _observed((0, False, [0, 0]))
    assert said[4:] == [
        {**_reply(3, 0), "observed": _observed((0, True, [10755, 0]))},
        {
            "type": "call",
            "id": 2,
            "method": "sync",
            "mirror": 0,
            "update": {"start": 65536, "end": 69632, "event": "invalidate", "blockable": False},
            "observed": cleared,
        },
        _reply(5, {"registered": True, "valid": False, "entries": [0, 0]}),
        {**_reply(4, -11), "observed": cleared},
        {
            **_reply(6, False),
            "observed": [
                {"range": 0, "registered": False, "valid": False, "entries": [0, 0]},
                {"range": 7, "error": {"kind": "rejected",
                                       "message": "no snapshot by this number in this case"}},
            ],
        },
        {"type": "bye"},
    ]  # fmt: skip
    assert (stderr, status) == ("", 0)


def test_refusals_are_error_replies_and_only_observe_comes_in_during_a_call(server: Path) -> None:
    """Misuse is rejected and REG-5's livelock is a would-hang, each leaving the state as it
    was; a request other than observe during a call is rejected; release calls each mirror."""
    said, _, status = _talk(
        server,
        HELLO,
        BEGIN,
        _request(2, "register", mirror=0, with_ops=True),
        _request(3, "register", mirror=1, with_ops=True),
        _request(4, "unregister", mirror=0),
        _request(5, "register", mirror=2, with_ops=True),
        _request(6, "range_done", range=9),
        _request(
            7,
            "snapshot",
            range=0,
            vma=0,
            start=65536,
            end=65536,
            encoding={**ENCODING, "pfn_shift": 99},
        ),
        _request(8, "invalidate_start", start=65536, end=69632, blockable=True),
        _request(9, "register", mirror=3, with_ops=True),
        _request(10, "observe", range=0),
        _answer(1, -2147483648),
        _request(11, "release"),
        _answer(2, None),
        {"type": "bye"},
    )
    assert status == 0
    errors = {message["id"]: message["error"] for message in said if "error" in message}
    assert errors[5]["kind"] == "would-hang"
    assert "retries for ever" in errors[5]["message"]
    assert [errors[id]["kind"] for id in (6, 7, 9, 10)] == ["rejected"] * 4
    assert "no snapshot by this number" in errors[10]["message"]
    assert "only observe" in errors[9]["message"]
    calls = [message for message in said if message["type"] == "call"]
    assert [(call["method"], call["mirror"]) for call in calls] == [("sync", 1), ("release", 1)]
    assert _reply(8, 0) in said
    assert _reply(11, None) in said


def test_numbers_and_strings_are_read_exactly(server: Path) -> None:
    """Unsigned 64-bit addresses and entries, the most negative C int, and every escape."""
    top = 2**64 - 2 * H.PAGE_SIZE
    escapes = r"\u20AC\u00c9\uD83D\uDE00\"\\\/\b\f\n\r\t\u0000"
    hello = '{"type": "hello", "protocol": 1, "harness": "' + escapes + ' é 😀"}'
    assert json.loads(hello)["harness"] == '€É😀"\\/\b\f\n\r\t\u0000 é 😀'
    pfn = 2**52 - 1
    encoding = {"flags": [2**63, 2**62, 1], "values": [2**64 - 1, 0, 2**64 - 2], "pfn_shift": 12}
    said, _, status = _talk(
        server,
        hello,
        _request(1, "begin", vmas=[{**VMA, "start": top, "end": top + H.PAGE_SIZE}]),
        _request(
            2, "snapshot", range=0, vma=0, start=top, end=top + H.PAGE_SIZE, encoding=encoding
        ),
        _answer(1, [{"kind": "device-private", "pfn": pfn, "write": True}]),
        _request(3, "observe", range=0),
    )
    assert status == 0
    entry = (pfn << 12) % 2**64 | 2**63 | 2**62 | 1
    assert said[-1] == _reply(3, {"registered": True, "valid": True, "entries": [entry]})


def test_the_server_leaves_quietly_when_its_input_closes(server: Path) -> None:
    """Input that ends, even while a call waits for its answer, ends the server with 0."""
    said, stderr, status = _talk(server, HELLO)
    assert [message["type"] for message in said] == ["hello"]
    assert (stderr, status) == ("", 0)
    said, stderr, status = _talk(
        server,
        HELLO,
        BEGIN,
        _request(2, "snapshot", range=0, vma=0, start=65536, end=69632, encoding=ENCODING),
    )
    assert said[-1]["type"] == "call"
    assert (stderr, status) == ("", 0)


def _after(*lines: dict[str, Any] | str) -> tuple[dict[str, Any] | str, ...]:
    return (HELLO, BEGIN, *lines)


def _snapshot_then(answer: object) -> tuple[dict[str, Any] | str, ...]:
    """A snapshot of two pages whose read_ptes call is answered with ``answer``."""
    return _after(
        _request(2, "snapshot", range=0, vma=0, start=65536, end=73728, encoding=ENCODING),
        _answer(1, answer),
    )


def _sync_then(*lines: dict[str, Any] | str) -> tuple[dict[str, Any] | str, ...]:
    """A mirror is called; then ``lines``."""
    return _after(
        _request(2, "register", mirror=0, with_ops=True),
        _request(3, "invalidate_start", start=65536, end=69632, blockable=True),
        *lines,
    )


NONE = {"kind": "none"}
BROKEN: dict[str, tuple[tuple[dict[str, Any] | str, ...], str]] = {
    "not JSON": ((HELLO, "nonsense"), "an unknown word"),
    "an odd character": ((HELLO, "@"), "an unexpected character"),
    "an empty line": ((HELLO, ""), "no value"),
    "text after the value": ((HELLO, '{"type": "bye"} {}'), "more after the value"),
    "not an object": ((HELLO, "[1, 2]"), "a message that is not an object"),
    "a fraction": ((HELLO, '{"id": 1.5}'), "a number that is not an integer"),
    "an exponent": ((HELLO, '{"id": 1e3}'), "a number that is not an integer"),
    "a leading zero": ((HELLO, '{"id": 01}'), "a number with a leading zero"),
    "a lone minus": ((HELLO, '{"id": -}'), "a number without digits"),
    "beyond 64 bits": ((HELLO, '{"id": 18446744073709551616}'), "an integer beyond 64 bits"),
    "below -2^63": ((HELLO, '{"id": -9223372036854775809}'), "an integer below -2^63"),
    "a key twice": ((HELLO, '{"type": "bye", "type": "bye"}'), "a key given twice"),
    "a key not a string": ((HELLO, "{1: 2}"), "an object key that is not a string"),
    "a key without colon": ((HELLO, '{"type" "bye"}'), "an object key without :"),
    "members without comma": ((HELLO, '{"a": 1 "b": 2}'), "an object without , or }"),
    "items without comma": ((HELLO, '{"a": [1 2]}'), "an array without , or ]"),
    "an unknown escape": ((HELLO, '{"a": "\\x"}'), "an unknown escape"),
    "a short unicode escape": ((HELLO, '{"a": "\\u12"}'), "without four hex digits"),
    "a lone high surrogate": ((HELLO, '{"a": "\\ud800x"}'), "a high surrogate without its low"),
    "a high then no low": ((HELLO, '{"a": "\\ud800\\u0041"}'), "a high surrogate without its"),
    "a lone low surrogate": ((HELLO, '{"a": "\\udc00"}'), "a lone low surrogate"),
    "a raw control character": ((HELLO, '{"a": "\t"}'), "a control character in a string"),
    "an unterminated string": ((HELLO, '{"a": "abc'), "an unterminated string"),
    "an unterminated escape": ((HELLO, '{"a": "abc\\'), "an unterminated string"),
    "too deep": ((HELLO, '{"a": ' + "[" * 20 + "]" * 20 + "}"), "values nested too deep"),
    "a line over 1 MiB": ((HELLO, " " * (1 << 20) + "{}"), "a line longer than 1 MiB"),
    "no hello first": ((BEGIN,), "a first message that is not hello"),
    "another protocol": (({**HELLO, "protocol": 2},), "does not speak protocol 1"),
    "a hello with extras": (({**HELLO, "x": 1},), "a field this message does not have"),
    "a harness not named": (({**HELLO, "harness": 5},), "a harness field that is not a string"),
    "an unknown type": ((HELLO, {"type": "hi"}), "a message that is neither request nor bye"),
    "a bye with extras": ((HELLO, {"type": "bye", "now": True}), "does not have"),
    "an unknown method": ((HELLO, _request(1, "fly")), "a request for an unknown method"),
    "a request id of 0": ((HELLO, _request(0, "release")), "a request id of 0"),
    "an unknown field": ((HELLO, _request(1, "release", x=1)), "a field this message does not"),
    "a missing field": ((HELLO, _request(1, "register", mirror=0)), "a field missing"),
    "a negative handle": (
        _after(_request(2, "register", mirror=-1, with_ops=True)),
        "a field that should be an unsigned integer",
    ),
    "a huge handle": (
        _after(_request(2, "register", mirror=2**31, with_ops=True)),
        "a handle too large for this server",
    ),
    "a bool that is not": (
        _after(_request(2, "register", mirror=0, with_ops="yes")),
        "a field that should be true or false",
    ),
    "vmas not a list": ((HELLO, _request(1, "begin", vmas={})), "vmas that are not a list"),
    "a vma not an object": ((HELLO, _request(1, "begin", vmas=[1])), "a vma that is not an obj"),
    "an encoding not an object": (
        _after(_request(2, "snapshot", range=0, vma=0, start=0, end=0, encoding=[])),
        "an encoding that is not an object",
    ),
    "two flags": (
        _after(
            _request(
                2,
                "snapshot",
                range=0,
                vma=0,
                start=0,
                end=0,
                encoding={**ENCODING, "flags": [1, 2]},
            )
        ),
        "an encoding array without three entries",
    ),
    "a negative value": (
        _after(
            _request(
                2,
                "snapshot",
                range=0,
                vma=0,
                start=0,
                end=0,
                encoding={**ENCODING, "values": [1, -2, 3]},
            )
        ),
        "an encoding entry that is not a u64",
    ),
    "read_ptes answered short": (_snapshot_then([NONE]), "without one entry a page"),
    "a pte not an object": (_snapshot_then([NONE, 7]), "a CPU entry that is not an object"),
    "a pte of no kind": (_snapshot_then([NONE, {"kind": "huge"}]), "an unknown kind"),
    "a present pte without pfn": (
        _snapshot_then([NONE, {"kind": "present", "write": True}]),
        "a field missing",
    ),
    "an empty pte with a pfn": (
        _snapshot_then([NONE, {"kind": "swap", "pfn": 1}]),
        "a field this message does not have",
    ),
    "an answer to another call": (_sync_then(_answer(7, 0)), "an answer to another call"),
    "an answer with extras": (
        _sync_then({**_answer(1, 0), "x": 1}),
        "a field this message does not have",
    ),
    "a sync answered with text": (_sync_then(_answer(1, "0")), "should be an integer"),
    "a sync answered too big": (_sync_then(_answer(1, 2**31)), "an answer beyond a C int"),
    "a sync answered too small": (_sync_then(_answer(1, -(2**31) - 1)), "beyond a C int"),
    "a bye during a call": (_sync_then({"type": "bye"}), "no answer while a call waits"),
    "an observe that is a list": (
        _after(_request(2, "release", observe=[0])),
        "an observe field that is not an object",
    ),
    "an observe without in_sync": (
        _after(_request(2, "release", observe={"after": []})),
        "a field missing",
    ),
    "an observe of a list": (
        _after(_request(2, "release", observe={"after": 0, "in_sync": []})),
        "an observe list that is not a list",
    ),
    "an observe of a negative range": (
        _after(_request(2, "release", observe={"after": [-1], "in_sync": []})),
        "an observe list entry that is not a range number",
    ),
    "an observe of a huge range": (
        _after(_request(2, "release", observe={"after": [], "in_sync": [2**31]})),
        "an observe list entry that is not a range number",
    ),
    "a release answered 0": (
        _after(
            _request(2, "register", mirror=0, with_ops=True), _request(3, "release"), _answer(1, 0)
        ),
        "an answer to release that is not null",
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_harness_that_breaks_the_protocol_ends_the_server(server: Path, case: str) -> None:
    """The server says what is wrong on stderr, quotes the line, and exits with 2; what it
    said before on stdout was protocol messages only."""
    lines, problem = BROKEN[case]
    _, stderr, status = _talk(server, *lines)
    assert status == 2
    assert "hmm-c-server: protocol error: " in stderr
    assert problem in stderr
    assert "in the line: " in stderr


def test_a_run_over_the_wire_sees_what_the_run_in_process_sees(server: Path) -> None:
    """Through the wire adapter the server conforms with the very verdicts of the in-process
    core, and every line either side sent in that run, a strict refusal included, fits its
    schema."""
    log = io.StringIO()
    candidate, handshake = start(exec_factory([str(server)], log=log))
    try:
        over_wire = run(candidate, handshake, budget=BUDGET, seed_value=SEED)
        assert isinstance(candidate, WireCandidate)
        assert candidate.observes_ahead()
        livelock = (
            RegisterMirror(mirror=0),
            RegisterMirror(mirror=1),
            UnregisterMirror(mirror=0),
            RegisterMirror(mirror=2),
        )
        world = World(vmas=VMAS)
        strict = replay(candidate, handshake, Case(world=world, ops=livelock), Profile.STRICT)
    finally:
        close_quietly(candidate)
    in_process = run(*start(c_core), budget=BUDGET, seed_value=SEED)
    plain, plain_handshake = start(exec_factory([str(server)], extensions=False))
    try:
        in_1_0 = run(plain, plain_handshake, budget=BUDGET, seed_value=SEED)
    finally:
        close_quietly(plain)
    assert over_wire.conforms
    assert over_wire.tally.counts == in_process.tally.counts == in_1_0.tally.counts
    assert isinstance(strict, Failure)
    assert {verdict.rule for verdict in strict.verdicts} == {"REG-5"}
    kinds: set[str] = set()
    for line in log.getvalue().splitlines():
        direction, text = line.split(" ", 1)
        message = json.loads(text)
        (TO_CANDIDATE if direction == ">" else TO_HARNESS).validate(message)
        kinds.add(f"{direction}{message['type']}:{message.get('method', '')}")
    assert {"<call:sync", "<call:release", "<call:read_ptes", "<bye:"} <= kinds
    assert '"in_sync":[0' in log.getvalue()  # the views came ahead, in the calls too
