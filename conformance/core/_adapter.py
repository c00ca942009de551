"""The adapter protocol: how the harness drives a candidate HMM core.

A candidate is any object with the methods of :class:`Candidate`. The harness creates it once per
run through a factory (``MODULE:FACTORY``), reads its :class:`Handshake`, and then, for each test
case, calls :meth:`Candidate.begin` with a fresh view of the CPU side followed by one method call
per operation. The protocol is synchronous and does no I/O of its own; the wire adapter carries
the same calls over a pipe.

The harness hands the candidate:

- a :class:`CpuView`: the vmas and CPU page-table entries, which the candidate reads the way
  ``mm/hmm.c`` reads the mm (it never writes them);
- for each mirror it registers, an ops object with ``sync_cpu_device_pagetables(update) -> int``
  and ``release()`` (the :class:`hmm_ref.HmmMirrorOps` protocol), which the candidate calls as the
  kernel calls a driver's mirror ops.

A candidate reports a refused call (a usage error, RNG-9) by raising :class:`CandidateRejected`,
and a call it would never return from (the seed's livelock, REG-5) by raising
:class:`CandidateWouldHang`. Any other exception is a crash of the candidate.

An adapter that reaches its candidate out of process (the wire adapter) reports what went wrong
there with a :class:`CandidateFault`: :class:`CandidateHung` (no answer in its time budget),
:class:`CandidateCrashed` (the process died) or :class:`CandidateProtocolError` (it said
something the protocol does not allow). The executor turns each into a HANG, CRASH or PROTOCOL
verdict with the fault's message as its detail.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, cast, final, runtime_checkable

from hmm_ref import HmmMirrorOps, PfnEncoding, Pte

from .._case import VmaSpec
from .._errors import (
    AdapterError,
    CandidateCrashed,
    CandidateFault,
    CandidateHung,
    CandidateProtocolError,
    checked_factory,
    resolve_factory,
)

__all__ = [
    "PROTOCOL_VERSION",
    "AdapterError",
    "Candidate",
    "CandidateCrashed",
    "CandidateFault",
    "CandidateHung",
    "CandidateProtocolError",
    "CandidateRejected",
    "CandidateWouldHang",
    "Capability",
    "CpuView",
    "Faults",
    "Handshake",
    "ObservesAhead",
    "RangeView",
    "check_handshake",
    "faults_of",
    "load_factory",
    "resolve_factory",
]

#: The version of this protocol; a candidate declares the one it speaks in its handshake.
PROTOCOL_VERSION: Final = 1


@final
class Capability(enum.Enum):
    """What a candidate can be driven through; undeclared capabilities are never exercised."""

    #: It implements release (``hmm_release``); without it no Release operation is generated.
    RELEASE = "release"
    #: Its ``observe`` may be called from inside a mirror callback (needed for INV-9).
    OBSERVE_IN_CALLBACK = "observe-in-callback"
    #: It can be driven through the ``strict`` profile's seed-defect sequences without hanging
    #: (for example it raises :class:`CandidateWouldHang` where the seed would livelock).
    STRICT = "strict"
    #: It implements ``hmm_vma_fault`` (:meth:`Faults.fault`); without it no fault is generated.
    FAULT = "fault"


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Handshake:
    """What a candidate says about itself before the first case."""

    protocol_version: int
    name: str
    version: str
    capabilities: frozenset[Capability] = frozenset()


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RangeView:
    """What the harness sees of a range: still registered?, its valid flag and its entries."""

    registered: bool
    valid: bool
    entries: tuple[int, ...]


class CpuView(Protocol):
    """The CPU side of one case, read-only for the candidate."""

    @property
    def vmas(self) -> Sequence[VmaSpec]:
        """The vmas in address order; ``Snapshot.vma`` indexes this sequence."""
        ...

    def pte(self, addr: int) -> Pte:
        """The CPU page-table entry for the page containing ``addr``."""
        ...

    def handle_mm_fault(self, addr: int, write: bool, allow_retry: bool, nowait: bool) -> int:
        """The CPU's fault handler (``handle_mm_fault``) at the page of ``addr``, for a
        candidate's ``hmm_vma_fault``: 0 (the page is mapped as asked) or ``VM_FAULT_*`` bits
        (:class:`hmm_ref.VmFault`). ``allow_retry`` and ``nowait`` are
        ``FAULT_FLAG_ALLOW_RETRY`` and ``FAULT_FLAG_RETRY_NOWAIT``."""
        ...

    def migration_entry_wait(self, addr: int) -> None:
        """Wait until the migration of the page at ``addr`` is over (its entry changes)."""
        ...


class Candidate(Protocol):
    """A candidate HMM core, as the harness drives it. Mirror and range ids are the case's."""

    def handshake(self) -> Handshake:
        """Protocol version, name, version and capabilities."""
        ...

    def begin(self, cpu: CpuView) -> None:
        """Start a new case over ``cpu``: forget every mirror and range of the previous one."""
        ...

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        """``hmm_mirror_register`` of a new mirror called ``mirror`` with ``ops`` (None: no ops)."""
        ...

    def unregister(self, mirror: int) -> None:
        """``hmm_mirror_unregister``; the mirror may be unknown or already unregistered."""
        ...

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        """``hmm_vma_get_pfns`` of a new range ``range_id`` over ``[start, end)`` of ``vma``."""
        ...

    def observe(self, range_id: int) -> RangeView:
        """The current state of range ``range_id`` (any range id seen in this case)."""
        ...

    def range_done(self, range_id: int) -> bool:
        """``hmm_vma_range_done``; raise :class:`CandidateRejected` on misuse."""
        ...

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        """HMM's ``invalidate_range_start``: 0 or a negative errno."""
        ...

    def invalidate_end(self, start: int, end: int) -> None:
        """HMM's ``invalidate_range_end``."""
        ...

    def release(self) -> None:
        """HMM's release: the mm is being torn down."""
        ...

    def close(self) -> None:
        """The run is over; free what the candidate holds."""
        ...


class Faults(Protocol):
    """What a candidate that declares :attr:`Capability.FAULT` implements besides
    :class:`Candidate`."""

    def fault(
        self,
        range_id: int,
        vma: int,
        start: int,
        end: int,
        encoding: PfnEncoding,
        *,
        pfns: Sequence[int],
        block: bool,
    ) -> int:
        """``hmm_vma_fault`` of a new range ``range_id`` over ``[start, end)`` of ``vma``, its
        entries filled with ``pfns`` (the requests, in ``encoding``), and ``block``. It faults
        through :meth:`CpuView.handle_mm_fault` and :meth:`CpuView.migration_entry_wait`."""
        ...


def faults_of(candidate: object) -> Faults:
    """``candidate`` as one that faults; :class:`CandidateProtocolError` if it declared the
    ``fault`` capability without a ``fault`` method."""
    if not callable(getattr(candidate, "fault", None)):
        raise CandidateProtocolError(
            "it declares the fault capability but has no fault() method; implement "
            "conformance.Faults.fault, or leave the capability out"
        )
    return cast("Faults", candidate)


@runtime_checkable
class ObservesAhead(Protocol):
    """An adapter that can fetch, with a step's call, the views the executor observes after it
    (the wire adapter, when its candidate offers ``observe-ahead``). Optional: the executor
    tells one that :meth:`observes_ahead` what each step will observe, then observes as ever."""

    def observes_ahead(self) -> bool:
        """Whether it fetches views ahead; asked once per case."""
        ...

    def expect_observes(self, after: Sequence[int], in_sync: Sequence[int]) -> None:
        """The next step observes ``after`` once its call returns (or, with no call, at once),
        and ``in_sync`` inside each mirror's ``sync_cpu_device_pagetables`` it causes."""
        ...


class CandidateRejected(Exception):  # noqa: N818 - a signal from the candidate, not a fault
    """Raised by a candidate that refuses a call as a usage error, leaving its state intact."""


class CandidateWouldHang(Exception):  # noqa: N818 - a signal from the candidate, not a fault
    """Raised by a candidate for a call it would never return from."""


_METHODS: Final = (
    "handshake",
    "begin",
    "register",
    "unregister",
    "snapshot",
    "observe",
    "range_done",
    "invalidate_start",
    "invalidate_end",
    "release",
    "close",
)


def load_factory(spec: str) -> Callable[[], Candidate]:
    """Resolve ``MODULE:FACTORY`` to a function that makes a candidate."""
    example = "mypkg.hmm_adapter:make_candidate"
    make = checked_factory(spec, example, _METHODS, "a candidate", "see conformance.Candidate")
    return cast("Callable[[], Candidate]", make)  # what it makes was checked when it is made


def check_handshake(handshake: object) -> Handshake:
    """Accept a well-formed handshake of this protocol version, or raise :class:`AdapterError`."""
    if not isinstance(handshake, Handshake):
        raise AdapterError(
            f"handshake() returned {type(handshake).__name__}; return conformance.Handshake"
        )
    if handshake.protocol_version != PROTOCOL_VERSION:
        raise AdapterError(
            f"candidate {handshake.name!r} speaks adapter protocol version "
            f"{handshake.protocol_version}; this harness speaks {PROTOCOL_VERSION}. Upgrade "
            "whichever is older"
        )
    return handshake
