"""The wire adapter and server: the protocol, its schemas, and isolation from broken candidates."""

from __future__ import annotations

import importlib.resources
import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest

from conformance import (
    BUDGETS,
    AdapterError,
    Budget,
    Candidate,
    Case,
    CoreOperation,
    CpuView,
    Failure,
    Handshake,
    InvalidateStart,
    Profile,
    RangeDone,
    RangeView,
    ReferenceCandidate,
    RegisterMirror,
    Snapshot,
    UnregisterMirror,
    VmaSpec,
    World,
    main,
    reference,
    replay,
    run,
    start,
)
from conformance._connect import connect, parse_exec
from conformance._generation import VMAS
from conformance._wire._process import exit_status, minimal_environment
from conformance.core._adapter import (
    CandidateCrashed,
    CandidateFault,
    CandidateHung,
    CandidateProtocolError,
)
from conformance.core._side import CORE, CoreResult, close_quietly
from conformance.core._watched import WatchedCandidate
from conformance.core._wire import (
    WireCandidate,
    exec_factory,
)
from conformance.core._wire_server import serve
from conformance.driver._reference import reference_driver
from conformance.driver._side import DRIVER
from conformance.driver._watched import WatchedDriver
from conformance.oracle import Status
from hmm_ref import HmmUpdate, PfnEncoding, Pte

ROOT = Path(__file__).resolve().parent.parent
SERVERS = str(Path(__file__).with_name("wire_servers.py"))
REFERENCE_SERVER = [sys.executable, "-m", "conformance", "serve"]
SMALL = Budget(name="small", examples=30, steps=12)


def server(mode: str, *args: str) -> list[str]:
    return [sys.executable, SERVERS, mode, *args]


def schema(direction: str) -> Any:
    text = (
        importlib.resources.files("conformance")
        .joinpath(f"schemas/wire-v1-{direction}.schema.json")
        .read_text()
    )
    return json.loads(text)


TO_CANDIDATE = jsonschema.Draft202012Validator(schema("to-candidate"))
TO_HARNESS = jsonschema.Draft202012Validator(schema("to-harness"))


def _children() -> dict[int, str]:
    """This process's child processes and their states (from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended while we looked
            continue
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if int(parent) == os.getpid():
            found[int(entry.name)] = state
    return found


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Every test here ends with no child process of ours running, and no zombie."""
    before = _children()
    yield
    assert {pid: s for pid, s in _children().items() if pid not in before} == {}


def started(argv: list[str], **kwargs: Any) -> tuple[Candidate, Handshake]:
    return start(exec_factory(argv, **kwargs))


def checked(
    argv: list[str],
    *,
    seed: int = 1,
    timeout: float = 5.0,
    budget: Budget = SMALL,
    log: io.StringIO | None = None,
) -> CoreResult:
    """A run of the candidate ``argv`` at ``seed``; the candidate is closed after."""
    candidate, handshake = started(argv, step_timeout=timeout, log=log)
    try:
        return run(candidate, handshake, budget=budget, seed_value=seed)
    finally:
        close_quietly(candidate)


# -- the reference over the wire ---------------------------------------------------------------


def test_the_reference_over_the_wire_is_judged_exactly_as_in_process() -> None:
    """Same seed, same draws: the served reference gets the very verdicts of the in-process one."""
    over_wire = checked(REFERENCE_SERVER, seed=11, budget=BUDGETS["fast"])
    in_process = run(reference(), reference().handshake(), budget=BUDGETS["fast"], seed_value=11)
    assert over_wire.conforms
    assert over_wire.tally.counts == in_process.tally.counts
    assert over_wire.tally.steps == in_process.tally.steps > 100
    assert over_wire.handshake == in_process.handshake


def test_every_message_either_side_sends_fits_its_schema() -> None:
    """A strict run (refusals, would-hang, nested observes) and a crash reply, line by line."""
    log = io.StringIO()
    candidate, handshake = started(REFERENCE_SERVER, log=log)
    try:
        assert run(candidate, handshake, budget=SMALL, seed_value=11).failure is None
        # The strict profile's documented failure of the reference: a register after an
        # unregister would livelock (REG-5), said as a would-hang error.
        livelock = (*REGISTERED, RegisterMirror(mirror=1), UnregisterMirror(mirror=0),
                    RegisterMirror(mirror=2))  # fmt: skip
        strict = replay(candidate, handshake, Case(world=WORLD, ops=livelock), Profile.STRICT)
    finally:
        close_quietly(candidate)
    assert isinstance(strict, Failure)
    candidate, handshake = started(server("crash-on-read-only-vma"), log=log)
    try:
        read_only = replace(SNAP, vma=1, start=VMAS[1].start, end=VMAS[1].start + 0x1000)
        crash = replay(candidate, handshake, Case(world=WORLD, ops=(read_only,)), Profile.SEED)
    finally:
        close_quietly(candidate)
    assert isinstance(crash, Failure)
    lines = log.getvalue().splitlines()
    kinds: set[str] = set()
    for line in lines:
        direction, text = line.split(" ", 1)
        message = json.loads(text)
        validator = TO_CANDIDATE if direction == ">" else TO_HARNESS
        validator.validate(message)
        kinds.add(f"{direction}{message['type']}:{message.get('method', '')}")
        if "error" in message:
            kinds.add(f"error:{message['error']['kind']}")
    # Every kind of message was seen, so the check above covered them all.
    for method in ("begin", "register", "unregister", "snapshot", "observe", "range_done"):
        assert f">request:{method}" in kinds
    for method in ("invalidate_start", "invalidate_end", "release"):
        assert f">request:{method}" in kinds
    for call in ("sync", "release", "read_ptes"):
        assert f"<call:{call}" in kinds
    assert {">hello:", "<hello:", ">answer:", "<reply:", ">bye:", "<bye:"} <= kinds
    assert {"error:rejected", "error:would-hang", "error:crash"} <= kinds


def test_the_schemas_refuse_what_the_protocol_refuses() -> None:
    """Unknown fields, missing fields and wrong types are not messages."""
    assert not TO_HARNESS.is_valid({"type": "reply", "id": 1, "result": 0, "extra": 1})
    assert not TO_HARNESS.is_valid({"type": "reply", "id": 1})
    assert not TO_HARNESS.is_valid({"type": "call", "id": 1, "method": "sync", "mirror": 0})
    assert not TO_HARNESS.is_valid({"type": "hello", "protocol": 2, "name": "x", "version": "1",
                                    "capabilities": []})  # fmt: skip
    assert not TO_CANDIDATE.is_valid({"type": "request", "id": 1, "method": "release", "x": 0})
    assert not TO_CANDIDATE.is_valid({"type": "request", "id": 1, "method": "fly"})
    assert TO_CANDIDATE.is_valid({"type": "request", "id": 1, "method": "release"})


def documented_exchange(section: str, after: str = "") -> list[tuple[str, dict[str, Any]]]:
    """The messages of docs/wire-protocol.md's section ``section`` (up to the next section),
    from the paragraph that starts with ``after`` on."""
    text = (ROOT / "docs" / "wire-protocol.md").read_text()
    block = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    block = block[block.index(after) :]
    return [
        (match[1], json.loads(match[2]))
        for match in re.finditer(r"^    ([<>]) (\{.*\})$", block, flags=re.MULTILINE)
    ]


def test_the_documented_exchange_is_what_the_server_says() -> None:
    """docs/wire-protocol.md's example: valid messages, and the server's very lines."""
    exchange = documented_exchange("A full exchange")
    assert len(exchange) > 15
    for direction, message in exchange:
        (TO_CANDIDATE if direction == ">" else TO_HARNESS).validate(message)
    harness = b"".join(json.dumps(m).encode() + b"\n" for d, m in exchange if d == ">")
    sink = io.BytesIO()
    assert serve(reference(), io.BytesIO(harness), sink, io.StringIO()) == 0
    said = [json.loads(line) for line in sink.getvalue().splitlines()]
    expected = [m for d, m in exchange if d == "<"]
    said[0]["version"] = expected[0]["version"]  # the package's version moves on
    assert said == expected


# -- isolation: each broken server gets its verdict, and the run ends cleanly --------------------


WORLD = World(vmas=VMAS, ptes=((VMAS[0].start, Pte.present(0x100, write=True)),))
ENCODING = PfnEncoding(flags=(1, 2, 4), values=(0x1F8, 0, 0x3F0), pfn_shift=8)
SNAP = Snapshot(range=0, vma=0, start=VMAS[0].start, end=VMAS[0].start + 0x2000, encoding=ENCODING)
REGISTERED = (RegisterMirror(mirror=0),)
INVALIDATED = (*REGISTERED, InvalidateStart(start=SNAP.start, end=SNAP.end, blockable=True))


@pytest.mark.parametrize(
    ("mode", "ops", "status", "detail"),
    [
        ("hang", INVALIDATED, Status.HANG,
         "invalidate_start: no answer within 0.3 s (the step's budget, --step-timeout)"),
        ("exit-mid-step", INVALIDATED, Status.CRASH,
         "exited with status 3; the end of its standard error:\n"
         "about to exit in the middle of invalidate_start"),
        ("segfault", (SNAP, RangeDone(range=0)), Status.CRASH,
         "range_done: the candidate was killed by SIGSEGV"),
        ("garbage", (SNAP,), Status.PROTOCOL, "snapshot: message: not JSON"),
        ("wrong-id", (*REGISTERED, UnregisterMirror(mirror=0)), Status.PROTOCOL,
         "a reply to request 999999, not "),
        ("int-for-bool", (SNAP, RangeDone(range=0)), Status.PROTOCOL,
         "a reply to range_done carries a bool result"),
        ("unknown-message", INVALIDATED, Status.PROTOCOL,
         "a 'gossip' message while invalidate_start"),
        ("sync-unknown-mirror", INVALIDATED, Status.PROTOCOL,
         "a sync call for mirror 42, which has no ops"),
    ],
)  # fmt: skip
def test_a_broken_server_gets_its_verdict_and_the_harness_goes_on(
    mode: str, ops: tuple[CoreOperation, ...], status: Status, detail: str
) -> None:
    """The case that trips each broken server ends with its verdict, and the next case runs on
    a fresh process (the reference's own steps pass there until the same trip)."""
    # Only the hanging server waits out its budget; the others must not lose a race with it.
    candidate, handshake = started(server(mode), step_timeout=0.3 if mode == "hang" else 10)
    try:
        for _ in range(2):
            failure = replay(candidate, handshake, Case(world=WORLD, ops=ops), Profile.SEED)
            assert isinstance(failure, Failure)
            (verdict,) = failure.verdicts
            assert verdict.status is status
            assert detail in verdict.detail
            assert len(failure.steps) == len(ops)
            assert not any(step.failed for step in failure.steps[:-1])
    finally:
        close_quietly(candidate)


def test_a_random_run_restarts_a_crashed_candidate_and_shrinks_to_one_step() -> None:
    """The crash server fails only on one kind of snapshot. After each crash a fresh process
    says hello for the next case, and shrinking goes on to the one step that crashes."""
    log = io.StringIO()
    result = checked(server("crash-on-read-only-vma"), seed=6, log=log)
    assert result.failure is not None
    (verdict,) = result.failure.verdicts
    assert verdict.status is Status.CRASH
    assert "RuntimeError: no support for read-only vmas" in verdict.detail
    (op,) = result.failure.case.ops
    assert op.describe().startswith("snapshot")
    assert "vma 1" in op.describe()
    hellos = [line for line in log.getvalue().splitlines() if line.startswith('< {"type":"hello"')]
    assert len(hellos) > 2


def test_a_server_that_floods_stderr_still_passes() -> None:
    """64 KiB on stderr per request, more than a pipe holds: the harness drains it as it
    comes, so the server never blocks there."""
    result = checked(server("flood-stderr"))
    assert result.failure is None
    assert result.tally.steps > 100


def test_a_hello_of_another_version_is_a_protocol_failure_before_the_first_case() -> None:
    with pytest.raises(CandidateProtocolError, match="it speaks wire protocol 2; this harness"):
        started(server("wrong-version"))


def test_a_server_that_never_says_hello_hangs_at_the_hello() -> None:
    with pytest.raises(CandidateHung, match=r"hello: no answer within 0\.2 s \(a new process's"):
        started(server("silent"), step_timeout=0.1, hello_timeout=0.2)


def _running(pid: int) -> bool:
    """True while ``pid`` runs: not gone, and not a zombie (which its new parent reaps)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("mode", ["grandchild", "grandchild-setsid"])
def test_whatever_the_server_started_is_killed(tmp_path: Path, mode: str) -> None:
    """A grandchild of the harness (the server's own child) does not outlive the run, in the
    server's process group or in a session of its own (``setsid``)."""
    pid_file = tmp_path / "grandchild.pid"
    candidate, _ = started(server(mode, str(pid_file)))
    grandchild = int(pid_file.read_text().split()[1])
    assert _running(grandchild)
    close_quietly(candidate)
    # The kill waits for what it killed to be gone: no time to wait here.
    assert not _running(grandchild)


@pytest.mark.parametrize(
    ("mode", "call", "message"),
    [
        ("exit-0-leaving-stdout", "hello",
         "hello: the candidate exited with status 0 without answering, and a process it started "
         "still holds its standard output open (no standard error)"),
        ("exit-0-mid-step", "unregister",
         "unregister: the candidate exited with status 0 without answering, and a process it "
         "started still holds its standard output open"),
        ("exit-0-after-hello", "begin",
         "begin: the candidate exited with status 0 without answering, and a process it started "
         "still holds its standard output open"),
    ],
)  # fmt: skip
def test_a_server_that_exits_while_its_child_holds_its_output_is_a_crash(
    tmp_path: Path, mode: str, call: str, message: str
) -> None:
    """It exited 0, but a process it started keeps its pipes open, so no end of file comes:
    a CRASH that says so, not a HANG at the end of the budget; and that process is killed."""
    pid_file = tmp_path / "grandchild.pid"
    candidate = WireCandidate(server(mode, str(pid_file)), step_timeout=10, hello_timeout=10)
    # begin: a request larger than a pipe holds, which no one reads (the send path).
    vmas = tuple(VmaSpec(start=i * 2**20, end=i * 2**20 + 4096) for i in range(20000))
    calls: dict[str, Callable[[], object]] = {
        "hello": candidate.handshake,
        "unregister": lambda: candidate.unregister(0),
        "begin": lambda: candidate.begin(_Cpu(vmas)),
    }
    if call != "hello":
        candidate.handshake()
    with pytest.raises(CandidateCrashed, match=re.escape(message)):
        calls[call]()
    assert not _running(int(pid_file.read_text()))


def test_a_harness_error_in_the_middle_of_a_request_stops_the_candidate() -> None:
    """A mirror callback of the harness that raises leaves the request half done: the child is
    stopped (not left waiting for an answer), and the case's next call says it is not running."""

    class Failing:
        def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
            raise RuntimeError("the harness broke")

        def release(self) -> None:
            raise AssertionError("not called")

    candidate = WireCandidate(REFERENCE_SERVER, step_timeout=5)
    candidate.handshake()
    candidate.begin(_Cpu(VMAS))
    assert candidate.register(0, Failing()) == 0
    with pytest.raises(RuntimeError, match="the harness broke"):
        candidate.invalidate_start(VMAS[0].start, VMAS[0].end, True)
    with pytest.raises(CandidateCrashed, match="not running"):
        candidate.unregister(0)
    candidate.close()


def test_the_server_gets_a_minimal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "do-not-pass")
    monkeypatch.setenv("HOME", "/home/somebody")
    candidate, handshake = started(server("env"))
    close_quietly(candidate)
    assert handshake.name == "HMM_CONFORMANCE_WIRE,HOME,LANG,LC_ALL,PATH"


# -- the client's own checks, against scripted servers ----------------------------------------

HELLO = '{"type":"hello","protocol":1,"name":"s","version":"1","capabilities":[]}'


def scripted(*responses: str, timeout: float = 2.0) -> WireCandidate:
    """A candidate whose server says hello, then answers each line it reads with the next."""
    candidate = WireCandidate(server("script", HELLO, *responses), step_timeout=timeout)
    candidate.handshake()
    return candidate


@dataclass(frozen=True)
class _Cpu:
    """A CPU view whose entries are never read."""

    vmas: tuple[VmaSpec, ...] = ()

    def pte(self, addr: int) -> Pte:
        raise AssertionError(f"pte({addr:#x}) was not to be read")

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> int:
        raise AssertionError(f"handle_mm_fault({addr:#x}) was not to be called")

    def migration_entry_wait(self, addr: int) -> None:
        raise AssertionError(f"migration_entry_wait({addr:#x}) was not to be called")


@pytest.mark.parametrize(
    ("responses", "call", "message"),
    [
        (['{"type":"reply","id":1,"error":{"kind":"odd","message":"?"}}'], "unregister",
         "error.kind 'odd' is not rejected, would-hang or crash"),
        (['{"type":"reply","id":1,"result":{"registered":true,"valid":true,"entries":[-1]}}'],
         "observe", "entries[0]: expected an unsigned 64-bit integer"),
        (['{"type":"reply","id":1,"result":null,"extra":1}'], "unregister",
         "unknown field 'extra'"),
        (['{"type":"call","id":1,"method":"fly"}'], "unregister", "unknown call 'fly'"),
        (['{"type":"call","id":1,"method":"read_ptes","start":0,"end":4096}'], "unregister",
         "read_ptes [0x0, 0x1000) is not page aligned inside one vma"),
        (['{"type":"reply","id":1,"result":"0"}'], "register", "carries an int result"),
        (['{"type":"reply","id":"1","result":null}'], "unregister", "expected an integer"),
        (["not JSON at all"], "unregister", "not JSON"),
        (['{"type":"reply","id":1,"error":{"kind":"crash","message":"oops"}}'], "unregister",
         "the candidate reported a crash: oops"),
        (["<exit>"], "unregister", "exited with status 5 (no standard error)"),
    ],
)  # fmt: skip
def test_the_client_refuses_what_does_not_fit(
    responses: list[str], call: str, message: str
) -> None:
    candidate = scripted(*responses)
    candidate._cpu = _Cpu()  # as begin() would have set it
    calls: dict[str, Callable[[], object]] = {
        "observe": lambda: candidate.observe(0),
        "register": lambda: candidate.register(0, None),
        "unregister": lambda: candidate.unregister(0),
    }
    with pytest.raises(CandidateFault, match=re.escape(message)):
        calls[call]()
    # A fault kills the process; the case is over until the next begin().
    with pytest.raises(CandidateCrashed, match="not running"):
        candidate.unregister(0)
    candidate.close()


def test_a_restarted_candidate_must_say_the_same_hello(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps([HELLO, "<exit>"]))
    candidate = WireCandidate(server("script-file", str(script)), step_timeout=2)
    candidate.handshake()
    with pytest.raises(CandidateCrashed, match="exited with status 5"):
        candidate.unregister(0)
    script.write_text(json.dumps([HELLO.replace('"version":"1"', '"version":"2"')]))
    with pytest.raises(CandidateProtocolError, match="the restarted candidate said"):
        candidate.begin(_Cpu())


def test_close_says_bye_and_reports_a_wrong_answer() -> None:
    clean = scripted('{"type":"bye"}')
    clean.close()
    clean.close()  # closing twice does nothing
    wrong = scripted('{"type":"hello"}')
    with pytest.raises(CandidateProtocolError, match="bye: the answer to bye is bye"):
        wrong.close()


def test_a_candidate_that_stops_reading_hangs_the_step_not_the_harness() -> None:
    """A request larger than the pipe holds, to a server that reads no more: HANG, in time."""
    candidate = WireCandidate(server("deaf"), step_timeout=0.3)
    candidate.handshake()
    vmas = tuple(VmaSpec(start=i * 2**20, end=i * 2**20 + 4096) for i in range(20000))
    with pytest.raises(CandidateHung, match="stopped reading its standard input"):
        candidate.begin(_Cpu(vmas))


def test_a_line_longer_than_a_mebibyte_is_a_protocol_failure() -> None:
    candidate = WireCandidate(server("long-line"), step_timeout=5)
    candidate.handshake()
    with pytest.raises(CandidateProtocolError, match="a line longer than 1048576 bytes"):
        candidate.unregister(0)


# -- naming a program --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("exec:", "names no program"),
        ("exec:'unbalanced", "No closing quotation"),
        ("exec:no-such-program-on-path", "no program 'no-such-program-on-path' on PATH"),
        ("exec:./no/such/server", "'./no/such/server' does not exist; is it built?"),
    ],
)
def test_a_malformed_exec_adapter_is_a_usage_error(spec: str, message: str) -> None:
    with pytest.raises(AdapterError, match=re.escape(message)):
        parse_exec(spec)


def test_exec_finds_a_program_on_path_and_refuses_what_cannot_start(tmp_path: Path) -> None:
    assert parse_exec("exec:sh -c 'exit 0'") == ["sh", "-c", "exit 0"]
    not_a_program = tmp_path / "server.txt"
    not_a_program.write_text("hello")
    with pytest.raises(AdapterError, match=r"cannot start .*check the path"):
        start(connect(CORE, f"exec:{not_a_program}"))
    with pytest.raises(AdapterError, match="step timeout must be positive"):
        exec_factory(["x"], step_timeout=0)
    with pytest.raises(AdapterError, match="names no program"):
        WireCandidate([])
    assert connect(CORE, "conformance:reference")().handshake().name == "hmm_ref"


def test_a_python_adapter_is_watched_unless_told_not_to() -> None:
    """``MODULE:FACTORY`` candidates and drivers get the step's budget in process by default."""
    assert isinstance(connect(CORE, "conformance:reference")(), WatchedCandidate)
    assert isinstance(connect(CORE, "conformance:reference", watch=False)(), ReferenceCandidate)
    with pytest.raises(AdapterError, match="step timeout must be positive"):
        connect(CORE, "conformance:reference", step_timeout=-1)
    driver = connect(DRIVER, "conformance.driver._reference:reference_driver")()
    assert isinstance(driver, WatchedDriver)
    assert driver.handshake().name == reference_driver().handshake().name
    unwatched = connect(DRIVER, "conformance.driver._reference:reference_driver", watch=False)
    assert not isinstance(unwatched(), WatchedDriver)
    with pytest.raises(AdapterError, match="step timeout must be positive"):
        connect(DRIVER, "conformance.driver._reference:reference_driver", step_timeout=0)


def test_isolate_serves_a_python_adapter_in_a_child_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--isolate``: the reference served by ``hmm-conformance serve`` in a child, judged as
    in process; the child gets the minimal environment and the harness's PYTHONPATH."""
    candidate, handshake = start(
        connect(CORE, "conformance:reference", step_timeout=5, isolate=True)
    )
    try:
        assert isinstance(candidate, WireCandidate)
        assert handshake.name == "hmm_ref"
        outcome = replay(candidate, handshake, Case(world=WORLD, ops=INVALIDATED), Profile.SEED)
        assert not isinstance(outcome, Failure)
    finally:
        close_quietly(candidate)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    candidate, handshake = start(connect(CORE, "tests.wire_servers:env_reporter", isolate=True))
    close_quietly(candidate)
    assert handshake.name == "HMM_CONFORMANCE_WIRE,HOME,LANG,LC_ALL,PATH,PYTHONPATH"
    monkeypatch.delenv("PYTHONPATH")
    candidate, handshake = start(connect(CORE, "tests.wire_servers:env_reporter", isolate=True))
    close_quietly(candidate)
    assert "PYTHONPATH" not in handshake.name.split(",")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("exec:./server", "an exec: program has one already, so leave out --isolate"),
        ("conformance", "is not of the form MODULE:FACTORY"),
    ],
)
def test_isolate_refuses_what_it_cannot_serve(spec: str, message: str) -> None:
    with pytest.raises(AdapterError, match=re.escape(message)):
        connect(CORE, spec, isolate=True)


def test_isolate_says_a_module_that_does_not_import_crashed_at_hello() -> None:
    """The module is imported in the child: its failure is a CRASH quoting the error."""
    with pytest.raises(CandidateCrashed, match=r"(?s)hello: the candidate exited with status 2.*"
                       r"adapter module 'no_such_module' does not import"):  # fmt: skip
        start(connect(CORE, "no_such_module:make", isolate=True))


# -- the command line and the plugin -----------------------------------------------------------


def _exec(argv: list[str]) -> str:
    return "exec:" + " ".join(argv)


def test_cli_runs_a_wire_candidate_and_writes_the_wire_log(tmp_path: Path) -> None:
    out, err, log = io.StringIO(), io.StringIO(), tmp_path / "wire.log"
    status = main(
        ["run", "--adapter", _exec(REFERENCE_SERVER), "--budget", "fast", "--seed", "11",
         "--wire-log", str(log), "--step-timeout", "5"],
        stdout=out, stderr=err,
    )  # fmt: skip
    assert status == 0, err.getvalue()
    assert "candidate hmm_ref" in out.getvalue()
    assert log.read_text().startswith('> {"type":"hello","protocol":1')


def test_cli_says_a_failure_at_hello_is_not_conforming() -> None:
    err = io.StringIO()
    status = main(["run", "--adapter", _exec(server("wrong-version"))], stderr=err)
    assert status == 1
    assert "NOT CONFORMING: the candidate failed before the first case: PROTOCOL: hello:" in (
        err.getvalue()
    )


def test_cli_refuses_a_wire_log_it_cannot_write(tmp_path: Path) -> None:
    err = io.StringIO()
    path = tmp_path / "no" / "such" / "dir" / "log"
    assert main(["replay", "x.json", "--wire-log", str(path)], stderr=err) == 2
    assert "--wire-log: cannot write" in err.getvalue()


def test_cli_serve_speaks_the_protocol_on_its_standard_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hello = {"type": "hello", "protocol": 1, "harness": "test"}
    stdin = io.TextIOWrapper(io.BytesIO(json.dumps(hello).encode() + b'\n{"type":"bye"}\n'))
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw))
    assert main(["serve"], stdout=io.StringIO()) == 0
    lines = raw.getvalue().splitlines()
    assert json.loads(lines[0])["name"] == "hmm_ref"
    assert json.loads(lines[1]) == {"type": "bye"}


def test_plugin_runs_a_wire_candidate(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        f"--hmm-adapter={_exec(REFERENCE_SERVER)}",
        "--hmm-budget=fast",
        "--hmm-seed=11",
        "--hmm-step-timeout=5",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)


def test_plugin_reports_a_failure_at_hello(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(f"--hmm-adapter={_exec(server('wrong-version'))}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*failed before the first case: PROTOCOL: hello:*"])


# -- the Python server against a harness that breaks the protocol -------------------------------

HARNESS_HELLO = b'{"type":"hello","protocol":1,"harness":"test"}\n'


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (b'{"type":"bye"}\n', "expected the harness's hello"),
        (b'{"type":"hello","protocol":3,"harness":"t"}\n', "the harness speaks wire protocol 3"),
        (HARNESS_HELLO + b'{"type":"answer","id":1,"result":0}\n', "expected a request or bye"),
        (HARNESS_HELLO + b'{"type":"request","id":1,"method":"fly"}\n', "unknown request method"),
        (HARNESS_HELLO + b'{"type":"request","id":1,"method":"release","x":1}\n',
         "unknown field 'x'"),
    ],
)  # fmt: skip
def test_the_server_exits_2_when_the_harness_breaks_the_protocol(
    lines: bytes, message: str
) -> None:
    errors = io.StringIO()
    assert serve(reference(), io.BytesIO(lines), io.BytesIO(), errors) == 2
    assert message in errors.getvalue()


def _served(*messages: dict[str, Any]) -> list[dict[str, Any]]:
    source = HARNESS_HELLO + b"".join(json.dumps(m).encode() + b"\n" for m in messages)
    sink = io.BytesIO()
    status = serve(reference(), io.BytesIO(source), sink, io.StringIO())
    assert status == 0
    return [json.loads(line) for line in sink.getvalue().splitlines()[1:]]


def _request(number: int, method: str, **fields: Any) -> dict[str, Any]:
    return {"type": "request", "id": number, "method": method, **fields}


VMA = {"start": 0x10000, "end": 0x20000, "read": True, "write": True, "special": False}


def test_the_server_ends_quietly_when_the_harness_leaves_mid_call() -> None:
    """End of input, or bye, while a mirror's call waits for its answer: exit 0."""
    begin = _request(1, "begin", vmas=[VMA])
    register = _request(2, "register", mirror=0, with_ops=True)
    invalidate = _request(3, "invalidate_start", start=0x10000, end=0x11000, blockable=True)
    said = _served(begin, register, invalidate)
    assert said[-1]["type"] == "call"
    said = _served(begin, register, invalidate, {"type": "bye"})
    assert said[-1]["method"] == "sync"


def test_the_server_refuses_a_wrong_answer_and_reports_candidate_crashes() -> None:
    begin = _request(1, "begin", vmas=[VMA])
    register = _request(2, "register", mirror=0, with_ops=True)
    invalidate = _request(3, "invalidate_start", start=0x10000, end=0x11000, blockable=True)
    errors = io.StringIO()
    source = HARNESS_HELLO + b"".join(
        json.dumps(m).encode() + b"\n"
        for m in (begin, register, invalidate, {"type": "answer", "id": 9, "result": 0})
    )
    assert serve(reference(), io.BytesIO(source), io.BytesIO(), errors) == 2
    assert "expected the answer to call 1" in errors.getvalue()
    # A snapshot of a vma that begin() did not give: the reference raises, the server says crash.
    said = _served(begin, _request(2, "snapshot", range=0, vma=5, start=0x10000, end=0x11000,
                                   encoding={"flags": [1, 2, 4], "values": [504, 0, 1008],
                                             "pfn_shift": 8}))  # fmt: skip
    assert said[-1]["error"]["kind"] == "crash"
    assert "IndexError" in said[-1]["error"]["message"]


def test_the_server_says_refusals_would_hangs_and_release_calls() -> None:
    """RNG-9's refusal, REG-5's livelock and REL-1's release op, as the served reference says
    them."""
    begin = _request(1, "begin", vmas=[VMA])
    said = _served(
        begin,
        _request(2, "range_done", range=0),
        _request(3, "register", mirror=0, with_ops=True),
        _request(4, "release"),
        {"type": "answer", "id": 1, "result": None},
        _request(5, "register", mirror=1, with_ops=False),
    )
    assert said[1]["error"]["kind"] == "rejected"
    assert said[3] == {"type": "call", "id": 1, "method": "release", "mirror": 0}
    assert said[4] == {"type": "reply", "id": 4, "result": None}
    said = _served(
        begin,
        _request(2, "register", mirror=0, with_ops=True),
        _request(3, "register", mirror=1, with_ops=True),
        _request(4, "unregister", mirror=0),
        _request(5, "register", mirror=2, with_ops=True),
    )
    assert said[-1]["error"]["kind"] == "would-hang"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ([{"kind": "none"}, {"kind": "none"}], "2 entries for 1 pages"),
        ([{"kind": "present", "pfn": 2**60, "write": True}], "pfn 1152921504606846976 out of"),
        ([{"kind": "none", "pfn": 1}], "unknown field 'pfn'"),
        ([{"kind": "teleported"}], "'teleported' is not one of"),
    ],
)
def test_the_server_exits_2_on_a_wrong_read_ptes_answer(answer: object, message: str) -> None:
    messages = (
        _request(1, "begin", vmas=[VMA]),
        _request(2, "snapshot", range=0, vma=0, start=0x10000, end=0x11000,
                 encoding={"flags": [1, 2, 4], "values": [504, 0, 1008], "pfn_shift": 8}),
        {"type": "answer", "id": 1, "result": answer},
    )  # fmt: skip
    errors = io.StringIO()
    source = HARNESS_HELLO + b"".join(json.dumps(m).encode() + b"\n" for m in messages)
    assert serve(reference(), io.BytesIO(source), io.BytesIO(), errors) == 2
    assert message in errors.getvalue()


class _Ops:
    """Mirror ops that must not be called."""

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        raise AssertionError(f"sync {update} was not to be called")

    def release(self) -> None:
        raise AssertionError("release was not to be called")


HELLO_CAPS = '{"type":"hello","protocol":1,"name":"s","version":"1","capabilities":["%s"]}'


@pytest.mark.parametrize(
    ("first", "message"),
    [
        ('{"type":"reply","id":1,"result":null}', "the first message must be its hello"),
        (HELLO_CAPS % "teleport", "capabilities[0]: 'teleport' is not one of"),
        ('{"type":"hello","protocol":1,"version":"1","capabilities":[]}', "missing field 'name'"),
    ],
)
def test_a_malformed_hello_is_a_protocol_failure(first: str, message: str) -> None:
    with pytest.raises(CandidateProtocolError, match=re.escape(message)):
        started(server("script", first))


def test_more_answers_the_client_refuses() -> None:
    """A result where null belongs, bytes that are not UTF-8, and an update of another event."""
    candidate = scripted('{"type":"reply","id":1,"result":0}')
    with pytest.raises(CandidateProtocolError, match="result: expected null, got 0"):
        candidate.unregister(0)
    candidate = scripted("\udcff")
    with pytest.raises(CandidateProtocolError, match="message: not UTF-8"):
        candidate.unregister(0)
    odd = {"start": 0, "end": 4096, "event": "migrate", "blockable": True}
    call = {"type": "call", "id": 1, "method": "sync", "mirror": 0, "update": odd}
    candidate = scripted(json.dumps(call))
    with pytest.raises(CandidateProtocolError, match=r"update\.event: 'migrate' is not"):
        candidate.register(0, _Ops())
    assert candidate.handshake().name == "s"  # said once, kept


def test_a_candidate_gone_before_a_request_is_a_crash() -> None:
    """It exited after its hello: writing the next request breaks the pipe."""
    candidate = scripted()
    process = candidate._process
    assert process is not None
    process.popen.wait()
    with pytest.raises(CandidateCrashed, match="unregister: the candidate exited with status 0"):
        candidate.unregister(0)


def test_a_candidate_that_closes_its_output_but_lives_is_a_crash() -> None:
    candidate = WireCandidate(server("close-stdout"), step_timeout=5)
    with pytest.raises(CandidateCrashed, match="hello: the candidate closed its standard output"):
        candidate.handshake()


def test_exit_statuses_read_as_english(monkeypatch: pytest.MonkeyPatch) -> None:
    assert exit_status(3) == "exited with status 3"
    assert exit_status(-9) == "was killed by SIGKILL"
    assert exit_status(-200) == "was killed by signal 200"
    monkeypatch.delenv("HOME")
    assert "HOME" not in minimal_environment()


@dataclass
class _Faulty:
    """An in-process candidate that raises a fault where an out-of-process one would."""

    fault: CandidateFault
    where: str

    def handshake(self) -> Handshake:
        return reference().handshake()

    def begin(self, cpu: CpuView) -> None:
        if self.where == "begin":
            raise self.fault

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: object) -> int:
        return 0

    def observe(self, range_id: int) -> RangeView:
        raise self.fault

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("fault", "where", "status"),
    [
        (CandidateHung("begin: no answer"), "begin", Status.HANG),
        (CandidateFault("something odd"), "begin", Status.CRASH),
        (CandidateProtocolError("observe: bad"), "observe", Status.PROTOCOL),
    ],
)
def test_the_executor_turns_faults_into_verdicts(
    fault: CandidateFault, where: str, status: Status
) -> None:
    candidate = cast(Candidate, _Faulty(fault, where))
    failure = replay(candidate, candidate.handshake(), Case(world=WORLD, ops=(SNAP,)), Profile.SEED)
    assert isinstance(failure, Failure)
    (verdict,) = failure.verdicts
    assert verdict.status is status
    assert verdict.detail == str(fault)


def test_an_interruption_during_a_hello_leaves_nothing_for_close_to_misread() -> None:
    """A signal while a (re)started candidate's hello is awaited stops the child: close()
    afterwards says nothing, instead of reading that hello as the answer to bye and blaming
    the candidate for a protocol error."""
    candidate = exec_factory(REFERENCE_SERVER)()
    assert isinstance(candidate, WireCandidate)
    receive = candidate._receive
    calls: list[int] = []

    def interrupted_once() -> tuple[bytes, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return receive()

    candidate._receive = interrupted_once  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        candidate.handshake()
    assert close_quietly(candidate) is None
    assert calls == [1]
