"""The blind set's faulty drivers, first half: the callback (DRV-1, DRV-2, DRV-3, DRV-7).

Each is :class:`~conformance.driver._blind_base.BlindBase` with one hook changed to carry one
bug; its docstring names the bug, the rule that must catch it and where the bug comes from.
"""

from __future__ import annotations

from hmm_ref import PAGE_SIZE, DeviceEntry, Errno, HmmRange, HmmUpdate

from ._adapter import DriverEnv
from ._blind_base import EAGAIN, BlindBase

# =====================================================================================
# DRV-1: sleeping in a non-blockable callback
# =====================================================================================


class SleepNonBlockMutexLock(BlindBase):
    """Bug: the non-blockable callback takes D with a blocking ``mutex_lock`` (no trylock) when it
    has entries to clear, i.e. it sleeps in atomic context.
    Rules: DRV-1. Origin: kernel-bug-history #21 (derived: amdgpu's unconditional
    ``down_read_non_owner`` after a trylock) / #20."""

    def _d_trylock_w(self, owner: str) -> bool:
        self._d_lock_w(owner)
        return True


class SleepFlushWaitManyEntries(BlindBase):
    """Bug: after clearing, the callback waits for the device TLB-flush fence whenever it cleared
    3 or more entries (a 'batched flush' path), in non-blockable mode too. Sleeps only for large
    invalidations of a well-populated device table.
    Rules: DRV-1. Origin: mutation (conditional sleep; hmm.rst's 'wait for completion')."""

    def _invalidate_span(self, start: int, end: int, blockable: bool) -> int:
        n = self._clear(start, end)
        if n >= 3:
            self.mon.wait("blind device tlb flush fence", owner="blind/sync")
        return n


class SleepWhenFaultInFlight(BlindBase):
    """Bug: the non-blockable callback first waits for in-flight device faults to drain
    (``wait_event(pending_faults == 0)``) when any fault is started and unfinished.
    Rules: DRV-1. Origin: mutation (the release v3 discussion, #1: release waits for pending
    faults; this driver does so in the callback too)."""

    def _sync_nonblock(self, update: HmmUpdate) -> int:
        if self._in_flight():
            self.mon.wait("blind pending device faults", owner="blind/sync-nb")
        return super()._sync_nonblock(update)


class SleepSecondCall(BlindBase):
    """Bug: the second non-blockable callback of a case refills an atomic pool with a sleeping
    allocation (``might_sleep``: GFP_KERNEL), whatever the span holds.
    Rules: DRV-1. Origin: mutation (sleep only on the second call)."""

    def _sync_nonblock(self, update: HmmUpdate) -> int:
        if self._nb_calls == 2:
            self.mon.might_sleep("kmalloc(GFP_KERNEL) pool refill", owner="blind/sync-nb")
        return super()._sync_nonblock(update)


# =====================================================================================
# DRV-3 / DRV-2: wrong -EAGAIN behaviour
# =====================================================================================


class EagainWhenBlockable(BlindBase):
    """Bug: if any device entry overlaps the span the callback answers -EAGAIN and clears
    nothing, regardless of ``blockable`` (the blockable invalidation is then ignored by HMM and
    the mapping survives).
    Rules: DRV-3, DRV-2 (then DRV-5). Origin: kernel-bug-history #8 (xen/gntdev)."""

    def _sync_blockable(self, update: HmmUpdate) -> int:
        if self._mapped(update.start, update.end):
            return EAGAIN
        return super()._sync_blockable(update)


class BlockableTrylockEagain(BlindBase):
    """Bug: the blockable path uses ``mutex_trylock`` too, claims it never waits, and answers
    -EAGAIN (clearing nothing) when a fault holds D. Only when a blockable invalidation meets a
    fault between its LOCK and UNLOCK steps.
    Rules: DRV-3, DRV-2. Origin: mutation."""

    def invalidation_would_block(self, blockable: bool) -> bool:
        return False

    def _sync_blockable(self, update: HmmUpdate) -> int:
        owner = "blind/sync"
        if not self._d_trylock_w(owner):
            return EAGAIN
        self._invalidate_span(update.start, update.end, True)
        self._d_unlock_w(owner)
        return 0


class SwallowEagain(BlindBase):
    """Bug: non-blockable, D busy: the driver 'handles' the contention by returning 0 without
    clearing anything (the -EAGAIN is swallowed, like 5.2's shadowed ``ret``).
    Rules: DRV-2 (then DRV-5 once the CPU unmaps). Origin: kernel-bug-history #13b (the core bug,
    moved into a driver)."""

    def _sync_nonblock(self, update: HmmUpdate) -> int:
        ret = super()._sync_nonblock(update)
        return 0 if ret == EAGAIN else ret


class EagainAfterPartialClearNoLock(BlindBase):
    """Bug: non-blockable, D busy: before giving up with -EAGAIN the callback already removed the
    first mapped entry of the span under the spinlock only, i.e. changed the device page table
    without holding D (and without undoing it).
    Rules: DRV-4 (callback half: table changed without D for writing). Origin: mutation
    ('-EAGAIN after partially clearing')."""

    def _sync_nonblock(self, update: HmmUpdate) -> int:
        owner = "blind/sync-nb"
        mapped = self._mapped(update.start, update.end)
        if not mapped:
            return 0
        if not self._d_trylock_w(owner):
            first = min(mapped)
            self._clear(first, first + PAGE_SIZE)
            return EAGAIN
        self._invalidate_span(update.start, update.end, False)
        self._d_unlock_w(owner)
        return 0


class IllegalErrno(BlindBase):
    """Bug: non-blockable, D busy: answers -EBUSY (the later hmm_range_fault code) instead of
    -EAGAIN.
    Rules: DRV-3 (only 0 and -EAGAIN are allowed). Origin: kernel-bug-history #20 (5.4 WARNs on
    illegal errors)."""

    def _sync_nonblock(self, update: HmmUpdate) -> int:
        ret = super()._sync_nonblock(update)
        return -int(Errno.EBUSY) if ret == EAGAIN else ret


# =====================================================================================
# Lock leaked across a return (bug #14 style)
# =====================================================================================


class LockLeakEarlyReturn(BlindBase):
    """Bug: non-blockable path try-locks D first, then returns 0 early when the span holds no
    device entry, skipping the unlock: D stays held by the dead callback, every later fault and
    blockable invalidation would wait forever.
    Rules: DRV-7 (a lock kept across a return). Origin: kernel-bug-history #14 (RDMA ODP)
    style."""

    def _sync_nonblock(self, update: HmmUpdate) -> int:
        owner = "blind/sync-nb"
        if not self._d_trylock_w(owner):
            return EAGAIN
        if not self._mapped(update.start, update.end):
            return 0  # BUG: D still held
        self._invalidate_span(update.start, update.end, False)
        self._d_unlock_w(owner)
        return 0


class LockLeakOnEagain(BlindBase):
    """Bug: non-blockable path takes D with a trylock, walks the span, and if a writable device
    entry is there (would need a blocking dirty write-back) returns -EAGAIN without ``unlock``.
    Rules: DRV-7 (a lock kept across a return). Origin: kernel-bug-history #14 (RDMA ODP:
    -EAGAIN from the walk returned without up_read)."""

    def _sync_nonblock(self, update: HmmUpdate) -> int:
        owner = "blind/sync-nb"
        mapped = self._mapped(update.start, update.end)
        if not mapped:
            return 0
        if not self._d_trylock_w(owner):
            return EAGAIN
        if any(self._table[a].write for a in mapped):
            return EAGAIN  # BUG: D still held
        self._invalidate_span(update.start, update.end, False)
        self._d_unlock_w(owner)
        return 0


# =====================================================================================
# DRV-2: clearing the wrong span
# =====================================================================================


class ClearMissLastPage(BlindBase):
    """Bug: inclusive/exclusive end confusion: invalidation clears [start, end - PAGE), leaving
    the last page of the span mapped (both modes).
    Rules: DRV-2 (then DRV-5). Origin: mutation (amdgpu converts the exclusive end to an
    inclusive one for its interval tree, kernel-drivers-usage §4)."""

    def _invalidate_span(self, start: int, end: int, blockable: bool) -> int:
        return self._clear(start, end - PAGE_SIZE)


class ClearOffByOneStartNonBlockable(BlindBase):
    """Bug: only the non-blockable path clears [start + PAGE, end), missing the first page; the
    blockable path is right.
    Rules: DRV-2 (then DRV-5 after the reaper unmaps). Origin: mutation (condition-only off by
    one)."""

    def _invalidate_span(self, start: int, end: int, blockable: bool) -> int:
        if blockable:
            return self._clear(start, end)
        return self._clear(start + PAGE_SIZE, end)


class ClearFirstPageOnly(BlindBase):
    """Bug: invalidation clears only the page at ``start`` (treats the update as one page).
    Rules: DRV-2 (then DRV-5). Origin: mutation."""

    def _invalidate_span(self, start: int, end: int, blockable: bool) -> int:
        return self._clear(start, start + PAGE_SIZE)


class ExtentStartContainment(BlindBase):
    """Bug: the driver tracks committed extents (one per fault) and on invalidation only clears
    extents whose *start* lies inside [start, end) (containment instead of overlap), so an update
    that hits the middle or tail of an extent clears nothing there.
    Rules: DRV-2 (then DRV-5). Origin: kernel-bug-history #18 (hand-rolled interval trees with
    'various kinds of races, bugs'); mutation."""

    def begin(self, env: DriverEnv) -> None:
        super().begin(env)
        self._extents: list[tuple[int, int]] = []

    def _commit(self, range_: HmmRange) -> None:
        super()._commit(range_)
        self._extents.append((range_.start, range_.end))

    def _invalidate_span(self, start: int, end: int, blockable: bool) -> int:
        n = 0
        for es, ee in self._extents:
            if start <= es < end:
                n += self._clear(max(start, es), min(end, ee))
        return n


class WriteProtectInsteadOfClear(BlindBase):
    """Bug: invalidation only write-protects the device entries in the span (keeps them,
    read-only) instead of removing them.
    Rules: DRV-2 (then DRV-5: the device keeps the old page). Origin: mutation (hmm.rst's
    'remove or write-protect' taken as always write-protect)."""

    def _invalidate_span(self, start: int, end: int, blockable: bool) -> int:
        self.pt.lock("blind/wp")
        n = 0
        for a, e in list(self._table.items()):
            if start <= a < end and e.write:
                self._table[a] = DeviceEntry(pfn=e.pfn, write=False)
                n += 1
        self.pt.unlock("blind/wp")
        return n
