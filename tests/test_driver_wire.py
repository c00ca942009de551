"""The driver side over the wire: the same verdicts as in process, the schemas, the documented
exchange, and isolation from broken driver servers."""

from __future__ import annotations

import importlib.resources
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest

from conformance import AdapterError, Budget, VmaSpec, World, main, reference
from conformance._connect import connect
from conformance._errors import CandidateProtocolError
from conformance._side import Failure
from conformance.core._wire_server import serve
from conformance.driver._adapter import DriverCandidate, DriverHandshake
from conformance.driver._host import LOCK_PRIMITIVES, SLEEP_POINTS
from conformance.driver._ops import (
    DriverCase,
    DriverOp,
    NotifierStart,
    RunFault,
    StartFault,
    StepFault,
)
from conformance.driver._reference import reference_driver
from conformance.driver._side import DRIVER, replay_driver, run_driver, start_driver
from conformance.driver._wire import DRIVER_CALL_FIELDS, DRIVER_REQUEST_FIELDS, driver_exec_factory
from conformance.driver._wire_server import _Release, serve_driver
from conformance.oracle import Status
from hmm_ref import HmmUpdate, PfnEncoding, Pte

from .driver_candidates import catalogue_driver
from .test_wire import documented_exchange

SERVERS = str(Path(__file__).with_name("driver_wire_servers.py"))
SERVED = [sys.executable, "-m", "conformance", "serve", "--side", "driver"]
SMALL = Budget(name="small", examples=30, steps=12)

VMA = VmaSpec(start=0x10000, end=0x20000, read=True, write=True, special=False)
WORLD = World(vmas=(VMA,), ptes=((0x10000, Pte.present(42, write=True)),))
ENCODING = PfnEncoding(flags=(1, 2, 4), values=(504, 0, 1008), pfn_shift=8)
PAGE = (0x10000, 0x11000)
PAGES = (0x10000, 0x11000)
FAULT = (StartFault(fault=0, start=PAGE[0], end=PAGE[1]), RunFault(fault=0))
#: The page mapped, and a second fault holding D when a non-blockable invalidation comes.
HELD = (*FAULT, StartFault(fault=1, start=PAGE[0], end=PAGE[1]), StepFault(fault=1),
        StepFault(fault=1), NotifierStart(start=PAGE[0], end=PAGE[1], blockable=False))  # fmt: skip


def server(mode: str, *args: str) -> list[str]:
    return [sys.executable, SERVERS, mode, *args]


def schema(direction: str) -> jsonschema.Draft202012Validator:
    text = (
        importlib.resources.files("conformance")
        .joinpath(f"schemas/wire-v1-driver-{direction}.schema.json")
        .read_text()
    )
    return jsonschema.Draft202012Validator(json.loads(text))


TO_DRIVER = schema("to-candidate")
TO_HARNESS = schema("to-harness")


def started(argv: list[str], **kwargs: Any) -> tuple[DriverCandidate, DriverHandshake]:
    return start_driver(driver_exec_factory(argv, **kwargs))


def replayed(
    argv: list[str],
    ops: tuple[DriverOp, ...],
    timeout: float = 10.0,
    world: World = WORLD,
    log: io.StringIO | None = None,
) -> Failure[Any, Any]:
    """The failure of the case ``ops`` against the server ``argv``, replayed twice: the second
    time on the fresh process started after the first one's fault (if there was one)."""
    candidate, handshake = started(argv, step_timeout=timeout, log=log)
    try:
        failures = [
            replay_driver(candidate, handshake, DriverCase(world=world, encoding=ENCODING, ops=ops))
            for _ in range(2)
        ]
    finally:
        candidate.close()
    first, second = failures
    assert isinstance(first, Failure)
    assert isinstance(second, Failure)
    assert rules(first) == rules(second)
    return first


def rules(failure: Failure[Any, Any]) -> list[tuple[str | None, Status]]:
    return [(verdict.rule, verdict.status) for verdict in failure.verdicts]


# -- the same verdicts over the wire as in process ------------------------------------------


@pytest.mark.parametrize(
    "name", ["reference", "sleeps-when-not-blockable", "keeps-lock-after-eagain"]
)
def test_a_driver_over_the_wire_is_judged_exactly_as_in_process(name: str) -> None:
    """Same seed, same draws, the same verdict counts: the reference, a driver whose blocking
    lock call fails over the wire (DRV-1), and one that keeps its lock (DRV-7)."""
    if name == "reference":
        argv, make = SERVED, cast("Callable[[], DriverCandidate]", reference_driver)
    else:
        argv = server("entry", name)
        make = catalogue_driver(name)
    candidate, handshake = started(argv)
    try:
        over_wire = run_driver(candidate, handshake, budget=SMALL, seed_value=1)
    finally:
        candidate.close()
    in_process = run_driver(*start_driver(make), budget=SMALL, seed_value=1)
    assert over_wire.tally.counts == in_process.tally.counts
    assert over_wire.tally.steps == in_process.tally.steps > 50
    assert over_wire.handshake == in_process.handshake
    if name == "reference":
        assert over_wire.conforms
    else:
        assert over_wire.failure is not None
        assert in_process.failure is not None
        assert over_wire.failure.case == in_process.failure.case
        # The same rules, statuses and what was seen; a sleep's detail names the wire's call
        # where in process it names the driver's line.
        assert rules(over_wire.failure) == rules(in_process.failure)


def test_a_stale_snapshot_reaches_the_driver_as_hmm_left_it() -> None:
    """HMM's range pass clears entries of the driver's own array; over the wire the next
    request carries them. A driver that commits a stale snapshot commits what HMM left (the
    page cleared), as in process, so only DRV-4 fails, never DRV-5."""
    two = (0x10000, 0x12000)
    ops = (
        StartFault(fault=0, start=two[0], end=two[1]),
        StepFault(fault=0),
        NotifierStart(start=PAGE[0], end=PAGE[1], blockable=True),
        RunFault(fault=0),
    )
    world = World(vmas=(VMA,), ptes=tuple((a, Pte.present(a >> 12, write=True)) for a in PAGES))
    name = "blind-inverted-range-done"
    failure = replayed(server("entry", name), ops, world=world)
    make = catalogue_driver(name)
    in_process = replay_driver(
        *start_driver(make), DriverCase(world=world, encoding=ENCODING, ops=ops)
    )
    assert isinstance(in_process, Failure)
    assert failure.verdicts == in_process.verdicts
    assert "committed 0x11000, but range_done" in failure.verdicts[0].detail
    assert rules(failure) == [("DRV-4", Status.FAIL)]


# -- the protocol's documents ----------------------------------------------------------------


def test_every_message_either_side_sends_fits_its_schema() -> None:
    """A run of the reference and the failing runs of drivers whose lock calls are refused
    (would-block) and misused (usage), and a crash reply, line by line."""
    log = io.StringIO()
    candidate, handshake = started(SERVED, log=log)
    try:
        run_driver(candidate, handshake, budget=SMALL, seed_value=1)
    finally:
        candidate.close()
    replayed(server("entry", "sleeps-when-not-blockable"), HELD, log=log)
    replayed(server("tamper-call", "range_done", "range", "7"), FAULT, log=log)
    kinds: set[str] = set()
    for line in log.getvalue().splitlines():
        direction, text = line.split(" ", 1)
        message = json.loads(text)
        (TO_DRIVER if direction == ">" else TO_HARNESS).validate(message)
        kinds.add(f"{direction}{message['type']}:{message.get('method', '')}")
        if "error" in message:
            kinds.add(f"error:{message['error']['kind']}")
        if "ranges" in message:
            kinds.add("ranges")
    for method in DRIVER_REQUEST_FIELDS:
        assert f">request:{method}" in kinds
    for call in DRIVER_CALL_FIELDS:
        assert f"<call:{call}" in kinds
    assert {">hello:", "<hello:", ">answer:", "<reply:", ">bye:", "<bye:", "ranges"} <= kinds
    assert {"error:would-block", "error:usage"} <= kinds


def test_the_examples_in_the_text_fit_the_schemas() -> None:
    examples = documented_exchange("The driver side")
    assert len(examples) > len(documented_exchange("The driver side", after="**One case"))
    for direction, message in examples:
        (TO_DRIVER if direction == ">" else TO_HARNESS).validate(message)


def test_the_schemas_refuse_what_the_protocol_refuses() -> None:
    assert TO_DRIVER.is_valid({"type": "request", "id": 1, "method": "release_would_block"})
    assert not TO_DRIVER.is_valid({"type": "request", "id": 1, "method": "register"})
    assert not TO_DRIVER.is_valid({"type": "hello", "protocol": 1, "harness": "h"})
    crash = {"kind": "crash", "message": "m"}
    assert not TO_DRIVER.is_valid({"type": "answer", "id": 1, "error": crash})
    assert not TO_HARNESS.is_valid({"type": "call", "id": 1, "method": "lock",
                                    "primitive": "yield", "lock": "l", "owner": "o"})  # fmt: skip
    assert not TO_HARNESS.is_valid({"type": "reply", "id": 1, "result": "jump"})
    assert not TO_HARNESS.is_valid({"type": "hello", "protocol": 1, "name": "n", "version": "v",
                                    "capabilities": []})  # fmt: skip


def test_the_schema_names_every_lock_primitive() -> None:
    calls: list[dict[str, Any]] = json.loads(json.dumps(TO_HARNESS.schema))["$defs"]["call"][
        "oneOf"
    ]
    call = next(c for c in calls if c["properties"]["method"]["const"] == "lock")
    assert set(call["properties"]["primitive"]["enum"]) == {*LOCK_PRIMITIVES, *SLEEP_POINTS}


def test_the_documented_exchange_is_what_the_server_says() -> None:
    """docs/wire-protocol.md's driver exchange: valid messages, and the server's very lines."""
    exchange = documented_exchange("The driver side", after="**One case, in full.**")
    assert len(exchange) > 30
    for direction, message in exchange:
        (TO_DRIVER if direction == ">" else TO_HARNESS).validate(message)
    harness = b"".join(json.dumps(m).encode() + b"\n" for d, m in exchange if d == ">")
    sink = io.BytesIO()
    candidate, handshake = start_driver(reference_driver)
    assert serve_driver(candidate, handshake, io.BytesIO(harness), sink, io.StringIO()) == 0
    said = [json.loads(line) for line in sink.getvalue().splitlines()]
    expected = [m for d, m in exchange if d == "<"]
    said[0]["version"] = expected[0]["version"]  # the package's version moves on
    assert said == expected


# -- isolation: each broken server gets its verdict, and the next case runs on ----------------


@pytest.mark.parametrize(
    ("argv", "ops", "status", "detail"),
    [
        (server("hang-on-sync"), (NotifierStart(start=PAGE[0], end=PAGE[1], blockable=True),),
         Status.HANG, "sync: no answer within 0.3 s"),
        (server("exit-mid-step"), FAULT, Status.CRASH,
         "exited with status 3; the end of its standard error:\nabout to exit in the middle"),
        (server("swallow-would-block"), HELD, Status.PROTOCOL,
         "a result after the harness answered a call with a would-block error"),
        (server("call-after-would-block"), HELD, Status.PROTOCOL,
         "a lock call after the harness answered a call with a would-block error"),
        (server("tamper-reply", "step_fault", "result", '"jump"'), FAULT, Status.PROTOCOL,
         "step 'jump' is not one of snapshot, lock, check, unlock"),
        (server("tamper-reply", "step_fault", "result", "3"), FAULT, Status.PROTOCOL,
         "result: expected a string"),
        (server("tamper-reply", "fault_view", "result", '{"next_step": "fly", "result": null}'),
         FAULT, Status.PROTOCOL, "next_step 'fly' is not one of"),
        (server("tamper-reply", "fault_view", "result", '{"next_step": null}'),
         FAULT, Status.PROTOCOL, "result"),
        (server("tamper-reply", "device_page_table", "result", '[{"addr": 4096}]'),
         FAULT, Status.PROTOCOL, "result[0]"),
        (server("tamper-reply", "fault_would_block", "result", "1"), FAULT, Status.PROTOCOL,
         "a reply to fault_would_block carries a bool result"),
        (server("tamper-reply", "start_fault", "error", '{"kind": "would-block", "message": "x"}'),
         FAULT, Status.PROTOCOL, "a would-block error, but the harness answered none"),
        (server("tamper-reply", "start_fault", "error", '{"kind": "oops", "message": "x"}'),
         FAULT, Status.PROTOCOL, "error.kind 'oops' is not would-block, usage or crash"),
        (server("tamper-reply", "start_fault", "error", '{"kind": "crash", "message": "boom"}'),
         FAULT, Status.CRASH, "the candidate reported a crash: boom"),
        (server("tamper-call", "lock", "primitive", '"yield"'), FAULT, Status.PROTOCOL,
         "lock primitive 'yield' is not one of mutex_lock"),
        (server("tamper-call", "lock", "lock", '"one.lock"'), FAULT, Status.CRASH,
         "one.lock is a Mutex, not a Spinlock: one name is one lock"),
        (server("tamper-call", "lock", "primitive", '"mutex_unlock"'), FAULT, Status.CRASH,
         "DriverUsageError: mutex_unlock: dmirror-mutex.lock is not held"),
        (server("tamper-call", "get_pfns", "start", "0"), FAULT, Status.CRASH,
         "UsageError: hmm_vma_get_pfns: no vma holds 0x0: a driver snapshots only inside a vma"),
        (server("tamper-call", "range_done", "range", "7"), FAULT, Status.CRASH,
         "UsageError: hmm_vma_range_done: range r7 was never snapshotted in this case"),
        (server("waits-in-sync"), (NotifierStart(start=PAGE[0], end=PAGE[1], blockable=False),),
         Status.FAIL, "might_sleep(a flush) in hmm_ref.ReferenceDriver (mutex): sync_cpu_device"),
        (server("tamper-call", "get_pfns", "range", "0"),
         (*FAULT[:1], StepFault(fault=0), StartFault(fault=1, start=PAGE[0], end=PAGE[1]),
          StepFault(fault=1)),
         Status.CRASH, "range r0 is still registered: call range_done on it first"),
        (server("tamper-call", "lock", "method", '"gossip"'), FAULT, Status.PROTOCOL,
         "unknown call 'gossip'; one of lock, get_pfns, range_done"),
    ],
)  # fmt: skip
def test_a_broken_driver_server_gets_its_verdict_and_the_harness_goes_on(
    argv: list[str], ops: tuple[DriverOp, ...], status: Status, detail: str
) -> None:
    failure = replayed(argv, ops, timeout=0.3 if "hang-on-sync" in argv else 10.0)
    verdict = failure.verdicts[-1]
    assert verdict.status is status, verdict
    assert detail in verdict.detail


@pytest.mark.parametrize(
    ("argv", "detail"),
    [
        (server("core-hello"), "names no lock: a driver names its lock D; a core candidate runs "
         "with --side core"),
        (server("tamper-hello", "-", "capabilities", '["fly"]'),
         "capabilities[0]: 'fly' is not one of release"),
        (server("tamper-hello", "-", "name", "3"), "message.name: expected a string, got 3"),
        (server("tamper-hello", "-", "protocol", '"1"'), "message.protocol: expected an integer"),
    ],
)  # fmt: skip
def test_a_hello_that_is_not_a_drivers_fails_before_the_first_case(
    argv: list[str], detail: str
) -> None:
    with pytest.raises(CandidateProtocolError) as raised:
        started(argv)
    assert detail in str(raised.value)


def test_the_handshake_is_read_once() -> None:
    candidate = driver_exec_factory(SERVED)()
    try:
        assert candidate.handshake() is candidate.handshake()
    finally:
        candidate.close()


def test_a_driver_runs_isolated_and_from_the_command_line(tmp_path: Path) -> None:
    """``--isolate`` serves a Python driver in a child process; ``exec:`` takes a program."""
    factory = connect(DRIVER, "conformance:reference_driver", isolate=True)
    candidate, handshake = start_driver(factory)
    try:
        result = run_driver(candidate, handshake, budget=Budget(name="b", examples=5, steps=8),
                            seed_value=1)  # fmt: skip
    finally:
        candidate.close()
    assert result.conforms
    assert "ReferenceDriver" in handshake.name
    with pytest.raises(AdapterError, match="--isolate runs a Python"):
        connect(DRIVER, "exec:prog", isolate=True)


# -- the Python driver server, line by line ----------------------------------------------------

HELLO = {"type": "hello", "protocol": 1, "side": "driver", "harness": "test"}
BEGIN = {"type": "request", "id": 1, "method": "begin",
         "vmas": [{"start": VMA.start, "end": VMA.end, "read": True, "write": True,
                   "special": False}],
         "encoding": {"flags": [1, 2, 4], "values": [504, 0, 1008], "pfn_shift": 8}}  # fmt: skip


def request(number: int, method: str, **fields: Any) -> dict[str, Any]:
    return {"type": "request", "id": number, "method": method, **fields}


def answer(number: int, result: Any) -> dict[str, Any]:
    return {"type": "answer", "id": number, "result": result}


#: A fault over PAGE up to holding D: its snapshot's call, then its lock's call, answered.
LOCKED = (
    request(2, "start_fault", fault=0, start=PAGE[0], end=PAGE[1]),
    request(3, "step_fault", fault=0),
    answer(1, {"ret": 0, "pfns": [10755]}),
    request(4, "step_fault", fault=0),
    answer(2, None),
)


def talk(*messages: dict[str, Any]) -> tuple[int, list[dict[str, Any]], str]:
    """Serve the reference driver the harness's ``messages``: exit status, what it said, and
    its standard error."""
    source = io.BytesIO(b"".join(json.dumps(m).encode() + b"\n" for m in messages))
    sink, errors = io.BytesIO(), io.StringIO()
    candidate, handshake = start_driver(reference_driver)
    status = serve_driver(candidate, handshake, source, sink, errors)
    return status, [json.loads(line) for line in sink.getvalue().splitlines()], errors.getvalue()


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ((BEGIN,), "expected the harness's hello"),
        (({**HELLO, "protocol": 2},), "the harness speaks wire protocol 2; this server speaks 1"),
        (({**HELLO, "side": "core"},), "speaks for the core side; this server serves the "
         "driver side: run the harness with --side driver"),
        ((HELLO, request(1, "register")), "unknown request method 'register'"),
        ((HELLO, answer(1, None)), "expected a request or bye"),
        ((HELLO, BEGIN, *LOCKED[:2], answer(7, None)), "expected the answer to call 1"),
        ((HELLO, BEGIN, *LOCKED[:2], answer(1, {"ret": 0, "pfns": [1, 2]})),
         "answer.result.pfns: 2 entries for 1 pages, each an integer"),
        ((HELLO, BEGIN, *LOCKED[:2], answer(1, {"ret": 0, "pfns": ["1"]})),
         "answer.result.pfns: 1 entries for 1 pages, each an integer"),
        ((HELLO, BEGIN, request(2, "device_page_table", ranges=[{"range": 0, "pfns": [0]}])),
         "range r0 is not one of the driver's"),
        ((HELLO, BEGIN, *LOCKED[:3], request(4, "device_page_table",
                                             ranges=[{"range": 0, "pfns": [0, 0]}])),
         "range r0 is not one of the driver's, or its pfns are not one integer per page"),
    ],
)  # fmt: skip
def test_a_harness_that_breaks_the_protocol_gets_exit_status_2(
    messages: tuple[dict[str, Any], ...], problem: str
) -> None:
    status, _, errors = talk(*messages)
    assert status == 2
    assert "the harness broke the wire protocol" in errors
    assert problem in errors


def test_the_core_server_refuses_a_harness_that_speaks_for_the_driver_side() -> None:
    errors = io.StringIO()
    source = io.BytesIO(json.dumps(HELLO).encode() + b"\n")
    assert serve(reference(), source, io.BytesIO(), errors) == 2
    assert "this server serves the core side: run the harness with --side core" in errors.getvalue()


def test_the_server_copies_what_hmm_wrote_into_the_drivers_range() -> None:
    """The range pass cleared the snapshot's entry: the fault finds it stale (range_done says
    so) and commits nothing."""
    status, said, _ = talk(
        HELLO, BEGIN, *LOCKED[:3],
        request(4, "device_page_table", ranges=[{"range": 0, "pfns": [0]}]),
        request(5, "step_fault", fault=0), answer(2, None),
        request(6, "step_fault", fault=0), answer(3, False),
        request(7, "device_page_table"),
    )  # fmt: skip
    assert status == 0
    assert said[-1] == {"type": "reply", "id": 7, "result": []}


@pytest.mark.parametrize(
    ("messages", "end"),
    [
        ((HELLO, BEGIN), "input"),
        ((HELLO, BEGIN, *LOCKED[:2], {"type": "bye"}), "bye in a call"),
    ],
)
def test_the_server_ends_quietly_when_the_harness_leaves(
    messages: tuple[dict[str, Any], ...], end: str
) -> None:
    status, said, errors = talk(*messages)
    assert (status, errors) == (0, ""), end
    assert said[0]["type"] == "hello"


@pytest.mark.parametrize(
    ("answered", "kind", "message"),
    [
        # mutex_lock answered as a trylock: the harness and the server disagree on the lock.
        (answer(2, True), "crash", "mutex_lock(dmirror-mutex.lock) by 'dmirror-mutex/fault1': "
         "the harness answered True, where this server's own lock says acquired"),
        # A misuse the harness saw: the request is abandoned and the error echoed.
        ({"type": "answer", "id": 2, "error": {"kind": "usage", "message": "not yours"}},
         "usage", "not yours"),
    ],
)  # fmt: skip
def test_a_lock_answer_decides_the_request(answered: dict[str, Any], kind: str,
                                           message: str) -> None:  # fmt: skip
    status, said, _ = talk(HELLO, BEGIN, *LOCKED[:4], answered)
    assert status == 0
    error = said[-1]["error"]
    assert error["kind"] == kind
    assert message in error["message"]


def test_a_blocking_call_the_harness_lets_through_is_a_disagreement() -> None:
    """The fault holds D; a blockable callback's mutex_lock would block on the server's own
    lock, so a harness that answers it as taken disagrees: a crash reply says so."""
    update = {"start": PAGE[0], "end": PAGE[1], "event": "invalidate", "blockable": True}
    status, said, _ = talk(
        HELLO, BEGIN, *LOCKED, request(5, "sync", update=update), answer(3, None)
    )
    assert status == 0
    assert "this server's own lock says would-block" in said[-1]["error"]["message"]


def test_the_local_mirror_hears_no_invalidation() -> None:
    """The served driver's updates come as sync requests; its local mm is never invalidated."""
    candidate, _ = start_driver(reference_driver)
    with pytest.raises(AssertionError, match="updates come as sync requests"):
        _Release(candidate).sync_cpu_device_pagetables(
            HmmUpdate(start=PAGE[0], end=PAGE[1], blockable=True)
        )


def test_after_release_the_served_drivers_mirror_is_unlinked() -> None:
    """HMM's release reaches the driver through its local mirror, which it unlinks first: a
    fault then maps nothing (-EFAULT) without asking HMM for a snapshot."""
    status, said, _ = talk(
        HELLO, BEGIN, request(2, "release"), *(answer(call, None) for call in range(1, 5)),
        request(3, "start_fault", fault=0, start=PAGE[0], end=PAGE[1]),
        request(4, "step_fault", fault=0), request(5, "fault_view", fault=0),
    )  # fmt: skip
    assert status == 0
    assert [m["method"] for m in said if m["type"] == "call"] == ["lock"] * 4
    assert said[-1]["result"] == {"next_step": None, "result": -14}


def test_a_failed_snapshot_ends_the_fault_with_its_error() -> None:
    status, said, _ = talk(
        HELLO, BEGIN, *LOCKED[:2], answer(1, {"ret": -14, "pfns": []}),
        request(4, "fault_view", fault=0),
    )  # fmt: skip
    assert status == 0
    assert said[-1]["result"] == {"next_step": None, "result": -14}


def test_a_trylock_and_a_refused_lock_are_answered_as_the_harness_says() -> None:
    """A non-blockable callback over a mapped page try-locks D (answered True); a blockable
    one while a fault holds D gets a would-block answer, and replies with that error."""
    update = {"start": PAGE[0], "end": PAGE[1], "event": "invalidate", "blockable": False}
    refused = {"kind": "would-block", "message": "held by the fault"}
    status, said, _ = talk(
        HELLO, BEGIN, *LOCKED,
        request(5, "step_fault", fault=0), answer(3, True), answer(4, None), answer(5, None),
        request(6, "step_fault", fault=0), answer(6, None),
        request(7, "sync", update=update), answer(7, None), answer(8, None), answer(9, True),
        answer(10, None), answer(11, None), answer(12, None),
        request(8, "device_page_table"),
        *LOCKED[:1], request(9, "step_fault", fault=0), answer(13, {"ret": 0, "pfns": [10755]}),
        request(10, "step_fault", fault=0), answer(14, None),
        request(11, "sync", update={**update, "blockable": True}),
        {"type": "answer", "id": 15, "error": refused},
    )  # fmt: skip
    assert status == 0
    replies = {m["id"]: m for m in said if m["type"] == "reply"}
    assert replies[7]["result"] == 0
    assert replies[8]["result"] == []
    assert replies[11]["error"] == refused


def test_cli_serve_side_driver_speaks_the_drivers_protocol(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(json.dumps(HELLO).encode() + b'\n{"type":"bye"}\n'))
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw))
    assert main(["serve", "--side", "driver"], stdout=io.StringIO()) == 0
    hello, bye = (json.loads(line) for line in raw.getvalue().splitlines())
    assert hello["lock"] == "dmirror-mutex.lock"
    assert bye == {"type": "bye"}
