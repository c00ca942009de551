"""The blind set's base driver: a conforming mirror driver written apart from the suite.

The driver side's blind set (docs/catalogue.md) was written by a session that had read only the
adapter protocol, ``hmm_ref``'s public API, docs/spec.md §8, docs/driver-side.md and the kernel
notes, and none of the generators, the oracle or the catalogue. Each faulty driver was measured
over five seeds at the default budget before it was added (docs/benchmarks.md). This module is
its base: a mutex D for the device page table, a spinlock for peeks that must not sleep, and the
four-step fault path of kernel-drivers-usage §6. It conforms on its own. The faulty drivers,
each :class:`BlindBase` with one hook changed, are in ``_blind_callbacks.py`` and
``_blind_faults.py``.
"""

from __future__ import annotations

from collections.abc import Mapping

from hmm_ref import (
    DeviceEntry,
    Errno,
    FaultStep,
    HmmPfnFlag,
    HmmRange,
    HmmUpdate,
    Mutex,
    RwSemaphore,
    SleepMonitor,
    Spinlock,
)

from ._adapter import (
    DRIVER_PROTOCOL_VERSION,
    DriverCapability,
    DriverEnv,
    DriverHandshake,
    FaultView,
)

__all__ = ["EAGAIN", "EFAULT", "EVERYWHERE", "BlindBase", "BlindFault"]

EVERYWHERE = (0, 1 << 64)
EAGAIN = -int(Errno.EAGAIN)
EFAULT = -int(Errno.EFAULT)


class BlindFault:
    """One device fault in progress."""

    def __init__(self, ident: int, start: int, end: int) -> None:
        self.ident = ident
        self.owner = f"blind/fault{ident}"
        self.start = start
        self.end = end
        self.next: FaultStep | None = FaultStep.SNAPSHOT
        self.range: HmmRange | None = None
        self.outcome: int | None = None  # decided at CHECK, reported after UNLOCK
        self.result: int | None = None
        self.pending_valid: bool | None = None  # used by some mutants


class BlindBase:
    """A conforming driver (the control). Subclasses override one hook to carry one bug."""

    LOCK_NAME = "blind.lock"

    def __init__(self) -> None:
        self._env: DriverEnv | None = None
        self._faults: dict[int, BlindFault] = {}
        self._table: dict[int, DeviceEntry] = {}
        self._nb_calls = 0

    # -- protocol: identity and per-case state ---------------------------------------------

    def handshake(self) -> DriverHandshake:
        return DriverHandshake(
            protocol_version=DRIVER_PROTOCOL_VERSION,
            name=f"blind.{type(self).__name__}",
            version="0.0.1",
            lock=self.LOCK_NAME,
            capabilities=frozenset({DriverCapability.RELEASE}),
        )

    def begin(self, env: DriverEnv) -> None:
        self._env = env
        self._faults = {}
        self._table = {}
        self._nb_calls = 0
        self._make_locks(env.monitor)

    def _make_locks(self, monitor: SleepMonitor) -> None:
        self.D: Mutex | RwSemaphore = Mutex(self.LOCK_NAME, monitor)
        self.pt = Spinlock("blind.pt", monitor)

    @property
    def env(self) -> DriverEnv:
        assert self._env is not None
        return self._env

    @property
    def mon(self) -> SleepMonitor:
        return self.env.monitor

    def close(self) -> None:
        self._faults = {}
        self._table = {}
        self._env = None

    def device_page_table(self) -> Mapping[int, DeviceEntry]:
        return dict(sorted(self._table.items()))

    # -- lock helpers (D) ------------------------------------------------------------------

    def _d_lock_w(self, owner: str) -> None:
        assert isinstance(self.D, Mutex)
        self.D.lock(owner)

    def _d_trylock_w(self, owner: str) -> bool:
        assert isinstance(self.D, Mutex)
        return self.D.trylock(owner)

    def _d_unlock_w(self, owner: str) -> None:
        assert isinstance(self.D, Mutex)
        self.D.unlock(owner)

    def _d_lock_r(self, owner: str) -> None:  # the fault side
        assert isinstance(self.D, Mutex)
        self.D.lock(owner)

    def _d_unlock_r(self, owner: str) -> None:
        assert isinstance(self.D, Mutex)
        self.D.unlock(owner)

    def _d_busy_w(self) -> bool:
        return self.D.held

    def _d_busy_r(self) -> bool:
        return self.D.held

    # -- table helpers -----------------------------------------------------------------------

    def _mapped(self, start: int, end: int) -> list[int]:
        self.pt.lock("blind/peek")
        found = [a for a in self._table if start <= a < end]
        self.pt.unlock("blind/peek")
        return found

    def _clear(self, start: int, end: int) -> int:
        """Remove every device entry in [start, end) and 'flush' (D held by caller)."""
        self.pt.lock("blind/clear")
        doomed = [a for a in self._table if start <= a < end]
        for a in doomed:
            del self._table[a]
        self.pt.unlock("blind/clear")
        return len(doomed)

    def _invalidate_span(self, start: int, end: int, blockable: bool) -> int:
        """What an invalidation clears; mutants of the span override this."""
        return self._clear(start, end)

    def _decode(self, range_: HmmRange, entry: int) -> tuple[int, bool] | None:
        enc = range_.encoding
        pfn = enc.decode(entry)
        if pfn is None:
            return None
        return pfn, bool(entry & enc.flag(HmmPfnFlag.WRITE))

    def _commit(self, range_: HmmRange) -> None:
        self.pt.lock("blind/commit")
        for i, entry in enumerate(range_.pfns):
            addr = range_.page_address(i)
            dec = self._decode(range_, entry)
            if dec is None:
                self._table.pop(addr, None)
            else:
                self._table[addr] = DeviceEntry(pfn=dec[0], write=dec[1])
        self.pt.unlock("blind/commit")

    # -- the callbacks -------------------------------------------------------------------------

    def invalidation_would_block(self, blockable: bool) -> bool:
        return blockable and self._d_busy_w()

    def release_would_block(self) -> bool:
        return self._d_busy_w()

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        if update.blockable:
            return self._sync_blockable(update)
        self._nb_calls += 1
        return self._sync_nonblock(update)

    def _sync_blockable(self, update: HmmUpdate) -> int:
        owner = "blind/sync"
        self._d_lock_w(owner)
        self._invalidate_span(update.start, update.end, True)
        self._d_unlock_w(owner)
        return 0

    def _sync_nonblock(self, update: HmmUpdate) -> int:
        owner = "blind/sync-nb"
        if not self._mapped(update.start, update.end):
            return 0
        if not self._d_trylock_w(owner):
            return EAGAIN
        self._invalidate_span(update.start, update.end, False)
        self._d_unlock_w(owner)
        return 0

    def release(self) -> None:
        owner = "blind/release"
        self._d_lock_w(owner)
        self._clear(*EVERYWHERE)
        self._d_unlock_w(owner)

    # -- the fault path -----------------------------------------------------------------------

    def start_fault(self, fault: int, start: int, end: int) -> None:
        self._faults[fault] = BlindFault(fault, start, end)

    def fault_view(self, fault: int) -> FaultView:
        f = self._faults[fault]
        return FaultView(next_step=f.next, result=f.result)

    def fault_would_block(self, fault: int) -> bool:
        f = self._faults[fault]
        return f.next is FaultStep.LOCK and self._d_busy_r()

    def _in_flight(self) -> list[BlindFault]:
        return [f for f in self._faults.values() if f.result is None]

    def step_fault(self, fault: int) -> FaultStep:
        f = self._faults[fault]
        step = f.next
        assert step is not None, "fault already finished"
        if step is FaultStep.SNAPSHOT:
            self._snapshot(f)
        elif step is FaultStep.LOCK:
            self._lock_step(f)
        elif step is FaultStep.CHECK:
            self._check_step(f)
        else:
            self._unlock_step(f)
        return step

    def _finish(self, f: BlindFault, result: int) -> None:
        f.result = result
        f.next = None

    def _snapshot(self, f: BlindFault) -> None:
        env = self.env
        vma = env.mm.find_vma(f.start)
        if vma is None or not env.mirror.registered:
            self._finish(f, EFAULT)
            return
        rng = HmmRange(vma=vma, start=f.start, end=f.end, encoding=env.encoding)
        ret = env.hmm_vma_get_pfns(rng)
        if ret:
            self._finish(f, ret)
            return
        f.range = rng
        f.next = FaultStep.LOCK

    def _lock_step(self, f: BlindFault) -> None:
        self._d_lock_r(f.owner)
        f.next = FaultStep.CHECK

    def _decide(self, f: BlindFault, valid: bool, rng: HmmRange) -> None:
        live = self.env.mirror.registered
        if valid and live:
            self._commit(rng)
            f.outcome = 0
        elif live:
            f.outcome = None
        else:
            f.outcome = EFAULT

    def _check_step(self, f: BlindFault) -> None:
        rng = f.range
        assert rng is not None
        valid = self.env.hmm_vma_range_done(rng)
        f.range = None
        self._decide(f, valid, rng)
        f.next = FaultStep.UNLOCK

    def _unlock_step(self, f: BlindFault) -> None:
        self._d_unlock_r(f.owner)
        if f.outcome is None:
            f.next = FaultStep.SNAPSHOT
        else:
            self._finish(f, f.outcome)
