"""A driver candidate in process, each outermost call within the step's budget
(:mod:`conformance._alarm`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import final

from hmm_ref import DeviceEntry, FaultStep, HmmUpdate

from .._alarm import Watchdog, Watched
from ._adapter import DriverCandidate, DriverEnv, DriverHandshake, FaultView

__all__ = ["WatchedDriver", "watched_driver"]


@final
class WatchedDriver(Watched[DriverCandidate]):
    """A :class:`DriverCandidate` whose every outermost call has the step's budget."""

    def handshake(self) -> DriverHandshake:
        return self._call("handshake", self.inner.handshake)

    def begin(self, env: DriverEnv) -> None:
        self._call("begin", self.inner.begin, env)

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        return self._call(
            "sync_cpu_device_pagetables", self.inner.sync_cpu_device_pagetables, update
        )

    def release(self) -> None:
        self._call("release", self.inner.release)

    def start_fault(self, fault: int, start: int, end: int) -> None:
        self._call("start_fault", self.inner.start_fault, fault, start, end)

    def step_fault(self, fault: int) -> FaultStep:
        return self._call("step_fault", self.inner.step_fault, fault)

    def fault_view(self, fault: int) -> FaultView:
        return self._call("fault_view", self.inner.fault_view, fault)

    def fault_would_block(self, fault: int) -> bool:
        return self._call("fault_would_block", self.inner.fault_would_block, fault)

    def invalidation_would_block(self, blockable: bool) -> bool:
        return self._call(
            "invalidation_would_block", self.inner.invalidation_would_block, blockable
        )

    def release_would_block(self) -> bool:
        return self._call("release_would_block", self.inner.release_would_block)

    def device_page_table(self) -> Mapping[int, DeviceEntry]:
        return self._call("device_page_table", self.inner.device_page_table)

    def close(self) -> None:
        self._call("close", self.inner.close)


def watched_driver(
    factory: Callable[[], DriverCandidate], *, seconds: float, watchdog: Watchdog | None = None
) -> Callable[[], DriverCandidate]:
    """``factory``, with each driver it makes in a :class:`WatchedDriver`."""
    return lambda: WatchedDriver(factory(), seconds=seconds, watchdog=watchdog)
