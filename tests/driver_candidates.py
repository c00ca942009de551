"""Small broken drivers for the driver side's own tests: each misbehaves toward the harness.

The catalogue's drivers break DRV rules; these break the adapter protocol instead (they crash,
answer with the wrong type, or say they would not block and then do), which the harness must
turn into CRASH, PROTOCOL and HANG verdicts rather than fall over. :func:`catalogue_driver`
finds a catalogue entry's factory by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from conformance.driver._adapter import DriverCandidate, DriverHandshake, FaultView
from conformance.driver._catalogue import DRIVER_CATALOGUE, BaseDriver
from hmm_ref import DeviceEntry, FaultStep, HmmUpdate


def catalogue_driver(name: str) -> Callable[[], DriverCandidate]:
    """The factory of the driver catalogue's entry ``name`` (the blind set's included)."""
    return next(entry.make for entry in DRIVER_CATALOGUE if entry.name == name)


class CrashesInBegin(BaseDriver):
    def begin(self, env: object) -> None:
        raise RuntimeError("no device")


class CrashesInStep(BaseDriver):
    def step_fault(self, fault: int) -> FaultStep:
        raise RuntimeError("device fell off the bus")


class TableNotAMapping(BaseDriver):
    def device_page_table(self) -> Mapping[int, DeviceEntry]:
        return [1, 2]  # type: ignore[return-value]


class TableRaises(BaseDriver):
    def device_page_table(self) -> Mapping[int, DeviceEntry]:
        raise KeyError("table")


class ReplyNotAnInt(BaseDriver):
    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        super().sync_cpu_device_pagetables(update)
        return "0"  # type: ignore[return-value]


class StepNotAFaultStep(BaseDriver):
    def step_fault(self, fault: int) -> FaultStep:
        super().step_fault(fault)
        return "snapshot"  # type: ignore[return-value]


class ViewInconsistent(BaseDriver):
    def fault_view(self, fault: int) -> FaultView:
        return FaultView(next_step=FaultStep.LOCK, result=0)


class WouldBlockNotABool(BaseDriver):
    def fault_would_block(self, fault: int) -> bool:
        return "no"  # type: ignore[return-value]


class WouldBlockRaises(BaseDriver):
    def invalidation_would_block(self, blockable: bool) -> bool:
        raise OSError("lock state unknown")

    def fault_would_block(self, fault: int) -> bool:
        raise OSError("lock state unknown")


class SaysItNeverBlocks(BaseDriver):
    def invalidation_would_block(self, blockable: bool) -> bool:
        return False


class RangeDoneTwice(BaseDriver):
    def check(self, state: object) -> None:
        super().check(state)  # type: ignore[arg-type]
        super().check(state)  # type: ignore[arg-type]


class NeverFinishes(BaseDriver):
    def decide(self, state: object, valid: bool) -> None:
        super().decide(state, False)  # type: ignore[arg-type]


class NoRelease(BaseDriver):
    def handshake(self) -> DriverHandshake:
        shake = super().handshake()
        return DriverHandshake(
            protocol_version=shake.protocol_version,
            name=shake.name,
            version=shake.version,
            lock=shake.lock,
        )


class BadClose(BaseDriver):
    def close(self) -> None:
        raise OSError("device busy")


class OldProtocol(BaseDriver):
    def handshake(self) -> DriverHandshake:
        shake = super().handshake()
        return DriverHandshake(
            protocol_version=99, name=shake.name, version=shake.version, lock=shake.lock
        )


class HandshakeRaises(BaseDriver):
    def handshake(self) -> DriverHandshake:
        raise RuntimeError("firmware")


class HandshakeNotADriverHandshake(BaseDriver):
    def handshake(self) -> DriverHandshake:
        return {"name": "x"}  # type: ignore[return-value]


@dataclass(slots=True)
class _Once:
    failed: bool = False


FLAKY = _Once()


class Flaky(BaseDriver):
    """Breaks DRV-3 the first time a blockable callback finds work, then never again."""

    def sync_blockable(self, update: HmmUpdate) -> int:
        if not FLAKY.failed and self.maps(update.start, update.end):
            FLAKY.failed = True
            self.clear(update.start, update.end)
            return -11
        return super().sync_blockable(update)


def raising_factory() -> BaseDriver:
    raise ValueError("no device")


def not_a_driver() -> object:
    return object()


NOT_CALLABLE = 3
