"""Instrumented kernel locks for mirror drivers, and the monitor that says when they may sleep.

A mirror driver guards its device page table with a lock that its fault path and its
``sync_cpu_device_pagetables`` callback both take (DRV-4; kernel-drivers-usage §1 and §6). The
seed patch adds the rule about *how* the callback may take it: with ``update.blockable`` False it
must not sleep, so it uses a try-variant and answers ``-EAGAIN`` when it would have to wait
(DRV-1; kernel-semantics §7 rule 1, from 93065ac753e4, and §8 rule 3, the seed's ``hmm.h``).
These locks make both halves observable to a harness.

Rules of this module:

1. Three kinds of lock with the kernel's operations (``include/linux/mutex.h``,
   ``spinlock.h``, ``rwsem.h``): :class:`Mutex` (``mutex_lock``, ``mutex_trylock``,
   ``mutex_unlock``), :class:`Spinlock` (``spin_lock``, ``spin_trylock``, ``spin_unlock``) and
   :class:`RwSemaphore` (``down_read``, ``down_write``, ``down_read_trylock``,
   ``down_write_trylock``, ``up_read``, ``up_write``).
2. The model is sequential. A lock is held by a *step* that has not released it yet (a device
   fault between its lock and unlock steps), never by a running thread. A blocking acquisition
   of a lock held in a mode it cannot share would wait for a step that, in a sequential harness,
   can only run after it: it raises :class:`WouldBlockError` and changes no lock. A scheduler
   asks ``would_block`` first and treats True as a precondition not met.
3. A :class:`SleepMonitor` says whether the code runs in *atomic context*: inside a
   ``non_block_start``/``non_block_end`` section, the bracket that the mmu-notifier core puts
   around non-blockable callbacks since 5.4 (Daniel Vetter's "Catch sleeping/blocking for
   !blockable", [MNE]; bug history #20). Every sleeping call made in that context is recorded
   as a :class:`SleepViolation`, with what it took and where it was called from, as the
   kernel's ``might_sleep`` debug check reports "sleeping function called from invalid
   context": ``mutex_lock``, ``down_read`` and ``down_write`` count whether or not the lock is
   free (a real one may sleep either way), and so do explicit :meth:`SleepMonitor.might_sleep`
   and :meth:`SleepMonitor.wait`. Spinlocks and try-variants never sleep and never count.
4. Releasing a lock that is not held (or not in that mode, or by an owner that does not hold
   it), or ending a section that was never started, is a :class:`DriverUsageError`; nothing
   changes. The kernel would corrupt the lock or warn under lock debugging.

Only the non-block section makes code atomic here: with no threads, a spinlock held by another
step says nothing about the step that is running. The kernel's rwsem also makes a new reader
wait behind a waiting writer; with no waiters in a sequential model, readers only wait for a
writer that holds the lock.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import final

from ._errors import HmmError

__all__ = [
    "DriverUsageCode",
    "DriverUsageError",
    "LockEvent",
    "LockOutcome",
    "Mutex",
    "RwSemaphore",
    "SleepMonitor",
    "SleepViolation",
    "Spinlock",
    "WouldBlockError",
]


@final
class DriverUsageCode(enum.Enum):
    """What a driver (or the harness driving it) got wrong; stable, for tests and reports."""

    #: ``mutex_unlock``, ``spin_unlock``, ``up_read`` or ``up_write`` of a lock not so held.
    NOT_HELD = "not-held"
    #: A release by an owner that does not hold the lock (another step's lock).
    NOT_OWNER = "not-owner"
    #: ``non_block_end`` with no open non-block section.
    NO_SECTION = "no-section"
    #: A step asked of a device fault that has already finished.
    FAULT_FINISHED = "fault-finished"
    #: A mirror unregistered while device faults on it are still in progress.
    FAULTS_IN_PROGRESS = "faults-in-progress"
    #: One lock used with the primitives of another kind (``spin_lock`` on a mutex): C's types
    #: forbid it; a harness that makes a driver's locks by name, over the wire, refuses it.
    WRONG_KIND = "wrong-kind"


@final
class DriverUsageError(HmmError):
    """A driver broke a locking or stepping rule; nothing was changed.

    ``function`` names the kernel primitive (or driver step) misused, ``code`` says how.
    """

    def __init__(self, code: DriverUsageCode, function: str, message: str) -> None:
        self.code = code
        self.function = function
        self.message = message
        super().__init__(f"{function}: {message} [{code.value}]")


@final
class WouldBlockError(HmmError):
    """A blocking acquisition found its lock held: the step would wait; nothing was changed.

    Not a misuse: in the kernel the caller would sleep until the holder releases the lock. A
    sequential harness cannot run the holder meanwhile, so it must not take this step now.
    """

    def __init__(self, primitive: str, lock: str, holders: tuple[str, ...]) -> None:
        self.primitive = primitive
        self.lock = lock
        #: Who holds the lock (the owners given when it was taken).
        self.holders = holders
        held_by = ", ".join(repr(holder) for holder in holders)
        super().__init__(
            f"{primitive}({lock}): held by {held_by}; this step would wait for one that has "
            "not run yet. Ask would_block() before taking it"
        )


@final
class LockOutcome(enum.Enum):
    """What one call of a lock primitive (or a sleep point) did."""

    #: The lock was taken.
    ACQUIRED = "acquired"
    #: A try-variant found the lock held and returned false.
    BUSY = "busy"
    #: A blocking call found the lock held and raised :class:`WouldBlockError`.
    WOULD_BLOCK = "would-block"
    #: The lock was released.
    RELEASED = "released"
    #: ``might_sleep`` or ``wait``: a point where the caller may sleep.
    SLEEP_POINT = "sleep-point"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class LockEvent:
    """One call of a lock primitive or sleep point, in the order the monitor saw them."""

    #: The kernel name of the call: ``mutex_lock``, ``down_read_trylock``, ``wait``, ...
    primitive: str
    #: The lock's name, or what was waited for.
    target: str
    #: Who made the call (as the caller named itself; may be empty).
    owner: str
    outcome: LockOutcome
    #: The innermost non-block section open at the time, or None outside atomic context.
    section: str | None

    @property
    def atomic(self) -> bool:
        """True if the call was made in atomic context (inside a non-block section)."""
        return self.section is not None


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class SleepViolation:
    """A sleeping call made in atomic context ("sleeping function called from invalid context")."""

    #: The sleeping call: ``mutex_lock``, ``down_read``, ``down_write``, ``might_sleep``, ``wait``.
    primitive: str
    #: The lock it took, or what it waited for.
    target: str
    #: The non-block section it was made in: which non-blockable work was being done.
    section: str
    #: The code that made the call, as ``qualified.name (file.py:line)``.
    caller: str


def _caller() -> str:
    """The first frame outside this module: the code that called the lock primitive."""
    frame = sys._getframe(1)
    while frame.f_code.co_filename == __file__ and frame.f_back is not None:
        frame = frame.f_back
    code = frame.f_code
    return f"{code.co_qualname} ({Path(code.co_filename).name}:{frame.f_lineno})"


@final
class SleepMonitor:
    """The context the model's one thread runs in: atomic or not, and every lock call it made.

    Drivers, their locks and the harness share one monitor. ``non_block_start`` and
    ``non_block_end`` (or :meth:`non_block`) bracket a non-blockable callback; sections nest, as
    the kernel's counter does.

    ``listener``, if given, hears each event as it is recorded, after the lock has changed and
    before a blocking call that found its lock held raises: a harness that runs a driver in
    another process forwards the driver's lock calls with it.
    """

    def __init__(self, listener: Callable[[LockEvent], None] | None = None) -> None:
        self._sections: list[str] = []
        self._events: list[LockEvent] = []
        self._violations: list[SleepViolation] = []
        self._locks: list[_ExclusiveLock | RwSemaphore] = []
        self._listener = listener

    def __repr__(self) -> str:
        return (
            f"<SleepMonitor atomic={self.in_atomic} events={len(self._events)} "
            f"violations={len(self._violations)}>"
        )

    @property
    def in_atomic(self) -> bool:
        """True inside a non-block section, where nothing may sleep."""
        return bool(self._sections)

    @property
    def section(self) -> str | None:
        """The innermost open non-block section's reason, or None."""
        return self._sections[-1] if self._sections else None

    @property
    def events(self) -> tuple[LockEvent, ...]:
        """Every lock call and sleep point, oldest first."""
        return tuple(self._events)

    @property
    def violations(self) -> tuple[SleepViolation, ...]:
        """Every sleeping call made in atomic context, oldest first."""
        return tuple(self._violations)

    @property
    def held_locks(self) -> tuple[str, ...]:
        """The names of the locks made on this monitor that someone holds now, oldest first.

        Empty between steps of a driver that releases what it takes (bug history #14 is a
        callback that returned with its lock still held).
        """
        return tuple(lock.name for lock in self._locks if lock.held)

    @property
    def holders(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Each lock that someone holds now, with who holds it (as the takers named themselves).

        The names are the owners given to ``lock``, ``down_read`` and the others, so a harness
        can say whose lock a step would wait for: ``(("gpu.lock", ("fault 0",)),)``.
        """
        return tuple((lock.name, lock._holders()) for lock in self._locks if lock.held)

    def non_block_start(self, reason: str) -> None:
        """``non_block_start()``: enter atomic context; ``reason`` says what is being done."""
        self._sections.append(reason)

    def non_block_end(self) -> None:
        """``non_block_end()``: leave the innermost non-block section."""
        if not self._sections:
            raise DriverUsageError(
                DriverUsageCode.NO_SECTION,
                "non_block_end",
                "no non-block section is open; pair every non_block_end with a non_block_start",
            )
        self._sections.pop()

    @contextmanager
    def non_block(self, reason: str) -> Iterator[None]:
        """A non-block section around a ``with`` block, closed however the block exits."""
        self.non_block_start(reason)
        try:
            yield
        finally:
            self.non_block_end()

    def might_sleep(self, what: str, *, owner: str = "") -> None:
        """``might_sleep()``: the caller may sleep here (for ``what``); in atomic context, a bug."""
        self._sleep_point("might_sleep", what, owner)

    def wait(self, what: str, *, owner: str = "") -> None:
        """Wait for ``what`` (a device fence, a flush to complete): it completes at once here.

        Waiting sleeps, so in atomic context the wait is recorded as a violation.
        """
        self._sleep_point("wait", what, owner)

    def _sleep_point(self, primitive: str, target: str, owner: str) -> None:
        self._note(primitive, target, owner, LockOutcome.SLEEP_POINT)

    def _note(self, primitive: str, target: str, owner: str, outcome: LockOutcome) -> None:
        section = self.section
        self._events.append(
            LockEvent(
                primitive=primitive, target=target, owner=owner, outcome=outcome, section=section
            )
        )
        if section is not None and primitive in _SLEEPING:
            self._violations.append(
                SleepViolation(
                    primitive=primitive, target=target, section=section, caller=_caller()
                )
            )
        if self._listener is not None:
            self._listener(self._events[-1])


#: The calls that may sleep: recorded as violations when made in atomic context.
_SLEEPING = frozenset({"mutex_lock", "down_read", "down_write", "might_sleep", "wait"})


class _ExclusiveLock:
    """A lock with one holder at a time: the shared body of :class:`Mutex` and :class:`Spinlock`."""

    _LOCK = ""
    _TRYLOCK = ""
    _UNLOCK = ""

    def __init__(self, name: str, monitor: SleepMonitor) -> None:
        self.name = name
        self.monitor = monitor
        self._owner: str | None = None
        monitor._locks.append(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} owner={self._owner!r}>"

    @property
    def held(self) -> bool:
        """True while some step holds the lock."""
        return self._owner is not None

    @property
    def owner(self) -> str | None:
        """Who holds the lock, or None."""
        return self._owner

    def _holders(self) -> tuple[str, ...]:
        return (self._owner,) if self._owner is not None else ()

    def would_block(self) -> bool:
        """True if a blocking acquisition would wait now (the lock is held)."""
        return self._owner is not None

    def lock(self, owner: str = "") -> None:
        """Take the lock; raise :class:`WouldBlockError` (changing nothing) if it is held."""
        if self._owner is not None:
            self.monitor._note(self._LOCK, self.name, owner, LockOutcome.WOULD_BLOCK)
            raise WouldBlockError(self._LOCK, self.name, (self._owner,))
        self._owner = owner
        self.monitor._note(self._LOCK, self.name, owner, LockOutcome.ACQUIRED)

    def trylock(self, owner: str = "") -> bool:
        """Take the lock if it is free and return True; return False if it is held."""
        if self._owner is not None:
            self.monitor._note(self._TRYLOCK, self.name, owner, LockOutcome.BUSY)
            return False
        self._owner = owner
        self.monitor._note(self._TRYLOCK, self.name, owner, LockOutcome.ACQUIRED)
        return True

    def unlock(self, owner: str = "") -> None:
        """Release the lock. ``owner``, if given, must be the holder."""
        if self._owner is None:
            raise DriverUsageError(
                DriverUsageCode.NOT_HELD,
                self._UNLOCK,
                f"{self.name} is not held; release only a lock you took",
            )
        if owner and owner != self._owner:
            raise DriverUsageError(
                DriverUsageCode.NOT_OWNER,
                self._UNLOCK,
                f"{self.name} is held by {self._owner!r}, not by {owner!r}",
            )
        self._owner = None
        self.monitor._note(self._UNLOCK, self.name, owner, LockOutcome.RELEASED)


@final
class Mutex(_ExclusiveLock):
    """``struct mutex``: a sleeping lock with one holder.

    :meth:`lock` is ``mutex_lock`` (it may sleep, so in atomic context it is a violation even
    when the mutex is free), :meth:`trylock` is ``mutex_trylock`` and :meth:`unlock` is
    ``mutex_unlock``.
    """

    _LOCK = "mutex_lock"
    _TRYLOCK = "mutex_trylock"
    _UNLOCK = "mutex_unlock"


@final
class Spinlock(_ExclusiveLock):
    """``spinlock_t``: a lock that spins and never sleeps.

    :meth:`lock` is ``spin_lock``, :meth:`trylock` is ``spin_trylock`` and :meth:`unlock` is
    ``spin_unlock``. Fine in atomic context; a ``spin_lock`` on a held spinlock would spin until
    its holder runs, so it raises :class:`WouldBlockError` like a blocking sleep would.
    """

    _LOCK = "spin_lock"
    _TRYLOCK = "spin_trylock"
    _UNLOCK = "spin_unlock"


@final
class RwSemaphore:
    """``struct rw_semaphore``: many readers or one writer; the blocking calls may sleep.

    ``down_read``/``down_write`` sleep (violations in atomic context, free or not);
    ``down_read_trylock``/``down_write_trylock`` never sleep; ``up_read``/``up_write`` release.
    """

    def __init__(self, name: str, monitor: SleepMonitor) -> None:
        self.name = name
        self.monitor = monitor
        self._readers: list[str] = []
        self._writer: str | None = None
        monitor._locks.append(self)

    def __repr__(self) -> str:
        return f"<RwSemaphore {self.name!r} readers={self._readers!r} writer={self._writer!r}>"

    @property
    def held(self) -> bool:
        """True while a reader or the writer holds the semaphore."""
        return bool(self._readers) or self._writer is not None

    @property
    def readers(self) -> tuple[str, ...]:
        """The owners holding the read side, in the order they took it."""
        return tuple(self._readers)

    @property
    def writer(self) -> str | None:
        """The owner holding the write side, or None."""
        return self._writer

    def would_block_read(self) -> bool:
        """True if ``down_read`` would wait now (a writer holds the semaphore)."""
        return self._writer is not None

    def would_block_write(self) -> bool:
        """True if ``down_write`` would wait now (anyone holds the semaphore)."""
        return self.held

    def _holders(self) -> tuple[str, ...]:
        return (self._writer,) if self._writer is not None else tuple(self._readers)

    def down_read(self, owner: str = "") -> None:
        """``down_read``: take the read side; :class:`WouldBlockError` if a writer holds it."""
        self._take("down_read", owner, write=False, blocking=True)

    def down_write(self, owner: str = "") -> None:
        """``down_write``: take the write side; :class:`WouldBlockError` if anyone holds it."""
        self._take("down_write", owner, write=True, blocking=True)

    def down_read_trylock(self, owner: str = "") -> bool:
        """``down_read_trylock``: take the read side if no writer holds it."""
        return self._take("down_read_trylock", owner, write=False, blocking=False)

    def down_write_trylock(self, owner: str = "") -> bool:
        """``down_write_trylock``: take the write side if nobody holds the semaphore."""
        return self._take("down_write_trylock", owner, write=True, blocking=False)

    def _take(self, primitive: str, owner: str, *, write: bool, blocking: bool) -> bool:
        busy = self.would_block_write() if write else self.would_block_read()
        if busy:
            if blocking:
                self.monitor._note(primitive, self.name, owner, LockOutcome.WOULD_BLOCK)
                raise WouldBlockError(primitive, self.name, self._holders())
            self.monitor._note(primitive, self.name, owner, LockOutcome.BUSY)
            return False
        if write:
            self._writer = owner
        else:
            self._readers.append(owner)
        self.monitor._note(primitive, self.name, owner, LockOutcome.ACQUIRED)
        return True

    def up_read(self, owner: str = "") -> None:
        """``up_read``: release one read hold (``owner``'s, if given; else the latest)."""
        if not self._readers:
            raise DriverUsageError(
                DriverUsageCode.NOT_HELD,
                "up_read",
                f"{self.name} is not held for read; up_read only after down_read",
            )
        if not owner:
            self._readers.pop()
        elif owner in self._readers:
            self._readers.remove(owner)
        else:
            raise DriverUsageError(
                DriverUsageCode.NOT_OWNER,
                "up_read",
                f"{self.name} is read-held by {self._readers!r}, not by {owner!r}",
            )
        self.monitor._note("up_read", self.name, owner, LockOutcome.RELEASED)

    def up_write(self, owner: str = "") -> None:
        """``up_write``: release the write side. ``owner``, if given, must be the writer."""
        if self._writer is None:
            raise DriverUsageError(
                DriverUsageCode.NOT_HELD,
                "up_write",
                f"{self.name} is not held for write; up_write only after down_write",
            )
        if owner and owner != self._writer:
            raise DriverUsageError(
                DriverUsageCode.NOT_OWNER,
                "up_write",
                f"{self.name} is write-held by {self._writer!r}, not by {owner!r}",
            )
        self._writer = None
        self.monitor._note("up_write", self.name, owner, LockOutcome.RELEASED)
