"""The C driver (conformance/cdriver/): in process and over the wire it gets the reference
driver's verdicts on every generated case, making the very lock and HMM calls; its two
deliberate bugs are caught against their rules; what the kernel around it raises reaches the
executor; its wire server speaks the protocol; its builds fail with the compiler's own words."""

from __future__ import annotations

import importlib.resources
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import jsonschema
import pytest

import hmm_ref as H
from conformance import AdapterError, Budget
from conformance._generation import ENCODINGS
from conformance.cdriver import (
    BUGS,
    CDriverCandidate,
    _build,
    build_server,
    c_driver,
    c_driver_rwsem,
    c_driver_wire,
    c_driver_with,
)
from conformance.cdriver._candidate import load_driver
from conformance.driver import (
    DRIVER_SCOPE,
    DRIVER_WORLDS,
    DriverCandidate,
    DriverCase,
    DriverScope,
    FaultView,
    reference_driver,
    reference_driver_rwsem,
)
from conformance.driver._executor import DriverExecutor
from conformance.driver._model import DriverObservation
from conformance.driver._ops import DriverOp, NotifierEnd, NotifierStart, RunFault, StartFault
from conformance.driver._ops import StepFault as Step
from conformance.driver._side import (
    DriverRunResult,
    explore_driver,
    replay_driver,
    run_driver,
    start_driver,
)

if TYPE_CHECKING:
    from _hmm_cdriver import IntOut, PfnArray

pytestmark = pytest.mark.usefixtures("ccore_build_dir")

SEED = 1
#: Small, but every DRV rule comes up in it at this seed (the first test checks).
BUDGET = Budget(name="cdriver", examples=30, steps=12)
#: One world of two pages and one fault: each bug's shortest case is in it, and it is quick to
#: search over the wire.
NARROW = DriverScope(worlds=DRIVER_WORLDS[:1], faults=1)
P0, P1, P2 = 0x10000, 0x11000, 0x12000
WORLD = DRIVER_WORLDS[0].world


@pytest.fixture(scope="module")
def references() -> dict[str, DriverRunResult]:
    """The reference driver's runs, by lock kind, made once."""
    runs: dict[str, DriverRunResult] = {}
    for factory in (reference_driver, reference_driver_rwsem):
        candidate, handshake = start_driver(factory)
        runs[handshake.lock] = run_driver(candidate, handshake, budget=BUDGET, seed_value=SEED)
    return runs


@pytest.mark.parametrize(
    ("factory", "name"),
    [(c_driver, "dmirror-c"), (c_driver_rwsem, "dmirror-c+rwsem"), (c_driver_wire, "dmirror-c")],
)
def test_the_c_driver_conforms_and_judges_every_step_as_the_reference_does(
    references: dict[str, DriverRunResult],
    factory: Callable[[], DriverCandidate],
    name: str,
) -> None:
    """Over the same cases, with either lock and over the wire, the C driver conforms, names
    the reference's lock, and every rule's verdict counts are the reference's."""
    candidate, handshake = start_driver(factory)
    result = run_driver(candidate, handshake, budget=BUDGET, seed_value=SEED)
    expected = references[handshake.lock]
    assert handshake.name == name
    assert handshake.capabilities == expected.handshake.capabilities
    assert result.conforms
    assert result.unreached == ()
    assert result.tally.counts == expected.tally.counts
    assert result.tally.latitudes == expected.tally.latitudes


def _observations(
    factory: Callable[[], DriverCandidate], case: DriverCase
) -> list[DriverObservation]:
    candidate, handshake = start_driver(factory)
    outcome = replay_driver(candidate, handshake, case)
    assert isinstance(outcome, tuple)
    assert not any(step.failed for step in outcome)
    return [step.observation for step in outcome]


def test_the_c_driver_makes_the_references_calls_call_for_call() -> None:
    """A fault maps two pages; a second fault holds D when the OOM reaper comes, which gets
    -EAGAIN and leaves the second fault's snapshot invalid, so it retries after a blockable
    invalidation of one page. Every lock call (primitive, lock, owner, section, outcome), HMM
    call, answer and table of every step is the reference's, with either lock."""
    ops: tuple[DriverOp, ...] = (
        StartFault(fault=0, start=P0, end=P2),
        RunFault(fault=0),
        StartFault(fault=1, start=P0, end=P2),
        Step(fault=1),
        Step(fault=1),
        NotifierStart(start=P0, end=P2, blockable=False),
        Step(fault=1),
        Step(fault=1),
        NotifierStart(start=P1, end=P2, blockable=True),
        NotifierEnd(start=P1, end=P2),
        RunFault(fault=1),
    )
    case = DriverCase(world=WORLD, encoding=ENCODINGS[-1], ops=ops)
    ours = _observations(c_driver, case)
    assert ours == _observations(reference_driver, case)
    assert ours[5].result == -H.Errno.EAGAIN
    assert [record.step for record in ours[10].fault_steps] == list(H.FaultStep)
    assert _observations(c_driver_rwsem, case) == _observations(reference_driver_rwsem, case)


@pytest.mark.parametrize("wire", [False, True], ids=["in-process", "wire"])
@pytest.mark.parametrize(
    ("bug", "rule", "shortest"), [("sleep", "DRV-1", 3), ("no-recheck", "DRV-4", 4)]
)
def test_each_bug_switch_is_caught_against_its_rule(
    bug: str, rule: str, shortest: int, wire: bool
) -> None:
    """A build with one deliberate bug fails its rule, and the exhaustive engine's shortest
    counterexample has the catalogue's length for the same bug (in process over the whole scope;
    over the wire in one world with one fault, where the shortest case is)."""
    assert bug in BUGS
    candidate, handshake = start_driver(c_driver_with(bugs=[bug], wire=wire))
    assert handshake.name == f"dmirror-c+{bug}"
    scope = NARROW if wire else DRIVER_SCOPE
    result = explore_driver(candidate, handshake, depth=shortest, scope=scope)
    candidate.close()
    assert result.failure is not None
    assert {verdict.rule for verdict in result.failure.verdicts} == {rule}
    assert len(result.failure.case.ops) == shortest


def test_an_unknown_bug_is_refused_with_the_ones_there_are() -> None:
    with pytest.raises(AdapterError, match="no bug 'sleepy'; choose from sleep, no-recheck"):
        c_driver_with(bugs=["sleepy"])


# -- the kernel around it, in process ----------------------------------------------------------


def _view(step: H.FaultStep | None, result: int | None = None) -> FaultView:
    return FaultView(next_step=step, result=result)


def _begun() -> tuple[CDriverCandidate, H.SleepMonitor]:
    """A C driver in a case of WORLD, its mirror registered; and the case's monitor."""
    candidate = c_driver()
    executor = DriverExecutor(candidate, candidate.handshake(), WORLD, H.DEFAULT_ENCODING)
    assert executor.begin() is None
    return candidate, executor.monitor


def test_a_blocking_lock_that_is_held_abandons_the_step_with_the_harness_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While fault 1 holds D, fault 2's lock step gets the very WouldBlockError the harness's
    mutex raised, the C makes no further call and nothing changes; once D is free it goes on."""
    raised: list[H.WouldBlockError] = []
    lock = H.Mutex.lock

    def spy(self: H.Mutex, owner: str = "") -> None:
        try:
            lock(self, owner)
        except H.WouldBlockError as error:
            raised.append(error)
            raise

    monkeypatch.setattr(H.Mutex, "lock", spy)
    candidate, monitor = _begun()
    for fault in (0, 1):
        candidate.start_fault(fault, P0, P1)
        candidate.step_fault(fault)
    assert candidate.step_fault(0) is H.FaultStep.LOCK
    assert candidate.fault_would_block(1)
    assert candidate.invalidation_would_block(True)
    assert not candidate.invalidation_would_block(False)
    assert candidate.release_would_block()
    events = len(monitor.events)
    with pytest.raises(H.WouldBlockError) as caught:
        candidate.step_fault(1)
    assert raised == [caught.value]
    assert caught.value.holders == ("dmirror-mutex/fault1",)
    [event] = monitor.events[events:]
    assert (event.primitive, event.owner, event.outcome) == (
        "mutex_lock",
        "dmirror-mutex/fault2",
        H.LockOutcome.WOULD_BLOCK,
    )
    assert candidate.fault_view(1) == _view(H.FaultStep.LOCK)
    assert [candidate.step_fault(0), candidate.step_fault(0)] == [
        H.FaultStep.CHECK,
        H.FaultStep.UNLOCK,
    ]
    assert candidate.fault_view(0) == _view(None, 0)
    assert candidate.step_fault(1) is H.FaultStep.LOCK
    assert repr(candidate) == "<CDriverCandidate dmirror-c>"


def test_misuse_of_the_driver_is_refused_as_the_references_is() -> None:
    """An unaligned or empty fault, a step of a finished one, and a fault the case never
    started are refused with the reference's errors."""
    candidate, _ = _begun()
    with pytest.raises(H.UsageError, match="not page aligned") as unaligned:
        candidate.start_fault(0, P0 + 1, P1)
    assert unaligned.value.code is H.UsageCode.UNALIGNED
    with pytest.raises(H.UsageError, match="empty") as empty:
        candidate.start_fault(0, P1, P1)
    assert empty.value.code is H.UsageCode.BAD_ADDRESS
    candidate.start_fault(0, 0x100000, 0x101000)  # no vma there
    assert candidate.step_fault(0) is H.FaultStep.SNAPSHOT
    assert candidate.fault_view(0) == _view(None, -H.Errno.EFAULT)
    with pytest.raises(H.DriverUsageError, match="has finished") as finished:
        candidate.step_fault(0)
    assert finished.value.code is H.DriverUsageCode.FAULT_FINISHED
    for call in (candidate.step_fault, candidate.fault_view, candidate.fault_would_block):
        with pytest.raises(KeyError, match="no fault by this number"):
            call(7)


def test_misuse_of_the_kernel_is_raised_with_the_harness_words() -> None:
    """What the harness refuses over the wire it refuses in process too: one lock name used
    with two kinds, a snapshot into a range still registered or outside every vma, range_done
    on a number never snapshotted."""
    candidate, monitor = _begun()
    candidate.start_fault(0, P0, P1)
    candidate.step_fault(0)
    candidate.step_fault(0)
    with pytest.raises(H.DriverUsageError, match="lock is a Mutex, not a Spinlock") as kind:
        candidate._lock("spin_unlock", "dmirror-mutex.lock", "dmirror-mutex/fault1")
    assert kind.value.code is H.DriverUsageCode.WRONG_KIND
    unused = cast("PfnArray", None), cast("IntOut", None)
    with pytest.raises(H.UsageError, match="r1 is still registered"):
        candidate._get_pfns(1, P0, P1, pfns=unused[0], npages=1, ret=unused[1])
    with pytest.raises(H.UsageError, match="no vma holds 0x100000"):
        candidate._get_pfns(2, 0x100000, 0x101000, pfns=unused[0], npages=1, ret=unused[1])
    with pytest.raises(H.UsageError, match="r9 was never snapshotted"):
        candidate._range_done(9)
    assert monitor.held_locks == ("dmirror-mutex.lock",)
    candidate.close()


# -- the wire server -------------------------------------------------------------------------


def _schema(direction: str) -> jsonschema.Draft202012Validator:
    text = (
        importlib.resources.files("conformance")
        .joinpath(f"schemas/wire-v1-driver-{direction}.schema.json")
        .read_text()
    )
    return jsonschema.Draft202012Validator(json.loads(text))


def _talk(server: Path, *lines: dict[str, Any] | str) -> tuple[list[dict[str, Any]], str, int]:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    done = subprocess.run(
        [str(server)], input=text.encode(), capture_output=True, timeout=60, check=False
    )
    return (
        [json.loads(line) for line in done.stdout.decode().splitlines()],
        done.stderr.decode(),
        done.returncode,
    )


def _request(id: int, method: str, **fields: object) -> dict[str, Any]:
    return {"type": "request", "id": id, "method": method, **fields}


def _answer(id: int, result: object) -> dict[str, Any]:
    return {"type": "answer", "id": id, "result": result}


def _call(id: int, method: str, **fields: object) -> dict[str, Any]:
    return {"type": "call", "id": id, "method": method, **fields}


def _reply(id: int, result: object) -> dict[str, Any]:
    return {"type": "reply", "id": id, "result": result}


def _lock(id: int, primitive: str, lock: str, owner: str) -> dict[str, Any]:
    return _call(id, "lock", primitive=primitive, lock=f"dmirror-mutex.{lock}", owner=owner)


def test_the_server_speaks_the_driver_protocol() -> None:
    """A fault snapshots; HMM clears its entry (ranges, with the next request); the lock step
    gets would-block and echoes it; the next lock step goes on; the check finds the range
    invalid and commits nothing. Every line is checked, and checked against the schemas."""
    vma = {"start": P0, "end": P2, "read": True, "write": True, "special": False}
    encoding = {"flags": [1, 2, 4], "values": [16, 8, 32], "pfn_shift": 12}
    blocked = {"kind": "would-block", "message": "mutex_lock(dmirror-mutex.lock): held"}
    harness = (
        {"type": "hello", "protocol": 1, "side": "driver", "harness": "test"},
        _request(1, "begin", vmas=[vma], encoding=encoding),
        _request(2, "start_fault", fault=0, start=P0, end=P1),
        _request(3, "step_fault", fault=0),
        _answer(1, {"ret": 0, "pfns": [0x100003]}),
        _request(4, "step_fault", fault=0, ranges=[{"range": 1, "pfns": [0]}]),
        {"type": "answer", "id": 2, "error": blocked},
        _request(5, "fault_view", fault=0),
        _request(6, "step_fault", fault=0),
        _answer(3, None),
        _request(7, "step_fault", fault=0),
        _answer(4, False),
        _request(8, "device_page_table"),
        {"type": "bye"},
    )
    said, stderr, status = _talk(build_server(), *harness)
    owner = "dmirror-mutex/fault1"
    assert said == [
        {
            "type": "hello",
            "protocol": 1,
            "name": "dmirror-c",
            "version": said[0]["version"],
            "lock": "dmirror-mutex.lock",
            "capabilities": ["release"],
        },
        _reply(1, None),
        _reply(2, None),
        _call(1, "get_pfns", range=1, start=P0, end=P1),
        _reply(3, "snapshot"),
        _lock(2, "mutex_lock", "lock", owner),
        {"type": "reply", "id": 4, "error": blocked},
        _reply(5, {"next_step": "lock", "result": None}),
        _lock(3, "mutex_lock", "lock", owner),
        _reply(6, "lock"),
        _call(4, "range_done", range=1),
        _reply(7, "check"),
        _reply(8, []),
        {"type": "bye"},
    ]
    assert (stderr, status) == ("", 0)
    to_candidate, to_harness = _schema("to-candidate"), _schema("to-harness")
    for message in harness:
        to_candidate.validate(message)
    for message in said:
        to_harness.validate(message)


def test_the_server_leaves_naming_the_line_when_the_harness_breaks_the_protocol() -> None:
    """A request with a field it does not have: status 2, the problem and the line."""
    said, stderr, status = _talk(
        build_server(),
        {"type": "hello", "protocol": 1, "side": "driver", "harness": "test"},
        _request(1, "release_would_block", fault=0),
    )
    assert len(said) == 1
    assert status == 2
    assert "a field this message does not have" in stderr
    assert '"method": "release_would_block"' in stderr


# -- builds --------------------------------------------------------------------------------------


def test_a_build_is_cached_and_used_again() -> None:
    """The second ask for a build finds the first one, keyed by its switches."""
    name, path = _build.module_for(())
    load_driver()
    assert _build.module_for(()) == (name, path)
    assert build_server() == build_server()
    assert build_server() != build_server(bugs=["sleep"])


def _broken_sources(tmp_path: Path) -> Path:
    for source in _build.SOURCE_DIR.iterdir():
        if source.suffix in (".c", ".h"):
            shutil.copy(source, tmp_path)
    with (tmp_path / "driver.c").open("a") as driver:
        driver.write("\n#error the driver is broken here\n")
    return tmp_path


def test_a_module_build_that_fails_says_what_the_compiler_said(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match=r"(?s)Python module failed.*the driver is broken"):
        _build.module_for(("HMM_DRV_BUG_SLEEP",), _broken_sources(tmp_path))


def test_a_server_build_that_fails_says_what_the_compiler_said(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match=r"(?s)wire server failed: .* exited.*driver is broken"):
        _build.server_for(("HMM_DRV_BUG_SLEEP",), _broken_sources(tmp_path))


def test_without_cffi_or_a_compiler_the_build_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "cffi", None)
    with pytest.raises(AdapterError, match=r"needs cffi .*hmm-conformance\[c\]"):
        _build.module_for(("HMM_DRV_RWSEM", "HMM_DRV_BUG_SLEEP"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(AdapterError, match="neither cc nor gcc is on PATH"):
        _build.server_for(("HMM_DRV_RWSEM", "HMM_DRV_BUG_SLEEP"))
