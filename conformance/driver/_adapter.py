"""The driver adapter protocol: how the harness drives a candidate mirror driver.

A driver candidate is any object with the methods of :class:`DriverCandidate`. The harness
makes it once per run through a factory (``MODULE:FACTORY``), reads its
:class:`DriverHandshake`, and for each test case calls :meth:`DriverCandidate.begin` with a
fresh :class:`DriverEnv`, then one call per operation.

Who owns what. The harness owns everything but the driver: the mm (an :class:`hmm_ref.MmStruct`
built from the case's world), the HMM core (``hmm_ref`` itself, the seed), and the
:class:`hmm_ref.SleepMonitor` on which the driver makes its locks. It registers the driver's
callbacks as a mirror on the mm before the first operation, behind a
:class:`hmm_ref.NonBlockGuard`, so that the non-blockable section around a non-blockable
callback is always opened by the harness and a driver cannot hide a sleep from DRV-1 by leaving
it out. The driver reaches HMM only through the env's two calls, which the harness records:
that is how it sees which snapshot each commit came from and what ``range_done`` said (DRV-4).

The fault path is split into the steps of kernel-drivers-usage §6: snapshot, lock, check and
commit, unlock (:class:`hmm_ref.FaultStep`). A step that would wait for a lock held by another
step is not taken: the harness asks :meth:`DriverCandidate.fault_would_block` (and, before a
blockable invalidation or the release, the two other ``*_would_block``) first, as a scheduler
would wait, and only takes the step when the answer is False. A non-blockable callback is never
asked: it must never wait.

Everything a candidate raises is a CRASH verdict, except that a driver that blocks on a held
lock after saying it would not is a HANG, and a non-blockable callback that blocks is DRV-1.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, Protocol, cast, final

from hmm_ref import (
    DeviceEntry,
    FaultStep,
    HmmMirror,
    HmmRange,
    HmmUpdate,
    MmStruct,
    PfnEncoding,
    SleepMonitor,
    hmm_vma_get_pfns,
    hmm_vma_range_done,
)

from .._errors import AdapterError, checked_factory

__all__ = [
    "DRIVER_PROTOCOL_VERSION",
    "DriverCandidate",
    "DriverCapability",
    "DriverEnv",
    "DriverHandshake",
    "FaultView",
    "check_driver_handshake",
    "load_driver_factory",
]

#: The version of this protocol; a driver candidate declares the one it speaks.
DRIVER_PROTOCOL_VERSION: Final = 1


@final
class DriverCapability(enum.Enum):
    """What a driver candidate can be driven through; undeclared ones are never exercised."""

    #: Its ``release`` stops all device use; without it the process never exits in a case.
    RELEASE = "release"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class DriverHandshake:
    """What a driver candidate says about itself before the first case.

    ``lock`` names the driver lock D: the lock (made on the env's monitor) that its callback
    takes to change the device page table and that a fault holds while it calls ``range_done``
    and commits. DRV-4 checks both halves against this name.
    """

    protocol_version: int
    name: str
    version: str
    lock: str
    capabilities: frozenset[DriverCapability] = frozenset()


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class FaultView:
    """What the harness sees of a fault: its next step, and its result once it has finished."""

    #: The step :meth:`DriverCandidate.step_fault` takes next; None once the fault finished.
    next_step: FaultStep | None
    #: 0 if it committed, a negative errno if it failed, None while it is in progress.
    result: int | None


#: What the env reports to the harness for each HMM call: the call, its range, its result.
HmmCallHook = Callable[[Literal["get_pfns", "range_done"], HmmRange, "int | bool"], None]


@final
class DriverEnv:
    """What the harness hands a driver for one case: the mm, the monitor, HMM's calls.

    The driver reads the mm (``find_vma``, to build its ranges) and never changes it; it makes
    its locks on :attr:`monitor`; it asks HMM for snapshots with :attr:`encoding`. HMM misuse
    (``range_done`` twice, a snapshot of an exited mm) raises :class:`hmm_ref.UsageError`, as
    ``hmm_ref`` does, and is a crash of the driver.

    ``get_pfns`` and ``range_done`` are HMM's two calls, ``hmm_ref``'s by default; the server
    of a driver over the wire passes ones that ask the harness, which owns HMM.
    """

    def __init__(
        self,
        *,
        mm: MmStruct,
        monitor: SleepMonitor,
        encoding: PfnEncoding,
        mirror: HmmMirror,
        on_call: HmmCallHook,
        get_pfns: Callable[[HmmRange], int] = hmm_vma_get_pfns,
        range_done: Callable[[HmmRange], bool] = hmm_vma_range_done,
    ) -> None:
        self._mm = mm
        self._monitor = monitor
        self._encoding = encoding
        self._mirror = mirror
        self._on_call = on_call
        self._get_pfns = get_pfns
        self._range_done = range_done

    def __repr__(self) -> str:
        return f"<DriverEnv {self._mm!r} registered={self._mirror.registered}>"

    @property
    def mm(self) -> MmStruct:
        """The process's address space: read it, never change it."""
        return self._mm

    @property
    def monitor(self) -> SleepMonitor:
        """The monitor to make the driver's locks on (and to call ``wait`` on)."""
        return self._monitor

    @property
    def encoding(self) -> PfnEncoding:
        """The encoding the driver's snapshots use in this case."""
        return self._encoding

    @property
    def mirror(self) -> HmmMirror:
        """The driver's ``struct hmm_mirror``, registered by the harness; ``registered`` turns
        False when the mm's release has unlinked it."""
        return self._mirror

    def hmm_vma_get_pfns(self, range_: HmmRange) -> int:
        """``hmm_vma_get_pfns``: snapshot ``range_`` and register it (0), or an error."""
        result = self._get_pfns(range_)
        self._on_call("get_pfns", range_, result)
        return result

    def hmm_vma_range_done(self, range_: HmmRange) -> bool:
        """``hmm_vma_range_done``: stop tracking ``range_``; True if it stayed valid."""
        result = self._range_done(range_)
        self._on_call("range_done", range_, result)
        return result


class DriverCandidate(Protocol):
    """A candidate mirror driver, as the harness drives it. Fault ids are the case's."""

    def handshake(self) -> DriverHandshake:
        """Protocol version, name, version, the driver lock's name, capabilities."""
        ...

    def begin(self, env: DriverEnv) -> None:
        """Start a new case in ``env``: forget every fault and entry of the previous one."""
        ...

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        """The mirror callback: 0, or ``-EAGAIN`` when not blockable and it would sleep."""
        ...

    def release(self) -> None:
        """The mm is going away: stop all device use of it."""
        ...

    def start_fault(self, fault: int, start: int, end: int) -> None:
        """A device fault called ``fault`` over ``[start, end)``; no step is taken yet."""
        ...

    def step_fault(self, fault: int) -> FaultStep:
        """Take the next step of ``fault`` and say which one it was."""
        ...

    def fault_view(self, fault: int) -> FaultView:
        """Where ``fault`` is: its next step, or its result."""
        ...

    def fault_would_block(self, fault: int) -> bool:
        """True if the next step of ``fault`` would wait for a lock now."""
        ...

    def invalidation_would_block(self, blockable: bool) -> bool:
        """True if a callback with this ``blockable`` would wait for a lock now."""
        ...

    def release_would_block(self) -> bool:
        """True if :meth:`release` would wait for a lock now."""
        ...

    def device_page_table(self) -> Mapping[int, DeviceEntry]:
        """A copy of the device page table: page address -> entry. Takes no lock."""
        ...

    def close(self) -> None:
        """The run is over; free what the candidate holds."""
        ...


_METHODS: Final = (
    "handshake",
    "begin",
    "sync_cpu_device_pagetables",
    "release",
    "start_fault",
    "step_fault",
    "fault_view",
    "fault_would_block",
    "invalidation_would_block",
    "release_would_block",
    "device_page_table",
    "close",
)


def load_driver_factory(spec: str) -> Callable[[], DriverCandidate]:
    """Resolve ``MODULE:FACTORY`` to a function that makes a driver candidate."""
    see = "see conformance DriverCandidate, docs/driver-side.md"
    make = checked_factory(
        spec, "mypkg.gpu_adapter:make_driver", _METHODS, "a driver candidate", see
    )
    return cast("Callable[[], DriverCandidate]", make)  # checked when it makes one


def check_driver_handshake(handshake: object) -> DriverHandshake:
    """Accept a well-formed driver handshake of this version, or raise :class:`AdapterError`."""
    if not isinstance(handshake, DriverHandshake):
        raise AdapterError(
            f"handshake() returned {type(handshake).__name__}; a driver returns DriverHandshake"
        )
    if handshake.protocol_version != DRIVER_PROTOCOL_VERSION:
        raise AdapterError(
            f"driver {handshake.name!r} speaks driver protocol version "
            f"{handshake.protocol_version}; this harness speaks {DRIVER_PROTOCOL_VERSION}. "
            "Upgrade whichever is older"
        )
    return handshake
