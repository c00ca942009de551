"""The reference driver adapter: :class:`hmm_ref.ReferenceDriver` behind the driver protocol.

Each case gets a fresh driver in the harness's env: its locks on the env's monitor, the env's
mirror as its registration (so a fault after the mm's release finds it unlinked), and the env's
recorded HMM calls in place of the direct ones. The default driver adapter everywhere
(``conformance:reference_driver``); ``conformance:reference_driver_rwsem`` is the same driver
with the dummy driver's read/write semaphore for a lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import final

from hmm_ref import DeviceEntry, DeviceFault, DriverLockKind, FaultStep, HmmUpdate, ReferenceDriver

from .._version import package_version
from ._adapter import (
    DRIVER_PROTOCOL_VERSION,
    DriverCapability,
    DriverEnv,
    DriverHandshake,
    FaultView,
)

__all__ = ["ReferenceDriverCandidate", "reference_driver", "reference_driver_rwsem"]


@final
class ReferenceDriverCandidate:
    """``hmm_ref.ReferenceDriver`` as a driver candidate."""

    def __init__(self, lock_kind: DriverLockKind = DriverLockKind.MUTEX) -> None:
        self.lock_kind = lock_kind
        self.name = f"dmirror-{lock_kind.value}"
        self._driver: ReferenceDriver | None = None
        self._faults: dict[int, DeviceFault] = {}

    def __repr__(self) -> str:
        return f"<ReferenceDriverCandidate {self._driver!r}>"

    @property
    def driver(self) -> ReferenceDriver:
        """The driver of the current case."""
        assert self._driver is not None, "begin() comes first"
        return self._driver

    def handshake(self) -> DriverHandshake:
        return DriverHandshake(
            protocol_version=DRIVER_PROTOCOL_VERSION,
            name=f"hmm_ref.ReferenceDriver ({self.lock_kind.value})",
            version=package_version(),
            lock=f"{self.name}.lock",
            capabilities=frozenset({DriverCapability.RELEASE}),
        )

    def begin(self, env: DriverEnv) -> None:
        self._faults = {}
        self._driver = ReferenceDriver(
            env.mm,
            name=self.name,
            lock_kind=self.lock_kind,
            monitor=env.monitor,
            encoding=env.encoding,
            mirror=env.mirror,
            get_pfns=env.hmm_vma_get_pfns,
            range_done=env.hmm_vma_range_done,
        )

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        return self.driver.sync_cpu_device_pagetables(update)

    def release(self) -> None:
        self.driver.release()

    def start_fault(self, fault: int, start: int, end: int) -> None:
        self._faults[fault] = self.driver.start_fault(start, end)

    def step_fault(self, fault: int) -> FaultStep:
        return self._faults[fault].step()

    def fault_view(self, fault: int) -> FaultView:
        device_fault = self._faults[fault]
        return FaultView(next_step=device_fault.next_step, result=device_fault.result)

    def fault_would_block(self, fault: int) -> bool:
        return self._faults[fault].would_block()

    def invalidation_would_block(self, blockable: bool) -> bool:
        return self.driver.invalidation_would_block(blockable=blockable)

    def release_would_block(self) -> bool:
        return self.driver.release_would_block()

    def device_page_table(self) -> Mapping[int, DeviceEntry]:
        return self.driver.device_page_table

    def close(self) -> None:
        self._faults = {}
        self._driver = None


def reference_driver() -> ReferenceDriverCandidate:
    """The reference driver with a mutex for its lock (``lib/test_hmm.c``'s dmirror)."""
    return ReferenceDriverCandidate(DriverLockKind.MUTEX)


def reference_driver_rwsem() -> ReferenceDriverCandidate:
    """The reference driver with a read/write semaphore (Jérôme Glisse's dummy driver)."""
    return ReferenceDriverCandidate(DriverLockKind.RWSEM)
