"""Every shipped driver adapter satisfies the DriverCandidate protocol, statically (mypy --strict),
and the reference driver takes HMM's calls and its mirror from the harness.

As in tests/test_adapter_typing.py, the assignments are the test, and the negative control must
stay rejected: ``warn_unused_ignores`` turns its ignore into an error the day mypy accepts it.
"""

from __future__ import annotations

import hmm_ref as H
from conformance.driver._adapter import DriverCandidate, load_driver_factory
from conformance.driver._catalogue import DRIVER_CATALOGUE, BaseDriver
from conformance.driver._reference import (
    ReferenceDriverCandidate,
    reference_driver,
    reference_driver_rwsem,
)
from hmm_ref import DriverLockKind


class NotADriver:
    """Has the callbacks and nothing else."""

    def sync_cpu_device_pagetables(self, update: object) -> int:
        return 0

    def release(self) -> None:
        return None


def test_shipped_driver_adapters_are_driver_candidates() -> None:
    """The reference driver (both locks), the catalogue's base and every entry are candidates."""
    shipped: list[DriverCandidate] = [
        ReferenceDriverCandidate(),
        reference_driver(),
        reference_driver_rwsem(),
        BaseDriver(),
        *(entry.make() for entry in DRIVER_CATALOGUE),
    ]
    assert all(callable(getattr(driver, "step_fault", None)) for driver in shipped)


def test_negative_control_is_rejected_statically() -> None:
    """A class with the callbacks but no fault path cannot be assigned to DriverCandidate."""
    rejected: DriverCandidate = NotADriver()  # type: ignore[assignment]
    assert not hasattr(rejected, "step_fault")


def test_the_short_names_load_the_reference_driver_with_either_lock() -> None:
    """conformance:reference_driver and its rwsem twin, the package's own exports."""
    mutex = load_driver_factory("conformance:reference_driver")()
    rwsem = load_driver_factory("conformance:reference_driver_rwsem")()
    assert isinstance(mutex, ReferenceDriverCandidate)
    assert isinstance(rwsem, ReferenceDriverCandidate)
    assert (mutex.lock_kind, rwsem.lock_kind) == (DriverLockKind.MUTEX, DriverLockKind.RWSEM)
    assert mutex.handshake().lock == "dmirror-mutex.lock"
    assert rwsem.handshake().lock == "dmirror-rwsem.lock"


def test_the_reference_driver_calls_hmm_through_what_the_harness_hands_it() -> None:
    """get_pfns and range_done are the harness's when given; the mirror too."""
    mm = H.MmStruct()
    mm.mmap(0x10000, 0x12000)
    mm.set_pte(0x10000, H.Pte.present(0x100, write=True))
    calls: list[str] = []

    def get_pfns(range_: H.HmmRange) -> int:
        calls.append("get_pfns")
        return H.hmm_vma_get_pfns(range_)

    def range_done(range_: H.HmmRange) -> bool:
        calls.append("range_done")
        return H.hmm_vma_range_done(range_)

    driver = H.ReferenceDriver(mm, get_pfns=get_pfns, range_done=range_done)
    guarded = H.HmmMirror(H.NonBlockGuard(driver, driver.monitor))
    other = H.ReferenceDriver(mm, name="other", mirror=guarded)
    assert other.mirror is guarded
    assert driver.register() == 0
    assert driver.fault(0x10000, 0x11000) == 0
    assert calls == ["get_pfns", "range_done"]
    assert driver.device_page_table == {0x10000: H.DeviceEntry(pfn=0x100, write=True)}
