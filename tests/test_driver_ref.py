"""DRV: the reference mirror driver keeps the driver contract; its instrumented locks."""

from __future__ import annotations

import pytest

import hmm_ref as H

from ._support import EAGAIN, NPAGES, VMA_END, VMA_START, invalidate, make_mm, page

KINDS = list(H.DriverLockKind)


def _driver(
    kind: H.DriverLockKind = H.DriverLockKind.MUTEX,
    *,
    encoding: H.PfnEncoding = H.DEFAULT_ENCODING,
) -> tuple[H.MmStruct, H.ReferenceDriver]:
    """A registered driver on the test mm (8 pages, pfn 0x100 + i, even pages writable)."""
    mm, _ = make_mm()
    driver = H.ReferenceDriver(mm, name="gpu", lock_kind=kind, encoding=encoding)
    assert driver.register() == 0
    return mm, driver


def _mapped(
    kind: H.DriverLockKind = H.DriverLockKind.MUTEX,
) -> tuple[H.MmStruct, H.ReferenceDriver]:
    """A driver whose device maps the whole test vma."""
    mm, driver = _driver(kind)
    assert driver.fault(VMA_START, VMA_END) == 0
    assert len(driver.device_page_table) == NPAGES
    return mm, driver


def _holding_lock(driver: H.ReferenceDriver, first: int, last: int) -> H.DeviceFault:
    """A fault over pages [first, last) that has snapshotted and now holds the driver lock."""
    fault = driver.start_fault(page(first), page(last))
    assert fault.step() is H.FaultStep.SNAPSHOT
    assert fault.step() is H.FaultStep.LOCK
    assert fault.next_step is H.FaultStep.CHECK
    return fault


def _incoherent(mm: H.MmStruct, driver: H.ReferenceDriver) -> list[int]:
    """Device entries that map another page than the CPU, or with more permission (DRV-5)."""
    return [
        addr
        for addr, entry in driver.device_page_table.items()
        if not (
            mm.pte(addr).mapped
            and mm.pte(addr).pfn == entry.pfn
            and (mm.pte(addr).write or not entry.write)
        )
    ]


def _in_span(driver: H.ReferenceDriver, start: int, end: int) -> list[int]:
    return [addr for addr in driver.device_page_table if start <= addr < end]


# -- DRV-1: a non-blockable callback does not sleep --------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_DRV_1_non_blockable_update_with_the_lock_free_clears_and_returns_0(
    kind: H.DriverLockKind,
) -> None:
    """With the lock free, a non-blockable update try-locks it, clears the span and returns 0."""
    mm, driver = _mapped(kind)
    assert invalidate(mm, page(2), page(4), blockable=False) == 0
    assert _in_span(driver, page(2), page(4)) == []
    assert len(driver.device_page_table) == NPAGES - 2
    assert driver.flushes[-1] == H.DeviceFlush(
        start=page(2), end=page(4), reason="invalidate", cleared=2
    )
    assert driver.syncs[-1].reply == 0
    assert driver.monitor.violations == ()
    assert driver.monitor.held_locks == ()
    section = [e for e in driver.monitor.events if e.atomic]
    trylock = "mutex_trylock" if kind is H.DriverLockKind.MUTEX else "down_write_trylock"
    assert [e.primitive for e in section if e.target == "gpu.lock"] == [
        trylock,
        "mutex_unlock" if kind is H.DriverLockKind.MUTEX else "up_write",
    ]
    assert all(e.section is not None and "blockable=False" in e.section for e in section)


@pytest.mark.parametrize("kind", KINDS)
def test_DRV_1_lock_held_by_a_fault_gives_eagain_and_nothing_sleeps(kind: H.DriverLockKind) -> None:
    """A fault in progress holds the lock: the update is refused, with no sleeping call made."""
    mm, driver = _mapped(kind)
    _holding_lock(driver, 0, 2)
    before = driver.device_page_table
    assert invalidate(mm, page(4), page(6), blockable=False) == EAGAIN
    assert driver.device_page_table == before  # nothing done: HMM's caller keeps the pages
    assert driver.syncs[-1].reply == EAGAIN
    assert driver.syncs[-1].cleared == 0
    assert driver.monitor.violations == ()
    busy = [e for e in driver.monitor.events if e.outcome is H.LockOutcome.BUSY]
    assert len(busy) == 1
    assert busy[0].atomic
    assert busy[0].target == "gpu.lock"
    assert not driver.monitor.in_atomic
    assert driver.monitor.held_locks == ("gpu.lock",)  # still the fault's, and only the fault's


def test_DRV_1_the_callback_enters_atomic_context_only_when_not_blockable() -> None:
    """Blockable callbacks run outside any non-block section; non-blockable ones inside."""
    mm, driver = _mapped()
    invalidate(mm, page(0), page(1))
    invalidate(mm, page(1), page(2), blockable=False)
    sync_events = [e for e in driver.monitor.events if e.owner == "gpu/sync"]
    assert [e.atomic for e in sync_events if e.target == "gpu.lock"] == [
        False,
        False,
        True,
        True,
    ]
    assert sync_events[-1].section == (
        "gpu: sync_cpu_device_pagetables([0x11000, 0x12000), blockable=False)"
    )


def test_DRV_1_a_sleeping_driver_is_caught_by_the_guard() -> None:
    """NonBlockGuard opens the section itself, so a driver that waits for a fence is recorded."""
    monitor = H.SleepMonitor()
    fence = H.Mutex("fence.lock", monitor)

    class Sleeper:
        def sync_cpu_device_pagetables(self, update: H.HmmUpdate) -> int:
            fence.lock("sleeper")
            monitor.wait("device fence", owner="sleeper")
            fence.unlock("sleeper")
            return 0

        def release(self) -> None:
            monitor.might_sleep("release", owner="sleeper")

    mm, _ = make_mm()
    guard = H.NonBlockGuard(Sleeper(), monitor)
    assert "Sleeper" in repr(guard)
    assert H.hmm_mirror_register(H.HmmMirror(guard), mm) == 0
    invalidate(mm, page(0), page(1))
    assert not monitor.violations  # blockable: sleeping is allowed
    assert invalidate(mm, page(0), page(1), blockable=False) == 0
    assert [(v.primitive, v.target) for v in monitor.violations] == [
        ("mutex_lock", "fence.lock"),
        ("wait", "device fence"),
    ]
    assert all("blockable=False" in v.section for v in monitor.violations)
    assert all("Sleeper.sync_cpu_device_pagetables" in v.caller for v in monitor.violations)
    H.exit_mmap(mm)
    assert len(monitor.violations) == 2  # release may sleep
    assert monitor.events[-1].primitive == "might_sleep"


# -- DRV-2 and DRV-3: synchronous invalidation; -EAGAIN only when not blockable ----------------


@pytest.mark.parametrize("kind", KINDS)
def test_DRV_2_blockable_invalidation_leaves_no_entry_in_the_span(kind: H.DriverLockKind) -> None:
    """A blockable update clears exactly [start, end), flushes, and returns 0."""
    mm, driver = _mapped(kind)
    assert invalidate(mm, page(3), page(6)) == 0
    assert sorted(driver.device_page_table) == [page(i) for i in (0, 1, 2, 6, 7)]
    assert driver.flushes[-1] == H.DeviceFlush(
        start=page(3), end=page(6), reason="invalidate", cleared=3
    )
    assert driver.syncs[-1] == H.SyncRecord(
        update=H.HmmUpdate(start=page(3), end=page(6), blockable=True), reply=0, cleared=3
    )
    assert driver.monitor.held_locks == ()


@pytest.mark.parametrize("kind", KINDS)
def test_DRV_3_blockable_update_while_the_lock_is_held_would_block(kind: H.DriverLockKind) -> None:
    """The driver says it would wait, and refuses the step (no deadlock, nothing changed)."""
    _, driver = _mapped(kind)
    fault = _holding_lock(driver, 0, 2)
    assert driver.invalidation_would_block(blockable=True)
    assert not driver.invalidation_would_block(blockable=False)
    update = H.HmmUpdate(start=page(0), end=page(2), blockable=True)
    before = driver.device_page_table
    with pytest.raises(H.WouldBlockError) as blocked:
        driver.sync_cpu_device_pagetables(update)
    assert blocked.value.lock == "gpu.lock"
    assert blocked.value.holders == (fault.name,)
    assert driver.device_page_table == before
    assert driver.monitor.held_locks == ("gpu.lock",)
    assert fault.run() == 0
    assert not driver.invalidation_would_block(blockable=True)
    assert driver.sync_cpu_device_pagetables(update) == 0  # blockable: always 0, never -EAGAIN
    assert _in_span(driver, page(0), page(2)) == []


def test_DRV_3_blockable_callback_answers_0_with_or_without_work() -> None:
    """In blockable mode the callback answers 0 whatever the span holds."""
    mm, driver = _driver()
    assert invalidate(mm, page(0), page(8)) == 0
    driver.fault(page(0), page(2))
    assert invalidate(mm, page(0), page(8)) == 0
    assert [s.reply for s in driver.syncs] == [0, 0]
    assert [s.cleared for s in driver.syncs] == [0, 2]


# -- DRV-4: commit only a confirmed snapshot, under the lock ------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_DRV_4_a_fault_racing_an_invalidation_does_not_commit_and_retries(
    kind: H.DriverLockKind,
) -> None:
    """range_done says False after an overlapping invalidation: no commit, a second snapshot."""
    mm, driver = _driver(kind)
    fault = driver.start_fault(page(0), page(4))
    fault.step()  # snapshot: page 1 maps pfn 0x101
    assert fault.range is not None
    assert fault.range.registered
    assert H.mmu_notifier_invalidate_range_start(mm, page(1), page(2)) == 0
    mm.set_pte(page(1), H.Pte.present(0x999))
    H.mmu_notifier_invalidate_range_end(mm, page(1), page(2))
    assert [fault.step() for _ in range(3)] == [
        H.FaultStep.LOCK,
        H.FaultStep.CHECK,
        H.FaultStep.UNLOCK,
    ]
    assert driver.checks[-1] == H.FaultCheck(
        fault="gpu/fault1",
        start=page(0),
        end=page(4),
        range_valid=False,
        lock_held=True,
        committed=False,
    )
    assert driver.device_page_table == {}
    assert fault.next_step is H.FaultStep.SNAPSHOT
    assert fault.result is None
    assert fault.run() == 0
    assert fault.tries == 2
    assert driver.device_page_table[page(1)] == H.DeviceEntry(pfn=0x999, write=False)
    assert _incoherent(mm, driver) == []
    assert driver.faults_in_progress == ()


@pytest.mark.parametrize("kind", KINDS)
def test_DRV_4_an_update_while_the_fault_holds_the_lock_makes_it_retry(
    kind: H.DriverLockKind,
) -> None:
    """Non-blockable, nothing mapped yet: 0 without the lock, and the fault's check says False."""
    mm, driver = _driver(kind)
    fault = _holding_lock(driver, 0, 4)
    assert invalidate(mm, page(2), page(3), blockable=False) == 0
    fault.step()
    assert driver.checks[-1].range_valid is False
    assert driver.checks[-1].committed is False
    assert driver.device_page_table == {}
    assert fault.run() == 0
    assert fault.tries == 2


@pytest.mark.parametrize("kind", KINDS)
def test_DRV_4_commit_then_invalidate_clears_the_device_entries(kind: H.DriverLockKind) -> None:
    """A committed snapshot is torn down by the next overlapping invalidation (case A)."""
    mm, driver = _mapped(kind)
    assert all(check.lock_held and check.committed for check in driver.checks)
    assert H.mmu_notifier_invalidate_range_start(mm, page(0), page(8)) == 0
    assert driver.device_page_table == {}
    mm.clear_ptes(page(0), page(8))
    H.mmu_notifier_invalidate_range_end(mm, page(0), page(8))
    assert _incoherent(mm, driver) == []


@pytest.mark.parametrize("kind", KINDS)
def test_DRV_4_range_done_is_called_under_the_callbacks_lock(kind: H.DriverLockKind) -> None:
    """Between the fault's acquisition and release of D, no callback can get D."""
    _, driver = _driver(kind)
    driver.fault(page(0), page(2))
    events = [e for e in driver.monitor.events if e.target == "gpu.lock"]
    taken = "mutex_lock" if kind is H.DriverLockKind.MUTEX else "down_read"
    released = "mutex_unlock" if kind is H.DriverLockKind.MUTEX else "up_read"
    assert [(e.primitive, e.owner, e.outcome) for e in events] == [
        (taken, "gpu/fault1", H.LockOutcome.ACQUIRED),
        (released, "gpu/fault1", H.LockOutcome.RELEASED),
    ]
    assert driver.checks[0].lock_held


def test_DRV_4_two_faults_mutex_excludes_rwsem_shares() -> None:
    """With a mutex a second fault waits for the first; with a rwsem both hold the read side."""
    _, mutex_driver = _driver(H.DriverLockKind.MUTEX)
    first = _holding_lock(mutex_driver, 0, 2)
    second = mutex_driver.start_fault(page(2), page(4))
    second.step()
    assert second.would_block()
    with pytest.raises(H.WouldBlockError):
        second.run()
    assert second.next_step is H.FaultStep.LOCK
    assert first.run() == 0
    assert not second.would_block()
    assert second.run() == 0

    _, rwsem_driver = _driver(H.DriverLockKind.RWSEM)
    one = _holding_lock(rwsem_driver, 0, 2)
    two = rwsem_driver.start_fault(page(2), page(4))
    two.step()
    assert not two.would_block()
    two.step()
    assert isinstance(rwsem_driver.lock, H.RwSemaphore)
    assert rwsem_driver.lock.readers == (one.name, two.name)
    assert rwsem_driver.invalidation_would_block(blockable=True)
    assert one.run() == 0
    assert two.run() == 0
    assert len(rwsem_driver.device_page_table) == 4


# -- DRV-5: coherence, permissions never above the CPU's -----------------------------------------


def test_DRV_5_permissions_never_above_the_cpus() -> None:
    """Each device entry maps the CPU's page, writable only where the CPU entry is writable."""
    mm, driver = _mapped()
    table = driver.device_page_table
    assert [table[page(i)] for i in range(4)] == [
        H.DeviceEntry(pfn=0x100, write=True),
        H.DeviceEntry(pfn=0x101, write=False),
        H.DeviceEntry(pfn=0x102, write=True),
        H.DeviceEntry(pfn=0x103, write=False),
    ]
    assert _incoherent(mm, driver) == []


def test_DRV_5_entries_are_decoded_with_the_ranges_own_encoding() -> None:
    """Another encoding (other bits and shift) decodes to the same pages and rights."""
    odd = H.PfnEncoding(flags=(0x100, 0x40, 0x8), values=(0x1, 0x2, 0x3), pfn_shift=20)
    mm, driver = _driver(encoding=odd)
    assert driver.fault(VMA_START, VMA_END) == 0
    assert driver.device_page_table[page(2)] == H.DeviceEntry(pfn=0x102, write=True)
    assert _incoherent(mm, driver) == []


def test_DRV_5_an_encoding_without_a_write_bit_maps_everything_read_only() -> None:
    """With flags[WRITE] = 0 no entry can say writable, so the device never gets write rights."""
    no_write = H.PfnEncoding(flags=(0x1, 0x0, 0x4), values=(0x10, 0x8, 0x20), pfn_shift=12)
    _, driver = _driver(encoding=no_write)
    driver.fault(VMA_START, VMA_END)
    assert {entry.write for entry in driver.device_page_table.values()} == {False}


def test_DRV_5_entries_without_valid_are_never_committed() -> None:
    """No page, swap, migration, poison, and the caller's 0s after a poison: no device entry."""
    mm, driver = _driver()
    mm.set_pte(page(1), H.PTE_NONE)
    mm.set_pte(page(2), H.PTE_SWAP)
    mm.set_pte(page(3), H.PTE_MIGRATION)
    mm.set_pte(page(5), H.PTE_POISON)  # the seed's walk stops here: page 6 and 7 keep raw 0
    mm.set_pte(page(6), H.Pte.device_private(0x77, write=True))
    assert driver.fault(VMA_START, VMA_END) == 0
    assert sorted(driver.device_page_table) == [page(0), page(4)]
    assert _incoherent(mm, driver) == []


def test_DRV_5_a_confirmed_empty_entry_removes_the_device_entry() -> None:
    """A valid snapshot that says 'no page' leaves no device entry for that page."""
    mm, driver = _mapped()
    mm.set_pte(page(1), H.PTE_NONE)  # a raw store with no window: the device entry goes stale
    assert _incoherent(mm, driver) == [page(1)]
    assert driver.fault(page(0), page(2)) == 0
    assert page(1) not in driver.device_page_table
    assert _incoherent(mm, driver) == []


def test_DRV_5_coherent_after_an_interleaving() -> None:
    """Faults, a racing unmap, a refused reap and a remap: coherent between windows."""
    mm, driver = _mapped(H.DriverLockKind.RWSEM)
    late = _holding_lock(driver, 4, 8)
    assert invalidate(mm, page(4), page(5), blockable=False) == EAGAIN
    assert late.run() == 0  # its range was marked invalid by the refused start: one retry
    assert late.tries == 2
    assert H.mmu_notifier_invalidate_range_start(mm, page(0), page(4)) == 0
    mm.clear_ptes(page(0), page(2))
    mm.set_pte(page(3), H.Pte.present(0x400, write=True))
    H.mmu_notifier_invalidate_range_end(mm, page(0), page(4))
    assert _incoherent(mm, driver) == []
    assert driver.fault(page(0), page(4)) == 0
    assert driver.device_page_table[page(3)] == H.DeviceEntry(pfn=0x400, write=True)
    assert _incoherent(mm, driver) == []


# -- DRV-6: no over-conservative -EAGAIN ----------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_DRV_6_nothing_mapped_in_the_span_answers_0_even_while_busy(
    kind: H.DriverLockKind,
) -> None:
    """A non-blockable update over pages the device does not map succeeds without the lock."""
    mm, driver = _driver(kind)
    driver.fault(page(0), page(2))
    _holding_lock(driver, 0, 2)
    events = len(driver.monitor.events)
    assert invalidate(mm, page(4), page(8), blockable=False) == 0
    touched = {e.target for e in driver.monitor.events[events:]}
    assert touched == {"gpu.pt_lock"}
    assert driver.syncs[-1] == H.SyncRecord(
        update=H.HmmUpdate(start=page(4), end=page(8), blockable=False), reply=0, cleared=0
    )


# -- release, unregister and the fault's own errors -----------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_release_drops_every_entry_and_later_faults_stop(kind: H.DriverLockKind) -> None:
    """Release clears the table under the lock; a fault caught mid-way does not commit after it."""
    mm, driver = _mapped(kind)
    pending = driver.start_fault(page(0), page(4))
    pending.step()  # a snapshot, registered before the process exits
    assert not driver.release_would_block()
    H.exit_mmap(mm)
    assert driver.releases == 1
    assert driver.device_page_table == {}
    assert driver.flushes[-1] == H.DeviceFlush(
        start=0, end=1 << 64, reason="release", cleared=NPAGES
    )
    # The seed leaves the range valid through release (REL-3); the driver must not trust it.
    assert pending.run() == -H.Errno.EFAULT
    assert driver.checks[-1].range_valid is True
    assert driver.checks[-1].committed is False
    assert driver.device_page_table == {}
    assert driver.fault(page(0), page(1)) == -H.Errno.EFAULT


def test_release_would_block_while_a_fault_holds_the_lock() -> None:
    """A release is a blocking exclusive acquisition: the driver says so before it is tried."""
    _, driver = _mapped()
    fault = _holding_lock(driver, 0, 1)
    assert driver.release_would_block()
    with pytest.raises(H.WouldBlockError):
        driver.release()
    assert len(driver.device_page_table) == NPAGES
    fault.run()
    driver.release()
    assert driver.device_page_table == {}


def test_unregister_tears_down_and_refuses_while_faults_run() -> None:
    """Unregister refuses while a fault runs; otherwise the entries go, then the mirror."""
    mm, driver = _mapped()
    fault = driver.start_fault(page(0), page(1))
    with pytest.raises(H.DriverUsageError) as busy:
        driver.unregister()
    assert busy.value.code is H.DriverUsageCode.FAULTS_IN_PROGRESS
    assert driver.mirror.registered
    assert fault.run() == 0
    driver.unregister()
    assert not driver.mirror.registered
    assert driver.device_page_table == {}
    assert driver.flushes[-1].reason == "unregister"
    assert driver.fault(page(0), page(1)) == -H.Errno.EFAULT
    assert invalidate(mm, page(0), page(8)) == 0


def test_fault_errors_end_the_fault() -> None:
    """No vma: -EFAULT; past the vma: -EINVAL; an unreadable vma: -EPERM. Nothing is mapped."""
    mm, driver = _driver()
    mm.mmap(0x40000, 0x42000, read=False)
    assert driver.fault(0x30000, 0x31000) == -H.Errno.EFAULT
    assert driver.fault(page(6), VMA_END + H.PAGE_SIZE) == -H.Errno.EINVAL
    assert driver.fault(0x40000, 0x41000) == -H.Errno.EPERM
    assert driver.device_page_table == {}
    assert driver.faults_in_progress == ()
    assert driver.checks == ()


def test_fault_arguments_and_finished_faults_are_usage_errors() -> None:
    """Unaligned or empty spans are refused; stepping a finished fault is a driver usage error."""
    _, driver = _driver()
    with pytest.raises(H.UsageError) as unaligned:
        driver.start_fault(page(0) + 1, page(1))
    assert unaligned.value.code is H.UsageCode.UNALIGNED
    with pytest.raises(H.UsageError) as empty:
        driver.start_fault(page(1), page(1))
    assert empty.value.code is H.UsageCode.BAD_ADDRESS
    fault = driver.start_fault(page(0), page(1))
    assert "next=snapshot" in repr(fault)
    assert fault.run() == 0
    assert fault.run() == 0
    assert "done 0" in repr(fault)
    with pytest.raises(H.DriverUsageError) as finished:
        fault.step()
    assert finished.value.code is H.DriverUsageCode.FAULT_FINISHED
    assert "gpu" in repr(driver)
    assert "mutex" in repr(driver)


# -- the locks -------------------------------------------------------------------------------------


def test_mutex_lock_trylock_unlock() -> None:
    """mutex_lock takes a free mutex; mutex_trylock fails on a held one; mutex_unlock frees it."""
    monitor = H.SleepMonitor()
    mutex = H.Mutex("m", monitor)
    assert not mutex.held
    assert not mutex.would_block()
    mutex.lock("a")
    assert mutex.held
    assert mutex.owner == "a"
    assert mutex.would_block()
    assert not mutex.trylock("b")
    with pytest.raises(H.WouldBlockError) as blocked:
        mutex.lock("b")
    assert blocked.value.primitive == "mutex_lock"
    assert blocked.value.holders == ("a",)
    assert "would_block" in str(blocked.value)
    assert mutex.owner == "a"
    mutex.unlock("a")
    assert mutex.trylock("b")
    mutex.unlock()
    assert [(e.primitive, e.owner, e.outcome) for e in monitor.events] == [
        ("mutex_lock", "a", H.LockOutcome.ACQUIRED),
        ("mutex_trylock", "b", H.LockOutcome.BUSY),
        ("mutex_lock", "b", H.LockOutcome.WOULD_BLOCK),
        ("mutex_unlock", "a", H.LockOutcome.RELEASED),
        ("mutex_trylock", "b", H.LockOutcome.ACQUIRED),
        ("mutex_unlock", "", H.LockOutcome.RELEASED),
    ]
    assert monitor.violations == ()
    assert "'m'" in repr(mutex)


def test_spinlock_lock_trylock_unlock() -> None:
    """spin_lock, spin_trylock and spin_unlock, with spin_lock on a held spinlock refused."""
    monitor = H.SleepMonitor()
    spin = H.Spinlock("s", monitor)
    spin.lock("a")
    assert not spin.trylock("b")
    with pytest.raises(H.WouldBlockError) as blocked:
        spin.lock("b")
    assert blocked.value.primitive == "spin_lock"
    spin.unlock("a")
    assert spin.trylock()
    spin.unlock()
    assert [e.primitive for e in monitor.events] == [
        "spin_lock",
        "spin_trylock",
        "spin_lock",
        "spin_unlock",
        "spin_trylock",
        "spin_unlock",
    ]


def test_rwsem_readers_share_and_the_writer_excludes() -> None:
    """Readers share the read side; a writer needs it empty and keeps everyone out."""
    monitor = H.SleepMonitor()
    sem = H.RwSemaphore("sem", monitor)
    sem.down_read("r1")
    assert sem.down_read_trylock("r2")
    assert sem.readers == ("r1", "r2")
    assert sem.held
    assert not sem.would_block_read()
    assert sem.would_block_write()
    assert not sem.down_write_trylock("w")
    with pytest.raises(H.WouldBlockError) as blocked:
        sem.down_write("w")
    assert blocked.value.holders == ("r1", "r2")
    sem.up_read("r1")
    sem.up_read()
    assert not sem.held
    sem.down_write("w")
    assert sem.writer == "w"
    assert sem.would_block_read()
    assert not sem.down_read_trylock("r")
    with pytest.raises(H.WouldBlockError) as reader:
        sem.down_read("r")
    assert reader.value.holders == ("w",)
    sem.up_write("w")
    assert sem.down_write_trylock()
    sem.up_write()
    assert not sem.held
    assert [e.outcome for e in monitor.events].count(H.LockOutcome.WOULD_BLOCK) == 2
    assert monitor.violations == ()
    assert "writer=None" in repr(sem)


def test_sleeping_acquisitions_in_atomic_context_are_recorded_even_when_free() -> None:
    """mutex_lock, down_read, down_write in a non-block section are violations; try/spin are not."""
    monitor = H.SleepMonitor()
    mutex, spin, sem = H.Mutex("m", monitor), H.Spinlock("s", monitor), H.RwSemaphore("r", monitor)
    with monitor.non_block("reaping [0x0, 0x1000)"):
        assert monitor.in_atomic
        spin.lock()
        spin.unlock()
        assert mutex.trylock()
        mutex.unlock()
        assert sem.down_read_trylock()
        sem.up_read()
        assert sem.down_write_trylock()
        sem.up_write()
        assert monitor.violations == ()
        mutex.lock("cb")
        mutex.unlock("cb")
        sem.down_read("cb")
        sem.up_read("cb")
        sem.down_write("cb")
        sem.up_write("cb")
    assert not monitor.in_atomic
    assert [(v.primitive, v.target, v.section) for v in monitor.violations] == [
        ("mutex_lock", "m", "reaping [0x0, 0x1000)"),
        ("down_read", "r", "reaping [0x0, 0x1000)"),
        ("down_write", "r", "reaping [0x0, 0x1000)"),
    ]
    assert all(
        v.caller.startswith("test_sleeping_acquisitions_in_atomic_context")
        and "test_driver_ref.py:" in v.caller
        for v in monitor.violations
    )
    mutex.lock()
    sem.down_read()
    assert len(monitor.violations) == 3  # outside the section, sleeping is fine
    assert monitor.held_locks == ("m", "r")


def test_blocking_on_a_held_lock_in_atomic_context_is_recorded_and_refused() -> None:
    """A sleeping call on a held lock in atomic context: a violation, and WouldBlockError."""
    monitor = H.SleepMonitor()
    mutex = H.Mutex("m", monitor)
    mutex.lock("fault")
    with monitor.non_block("callback"), pytest.raises(H.WouldBlockError):
        mutex.lock("callback")
    assert [(v.primitive, v.section) for v in monitor.violations] == [("mutex_lock", "callback")]
    assert monitor.events[-1].outcome is H.LockOutcome.WOULD_BLOCK
    assert monitor.events[-1].atomic
    assert not monitor.in_atomic  # the section closed although the block raised


def test_might_sleep_and_wait_count_only_in_atomic_context() -> None:
    """might_sleep and wait are sleep points: recorded always, violations only when atomic."""
    monitor = H.SleepMonitor()
    monitor.might_sleep("alloc")
    monitor.wait("fence")
    assert monitor.violations == ()
    monitor.non_block_start("outer")
    monitor.non_block_start("inner")
    assert monitor.section == "inner"
    monitor.wait("fence", owner="drv")
    monitor.non_block_end()
    monitor.might_sleep("alloc")
    monitor.non_block_end()
    assert monitor.section is None
    assert [(v.primitive, v.target, v.section) for v in monitor.violations] == [
        ("wait", "fence", "inner"),
        ("might_sleep", "alloc", "outer"),
    ]
    assert {e.outcome for e in monitor.events} == {H.LockOutcome.SLEEP_POINT}
    assert "violations=2" in repr(monitor)


def test_lock_misuse_is_a_typed_usage_error_and_changes_nothing() -> None:
    """Unlocking what is not held, or what another owner holds, and an unmatched non_block_end."""
    monitor = H.SleepMonitor()
    mutex, spin, sem = H.Mutex("m", monitor), H.Spinlock("s", monitor), H.RwSemaphore("r", monitor)
    calls = {
        "mutex_unlock": mutex.unlock,
        "spin_unlock": spin.unlock,
        "up_read": sem.up_read,
        "up_write": sem.up_write,
        "non_block_end": monitor.non_block_end,
    }
    for function, call in calls.items():
        with pytest.raises(H.DriverUsageError) as error:
            call()
        expected = (
            H.DriverUsageCode.NO_SECTION
            if function == "non_block_end"
            else H.DriverUsageCode.NOT_HELD
        )
        assert (error.value.code, error.value.function) == (expected, function)
        assert error.value.message in str(error.value)
    assert monitor.events == ()
    mutex.lock("a")
    spin.lock("a")
    sem.down_read("a")
    for call in (mutex.unlock, spin.unlock, sem.up_read):
        with pytest.raises(H.DriverUsageError) as stranger:
            call("b")
        assert stranger.value.code is H.DriverUsageCode.NOT_OWNER
    sem.up_read("a")
    sem.down_write("a")
    with pytest.raises(H.DriverUsageError) as writer:
        sem.up_write("b")
    assert writer.value.code is H.DriverUsageCode.NOT_OWNER
    assert monitor.held_locks == ("m", "s", "r")
