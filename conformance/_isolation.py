"""Keeping a candidate from hanging the harness or outliving it.

Two kinds of candidate need two kinds of guard.

A program (``exec:``) runs in a process group of its own, and whatever it starts may leave that
group (``setsid``) or outlive it. :func:`kill_tree` kills such a candidate: its group, every
descendant found under it in ``/proc``, and every process that still holds one of its pipes,
then reaps what it can. :func:`child_subreaper` makes the harness the reaper of its orphaned
descendants on Linux, so that a process whose parent died comes back to the harness instead of
``init``; :func:`kill_descendants` then kills and reaps every descendant that is left, at the
end of a run or on an interruption. :func:`interrupts` turns SIGTERM and SIGINT into
:class:`Interrupted`, so a cancelled run unwinds through the code that cleans up instead of
dying where it stands. :func:`guarded` is the three together, as the command uses them.

A Python candidate in process shares the harness's thread. :class:`WatchedCandidate` and
:class:`WatchedDriver` give each outermost call a budget: on the main thread a SIGALRM timer
raises a private :class:`BaseException` (which a candidate's ``except Exception`` does not
catch) in the candidate's frames, and the proxy turns it into :class:`CandidateHung` naming the
method and the place where it was stuck, which the executor reports as a HANG verdict. A
candidate stuck in C code sees no signal until it returns: for it a :class:`Watchdog` thread
waits the budget plus a grace period, calls a hook (to say where the thread is stuck and save
what it can) and ends the process.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import IO, TYPE_CHECKING, Final, TypeVar, final

from hmm_ref import DeviceEntry, FaultStep, HmmMirrorOps, HmmUpdate, PfnEncoding

from ._adapter import Candidate, CandidateHung, CpuView, Handshake, RangeView
from ._driver_adapter import DriverCandidate, DriverEnv, DriverHandshake, FaultView

if TYPE_CHECKING:
    from sys import UnraisableHookArgs

__all__ = [
    "DEFAULT_GRACE",
    "Interrupted",
    "Interruptions",
    "StuckCall",
    "Watchdog",
    "WatchedCandidate",
    "WatchedDriver",
    "child_subreaper",
    "guarded",
    "interrupts",
    "kill_descendants",
    "kill_tree",
    "received",
    "watched",
    "watched_driver",
]

T = TypeVar("T")

#: Seconds past its budget that a call stuck where no signal reaches it (in C code) is given
#: before the watchdog ends the process.
DEFAULT_GRACE: Final = 5.0
#: How soon a step's alarm goes off again when Python dropped the exception it raised.
ALARM_AGAIN: Final = 0.05
#: How long a kill waits for killed processes to be reaped (by the harness, or by init).
REAP_WAIT: Final = 2.0
#: How many rounds :func:`kill_descendants` makes; each round kills what the last one orphaned.
KILL_ROUNDS: Final = 50
#: How many of the innermost frames a HANG verdict quotes.
STACK_FRAMES: Final = 8

_PR_SET_CHILD_SUBREAPER: Final = 36
_PR_GET_CHILD_SUBREAPER: Final = 37


# -- the harness as the reaper of its descendants ---------------------------------------------


def _prctl() -> Callable[..., int] | None:
    """libc's prctl on Linux; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    return prctl


@contextlib.contextmanager
def child_subreaper() -> Iterator[bool]:
    """Make this process the reaper of its orphaned descendants, for the ``with`` block.

    Yields True on Linux; elsewhere it does nothing and yields False (an orphan then goes to
    ``init``, and only what is found under the candidate's process is killed). The previous
    setting comes back at the end.
    """
    prctl = _prctl()
    if prctl is None:
        yield False
        return
    before = ctypes.c_int(0)
    prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(before), 0, 0, 0)
    prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        yield True
    finally:
        prctl(_PR_SET_CHILD_SUBREAPER, before.value, 0, 0, 0)


# -- the process table --------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """The process's state letter (``Z`` for a zombie) and parent, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return fields[0].decode(), int(fields[1])


def _parents() -> dict[int, int]:
    """Process id to parent id, for every process in /proc (empty where there is none)."""
    try:
        pids = [int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit()]
    except FileNotFoundError:
        return {}
    stats = {pid: _stat(pid) for pid in pids}
    return {pid: stat[1] for pid, stat in stats.items() if stat is not None}  # None: it ended


def _descendants(root: int, parents: Mapping[int, int]) -> list[int]:
    """Every descendant of ``root``, each after its parent."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found: list[int] = []
    queue = [root]
    while queue:
        for child in children.get(queue.pop(0), ()):
            found.append(child)
            queue.append(child)
    return found


def _pipe_holders(streams: Iterable[IO[bytes]]) -> set[int]:
    """The other processes that hold an end of one of these pipes open."""
    wanted = set()
    for stream in streams:
        with contextlib.suppress(OSError, ValueError):  # a closed stream holds nothing
            wanted.add(f"pipe:[{os.fstat(stream.fileno()).st_ino}]")
    others = set(_parents()) - {os.getpid()}
    return {pid for pid in others if not wanted.isdisjoint(_descriptors(pid))}


def _descriptors(pid: int) -> set[str]:
    """What the process's file descriptors point at (``pipe:[INODE]`` for a pipe); nothing for
    a process that is gone or another user's."""
    found = set()
    with contextlib.suppress(OSError):
        for descriptor in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):  # closed while we looked
                found.add(os.readlink(descriptor.path))
    return found


def _kill(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _reap(pids: Iterable[int], seconds: float = REAP_WAIT) -> list[int]:
    """Wait for killed processes to be gone: reap those that are (or become) this process's
    children, and leave the others to their parents. Returns those still there after
    ``seconds`` (a process stuck in the kernel)."""
    waiting = list(pids)
    deadline = time.monotonic() + seconds
    while waiting:
        for pid in list(waiting):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                # Not ours: done once gone, or a zombie of a parent that is not dying with it
                # (a dying parent hands its zombies to the reaper, which may be this process).
                stat = _stat(pid)
                done = pid if stat is None or (stat[0] == "Z" and stat[1] not in waiting) else 0
            if done:
                waiting.remove(pid)
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    return waiting


def kill_tree(process: subprocess.Popen[bytes], streams: tuple[IO[bytes], ...]) -> None:
    """Kill a candidate and everything it started, reap what is ours, close its pipes.

    That is: its process group; if it is still running, every descendant of it (found before it
    dies, so that one which left the group with ``setsid`` is found too); if it has exited
    already, every process that still holds one of its pipes (its children left orphans). A
    process that left the group and the pipes, and the tree before the kill, is out of reach
    here; :func:`kill_descendants` finds it at the end if the harness is its reaper.
    Idempotent.
    """
    if process.poll() is None:
        descendants, holders = _descendants(process.pid, _parents()), set[int]()
    else:
        # Its children went to the reaper when it exited: find those that kept its pipes.
        descendants, holders = [], _pipe_holders(streams)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    victims = [*descendants, *sorted(holders - set(descendants))]
    _kill(victims)
    process.wait()
    _reap(victims)
    for stream in streams:
        stream.close()


def kill_descendants() -> int:
    """Kill and reap every descendant of this process; returns how many were killed.

    Each round kills what it finds under this process; with :func:`child_subreaper` in force
    whatever that orphans comes back to this process, and the next round kills it.
    """
    killed = 0
    for _ in range(KILL_ROUNDS):
        found = _descendants(os.getpid(), _parents())
        if not found:
            break
        _kill(found)
        killed += len(found)
        _reap(found)
    return killed


# -- interruptions ----------------------------------------------------------------------------


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: the run unwinds (not an ``Exception``, so nothing on the way
    mistakes it for a candidate's failure) and the command exits with :attr:`exit_status`."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        #: The signal that arrived.
        self.signum = signum
        #: What the command exits with, as a shell reports a death by this signal: 128 + signum.
        self.exit_status = 128 + signum


_INTERRUPTS: Final = (signal.SIGINT, signal.SIGTERM)


def _send_later(signum: int) -> None:
    """Send ``signum`` to this process from another thread, a moment from now (after the
    code that lost it has returned)."""

    def send() -> None:
        time.sleep(0.01)
        os.kill(os.getpid(), signum)

    threading.Thread(target=send, name="interrupt again", daemon=True).start()


@final
class Interruptions:
    """What :func:`interrupts` yields: whether it could install its handlers, and the signal
    that came, if one did.

    Code that cannot be interrupted cleanly (a library's own bookkeeping) may turn the
    :class:`Interrupted` into another exception, or swallow it; :attr:`received` still says
    that the run was interrupted, and with what exit status to end.
    """

    def __init__(self, *, installed: bool) -> None:
        self.installed = installed
        self.received: Interrupted | None = None


@contextlib.contextmanager
def interrupts() -> Iterator[Interruptions]:
    """Raise :class:`Interrupted` in the main thread on the first SIGINT or SIGTERM.

    Signals after it are ignored until the block ends, so the clean-up they would interrupt
    runs to its end (it is bounded: every candidate call has its budget). A handler's exception
    is lost where Python cannot raise it (a garbage-collector callback, a finaliser, which
    report it as "unraisable"): then the signal is sent again, from another thread, so that it
    lands in the main thread's next Python code. The old handlers come back at the end. Off the
    main thread, where Python cannot handle signals, it does nothing (``installed`` is False).
    """
    if threading.current_thread() is not threading.main_thread():
        yield Interruptions(installed=False)
        return
    state = Interruptions(installed=True)
    raised = False  # an Interrupted is on its way up
    in_hook = False  # one raised now would be lost as well

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        del frame
        if raised:
            return
        if in_hook:
            _send_later(signum)
            return
        raised = True
        state.received = Interrupted(signum)
        raise state.received

    hook = sys.unraisablehook

    def on_unraisable(unraisable: UnraisableHookArgs) -> None:
        nonlocal raised, in_hook
        if not isinstance(unraisable.exc_value, Interrupted):
            hook(unraisable)
            return
        in_hook = True
        try:
            raised = False  # it did not get through: the next one must
            _send_later(unraisable.exc_value.signum)
        finally:
            in_hook = False

    before = {signum: signal.signal(signum, on_signal) for signum in _INTERRUPTS}
    sys.unraisablehook = on_unraisable
    _ACTIVE.append(state)
    try:
        yield state
    finally:
        _ACTIVE.remove(state)
        for signum, handler in before.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        sys.unraisablehook = hook


#: The :func:`interrupts` blocks in force, innermost last.
_ACTIVE: list[Interruptions] = []


def received() -> Interrupted | None:
    """The signal that arrived in the innermost :func:`interrupts` block, if one did: code that
    caught what it raised (a library that turned it into its own exception) asks here."""
    return _ACTIVE[-1].received if _ACTIVE else None


@contextlib.contextmanager
def guarded() -> Iterator[Interruptions]:
    """The command's guard: the harness reaps orphans, SIGINT and SIGTERM unwind as
    :class:`Interrupted`, and at the end every process left under the harness is killed and
    reaped (with both signals held back meanwhile, so the clean-up is not cut short).

    After the block, ``received`` of what it yields says whether a signal came, whatever
    exception (or none) the interrupted code ended with: the command then exits with its
    ``exit_status``.
    """
    with child_subreaper():
        try:
            with interrupts() as state:
                yield state
        finally:
            held = signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
            try:
                kill_descendants()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)


# -- the in-process step budget ------------------------------------------------------------------


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class StuckCall:
    """What the watchdog says of a call it gave up on, just before it ends the process."""

    #: The candidate's method.
    what: str
    #: The step's budget, in seconds, and the grace given on top of it.
    seconds: float
    grace: float
    #: The stuck thread's name and its stack, outermost frame first.
    thread: str
    stack: str

    def describe(self) -> str:
        return (
            f"hmm-conformance: {self.what} has not returned within {self.seconds:g} s (the "
            f"step's budget, --step-timeout) and {self.grace:g} s more, and no signal reaches "
            f"it (it is stuck outside Python code); ending the process. Thread {self.thread} "
            f"is at:\n{self.stack}"
        )


def say_stuck(stuck: StuckCall) -> None:
    """The watchdog's default hook: say where the call is stuck on standard error."""
    sys.stderr.write(stuck.describe())
    sys.stderr.flush()


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class _Watch:
    deadline: float
    what: str
    seconds: float
    thread: int


@final
class Watchdog:
    """The last resort: a thread that ends the process when a watched call overruns its budget
    by the grace period, after calling ``on_stuck`` with where the call's thread is stuck.

    ``exit_process`` is how the process ends (``os._exit``: a thread cannot unwind the stuck one); a
    test injects a fake. The thread starts at the first watched call and waits on a condition
    between calls.
    """

    def __init__(
        self,
        *,
        grace: float = DEFAULT_GRACE,
        on_stuck: Callable[[StuckCall], None] = say_stuck,
        exit_process: Callable[[int], object] = os._exit,
    ) -> None:
        self._grace = grace
        self._on_stuck = on_stuck
        self._exit = exit_process
        self._condition = threading.Condition()
        self._watched: dict[int, _Watch] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def watch(self, what: str, seconds: float) -> int:
        """Start watching a call on this thread; the token is for :meth:`release`."""
        with self._condition:
            token = next(self._tokens)
            self._watched[token] = _Watch(
                deadline=time.monotonic() + seconds + self._grace,
                what=what,
                seconds=seconds,
                thread=threading.get_ident(),
            )
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="hmm-conformance watchdog", daemon=True
                )
                self._thread.start()
            self._condition.notify()
        return token

    def release(self, token: int) -> None:
        """The call returned in time."""
        with self._condition:
            self._watched.pop(token, None)

    def stop(self) -> None:
        """End the thread (a later :meth:`watch` starts a new one)."""
        with self._condition:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._condition.notify()
        if thread is not None:
            thread.join()

    def _next(self) -> _Watch | None:
        """Wait for a watched call to overrun; None when stopped."""
        with self._condition:
            while not self._stopping:
                now = time.monotonic()
                for token, watch in self._watched.items():
                    if watch.deadline <= now:
                        del self._watched[token]
                        return watch
                deadlines = [watch.deadline - now for watch in self._watched.values()]
                self._condition.wait(min(deadlines, default=None))
        return None

    def _run(self) -> None:
        while (watch := self._next()) is not None:
            names = {thread.ident: thread.name for thread in threading.enumerate()}
            frame = sys._current_frames().get(watch.thread)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "(gone)\n"
            try:
                self._on_stuck(
                    StuckCall(
                        what=watch.what,
                        seconds=watch.seconds,
                        grace=self._grace,
                        thread=names.get(watch.thread, "?"),
                        stack=stack,
                    )
                )
            except Exception:  # the process ends all the same; say why the hook did not
                traceback.print_exc()
            self._exit(1)


#: The watchdog of every watched candidate that is not given its own.
WATCHDOG: Final = Watchdog()


class _Expired(BaseException):
    """Internal: the step's budget ran out (raised in the candidate's frames by SIGALRM)."""


@final
class _Alarm:
    """A one-shot SIGALRM that raises :class:`_Expired` in the main thread, and where it hit."""

    def __init__(self, seconds: float) -> None:
        self.active = True
        self.stack: list[traceback.FrameSummary] | None = None
        self._raised = False
        self._before = signal.signal(signal.SIGALRM, self._on_alarm)
        self._hook = sys.unraisablehook
        sys.unraisablehook = self._on_unraisable
        signal.setitimer(signal.ITIMER_REAL, seconds)

    @staticmethod
    def usable() -> bool:
        """Only the main thread gets signals, and only a timer no one else set may be taken."""
        return (
            threading.current_thread() is threading.main_thread()
            and hasattr(signal, "setitimer")
            and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        )

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        del signum
        if not self.active or self._raised:
            return  # a late delivery, after the call was over or had already been stopped
        self.stack = traceback.extract_stack(frame)
        self._raised = True
        raise _Expired

    def _on_unraisable(self, unraisable: UnraisableHookArgs) -> None:
        """Python dropped an exception where it cannot propagate (a garbage-collector
        callback, a finaliser): if it was this alarm's, the alarm goes off again, to land in
        the call's own code."""
        if not isinstance(unraisable.exc_value, _Expired):
            self._hook(unraisable)
        else:  # only an armed alarm holds the hook
            self._raised = False
            signal.setitimer(signal.ITIMER_REAL, ALARM_AGAIN)

    def stop(self) -> None:
        self.active = False  # first: a late delivery from here on is ignored
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._before if self._before is not None else signal.SIG_DFL)
        sys.unraisablehook = self._hook


_calls = threading.local()


def _where(stack: list[traceback.FrameSummary]) -> str:
    """The candidate's innermost frames: those below the watched call, the last few of them."""
    marks = [i for i, f in enumerate(stack) if f.name == "_run_watched" and f.filename == __file__]
    inside = stack[marks[-1] + 1 :] if marks else stack
    return "".join(traceback.format_list(inside[-STACK_FRAMES:])).rstrip("\n")


def _run_watched(
    what: str, seconds: float, watchdog: Watchdog, method: Callable[..., T], *args: object
) -> T:
    """Call ``method`` within the step's budget; :class:`CandidateHung` if it ran out.

    A call made while another is watched on the same thread (the candidate calling back into
    the harness, which calls the candidate again) is part of that call's budget.
    """
    if getattr(_calls, "busy", False):
        return method(*args)
    _calls.busy = True
    token = watchdog.watch(what, seconds)
    alarm: _Alarm | None = None
    try:
        try:
            alarm = _Alarm(seconds) if _Alarm.usable() else None
            try:
                result = method(*args)
            finally:
                if alarm is not None:
                    alarm.stop()
            # A call that returns after its alarm went off swallowed it, or C code (a cffi
            # callback) did and came back late: it overran its budget all the same.
            if alarm is None or alarm.stack is None:
                return result
        except _Expired:
            pass
        assert alarm is not None, "only an alarm raises _Expired"
        assert alarm.stack is not None, "and it says where"
        raise CandidateHung(
            f"{what}: no answer within {seconds:g} s (the step's budget, --step-timeout); "
            f"it was running:\n{_where(alarm.stack)}"
        )
    finally:
        watchdog.release(token)
        _calls.busy = False


@final
class WatchedCandidate:
    """A :class:`~conformance.Candidate` whose every outermost call has the step's budget."""

    def __init__(
        self, inner: Candidate, *, seconds: float, watchdog: Watchdog | None = None
    ) -> None:
        self.inner = inner
        self._seconds = seconds
        self._watchdog = watchdog if watchdog is not None else WATCHDOG

    def __repr__(self) -> str:
        return f"<WatchedCandidate {self.inner!r} {self._seconds:g} s>"

    def _call(self, what: str, method: Callable[..., T], *args: object) -> T:
        return _run_watched(what, self._seconds, self._watchdog, method, *args)

    def handshake(self) -> Handshake:
        return self._call("handshake", self.inner.handshake)

    def begin(self, cpu: CpuView) -> None:
        self._call("begin", self.inner.begin, cpu)

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        return self._call("register", self.inner.register, mirror, ops)

    def unregister(self, mirror: int) -> None:
        self._call("unregister", self.inner.unregister, mirror)

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        return self._call("snapshot", self.inner.snapshot, range_id, vma, start, end, encoding)

    def observe(self, range_id: int) -> RangeView:
        return self._call("observe", self.inner.observe, range_id)

    def range_done(self, range_id: int) -> bool:
        return self._call("range_done", self.inner.range_done, range_id)

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        return self._call("invalidate_start", self.inner.invalidate_start, start, end, blockable)

    def invalidate_end(self, start: int, end: int) -> None:
        self._call("invalidate_end", self.inner.invalidate_end, start, end)

    def release(self) -> None:
        self._call("release", self.inner.release)

    def close(self) -> None:
        self._call("close", self.inner.close)


@final
class WatchedDriver:
    """A :class:`DriverCandidate` whose every outermost call has the step's budget."""

    def __init__(
        self, inner: DriverCandidate, *, seconds: float, watchdog: Watchdog | None = None
    ) -> None:
        self.inner = inner
        self._seconds = seconds
        self._watchdog = watchdog if watchdog is not None else WATCHDOG

    def __repr__(self) -> str:
        return f"<WatchedDriver {self.inner!r} {self._seconds:g} s>"

    def _call(self, what: str, method: Callable[..., T], *args: object) -> T:
        return _run_watched(what, self._seconds, self._watchdog, method, *args)

    def handshake(self) -> DriverHandshake:
        return self._call("handshake", self.inner.handshake)

    def begin(self, env: DriverEnv) -> None:
        self._call("begin", self.inner.begin, env)

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        return self._call(
            "sync_cpu_device_pagetables", self.inner.sync_cpu_device_pagetables, update
        )

    def release(self) -> None:
        self._call("release", self.inner.release)

    def start_fault(self, fault: int, start: int, end: int) -> None:
        self._call("start_fault", self.inner.start_fault, fault, start, end)

    def step_fault(self, fault: int) -> FaultStep:
        return self._call("step_fault", self.inner.step_fault, fault)

    def fault_view(self, fault: int) -> FaultView:
        return self._call("fault_view", self.inner.fault_view, fault)

    def fault_would_block(self, fault: int) -> bool:
        return self._call("fault_would_block", self.inner.fault_would_block, fault)

    def invalidation_would_block(self, blockable: bool) -> bool:
        return self._call(
            "invalidation_would_block", self.inner.invalidation_would_block, blockable
        )

    def release_would_block(self) -> bool:
        return self._call("release_would_block", self.inner.release_would_block)

    def device_page_table(self) -> Mapping[int, DeviceEntry]:
        return self._call("device_page_table", self.inner.device_page_table)

    def close(self) -> None:
        self._call("close", self.inner.close)


def watched(
    factory: Callable[[], Candidate], *, seconds: float, watchdog: Watchdog | None = None
) -> Callable[[], Candidate]:
    """``factory``, with each candidate it makes in a :class:`WatchedCandidate`."""
    return lambda: WatchedCandidate(factory(), seconds=seconds, watchdog=watchdog)


def watched_driver(
    factory: Callable[[], DriverCandidate], *, seconds: float, watchdog: Watchdog | None = None
) -> Callable[[], DriverCandidate]:
    """``factory``, with each driver it makes in a :class:`WatchedDriver`."""
    return lambda: WatchedDriver(factory(), seconds=seconds, watchdog=watchdog)
