"""Small broken candidates for the engine's own tests (the public catalogue comes later).

Each wraps the reference and changes one behaviour, the way a real bug would.
"""

from __future__ import annotations

from collections.abc import Sequence

import hmm_ref as H
from conformance import (
    Candidate,
    CandidateRejected,
    CandidateWouldHang,
    Capability,
    CpuView,
    Handshake,
    RangeView,
    ReferenceCandidate,
)
from conformance.core._adapter import faults_of
from conformance.core._catalogue import SeedCore, UnregisteredStillCalled
from examples.exact_core import ExactCore
from hmm_ref import HmmMirrorOps, HmmUpdate, PfnEncoding

EAGAIN = -H.Errno.EAGAIN


class Wrapped:
    """The reference, renamed; subclasses override one method to break one rule."""

    name = "wrapped"

    def __init__(self) -> None:
        self.inner: Candidate = ReferenceCandidate()

    def handshake(self) -> Handshake:
        inner = self.inner.handshake()
        return Handshake(
            protocol_version=inner.protocol_version,
            name=self.name,
            version="test",
            capabilities=inner.capabilities,
        )

    def begin(self, cpu: CpuView) -> None:
        self.inner.begin(cpu)

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        return self.inner.register(mirror, ops)

    def unregister(self, mirror: int) -> None:
        self.inner.unregister(mirror)

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        return self.inner.snapshot(range_id, vma, start, end, encoding)

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
        return faults_of(self.inner).fault(
            range_id, vma, start, end, encoding, pfns=pfns, block=block
        )

    def observe(self, range_id: int) -> RangeView:
        return self.inner.observe(range_id)

    def range_done(self, range_id: int) -> bool:
        return self.inner.range_done(range_id)

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        return self.inner.invalidate_start(start, end, blockable)

    def invalidate_end(self, start: int, end: int) -> None:
        self.inner.invalidate_end(start, end)

    def release(self) -> None:
        self.inner.release()

    def close(self) -> None:
        self.inner.close()


class ParentTree(Wrapped):
    """The tree before the seed patch (6/7), simplified: every non-blockable start fails at
    once, even with no HMM struct on the mm (the catalogue's parent-tree is the faithful one)."""

    name = "parent-tree"

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        if not blockable:
            return EAGAIN
        return super().invalidate_start(start, end, blockable)


class _StoppingOps:
    """Mirror ops that stop passing blockable updates on once one answered -EAGAIN."""

    def __init__(self, owner: BlockableStops, ops: HmmMirrorOps) -> None:
        self.owner = owner
        self.ops = ops

    def sync_cpu_device_pagetables(self, update: HmmUpdate) -> int:
        if self.owner.stopped:
            return 0
        reply = self.ops.sync_cpu_device_pagetables(update)
        if update.blockable and reply == EAGAIN:
            self.owner.stopped = True
        return reply

    def release(self) -> None:
        self.ops.release()


class BlockableStops(Wrapped):
    """Honours -EAGAIN in blockable mode too: the loop stops at the first one."""

    name = "blockable-stops"
    stopped = False

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        return super().register(mirror, None if ops is None else _StoppingOps(self, ops))

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        self.stopped = False
        return super().invalidate_start(start, end, blockable)


class NoClear(Wrapped):
    """Marks ranges invalid but never clears their entries."""

    name = "no-clear"

    def __init__(self) -> None:
        super().__init__()
        self.frozen: dict[int, tuple[int, ...]] = {}

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        result = super().snapshot(range_id, vma, start, end, encoding)
        self.frozen[range_id] = super().observe(range_id).entries
        return result

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
        result = super().fault(range_id, vma, start, end, encoding, pfns=pfns, block=block)
        self.frozen[range_id] = super().observe(range_id).entries
        return result

    def observe(self, range_id: int) -> RangeView:
        view = super().observe(range_id)
        return RangeView(
            registered=view.registered, valid=view.valid, entries=self.frozen.get(range_id, ())
        )


class Crashes(Wrapped):
    """Raises from the first non-blockable start."""

    name = "crashes"

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        if not blockable:
            raise RuntimeError("oops in invalidate_start")
        return super().invalidate_start(start, end, blockable)


class CrashesAtBegin(Wrapped):
    """Raises when a case begins."""

    name = "crashes-at-begin"

    def begin(self, cpu: CpuView) -> None:
        raise OSError("cannot set up")


class Nonsense(Wrapped):
    """Answers register with a string."""

    name = "nonsense"

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        super().register(mirror, ops)
        return "0"  # type: ignore[return-value]


class BadObserve(Wrapped):
    """Answers observe with a tuple instead of a RangeView."""

    name = "bad-observe"

    def observe(self, range_id: int) -> RangeView:
        return (True, True, ())  # type: ignore[return-value]


class Hangs(Wrapped):
    """Says that a blockable end would never return."""

    name = "hangs"

    def invalidate_end(self, start: int, end: int) -> None:
        raise CandidateWouldHang("waits forever on a lock")


class Flaky(Wrapped):
    """Fails one non-blockable start, once per process, then behaves."""

    name = "flaky"
    failed_once = False

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        if not blockable and not Flaky.failed_once:
            Flaky.failed_once = True
            return EAGAIN
        return super().invalidate_start(start, end, blockable)


class WearsOut(Wrapped):
    """Works for its first 25 cases; after that every register fails with -ENOMEM."""

    name = "wears-out"

    def __init__(self) -> None:
        super().__init__()
        self.cases = 0

    def begin(self, cpu: CpuView) -> None:
        self.cases += 1
        super().begin(cpu)

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        if self.cases > 25:
            return -H.Errno.ENOMEM
        return super().register(mirror, ops)


class BreaksDown(Wrapped):
    """Works for its first 40 cases; after that it cannot even begin one."""

    name = "breaks-down"

    def __init__(self) -> None:
        super().__init__()
        self.cases = 0

    def begin(self, cpu: CpuView) -> None:
        if self.cases >= 40:
            raise OSError("device lost")
        self.cases += 1
        super().begin(cpu)


class Alternates(Wrapped):
    """Case by case, the reference and then the example core: each conforms, but they take
    RNG-5's latitude differently, so the same steps do not always reach the same state."""

    name = "alternates"

    def __init__(self) -> None:
        super().__init__()
        self.cores: tuple[Candidate, Candidate] = (self.inner, ExactCore())
        self.cases = 0

    def handshake(self) -> Handshake:
        said = super().handshake()  # the example core has no fault(): leave faults out
        return Handshake(
            protocol_version=said.protocol_version,
            name=said.name,
            version=said.version,
            capabilities=said.capabilities - {Capability.FAULT},
        )

    def begin(self, cpu: CpuView) -> None:
        self.inner = self.cores[self.cases % 2]
        self.cases += 1
        self.inner.begin(cpu)


class NoFault(Wrapped):
    """The reference without the fault capability: no fault is generated or explored."""

    name = "no-fault"

    def handshake(self) -> Handshake:
        inner = super().handshake()
        return Handshake(
            protocol_version=inner.protocol_version,
            name=inner.name,
            version=inner.version,
            capabilities=inner.capabilities - {Capability.FAULT},
        )


class NoStrict(Wrapped):
    """The reference without the strict capability."""

    name = "no-strict"

    def handshake(self) -> Handshake:
        inner = super().handshake()
        return Handshake(
            protocol_version=inner.protocol_version,
            name=self.name,
            version="test",
            capabilities=inner.capabilities - {Capability.STRICT},
        )


class Minimal(Wrapped):
    """The reference declaring no capability at all."""

    name = "minimal"

    def handshake(self) -> Handshake:
        return Handshake(protocol_version=1, name=self.name, version="test")


class OldProtocol(Wrapped):
    """Speaks a protocol version this harness does not."""

    def handshake(self) -> Handshake:
        return Handshake(protocol_version=99, name="future", version="9")


class BadHandshake(Wrapped):
    """Answers the handshake with a dict."""

    def handshake(self) -> Handshake:
        return {"name": "x"}  # type: ignore[return-value]


def not_a_candidate() -> object:
    """A factory returning something that is not a candidate."""
    return object()


def raising_factory() -> Wrapped:
    """A factory that fails."""
    raise ValueError("no device")


NOT_CALLABLE = 42


class RaisingHandshake(Wrapped):
    """Cannot even say who it is."""

    def handshake(self) -> Handshake:
        raise ConnectionError("no answer")


class ForgetsRanges(Wrapped):
    """Refuses to show a range it registered."""

    name = "forgets-ranges"

    def observe(self, range_id: int) -> RangeView:
        raise CandidateRejected(f"what is r{range_id}?")


class ObserveFailsInCallback(Wrapped):
    """Its observe breaks when called from inside a mirror callback."""

    name = "observe-fails-in-callback"
    inside = False

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        self.inside = True
        try:
            return super().invalidate_start(start, end, blockable)
        finally:
            self.inside = False

    def observe(self, range_id: int) -> RangeView:
        if self.inside:
            raise RuntimeError("observe while invalidating")
        return super().observe(range_id)


class BadClose(NoFault):
    """Conforms, but its close() raises (no faults: its runs are about closing)."""

    name = "bad-close"

    def close(self) -> None:
        raise OSError("device busy")


class StaleBusyFlag(SeedCore):
    """Keeps what the model cannot see: after a non-blockable start fails, a flag stays set,
    and the next start skips every mirror (and clears it)."""

    busy = False

    def begin(self, cpu: CpuView) -> None:
        super().begin(cpu)
        self.busy = False

    def mirror_pass(self, update: HmmUpdate) -> int:
        if self.busy:
            self.busy = False
            return 0
        result = super().mirror_pass(update)
        self.busy = result != 0 and not update.blockable
        return result


def stale_busy_flag() -> StaleBusyFlag:
    return StaleBusyFlag(name="stale-busy-flag")


class RevalidatesAtLastEnd(SeedCore):
    """5.2's valid flag (bug #16) on an mm that has its hmm before the case begins: the end of
    the last invalidation in flight makes every registered range valid again. A window left
    open is one more in flight, so it hides the bug."""

    in_flight = 0

    def begin(self, cpu: CpuView) -> None:
        super().begin(cpu)
        self.in_flight = 0
        self.make_hmm()

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        result = super().invalidate_start(start, end, blockable)
        self.in_flight += result == 0 and self.hears()
        return result

    def invalidate_end(self, start: int, end: int) -> None:
        super().invalidate_end(start, end)
        self.in_flight -= self.hears()
        if not self.in_flight:
            for rng in self.ranges.values():
                rng.valid = rng.valid or rng.registered


class RangeDoneOnAnything(UnregisteredStillCalled):
    """Still calls an unregistered mirror, and answers range_done on a range it never had
    (which RNG-9 says to refuse) as if that range were valid."""

    def range_done(self, range_id: int) -> bool:
        return range_id not in self.ranges or super().range_done(range_id)
