"""The catalogue of known-bad mirror drivers the driver side must catch, each with its origin.

Every entry is :class:`BaseDriver`, a compact driver that keeps every DRV rule (a mutex for its
lock D, a device page table, the fault path in the four steps of kernel-drivers-usage §6), with
one method overridden to put one bug in. The bugs are driver bugs from the kernel's history
(kernel-bug-history.md, cited by number) or targeted mutations of one rule's mechanism.
``hmm-conformance catalogue`` runs them all after the cores; a test in CI asserts that each is
caught against one of its rules, shrunk to its shortest length, and that the one graded entry
(nouveau's over-conservative ``-EAGAIN``) conforms, with DRV-6 grades and no failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from hmm_ref import (
    PAGE_SIZE,
    DeviceEntry,
    Errno,
    FaultStep,
    HmmPfnFlag,
    HmmRange,
    HmmUpdate,
    Mutex,
)

from .._known_bad import KnownBad, entry_name
from .._version import package_version
from ._adapter import (
    DRIVER_PROTOCOL_VERSION,
    DriverCandidate,
    DriverCapability,
    DriverEnv,
    DriverHandshake,
    FaultView,
)
from ._blind_catalogue import BLIND_CATALOGUE

__all__ = ["DRIVER_CATALOGUE", "BaseDriver"]

EAGAIN: Final = -Errno.EAGAIN


@dataclass(slots=True)
class _Fault:
    start: int
    end: int
    next: FaultStep | None = FaultStep.SNAPSHOT
    range: HmmRange | None = None
    #: The device entries prepared from the snapshot, page -> entry (None: no page).
    prepared: dict[int, DeviceEntry | None] = field(default_factory=dict)
    #: What an early range_done said (only drivers that check before locking use it).
    confirmed: bool = False
    #: Decided at CHECK: 0 (committed), an error, or None (stale: start again).
    outcome: int | None = None
    result: int | None = None


@dataclass(slots=True)
class BaseDriver:
    """A compact mirror driver with the reference's behaviour, one method per piece.

    Its name is its class's, in words (``base-driver``, ``sleeps-when-not-blockable``, ...).
    """

    name: str = ""
    env: DriverEnv | None = None
    lock: Mutex | None = None
    table: dict[int, DeviceEntry] = field(default_factory=dict)
    faults: dict[int, _Fault] = field(default_factory=dict)
    released: bool = False

    def __post_init__(self) -> None:
        self.name = self.name or entry_name(type(self))

    def handshake(self) -> DriverHandshake:
        return DriverHandshake(
            protocol_version=DRIVER_PROTOCOL_VERSION,
            name=self.name,
            version=package_version(),
            lock=f"{self.name}.lock",
            capabilities=frozenset({DriverCapability.RELEASE}),
        )

    def begin(self, env: DriverEnv) -> None:
        self.env, self.table, self.faults, self.released = env, {}, {}, False
        self.lock = Mutex(f"{self.name}.lock", env.monitor)

    @property
    def d(self) -> Mutex:
        """The driver lock D."""
        assert self.lock is not None, "begin() comes first"
        return self.lock

    @property
    def hmm(self) -> DriverEnv:
        assert self.env is not None, "begin() comes first"
        return self.env

    # -- the callbacks -----------------------------------------------------------------------

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        if update.blockable:
            return self.sync_blockable(update)
        return self.sync_non_blockable(update)

    def sync_blockable(self, update: HmmUpdate) -> int:
        self.d.lock("sync")
        self.clear(update.start, update.end)
        self.d.unlock("sync")
        return 0

    def sync_non_blockable(self, update: HmmUpdate) -> int:
        if not self.maps(update.start, update.end):
            return 0  # nothing to tear down here (DRV-6)
        if not self.lock_without_sleeping():
            return EAGAIN
        self.clear(update.start, update.end)
        self.d.unlock("sync")
        return 0

    def lock_without_sleeping(self) -> bool:
        return self.d.trylock("sync")

    def maps(self, start: int, end: int) -> bool:
        return any(start <= addr < end for addr in self.table)

    def clear(self, start: int, end: int) -> None:
        """Remove every device entry in ``[start, end)`` (D held); the flush completes at once."""
        for addr in [a for a in self.table if start <= a < end]:
            del self.table[addr]

    def release(self) -> None:
        self.d.lock("release")
        self.table.clear()
        self.d.unlock("release")
        self.released = True

    # -- the fault path ----------------------------------------------------------------------

    def start_fault(self, fault: int, start: int, end: int) -> None:
        self.faults[fault] = _Fault(start=start, end=end)

    def step_fault(self, fault: int) -> FaultStep:
        state = self.faults[fault]
        step = state.next
        assert step is not None, "the harness steps only faults in progress"
        owner = f"fault{fault}"
        if step is FaultStep.SNAPSHOT:
            self.snapshot(state)
        elif step is FaultStep.LOCK:
            self.d.lock(owner)
            state.next = FaultStep.CHECK
        elif step is FaultStep.CHECK:
            self.check(state)
            state.next = FaultStep.UNLOCK
        else:
            self.d.unlock(owner)
            state.next = FaultStep.SNAPSHOT if state.outcome is None else None
            state.result = state.outcome
        return step

    def snapshot(self, state: _Fault) -> None:
        vma = self.hmm.mm.find_vma(state.start)
        if vma is None or self.released:
            state.next, state.result = None, -Errno.EFAULT
            return
        state.range = HmmRange(
            vma=vma, start=state.start, end=state.end, encoding=self.hmm.encoding
        )
        ret = self.hmm.hmm_vma_get_pfns(state.range)
        if ret:
            state.next, state.result = None, ret
            return
        state.prepared = self.prepare(state.range)
        state.next = FaultStep.LOCK

    def prepare(self, range_: HmmRange) -> dict[int, DeviceEntry | None]:
        """Decode the snapshot into device entries before the check, as amdgpu placed the
        pages in its buffer object (the preparatory work of bug #10): the seed's invalidation
        zeroes the snapshot's entries, not these."""
        encoding = range_.encoding
        prepared: dict[int, DeviceEntry | None] = {}
        for index, entry in enumerate(range_.pfns):
            pfn = encoding.decode(entry)
            prepared[range_.page_address(index)] = (
                None if pfn is None else DeviceEntry(pfn=pfn, write=self.writable(entry, range_))
            )
        return prepared

    def check(self, state: _Fault) -> None:
        assert state.range is not None, "CHECK follows a successful SNAPSHOT"
        valid = self.hmm.hmm_vma_range_done(state.range)
        self.decide(state, valid)

    def decide(self, state: _Fault, valid: bool) -> None:
        """Commit a confirmed snapshot (D held); after release, nothing is mapped any more."""
        if self.released:
            state.outcome = -Errno.EFAULT
        elif valid:
            self.commit(state.prepared)
            state.outcome = 0
        else:
            state.outcome = None

    def commit(self, prepared: Mapping[int, DeviceEntry | None]) -> None:
        for addr, entry in prepared.items():
            if entry is None:
                self.table.pop(addr, None)
            else:
                self.table[addr] = entry

    def writable(self, entry: int, range_: HmmRange) -> bool:
        return bool(entry & range_.encoding.flag(HmmPfnFlag.WRITE))

    def fault_view(self, fault: int) -> FaultView:
        state = self.faults[fault]
        return FaultView(next_step=state.next, result=state.result)

    def fault_would_block(self, fault: int) -> bool:
        return self.faults[fault].next is FaultStep.LOCK and self.d.held

    def invalidation_would_block(self, blockable: bool) -> bool:
        return blockable and self.d.held

    def release_would_block(self) -> bool:
        return self.d.held

    def device_page_table(self) -> Mapping[int, DeviceEntry]:
        return dict(self.table)

    def close(self) -> None:
        self.faults.clear()


# -- the entries -------------------------------------------------------------------------------


class SleepsWhenNotBlockable(BaseDriver):
    def lock_without_sleeping(self) -> bool:
        self.d.lock("sync")  # mutex_lock where mutex_trylock belongs: it may sleep
        return True


class EagainWhenBlockable(BaseDriver):
    def sync_blockable(self, update: HmmUpdate) -> int:
        if self.maps(update.start, update.end):
            return EAGAIN  # gntdev's conversion: -EAGAIN whatever blockable says, nothing undone
        return super().sync_blockable(update)


class CommitIgnoresRangeDone(BaseDriver):
    def check(self, state: _Fault) -> None:
        assert state.range is not None, "CHECK follows a successful SNAPSHOT"
        self.hmm.hmm_vma_range_done(state.range)  # the result is dropped
        self.decide(state, True)


class ChecksBeforeLocking(BaseDriver):
    def snapshot(self, state: _Fault) -> None:
        super().snapshot(state)
        if state.next is FaultStep.LOCK:
            assert state.range is not None
            state.confirmed = self.hmm.hmm_vma_range_done(state.range)  # D is not held yet

    def check(self, state: _Fault) -> None:
        self.decide(state, state.confirmed)


class LeavesLastPage(BaseDriver):
    def clear(self, start: int, end: int) -> None:
        super().clear(start, end - PAGE_SIZE)  # the exclusive end made inclusive twice


class OverConservative(BaseDriver):
    def sync_non_blockable(self, update: HmmUpdate) -> int:
        return EAGAIN  # refuse every non-blockable update, before looking at the span


class ReleaseKeepsEntries(BaseDriver):
    def release(self) -> None:
        self.released = True  # stops faulting, but the device keeps what it maps


class WritableBeyondCpu(BaseDriver):
    def writable(self, entry: int, range_: HmmRange) -> bool:
        return True  # the snapshot's WRITE flag is not consulted


class CallbackWithoutLock(BaseDriver):
    def sync_blockable(self, update: HmmUpdate) -> int:
        self.clear(update.start, update.end)  # without D: a fault can commit right after
        return 0

    def sync_non_blockable(self, update: HmmUpdate) -> int:
        return self.sync_blockable(update)


class KeepsLockAfterEagain(BaseDriver):
    def sync_non_blockable(self, update: HmmUpdate) -> int:
        if self.maps(update.start, update.end) and self.lock_without_sleeping():
            return EAGAIN  # the walk needs to sleep: RDMA ODP's early return, D still held
        return super().sync_non_blockable(update)


def _entry(
    cls: type[BaseDriver], shortest: int, rules: str, origin: str
) -> KnownBad[DriverCandidate]:
    return KnownBad(
        name=entry_name(cls),
        make=cls,
        rules=frozenset(rules.split()),
        shortest=shortest,
        origin=origin,
        graded=rules == "DRV-6",
    )


DRIVER_CATALOGUE: Final = (
    _entry(
        SleepsWhenNotBlockable,
        3,
        "DRV-1",
        "mutex_lock, not trylock, when not blockable (bug #20; #21, derived)",
    ),
    _entry(
        EagainWhenBlockable,
        3,
        "DRV-3 DRV-2",
        "xen/gntdev's conversion: -EAGAIN in blockable mode too (bug #8)",
    ),
    _entry(
        CommitIgnoresRangeDone,
        4,
        "DRV-4 DRV-5",
        "amdgpu/amdkfd: the result of range_done ignored (bug #17)",
    ),
    _entry(
        ChecksBeforeLocking,
        2,
        "DRV-4",
        "range_done checked before the lock is taken (bug #17, the FIXME)",
    ),
    _entry(
        LeavesLastPage, 3, "DRV-2", "mutation: answers 0 with the span's last page still mapped"
    ),
    _entry(
        OverConservative, 0, "DRV-6", "nouveau: -EAGAIN to every non-blockable update (bug #21)"
    ),
    _entry(
        ReleaseKeepsEntries, 3, "DRV-5", "mutation: release leaves the device's mappings in place"
    ),
    _entry(WritableBeyondCpu, 2, "DRV-5", "mutation: device write rights without the WRITE flag"),
    _entry(
        CallbackWithoutLock, 3, "DRV-4", "mutation: the callback clears without the driver lock"
    ),
    _entry(
        KeepsLockAfterEagain,
        3,
        "DRV-7",
        "RDMA ODP: -EAGAIN from a non-blockable start with its lock still held (bug #14)",
    ),
    *BLIND_CATALOGUE,
)
