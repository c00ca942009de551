"""A reference mirror driver: the documented protocol, in steps a scheduler can interleave.

This is the driver half of the protocol as drivers of the seed's API were told to write it
(kernel-drivers-usage §1 and §6, the ``hmm.rst`` usage section of the 4.18 era; kernel-semantics
§8, the ``hmm.h`` comments). Its shape follows Jérôme Glisse's out-of-tree "dummy" HMM driver (a
device page table under a read/write semaphore) and ``lib/test_hmm.c``'s dmirror (a mutex that
the invalidation only try-locks when it may not block); no code of either is used.

Rules it keeps (docs/spec.md §8):

- **DRV-1** With ``blockable`` False the callback runs in a non-block section of its
  :class:`SleepMonitor` and takes only a spinlock and a try-variant; a busy lock gives
  ``-EAGAIN``, with nothing done.
- **DRV-2** When the callback returns 0 (always, when blockable) no device entry is left in
  ``[start, end)`` and the device TLB flush (recorded in :attr:`ReferenceDriver.flushes`) is
  done: the model's device completes a flush at once, so it is never a wait.
- **DRV-3** ``-EAGAIN`` only when not blockable.
- **DRV-4** A fault commits only a snapshot whose ``hmm_vma_range_done`` returned True, called
  while the fault holds the lock that the callback takes; otherwise it unlocks and starts again
  from the snapshot (kernel-semantics §8 rule 6).
- **DRV-5** Entries are decoded with the range's own encoding; an entry without VALID is never
  committed (the confirmed snapshot says the CPU maps nothing there, so the device entry goes),
  and the WRITE flag is the only source of device write permission, so the device never has
  more rights than the CPU had.
- **DRV-6** A non-blockable update over a span where the device maps nothing answers 0 without
  touching the sleeping lock, even while a fault holds it.

The locks. The device page table has two guards, as kernel tables often do (writers hold both,
readers hold either). The *driver lock* D is a mutex (dmirror, nouveau) or a read/write
semaphore (the dummy driver's ``pt.lock``: faults commit under the read side, invalidations take
the write side), chosen with :class:`DriverLockKind`. A spinlock lets a non-blockable
invalidation see without sleeping whether it has anything to do in its span: 93065ac753e4 asks
notifiers to bail out only when they have work that would block (kernel-semantics §7 rule 1), a
filter the 5.5 interval notifiers later moved into the core (bug history #18, #21).

A fault in progress needs no waiting for: HMM marks its range invalid before it calls any mirror
(INV-9, kernel-semantics §3.5 rule 2d), so its ``range_done`` will say False and it will retry
(kernel-drivers-usage §7, cases A and B).

The fault path, one :meth:`DeviceFault.step` each (kernel-drivers-usage §6, "commit path"):

1. ``SNAPSHOT`` ``hmm_vma_get_pfns`` into a fresh :class:`HmmRange`; an error ends the fault.
2. ``LOCK`` take D (``mutex_lock`` or ``down_read``): the one step that can block.
3. ``CHECK`` ``hmm_vma_range_done``; commit the decoded entries only if it returned True.
4. ``UNLOCK`` release D; the fault is done, or goes back to step 1.

Blocking steps are refused, not waited for: a scheduler asks :meth:`DeviceFault.would_block`,
:meth:`ReferenceDriver.invalidation_would_block` and :meth:`ReferenceDriver.release_would_block`
first, since a blockable invalidation or a release that blocks inside HMM would raise
:class:`WouldBlockError` after HMM's range pass had run.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, final

from ._errno import Errno
from ._errors import UsageCode, UsageError
from ._hmm import (
    HmmMirror,
    HmmMirrorOps,
    HmmUpdate,
    hmm_mirror_register,
    hmm_mirror_unregister,
    hmm_vma_get_pfns,
    hmm_vma_range_done,
)
from ._locks import DriverUsageCode, DriverUsageError, Mutex, RwSemaphore, SleepMonitor, Spinlock
from ._range import DEFAULT_ENCODING, HmmPfnFlag, HmmRange, PfnEncoding
from ._world import MmStruct, page_aligned

__all__ = [
    "DeviceEntry",
    "DeviceFault",
    "DeviceFlush",
    "DriverLockKind",
    "FaultCheck",
    "FaultStep",
    "NonBlockGuard",
    "ReferenceDriver",
    "SyncRecord",
]

#: The span a tear-down clears and flushes: the whole 64-bit address space.
_EVERYTHING = (0, 1 << 64)


def _section(name: str, update: HmmUpdate) -> str:
    """How a non-block section around ``name``'s callback for ``update`` is labelled."""
    return (
        f"{name}: sync_cpu_device_pagetables([{update.start:#x}, {update.end:#x}), blockable=False)"
    )


@final
class DriverLockKind(enum.Enum):
    """What the driver lock D is; both are documented designs."""

    #: One mutex for faults and invalidations (``lib/test_hmm.c`` dmirror, nouveau's svmm).
    MUTEX = "mutex"
    #: Faults commit under the read side, invalidations take the write side (the dummy driver).
    RWSEM = "rwsem"


@final
class FaultStep(enum.Enum):
    """The steps of a device fault, in order."""

    #: ``hmm_vma_get_pfns`` into a fresh range.
    SNAPSHOT = "snapshot"
    #: Take the driver lock (``mutex_lock`` or ``down_read``); the only step that can block.
    LOCK = "lock"
    #: ``hmm_vma_range_done`` under the lock, and the commit if it returned True.
    CHECK = "check"
    #: Release the driver lock; then done, or back to SNAPSHOT.
    UNLOCK = "unlock"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceEntry:
    """One device page-table entry: the page it maps and whether the device may write it."""

    pfn: int
    write: bool


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceFlush:
    """A device TLB flush after entries were cleared: its span, why, and how many went."""

    start: int
    end: int
    #: ``invalidate`` (the callback), ``release`` or ``unregister`` (the whole address space).
    reason: Literal["invalidate", "release", "unregister"]
    cleared: int


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class SyncRecord:
    """One call of the driver's ``sync_cpu_device_pagetables`` that returned."""

    update: HmmUpdate
    reply: int
    #: How many device entries in ``[update.start, update.end)`` it removed.
    cleared: int


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class FaultCheck:
    """One CHECK step of a fault: what ``range_done`` said, under which lock, what was written."""

    #: The fault's name (``driver/faultN``).
    fault: str
    start: int
    end: int
    #: What ``hmm_vma_range_done`` returned.
    range_valid: bool
    #: True if the fault held the driver lock when it called ``range_done`` (DRV-4).
    lock_held: bool
    #: True if the snapshot was written into the device page table.
    committed: bool


@final
class DeviceFault:
    """A device fault over ``[start, end)`` in progress, taken one step at a time.

    Made by :meth:`ReferenceDriver.start_fault`. :meth:`step` takes :attr:`next_step`;
    :meth:`would_block` says whether that step would wait for a lock now. A fault whose snapshot
    was invalidated goes back to SNAPSHOT after UNLOCK and counts another try. It finishes with
    :attr:`result` 0 (committed), the snapshot's error, or ``-EFAULT`` when the mirror is no
    longer registered (the mm was released, so there is nothing left to map).
    """

    def __init__(self, driver: ReferenceDriver, number: int, start: int, end: int) -> None:
        self.driver = driver
        #: ``driver/faultN``: the owner name it takes locks under.
        self.name = f"{driver.name}/fault{number}"
        self.start = start
        self.end = end
        #: How many snapshots it has taken.
        self.tries = 0
        self._next: FaultStep | None = FaultStep.SNAPSHOT
        self._range: HmmRange | None = None
        self._outcome: int | None = None  # decided by CHECK, reported after UNLOCK
        self._result: int | None = None

    def __repr__(self) -> str:
        step = self._next.value if self._next is not None else f"done {self._result}"
        return f"<DeviceFault {self.name} [{self.start:#x}, {self.end:#x}) next={step}>"

    @property
    def next_step(self) -> FaultStep | None:
        """The step :meth:`step` takes next, or None once the fault has finished."""
        return self._next

    @property
    def result(self) -> int | None:
        """0 if it committed, a negative errno if it failed, None while in progress."""
        return self._result

    @property
    def range(self) -> HmmRange | None:
        """The snapshot of the current try (registered from SNAPSHOT until CHECK), or None."""
        return self._range

    def would_block(self) -> bool:
        """True if the next step is LOCK and D is held unshareably (a mutex, by another fault)."""
        return self._next is FaultStep.LOCK and self.driver._shared_would_block()

    def step(self) -> FaultStep:
        """Take the next step and return which one it was.

        Raises :class:`WouldBlockError` (changing nothing) if it is LOCK and the lock is held,
        and :class:`DriverUsageError` if the fault has finished.
        """
        step = self._next
        if step is None:
            raise DriverUsageError(
                DriverUsageCode.FAULT_FINISHED,
                "DeviceFault.step",
                f"{self.name} finished with {self._result}; start a new fault",
            )
        if step is FaultStep.SNAPSHOT:
            self._snapshot()
        elif step is FaultStep.LOCK:
            self.driver._lock_shared(self.name)
            self._next = FaultStep.CHECK
        elif step is FaultStep.CHECK:
            self._check()
        else:
            self.driver._unlock_shared(self.name)
            if self._outcome is None:
                self._next = FaultStep.SNAPSHOT  # the snapshot was stale: start again
            else:
                self._finish(self._outcome)
        return step

    def run(self) -> int:
        """Take every remaining step and return :attr:`result`."""
        while self._result is None:
            self.step()
        return self._result

    def _finish(self, result: int) -> None:
        self._result = result
        self._next = None
        self.driver._faults.remove(self)

    def _snapshot(self) -> None:
        driver = self.driver
        self.tries += 1
        vma = driver.mm.find_vma(self.start)
        if vma is None or not driver.mirror.registered:
            # No vma, or the mirror was released or unregistered: nothing the device may map.
            self._finish(-Errno.EFAULT)
            return
        range_ = HmmRange(vma=vma, start=self.start, end=self.end, encoding=driver.encoding)
        ret = driver._get_pfns(range_)
        if ret:
            self._finish(ret)  # hmm_vma_get_pfns registered nothing
            return
        self._range = range_
        self._next = FaultStep.LOCK

    def _check(self) -> None:
        driver = self.driver
        range_ = self._range
        assert range_ is not None, "CHECK follows a successful SNAPSHOT"
        lock_held = driver._holds_shared(self.name)
        valid = driver._range_done(range_)
        self._range = None
        # A released mirror hears no more invalidations, and the seed's release leaves ranges
        # valid (REL-3): a True here could be stale, so nothing is committed after release.
        live = driver.mirror.registered
        committed = valid and live
        if committed:
            driver._commit(range_, self.name)
            self._outcome = 0
        elif live:
            self._outcome = None
        else:
            self._outcome = -Errno.EFAULT
        driver._checks.append(
            FaultCheck(
                fault=self.name,
                start=self.start,
                end=self.end,
                range_valid=valid,
                lock_held=lock_held,
                committed=committed,
            )
        )
        self._next = FaultStep.UNLOCK


@final
class ReferenceDriver:
    """A mirror driver that keeps DRV-1..DRV-6: a device page table, a lock, faults, callbacks.

    It is its own :class:`HmmMirrorOps`; :attr:`mirror` is its registration. Faults are
    explicit (:meth:`start_fault`, then :meth:`DeviceFault.step`) so that a scheduler can
    interleave them with invalidations; :meth:`fault` runs one to the end. Several drivers may
    share one :class:`SleepMonitor`, as the code of one thread would.

    A harness that owns the HMM core can stand between it and the driver: ``mirror`` is then
    the ``struct hmm_mirror`` the harness made for this driver's callbacks (wrapped, say, in a
    :class:`NonBlockGuard`), and ``get_pfns`` and ``range_done`` are the core's two calls as the
    harness passes them on (recorded, say). By default the driver makes its own mirror and calls
    :func:`hmm_vma_get_pfns` and :func:`hmm_vma_range_done` directly.
    """

    def __init__(
        self,
        mm: MmStruct,
        *,
        name: str = "dmirror",
        lock_kind: DriverLockKind = DriverLockKind.MUTEX,
        monitor: SleepMonitor | None = None,
        encoding: PfnEncoding = DEFAULT_ENCODING,
        mirror: HmmMirror | None = None,
        get_pfns: Callable[[HmmRange], int] = hmm_vma_get_pfns,
        range_done: Callable[[HmmRange], bool] = hmm_vma_range_done,
    ) -> None:
        self.mm = mm
        self.name = name
        self.lock_kind = lock_kind
        self.monitor = monitor if monitor is not None else SleepMonitor()
        #: The snapshot encoding this driver asks HMM for.
        self.encoding = encoding
        #: The driver lock D, taken by faults and by the callback.
        self.lock: Mutex | RwSemaphore = (
            Mutex(f"{name}.lock", self.monitor)
            if lock_kind is DriverLockKind.MUTEX
            else RwSemaphore(f"{name}.lock", self.monitor)
        )
        #: The spinlock that writers take with D, and that a non-blockable callback reads under.
        self.pt_lock = Spinlock(f"{name}.pt_lock", self.monitor)
        #: This driver's ``struct hmm_mirror``.
        self.mirror = mirror if mirror is not None else HmmMirror(self)
        self._get_pfns = get_pfns
        self._range_done = range_done
        #: How many times HMM called :meth:`release`.
        self.releases = 0
        self._table: dict[int, DeviceEntry] = {}
        self._faults: list[DeviceFault] = []
        self._faults_started = 0
        self._syncs: list[SyncRecord] = []
        self._flushes: list[DeviceFlush] = []
        self._checks: list[FaultCheck] = []

    def __repr__(self) -> str:
        return (
            f"<ReferenceDriver {self.name!r} {self.lock_kind.value} entries={len(self._table)} "
            f"faults={len(self._faults)} registered={self.mirror.registered}>"
        )

    # -- what a harness reads --------------------------------------------------------------

    @property
    def device_page_table(self) -> dict[int, DeviceEntry]:
        """A copy of the device page table: page address -> entry, in address order."""
        return dict(sorted(self._table.items()))

    @property
    def faults_in_progress(self) -> tuple[DeviceFault, ...]:
        """The faults started and not finished, oldest first."""
        return tuple(self._faults)

    @property
    def syncs(self) -> tuple[SyncRecord, ...]:
        """Every callback that returned, oldest first."""
        return tuple(self._syncs)

    @property
    def flushes(self) -> tuple[DeviceFlush, ...]:
        """Every device TLB flush, oldest first."""
        return tuple(self._flushes)

    @property
    def checks(self) -> tuple[FaultCheck, ...]:
        """Every CHECK step of every fault, oldest first."""
        return tuple(self._checks)

    # -- registration ------------------------------------------------------------------------

    def register(self) -> int:
        """``hmm_mirror_register(mirror, mm)``: 0, or the error HMM returned."""
        return hmm_mirror_register(self.mirror, self.mm)

    def unregister(self) -> None:
        """Stop using the device's mappings, then ``hmm_mirror_unregister``.

        A driver unregisters when its file closes, so no fault is in progress; one that is
        raises :class:`DriverUsageError` and nothing changes.
        """
        if self._faults:
            raise DriverUsageError(
                DriverUsageCode.FAULTS_IN_PROGRESS,
                "hmm_mirror_unregister",
                f"{len(self._faults)} fault(s) of {self.name} are in progress; finish them first",
            )
        self._teardown("unregister")
        hmm_mirror_unregister(self.mirror)

    # -- the fault path ----------------------------------------------------------------------

    def start_fault(self, start: int, end: int) -> DeviceFault:
        """A device fault over ``[start, end)``, page aligned and not empty; no step taken yet."""
        if not (page_aligned(start) and page_aligned(end)):
            raise UsageError(
                UsageCode.UNALIGNED,
                "start_fault",
                f"[{start:#x}, {end:#x}) is not page aligned",
            )
        if end <= start:
            raise UsageError(
                UsageCode.BAD_ADDRESS, "start_fault", f"[{start:#x}, {end:#x}) is empty"
            )
        self._faults_started += 1
        fault = DeviceFault(self, self._faults_started, start, end)
        self._faults.append(fault)
        return fault

    def fault(self, start: int, end: int) -> int:
        """Fault ``[start, end)`` in and return 0 or the error: every step, retries included."""
        return self.start_fault(start, end).run()

    # -- the callbacks (HmmMirrorOps) ----------------------------------------------------------

    def invalidation_would_block(self, *, blockable: bool) -> bool:
        """True if a callback with this ``blockable`` would wait for the driver lock now.

        A non-blockable callback never waits. A blockable one takes D exclusively, so it waits
        while a fault holds D.
        """
        return blockable and self._exclusive_would_block()

    def release_would_block(self) -> bool:
        """True if :meth:`release` would wait for the driver lock now (a fault holds it)."""
        return self._exclusive_would_block()

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        """Clear the device entries in ``[update.start, update.end)``, flush, and return 0.

        Blockable: take D (``mutex_lock`` or ``down_write``), clear, flush, release, 0. Not
        blockable, inside a non-block section: if the device maps nothing in the span, 0 at
        once; otherwise try-lock D (``mutex_trylock`` or ``down_write_trylock``) and answer
        ``-EAGAIN`` if it is busy, or clear, flush, release and answer 0.
        """
        owner = f"{self.name}/sync"
        if update.blockable:
            self._lock_exclusive(owner)
            cleared = self._clear(update.start, update.end, "invalidate", owner)
            self._unlock_exclusive(owner)
            reply = 0
        else:
            with self.monitor.non_block(_section(self.name, update)):
                reply, cleared = self._sync_non_blockable(update, owner)
        self._syncs.append(SyncRecord(update=update, reply=reply, cleared=cleared))
        return reply

    def release(self) -> None:
        """The mm is going away: take D, drop every device entry, flush, release D.

        HMM calls it with ``mirrors_sem`` dropped and the mirror already unlinked, from a
        context that may sleep; a fault that still holds D would make it wait (ask
        :meth:`release_would_block`). Faults that come later find the mirror unlinked and stop.
        """
        self.releases += 1
        self._teardown("release")

    # -- the lock and the table ----------------------------------------------------------------

    def _sync_non_blockable(self, update: HmmUpdate, owner: str) -> tuple[int, int]:
        self.pt_lock.lock(owner)
        mapped = any(update.start <= addr < update.end for addr in self._table)
        self.pt_lock.unlock(owner)
        if not mapped:
            return 0, 0  # nothing here to tear down: no reason to refuse (DRV-6)
        if not self._trylock_exclusive(owner):
            return -Errno.EAGAIN, 0
        cleared = self._clear(update.start, update.end, "invalidate", owner)
        self._unlock_exclusive(owner)
        return 0, cleared

    def _teardown(self, reason: Literal["release", "unregister"]) -> None:
        owner = f"{self.name}/{reason}"
        self._lock_exclusive(owner)
        self._clear(*_EVERYTHING, reason, owner)
        self._unlock_exclusive(owner)

    def _clear(
        self,
        start: int,
        end: int,
        reason: Literal["invalidate", "release", "unregister"],
        owner: str,
    ) -> int:
        """Remove every entry in ``[start, end)`` (D held), then flush the device TLB."""
        self.pt_lock.lock(owner)
        doomed = [addr for addr in self._table if start <= addr < end]
        for addr in doomed:
            del self._table[addr]
        self.pt_lock.unlock(owner)
        self._flushes.append(DeviceFlush(start=start, end=end, reason=reason, cleared=len(doomed)))
        return len(doomed)

    def _commit(self, range_: HmmRange, owner: str) -> None:
        """Write a confirmed snapshot into the device page table (D held)."""
        encoding = range_.encoding
        write = encoding.flag(HmmPfnFlag.WRITE)
        self.pt_lock.lock(owner)
        for index, entry in enumerate(range_.pfns):
            addr = range_.page_address(index)
            pfn = encoding.decode(entry)
            if pfn is None:
                self._table.pop(addr, None)
            else:
                self._table[addr] = DeviceEntry(pfn=pfn, write=bool(entry & write))
        self.pt_lock.unlock(owner)

    def _shared_would_block(self) -> bool:
        if isinstance(self.lock, Mutex):
            return self.lock.would_block()
        return self.lock.would_block_read()

    def _exclusive_would_block(self) -> bool:
        if isinstance(self.lock, Mutex):
            return self.lock.would_block()
        return self.lock.would_block_write()

    def _holds_shared(self, owner: str) -> bool:
        if isinstance(self.lock, Mutex):
            return self.lock.owner == owner
        return owner in self.lock.readers

    def _lock_shared(self, owner: str) -> None:
        if isinstance(self.lock, Mutex):
            self.lock.lock(owner)
        else:
            self.lock.down_read(owner)

    def _unlock_shared(self, owner: str) -> None:
        if isinstance(self.lock, Mutex):
            self.lock.unlock(owner)
        else:
            self.lock.up_read(owner)

    def _lock_exclusive(self, owner: str) -> None:
        if isinstance(self.lock, Mutex):
            self.lock.lock(owner)
        else:
            self.lock.down_write(owner)

    def _trylock_exclusive(self, owner: str) -> bool:
        if isinstance(self.lock, Mutex):
            return self.lock.trylock(owner)
        return self.lock.down_write_trylock(owner)

    def _unlock_exclusive(self, owner: str) -> None:
        if isinstance(self.lock, Mutex):
            self.lock.unlock(owner)
        else:
            self.lock.up_write(owner)


@final
class NonBlockGuard:
    """Mirror ops whose non-blockable callbacks run inside a non-block section of ``monitor``.

    What the mmu-notifier core does around every non-blockable callback since 5.4 ([MNE], bug
    history #20): the harness opens the section, so a driver under test cannot leave it out and
    hide a sleep from DRV-1. Register ``HmmMirror(NonBlockGuard(ops, monitor))``.
    """

    def __init__(self, ops: HmmMirrorOps, monitor: SleepMonitor) -> None:
        self.ops = ops
        self.monitor = monitor

    def __repr__(self) -> str:
        return f"<NonBlockGuard {self.ops!r}>"

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        if update.blockable:
            return self.ops.sync_cpu_device_pagetables(update)
        name = getattr(self.ops, "name", type(self.ops).__name__)
        with self.monitor.non_block(_section(str(name), update)):
            return self.ops.sync_cpu_device_pagetables(update)

    def release(self) -> None:
        self.ops.release()
