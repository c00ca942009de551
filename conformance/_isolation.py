"""Keeping a candidate that runs as a program from outliving the harness, and the harness from
dying where it stands.

A program (``exec:``) runs in a process group of its own, and whatever it starts may leave that
group (``setsid``) or outlive it. :func:`kill_tree` kills such a candidate: its group, every
descendant found under it in ``/proc``, and every process that still holds one of its pipes,
then reaps what it can. :func:`child_subreaper` makes the harness the reaper of its orphaned
descendants on Linux, so that a process whose parent died comes back to the harness instead of
``init``; :func:`kill_descendants` then kills and reaps every descendant that is left, at the
end of a run or on an interruption. :func:`interrupts` turns SIGTERM and SIGINT into
:class:`Interrupted`, so a cancelled run unwinds through the code that cleans up instead of
dying where it stands. :func:`guarded` is the three together, as the command uses them.

A Python candidate in process is kept to its budget by :mod:`conformance._alarm` instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import FrameType
from typing import IO, TYPE_CHECKING, Final, final

if TYPE_CHECKING:
    from sys import UnraisableHookArgs

__all__ = [
    "Interrupted",
    "Interruptions",
    "child_subreaper",
    "guarded",
    "interrupts",
    "kill_descendants",
    "kill_tree",
    "received",
]

#: How long a kill waits for killed processes to be reaped (by the harness, or by init).
REAP_WAIT: Final = 2.0
#: How many rounds :func:`kill_descendants` makes; each round kills what the last one orphaned.
KILL_ROUNDS: Final = 50

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
    """Send ``signum`` to this process's main thread from another thread, a moment from now
    (after the code that lost it has returned).

    To the main thread, not to the process: the kernel may hand a signal sent to the process
    to any thread that does not block it, the sending one included, and Python then runs the
    handler only once the main thread next runs Python code. A main thread waiting in a system
    call (a sleep, a read from a candidate's pipe) would wait it out first; a signal sent to
    it ends the wait.
    """
    main = threading.main_thread().ident
    assert main is not None, "the main thread has started"

    def send() -> None:
        time.sleep(0.01)
        signal.pthread_kill(main, signum)

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
