"""A complete candidate HMM core, written against the adapter protocol from scratch.

It is the example of docs/writing-an-adapter.md, and a second, independent implementation that
conforms while taking every latitude the rules allow, so the suite reports each one as ALLOWED:

- mirrors are called oldest first (REG-4) and released oldest first (REL-2);
- after a mirror's -EAGAIN in non-blockable mode the others are still called (INV-7);
- the overlap test is exact: a range the update only touches is left alone (RNG-5).

Run it:  hmm-conformance run --adapter examples.exact_core:make
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance import (
    PROTOCOL_VERSION,
    CandidateRejected,
    Capability,
    CpuView,
    Handshake,
    RangeView,
)
from hmm_ref import PAGE_SIZE, Errno, HmmMirrorOps, HmmPfnFlag, HmmUpdate, PfnEncoding, PteKind

EAGAIN = -Errno.EAGAIN


@dataclass
class _Range:
    start: int
    end: int
    encoding: PfnEncoding
    entries: list[int]
    registered: bool = False
    valid: bool = False
    done: bool = False


@dataclass
class ExactCore:
    """The HMM core: a list of mirrors, a list of ranges, and the CPU view."""

    cpu: CpuView | None = None
    mirrors: list[tuple[int, HmmMirrorOps]] = field(default_factory=list)  # oldest first
    ranges: dict[int, _Range] = field(default_factory=dict)

    def handshake(self) -> Handshake:
        return Handshake(
            protocol_version=PROTOCOL_VERSION,
            name="exact-core",
            version="1.0",
            capabilities=frozenset({Capability.RELEASE, Capability.OBSERVE_IN_CALLBACK}),
        )

    def begin(self, cpu: CpuView) -> None:
        self.cpu, self.mirrors, self.ranges = cpu, [], {}

    def register(self, mirror: int, ops: HmmMirrorOps | None) -> int:
        if ops is None:
            return -Errno.EINVAL
        self.mirrors.append((mirror, ops))
        return 0

    def unregister(self, mirror: int) -> None:
        self.mirrors = [(m, ops) for m, ops in self.mirrors if m != mirror]

    def snapshot(self, range_id: int, vma: int, start: int, end: int, encoding: PfnEncoding) -> int:
        assert self.cpu is not None
        area = self.cpu.vmas[vma]
        npages = max(0, (end - start) // PAGE_SIZE)
        rng = self.ranges[range_id] = _Range(start, end, encoding, [0] * npages)
        if not (area.start <= start < area.end and area.start <= end <= area.end):
            return -Errno.EINVAL
        if area.special:
            rng.entries = [encoding.values[2]] * npages
            return -Errno.EINVAL
        if not area.read:
            rng.entries = [encoding.values[1]] * npages
            return -Errno.EPERM
        for index in range(npages):
            pte = self.cpu.pte(start + index * PAGE_SIZE)
            rng.entries[index] = encoding.encode(pte)
            if pte.kind is PteKind.POISON:
                break
        rng.registered = rng.valid = True
        return 0

    def observe(self, range_id: int) -> RangeView:
        rng = self.ranges.get(range_id)
        if rng is None:
            raise CandidateRejected(f"no range {range_id}")
        return RangeView(registered=rng.registered, valid=rng.valid, entries=tuple(rng.entries))

    def range_done(self, range_id: int) -> bool:
        rng = self.ranges.get(range_id)
        if rng is None or not rng.registered or rng.end <= rng.start:
            raise CandidateRejected(f"range_done on r{range_id}, which is not a live snapshot")
        rng.registered, rng.done = False, True
        return rng.valid

    def _invalidate_ranges(self, start: int, end: int) -> None:
        for rng in self.ranges.values():
            if rng.registered and start < rng.end and rng.start < end:
                rng.valid = False
                for index in range(len(rng.entries)):
                    if start <= rng.start + index * PAGE_SIZE < end:
                        rng.entries[index] &= ~rng.encoding.flags[HmmPfnFlag.VALID]
                        rng.entries[index] = 0

    def invalidate_start(self, start: int, end: int, blockable: bool) -> int:
        self._invalidate_ranges(start, end)
        update = HmmUpdate(start=start, end=end, blockable=blockable)
        replies = [ops.sync_cpu_device_pagetables(update) for _, ops in list(self.mirrors)]
        return EAGAIN if not blockable and EAGAIN in replies else 0

    def invalidate_end(self, start: int, end: int) -> None:
        self._invalidate_ranges(start, end)

    def release(self) -> None:
        released, self.mirrors = self.mirrors, []
        for _, ops in released:
            ops.release()
        for rng in self.ranges.values():  # the later kernels' fix (REL-3), too
            if rng.registered:
                rng.valid = False

    def close(self) -> None:
        self.ranges.clear()


def make() -> ExactCore:
    """The factory: ``--adapter examples.exact_core:make``."""
    return ExactCore()
