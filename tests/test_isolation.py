"""Isolation: no candidate hangs the harness or outlives it (kills, reaping, budgets, signals)."""

from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import cast

import pytest

from conformance import (
    Budget,
    Candidate,
    Case,
    Failure,
    InvalidateStart,
    Profile,
    RangeView,
    RegisterMirror,
    Snapshot,
    World,
    replay,
    run,
    start,
)
from conformance import _alarm as A
from conformance import _isolation as I
from conformance._generation import ENCODINGS, VMAS
from conformance.core import _watched as CW
from conformance.core._adapter import CandidateHung
from conformance.core._side import close_quietly
from conformance.driver import _watched as DW
from conformance.driver._adapter import DriverCandidate, DriverEnv
from conformance.driver._catalogue import BaseDriver
from conformance.driver._ops import (
    DriverCase,
    DriverOp,
    NotifierStart,
    StartFault,
    StepFault,
)
from conformance.driver._side import replay_driver, start_driver
from conformance.oracle import Status
from hmm_ref import DeviceEntry, FaultStep, HmmMirrorOps, HmmUpdate, PfnEncoding, Pte

from .candidates import Wrapped

SERVERS = str(Path(__file__).with_name("wire_servers.py"))
WORLD = World(vmas=VMAS, ptes=((VMAS[0].start, Pte.present(0x100, write=True)),))
#: A small budget: the reference answers any step in far less, a loop never does.
BUDGET = 0.5


def _children() -> set[int]:
    """This process's child processes, zombies included (from /proc)."""
    return {pid for pid, parent in I._parents().items() if parent == os.getpid()}


@pytest.fixture(autouse=True)
def no_process_left_behind() -> Iterator[None]:
    """Every test here ends with no child process of ours running, and no zombie."""
    before = _children()
    yield
    assert _children() - before == set()


def _running(pid: int) -> bool:
    stat = I._stat(pid)
    return stat is not None and stat[0] != "Z"


# -- a cancelled run leaves nothing behind -----------------------------------------------------


#: The command, with `main` guarded (conformance._isolation.guarded) and an interruption's exit
#: status, as the command line does it.
def test_sigterm_leaves_no_process_of_a_hung_wire_candidate(tmp_path: Path) -> None:
    """SIGTERM while a wire candidate hangs (one that started a child in a session of its own)
    and its HANG is being shrunk: the harness exits 143, the failure found is saved, and
    neither the candidate nor its child is left running."""
    pids = tmp_path / "pids"
    adapter = f"exec:{sys.executable} {SERVERS} hang-setsid {pids}"
    command = [sys.executable, "-m", "conformance", "run", "--adapter", adapter, "--budget",
               "fast", "--step-timeout", "0.3", "--replay-dir", str(tmp_path / "r")]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as harness:
        try:
            # A second start is the restart after the first HANG: a failure is found.
            while not pids.exists() or pids.read_text().count("\n") < 2:
                assert harness.poll() is None, "the harness ended before its candidate hung"
                time.sleep(0.05)
            harness.send_signal(signal.SIGTERM)
            _, stderr = harness.communicate(timeout=60)
        finally:
            harness.kill()
    assert harness.returncode == 143, stderr.decode()
    assert b"hmm-conformance: interrupted by SIGTERM" in stderr
    (saved,) = (tmp_path / "r").glob("*.json")
    assert json.loads(saved.read_text())["failure"][0]["status"] == "hang"
    started = [int(pid) for line in pids.read_text().splitlines() for pid in line.split()]
    assert len(started) >= 2
    assert [pid for pid in started if _running(pid)] == []


def test_a_signal_sent_again_goes_to_the_main_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sent to the process, the kernel may hand it to another thread, and a main thread in a
    system call (a sleep, a read from a candidate's pipe) would wait that out before Python ran
    the handler: the signal sent again is addressed to the main thread."""
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(signal, "pthread_kill", lambda ident, signum: sent.append((ident, signum)))
    monkeypatch.setattr(os, "kill", lambda pid, signum: sent.append((pid, signum)))
    I._send_later(signal.SIGTERM)
    (sender,) = [t for t in threading.enumerate() if t.name == "interrupt again"]
    sender.join(5)
    assert sent == [(threading.main_thread().ident, signal.SIGTERM)]


def _signal_self(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(30)  # the handler raises on delivery, before this ends


def test_interrupts_raise_once_with_the_exit_status_and_restore_the_handlers() -> None:
    """SIGTERM is 143 and SIGINT 130; a second signal while unwinding is ignored; the old
    handlers come back."""
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    for signum, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        with I.interrupts() as state:
            assert state.installed
            assert state.received is None
            with pytest.raises(I.Interrupted) as raised:
                _signal_self(signum)
            assert state.received is raised.value
            assert raised.value.signum == signum
            assert raised.value.exit_status == status
            assert str(raised.value) == f"interrupted by {signal.Signals(signum).name}"
            os.kill(os.getpid(), signal.SIGINT)  # ignored: the first is being handled
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_an_interruption_lost_in_a_gc_callback_is_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python drops an exception raised inside a garbage-collector callback (as "unraisable"):
    the signal is sent again, and the interruption lands in the main thread's own code (here
    the first resending lands in the hook itself, where it would be lost too, so it is sent
    once more). Other unraisable exceptions go to the hook that was there before."""
    sent: list[int] = []
    resent: list[int] = []
    send_later = I._send_later

    def resend(signum: int) -> None:
        resent.append(signum)
        if len(resent) == 1:
            os.kill(os.getpid(), signum)
            _busy()
        else:
            send_later(signum)

    monkeypatch.setattr(I, "_send_later", resend)

    armed: list[bool] = []  # set inside the block only: a collection outside it sends nothing

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and armed and not sent:
            sent.append(signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            _busy()  # the handler runs in here, and its exception goes nowhere

    seen: list[object] = []
    hook = sys.unraisablehook
    sys.unraisablehook = seen.append
    gc.callbacks.append(callback)
    try:
        with I.interrupts():
            armed.append(True)
            with pytest.raises(I.Interrupted) as raised:
                _collect_then_wait()
        with I.interrupts():
            sys.unraisablehook(cast("sys.UnraisableHookArgs", OTHER))
    finally:
        gc.callbacks.remove(callback)
        sys.unraisablehook = hook
    assert sent == [signal.SIGTERM]
    assert raised.value.signum == signal.SIGTERM
    assert resent[:2] == [signal.SIGTERM, signal.SIGTERM]  # (more if one lands badly again)
    assert set(resent) == {signal.SIGTERM}
    assert seen == [OTHER]


OTHER = types.SimpleNamespace(exc_value=ValueError("not an interruption"))


def _busy() -> int:
    return sum(len(str(n)) for n in range(1000))


def _collect_then_wait() -> None:
    gc.collect()
    time.sleep(30)  # the signal sent again ends this


def test_interrupts_do_nothing_off_the_main_thread() -> None:
    """Python handles signals only on its main thread; elsewhere the guard says it did nothing."""
    said: list[bool] = []

    def elsewhere() -> None:
        with I.interrupts() as state:
            said.append(state.installed)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert said == [False]


def _prctl_subreaper() -> int:
    value = ctypes.c_int(-1)
    ctypes.CDLL(None).prctl(I._PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0)
    return value.value


def test_the_harness_reaps_orphans_only_inside_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """On Linux the block makes this process a child subreaper and then undoes it; elsewhere
    it is a no-op, said so."""
    assert _prctl_subreaper() == 0
    with I.child_subreaper() as reaping:
        assert reaping
        assert _prctl_subreaper() == 1
    assert _prctl_subreaper() == 0
    monkeypatch.setattr(sys, "platform", "darwin")
    with I.child_subreaper() as reaping:
        assert not reaping


def test_kill_descendants_kills_and_reaps_orphans_and_trees(tmp_path: Path) -> None:
    """An orphan that left its session (handed back to the reaper, this process) and a live
    tree are killed, and nothing of either is left as a zombie."""
    pid_file = tmp_path / "orphan"
    script = f"setsid sleep 600 & echo $! > {pid_file}"
    with I.child_subreaper():
        subprocess.run(["sh", "-c", script], check=True)  # exits, leaving its child
        orphan = int(pid_file.read_text())
        assert _running(orphan)
        tree = subprocess.Popen(["sh", "-c", "sleep 600 & sleep 600 & wait"])
        while len(I._descendants(tree.pid, I._parents())) < 2:
            time.sleep(0.01)
        assert I.kill_descendants() >= 4
        assert I.kill_descendants() == 0
    tree.wait()
    assert not _running(orphan)


def test_guarded_kills_whatever_is_left_at_the_end(tmp_path: Path) -> None:
    """The command's guard: what the block started and left is killed when it ends."""
    with I.guarded():
        left = subprocess.Popen(["sleep", "600"])
    assert I._stat(left.pid) is None  # killed and reaped
    left.wait()  # nothing to wait for: it says 0


def test_reaping_stops_at_its_time_limit_and_says_what_is_left() -> None:
    """A process that does not die (here: it was never killed) is reported, not waited for."""
    alive = subprocess.Popen(["sleep", "600"])
    try:
        assert I._reap([alive.pid], seconds=0.05) == [alive.pid]
    finally:
        alive.kill()
        alive.wait()


def test_the_process_table_is_empty_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where there is no /proc there is nothing to find (and the kill is the group's only)."""
    real = os.scandir

    def scandir(path: str) -> object:
        if path == "/proc":
            raise FileNotFoundError(path)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert I._parents() == {}
    assert I._descriptors(-1) == set()  # no such process


def test_kill_descendants_gives_up_after_its_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that forks faster than it is killed does not keep the harness forever."""
    alive = subprocess.Popen(["sleep", "600"])
    monkeypatch.setattr(I, "KILL_ROUNDS", 0)
    assert I.kill_descendants() == 0
    alive.kill()
    alive.wait()


# -- the in-process step budget ------------------------------------------------------------------


class LoopsOnReadOnly(Wrapped):
    """Loops forever (in pure Python) on a snapshot of the read-only vma."""

    name = "loops-on-read-only"

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        while vma == 1:
            time.sleep(0.01)
        return super().snapshot(range_id, vma, start, end, encoding)


class SpinsSwallowingExceptions(Wrapped):
    """Spins, and catches every ``Exception`` on the way."""

    name = "spins"

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        spins = 0
        while True:
            try:
                spins += 1
            except Exception:
                continue


class SwallowsEverything(Wrapped):
    """Catches even the budget's own exception, then answers late."""

    name = "swallows"

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        try:
            while True:
                time.sleep(0.01)
        except BaseException:
            return 0


def _watched(candidate: Candidate, seconds: float = BUDGET) -> Candidate:
    return CW.WatchedCandidate(candidate, seconds=seconds)


INVALIDATE = (RegisterMirror(mirror=0), InvalidateStart(start=VMAS[0].start, end=VMAS[0].end,
                                                        blockable=True))  # fmt: skip


@pytest.mark.parametrize(
    ("candidate", "where"),
    [
        (SpinsSwallowingExceptions(), "while True:"),
        (SwallowsEverything(), "time.sleep(0.01)"),
    ],
)
def test_an_in_process_candidate_that_never_returns_gets_a_hang(
    candidate: Candidate, where: str
) -> None:
    """A pure-Python loop, even one that catches ``Exception`` or everything, is a HANG verdict
    naming the method and the line it was stuck on; the run goes on."""
    watched = _watched(candidate)
    handshake = watched.handshake()
    case = Case(world=WORLD, ops=INVALIDATE)
    failure = replay(watched, handshake, case, Profile.SEED)
    assert isinstance(failure, Failure)
    (verdict,) = failure.verdicts
    assert verdict.status is Status.HANG
    assert verdict.detail.startswith(
        f"invalidate_start: no answer within {BUDGET:g} s (the step's budget, --step-timeout); "
        "it was running:\n"
    )
    assert f"in invalidate_start\n    {where}" in verdict.detail
    assert "conformance/_alarm.py" not in verdict.detail  # the candidate's frames only
    again = replay(watched, handshake, Case(world=WORLD, ops=INVALIDATE[:1]), Profile.SEED)
    assert not isinstance(again, Failure)


def test_a_run_shrinks_an_in_process_hang_to_its_one_step() -> None:
    """The run finds the loop, gets a HANG for it within the budget, and shrinks as for a
    program over the wire: to the one snapshot of the read-only vma."""
    candidate, handshake = start(lambda: _watched(LoopsOnReadOnly(), seconds=0.1))
    try:
        result = run(candidate, handshake, budget=Budget(name="s", examples=30, steps=12),
                     seed_value=6)  # fmt: skip
    finally:
        close_quietly(candidate)
    assert result.failure is not None
    (verdict,) = result.failure.verdicts
    assert verdict.status is Status.HANG
    assert verdict.detail.startswith("snapshot: no answer within 0.1 s")
    (op,) = result.failure.case.ops
    assert isinstance(op, Snapshot)
    assert op.vma == 1


class _Calls:
    """A candidate whose invalidate_start calls back into the harness, which calls it again."""

    def __init__(self) -> None:
        self.ops: HmmMirrorOps | None = None
        self.proxy: Candidate | None = None

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        self.ops = ops
        return 0

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        assert self.ops is not None
        return self.ops.sync_cpu_device_pagetables(cast(HmmUpdate, None))

    def observe(self, range_id: int) -> RangeView:
        return RangeView(registered=True, valid=True, entries=(range_id,))


def test_nested_calls_share_the_outer_calls_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness's callback calls the candidate again: one timer for the outer call only."""
    inner = _Calls()
    proxy = _watched(cast(Candidate, inner), seconds=30)
    armed: list[float] = []
    real = signal.setitimer

    def setitimer(which: int, seconds: float, interval: float = 0.0) -> tuple[float, float]:
        armed.append(seconds)
        return real(which, seconds, interval)

    class Mirror:
        def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
            return proxy.observe(7).entries[0]

        def release(self) -> None:
            raise AssertionError("not called")

    monkeypatch.setattr(signal, "setitimer", setitimer)
    assert proxy.register(0, Mirror()) == 0
    assert proxy.invalidate_start(0, 4096, True) == 7
    assert [seconds for seconds in armed if seconds] == [30, 30]  # register, invalidate_start


def test_another_timer_or_thread_leaves_only_the_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    """The alarm is the main thread's, and only when no one else's timer runs; otherwise the
    call runs unalarmed (the watchdog thread still watches it)."""
    previous = signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, 600)
    try:
        assert not A._Alarm.usable()
        assert _watched(cast(Candidate, _Calls())).observe(3).entries == (3,)
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0  # theirs, untouched
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    answers: list[object] = []
    thread = threading.Thread(
        target=lambda: answers.append(_watched(cast(Candidate, _Calls())).observe(4).entries[0])
    )
    thread.start()
    thread.join()
    assert answers == [4]


def test_a_late_alarm_is_ignored() -> None:
    """A SIGALRM handled after the call was over (or after it already fired) raises nothing."""
    alarm = A._Alarm(600)
    alarm.stop()
    alarm._on_alarm(signal.SIGALRM, None)
    assert alarm.stack is None
    assert A._where(traceback.extract_stack()[-1:]).startswith("  File ")


# -- the last resort: the watchdog thread ----------------------------------------------------------


class _Blocked:
    """A candidate stuck where no signal reaches it, until the test lets it go."""

    def __init__(self, block_alarm: bool) -> None:
        self.release = threading.Event()
        self.block_alarm = block_alarm

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: object) -> int:
        if self.block_alarm:  # as C code would: the alarm's signal waits until it is done
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            assert self.release.wait(60), "the watchdog never fired"
        finally:
            if self.block_alarm:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
        return 0


def _stuck_watchdog(blocked: _Blocked, seen: list[A.StuckCall], ended: list[int]) -> A.Watchdog:
    def exit_process(status: int) -> None:
        ended.append(status)
        blocked.release.set()

    return A.Watchdog(grace=0.1, on_stuck=seen.append, exit_process=exit_process)


def test_the_watchdog_reports_a_call_stuck_off_the_main_thread_and_ends_the_process() -> None:
    """No alarm off the main thread: after the budget and the grace the hook gets the stuck
    thread's stack, then the process is ended (here, a fake exit lets the call go)."""
    blocked = _Blocked(block_alarm=False)
    seen: list[A.StuckCall] = []
    ended: list[int] = []
    watchdog = _stuck_watchdog(blocked, seen, ended)
    proxy = CW.WatchedCandidate(cast(Candidate, blocked), seconds=0.1, watchdog=watchdog)
    answers: list[int] = []
    call = lambda: answers.append(proxy.snapshot(0, 0, 0, 4096, ENCODINGS[0]))  # noqa: E731
    thread = threading.Thread(target=call, name="runner")
    thread.start()
    thread.join()
    watchdog.stop()
    assert answers == [0]
    assert ended == [1]
    (stuck,) = seen
    assert (stuck.what, stuck.thread) == ("snapshot", "runner")
    assert stuck.seconds == stuck.grace == 0.1
    assert "in snapshot\n    assert self.release.wait(60)" in stuck.stack
    assert stuck.describe().startswith(
        "hmm-conformance: snapshot has not returned within 0.1 s (the step's budget, "
        "--step-timeout) and 0.1 s more, and no signal reaches it"
    )


def test_a_call_stuck_in_c_code_on_the_main_thread_is_ended_by_the_watchdog() -> None:
    """The alarm cannot reach code that holds signals off; the watchdog does. Once the call
    comes back, the alarm it held off makes the step a HANG all the same."""
    blocked = _Blocked(block_alarm=True)
    seen: list[A.StuckCall] = []
    ended: list[int] = []
    watchdog = _stuck_watchdog(blocked, seen, ended)
    proxy = CW.WatchedCandidate(cast(Candidate, blocked), seconds=0.1, watchdog=watchdog)
    with pytest.raises(CandidateHung, match=r"snapshot: no answer within 0\.1 s"):
        proxy.snapshot(0, 0, 0, 4096, ENCODINGS[0])
    watchdog.stop()
    assert ended == [1]
    assert [stuck.thread for stuck in seen] == ["MainThread"]


def test_the_default_hook_says_where_and_a_failing_hook_still_ends_the_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The default hook writes the report to standard error; a hook that raises is reported
    and the process is ended all the same."""
    A.say_stuck(A.StuckCall(what="begin", seconds=1, grace=2, thread="MainThread", stack="S\n"))
    assert capsys.readouterr().err.endswith("Thread MainThread is at:\nS\n")

    def broken(stuck: A.StuckCall) -> None:
        raise RuntimeError("the hook broke")

    blocked = _Blocked(block_alarm=False)
    ended: list[int] = []

    def exit_process(status: int) -> None:
        ended.append(status)
        blocked.release.set()

    watchdog = A.Watchdog(grace=0.05, on_stuck=broken, exit_process=exit_process)
    proxy = CW.WatchedCandidate(cast(Candidate, blocked), seconds=0.05, watchdog=watchdog)
    thread = threading.Thread(target=lambda: proxy.snapshot(0, 0, 0, 4096, ENCODINGS[0]))
    thread.start()
    thread.join()
    watchdog.stop()
    watchdog.stop()  # stopping twice does nothing
    assert ended == [1]
    assert "RuntimeError: the hook broke" in capsys.readouterr().err


def test_the_watchdog_keeps_watching_calls_that_come_back_in_time() -> None:
    """Calls that return are forgotten; the thread waits for the next deadline, and a stopped
    watchdog starts again at the next call."""
    ended: list[int] = []
    watchdog = A.Watchdog(grace=30, exit_process=ended.append)
    proxy = CW.WatchedCandidate(cast(Candidate, _Calls()), seconds=30, watchdog=watchdog)
    first = watchdog.watch("held", 60)  # a second call in flight, on another "thread"
    assert [proxy.observe(n).entries for n in range(3)] == [(0,), (1,), (2,)]
    watchdog.release(first)
    watchdog.stop()
    assert proxy.observe(5).entries == (5,)
    watchdog.stop()
    assert ended == []


def test_the_watched_factories_and_the_proxies_pass_every_call_through() -> None:
    """Every method of both protocols reaches the candidate, and says who it watches."""
    candidate = CW.watched(lambda: cast(Candidate, Wrapped()), seconds=5)()
    assert repr(candidate).startswith("<WatchedCandidate <tests.candidates.Wrapped")
    handshake = candidate.handshake()
    ops = (*INVALIDATE, Snapshot(range=0, vma=0, start=VMAS[0].start, end=VMAS[0].start + 0x1000,
                                 encoding=ENCODINGS[0]))  # fmt: skip
    outcome = replay(candidate, handshake, Case(world=WORLD, ops=ops), Profile.SEED)
    assert not isinstance(outcome, Failure)
    candidate.range_done(0)
    candidate.invalidate_end(VMAS[0].start, VMAS[0].end)
    candidate.unregister(0)
    candidate.release()
    candidate.close()
    driver = DW.watched_driver(lambda: cast(DriverCandidate, BaseDriver()), seconds=5)()
    assert repr(driver).startswith("<WatchedDriver BaseDriver(")
    driver_handshake = driver.handshake()
    unmap = NotifierStart(start=VMAS[0].start, end=VMAS[0].end, blockable=True)
    steps = DriverCase(world=WORLD, encoding=ENCODINGS[0], ops=(START, StepFault(fault=0), unmap))
    assert not isinstance(replay_driver(driver, driver_handshake, steps), Failure)
    assert driver.release_would_block() is False
    assert driver.invalidation_would_block(True) is False
    driver.release()
    driver.close()


# -- the driver side: faults are verdicts there too ----------------------------------------------


class HangsInStep(BaseDriver):
    def step_fault(self, fault: int) -> FaultStep:
        while True:
            time.sleep(0.01)


def _hung(where: str) -> type[BaseDriver]:
    class Faulty(BaseDriver):
        def begin(self, env: DriverEnv) -> None:
            super().begin(env)
            if where == "begin":
                raise CandidateHung("begin: no answer")

        def device_page_table(self) -> Mapping[int, DeviceEntry]:
            if where == "table" and self.faults:
                raise CandidateHung("device_page_table: no answer")
            return super().device_page_table()

        def fault_would_block(self, fault: int) -> bool:
            if where == "would-block":
                raise CandidateHung("fault_would_block: no answer")
            return super().fault_would_block(fault)

        def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
            if where == "sync":
                raise CandidateHung("sync_cpu_device_pagetables: no answer")
            return super().sync_cpu_device_pagetables(update)

    return Faulty


START = StartFault(fault=0, start=VMAS[0].start, end=VMAS[0].end)


@pytest.mark.parametrize(
    ("driver", "ops", "status", "detail"),
    [
        (lambda: DW.WatchedDriver(HangsInStep(), seconds=BUDGET), (START, StepFault(fault=0)),
         Status.HANG, "step_fault: no answer within 0.5 s"),
        (_hung("begin"), (START,), Status.HANG, "begin: no answer"),
        (_hung("table"), (START,), Status.HANG, "device_page_table: no answer"),
        (_hung("would-block"), (START, StepFault(fault=0)), Status.HANG,
         "fault_would_block: no answer"),
        (_hung("sync"), (NotifierStart(start=VMAS[0].start, end=VMAS[0].end, blockable=True),),
         Status.HANG, "sync_cpu_device_pagetables: no answer"),
    ],
)  # fmt: skip
def test_a_driver_that_hangs_gets_a_hang_verdict(
    driver: Callable[[], DriverCandidate],
    ops: tuple[DriverOp, ...],
    status: Status,
    detail: str,
) -> None:
    """A driver's fault (a watched driver over its budget) is its verdict, wherever it comes."""
    candidate, handshake = start_driver(driver)
    case = DriverCase(world=WORLD, encoding=ENCODINGS[0], ops=ops)
    failure = replay_driver(candidate, handshake, case)
    assert isinstance(failure, Failure)
    (verdict,) = failure.verdicts
    assert verdict.status is status
    assert detail in verdict.detail


def test_an_alarm_lost_in_a_gc_callback_goes_off_again_in_the_call() -> None:
    """A step's alarm that lands in a garbage-collector callback raises where Python drops
    the exception (as "unraisable"): it goes off again and stops the call itself, and the
    dropped one is not reported; other unraisable exceptions go to the hook there was."""
    seen: list[object] = []
    hook = sys.unraisablehook
    sys.unraisablehook = seen.append
    fired: list[bool] = []

    def slow_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and not fired:
            fired.append(True)
            deadline = time.monotonic() + 2 * BUDGET
            while time.monotonic() < deadline:  # the alarm lands in here
                _busy()

    ran_to_the_end: list[bool] = []

    def loops() -> None:
        sys.unraisablehook(cast("sys.UnraisableHookArgs", OTHER))
        gc.callbacks.append(slow_collection)
        try:
            gc.collect()
        finally:
            gc.callbacks.remove(slow_collection)
        deadline = time.monotonic() + 20 * BUDGET  # bounded, should the alarm not come again
        while time.monotonic() < deadline:
            _busy()
        ran_to_the_end.append(True)

    exits: list[int] = []
    watchdog = A.Watchdog(grace=30, exit_process=exits.append)
    try:
        with pytest.raises(CandidateHung, match="loops"):
            A.run_watched("loops", BUDGET, watchdog, loops)
    finally:
        sys.unraisablehook = hook
        watchdog.stop()
    assert fired == [True]
    assert ran_to_the_end == []
    assert seen == [OTHER]
    assert exits == []
