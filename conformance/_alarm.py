"""The step's budget for a Python candidate in process.

A Python candidate in process shares the harness's thread. :func:`run_watched` gives each
outermost call a budget: on the main thread a SIGALRM timer raises a private
:class:`BaseException` (which a candidate's ``except Exception`` does not catch) in the
candidate's frames, and the call becomes :class:`CandidateHung` naming the method and the place
where it was stuck, which the executor reports as a HANG verdict. A candidate stuck in C code
sees no signal until it returns: for it a :class:`Watchdog` thread waits the budget plus a grace
period, calls a hook (to say where the thread is stuck and save what it can) and ends the
process. :class:`Watched` is the base of each side's proxy that puts every call of a candidate
under :func:`run_watched` (``conformance.core._watched``, ``conformance.driver._watched``).
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Final, Generic, TypeVar, final

from ._errors import CandidateHung

if TYPE_CHECKING:
    from sys import UnraisableHookArgs

__all__ = [
    "DEFAULT_GRACE",
    "WATCHDOG",
    "StuckCall",
    "Watchdog",
    "Watched",
    "run_watched",
    "say_stuck",
]

T = TypeVar("T")
InnerT = TypeVar("InnerT")

#: Seconds past its budget that a call stuck where no signal reaches it (in C code) is given
#: before the watchdog ends the process.
DEFAULT_GRACE: Final = 5.0
#: How soon a step's alarm goes off again when Python dropped the exception it raised.
ALARM_AGAIN: Final = 0.05
#: How many of the innermost frames a HANG verdict quotes.
STACK_FRAMES: Final = 8


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
    marks = [i for i, f in enumerate(stack) if f.name == "run_watched" and f.filename == __file__]
    inside = stack[marks[-1] + 1 :] if marks else stack
    return "".join(traceback.format_list(inside[-STACK_FRAMES:])).rstrip("\n")


def run_watched(
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


class Watched(Generic[InnerT]):
    """The base of a side's proxy: ``inner``, each outermost call of it within ``seconds``."""

    def __init__(self, inner: InnerT, *, seconds: float, watchdog: Watchdog | None = None) -> None:
        self.inner = inner
        self._seconds = seconds
        self._watchdog = watchdog if watchdog is not None else WATCHDOG

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.inner!r} {self._seconds:g} s>"

    def search_state(self) -> object:
        """The proxy keeps nothing of a case: its state is the inner candidate's
        (:mod:`conformance._fingerprint`)."""
        return self.inner

    def _call(self, what: str, method: Callable[..., T], *args: object) -> T:
        return run_watched(what, self._seconds, self._watchdog, method, *args)
