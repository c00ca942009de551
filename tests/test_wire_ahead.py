"""Wire protocol 1.1's observe-ahead: negotiated, byte for byte 1.0 without it, the same
verdicts with it, and PROTOCOL for a candidate that sends its views wrong."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from conformance import (
    Budget,
    Capability,
    Case,
    CoreOperation,
    Failure,
    FaultSnapshot,
    InvalidateStart,
    Profile,
    RangeView,
    RegisterMirror,
    Snapshot,
    VmaSpec,
    World,
    reference,
    replay,
    run,
    start,
)
from conformance._version import package_version
from conformance.core._adapter import (
    CandidateCrashed,
    CandidateFault,
    CandidateProtocolError,
    CandidateRejected,
)
from conformance.core._catalogue import CATALOGUE
from conformance.core._side import CORE, close_quietly
from conformance.core._watched import WatchedCandidate
from conformance.core._wire import WireCandidate, exec_factory
from conformance.core._wire_server import serve
from conformance.oracle import Status
from hmm_ref import HmmUpdate, PfnEncoding, Pte

from .test_wire import (
    REFERENCE_SERVER,
    SNAP,
    TO_CANDIDATE,
    TO_HARNESS,
    WORLD,
    _Cpu,
    documented_exchange,
    no_process_left_behind,  # noqa: F401 - autouse: no child process is left running here either
    server,
)
from .wire_servers import Misbehaving

TAPE = Path(__file__).with_name("data") / "wire-1.0-tape.json"
AHEAD = '"minor":1,"extensions":["observe-ahead"]'
HELLO = '{"type":"hello","protocol":1,"name":"s","version":"1","capabilities":[],' + AHEAD + "}"


# -- 1.0 stays 1.0 ------------------------------------------------------------------------------


def test_a_candidate_that_offers_nothing_hears_what_it_heard_in_1_0(tmp_path: Path) -> None:
    """The tape was recorded before 1.1: the reference served by a 1.0 ``serve``, and the
    harness's log of replaying the tape's cases. Played back by a server that exits at the first
    line the harness says otherwise, today's harness gives the very same log."""
    tape = json.loads(TAPE.read_text())
    harness = f"hmm-conformance {package_version()}"
    recorded = [line.replace("hmm-conformance 0.1.0", harness) for line in tape["log"]]
    script = tmp_path / "tape.json"
    script.write_text(json.dumps(recorded))
    log = io.StringIO()
    candidate, handshake = start(exec_factory(server("tape", str(script)), log=log))
    try:
        assert isinstance(candidate, WireCandidate)
        assert not candidate.observes_ahead()
        for document in tape["cases"]:
            case = CORE.case_from_json(document)
            replay(candidate, handshake, case, Profile.STRICT, stop_at_failure=False)
    finally:
        close_quietly(candidate)
    assert log.getvalue().splitlines() == recorded
    assert len(recorded) > 800
    assert any('"method":"sync"' in line for line in recorded)


def test_a_harness_told_not_to_use_extensions_speaks_1_0_to_a_1_1_server() -> None:
    """``extensions=False``: the server offers observe-ahead, and no request asks for it."""
    log = io.StringIO()
    candidate, handshake = start(exec_factory(REFERENCE_SERVER, log=log, extensions=False))
    try:
        assert isinstance(candidate, WireCandidate)
        assert not candidate.observes_ahead()
        replay(candidate, handshake, DOCUMENTED, Profile.SEED)
    finally:
        close_quietly(candidate)
    assert '"extensions":["observe-ahead"]' in log.getvalue()
    assert '"observe":{' not in log.getvalue()
    assert '"observed"' not in log.getvalue()


# -- the same verdicts --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> list[Case]:
    """The cases of a short run against the reference in process."""
    cases: list[Case] = []
    budget = Budget(name="corpus", examples=12, steps=12)
    run(reference(), reference().handshake(), budget=budget, seed_value=1, keep=cases)
    return cases


#: The reference and the catalogue's hand-written entries (the blind set's add CI time, not
#: kinds of exchange).
SPECS = ["conformance:reference"] + [
    f"conformance.core._catalogue:{type(entry.make()).__name__}"
    for entry in CATALOGUE
    if not entry.name.startswith("blind-")
]


@pytest.mark.parametrize("spec", SPECS)
def test_observe_ahead_changes_no_verdict(corpus: list[Case], spec: str) -> None:
    """Every case of the corpus (up to its first failure), served with and without
    observe-ahead: the same observations, calls and verdicts, in fewer round trips."""
    outcomes, trips = [], []
    for ahead in (True, False):
        argv = [*REFERENCE_SERVER, "--adapter", spec]
        candidate, handshake = start(exec_factory(argv, extensions=ahead))
        # A candidate without the fault capability is driven through the cases it can take.
        cases = [
            c
            for c in corpus
            if Capability.FAULT in handshake.capabilities
            or not any(isinstance(op, FaultSnapshot) for op in c.ops)
        ]
        assert cases
        try:
            outcomes.append([replay(candidate, handshake, c, Profile.SEED) for c in cases])
            assert isinstance(candidate, WireCandidate)
            trips.append(candidate.round_trips)
        finally:
            close_quietly(candidate)
    assert outcomes[0] == outcomes[1]
    assert trips[0] < trips[1]  # the views came ahead


# -- the documented exchange, and what it costs ---------------------------------------------------

ENCODING = PfnEncoding(flags=(1, 2, 4), values=(504, 0, 1008), pfn_shift=8)
DOCUMENTED = Case(
    world=World(
        vmas=(VmaSpec(start=0x10000, end=0x20000, read=True, write=True, special=False),),
        ptes=((0x10000, Pte.present(42, write=True)),),
    ),
    ops=(
        RegisterMirror(mirror=0),
        Snapshot(range=0, vma=0, start=0x10000, end=0x12000, encoding=ENCODING),
        InvalidateStart(start=0x10000, end=0x11000, blockable=False, replies=((0, -11),)),
    ),
)


def test_the_documented_1_1_exchange_is_what_harness_and_server_say() -> None:
    """docs/wire-protocol.md's 1.1 example: valid messages; the server's very lines for the
    harness's; and the harness's very lines for its case."""
    exchange = documented_exchange("Version 1.1: observe-ahead", "The case of")
    for direction, message in exchange:
        (TO_CANDIDATE if direction == ">" else TO_HARNESS).validate(message)
    harness = [m for d, m in exchange if d == ">"]
    sink = io.BytesIO()
    source = b"".join(json.dumps(m).encode() + b"\n" for m in harness)
    assert serve(reference(), io.BytesIO(source), sink, io.StringIO()) == 0
    said = [json.loads(line) for line in sink.getvalue().splitlines()]
    said[0]["version"] = "0.1.0"
    assert said == [m for d, m in exchange if d == "<"]
    log = io.StringIO()
    candidate, handshake = start(exec_factory(REFERENCE_SERVER, log=log))
    try:
        assert replay(candidate, handshake, DOCUMENTED, Profile.SEED) is not None
    finally:
        close_quietly(candidate)
    sent = [json.loads(line[2:]) for line in log.getvalue().splitlines() if line[0] == ">"]
    sent[0]["harness"] = "hmm-conformance 0.1.0"
    assert sent == harness


@pytest.mark.parametrize(("ahead", "trips"), [(True, 7), (False, 10)])
def test_observe_ahead_saves_a_round_trip_for_each_view(ahead: bool, trips: int) -> None:
    """The documented case: four requests and three calls with it; with 1.0, three observe
    requests more (after the snapshot, inside the callback, after the invalidation)."""
    candidate, handshake = start(exec_factory(REFERENCE_SERVER, extensions=ahead))
    try:
        steps = replay(candidate, handshake, DOCUMENTED, Profile.SEED)
        assert isinstance(candidate, WireCandidate)
        assert candidate.round_trips == trips
    finally:
        close_quietly(candidate)
    assert not isinstance(steps, Failure)
    (call,) = steps[-1].observation.calls
    assert call.seen == ((0, RangeView(registered=True, valid=False, entries=(0, 0))),)


def test_a_watched_candidate_observes_ahead_when_what_it_watches_does() -> None:
    wire = WatchedCandidate(exec_factory(REFERENCE_SERVER)(), seconds=10)
    try:
        wire.handshake()
        assert wire.observes_ahead()
        steps = replay(wire, wire.handshake(), DOCUMENTED, Profile.SEED)
        assert isinstance(wire.inner, WireCandidate)
        assert wire.inner.round_trips == 7
        assert not isinstance(steps, Failure)
    finally:
        close_quietly(wire)
    assert not WatchedCandidate(reference(), seconds=10).observes_ahead()


# -- a candidate that sends its views wrong -------------------------------------------------------

INVALIDATED: tuple[CoreOperation, ...] = (
    RegisterMirror(mirror=0),
    SNAP,
    InvalidateStart(start=SNAP.start, end=SNAP.end, blockable=True),
)


@pytest.mark.parametrize(
    ("mode", "status", "detail"),
    [
        ("ahead-dropped", Status.PROTOCOL,
         "snapshot: no observed in the reply, where the views of r0 were asked"),
        ("ahead-renumbered", Status.PROTOCOL,
         "snapshot: message.observed[0].range: r1, where r0 was asked for"),
        ("ahead-shortened", Status.PROTOCOL,
         "snapshot: message.observed: 0 observations for the 1 ranges asked for (r0)"),
        ("observe-hang", Status.HANG, "snapshot: no answer within 0.3 s"),
        ("observe-exit", Status.CRASH, "snapshot: the candidate exited with status 4"),
        ("observe-refused", Status.PROTOCOL,
         "observe(r0) was refused: r0 is none of your business"),
        ("observe-raises", Status.CRASH, "observe: the candidate reported a crash: Traceback"),
    ],
)  # fmt: skip
def test_views_sent_wrong_get_their_verdict_and_the_harness_goes_on(
    mode: str, status: Status, detail: str
) -> None:
    """Each case ends at the snapshot, the first step with a view to send, with its verdict;
    the next case runs on a fresh process and ends there too."""
    candidate, handshake = start(
        exec_factory(server(mode), step_timeout=0.3 if mode == "observe-hang" else 10)
    )
    try:
        for _ in range(2):
            failure = replay(candidate, handshake, Case(world=WORLD, ops=INVALIDATED), Profile.SEED)
            assert isinstance(failure, Failure)
            (verdict,) = failure.verdicts
            assert verdict.status is status
            assert detail in verdict.detail
            assert len(failure.steps) == 2
    finally:
        close_quietly(candidate)


def scripted(*responses: str) -> WireCandidate:
    """A 1.1 candidate offering observe-ahead that answers each line with the next response."""
    candidate = WireCandidate(server("script", HELLO, *responses), step_timeout=2)
    candidate.handshake()
    candidate._cpu = _Cpu()  # as begin() would have set it
    return candidate


class _Ops:
    """A mirror whose sync looks at range 0, as the executor does inside a callback."""

    def __init__(self, candidate: WireCandidate) -> None:
        self.candidate = candidate
        self.seen: list[RangeView] = []

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        self.seen.append(self.candidate.observe(0))
        return 0

    def release(self) -> None:
        raise AssertionError("release was not to be called")


VIEW = '{"range":0,"registered":true,"valid":true,"entries":[7]}'
SYNC = '{"type":"call","id":1,"method":"sync","mirror":0,"update":{"start":0,"end":4096,' \
    '"event":"invalidate","blockable":true}%s}'  # fmt: skip


@pytest.mark.parametrize(
    ("after", "in_sync", "responses", "message"),
    [
        ((), (), ['{"type":"reply","id":1,"result":null,"observed":[]}'],
         "observed in the reply, where no views were asked for"),
        ((0, 1), (), ['{"type":"reply","id":1,"result":null}'],
         "no observed in the reply, where the views of r0, r1 were asked"),
        ((0,), (), ['{"type":"reply","id":1,"result":null,"observed":3}'],
         "message.observed: expected a list, got 3"),
        ((0,), (), ['{"type":"reply","id":1,"result":null,"observed":[{"range":0,"error":'
                    '{"kind":"would-hang","message":"?"}}]}'],
         "message.observed[0].error.kind: 'would-hang' is not rejected or crash"),
        ((0,), (), ['{"type":"reply","id":1,"result":null,"observed":[{"range":0,'
                    '"registered":true,"valid":true,"entries":[-1]}]}'],
         "message.observed[0].entries[0]: expected an unsigned 64-bit integer"),
        ((0,), (), ['{"type":"reply","id":1,"error":{"kind":"rejected","message":"no"}}'],
         "no observed in the reply, where the views of r0 were asked"),
        ((), (0,), [SYNC % ""], "no observed in a sync call, where the views of r0 were asked"),
        ((), (), [SYNC % f',"observed":[{VIEW}]'],
         "observed in a sync call, where no views were asked for"),
    ],
)  # fmt: skip
def test_the_client_refuses_views_that_do_not_fit(
    after: tuple[int, ...], in_sync: tuple[int, ...], responses: list[str], message: str
) -> None:
    candidate = scripted(*responses)
    candidate._mirrors[0] = _Ops(candidate)
    candidate.expect_observes(after, in_sync)
    with pytest.raises(CandidateProtocolError, match=re.escape(message)):
        candidate.unregister(0)
    with pytest.raises(CandidateCrashed, match="not running"):
        candidate.unregister(0)


def test_the_client_hands_out_views_sent_ahead_and_what_their_refusals_mean() -> None:
    """A view comes back once, in the sync call it came with or after the reply; a refused
    observation is refused again, a crashed one stops the candidate; a crash reply's views
    are never looked at."""
    refused = '{"range":1,"error":{"kind":"rejected","message":"not r1"}}'
    crashed = '{"range":2,"error":{"kind":"crash","message":"gone"}}'
    candidate = scripted(
        SYNC % f',"observed":[{VIEW}]',
        f'{{"type":"reply","id":1,"result":null,"observed":[{VIEW},{refused},{crashed}]}}',
    )
    ops = _Ops(candidate)
    candidate._mirrors[0] = ops
    candidate.expect_observes((0, 1, 2), (0,))
    candidate.unregister(0)
    assert ops.seen == [RangeView(registered=True, valid=True, entries=(7,))]
    assert candidate.observe(0) == ops.seen[0]
    assert candidate.round_trips == 2  # the request, and the sync call's answer
    with pytest.raises(CandidateRejected, match="not r1"):
        candidate.observe(1)
    with pytest.raises(CandidateCrashed, match="observe: the candidate reported a crash: gone"):
        candidate.observe(2)
    assert candidate._process is None
    candidate = scripted(
        f'{{"type":"reply","id":1,"result":null,"observed":[{VIEW}]}}',
        '{"type":"reply","id":2,"result":{"registered":false,"valid":false,"entries":[]}}',
    )
    candidate.expect_observes((0,), ())
    candidate.unregister(0)
    assert candidate.observe(0).registered is True
    assert candidate.observe(0).registered is False  # handed out once: then asked for
    assert candidate.round_trips == 2
    candidate = scripted(
        '{"type":"reply","id":1,"error":{"kind":"crash","message":"boom"},"observed":[]}'
    )
    candidate.expect_observes((0,), ())
    with pytest.raises(CandidateCrashed, match="the candidate reported a crash: boom"):
        candidate.unregister(0)


def test_a_nested_refusal_is_the_callback_s_own() -> None:
    """Inside a sync call that brought no views, the callback's observe is a nested request as
    in 1.0; its refusal reaches the callback, and the step's request goes on in step."""
    candidate = scripted(
        SYNC % "", '{"type":"reply","id":2,"error":{"kind":"rejected","message":"not now"}}'
    )
    candidate._mirrors[0] = _Ops(candidate)
    candidate.expect_observes((), ())
    with pytest.raises(CandidateRejected, match="not now"):
        candidate.unregister(0)
    assert candidate._process is not None
    close_quietly(candidate)


@pytest.mark.parametrize(
    ("hello", "message"),
    [
        (HELLO.replace('"minor":1', '"minor":2'),
         "it speaks wire protocol 1.2; this harness speaks 1.0 and 1.1: say minor 1"),
        (HELLO.replace('"minor":1,', ""), "extensions come with minor 1, not in 1.0"),
        (HELLO.replace('"minor":1', '"minor":0'), "extensions come with minor 1, not in 1.0"),
        (HELLO.replace("observe-ahead", "teleport"),
         "extensions[0]: 'teleport' is not one of observe-ahead"),
    ],
)  # fmt: skip
def test_a_hello_of_another_minor_version_is_a_protocol_failure(hello: str, message: str) -> None:
    with pytest.raises(CandidateProtocolError, match=re.escape(message)):
        WireCandidate(server("script", hello), step_timeout=2).handshake()


def test_a_1_0_hello_may_say_minor_0_and_a_restart_must_offer_what_the_first_did(
    tmp_path: Path,
) -> None:
    plain = HELLO.replace(f",{AHEAD}", ',"minor":0')
    candidate = WireCandidate(server("script", plain, '{"type":"bye"}'), step_timeout=2)
    assert candidate.handshake().name == "s"
    assert not candidate.observes_ahead()
    candidate.close()
    script = tmp_path / "script.json"
    script.write_text(json.dumps([HELLO, "<exit>"]))
    candidate = WireCandidate(server("script-file", str(script)), step_timeout=2)
    candidate.handshake()
    with pytest.raises(CandidateFault):
        candidate.unregister(0)
    script.write_text(json.dumps([plain]))
    with pytest.raises(CandidateProtocolError, match="the restarted candidate said"):
        candidate.begin(_Cpu())


# -- the Python server ---------------------------------------------------------------------------

VMA = {"start": 0x10000, "end": 0x20000, "read": True, "write": True, "special": False}
BEGIN = {"type": "request", "id": 1, "method": "begin", "vmas": [VMA]}
WIRE_ENCODING = {"flags": [1, 2, 4], "values": [504, 0, 1008], "pfn_shift": 8}


def _request(number: int, method: str, **fields: Any) -> dict[str, Any]:
    return {"type": "request", "id": number, "method": method, **fields}


def _served(mode: str, *messages: dict[str, Any]) -> tuple[int, list[dict[str, Any]], str]:
    hello = {"type": "hello", "protocol": 1, "harness": "test"}
    source = b"".join(json.dumps(m).encode() + b"\n" for m in (hello, BEGIN, *messages))
    sink, errors = io.BytesIO(), io.StringIO()
    status = serve(Misbehaving(mode), io.BytesIO(source), sink, errors)
    return (
        status,
        [json.loads(line) for line in sink.getvalue().splitlines()[2:]],
        errors.getvalue(),
    )


def _snapshot(number: int, **fields: Any) -> dict[str, Any]:
    return _request(number, "snapshot", range=0, vma=0, start=0x10000, end=0x11000,
                    encoding=WIRE_ENCODING, **fields)  # fmt: skip


def test_the_server_sends_views_with_replies_and_calls_and_none_with_nested_replies() -> None:
    status, said, _ = _served(
        "none",
        _request(2, "register", mirror=0, with_ops=True),
        _snapshot(3),
        {"type": "answer", "id": 1, "result": [{"kind": "present", "pfn": 9, "write": True}]},
        _request(4, "invalidate_start", start=0x10000, end=0x11000, blockable=True,
                 observe={"after": [0, 1], "in_sync": [0]}),
        _request(5, "observe", range=0),
        {"type": "answer", "id": 2, "result": 0},
        _request(6, "range_done", range=1, observe={"after": [0], "in_sync": []}),
        _request(7, "snapshot", range=1, vma=9, start=0, end=4096, encoding=WIRE_ENCODING,
                 observe={"after": [0], "in_sync": []}),
    )  # fmt: skip
    assert status == 0
    cleared = {"range": 0, "registered": True, "valid": False, "entries": [0]}
    assert said[3]["observed"] == [cleared]  # the sync call
    assert said[4] == {"type": "reply", "id": 5, "result": {k: v for k, v in cleared.items()
                                                             if k != "range"}}  # fmt: skip
    never = {"kind": "rejected", "message": "range r1 was never snapshotted"}
    assert said[5]["observed"] == [cleared, {"range": 1, "error": never}]
    assert said[6] == {"type": "reply", "id": 6, "error": never, "observed": [cleared]}
    assert said[7]["error"]["kind"] == "crash"
    assert "observed" not in said[7]


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("observe-refused", {"kind": "rejected", "message": "r0 is none of your business"}),
        ("observe-raises", {"kind": "crash"}),
    ],
)
def test_the_server_sends_an_observation_that_fails_as_its_error(
    mode: str, error: dict[str, str]
) -> None:
    status, said, _ = _served(mode, _request(2, "release", observe={"after": [0], "in_sync": []}))
    assert status == 0
    (seen,) = said[0]["observed"]
    assert seen["range"] == 0
    assert error.items() <= seen["error"].items()
    if error["kind"] == "crash":
        assert "RuntimeError: lost r0" in seen["error"]["message"]


def test_the_server_leaves_when_the_harness_goes_or_errs_while_an_observation_calls_it() -> None:
    status, said, errors = _served(
        "observe-reads-cpu", _request(2, "release", observe={"after": [0], "in_sync": []})
    )
    assert (status, errors) == (0, "")
    assert said[-1]["method"] == "read_ptes"
    bad_answer = {"type": "answer", "id": 1, "result": 7}
    status, _, errors = _served(
        "observe-reads-cpu",
        _request(2, "release", observe={"after": [0], "in_sync": []}),
        bad_answer,
    )
    assert status == 2
    assert "message.result: expected a list, got 7" in errors


@pytest.mark.parametrize(
    ("observe", "message"),
    [
        ([0], "message.observe: expected an object"),
        ({"after": [0]}, "message.observe: missing field 'in_sync'"),
        ({"after": [-1], "in_sync": []}, "message.observe.after[0]: expected a range number"),
        ({"after": [], "in_sync": [True]}, "message.observe.in_sync[0]: expected a range number"),
        ({"after": [], "in_sync": [], "before": []}, "message.observe: unknown field 'before'"),
    ],
)
def test_the_server_exits_2_on_an_observe_it_cannot_read(observe: object, message: str) -> None:
    status, _, errors = _served("none", _request(2, "release", observe=observe))
    assert status == 2
    assert message in errors
